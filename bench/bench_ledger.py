"""Ledger: appends and seal latency through the sequencer, verify_ledger, and proofs.

What it measures, each against a reference measured in the same run:

1. appends/s with 1 and BENCH_WRITERS (8) writer processes, each append in its own
   transaction through the path every service takes (`ledger_append` inside
   `transaction.atomic()`, LEDGER_SEALER=process: the transaction queues the entry, the
   real sealer process, `manage.py ledger_seal`, seals it). The rate counts an append
   when it is sealed (from the start to the last entry sealed); "committed to the queue"
   is the writers' own rate, the two agreeing when the sealer keeps up.
   Reference: plain INSERTs of the same rows, one transaction each, into a copy of the
   table with the same indexes (no canonical form, no hash, no queue, no trigger).
2. seal latency p50/p99, from each append's commit (as its writer saw it) to the moment
   the bench first sees it sealed (polling the ledger every 5 ms, so figures carry up
   to ~5 ms of polling). Reference: the plain INSERT transaction's own latency (p50) and
   the goal (p99 < 1 s).
3. verify_ledger (its public entry point, so a faster one shows here when it lands) over
   the first BENCH_LEDGER_SMALL (100k) and BENCH_LEDGER_ENTRIES (1M) entries, in a fresh
   process; reference: the same bodies streamed from the database in seq order and each
   hashed with sha256 (the floor of any verifier that reads and hashes every entry).
4. inclusion and consistency proofs p99 at tree sizes SMALL and ENTRIES, through the API
   (django.test.Client: middleware, key authentication, the DRF view, JSON), and through
   the selectors that serve them; references: the goal (5 ms) for the API, and a one-row
   SELECT of an entry by seq for the selectors.

Each measurement runs BENCH_ROUNDS (3) times, the kinds interleaved round by round
(ledger and plain, 1 and 8 writers; verify and sha256; API and selector), and the
figure printed is the median of the rounds.

The ENTRIES-entry chain is built once with ledger_append_many (batches of 5000 sealed
inline, one transaction each) and kept between runs; BENCH_FRESH=1 empties the ledger
first. Each run's appends are added to it. The ledger's tables are ANALYZEd before the
measurements (autovacuum may be off on a test server, and a range read by seq over a
bulk-loaded table that was never analysed plans as a sequential scan).
Run it on a database of its own (the name must contain "bench"), e.g.
`make bench BENCH_ARGS=ledger DATABASE_URL=postgres://.../creditledger_benchledger`.

Knobs: BENCH_LEDGER_ENTRIES (1000000), BENCH_LEDGER_SMALL (100000), BENCH_ROUNDS (3),
BENCH_WRITERS (8), BENCH_APPENDS (1000, by the single writer per round),
BENCH_APPENDS_EACH (500, by each of the writers per round), BENCH_PROOFS (1000 requests
per kind, size and round), BENCH_SEAL_TIMEOUT (120 s for a round's entries to be sealed).

Django is imported inside functions: the writer processes are spawned and must call
django.setup() before they touch a model.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import multiprocessing
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

ENTRIES = int(os.environ.get("BENCH_LEDGER_ENTRIES", 1_000_000))
SMALL = int(os.environ.get("BENCH_LEDGER_SMALL", 100_000))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 3))
WRITERS = int(os.environ.get("BENCH_WRITERS", 8))
APPENDS = int(os.environ.get("BENCH_APPENDS", 1000))
APPENDS_EACH = int(os.environ.get("BENCH_APPENDS_EACH", 500))
PROOFS = int(os.environ.get("BENCH_PROOFS", 1000))
SEAL_TIMEOUT = float(os.environ.get("BENCH_SEAL_TIMEOUT", 120))
BATCH = 5000
POLL_SECONDS = 0.005
PROOF_GOAL_MS = 5.0
SEAL_GOAL_MS = 1000.0
PLAIN_TABLE = "bench_plain_entry"
LEDGER_TABLES = ("ledger_ledgerentry", "ledger_checkpoint", "ledger_ledgertile")  # append-only
COLUMNS = "seq, at, actor, action, subject_type, subject_id, trader_uscc, payload, body, prev_hash, hash"
ROOT = Path(__file__).resolve().parent.parent


def run() -> list[tuple]:
    _prepare()
    figures = _build_chain()
    _analyze()
    from creditledger.ledger.services import checkpoint_create

    checkpoint_create()
    figures += _proof_figures()
    figures += _verify_figures()
    figures += _append_figures()
    return figures


def sizes() -> list[int]:
    return sorted({min(SMALL, ENTRIES), ENTRIES})


def median(values) -> float:
    return statistics.median(values)


def percentile(values, fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


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
    """The bench's entries (violation.confirmed, all in the change feed); bench_api uses them too."""
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
            for table in LEDGER_TABLES:
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            cursor.execute(f"TRUNCATE {', '.join(LEDGER_TABLES)}, ledger_pendingentry")
            for table in LEDGER_TABLES:
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def _analyze() -> None:
    """Fresh planner statistics, as autovacuum keeps them in production (a test server may run
    without it): on a bulk-loaded table never analysed, a range read by seq plans as a seq scan."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {', '.join(LEDGER_TABLES)}, ledger_pendingentry")


def _truncate_plain() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {PLAIN_TABLE}")


def _head() -> int:
    from creditledger.ledger.models import LedgerEntry

    return LedgerEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


# --- building the chain -----------------------------------------------------------------


def _build_chain() -> list[tuple]:
    from django.db import transaction
    from django.test import override_settings

    from creditledger.ledger import sealer
    from creditledger.ledger.services import ledger_append_many

    while sealer.seal_queued():  # what an interrupted run left queued, so seqs stay as built
        pass
    head = _head()
    missing = ENTRIES - head
    if missing <= 0:
        print(f"  reusing the {head:,} entries already in the bench ledger", flush=True)
        return []
    print(f"  building {missing:,} entries with ledger_append_many ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    done = 0
    with override_settings(LEDGER_SEALER="inline"):  # sealed batch by batch, as they are written
        while done < missing:
            count = min(BATCH, missing - done)
            with transaction.atomic():
                ledger_append_many(actor="system:bench", entries=_entries(head + done + 1, count))
            done += count
            if done % 100_000 < BATCH:
                print(f"  ... {head + done:,}", file=sys.stderr, flush=True)
    rate = missing / (time.perf_counter() - started)
    name = f"bulk append (ledger_append_many x{BATCH}, sealed inline)"
    return [(name, rate, "entries/s", "plain bulk INSERT", _plain_bulk_rate())]


def _plain_bulk_rate(count: int = 50_000) -> float:
    from django.db import connection, transaction
    from django.utils import timezone
    from psycopg2.extras import execute_values

    _truncate_plain()
    count = min(count, max(ENTRIES, BATCH))
    started = time.perf_counter()
    for first in range(0, count, BATCH):
        at = timezone.now()
        rows = [_plain_row(0, n, at) for n in range(first, first + BATCH)]
        with transaction.atomic(), connection.cursor() as cursor:
            execute_values(
                cursor.cursor, f"INSERT INTO {PLAIN_TABLE} ({COLUMNS}) VALUES %s", rows, page_size=2000
            )
    return count / (time.perf_counter() - started)


# --- proofs -----------------------------------------------------------------------------


def _proof_figures() -> list[tuple]:
    from django.conf import settings
    from django.test import Client, override_settings

    client = Client(HTTP_AUTHORIZATION=f"Api-Key {_issue_key()}")
    samples: dict[tuple, list[float]] = {}
    rng = random.Random(13)
    # Lift the per-key throttle, as bench_api does for its gunicorn: measure the view, not the limit.
    rates = {name: "1000000000/s" for name in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]}
    lifted = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    with override_settings(ALLOWED_HOSTS=["testserver"], SECURE_SSL_REDIRECT=False, REST_FRAMEWORK=lifted):
        _get(client, f"/api/v1/ledger/proofs/inclusion?seq=1&size={ENTRIES}")  # connect, resolve URLs
        for _ in range(ROUNDS):
            for size in sizes():
                for kind, ms in _proof_round(client, size, rng).items():
                    samples.setdefault((kind, size), []).append(ms)
    figures = []
    for size in sizes():
        for kind in ("inclusion", "consistency"):
            api = median(samples[kind + " api", size])
            selector = median(samples[kind + " selector", size])
            floor = median(samples["select", size])
            figures.append((f"{kind} proof p99 at {size:,}: API", api, "ms", "goal", PROOF_GOAL_MS))
            figures.append(
                (f"  {kind} proof p99 at {size:,}: selector", selector, "ms", "1-row SELECT", floor)
            )
    return figures


def _issue_key() -> str:
    from traders.models import ApiKey, Platform

    platform, _ = Platform.objects.get_or_create(code="bench-ledger", defaults={"name": "Bench (ledger)"})
    _, raw = ApiKey.objects.create_key(name="bench ledger proofs", platform=platform, scopes=[])
    return raw


def _proof_round(client, size: int, rng: random.Random) -> dict[str, float]:
    """p99 in ms of each kind of read, PROOFS of each, for random entries of the first `size`."""
    from creditledger.ledger import selectors
    from creditledger.ledger.models import LedgerEntry

    seqs = [rng.randint(1, size) for _ in range(PROOFS)]
    olds = [rng.randint(1, max(1, size - 1)) for _ in range(PROOFS)]

    def inclusion_api(seq):
        _get(client, f"/api/v1/ledger/proofs/inclusion?seq={seq}&size={size}")

    def consistency_api(old):
        _get(client, f"/api/v1/ledger/proofs/consistency?old={old}&new={size}")

    def select(seq):
        LedgerEntry.objects.filter(seq=seq).values_list("body", flat=True).first()

    return {
        "inclusion api": _p99_ms(inclusion_api, seqs),
        "consistency api": _p99_ms(consistency_api, olds),
        "inclusion selector": _p99_ms(lambda s: selectors.inclusion(seq=s, size=size), seqs),
        "consistency selector": _p99_ms(lambda o: selectors.consistency_proof(old=o, new=size), olds),
        "select": _p99_ms(select, seqs),
    }


def _get(client, url: str) -> None:
    response = client.get(url, secure=True)
    if response.status_code != 200:
        raise RuntimeError(f"{url} answered {response.status_code}: {response.content[:300]!r}")


def _p99_ms(function, arguments) -> float:
    times = []
    for argument in arguments:
        started = time.perf_counter()
        function(argument)
        times.append((time.perf_counter() - started) * 1000)
    return percentile(times, 0.99)


# --- verifying --------------------------------------------------------------------------


def _verify_figures() -> list[tuple]:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:  # a fresh process, so its peak memory is verify's alone
        verify_s, sha_s, growth_mb, summaries = pool.apply(_verify_child, (sizes(), ROUNDS))
    for summary in summaries:
        print(f"  {summary}", flush=True)
    figures = []
    for size in sizes():
        verify_rate, sha_rate = size / median(verify_s[size]), size / median(sha_s[size])
        name = f"verify_ledger over {size:,} entries"
        figures.append((name, verify_rate, "entries/s", "streamed sha256", sha_rate))
    figures.append(("verify_ledger peak memory above a connected process", growth_mb, "MB"))
    return figures


def _verify_child(sizes: list[int], rounds: int) -> tuple:
    import django

    django.setup()
    from creditledger.ledger import verify
    from creditledger.ledger.models import LedgerEntry

    LedgerEntry.objects.exists()  # connect, so the memory baseline below includes the driver
    verify_s: dict[int, list[float]] = {size: [] for size in sizes}
    sha_s: dict[int, list[float]] = {size: [] for size in sizes}
    summaries, growth_mb = [], 0.0
    for _ in range(rounds):
        for size in sizes:
            sampler = _RssSampler()
            started = time.perf_counter()
            with sampler:
                result = verify.verify_ledger(end=size)
            verify_s[size].append(time.perf_counter() - started)
            growth_mb = max(growth_mb, sampler.growth_mb)
            if not result.ok or result.last != size:
                raise RuntimeError(f"verify_ledger(end={size}): {result.summary()}")
            if len(summaries) < len(sizes):
                summaries.append(result.summary())
            started = time.perf_counter()
            _stream_sha256(size)
            sha_s[size].append(time.perf_counter() - started)
    return verify_s, sha_s, growth_mb, summaries


def _stream_sha256(size: int) -> None:
    """Every body of entries 1..size read in seq order (keyset pages) and sha256'd."""
    from django.db import connection

    last = 0
    with connection.cursor() as cursor:
        while last < size:
            cursor.execute(
                "SELECT seq, body FROM ledger_ledgerentry WHERE seq > %s AND seq <= %s ORDER BY seq LIMIT %s",
                [last, size, BATCH],
            )
            rows = cursor.fetchall()
            if not rows:
                raise RuntimeError(f"the ledger ends at {last}, short of {size}")
            for _seq, body in rows:
                hashlib.sha256(body).digest()
            last = rows[-1][0]


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
    counts = {1: APPENDS, WRITERS: APPENDS_EACH}
    rates: dict[tuple, list[float]] = {}
    seal_ms: dict[int, list[float]] = {}
    plain_ms: dict[int, list[float]] = {}
    with _sealer_process():
        for _ in range(ROUNDS):
            for writers, each in counts.items():
                rate, queued, latencies = _ledger_run(writers, each)
                rates.setdefault(("ledger", writers), []).append(rate)
                rates.setdefault(("queued", writers), []).append(queued)
                seal_ms.setdefault(writers, []).append(latencies)
                _truncate_plain()
                rate, latencies = _plain_run(writers, each)
                rates.setdefault(("plain", writers), []).append(rate)
                plain_ms.setdefault(writers, []).append(latencies)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {PLAIN_TABLE}")
    figures = []
    for writers in counts:
        label = "1 writer" if writers == 1 else f"{writers} writer processes"
        ledger, plain = median(rates["ledger", writers]), median(rates["plain", writers])
        queued = median(rates["queued", writers])
        figures.append((f"appends, {label} (queued, sealed)", ledger, "appends/s", "plain INSERT", plain))
        figures.append((f"  committed to the queue, {label}", queued, "appends/s", "plain INSERT", plain))
        p50 = median(percentile(run, 0.5) for run in seal_ms[writers])
        p99 = median(percentile(run, 0.99) for run in seal_ms[writers])
        plain_p50 = median(percentile(run, 0.5) for run in plain_ms[writers])
        figures.append((f"  seal latency p50, {label}", p50, "ms", "INSERT transaction p50", plain_p50))
        figures.append((f"  seal latency p99, {label}", p99, "ms", "goal", SEAL_GOAL_MS))
    return figures


