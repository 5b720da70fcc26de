"""Reads over the ledger."""

from __future__ import annotations

from django.db.models import QuerySet

from creditledger.ledger.models import Checkpoint, LedgerEntry

# The actions that change what a platform must know about a trader: the change feed
# carries these and nothing else.
STATUS_ACTIONS = (
    "trader.registered",
    "shop.registered",
    "violation.confirmed",
    "violation.overturned",
    "score.changed",
    "trader.status_changed",
    "restriction.proposed",
    "restriction.applied",
    "restriction.withdrawn",
    "restriction.lifted",
    "restriction.acknowledged",
    "policy.activated",
)


def changes_after(seq: int, limit: int) -> QuerySet[LedgerEntry]:
    """Status-relevant entries after `seq`, oldest first, at most `limit` of them.

    Appends commit in seq order (see services.ADVISORY_LOCK_KEY), so a reader that resumes
    after the last seq it saw never misses an entry that commits later.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    return LedgerEntry.objects.filter(seq__gt=seq, action__in=STATUS_ACTIONS).order_by("seq")[:limit]


def latest_checkpoint() -> Checkpoint | None:
    return Checkpoint.objects.order_by("-seq").first()


def trader_trail(uscc: str, limit: int) -> QuerySet[LedgerEntry]:
    """A trader's entries, newest first (the trader_uscc, seq index serves it)."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    return LedgerEntry.objects.filter(trader_uscc=uscc).order_by("-seq")[:limit]
