"""Heartbeats of the background processes, kept in the database (see models.Heartbeat)."""

from __future__ import annotations

import datetime as dt
import logging

from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

from creditledger.ops.models import Heartbeat

log = logging.getLogger(__name__)

BEAT = "beat"


def worker_name(queue: str) -> str:
    return f"worker:{queue}"


def stamp(name: str, at: dt.datetime | None = None) -> None:
    """Record that `name` is alive now: one upsert."""
    Heartbeat.objects.bulk_create(
        [Heartbeat(name=name, at=at or timezone.now())],
        update_conflicts=True,
        unique_fields=["name"],
        update_fields=["at"],
    )


def stamp_quietly(name: str) -> None:
    """stamp() for processes that must carry on when the database is away (beat): a missed
    stamp only makes readiness report the process late, which is then the truth."""
    # Beat has no request cycle to drop a dead or expired connection for it. (Inside a
    # transaction — a test — that would close the transaction's own connection.)
    if not connection.in_atomic_block:
        close_old_connections()
    try:
        stamp(name)
    except DatabaseError:
        log.warning("could not record the %s heartbeat", name, exc_info=True)
        if not connection.in_atomic_block:
            close_old_connections()


def ages(names: list[str], now: dt.datetime | None = None) -> dict[str, float | None]:
    """Seconds since each name's last heartbeat; None for one never seen."""
    now = now or timezone.now()
    seen = dict(Heartbeat.objects.filter(name__in=names).values_list("name", "at"))
    return {name: (now - seen[name]).total_seconds() if name in seen else None for name in names}