@contextlib.contextmanager
def _sealer_process():
    """`manage.py ledger_seal`, as production runs it, for as long as the block runs."""
    from django.conf import settings

    log_path = Path(settings.VAR_DIR) / "bench-ledger-sealer.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "LEDGER_SEALER": "process"}
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "ledger_seal", "--idle", "0.5"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
        )
        try:
            line = process.stdout.readline()  # "ledger sealer: running", once Django is up
            if b"running" not in line:
                raise RuntimeError(f"the sealer did not start (see {log_path}): {line!r}")
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _ledger_run(writers: int, each: int) -> tuple[float, float, list[float]]:
    """(appends/s counted when sealed, and when committed; seal latencies in ms) of one run."""
    from django.db import connection

    head = _head()
    expected = writers * each
    with _writers("ledger", writers, each) as (started, results, alive):
        sealed_at: dict[tuple, float] = {}
        deadline = time.monotonic() + SEAL_TIMEOUT + expected / 100
        with connection.cursor() as cursor:
            while len(sealed_at) < expected:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{expected - len(sealed_at)} appends not sealed in time")
                cursor.execute(
                    "SELECT seq, actor, subject_id FROM ledger_ledgerentry "
                    "WHERE seq > %s ORDER BY seq LIMIT %s",
                    [head, BATCH],
                )
                now = time.monotonic()
                for seq, actor, subject_id in cursor.fetchall():
                    sealed_at[actor, subject_id] = now
                    head = seq
                if len(sealed_at) < expected:
                    alive()
                    time.sleep(POLL_SECONDS)
        committed = results()
    last = max(sealed_at.values())
    last_commit = max(commit for _begin, commit in committed.values())
    latencies = [(sealed_at[key] - commit) * 1000 for key, (_begin, commit) in committed.items()]
    return expected / (last - started), expected / (last_commit - started), latencies


