"""Scoring jobs. Thin: ids in, services do the work. Routed to the `scoring` queue."""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from creditledger.locks import advisory_lock
from creditledger.tasks import ReliableTask
from penalties import selectors
from penalties.services import reassessment
from penalties.services.reassessment import trader_reassess_if_free

log = logging.getLogger(__name__)

SWEEP_BATCH = 500
SWEEP_SECONDS = 50  # beat runs the sweep every minute; leave before the next one
TURN_MARGIN_SECONDS = 60  # a nightly turn stops this long before its soft time limit


@shared_task(base=ReliableTask, bind=True)
def reassess_trader(self, trader_id: int) -> bool:
    """Reassess one trader now. Safe to run twice: the second run changes nothing."""
    outcome = trader_reassess_if_free(trader_id=trader_id, wait=True)
    return bool(outcome and outcome.changed)


@shared_task(base=ReliableTask)
def sweep_reassessments() -> int:
    """Reassess flagged traders and those with measures due, in batches; a lost message
    only delays. Returns how many traders were planned."""
    with advisory_lock("penalties.sweep") as taken:
        if not taken:
            log.info("sweep_reassessments: another sweep is running")
            return 0
        report = reassessment.Report()
        attempted: set[int] = set()
        skipped: list[int] = []
        started = time.monotonic()
        while time.monotonic() - started < SWEEP_SECONDS:
            run = reassessment.Run.start()
            ids = selectors.traders_due_for_sweep(run.now, limit=SWEEP_BATCH, exclude=attempted)
            if not ids:
                break
            attempted.update(ids)
            skipped += reassessment.reassess_ids(ids, run, report)
        reassessment.traders_flag(skipped)
    return report.planned


@shared_task(base=ReliableTask, bind=True)
def nightly_reassess(self) -> int:
    """Reassess every trader whose score decayed, whose violations expired, or whose
    measures are due, set-based. Returns how many traders changed.

    A register too big for one task's time limit is done in turns: the run stops between
    two batches before the soft limit and queues the next turn, which finds only what is
    left (the candidates statement recomputes it).
    """
    with advisory_lock("penalties.nightly") as taken:
        if not taken:
            log.info("nightly_reassess: another run is going on")
            return 0
        stop_at = time.monotonic() + max(1, settings.CELERY_TASK_SOFT_TIME_LIMIT - TURN_MARGIN_SECONDS)
        report = _reassess_all(timezone.now(), stop_at)
    if not report.finished:
        log.info("nightly_reassess: out of time for this turn; queueing the next")
        self.apply_async()
    return report.changed


def reassess_due(now, stop_at: float | None = None) -> int:
    """The nightly job's work as of `now`; returns how many traders changed."""
    return _reassess_all(now, stop_at).changed


def _reassess_all(now, stop_at: float | None) -> reassessment.Report:
    report = reassessment.reassess_all(now=now, stop_at=stop_at)
    log.info(
        "nightly_reassess: %s candidates, %s changed, %s held elsewhere, %s failed%s",
        report.candidates,
        report.changed,
        report.skipped,
        len(report.failed),
        "" if report.finished else ", stopped for the next turn",
    )
    return report
