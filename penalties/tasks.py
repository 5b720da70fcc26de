"""Scoring jobs. Thin: ids in, services do the work. Routed to the `scoring` queue."""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.utils import timezone

from creditledger.locks import advisory_lock
from creditledger.tasks import ReliableTask
from penalties import selectors
from penalties.scoring import ScoringRules
from penalties.services import active_policy
from penalties.services.restrictions import trader_reassess_if_free, traders_rescore

log = logging.getLogger(__name__)

SWEEP_BATCH = 200
SWEEP_SECONDS = 50  # beat runs the sweep every minute; leave before the next one
RESCORE_BATCH = 1000


@shared_task(base=ReliableTask, bind=True)
def reassess_trader(self, trader_id: int) -> bool:
    """Reassess one trader now. Safe to run twice: the second run changes nothing."""
    outcome = trader_reassess_if_free(trader_id=trader_id, wait=True)
    return bool(outcome and outcome.changed)


@shared_task(base=ReliableTask)
def sweep_reassessments() -> int:
    """Reassess flagged traders and those with measures due; a lost message only delays."""
    done = 0
    with advisory_lock("penalties.sweep") as taken:
        if not taken:
            log.info("sweep_reassessments: another sweep is running")
            return 0
        attempted: set[int] = set()
        started = time.monotonic()
        while time.monotonic() - started < SWEEP_SECONDS:
            ids = selectors.traders_due_for_sweep(timezone.now(), limit=SWEEP_BATCH, exclude=attempted)
            if not ids:
                break
            for trader_id in ids:
                attempted.add(trader_id)
                try:
                    trader_reassess_if_free(trader_id=trader_id)
                except Exception:  # one trader's failure must not stop the sweep
                    log.exception("sweep_reassessments: trader %s failed", trader_id)
                done += 1
    return done


@shared_task(base=ReliableTask)
def nightly_reassess() -> int:
    """Reassess every trader whose score decayed, whose violations expired, or whose
    measures are due, found set-based; each trader under its own row lock."""
    with advisory_lock("penalties.nightly") as taken:
        if not taken:
            log.info("nightly_reassess: another run is going on")
            return 0
        return reassess_due(timezone.now())


def reassess_due(now) -> int:
    """Bulk-rewrite decayed scores, then fully reassess the traders whose grade moved or
    whose measures are due. Returns how many traders changed."""
    _, rules = active_policy()
    scoring_rules = ScoringRules(cutoffs=rules.cutoffs, points_by_type=rules.points_overrides)
    rescore, full = selectors.nightly_candidates(now, timezone.localdate(now), scoring_rules)
    changed = 0
    for start in range(0, len(rescore), RESCORE_BATCH):
        changed += traders_rescore(rows=rescore[start : start + RESCORE_BATCH], now=now)
    for trader_id in full:
        try:
            outcome = trader_reassess_if_free(trader_id=trader_id, now=now)
        except Exception:
            log.exception("nightly_reassess: trader %s failed", trader_id)
            continue
        changed += bool(outcome and outcome.changed)
    log.info(
        "nightly_reassess: %s rescored in bulk, %s reassessed, %s changed", len(rescore), len(full), changed
    )
    return changed
