"""The credit score: DESIGN.md's rule as pure functions (no ORM, no clock).

This module is the reference. ``penalties/scoring_sql.py`` computes the same numbers for many
traders in one SQL statement, and a property test holds the two to exact equality.

The rule, with every boundary pinned down:

- Input: a trader's *confirmed* violations (the caller filters on status) and ``as_of``.
  A violation whose ``occurred_on`` is after ``as_of`` does not exist yet as of ``as_of``:
  it is ignored everywhere (no deduction line, and it never counts as a repeat).
- age = ``(as_of - occurred_on).days`` (whole calendar days, >= 0). A violation has expired
  when ``age >= validity_days``; it then has no deduction line.
- weight = 1 while ``age < validity_days / 2`` (i.e. ``2 * age < validity_days``), else
  ``(validity_days - age) / (validity_days / 2)``. The two pieces meet at 1, so the weight
  never increases with age and reaches 0 exactly at expiry.
- Violations are put in one total order: ``(occurred_on, recorded_at, id)``. The repeat count
  of a violation is ``k = 1 + p`` where ``p`` counts the violations of the same category that
  come before it in that order and occurred no more than 365 days earlier:
  ``occurred_on - 365 days <= p.occurred_on <= occurred_on``. The day exactly 365 days
  earlier counts; 366 days earlier does not. On the same day only the ones recorded earlier
  count (ties on ``recorded_at`` by id). Expired violations count as repeats too.
- factor = ``min(3, 1 + (k - 1) / 2)``: 1, 1.5, 2, 2.5, then 3 from k = 5 on.
- deduction = points × weight × factor, where points come from the rules' overrides when
  present (type code first, then category) and from the violation type otherwise.
- All of the above is exact (``Fraction``). Rounding happens exactly once: score =
  ``max(0, floor(1000 - Σ deduction + 1/2))`` — half up, then clamped. Clamping before or
  after rounding gives the same integer, so the sign of ``1000 - Σ`` needs no care.
- grade = the first cut-off (highest first) the score reaches, else the lowest grade.

Decimal values in the breakdown (``to_decimal``) are for display and the ledger; they are
rounded half up from the exact fractions and never fed back into the score.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import Any

MAX_SCORE = 1000
REPEAT_WINDOW_DAYS = 365
MAX_REPEAT_FACTOR = 3
DEFAULT_CUTOFFS: tuple[tuple[str, int], ...] = (("A", 900), ("B", 750), ("C", 600))
LOWEST_GRADE = "D"

_HALF = Fraction(1, 2)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _frozen_points(points: Mapping[str, int]) -> Mapping[str, int]:
    for key, value in points.items():
        if not key or not _is_int(value) or value < 0:
            raise ValueError(f"points override {key!r}: a non-empty key and a non-negative integer")
    return MappingProxyType(dict(points))


@dataclass(frozen=True, slots=True)
class ScoredViolation:
    """One confirmed violation, as the scoring rule sees it.

    ``recorded_at`` is a datetime in practice; any key that is totally ordered among one
    trader's violations works (it only breaks ties between violations of the same day).
    """

    id: int
    occurred_on: date
    recorded_at: Any
    category: str
    points: int
    validity_days: int
    type_code: str = ""

    def __post_init__(self) -> None:
        if not _is_int(self.points) or self.points < 0:
            raise ValueError(f"violation {self.id}: points must be a non-negative integer")
        if not _is_int(self.validity_days) or self.validity_days <= 0:
            raise ValueError(f"violation {self.id}: validity_days must be a positive integer")

    @property
    def order_key(self) -> tuple[date, Any, int]:
        """The total order the repeat count uses: date, then recording time, then id."""
        return (self.occurred_on, self.recorded_at, self.id)


@dataclass(frozen=True)
class ScoringRules:
    """What a policy may change: grade cut-offs and points overrides.

    ``cutoffs`` are ``(grade, minimum score)`` pairs, highest first; a score below the last
    one gets ``lowest_grade``. ``points_by_type`` (keyed by violation type code) wins over
    ``points_by_category``; both win over the type's own points.
    """

    cutoffs: tuple[tuple[str, int], ...] = DEFAULT_CUTOFFS
    lowest_grade: str = LOWEST_GRADE
    points_by_type: Mapping[str, int] = field(default_factory=dict)
    points_by_category: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        cutoffs = tuple((str(grade), int(minimum)) for grade, minimum in self.cutoffs)
        minimums = [minimum for _, minimum in cutoffs]
        if any(a <= b for a, b in itertools.pairwise(minimums)):
            raise ValueError("grade cut-offs must be strictly decreasing")
        grades = [grade for grade, _ in cutoffs] + [self.lowest_grade]
        if len(set(grades)) != len(grades):
            raise ValueError("each grade may appear only once")
        object.__setattr__(self, "cutoffs", cutoffs)
        object.__setattr__(self, "points_by_type", _frozen_points(self.points_by_type))
        object.__setattr__(self, "points_by_category", _frozen_points(self.points_by_category))

    def __hash__(self) -> int:
        return hash(
            (
                self.cutoffs,
                self.lowest_grade,
                tuple(sorted(self.points_by_type.items())),
                tuple(sorted(self.points_by_category.items())),
            )
        )

    def points_for(self, violation: ScoredViolation) -> int:
        if violation.type_code in self.points_by_type:
            return self.points_by_type[violation.type_code]
        if violation.category in self.points_by_category:
            return self.points_by_category[violation.category]
        return violation.points


DEFAULT_RULES = ScoringRules()


@dataclass(frozen=True, slots=True)
class Line:
    """One violation's share of the score: deduction = points × weight × factor (exact)."""

    violation_id: int
    points: int
    age_days: int
    weight: Fraction
    repeat: int
    factor: Fraction
    deduction: Fraction
    expires_on: date


