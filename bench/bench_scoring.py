"""Scoring and measures at scale.

1. Full reassessment of every trader (the nightly job's path: one SQL pass finds who
   moved, decayed scores are rewritten in bulk, grade moves get a full reassessment with
   measures), on BENCH_TRADERS traders / BENCH_VIOLATIONS violations seeded by seed_demo;
   first cold (nothing assessed yet), then warm (the next day: mostly decay). Reference:
   one hand-written SQL statement computing the same scores for every trader.
2. Time from a violation's confirmation to its measure recorded by a live worker (the two
   ledger entries' times), median and p99 over BENCH_CONFIRMATIONS confirmations paced
   like officers' clicks. Reference: the reassessment itself, in process.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

TRADERS = int(os.environ.get("BENCH_TRADERS", "100000"))
VIOLATIONS = int(os.environ.get("BENCH_VIOLATIONS", "500000"))
CONFIRMATIONS = int(os.environ.get("BENCH_CONFIRMATIONS", "200"))
PACE_SECONDS = 0.1
ROOT = Path(__file__).resolve().parent.parent


def run():
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from penalties.scoring import ScoringRules
    from penalties.scoring_sql import scores_sql
    from penalties.selectors import active_policy
    from penalties.tasks import reassess_due
    from traders.models import Trader

    have = Trader.objects.count()
    if have < TRADERS:
        started = time.perf_counter()
        call_command("seed_demo", traders=TRADERS - have, violations=VIOLATIONS, seed=7, verbosity=0)
        yield ("seed_demo (not timed below)", time.perf_counter() - started, "s")
    _reset_assessments()
    traders = Trader.objects.count()

    _, rules = active_policy()
    scoring_rules = ScoringRules(cutoffs=rules.cutoffs, points_by_type=rules.points_overrides)
    now = timezone.now()
    sql, params = scores_sql(timezone.localdate(now), rules=scoring_rules)
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(f"CREATE TEMP TABLE bench_scores AS {sql}", params)
        sql_seconds = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_scores")
    sql_rate = traders / sql_seconds

    started = time.perf_counter()
    changed = reassess_due(now)
    cold = time.perf_counter() - started
    yield ("full reassessment, cold: traders/s", traders / cold, "traders/s", "one SQL statement", sql_rate)
    yield ("  traders changed", changed, "traders")
    yield ("  elapsed", cold, "s")

    started = time.perf_counter()
    changed = reassess_due(now + dt.timedelta(days=1))
    warm = time.perf_counter() - started
    yield (
        "full reassessment, next day: traders/s",
        traders / warm,
        "traders/s",
        "one SQL statement",
        sql_rate,
    )
    yield ("  traders changed", changed, "traders")

    yield from _confirmation_latency()


def _reset_assessments() -> None:
    from django.db import connection

    from penalties.models import Restriction, ScoreHistory
    from traders.models import Trader

    Restriction.objects.all().delete()
    ScoreHistory.objects.all().delete()
    Trader.objects.update(
        score=1000,
        grade="A",
        status="normal",
        version=1,
        grade_since=None,
        assessed_at=None,
        needs_reassessment=False,
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # fresh statistics after the bulk reset


def _confirmation_latency():
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from creditledger.ledger.actors import Actor
    from creditledger.ledger.models import LedgerEntry
    from penalties.models import Violation, ViolationType
    from penalties.services import trader_reassess, violation_confirm, violation_record
    from traders.models import Trader

    user_model = get_user_model()
    recorder, _ = user_model.objects.get_or_create(username="bench-recorder", defaults={"is_superuser": True})
    decider, _ = user_model.objects.get_or_create(username="bench-decider", defaults={"is_superuser": True})
    grave = ViolationType.objects.get(code="counterfeit-large-scale")
    targets = list(
        Trader.objects.filter(restrictions__isnull=True, violations__isnull=True).order_by("pk")[
            : CONFIRMATIONS + 20
        ]
    )
    if len(targets) < CONFIRMATIONS + 20:
        raise SystemExit("not enough clean traders for the latency bench")
    # Reference: the reassessment's own cost in process, on traders the worker won't see.
    inline = []
    for trader in targets[CONFIRMATIONS:]:
        violation = violation_record(
            actor=Actor.for_user(recorder),
            trader=trader,
            type=grave,
            occurred_on=timezone.localdate(),
            source="inspection",
            description="bench",
        )
        Violation.objects.filter(pk=violation.pk).update(
            status="confirmed", decided_by=decider, decided_at=timezone.now()
        )
        started = time.perf_counter()
        trader_reassess(trader=trader)
        inline.append(time.perf_counter() - started)

    worker = _start_worker()
    try:
        for trader in targets[:CONFIRMATIONS]:
            violation = violation_record(
                actor=Actor.for_user(recorder),
                trader=trader,
                type=grave,
                occurred_on=timezone.localdate(),
                source="inspection",
                description="bench",
            )
            violation_confirm(actor=Actor.for_user(decider), violation=violation)
            time.sleep(PACE_SECONDS)
        codes = [t.uscc for t in targets[:CONFIRMATIONS]]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = (
                LedgerEntry.objects.filter(trader_uscc__in=codes, action="restriction.proposed")
                .values("trader_uscc")
                .distinct()
                .count()
            )
            if done == len(codes):
                break
            time.sleep(0.5)
    finally:
        _stop(worker)
    confirmed = dict(
        LedgerEntry.objects.filter(trader_uscc__in=codes, action="violation.confirmed").values_list(
            "trader_uscc", "at"
        )
    )
    recorded: dict[str, dt.datetime] = {}
    for uscc, at in LedgerEntry.objects.filter(
        trader_uscc__in=codes, action="restriction.proposed"
    ).values_list("trader_uscc", "at"):
        recorded[uscc] = min(at, recorded.get(uscc, at))
    latencies = sorted((recorded[c] - confirmed[c]).total_seconds() * 1000 for c in codes if c in recorded)
    if len(latencies) < len(codes):
        yield ("measures NOT recorded by the worker", len(codes) - len(latencies), "traders")
    reference = statistics.median(inline) * 1000
    yield (
        "confirmation → measure recorded, median",
        statistics.median(latencies),
        "ms",
        "reassessment in process",
        reference,
    )
    yield (
        "confirmation → measure recorded, p99",
        latencies[int(0.99 * (len(latencies) - 1))],
        "ms",
        "reassessment in process",
        reference,
    )


def _start_worker() -> subprocess.Popen:
    celery = str(Path(sys.executable).parent / "celery")
    var = Path(os.environ.get("VAR_DIR", ROOT / "var"))
    var.mkdir(parents=True, exist_ok=True)
    log = (var / "bench-worker.log").open("ab")
    process = subprocess.Popen(
        [
            celery,
            "-A",
            "creditledger",
            "worker",
            "-Q",
            "scoring,celery",
            "-c",
            "2",
            "--without-mingle",
            "--without-gossip",
            "--loglevel=WARNING",
            "-n",
            "bench@%h",
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    time.sleep(4)  # let it connect before the first confirmation
    return process


def _stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
