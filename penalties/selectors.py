"""Reads for scoring and measures."""

from __future__ import annotations

import datetime as dt

from django.db.models import Q

from penalties.models import Restriction
from penalties.scoring import ScoringRules
from penalties.scoring_sql import bulk_scores
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


def traders_due_nightly(now: dt.datetime, today: dt.date, rules: ScoringRules) -> list[int]:
    """Traders whose score or grade moved since their last assessment (violations decaying
    or expiring), whose measures are due to start or end, or who are flagged.

    The scores come from one set-based SQL pass, which gives exactly scoring.assess's numbers.
    """
    computed = bulk_scores(today, rules=rules)
    stored = Trader.objects.values_list("pk", "score", "grade", "needs_reassessment").iterator(
        chunk_size=5000
    )
    ids = [
        pk
        for pk, score, grade, flagged in stored
        if flagged or computed.get(pk, (1000, "A")) != (score, grade)
    ]
    ids += due_restriction_trader_ids(now)
    return sorted(set(ids))
