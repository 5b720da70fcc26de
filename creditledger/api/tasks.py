"""Webhook jobs, on the `webhooks` queue. Thin: the work is in webhook_services."""

from __future__ import annotations

import logging
import time

from celery import shared_task

from creditledger.api.webhook_services import (
    deliveries_generate,
    deliveries_lease_due,
    delivery_attempt,
    enqueue_delivery,
)
from creditledger.locks import advisory_lock
from creditledger.tasks import ReliableTask

log = logging.getLogger(__name__)

DISPATCH_LOCK = "webhooks.dispatch"
DISPATCH_SECONDS = 8  # beat starts a run every 10 s; leave before the next one


@shared_task(base=ReliableTask)
def webhooks_dispatch() -> int:
    """Make deliveries from the ledger entries committed since the last run, then queue
    every delivery that is due (new ones and retries). Returns how many were queued.

    Runs never overlap (advisory lock); a run that finds the lock taken leaves at once.
    """
    with advisory_lock(DISPATCH_LOCK) as taken:
        if not taken:
            log.info("webhooks_dispatch: another run holds the lock")
            return 0
        started = time.monotonic()
        while not deliveries_generate().caught_up:
            if time.monotonic() - started > DISPATCH_SECONDS:
                break  # a backlog: queue what is due, the next run goes on
        queued = 0
        for delivery_id, attempts in deliveries_lease_due():
            try:
                enqueue_delivery(delivery_id, attempts)
            except Exception:  # the broker is down: the lease runs out, a later run retries
                log.exception("webhooks_dispatch: could not queue delivery %s", delivery_id)
                break
            queued += 1
    return queued


@shared_task(base=ReliableTask)
def deliver(delivery_id: int, attempts: int | None = None) -> str:
    """One attempt at one delivery. Safe to run twice: a duplicate finds it claimed."""
    return delivery_attempt(delivery_id=delivery_id, attempts=attempts)


@shared_task(base=ReliableTask)
def idempotency_purge() -> int:
    """Forget stored answers older than IDEMPOTENCY_KEEP_DAYS: a platform retries within
    minutes or hours, never weeks, and the table would otherwise only grow."""
    from django.conf import settings
    from django.utils import timezone

    from creditledger.api.models import IdempotencyRecord

    cutoff = timezone.now() - timezone.timedelta(days=settings.IDEMPOTENCY_KEEP_DAYS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    log.info("idempotency_purge: %s stored answers forgotten", deleted)
    return deleted
