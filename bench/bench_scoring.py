"""Reassessment at national scale.

Size: BENCH_SIZE=100k (100,000 traders / 500,000 violations, the default) or 1m
(1,000,000 / 5,000,000); BENCH_TRADERS / BENCH_VIOLATIONS override. Seeded by seed_demo
once (its own figures are printed then, against a COPY of the same rows) and kept.

1. `reassess --all` (penalties.services.reassessment.reassess_all), each run in a fresh
   child process so that its peak RSS is its own: cold (every assessment reset), the next
   day (mostly decay), and the same moment again (nothing changed). Reference, timed in
   the same run between the others (median): the SQL scoring statement for every trader
   (penalties/scoring_sql.py), as CREATE TEMP TABLE AS. The cold run is also set against
   the statement plus a COPY of as many rows as it wrote (its measures, history rows,
   ledger entries and trader rows, COPY'd into empty copies of their tables).
   The figures are kept in $VAR_DIR/bench-scoring-SIZE.json; a run at one size prints
   how time and peak RSS grew from the other size's last run.
2. Confirmation → measure recorded by a live worker, median and p99 over
   BENCH_CONFIRMATIONS (200) confirmations paced like officers' clicks, while a cold bulk
   run goes on in another process. Reference: the per-trader reassessment in process.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = {"100k": (100_000, 500_000), "1m": (1_000_000, 5_000_000)}
SIZE = os.environ.get("BENCH_SIZE", "100k")
TRADERS = int(os.environ.get("BENCH_TRADERS", SIZES.get(SIZE, SIZES["100k"])[0]))
VIOLATIONS = int(os.environ.get("BENCH_VIOLATIONS", SIZES.get(SIZE, SIZES["100k"])[1]))
CONFIRMATIONS = int(os.environ.get("BENCH_CONFIRMATIONS", "200"))
PACE_SECONDS = 0.1
ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("VAR_DIR", ROOT / "var"))


def run():
    from traders.models import Trader

    if Trader.objects.count() < TRADERS:
        yield from _seed()
    traders = Trader.objects.count()
    yield ("traders", traders, "traders")

    statement = []
    _reset_assessments()
    statement.append(_statement_seconds())
    now = dt.datetime.now(dt.UTC)
    cold = _child(now)
    statement.append(_statement_seconds())
    copy_seconds = _copy_written_seconds(cold["written_since"])
    next_day = _child(now + dt.timedelta(days=1))
    statement.append(_statement_seconds())
    unchanged = _child(now + dt.timedelta(days=1, minutes=1))
    statement.append(_statement_seconds())
    sql = statistics.median(statement)

    yield ("SQL scoring statement (median of 4)", sql, "s")
    for name, child in (("cold", cold), ("next day", next_day), ("nothing changed", unchanged)):
        yield (f"reassess --all, {name}", child["seconds"], "s", "the SQL statement", sql)
        yield (f"  {name}: traders/s", traders / child["seconds"], "traders/s")
        yield (f"  {name}: candidates, changed", child["candidates"], f"/ {child['changed']} changed")
        yield (f"  {name}: peak RSS", child["maxrss_mb"], "MB")
        yield (f"  {name}: CPU in the Python process", child["cpu_seconds"], "s")
    yield ("  cold: rows written", cold["written"], "rows")
    yield ("  COPY of as many rows", copy_seconds, "s")
    yield ("reassess --all, cold", cold["seconds"], "s", "statement + COPY", sql + copy_seconds)
    yield from _growth({"sql": sql, "cold": cold, "next_day": next_day, "unchanged": unchanged})

    yield from _confirmation_latency(now)


# --- seeding and resetting ----------------------------------------------------------------------


def _seed():
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_seed import seed_figures

    yield from seed_figures(TRADERS, VIOLATIONS)


def _reset_assessments() -> None:
    """Every trader back to unassessed and flagged as seed_demo leaves them (those with a
    confirmed violation); statistics fresh."""
    from django.db import connection
    from django.db.models import Exists, OuterRef

    from penalties.models import Restriction, ScoreHistory, Violation
    from traders.models import Trader

    with connection.cursor() as cursor:
        for model in (ScoreHistory, Restriction):
            cursor.execute(f"TRUNCATE {model._meta.db_table} CASCADE")
    confirmed = Violation.objects.filter(trader=OuterRef("pk"), status=Violation.Status.CONFIRMED)
    Trader.objects.update(
        score=1000,
        grade="A",
        status="normal",
        version=1,
        grade_since=None,
        assessed_at=None,
        needs_reassessment=Exists(confirmed),
    )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE traders_trader")
        cursor.execute("ANALYZE")


def _statement_seconds() -> float:
    from django.db import connection
    from django.utils import timezone

    from penalties.scoring_sql import scores_sql
    from penalties.selectors import active_policy, scoring_rules

    sql, params = scores_sql(timezone.localdate(), rules=scoring_rules(active_policy()[1]))
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(f"CREATE TEMP TABLE bench_scores AS {sql}", params)
        seconds = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_scores")
    return seconds


# --- one bulk run in a child process -----------------------------------------------------------


def _child(now: dt.datetime) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "child", now.isoformat()],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def child(now_iso: str) -> None:
    """Run reassess_all as of `now_iso` and print its figures as one JSON line."""
    import django

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creditledger.settings")
    django.setup()
    from creditledger.ledger.models import LedgerEntry
    from penalties.services.reassessment import reassess_all

    head = LedgerEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    started, cpu = time.perf_counter(), time.process_time()
    report = reassess_all(now=dt.datetime.fromisoformat(now_iso))
    seconds = time.perf_counter() - started
    figures = {
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu,
        "candidates": report.candidates,
        "changed": report.changed,
        "written": report.written,
        "written_since": head,
        "maxrss_mb": _peak_mb(),
    }
    print(json.dumps(figures))


def _peak_mb() -> float:
    """This process's own peak RSS (VmHWM): ru_maxrss would carry over the parent's peak
    through fork and exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _copy_written_seconds(ledger_head: int) -> float:
    """A COPY of the rows a cold run wrote, into empty copies of their tables (indexes too)."""
    from django.db import connection

    written = {
        "penalties_restriction": "SELECT * FROM penalties_restriction",
        "penalties_scorehistory": "SELECT * FROM penalties_scorehistory",
        "ledger_ledgerentry": f"SELECT * FROM ledger_ledgerentry WHERE seq > {int(ledger_head)}",
        "traders_trader": "SELECT * FROM traders_trader WHERE version > 1",
    }
    total = 0.0
    with connection.cursor() as cursor:
        raw = cursor.cursor
        for table, select in written.items():
            buffer = tempfile.TemporaryFile("w+")  # on disk: the rows may be gigabytes
            raw.copy_expert(f"COPY ({select}) TO STDOUT", buffer)
            buffer.seek(0)
            cursor.execute(f"CREATE TEMP TABLE bench_copy (LIKE {table} INCLUDING ALL)")
            started = time.perf_counter()
            raw.copy_expert("COPY bench_copy FROM STDIN", buffer)
            total += time.perf_counter() - started
            cursor.execute("DROP TABLE bench_copy")
    return total


