"""Reads for scoring and measures."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from penalties import scoring
from penalties.models import (
    UNLIFTED_STATES,
    Appeal,
    Objection,
    Policy,
    RepairApplication,
    Restriction,
    ScoreHistory,
    Violation,
)
from penalties.policy import PolicyRules
from penalties.scoring import MAX_SCORE, ScoringRules, assess, grade_for
from penalties.scoring_sql import BulkScore, scored_violations, scores_sql
from traders.models import Trader


def active_policy() -> tuple[Policy, PolicyRules]:
    policy = Policy.objects.get(is_active=True)
    return policy, PolicyRules.from_dict(policy.rules)


def confirmed_violations(trader: Trader) -> list[Violation]:
    """The violations that count for the score, with their types: one query."""
    return list(
        Violation.objects.filter(trader=trader, status=Violation.Status.CONFIRMED)
        .select_related("type")
        .order_by()
    )


def assess_violations(violations: list[Violation], today: dt.date, rules: PolicyRules) -> scoring.Assessment:
    """scoring.assess over model rows under a policy: what the reassessment and the trader
    page both use, so the page cannot drift from the stored score's arithmetic."""
    scored = [
        scoring.ScoredViolation(
            v.id,
            v.occurred_on,
            v.recorded_at,
            v.type.category,
            v.type.points,
            v.type.validity_days,
            v.type.code,
        )
        for v in violations
    ]
    return scoring.assess(scored, today, scoring_rules(rules))


def scoring_rules(rules: PolicyRules) -> ScoringRules:
    """What of a policy the score depends on."""
    return ScoringRules(cutoffs=rules.cutoffs, points_by_type=rules.points_overrides)


def due_restriction_trader_ids(now: dt.datetime, limit: int | None = None) -> list[int]:
    """Traders with a proposed measure past its objection deadline or a measure past its end."""
    due = Restriction.objects.filter(
        Q(state=Restriction.State.PROPOSED, objection_deadline__lte=now)
        | Q(state=Restriction.State.ACTIVE, ends_at__lte=now)
    )
    ids = due.order_by("trader_id").values_list("trader_id", flat=True).distinct()
    return list(ids[:limit] if limit else ids)


def traders_due_for_sweep(now: dt.datetime, *, limit: int, exclude: set[int]) -> list[int]:
    """Flagged traders first, then those with measures due to start or end."""
    flagged = Trader.objects.filter(needs_reassessment=True).exclude(pk__in=exclude)
    ids = list(flagged.order_by("pk").values_list("pk", flat=True)[:limit])
    if len(ids) < limit:
        ids += [i for i in due_restriction_trader_ids(now, limit=limit + len(exclude)) if i not in exclude][
            : limit - len(ids)
        ]
    return list(dict.fromkeys(ids))


@dataclass
class Candidates:
    """The traders a bulk run must look at, in id order, handed out in batches.

    On PostgreSQL they sit in a temporary table of the run's connection, so memory does not
    grow with the register; elsewhere (SQLite, the demo) in a list.
    """

    total: int
    _ids: list[int] | None = None

    def batches(self, size: int):
        if self._ids is not None:
            for start in range(0, len(self._ids), size):
                yield self._ids[start : start + size]
            return
        last = 0
        while True:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT trader_id FROM {CANDIDATES} WHERE trader_id > %s ORDER BY trader_id LIMIT %s",
                    [last, size],
                )
                ids = [row[0] for row in cursor.fetchall()]
            if not ids:
                return
            yield ids
            last = ids[-1]


CANDIDATES = "reassess_candidates"

# One statement: every trader whose computed score or grade differs from the stored one,
# that is flagged, or that holds a measure due to start or end. Everyone else is settled.
_CANDIDATES = """
CREATE TEMPORARY TABLE {candidates} AS
SELECT t.id AS trader_id
FROM {trader} AS t
LEFT JOIN ({scores}) AS s ON s.trader_id = t.id
WHERE t.needs_reassessment
   OR t.score <> coalesce(s.score, %s)
   OR t.grade <> coalesce(s.grade, %s)
   OR t.id IN (
       SELECT r.trader_id FROM {restriction} AS r
       WHERE (r.state = %s AND r.objection_deadline <= %s) OR (r.state = %s AND r.ends_at <= %s)
   )
"""


