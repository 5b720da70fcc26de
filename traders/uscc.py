"""Unified Social Credit Code (GB 32100-2015): normalisation, validation, derivation.

Pure functions, no ORM. An 18-character code over the 31 characters of ALPHABET:
  1      registration authority      2    entity type
  3-8    administrative division     9-17 organisation code
  18     check character: (31 - sum(value_i * weight_i) mod 31) mod 31
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext as _

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
VALUES = {ch: i for i, ch in enumerate(ALPHABET)}
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
LENGTH = 18

# Registration authority (position 1) and the entity types it registers (position 2).
AUTHORITIES = {
    "1": "机构编制",
    "2": "外交",
    "3": "司法行政",
    "4": "文化",
    "5": "民政",
    "6": "旅游",
    "7": "宗教",
    "8": "工会",
    "9": "市场监督管理（工商）",
    "A": "中央军委改革和编制办公室",
    "N": "农业",
    "Y": "其他",
}
ENTITY_KINDS = {
    "11": "机关",
    "12": "事业单位",
    "13": "中央编办直接管理机构编制的群众团体",
    "19": "其他机构编制",
    "51": "社会团体",
    "52": "民办非企业单位",
    "53": "基金会",
    "59": "其他民政",
    "91": "企业",
    "92": "个体工商户",
    "93": "农民专业合作社",
    "N1": "农村集体经济组织",
    "N9": "其他农业",
    "Y1": "其他",
}


class USCCError(ValueError):
    """A code failed one rule. `rule` is a stable name, `message` says what to fix."""

    def __init__(self, rule: str, message: str, *, expected: str | None = None) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message
        self.expected = expected


@dataclass(frozen=True)
class USCC:
    code: str
    check_ok: bool

    @property
    def authority(self) -> str:
        return self.code[0]

    @property
    def kind(self) -> str:
        """Positions 1-2: registration authority and entity type."""
        return self.code[:2]

    @property
    def kind_label(self) -> str:
        return ENTITY_KINDS.get(self.kind, AUTHORITIES.get(self.authority, "未知"))

    @property
    def region(self) -> str:
        """Positions 3-8: the administrative division code."""
        return self.code[2:8]

    @property
    def organisation_code(self) -> str:
        return self.code[8:17]


def normalise(raw: str) -> str:
    return (raw or "").strip().upper()


def check_character(body: str) -> str:
    """The check character for the first 17 characters of a code."""
    if len(body) != LENGTH - 1:
        raise ValueError("the body of a code is 17 characters")
    total = sum(VALUES[ch] * w for ch, w in zip(body, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def parse(raw: str, *, allow_bad_check: bool = False) -> USCC:
    """Normalise and validate `raw`; raise USCCError naming the first rule that fails.

    With allow_bad_check, a code whose only fault is the check character is accepted
    (early pilot codes; registering one needs a supervisor's override) and reported
    with check_ok=False.
    """
    code = normalise(raw)
    if len(code) != LENGTH:
        raise USCCError(
            "length", _("must be %(length)d characters, got %(n)d") % {"length": LENGTH, "n": len(code)}
        )
    for position, ch in enumerate(code, start=1):
        if ch not in VALUES:
            raise USCCError(
                "character",
                _(
                    "character %(ch)r at position %(position)d is not allowed "
                    "(digits and letters except I, O, Z, S, V)"
                )
                % {"ch": ch, "position": position},
            )
    if code[0] not in AUTHORITIES:
        raise USCCError(
            "authority", _("registration authority %(ch)r at position 1 is unknown") % {"ch": code[0]}
        )
    expected = check_character(code[:17])
    if code[17] != expected:
        if allow_bad_check:
            return USCC(code=code, check_ok=False)
        raise USCCError(
            "check",
            _("check character expected %(expected)r, got %(got)r") % {"expected": expected, "got": code[17]},
            expected=expected,
        )
    return USCC(code=code, check_ok=True)


def is_valid(raw: str) -> bool:
    try:
        parse(raw)
    except USCCError:
        return False
    return True


def make(body: str) -> str:
    """The full code for a 17-character body (used by the demo seeder and tests)."""
    body = normalise(body)
    return body + check_character(body)
