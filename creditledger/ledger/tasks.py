"""Periodic ledger jobs. Thin: the work is in services."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import transaction

from creditledger.ledger.services import checkpoint_create
from creditledger.locks import try_advisory_xact_lock
from creditledger.tasks import ReliableTask

log = logging.getLogger(__name__)

CHECKPOINT_LOCK = "ledger_checkpoint"


@shared_task(base=ReliableTask)
def ledger_checkpoint() -> int | None:
    """Sign the ledger head; return its seq, or None when skipped.

    Safe to run twice: a run that finds another one holding the lock leaves, and the
    service signs nothing when the head has not moved since the last checkpoint.
    """
    with transaction.atomic():
        if not try_advisory_xact_lock(CHECKPOINT_LOCK):
            log.info("ledger_checkpoint: another run holds the lock, skipping")
            return None
        checkpoint = checkpoint_create()
    if checkpoint is None:
        log.debug("ledger_checkpoint: head unchanged, nothing to sign")
        return None
    log.info("ledger_checkpoint: signed seq %s", checkpoint.seq)
    return checkpoint.seq
