"""Reads for scoring and measures."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.db.models import Q

from penalties.models import Restriction
from penalties.scoring import MAX_SCORE, ScoringRules, assess
from penalties.scoring_sql import BulkScore, bulk_assessments, scored_violations
from traders.models import Trader


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


@dataclass(frozen=True)
class Rescore:
    """A trader whose score moved while its grade stayed: no measure can change."""

    trader_id: int
    old_score: int
    grade: str
    score: int
    total_deduction: Decimal


def nightly_candidates(
    now: dt.datetime, today: dt.date, rules: ScoringRules
) -> tuple[list[Rescore], list[int]]:
    """Split the traders the nightly job must look at, found set-based.

    The first list only needs its score rewritten (the bulk path); the second needs a full
    reassessment: grade moved, measures due to start or end, or flagged. Scores come from
    one SQL pass that gives exactly scoring.assess's numbers (on SQLite, from assess).
    """
    computed = _all_scores(today, rules)
    due = set(due_restriction_trader_ids(now))
    rescore, full = [], []
    stored = Trader.objects.order_by("pk").values_list("pk", "score", "grade", "needs_reassessment")
    for pk, score, grade, flagged in stored.iterator(chunk_size=5000):
        new = computed.get(pk) or BulkScore(MAX_SCORE, rules.cutoffs[0][0], Decimal("0.00"))
        if flagged or pk in due or new.grade != grade:
            full.append(pk)
        elif new.score != score:
            rescore.append(Rescore(pk, score, grade, new.score, new.total_deduction))
    return rescore, full


def _all_scores(today: dt.date, rules: ScoringRules) -> dict[int, BulkScore]:
    if connection.vendor == "postgresql":
        return bulk_assessments(today, rules=rules)
    result = {}
    for trader_id, violations in scored_violations().items():
        assessment = assess(violations, today, rules)
        result[trader_id] = BulkScore(assessment.score, assessment.grade, assessment.total_deduction)
    return result
