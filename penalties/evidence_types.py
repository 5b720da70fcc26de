"""An evidence file's type, from its content.

The type a client declares (or the file name suggests) is only a claim: an HTML page sent
as image/png, or an executable as application/pdf, would be stored and later opened by an
officer's browser as what it claims to be. The first bytes decide: `filetype` (magic
numbers) must find the declared type, and a text/plain file must read as text (UTF-8 or
GB 18030, no NUL or other control bytes) and match no binary signature.
"""

from __future__ import annotations

import codecs

import filetype
from django.utils.translation import gettext as _

from creditledger.exceptions import ApplicationError

HEAD_BYTES = 8192  # every signature filetype knows lies within the first 8 KiB
TEXT = "text/plain"
_TEXT_CONTROLS_ALLOWED = frozenset(b"\t\n\r\f")


def sniff(head: bytes) -> str | None:
    """The MIME type the content shows (text/plain for plain text), or None."""
    kind = filetype.guess(head)
    if kind is not None:
        return kind.mime
    return TEXT if _is_text(head) else None


def check_content(head: bytes, declared: str, *, field: str = "file") -> str:
    """`declared`, when the content is of that type; an ApplicationError naming both otherwise."""
    found = sniff(head)
    if found == declared:
        return declared
    raise ApplicationError(
        _("The file's content is %(found)s, not the %(declared)s it was sent as.")
        % {"found": found or _("of no accepted type"), "declared": declared},
        field=field,
        code="content_mismatch",
        value=found or "unknown",
    )


def _is_text(head: bytes) -> bool:
    if any(b < 0x20 and b not in _TEXT_CONTROLS_ALLOWED for b in head) or b"\x7f" in head:
        return False
    for encoding in ("utf-8-sig", "gb18030"):
        # Incremental, so a character cut at the end of the head is not an error.
        try:
            codecs.getincrementaldecoder(encoding)().decode(head, final=False)
        except UnicodeDecodeError:
            continue
        return True
    return False
