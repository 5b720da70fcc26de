"""The scoring rule, without a database: worked examples by hand, then the invariants."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from penalties.scoring import (
    REPEAT_WINDOW_DAYS,
    ScoredViolation,
    ScoringRules,
    assess,
    grade_for,
    repeat_factor,
    round_half_up,
    to_decimal,
    weight,
)

AS_OF = date(2025, 6, 30)
NINE = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)


def violation(
    id: int,
    age: int,
    *,
    points: int = 60,
    validity: int = 730,
    category: str = "false_advertising",
    code: str = "false-advertising",
    recorded_at: datetime | None = None,
) -> ScoredViolation:
    """A violation ``age`` days before AS_OF (negative: after it)."""
    return ScoredViolation(
        id=id,
        occurred_on=AS_OF - timedelta(days=age),
        recorded_at=recorded_at or NINE + timedelta(minutes=id),
        category=category,
        points=points,
        validity_days=validity,
        type_code=code,
    )


def counterfeit(id: int, age: int, **kwargs) -> ScoredViolation:
    return violation(id, age, points=150, validity=1095, category="counterfeit", code="counterfeit", **kwargs)


# --- worked examples --------------------------------------------------------------------------


def test_a_fresh_violation_deducts_its_points():
    result = assess([violation(1, 0)], AS_OF)

    assert result.score == 940
    assert result.grade == "A"
    assert result.total_deduction == Decimal("60.00")
    (line,) = result.breakdown
    assert (line.violation_id, line.points, line.age_days, line.repeat) == (1, 60, 0, 1)
    assert (line.weight, line.factor, line.deduction) == (1, 1, 60)
    assert line.expires_on == AS_OF + timedelta(days=730)


def test_the_weight_is_still_full_at_exactly_half_the_validity():
    (line,) = assess([violation(1, 365)], AS_OF).breakdown
    assert line.weight == 1
    assert assess([violation(1, 365)], AS_OF).score == 940


def test_the_weight_decays_linearly_after_half_the_validity():
    # 2 · (730 − 547) / 730 = 183/365; 60 · 183/365 = 30.08…; 1000 − 30.08… = 969.92 → 970.
    result = assess([violation(1, 547)], AS_OF)
    assert result.breakdown[0].weight == Fraction(183, 365)
    assert result.exact_deduction == Fraction(60 * 183, 365)
    assert result.score == 970


def test_an_odd_validity_decays_from_the_first_day_past_its_half():
    # validity 365: age 182 < 182.5 is full weight; age 183 is 2 · 182 / 365.
    assert assess([violation(1, 182, validity=365)], AS_OF).breakdown[0].weight == 1
    assert assess([violation(1, 183, validity=365)], AS_OF).breakdown[0].weight == Fraction(364, 365)


def test_on_its_last_day_a_violation_still_has_a_line():
    # age 729 of 730: weight 2/730, deduction 60/365 = 0.164…, the score rounds back to 1000.
    result = assess([violation(1, 729)], AS_OF)
    (line,) = result.breakdown
    assert line.weight == Fraction(1, 365)
    assert line.deduction == Fraction(12, 73)
    assert result.total_deduction == Decimal("0.16")
    assert result.score == 1000


def test_a_violation_expires_when_its_age_reaches_the_validity():
    result = assess([violation(1, 730)], AS_OF)
    assert result.breakdown == ()
    assert result.score == 1000
    assert result.total_deduction == Decimal("0.00")


def test_the_second_violation_of_a_category_counts_half_again():
    result = assess([violation(1, 10), violation(2, 0)], AS_OF)
    assert [(line.repeat, line.factor, line.deduction) for line in result.breakdown] == [
        (1, 1, 60),
        (2, Fraction(3, 2), 90),
    ]
    assert result.score == 850
    assert result.grade == "B"


def test_the_repeat_factor_grows_by_a_half_and_stops_at_three():
    result = assess([violation(i, 0) for i in range(1, 7)], AS_OF)
    assert [line.repeat for line in result.breakdown] == [1, 2, 3, 4, 5, 6]
    assert [line.factor for line in result.breakdown] == [1, Fraction(3, 2), 2, Fraction(5, 2), 3, 3]
    # 60 · (1 + 1.5 + 2 + 2.5 + 3 + 3) = 780
    assert result.score == 220
    assert result.grade == "D"


def test_the_day_exactly_365_days_earlier_is_inside_the_repeat_window():
    result = assess([counterfeit(1, REPEAT_WINDOW_DAYS), counterfeit(2, 0)], AS_OF)
    assert [line.repeat for line in result.breakdown] == [1, 2]
    assert result.score == 1000 - 150 - 225


def test_the_day_366_days_earlier_is_outside_the_repeat_window():
    result = assess([counterfeit(1, REPEAT_WINDOW_DAYS + 1), counterfeit(2, 0)], AS_OF)
    assert [line.repeat for line in result.breakdown] == [1, 1]
    assert result.score == 1000 - 150 - 150


def test_on_the_same_day_the_one_recorded_earlier_comes_first():
    big = violation(1, 5, points=100, code="big", recorded_at=NINE + timedelta(hours=1))
    small = violation(2, 5, points=20, code="small", recorded_at=NINE)
    # small first (k=1): 20; big second (k=2): 150.
    assert assess([big, small], AS_OF).score == 830
    # recorded the other way round: big 100, small 30.
    big_first = dataclasses.replace(big, recorded_at=NINE - timedelta(hours=1))
    assert assess([big_first, small], AS_OF).score == 870


def test_on_the_same_day_and_recording_time_the_lower_id_comes_first():
    big = violation(1, 5, points=100, code="big", recorded_at=NINE)
    small = violation(2, 5, points=20, code="small", recorded_at=NINE)
    assert [line.violation_id for line in assess([small, big], AS_OF).breakdown] == [1, 2]
    assert assess([small, big], AS_OF).score == 870


def test_an_expired_violation_still_counts_as_a_repeat():
    old = violation(1, 400, points=20, validity=365, code="absolute-terms")
    result = assess([old, violation(2, 100)], AS_OF)
    (line,) = result.breakdown
    assert (line.violation_id, line.repeat, line.deduction) == (2, 2, 90)
    assert result.score == 910


def test_other_categories_do_not_count_as_repeats():
    result = assess([counterfeit(1, 10), violation(2, 0)], AS_OF)
    assert [line.repeat for line in result.breakdown] == [1, 1]


def test_a_violation_after_as_of_does_not_exist_yet():
    later = violation(1, -1)
    assert assess([later], AS_OF).breakdown == ()
    assert assess([later], AS_OF).score == 1000
    assert assess([later], AS_OF + timedelta(days=1)).score == 940
    # …and is not a repeat of anything either.
    assert assess([later, violation(2, 0)], AS_OF).breakdown[0].repeat == 1


def test_points_overrides_by_type_win_over_category_and_catalog():
    rules = ScoringRules(
        points_by_type={"false-advertising": 10}, points_by_category={"false_advertising": 30}
    )
    plain = violation(1, 0)
    other_type = violation(2, 0, code="absolute-terms", points=20)
    result = assess([plain, other_type], AS_OF, rules)
    assert [line.points for line in result.breakdown] == [10, 30]
    assert result.exact_deduction == 10 + 30 * Fraction(3, 2)
    assert result.score == 945


def test_the_score_rounds_half_up_not_to_even():
    # points 3, validity 4, age 3: weight 1/2 → 1.5; 998.5 → 999 (round-to-even would say 998).
    assert assess([violation(1, 3, points=3, validity=4)], AS_OF).score == 999
    assert assess([violation(1, 3, points=1, validity=4)], AS_OF).score == 1000


def test_the_score_never_goes_below_zero():
    result = assess([violation(i, 0, points=400, validity=1825) for i in range(1, 6)], AS_OF)
    assert result.exact_deduction == 4000
    assert result.score == 0
    assert result.grade == "D"


@pytest.mark.parametrize(
    ("score", "grade"),
    [(1000, "A"), (900, "A"), (899, "B"), (750, "B"), (749, "C"), (600, "C"), (599, "D"), (0, "D")],
)
def test_grades_follow_the_default_cutoffs(score, grade):
    assert grade_for(score) == grade


def test_grades_follow_custom_cutoffs():
    rules = ScoringRules(cutoffs=(("A", 950), ("B", 500)), lowest_grade="C")
    assert [grade_for(s, rules.cutoffs, rules.lowest_grade) for s in (950, 949, 500, 499)] == [
        "A",
        "B",
        "B",
        "C",
    ]
    assert assess([violation(1, 0)], AS_OF, rules).grade == "B"


def test_rules_refuse_unordered_cutoffs_and_bad_overrides():
    with pytest.raises(ValueError):
        ScoringRules(cutoffs=(("A", 600), ("B", 750)))
    with pytest.raises(ValueError):
        ScoringRules(points_by_type={"x": -1})
    with pytest.raises(ValueError):
        ScoredViolation(1, AS_OF, NINE, "x", 10, 0)


def test_rules_are_immutable_and_hashable():
    overrides = {"false-advertising": 10}
    rules = ScoringRules(points_by_type=overrides)
    overrides["false-advertising"] = 99
    assert rules.points_by_type["false-advertising"] == 10
    assert hash(rules) == hash(ScoringRules(points_by_type={"false-advertising": 10}))


def test_duplicate_violation_ids_are_refused():
    with pytest.raises(ValueError):
        assess([violation(1, 0), violation(1, 3)], AS_OF)


def test_the_building_blocks():
    assert weight(0, 1) == 1
    assert weight(1, 3) == 1  # 2 < 3
    assert weight(2, 3) == Fraction(2, 3)
    assert [repeat_factor(k) for k in (1, 2, 5, 50)] == [1, Fraction(3, 2), 3, 3]
    assert round_half_up(Fraction(-1, 2)) == 0
    assert round_half_up(Fraction(5, 2)) == 3
    assert to_decimal(Fraction(1, 200)) == Decimal("0.01")
    assert to_decimal(Fraction(1, 3), 4) == Decimal("0.3333")


# --- invariants ---------------------------------------------------------------------------------

BASE = date(2023, 1, 1)
CATEGORIES = ("counterfeit", "substandard")
VALIDITIES = (1, 2, 3, 7, 30, 365, 366, 730, 731, 1095)
# Days cluster around a few anchors, so that pairs sit exactly on the boundaries that matter:
# the same day (ties), 365 vs 366 days apart (repeat window), one day after as_of.
DELTAS = (0, 0, 0, 1, -1, 182, 183, 364, 365, 366, -364, -365, -366)


@st.composite
def scenarios(draw, max_size: int = 12) -> tuple[list[ScoredViolation], ScoredViolation, date]:
    """Violations with distinct ids, one extra violation (id 10000) and an as_of."""
    anchors = draw(st.lists(st.integers(0, 1100), min_size=1, max_size=3))
    days = st.one_of(
        st.builds(int.__add__, st.sampled_from(anchors), st.sampled_from(DELTAS)), st.integers(0, 1100)
    )
    n = draw(st.integers(0, max_size))
    # Ids in an order unrelated to dates or recording times; few recording times, so ties occur.
    ids = draw(st.permutations(range(1, n + 1)))
    violations = [draw(scored_violation(ids[i], days)) for i in range(n)]
    return violations, draw(scored_violation(10_000, days)), BASE + timedelta(days=draw(days))


@st.composite
def scored_violation(draw, id: int, days: st.SearchStrategy[int]) -> ScoredViolation:
    return ScoredViolation(
        id=id,
        occurred_on=BASE + timedelta(days=draw(days)),
        recorded_at=draw(st.integers(0, 3)),
        category=draw(st.sampled_from(CATEGORIES)),
        points=draw(st.integers(0, 400)),
        validity_days=draw(st.sampled_from(VALIDITIES)),
        type_code=draw(st.sampled_from(("t1", "t2", "t3"))),
    )


def naive_repeat(v: ScoredViolation, violations: list[ScoredViolation], as_of: date) -> int:
    """k straight from DESIGN.md's wording, to check the reference's bisect bookkeeping."""
    return 1 + sum(
        1
        for p in violations
        if p.category == v.category
        and p.occurred_on <= as_of
        and p.order_key < v.order_key
        and (v.occurred_on - p.occurred_on).days <= REPEAT_WINDOW_DAYS
    )


@settings(max_examples=150)
@given(scenarios())
def test_the_score_is_between_0_and_1000_and_adds_up(scenario):
    violations, _, as_of = scenario
    result = assess(violations, as_of)
    assert 0 <= result.score <= 1000
    assert result.grade == grade_for(result.score)
    assert result.exact_deduction == sum(line.deduction for line in result.breakdown)
    assert result.score == max(0, round_half_up(1000 - result.exact_deduction))
    live = {v.id for v in violations if 0 <= (as_of - v.occurred_on).days < v.validity_days}
    assert {line.violation_id for line in result.breakdown} == live
    by_id = {v.id: v for v in violations}
    for line in result.breakdown:
        assert 0 < line.weight <= 1
        assert 1 <= line.factor <= 3
        assert line.repeat == naive_repeat(by_id[line.violation_id], violations, as_of)
        assert line.deduction == line.points * line.weight * line.factor


@given(scenarios(), st.randoms())
def test_the_order_of_the_input_does_not_matter(scenario, rnd):
    violations, _, as_of = scenario
    shuffled = list(violations)
    rnd.shuffle(shuffled)
    assert assess(shuffled, as_of) == assess(violations, as_of)


@settings(max_examples=150)
@given(scenarios())
def test_adding_a_confirmed_violation_never_raises_the_score(scenario):
    violations, extra, as_of = scenario
    # Holds line by line: the new violation adds a line of its own (>= 0) or none, and can
    # only raise the others' repeat counts; weights do not depend on other violations.
    before = assess(violations, as_of)
    after = assess([*violations, extra], as_of)
    assert after.score <= before.score
    deductions = {line.violation_id: line.deduction for line in after.breakdown}
    for line in before.breakdown:
        assert deductions[line.violation_id] >= line.deduction


@settings(max_examples=150)
@given(scenarios())
def test_an_expired_violation_has_no_line_of_its_own(scenario):
    violations, extra, as_of = scenario
    # Precisely: an expired violation deducts nothing itself. Because repeats count expired
    # violations, it may still raise the factor of a later one of its category within 365
    # days — so "never lowers the score" holds exactly when no such later violation exists.
    expired = dataclasses.replace(
        extra, occurred_on=min(extra.occurred_on, as_of - timedelta(days=extra.validity_days))
    )
    before = assess(violations, as_of)
    after = assess([*violations, expired], as_of)
    assert expired.id not in {line.violation_id for line in after.breakdown}
    assert after.score <= before.score
    follows = any(
        v.category == expired.category
        and v.order_key > expired.order_key
        and (v.occurred_on - expired.occurred_on).days <= REPEAT_WINDOW_DAYS
        for v in violations
    )
    if not follows:
        assert after == before


@settings(max_examples=150)
@given(scenarios(), st.integers(0, 800))
def test_moving_as_of_forward_never_lowers_the_score(scenario, days):
    violations, _, as_of = scenario
    # No new violations: only those that existed at the earlier as_of.
    existing = [v for v in violations if v.occurred_on <= as_of]
    later = as_of + timedelta(days=days)
    assert assess(existing, later).score >= assess(existing, as_of).score


@given(scenarios(), st.integers(0, 400), st.integers(0, 400))
def test_an_override_is_the_same_as_changing_the_points(scenario, t1_points, counterfeit_points):
    violations, _, as_of = scenario
    rules = ScoringRules(
        points_by_type={"t1": t1_points}, points_by_category={"counterfeit": counterfeit_points}
    )
    rewritten = [
        dataclasses.replace(
            v,
            points=t1_points
            if v.type_code == "t1"
            else counterfeit_points
            if v.category == "counterfeit"
            else v.points,
        )
        for v in violations
    ]
    assert assess(violations, as_of, rules).score == assess(rewritten, as_of).score