def reassessment_candidates(now: dt.datetime, today: dt.date, rules: ScoringRules) -> Candidates:
    """Who a full run must reassess as of `now`: one set-based statement, whatever the size.

    A trader not among them has nothing to change: its score and grade are what is stored,
    nothing is due, and anything else that could move its measures (a violation decided, a
    measure set by hand, a policy activated) flags it.
    """
    top = grade_for(MAX_SCORE, rules.cutoffs, rules.lowest_grade)
    if connection.vendor != "postgresql":
        computed = _all_scores(today, rules)
        due = set(due_restriction_trader_ids(now))
        ids = [
            pk
            for pk, score, grade, flagged in Trader.objects.order_by("pk").values_list(
                "pk", "score", "grade", "needs_reassessment"
            )
            if flagged or pk in due or computed.get(pk, BulkScore(MAX_SCORE, top, 0))[:2] != (score, grade)
        ]
        return Candidates(len(ids), ids)
    scores, params = scores_sql(today, rules=rules, every_trader=False)
    sql = _CANDIDATES.format(
        candidates=CANDIDATES,
        trader=Trader._meta.db_table,
        restriction=Restriction._meta.db_table,
        scores=scores,
    )
    params += [MAX_SCORE, top, Restriction.State.PROPOSED, now, Restriction.State.ACTIVE, now]
    # The temporary table outlives the transaction (ON COMMIT PRESERVE ROWS, the default);
    # the timeout is lifted for this statement only: it scores the whole register.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 0")
        cursor.execute(f"DROP TABLE IF EXISTS {CANDIDATES}")
        cursor.execute(sql, params)
        total = cursor.rowcount
        cursor.execute(f"ALTER TABLE {CANDIDATES} ADD PRIMARY KEY (trader_id)")
    return Candidates(total)


def _all_scores(today: dt.date, rules: ScoringRules) -> dict[int, BulkScore]:
    result = {}
    for trader_id, violations in scored_violations().items():
        assessment = assess(violations, today, rules)
        result[trader_id] = BulkScore(assessment.score, assessment.grade, assessment.total_deduction)
    return result


# --- a trader's credit record, for the trader page ----------------------------------------


@dataclass(frozen=True)
class BreakdownLine:
    """One violation's share of the score, with the violation it explains."""

    violation: Violation
    line: scoring.Line

    @property
    def points(self) -> int:
        return self.line.points

    @property
    def age_days(self) -> int:
        return self.line.age_days

    @property
    def weight(self) -> Decimal:
        return scoring.to_decimal(self.line.weight, 3)

    @property
    def repeat(self) -> int:
        return self.line.repeat

    @property
    def factor(self) -> Decimal:
        return scoring.to_decimal(self.line.factor, 1)

    @property
    def deduction(self) -> Decimal:
        return scoring.to_decimal(self.line.deduction)

    @property
    def expires_on(self) -> dt.date:
        return self.line.expires_on


@dataclass(frozen=True)
class TraderBreakdown:
    """Why the score is what it is, as of `as_of`, under the active policy."""

    as_of: dt.date
    policy: Policy
    rules: PolicyRules
    assessment: scoring.Assessment
    lines: tuple[BreakdownLine, ...]
    # Confirmed but past their validity: no deduction, though they still count as repeats.
    expired: tuple[Violation, ...]

    @property
    def score(self) -> int:
        return self.assessment.score

    @property
    def grade(self) -> str:
        return self.assessment.grade


