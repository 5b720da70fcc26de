"""Platform API under load, served by gunicorn (BENCH_API_WORKERS=2 sync workers) on loopback.

1. `GET /api/v1/traders/{uscc}` driven by wrk (Debian: `apt-get install wrk`; without it a
   bounded Python threads client stands in and says so) at 4 and 16 connections:
   requests/s, p50 and p99. Reference, same run, same gunicorn settings, the runs
   interleaved: a bare Django view (bench/bare_wsgi.py, never in the project's URLs)
   returning the same trader row. Goal: >= 1.0x, p99 < 25 ms at 4 connections.
2. `POST /api/v1/traders/lookup` with 1000 codes: p50 over HTTP against the same 1000 codes
   as single GETs; and in process (Django's test client), its server time and its queries.
   Goal: one query, < 50 ms.
3. Replaying the change feed (`GET changes/?limit=1000` page after page, from 0) over
   100k and 1M entries: entries/s against a COPY of the same rows (the feed's columns and
   bodies, in seq order). Goal: >= 100k entries/s and >= 0.3x.
4. SQL queries and Redis round trips per warm lookup, counted in process.

Traders: BENCH_API_TRADERS (100000) rows with a shop each on a "bench" platform and a
measure on every tenth, bulk-inserted once and kept (then ANALYZE). The ledger is topped up
to BENCH_FEED_ENTRIES (1000000) with bench_ledger's generator and kept. Knobs:
BENCH_API_SECONDS (10 per load run), BENCH_API_ROUNDS (3 interleaved runs, medians),
BENCH_BULK_ROUNDS (20). The throttle is lifted for the bench's gunicorn; CACHE_URL and
DATABASE_URL are the bench's own.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TRADERS = int(os.environ.get("BENCH_API_TRADERS", 100_000))
SECONDS = int(os.environ.get("BENCH_API_SECONDS", 10))
WORKERS = int(os.environ.get("BENCH_API_WORKERS", 2))
ROUNDS = int(os.environ.get("BENCH_API_ROUNDS", 3))
FEED_ENTRIES = int(os.environ.get("BENCH_FEED_ENTRIES", 1_000_000))
BULK_ROUNDS = int(os.environ.get("BENCH_BULK_ROUNDS", 20))
SAMPLE = 1000  # the codes the load rotates through
NAME = "bench-api trader"
HOST = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent


def run():
    from django.core.management import call_command

    codes = _seed()
    raw_key = _issue_key()
    _ensure_chain()
    call_command("collectstatic", interactive=False, verbosity=0)  # WhiteNoise wants STATIC_ROOT
    auth = {"Authorization": f"Api-Key {raw_key}"}
    tool = "wrk" if shutil.which("wrk") else "python threads"
    api_paths = [f"/api/v1/traders/{c}" for c in codes]
    bare_paths = [f"/bare/traders/{c}" for c in codes]
    with (
        _gunicorn("creditledger.wsgi:application") as api_port,
        _gunicorn("bare_wsgi:application", pythonpath=BENCH_DIR) as bare_port,
    ):
        _check(api_port, api_paths[0], auth)
        _check(bare_port, bare_paths[0], {})
        for connections in (4, 16):
            # Interleaved, ROUNDS each, medians: the machine is shared and noisy.
            api_runs, bare_runs = [], []
            for _ in range(ROUNDS):
                api_runs.append(_load(api_port, api_paths, auth, connections))
                bare_runs.append(_load(bare_port, bare_paths, {}, connections))
            api, bare = _medians(api_runs), _medians(bare_runs)
            name = f"GET traders/{{uscc}} ({tool}, {WORKERS} workers, {connections} conns)"
            yield (name, api["rps"], "req/s", "bare Django view", bare["rps"])
            yield ("  p50 latency", api["p50"], "ms", "bare view", bare["p50"])
            yield ("  p99 latency", api["p99"], "ms", "bare view", bare["p99"])
        bulk_ms, singles_ms = _bulk(api_port, codes, auth)
        yield (
            "POST traders/lookup, 1000 codes: p50 over HTTP",
            bulk_ms,
            "ms",
            "1000 single GETs",
            singles_ms,
        )
        sizes = sorted({min(FEED_ENTRIES, 100_000), FEED_ENTRIES})
        for size in sizes:
            rates, refs = [], []
            for _ in range(ROUNDS):
                rates.append(_replay(api_port, auth, size))
                refs.append(_copy_rate(size))
            yield (
                f"change feed replay over HTTP, {size:,} entries",
                statistics.median(rates),
                "entries/s",
                "COPY of the same rows",
                statistics.median(refs),
            )
    yield from _per_request(codes, raw_key)


def _medians(runs: list[dict]) -> dict:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def _per_request(codes: list[str], raw_key: str):
    """Queries and Redis round trips of one warm lookup, and the bulk lookup's server time,
    in this process (Django's test client: the same middleware and views, no socket)."""
    import redis
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    calls = {"n": 0}
    original = redis.Redis.execute_command

    def counted(self, *args, **options):
        calls["n"] += 1
        return original(self, *args, **options)

    redis.Redis.execute_command = counted
    plain_http = override_settings(ALLOWED_HOSTS=["testserver"], SECURE_SSL_REDIRECT=False)
    plain_http.enable()
    try:
        client.get(f"/api/v1/traders/{codes[0]}")  # warm: the key, the script, last_used_at
        lookups = 200
        calls["n"] = 0
        with CaptureQueriesContext(connection) as queries:
            for code in codes[1 : lookups + 1]:
                assert client.get(f"/api/v1/traders/{code}").status_code == 200
        yield ("GET traders/{uscc}: SQL queries per warm lookup", len(queries) / lookups, "queries")
        yield ("GET traders/{uscc}: Redis round trips per lookup", calls["n"] / lookups, "calls")
        body = json.dumps({"codes": codes[:1000]})
        times = []
        for _ in range(BULK_ROUNDS):  # timed without capturing: that formats the SQL of each query
            started = time.perf_counter()
            response = client.post("/api/v1/traders/lookup", body, content_type="application/json")
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.content[:300]
        with CaptureQueriesContext(connection) as queries:
            client.post("/api/v1/traders/lookup", body, content_type="application/json")
        yield ("POST traders/lookup, 1000 codes: server time p50", statistics.median(times), "ms")
        yield ("POST traders/lookup, 1000 codes: SQL queries", len(queries), "queries")
    finally:
        redis.Redis.execute_command = original
        plain_http.disable()


# --- data ---------------------------------------------------------------------------------


def _code(n: int) -> str:
    from traders import uscc

    # "B" in the organisation code keeps these apart from other benches' traders.
    return uscc.make(f"91330106B{n:07d}0")


def _seed() -> list[str]:
    from django.db import transaction
    from django.utils import timezone

    from penalties.models import Restriction
    from traders.models import Platform, Shop, Trader

    platform, _ = Platform.objects.get_or_create(code="bench", defaults={"name": "Bench"})
    have = Trader.objects.filter(name__startswith=NAME).count()
    if have < TRADERS:
        print(f"  inserting {TRADERS - have:,} traders with shops ...", file=sys.stderr, flush=True)
    now = timezone.now()
    for first in range(have, TRADERS, 10_000):
        numbers = range(first, min(first + 10_000, TRADERS))
        with transaction.atomic():
            traders = Trader.objects.bulk_create(
                [
                    Trader(
                        uscc=_code(n),
                        name=f"{NAME} {n}",
                        kind="91",
                        region="330106",
                        score=700 if n % 10 == 0 else 1000,
                        grade="C" if n % 10 == 0 else "A",
                        status="listing_restricted" if n % 10 == 0 else "normal",
                        version=3 if n % 10 == 0 else 1,
                        assessed_at=now,
                    )
                    for n in numbers
                ]
            )
            Shop.objects.bulk_create(
                [
                    Shop(trader=t, platform=platform, platform_shop_id=f"bench-{n}", name=f"店铺{n}")
                    for n, t in zip(numbers, traders, strict=True)
                ]
            )
            Restriction.objects.bulk_create(
                [
                    Restriction(
                        trader=t,
                        measure="listing_restricted",
                        state="active",
                        basis="score",
                        rule_code="grade-C",
                        policy_version=1,
                        reasons={
                            "basis": "score",
                            "rule": "grade-C",
                            "score": 700,
                            "grade": "C",
                            "violations": [],
                        },
                        noticed_at=now,
                        starts_at=now,
                    )
                    for n, t in zip(numbers, traders, strict=True)
                    if n % 10 == 0
                ]
            )
    if have < TRADERS:
        _analyze()
    return [_code(n) for n in random.Random(7).sample(range(TRADERS), min(SAMPLE, TRADERS))]


def _analyze() -> None:
    """Planner statistics after a bulk load: without them each feed page scans the rest."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def _issue_key() -> str:
    from traders.models import ApiKey, Platform

    _, raw = ApiKey.objects.create_key(
        name="bench", platform=Platform.objects.get(code="bench"), scopes=["status:read"]
    )
    return raw


# --- gunicorn -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _gunicorn(app: str, pythonpath: Path = ROOT):
    port = _free_port()
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",
        "ALLOWED_HOSTS": HOST,
        "API_THROTTLE_RATE": "1000000000/s",  # measure the API, not the limit
        "CONN_MAX_AGE": "600",
        "LOG_LEVEL": "WARNING",
    }
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"{HOST}:{port}",
        "--workers",
        str(WORKERS),
        "--pythonpath",
        str(pythonpath),
        "--chdir",
        str(ROOT),
        "--log-level",
        "warning",
        app,
    ]
    server = subprocess.Popen(command, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {server.returncode}")
            with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start within 60 s")
            time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _request(
    port: int, method: str, path: str, headers: dict, body: bytes | None = None
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=120)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _check(port: int, path: str, headers: dict) -> None:
    status, body = _request(port, "GET", path, headers)
    if status != 200:
        raise RuntimeError(f"GET {path} answered {status}: {body[:300]!r}")


# --- load: wrk, or a bounded threads client -------------------------------------------------


def _load(port: int, paths: list[str], headers: dict, connections: int) -> dict:
    if shutil.which("wrk"):
        _wrk(port, paths, headers, connections, seconds=2, warming=True)  # every worker connects
        return _wrk(port, paths, headers, connections, seconds=SECONDS)
    _threads(port, paths, headers, connections, seconds=2)
    return _threads(port, paths, headers, connections, seconds=SECONDS)


LUA = """
local paths = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format(nil, paths[(i %% #paths) + 1])
end
"""
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk(
    port: int, paths: list[str], headers: dict, connections: int, seconds: int, warming: bool = False
) -> dict | None:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA % ", ".join(json.dumps(p) for p in paths))
    try:
        command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name]
        for name, value in headers.items():
            command += ["-H", f"{name}: {value}"]
        out = subprocess.run(
            [*command, f"http://{HOST}:{port}"],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    if warming:
        return None
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad or "Socket errors" in out:
        raise RuntimeError(f"wrk saw failed requests; the figures would mean nothing:\n{out}")

    def latency(percent: str) -> float:
        value, unit = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * UNITS[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return {"rps": rps, "p50": latency("50"), "p99": latency("99")}


def _threads(port: int, paths: list[str], headers: dict, connections: int, seconds: int) -> dict:
    """`connections` threads, each a request after the other until the time is up."""
    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    failures: list[str] = []

    def client(offset: int) -> None:
        i = offset
        while time.monotonic() < deadline:
            started = time.perf_counter()
            status, _ = _request(port, "GET", paths[i % len(paths)], headers)
            latencies.append((time.perf_counter() - started) * 1000)
            if status != 200:
                failures.append(f"{status} {paths[i % len(paths)]}")
            i += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n * 37,)) for n in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} failed requests, e.g. {failures[0]}")
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": latencies[len(latencies) // 2],
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


# --- bulk lookup ----------------------------------------------------------------------------


def _bulk(port: int, codes: list[str], auth: dict) -> tuple[float, float]:
    headers = {**auth, "Content-Type": "application/json"}
    body = json.dumps({"codes": codes[:1000]}).encode()
    times = []
    for round_ in range(BULK_ROUNDS + 2):
        started = time.perf_counter()
        status, answer = _request(port, "POST", "/api/v1/traders/lookup", headers, body)
        if round_ >= 2:  # two to warm up
            times.append((time.perf_counter() - started) * 1000)
        if status != 200 or json.loads(answer)["found"] != len(codes[:1000]):
            raise RuntimeError(f"bulk lookup answered {status}: {answer[:300]!r}")
    started = time.perf_counter()
    for code in codes[:1000]:
        status, _ = _request(port, "GET", f"/api/v1/traders/{code}", auth)
        if status != 200:
            raise RuntimeError(f"GET traders/{code} answered {status}")
    return statistics.median(times), (time.perf_counter() - started) * 1000


# --- change feed ----------------------------------------------------------------------------


def _chain_entries(first: int, count: int) -> list:
    """bench_ledger's entries (violation.confirmed, all in the feed) when it is there."""
    try:
        from bench_ledger import _entries
    except ImportError:
        from creditledger.ledger.services import Entry

        payload = {"score": 940, "grade": "A", "status": "normal", "version": 2}
        return [
            Entry("score.changed", "trader", n, _code(n % TRADERS), payload)
            for n in range(first, first + count)
        ]
    return _entries(first, count)


def _ensure_chain() -> None:
    """Top the ledger up to FEED_ENTRIES entries, like bench_ledger (which keeps them between runs)."""
    from django.db import transaction

    from creditledger.ledger import sealer
    from creditledger.ledger.models import LedgerEntry
    from creditledger.ledger.services import ledger_append_many

    head = LedgerEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    if head < FEED_ENTRIES:
        print(f"  appending {FEED_ENTRIES - head:,} ledger entries ...", file=sys.stderr, flush=True)
    for first in range(head + 1, FEED_ENTRIES + 1, 5000):
        with transaction.atomic():
            ledger_append_many(
                actor="system:bench", entries=_chain_entries(first, min(5000, FEED_ENTRIES + 1 - first))
            )
        while sealer.seal_queued():  # queued (LEDGER_SEALER=process): seal them here
            pass
    if head < FEED_ENTRIES:
        _analyze()


def _replay(port: int, auth: dict, count: int) -> float:
    """Entries/s of a platform replaying the feed from 0 to `count` entries, page after page.
    The client reads only each page's tail (next, has_more) and counts its entries: a
    platform's own parsing is its cost, not the server's."""
    seen, after = 0, 0
    started = time.perf_counter()
    while seen < count:
        status, answer = _request(port, "GET", f"/api/v1/changes/?after={after}&limit=1000", auth)
        if status != 200:
            raise RuntimeError(f"changes/ answered {status}: {answer[:300]!r}")
        tail = json.loads(b"{" + answer[answer.rindex(b'"next":') :])
        seen += answer.count(b'{"seq":')
        after = tail["next"]
        if not tail["has_more"]:
            break
    return seen / (time.perf_counter() - started)


def _copy_rate(count: int) -> float:
    """COPY of the same rows (the feed's columns and stored bodies, in seq order) to a sink."""
    from django.db import connection

    from creditledger.ledger.models import STATUS_ACTIONS

    class Sink:
        size = 0

        def write(self, data) -> None:
            Sink.size += len(data)

    actions = ", ".join(f"'{a}'" for a in STATUS_ACTIONS)
    sql = (
        "COPY (SELECT seq, at, action, trader_uscc, subject_type, subject_id, payload, body "
        f"FROM ledger_ledgerentry WHERE action IN ({actions}) ORDER BY seq LIMIT {count}) TO STDOUT"
    )
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.cursor.copy_expert(sql, Sink())
    return count / (time.perf_counter() - started)