@dataclass(frozen=True, slots=True)
class Assessment:
    """The score, its grade and why.

    ``breakdown`` holds one line per live (not expired, not future) violation in the
    repeat order ``(occurred_on, recorded_at, id)``. ``exact_deduction`` is Σ deduction;
    ``total_deduction`` is the same rounded half up to 0.01 for display.
    """

    score: int
    grade: str
    breakdown: tuple[Line, ...]
    total_deduction: Decimal
    exact_deduction: Fraction


def weight(age_days: int, validity_days: int) -> Fraction:
    """1 for the first half of the validity, then linear down to 0 at expiry.

    Defined for ``0 <= age_days < validity_days``; always in (0, 1].
    """
    if not 0 <= age_days < validity_days:
        raise ValueError("weight is defined only for a live violation (0 <= age < validity)")
    if 2 * age_days < validity_days:
        return Fraction(1)
    return Fraction(2 * (validity_days - age_days), validity_days)


def repeat_factor(k: int) -> Fraction:
    """min(3, 1 + 0.5·(k − 1)) for k >= 1."""
    if k < 1:
        raise ValueError("k counts the violation itself, so k >= 1")
    return _FACTORS[min(k, len(_FACTORS) - 1)]


# Reassessing millions of traders makes Fraction arithmetic the cost: the factors are a
# handful of constants, and each deduction is built as one fraction from integers.
_ONE = Fraction(1)
_FACTORS = (
    None,
    *(min(Fraction(MAX_REPEAT_FACTOR), Fraction(k + 1, 2)) for k in range(1, 2 * MAX_REPEAT_FACTOR)),
)


def round_half_up(value: Fraction) -> int:
    return math.floor(value + _HALF)


def score_for(total_deduction: Fraction) -> int:
    """max(0, 1000 − Σ deduction) rounded half up; the only rounding in the rule."""
    return max(0, round_half_up(MAX_SCORE - total_deduction))


