from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from traders import uscc

VALID = "91350100M000100Y43"  # the worked example of GB 32100-2015


def test_it_accepts_the_standards_worked_example():
    parsed = uscc.parse(VALID)
    assert parsed.code == VALID
    assert parsed.check_ok
    assert parsed.kind == "91"
    assert parsed.kind_label == "企业"
    assert parsed.region == "350100"
    assert parsed.organisation_code == "M000100Y4"


def test_it_normalises_case_and_surrounding_spaces():
    assert uscc.parse("  91350100m000100y43\n").code == VALID


@pytest.mark.parametrize(
    ("raw", "rule", "fragment"),
    [
        ("", "length", "18 characters, got 0"),
        ("91350100M000100Y4", "length", "got 17"),
        ("91350100M000100Y431", "length", "got 19"),
        ("91350100I000100Y43", "character", "position 9"),
        ("91350100M0001O0Y43", "character", "position 14"),
        ("9135010-M000100Y43", "character", "position 8"),
        ("Z1350100M000100Y43", "character", "position 1"),
        ("B1350100M000100Y43", "authority", "position 1"),
        ("91350100M000100Y44", "check", "expected '3'"),
    ],
)
def test_it_rejects_with_the_rule_that_failed(raw, rule, fragment):
    with pytest.raises(uscc.USCCError) as info:
        uscc.parse(raw)
    assert info.value.rule == rule
    assert fragment in info.value.message


def test_it_rejects_a_code_with_a_wrong_check_character_naming_the_expected_one():
    with pytest.raises(uscc.USCCError) as info:
        uscc.parse("91350100M000100Y4A")
    assert info.value.expected == "3"


def test_a_bad_check_character_passes_only_when_explicitly_allowed():
    parsed = uscc.parse("91350100M000100Y44", allow_bad_check=True)
    assert not parsed.check_ok
    with pytest.raises(uscc.USCCError):
        uscc.parse("91350100M00010OY44", allow_bad_check=True)  # other faults still fail


authorities = st.sampled_from(sorted(uscc.AUTHORITIES))
body_chars = st.sampled_from(uscc.ALPHABET)


@st.composite
def bodies(draw):
    return draw(authorities) + "".join(draw(st.lists(body_chars, min_size=16, max_size=16)))


@given(bodies())
def test_a_random_body_with_its_computed_check_character_is_accepted(body):
    code = body + uscc.check_character(body)
    assert uscc.parse(code).code == code


@given(bodies(), st.integers(min_value=0, max_value=17), st.sampled_from(uscc.ALPHABET))
def test_any_single_character_change_is_rejected(body, position, replacement):
    code = body + uscc.check_character(body)
    if code[position] == replacement:
        replacement = uscc.ALPHABET[(uscc.VALUES[replacement] + 1) % 31]
    changed = code[:position] + replacement + code[position + 1 :]
    assert not uscc.is_valid(changed)