def trader_breakdown(trader: Trader, as_of: dt.date | None = None) -> TraderBreakdown:
    """Score, grade and per-violation breakdown, computed live exactly as trader_reassess
    computes them: its query for the confirmed violations and its call of scoring.assess,
    under the active policy. Two queries, however many violations the trader has."""
    as_of = as_of or timezone.localdate()
    policy, rules = active_policy()
    violations = confirmed_violations(trader)
    assessment = assess_violations(violations, as_of, rules)
    by_id = {v.id: v for v in violations}
    lines = tuple(BreakdownLine(by_id[line.violation_id], line) for line in assessment.breakdown)
    counted = {line.violation_id for line in assessment.breakdown}
    expired = sorted(
        (v for v in violations if v.id not in counted and v.occurred_on <= as_of),
        key=lambda v: (v.occurred_on, v.id),
        reverse=True,
    )
    return TraderBreakdown(
        as_of=as_of,
        policy=policy,
        rules=rules,
        assessment=assessment,
        lines=lines,
        expired=tuple(expired),
    )


def trader_score_history(trader: Trader, limit: int = 366) -> list[ScoreHistory]:
    """The newest `limit` score changes, oldest first (one query)."""
    newest = ScoreHistory.objects.filter(trader=trader).order_by("-at", "-id")[:limit]
    return list(reversed(newest))


@dataclass(frozen=True)
class TraderMeasures:
    proposed: list[Restriction]
    active: list[Restriction]
    past: list[Restriction]  # lifted or withdrawn, newest first, at most the limit
    more_past: bool  # older ones exist beyond the limit


def trader_measures(trader: Trader, past_limit: int = 20) -> TraderMeasures:
    """Proposed, active and the newest past measures of a trader (two queries)."""
    base = Restriction.objects.filter(trader=trader).select_related("created_by")
    # At most one unlifted measure per kind (a database constraint): a short list.
    unlifted = list(base.filter(state__in=UNLIFTED_STATES).order_by("-noticed_at", "-id"))
    past = list(base.exclude(state__in=UNLIFTED_STATES).order_by("-noticed_at", "-id")[: past_limit + 1])
    return TraderMeasures(
        proposed=[r for r in unlifted if r.state == Restriction.State.PROPOSED],
        active=[r for r in unlifted if r.state == Restriction.State.ACTIVE],
        past=past[:past_limit],
        more_past=len(past) > past_limit,
    )


@dataclass(frozen=True)
class TraderRemedies:
    """A trader's objections, appeals and credit repair applications, newest first; the
    `more_*` flags say a list was cut at the limit."""

    objections: list[Objection]
    appeals: list[Appeal]
    repairs: list[RepairApplication]
    more_objections: bool = False
    more_appeals: bool = False
    more_repairs: bool = False


def trader_remedies(
    trader: Trader, limit: int = 20, *, objections: bool = True, appeals: bool = True, repairs: bool = True
) -> TraderRemedies:
    """One query per kind asked for, with what a row shows (its measure or violation, who
    entered and who decided it)."""
    found: dict[str, list] = {"objections": [], "appeals": [], "repairs": []}
    if objections:
        found["objections"] = list(
            Objection.objects.filter(restriction__trader=trader)
            .select_related("restriction", "recorded_by", "decided_by")
            .order_by("-recorded_at", "-id")[: limit + 1]
        )
    if appeals:
        found["appeals"] = list(
            Appeal.objects.filter(violation__trader=trader)
            .select_related("violation__type", "filed_by", "decided_by")
            .order_by("-filed_at", "-id")[: limit + 1]
        )
    if repairs:
        found["repairs"] = list(
            RepairApplication.objects.filter(restriction__trader=trader)
            .select_related("restriction", "filed_by", "decided_by")
            .order_by("-filed_at", "-id")[: limit + 1]
        )
    return TraderRemedies(
        objections=found["objections"][:limit],
        appeals=found["appeals"][:limit],
        repairs=found["repairs"][:limit],
        more_objections=len(found["objections"]) > limit,
        more_appeals=len(found["appeals"]) > limit,
        more_repairs=len(found["repairs"]) > limit,
    )
