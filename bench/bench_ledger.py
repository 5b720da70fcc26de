"""Ledger: appends per second with 1 and 8 writer processes, verify_ledger over 1M entries.

References, measured in the same run:
- appends: a plain INSERT of the same rows, one transaction each, into a copy of the table
  with the same indexes (no hashing, no lock, no trigger);
- verify: reading the same rows in the same windows without checking them, and a plain
  sha256 over the same stored bodies.

The 1M-entry chain is built once with ledger_append_many (batches of 5000, one
transaction each) and kept between runs; BENCH_FRESH=1 empties the ledger first.
Knobs: BENCH_LEDGER_ENTRIES (1000000), BENCH_APPENDS (2000), BENCH_APPENDS_EACH (400).

Django is imported inside functions: the writer processes are spawned and must call
django.setup() before they touch a model.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import multiprocessing
import os
import sys
import threading
import time
from decimal import Decimal

ENTRIES = int(os.environ.get("BENCH_LEDGER_ENTRIES", 1_000_000))
APPENDS = int(os.environ.get("BENCH_APPENDS", 2000))
APPENDS_EACH = int(os.environ.get("BENCH_APPENDS_EACH", 400))
WRITERS = 8
BATCH = 5000
PLAIN_TABLE = "bench_plain_entry"
COLUMNS = "seq, at, actor, action, subject_type, subject_id, trader_uscc, payload, body, prev_hash, hash"


def run() -> list[tuple]:
    _prepare()
    figures = _build_chain()
    figures += _verify_figures()
    figures += _append_figures()
    return figures


# --- rows -------------------------------------------------------------------------------


def _payload(n: int) -> dict:
    return {
        "violation": n,
        "type": "false-advertising",
        "fine": Decimal("1250.00"),
        "occurred_on": dt.date(2026, 3, n % 28 + 1),
        "decided_by": n % 40 + 1,
        "note": "抽查发现商品详情页宣传与实际不符",
        "evidence": [{"sha256": hashlib.sha256(str(n).encode()).hexdigest(), "size": 48213}],
    }


def _entries(first: int, count: int) -> list:
    from creditledger.ledger.services import Entry

    return [
        Entry("violation.confirmed", "violation", n, f"91330106MA{n % 10**7:07d}X", _payload(n))
        for n in range(first, first + count)
    ]


def _plain_row(writer: int, n: int, at) -> tuple:
    """The same columns, serialised with plain json: no canonical form, no hash chain."""
    payload = json.dumps(_payload(n), default=str, ensure_ascii=False)
    return (
        writer * 10**9 + n + 1,
        at,
        f"system:writer{writer}",
        "violation.confirmed",
        "violation",
        str(n),
        f"91330106MA{n % 10**7:07d}X",
        payload,
        payload.encode(),
        "",
        f"{writer:08x}{n:056x}",
    )


# --- setup ------------------------------------------------------------------------------


def _prepare() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {PLAIN_TABLE}")
        # Same columns and indexes as the ledger; LIKE copies no trigger.
        cursor.execute(
            f"CREATE TABLE {PLAIN_TABLE} (LIKE ledger_ledgerentry INCLUDING DEFAULTS INCLUDING INDEXES)"
        )
        if os.environ.get("BENCH_FRESH") == "1":
            cursor.execute("ALTER TABLE ledger_ledgerentry DISABLE TRIGGER USER")
            cursor.execute("TRUNCATE ledger_ledgerentry, ledger_checkpoint")
            cursor.execute("ALTER TABLE ledger_ledgerentry ENABLE TRIGGER USER")


def _truncate_plain() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {PLAIN_TABLE}")


def _head() -> int:
    from creditledger.ledger.models import LedgerEntry

    return LedgerEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


# --- building the 1M chain --------------------------------------------------------------


def _build_chain() -> list[tuple]:
    from django.db import transaction

    from creditledger.ledger.services import ledger_append_many

    head = _head()
    missing = ENTRIES - head
    if missing <= 0:
        print(f"  reusing the {head:,} entries already in the bench ledger", flush=True)
        return []
    print(f"  building {missing:,} entries with ledger_append_many ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    done = 0
    while done < missing:
        count = min(BATCH, missing - done)
        with transaction.atomic():
            ledger_append_many(actor="system:bench", entries=_entries(head + done + 1, count))
        done += count
        if done % 100_000 < BATCH:
            print(f"  ... {head + done:,}", file=sys.stderr, flush=True)
    rate = missing / (time.perf_counter() - started)
    return [
        ("bulk append (ledger_append_many x5000)", rate, "entries/s", "plain bulk INSERT", _plain_bulk_rate())
    ]


def _plain_bulk_rate(count: int = 50_000) -> float:
    from django.db import connection, transaction
    from django.utils import timezone
    from psycopg2.extras import execute_values

    _truncate_plain()
    started = time.perf_counter()
    for first in range(0, count, BATCH):
        at = timezone.now()
        rows = [_plain_row(0, n, at) for n in range(first, first + BATCH)]
        with transaction.atomic(), connection.cursor() as cursor:
            execute_values(
                cursor.cursor, f"INSERT INTO {PLAIN_TABLE} ({COLUMNS}) VALUES %s", rows, page_size=2000
            )
    return count / (time.perf_counter() - started)


# --- verifying --------------------------------------------------------------------------


def _verify_figures() -> list[tuple]:
    from creditledger.ledger.services import checkpoint_create

    checkpoint_create()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:  # a fresh process, so its peak memory is verify's alone
        entries, verify_s, growth_mb, summary, read_s, sha_s = pool.apply(_verify_child)
    print(f"  {summary}", flush=True)
    return [
        (
            f"verify_ledger over {entries:,} entries",
            entries / verify_s,
            "entries/s",
            "read only",
            entries / read_s,
        ),
        (
            "verify_ledger vs plain sha256 of the bodies",
            entries / verify_s,
            "entries/s",
            "sha256",
            entries / sha_s,
        ),
        ("verify_ledger peak memory above a connected process", growth_mb, "MB"),
    ]


def _verify_child() -> tuple:
    import django

    django.setup()
    from creditledger.ledger import verify
    from creditledger.ledger.models import LedgerEntry

    LedgerEntry.objects.exists()  # connect, so the baseline below includes the driver
    sampler = _RssSampler()
    started = time.perf_counter()
    with sampler:
        result = verify.verify_ledger()
    verify_s = time.perf_counter() - started
    growth_mb = sampler.growth_mb
    if not result.ok:
        raise RuntimeError(result.summary())

    started = time.perf_counter()
    for _ in verify._entries(1, result.last, verify.BATCH_SIZE):
        pass
    read_s = time.perf_counter() - started

    sha_s = 0.0
    for low in range(0, result.last, BATCH):
        bodies = LedgerEntry.objects.filter(seq__gt=low, seq__lte=low + BATCH).values_list("body", flat=True)
        bodies = [bytes(body) for body in bodies]
        started = time.perf_counter()
        for body in bodies:
            hashlib.sha256(body).hexdigest()
        sha_s += time.perf_counter() - started
    return result.last, verify_s, growth_mb, result.summary(), read_s, sha_s


class _RssSampler:
    """The most resident memory seen while the block runs, above what it started with."""

    def __enter__(self):
        self.start = self.peak = _rss_mb()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())

    def _sample(self):
        while not self._done.wait(0.05):
            self.peak = max(self.peak, _rss_mb())

    @property
    def growth_mb(self) -> float:
        return self.peak - self.start


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# --- appending --------------------------------------------------------------------------


def _append_figures() -> list[tuple]:
    one = APPENDS / _timed(_append_ledger, 0, APPENDS)
    _truncate_plain()
    one_plain = APPENDS / _timed(_insert_plain, 0, APPENDS)
    eight = _concurrent("ledger")
    _truncate_plain()
    eight_plain = _concurrent("plain")
    return [
        ("appends, 1 writer (one transaction each)", one, "appends/s", "plain INSERT", one_plain),
        (f"appends, {WRITERS} writer processes", eight, "appends/s", "plain INSERT", eight_plain),
    ]


def _timed(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def _append_ledger(writer: int, count: int) -> None:
    from django.db import transaction

    from creditledger.ledger.services import ledger_append

    for n in range(count):
        with transaction.atomic():
            ledger_append(
                actor=f"system:writer{writer}",
                action="violation.confirmed",
                subject_type="violation",
                subject_id=n,
                trader_uscc=f"91330106MA{n % 10**7:07d}X",
                payload=_payload(n),
            )


def _insert_plain(writer: int, count: int) -> None:
    from django.db import connection, transaction
    from django.utils import timezone

    sql = f"INSERT INTO {PLAIN_TABLE} ({COLUMNS}) VALUES ({', '.join(['%s'] * 11)})"
    for n in range(count):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, _plain_row(writer, n, timezone.now()))


def _concurrent(kind: str) -> float:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WRITERS + 1)
    writers = [ctx.Process(target=_writer, args=(kind, n, APPENDS_EACH, barrier)) for n in range(WRITERS)]
    for process in writers:
        process.start()
    try:
        barrier.wait(timeout=300)  # every writer is set up and connected
    except threading.BrokenBarrierError:
        for process in writers:
            process.terminate()
        raise RuntimeError(f"a {kind} writer failed to start (its traceback is above)") from None
    started = time.perf_counter()
    for process in writers:
        process.join()
        if process.exitcode:
            raise RuntimeError(f"a {kind} writer failed with exit code {process.exitcode}")
    return WRITERS * APPENDS_EACH / (time.perf_counter() - started)


def _writer(kind: str, writer: int, count: int, barrier) -> None:
    try:
        import django

        django.setup()
        from django.db import connection

        connection.ensure_connection()
    except BaseException:
        barrier.abort()  # or the parent would wait for this writer forever
        raise
    barrier.wait()
    (_append_ledger if kind == "ledger" else _insert_plain)(writer, count)
