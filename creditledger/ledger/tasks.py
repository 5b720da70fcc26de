"""Periodic ledger jobs. Thin: the work is in services."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import connection, transaction

from creditledger.ledger.services import checkpoint_create

log = logging.getLogger(__name__)

# pg_try_advisory_xact_lock key for the checkpoint sweep: "ledgcp" in ASCII. Distinct from
# the append lock, so signing never blocks writers.
CHECKPOINT_LOCK_KEY = 0x6C656467_6370


def _try_lock(key: int) -> bool:
    if connection.vendor != "postgresql":
        return True  # SQLite: one writer at a time anyway, and Checkpoint.seq is unique
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [key])
        return cursor.fetchone()[0]


@shared_task(ignore_result=True)
def ledger_checkpoint() -> int | None:
    """Sign the ledger head; return its seq, or None when skipped.

    Safe to run twice: a run that finds another one holding the lock leaves, and the
    service signs nothing when the head has not moved since the last checkpoint.
    """
    with transaction.atomic():
        if not _try_lock(CHECKPOINT_LOCK_KEY):
            log.info("ledger_checkpoint: another run holds the lock, skipping")
            return None
        checkpoint = checkpoint_create()
    if checkpoint is None:
        log.debug("ledger_checkpoint: head unchanged, nothing to sign")
        return None
    log.info("ledger_checkpoint: signed seq %s", checkpoint.seq)
    return checkpoint.seq
