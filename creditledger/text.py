"""What free text the register keeps: no invisible characters that change how it reads.

A shop name or a violation description is shown to officers, in public register pages,
in exports and in the ledger. Bidirectional controls (the "Trojan Source" set: U+202A-U+202E
embeddings and overrides, U+2066-U+2069 isolates, U+200E/U+200F/U+061C marks) make text
display in an order other than the one stored: "‮gpj.exe" shows as "exe.jpg". C0 and C1
control characters (NUL, escape sequences) corrupt terminals, CSV readers and logs. Both
are refused with the character and its position named; tabs and line breaks only where a
text may span lines (descriptions, notes).
"""

from __future__ import annotations

import unicodedata

from django.utils.translation import gettext as _

from creditledger.exceptions import ApplicationError

BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_MULTILINE_ALLOWED = frozenset("\t\n\r")


def first_forbidden(value: str, *, multiline: bool) -> tuple[int, str] | None:
    """(position, character) of the first character the register refuses, or None."""
    for index, char in enumerate(value):
        if char in BIDI_CONTROLS:
            return index, char
        if unicodedata.category(char) == "Cc" and not (multiline and char in _MULTILINE_ALLOWED):
            return index, char
    return None


def check_text(value: str, *, field: str, multiline: bool = False) -> str:
    """`value` unchanged, or an ApplicationError naming the field, the character and where it is."""
    found = first_forbidden(value, multiline=multiline)
    if found is None:
        return value
    index, char = found
    codepoint = f"U+{ord(char):04X}"
    name = unicodedata.name(char, "control character")
    raise ApplicationError(
        _("Invisible control character %(cp)s (%(name)s) at position %(pos)d: remove it.")
        % {"cp": codepoint, "name": name, "pos": index + 1},
        field=field,
        code="control_character",
        value=f"{codepoint} at {index + 1}",
    )