def _growth(figures: dict):
    VAR.mkdir(parents=True, exist_ok=True)
    (VAR / f"bench-scoring-{SIZE}.json").write_text(json.dumps(figures))
    other = {"1m": "100k", "100k": "1m"}.get(SIZE)
    path = VAR / f"bench-scoring-{other}.json"
    if not other or not path.exists():
        return
    small, large = (
        (json.loads(path.read_text()), figures) if SIZE == "1m" else (figures, json.loads(path.read_text()))
    )
    for phase in ("cold", "next_day", "unchanged"):
        yield (f"growth 100k → 1m, {phase}: time", large[phase]["seconds"] / small[phase]["seconds"], "x")
        yield (
            f"growth 100k → 1m, {phase}: peak RSS",
            large[phase]["maxrss_mb"] / small[phase]["maxrss_mb"],
            "x",
        )
    yield ("growth 100k → 1m, SQL statement: time", large["sql"] / small["sql"], "x")


# --- a live worker's latency while a bulk run goes on ------------------------------------------


def _confirmation_latency(now: dt.datetime):
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
        Trader.objects.filter(restrictions__isnull=True, violations__isnull=True).order_by("-pk")[
            : CONFIRMATIONS + 20
        ]
    )
    if len(targets) < CONFIRMATIONS + 20:
        raise SystemExit("not enough clean traders for the latency bench")

    def record(trader):
        return violation_record(
            actor=Actor.for_user(recorder),
            trader=trader,
            type=grave,
            occurred_on=timezone.localdate(),
            source="inspection",
            description="bench",
        )

    # Reference: the reassessment's own cost in process, on traders the worker won't see.
    inline = []
    for trader in targets[CONFIRMATIONS:]:
        violation = record(trader)
        Violation.objects.filter(pk=violation.pk).update(
            status="confirmed", decided_by=decider, decided_at=timezone.now()
        )
        started = time.perf_counter()
        trader_reassess(trader=trader)
        inline.append(time.perf_counter() - started)

    _reset_assessments()
    worker = _start_worker()
    bulk = subprocess.Popen(
        [sys.executable, __file__, "child", now.isoformat()], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    during: list[str] = []  # confirmed while the bulk run was still going
    try:
        for trader in targets[:CONFIRMATIONS]:
            violation_confirm(actor=Actor.for_user(decider), violation=record(trader))
            if bulk.poll() is None:
                during.append(trader.uscc)
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
        bulk.wait()
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
    latencies = sorted((recorded[c] - confirmed[c]).total_seconds() * 1000 for c in during if c in recorded)
    if len(recorded) < len(codes):
        yield ("measures NOT recorded by the worker", len(codes) - len(recorded), "traders")
    yield ("confirmations while the bulk run was going", len(during), f"of {len(codes)}")
    if not latencies:
        return
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
    VAR.mkdir(parents=True, exist_ok=True)
    log = (VAR / "bench-worker.log").open("ab")
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


if __name__ == "__main__" and sys.argv[1:2] == ["child"]:
    child(sys.argv[2])
