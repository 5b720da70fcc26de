"""The bulk score: ``penalties/scoring.py``'s rule in one set-based PostgreSQL statement.

Same numbers as the reference, exactly. The weights are rationals with the validity as
denominator (e.g. 183/365), so ``numeric`` division would round; instead the statement
scales every deduction by D = lcm(2, every validity_days in the catalog), which makes each
scaled deduction an integer:

    full weight:   deduction × D = points × min(k + 1, 6) × D/2
    decaying:      deduction × D = points × min(k + 1, 6) × (validity − age) × D/validity

(factor = min(3, (k + 1)/2) and weight = 2(validity − age)/validity). With T = Σ scaled
deductions, the score is ``max(0, floor((2000·D − 2T + D) / 2D))`` — the reference's
half-up rounding of 1000 − T/D, clamped — computed with ``div`` on integers. ``div``
truncates toward zero, which differs from floor only for a negative numerator, and those
clamp to 0 either way. ``total_deduction`` is T/D rounded half up to 0.01 the same way.

The repeat count k uses window functions over the trader's confirmed violations of the same
category that occurred on or before ``as_of``: the rows in ``[occurred_on − 365 days,
occurred_on]`` (a RANGE frame, inclusive on both ends), minus the same-day rows, plus this
row's position among the same-day rows ordered by (recorded_at, id).

PostgreSQL only (``lcm``, ``jsonb``, RANGE frames with an interval offset). On SQLite
(``make run``) callers score with ``scoring.assess`` instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import NamedTuple

from django.db import NotSupportedError, connections

from penalties.models import Violation, ViolationStatus, ViolationType
from penalties.scoring import (
    DEFAULT_RULES,
    MAX_REPEAT_FACTOR,
    MAX_SCORE,
    REPEAT_WINDOW_DAYS,
    ScoredViolation,
    ScoringRules,
)
from traders.models import Trader


class BulkScore(NamedTuple):
    score: int
    grade: str
    total_deduction: Decimal


# Only module constants and table names are formatted into the text; values go in params.
_SCORED = """
WITH RECURSIVE
params AS (
    SELECT %s::date AS as_of, %s::jsonb AS points_by_type, %s::jsonb AS points_by_category
),
validities AS (
    SELECT validity, row_number() OVER (ORDER BY validity) AS n
    FROM (SELECT DISTINCT validity_days::numeric AS validity FROM {violationtype}) AS distinct_validities
),
lcm_steps (n, d) AS (
    SELECT 0::bigint, 2::numeric
    UNION ALL
    SELECT validities.n, lcm(lcm_steps.d, validities.validity)
    FROM lcm_steps JOIN validities ON validities.n = lcm_steps.n + 1
),
common AS (
    SELECT max(lcm_steps.d) AS d, (SELECT max(validity) FROM validities) AS max_validity
    FROM lcm_steps
),
existing AS (
    SELECT v.id, v.trader_id, v.occurred_on, v.recorded_at, t.category, t.validity_days AS validity,
           coalesce(
               (p.points_by_type ->> t.code)::numeric,
               (p.points_by_category ->> t.category)::numeric,
               t.points
           ) AS points,
           p.as_of - v.occurred_on AS age
    FROM {violation} AS v
    JOIN {violationtype} AS t ON t.id = v.type_id
    CROSS JOIN params AS p
    CROSS JOIN common AS c
    WHERE v.status = %s
      AND v.occurred_on <= p.as_of
      -- Older rows can neither be live nor fall in a live row's repeat window.
      AND p.as_of - v.occurred_on < c.max_validity + {window}
      {violation_filter}
),
ranked AS (
    SELECT e.*,
           count(*) OVER (
               PARTITION BY e.trader_id, e.category ORDER BY e.occurred_on
               RANGE BETWEEN INTERVAL '{window} days' PRECEDING AND CURRENT ROW
           ) AS in_window,
           count(*) OVER (PARTITION BY e.trader_id, e.category, e.occurred_on) AS same_day,
           row_number() OVER (
               PARTITION BY e.trader_id, e.category, e.occurred_on ORDER BY e.recorded_at, e.id
           ) AS day_position
    FROM existing AS e
),
totals AS (
    SELECT r.trader_id,
           sum(
               r.points
               * least(r.in_window - r.same_day + r.day_position + 1, {double_max_factor})
               * CASE WHEN 2 * r.age < r.validity THEN div(c.d, 2)
                      ELSE (r.validity - r.age) * div(c.d, r.validity) END
           ) AS scaled
    FROM ranked AS r CROSS JOIN common AS c
    WHERE r.age < r.validity
    GROUP BY r.trader_id
),
scored AS (
    SELECT {trader_id} AS trader_id,
           greatest(0, div(c.d * {double_max_score} - 2 * coalesce(s.scaled, 0) + c.d, 2 * c.d))::integer
               AS score,
           round(div(200 * coalesce(s.scaled, 0) + c.d, 2 * c.d) / 100, 2) AS total_deduction
    FROM {scored_from} CROSS JOIN common AS c
    {trader_filter}
)
SELECT trader_id, score, {grade} AS grade, total_deduction FROM scored
"""


def scores_sql(
    as_of: date,
    trader_ids: Iterable[int] | None = None,
    rules: ScoringRules = DEFAULT_RULES,
    *,
    every_trader: bool = True,
) -> tuple[str, list[object]]:
    """One SELECT of ``(trader_id, score, grade, total_deduction)`` and its params.

    With ``every_trader`` (the default) there is a row for every trader in the trader table
    (or every listed id that exists): traders without a live confirmed violation get 1000,
    the top grade and 0.00. Without it, only traders with at least one live (confirmed,
    occurred on or before ``as_of``, not expired) violation appear — the caller treats the
    others as 1000. The text is self-contained (a WITH query), so it can sit inside
    ``UPDATE traders_trader AS t SET … FROM (<sql>) AS s WHERE t.id = s.trader_id``;
    params are positional (``%s``) in text order.
    """
    ids = None if trader_ids is None else sorted({int(i) for i in trader_ids})
    params: list[object] = [
        as_of,
        json.dumps(dict(rules.points_by_type)),
        json.dumps(dict(rules.points_by_category)),
        ViolationStatus.CONFIRMED.value,
    ]
    violation_filter = ""
    if ids is not None:
        violation_filter = "AND v.trader_id = ANY(%s::bigint[])"
        params.append(ids)
    if every_trader:
        trader_id = "tr.id"
        scored_from = f"{Trader._meta.db_table} AS tr LEFT JOIN totals AS s ON s.trader_id = tr.id"
        trader_filter = "" if ids is None else "WHERE tr.id = ANY(%s::bigint[])"
        if ids is not None:
            params.append(ids)
    else:
        trader_id, scored_from, trader_filter = "s.trader_id", "totals AS s", ""
    grade = _grade_case(rules, params)
    sql = _SCORED.format(
        violation=Violation._meta.db_table,
        violationtype=ViolationType._meta.db_table,
        window=REPEAT_WINDOW_DAYS,
        double_max_factor=2 * MAX_REPEAT_FACTOR,
        double_max_score=2 * MAX_SCORE,
        violation_filter=violation_filter,
        trader_id=trader_id,
        scored_from=scored_from,
        trader_filter=trader_filter,
        grade=grade,
    )
    return sql, params


def bulk_assessments(
    as_of: date,
    trader_ids: Iterable[int] | None = None,
    rules: ScoringRules = DEFAULT_RULES,
    *,
    using: str = "default",
) -> dict[int, BulkScore]:
    """Score, grade and total deduction for every trader (or the listed ones that exist)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        raise NotSupportedError("bulk scoring needs PostgreSQL; use penalties.scoring.assess")
    sql, params = scores_sql(as_of, trader_ids, rules, every_trader=True)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0]: BulkScore(row[1], row[2], row[3]) for row in cursor.fetchall()}