def grade_for(
    score: int, cutoffs: tuple[tuple[str, int], ...] = DEFAULT_CUTOFFS, lowest: str = LOWEST_GRADE
) -> str:
    """The first grade (cut-offs highest first) whose minimum the score reaches."""
    for grade, minimum in cutoffs:
        if score >= minimum:
            return grade
    return lowest


def to_decimal(value: Fraction, places: int = 2) -> Decimal:
    """``value`` rounded half up to ``places`` decimals, for display and the ledger."""
    # floor(n/d · 10^p + 1/2) in integers: the same number as round_half_up, a lot faster.
    n, d = value.numerator, value.denominator
    return Decimal((2 * n * 10**places + d) // (2 * d)).scaleb(-places)


def assess(
    violations: Iterable[ScoredViolation], as_of: date, rules: ScoringRules = DEFAULT_RULES
) -> Assessment:
    """Score a trader's confirmed violations as of ``as_of`` (see the module docstring).

    Invariants (tested): 0 <= score <= 1000; adding a violation never raises the score;
    moving ``as_of`` forward without new violations never lowers it; an expired violation
    has no line of its own (it may still raise later ones' repeat factor).
    """
    existing = sorted((v for v in violations if v.occurred_on <= as_of), key=lambda v: v.order_key)
    if len({v.id for v in existing}) != len(existing):
        raise ValueError("violation ids must be unique")
    lines = [
        _line(violation, k, as_of, rules)
        for violation, k in zip(existing, _repeat_counts(existing), strict=True)
        if (as_of - violation.occurred_on).days < violation.validity_days
    ]
    exact = _sum(line.deduction for line in lines)
    score = score_for(exact)
    return Assessment(
        score=score,
        grade=grade_for(score, rules.cutoffs, rules.lowest_grade),
        breakdown=tuple(lines),
        total_deduction=to_decimal(exact),
        exact_deduction=exact,
    )


def _repeat_counts(ordered: list[ScoredViolation]) -> list[int]:
    """k for each violation of ``ordered`` (sorted by ``order_key``)."""
    # Ordinals of the earlier violations per category, ascending because the input is sorted;
    # everything already in the list precedes the current violation in the total order.
    earlier: dict[str, list[int]] = defaultdict(list)
    counts = []
    for violation in ordered:
        day = violation.occurred_on.toordinal()
        days = earlier[violation.category]
        counts.append(1 + len(days) - bisect.bisect_left(days, day - REPEAT_WINDOW_DAYS))
        days.append(day)
    return counts


def _sum(fractions: Iterable[Fraction]) -> Fraction:
    """Σ exactly, adding integers over a common denominator (the validities are few)."""
    by_denominator: dict[int, int] = defaultdict(int)
    for f in fractions:
        by_denominator[f.denominator] += f.numerator
    common = math.lcm(*by_denominator) if by_denominator else 1
    return Fraction(sum(n * (common // d) for d, n in by_denominator.items()), common)


def _line(violation: ScoredViolation, k: int, as_of: date, rules: ScoringRules) -> Line:
    age = (as_of - violation.occurred_on).days
    points = rules.points_for(violation)
    validity = violation.validity_days
    factor = repeat_factor(k)
    if 2 * age < validity:  # full weight: points × factor
        w, deduction = _ONE, Fraction(points * factor.numerator, factor.denominator)
    else:  # points × 2(validity − age)/validity × factor, as one fraction
        w = weight(age, validity)
        deduction = Fraction(points * 2 * (validity - age) * factor.numerator, validity * factor.denominator)
    return Line(
        violation_id=violation.id,
        points=points,
        age_days=age,
        weight=w,
        repeat=k,
        factor=factor,
        deduction=deduction,
        expires_on=_expiry(violation),
    )


def _expiry(violation: ScoredViolation) -> date:
    # A validity past the calendar's end (absurd, but the column allows it) never expires.
    ordinal = violation.occurred_on.toordinal() + violation.validity_days
    return date.fromordinal(min(ordinal, date.max.toordinal()))