def _plain_run(writers: int, each: int) -> tuple[float, list[float]]:
    """(INSERTs/s, transaction latencies in ms) of one run of `writers` plain writers."""
    with _writers("plain", writers, each) as (started, results, _alive):
        committed = results()
    last = max(commit for _begin, commit in committed.values())
    latencies = [(commit - begin) * 1000 for begin, commit in committed.values()]
    return writers * each / (last - started), latencies


@contextlib.contextmanager
def _writers(kind: str, writers: int, each: int):
    """Start `writers` processes, release them at once; yields (start time, results(), alive()).

    results() waits for them and returns {(actor, subject_id): (begin, commit)}, monotonic
    seconds (CLOCK_MONOTONIC is one clock for every process on the machine)."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(writers + 1)
    queue = ctx.Queue()
    processes = [ctx.Process(target=_writer, args=(kind, n, each, barrier, queue)) for n in range(writers)]
    for process in processes:
        process.start()

    def alive():
        for process in processes:
            if process.exitcode:
                raise RuntimeError(f"a {kind} writer failed with exit code {process.exitcode}")

    def results():
        committed = {}
        for _ in processes:
            while True:
                try:
                    committed.update(queue.get(timeout=1))
                    break
                except Exception:  # queue.Empty: see whether a writer died
                    alive()
        for process in processes:
            process.join()
        alive()
        return committed

    try:
        try:
            barrier.wait(timeout=300)  # every writer is set up and connected
        except threading.BrokenBarrierError:
            raise RuntimeError(f"a {kind} writer failed to start (its traceback is above)") from None
        yield time.monotonic(), results, alive
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join()


def _writer(kind: str, writer: int, count: int, barrier, queue) -> None:
    try:
        import django

        django.setup()
        from django.conf import settings
        from django.db import connection

        settings.LEDGER_SEALER = "process"  # the services' path: queue, and the sealer seals
        connection.ensure_connection()
    except BaseException:
        barrier.abort()  # or the parent would wait for this writer forever
        raise
    barrier.wait()
    append = _append_ledger if kind == "ledger" else _insert_plain
    queue.put(append(writer, count))


def _append_ledger(writer: int, count: int) -> dict:
    from django.db import transaction

    from creditledger.ledger.services import ledger_append

    actor, times = f"system:writer{writer}", {}
    for n in range(count):
        begin = time.monotonic()
        with transaction.atomic():
            ledger_append(
                actor=actor,
                action="violation.confirmed",
                subject_type="violation",
                subject_id=n,
                trader_uscc=f"91330106MA{n % 10**7:07d}X",
                payload=_payload(n),
            )
        times[actor, str(n)] = (begin, time.monotonic())
    return times


def _insert_plain(writer: int, count: int) -> dict:
    from django.db import connection, transaction
    from django.utils import timezone

    sql = f"INSERT INTO {PLAIN_TABLE} ({COLUMNS}) VALUES ({', '.join(['%s'] * 11)})"
    times = {}
    for n in range(count):
        begin = time.monotonic()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, _plain_row(writer, n, timezone.now()))
        times[f"system:writer{writer}", str(n)] = (begin, time.monotonic())
    return times