def bulk_scores(
    as_of: date,
    trader_ids: Iterable[int] | None = None,
    rules: ScoringRules = DEFAULT_RULES,
    *,
    using: str = "default",
) -> dict[int, tuple[int, str]]:
    """``{trader_id: (score, grade)}``, exactly what ``scoring.assess`` gives each trader."""
    return {
        trader_id: (row.score, row.grade)
        for trader_id, row in bulk_assessments(as_of, trader_ids, rules, using=using).items()
    }


def scored_violations(trader_ids: Iterable[int] | None = None) -> dict[int, list[ScoredViolation]]:
    """The confirmed violations per trader as ``scoring.assess`` takes them.

    Reads the same columns as the SQL path, so both paths see the same facts.
    """
    rows = Violation.objects.filter(status=ViolationStatus.CONFIRMED)
    if trader_ids is not None:
        rows = rows.filter(trader_id__in=list(trader_ids))
    result: dict[int, list[ScoredViolation]] = {}
    for row in rows.values_list(
        "trader_id",
        "id",
        "occurred_on",
        "recorded_at",
        "type__category",
        "type__points",
        "type__validity_days",
        "type__code",
    ).order_by():
        trader_id, *fields = row
        result.setdefault(trader_id, []).append(ScoredViolation(*fields))
    return result


def _grade_case(rules: ScoringRules, params: list[object]) -> str:
    whens = []
    for grade, minimum in rules.cutoffs:
        whens.append("WHEN score >= %s THEN %s")
        params.extend([minimum, grade])
    params.append(rules.lowest_grade)
    return f"(CASE {' '.join(whens)} ELSE %s END)::text" if whens else "(%s)::text"
