"""Mixed load on loopback: lookups, bulk lookups, feed reads and report submissions together,
against gunicorn (2 workers, gunicorn.conf.py, JSON logs, Prometheus multiprocess mode) and
a Celery worker, then the checks that matter more than the speed:

- `verify_ledger` passes over the whole chain (reports, confirmations and the worker's
  reassessments all appended while the load ran);
- every report that was answered 201 exists exactly once, under its Idempotency-Key: some
  are resent later with the same key, and one in ten is sent from two connections at once;
  the repeat must get the stored answer (same id, `Idempotent-Replayed`), never a second
  report;
- every feed reader saw seqs only ever increasing.

While the load runs, a thread in this process confirms some of the new reports (as a
supervisor would), so the worker reassesses those traders and appends to the ledger too.

Printed per operation: throughput, errors and p99 under the mixed load; the reference is
the same operation alone (one client, measured first in the same run). Knobs:
BENCH_LOAD_SECONDS (60), BENCH_LOAD_CLIENTS (8), BENCH_LOAD_MAX_REQUESTS (100000),
BENCH_LOAD_SOLO_SECONDS (3), BENCH_LOAD_TRADERS (2000), BENCH_LOAD_BULK (200 codes a call).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", 60))
CLIENTS = int(os.environ.get("BENCH_LOAD_CLIENTS", 8))
MAX_REQUESTS = int(os.environ.get("BENCH_LOAD_MAX_REQUESTS", 100_000))
SOLO_SECONDS = float(os.environ.get("BENCH_LOAD_SOLO_SECONDS", 3))
TRADERS = int(os.environ.get("BENCH_LOAD_TRADERS", 2000))
BULK = int(os.environ.get("BENCH_LOAD_BULK", 200))
HOST = "127.0.0.1"
NAME = "bench-load trader"
PLATFORM = "benchload"
MARK = "bench-load report"
# The mix: relative weights of the operations each client draws from.
MIX = {"lookup": 50, "bulk": 10, "feed": 20, "report": 15, "resend": 5}
METRICS_TOKEN = "bench-load-metrics-token"
ROOT = Path(__file__).resolve().parent.parent


def run():
    from django.conf import settings
    from django.core.management import call_command

    var = Path(settings.VAR_DIR) / "bench-load"
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    codes = _seed()
    raw_key = _issue_key()
    # As `make serve` does: WhiteNoise then serves hashed, compressed files from STATIC_ROOT.
    call_command("collectstatic", interactive=False, verbosity=0)
    env = _server_env(var)
    with _worker(env, var), _gunicorn(env, var) as port:
        load = Load(port, raw_key, codes)
        load.warm()
        solo = {op: load.solo(op, SOLO_SECONDS) for op in ("lookup", "bulk", "feed", "report")}
        mixed, elapsed = load.mixed(SECONDS)
        busy = os.getloadavg()[0]  # what else the machine was doing shapes every figure above
        served = _served_requests(port)
        _drain()
    checks = _check(load)

    total = sum(len(s.latencies) for s in mixed.values())
    yield (f"mixed load, {CLIENTS} clients, {elapsed:.0f} s", total / elapsed, "req/s")
    for op in ("lookup", "bulk", "feed", "report", "resend"):
        stats = mixed[op]
        yield (f"  {op}: throughput", len(stats.latencies) / elapsed, "req/s")
        yield (f"  {op}: errors", float(stats.errors), "")
        if op in solo:
            yield (f"  {op}: p99", stats.p99, "ms", "alone", solo[op].p99)
        else:
            yield (f"  {op}: p99", stats.p99, "ms")
    yield ("requests the server timed (its /metrics)", float(served), "")
    yield ("machine load average (1 min) after the mixed phase", busy, f"on {os.cpu_count()} CPUs")
    for line in checks:
        print(f"  check: {line}", flush=True)


# --- data -----------------------------------------------------------------------------------


def _code(n: int) -> str:
    from traders import uscc

    # "L" in the organisation code keeps these apart from other benches' traders.
    return uscc.make(f"91330106L{n:07d}0")


def _seed() -> list[str]:
    from django.db import transaction

    from traders.models import Platform, Shop, Trader

    platform, _ = Platform.objects.get_or_create(code=PLATFORM, defaults={"name": "Bench load"})
    have = Trader.objects.filter(name__startswith=NAME).count()
    for first in range(have, TRADERS, 5000):
        numbers = range(first, min(first + 5000, TRADERS))
        with transaction.atomic():
            traders = Trader.objects.bulk_create(
                [Trader(uscc=_code(n), name=f"{NAME} {n}", kind="91", region="330106") for n in numbers]
            )
            Shop.objects.bulk_create(
                [
                    Shop(trader=t, platform=platform, platform_shop_id=f"load-{n}", name=f"店铺{n}")
                    for n, t in zip(numbers, traders, strict=True)
                ]
            )
    return [_code(n) for n in range(TRADERS)]


def _issue_key() -> str:
    from traders.models import ApiKey, Platform

    _, raw = ApiKey.objects.create_key(
        name="bench load",
        platform=Platform.objects.get(code=PLATFORM),
        scopes=["status:read", "reports:write"],
    )
    return raw


def _supervisor():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from creditledger import roles
    from creditledger.ledger.actors import Actor
    from traders.models import StaffJurisdiction

    user, _ = get_user_model().objects.get_or_create(
        username="bench-load-supervisor", defaults={"is_staff": True}
    )
    user.groups.add(Group.objects.get(name=roles.SUPERVISOR))
    # Jurisdiction is deny-by-default: without this row the supervisor may decide nothing.
    StaffJurisdiction.objects.update_or_create(user=user, defaults={"national": True, "regions": []})
    return Actor.for_user(user)


# --- processes --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _server_env(var: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",
        "ALLOWED_HOSTS": HOST,
        "API_THROTTLE_RATE": "1000000000/s",  # measure the system, not the limit
        "CONN_MAX_AGE": "600",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "METRICS_TOKEN": METRICS_TOKEN,
    }


@contextlib.contextmanager
def _gunicorn(env: dict, var: Path):
    port = _free_port()
    metrics_dir = var / "metrics-web"
    env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "GUNICORN_WORKERS": "2"}
    command = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py")]
    command += ["--bind", f"{HOST}:{port}", "--chdir", str(ROOT), "creditledger.wsgi"]
    with open(var / "web.log", "wb") as log:
        server = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until(lambda: _answers(port, "/healthz"), server, "gunicorn")
        yield port
    finally:
        _stop(server)


@contextlib.contextmanager
def _worker(env: dict, var: Path):
    celery = str(Path(sys.executable).parent / "celery")
    command = [celery, "-A", "creditledger", "worker", "-Q", "scoring,webhooks,celery", "-c", "2"]
    command += [
        "-n",
        f"bench-load-{os.getpid()}@%h",
        "--without-gossip",
        "--without-mingle",
        "--loglevel",
        "INFO",
    ]
    env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(var / "metrics-worker")}
    (var / "metrics-worker").mkdir()
    with open(var / "worker.log", "wb") as log:
        worker = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until(lambda: b"ready" in (var / "worker.log").read_bytes(), worker, "the celery worker")
        yield worker
    finally:
        _stop(worker)


def _wait_until(predicate, process: subprocess.Popen, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start within {timeout:.0f} s")
        time.sleep(0.2)


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _answers(port: int, path: str) -> bool:
    try:
        return request(port, "GET", path)[0] == 200
    except OSError:
        return False


def request(port: int, method: str, path: str, headers=None, body: bytes | None = None):
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read(), response
    finally:
        conn.close()


def _served_requests(port: int) -> int:
    """The request count gunicorn's workers recorded in their (multiprocess) histogram."""
    status, body, _ = request(port, "GET", "/metrics", {"Authorization": f"Bearer {METRICS_TOKEN}"})
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    return int(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in body.decode().splitlines()
            if line.startswith("creditledger_http_request_duration_seconds_count{") and 'view="api:' in line
        )
    )


def _drain(timeout: float = 180) -> None:
    """Wait until the worker has reassessed every trader the confirmations flagged."""
    from traders.models import Trader

    deadline = time.monotonic() + timeout
    while Trader.objects.filter(name__startswith=NAME, needs_reassessment=True).exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the worker did not reassess the confirmed reports' traders in time")
        time.sleep(0.5)


# --- load ------------------------------------------------------------------------------------


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    samples: list[str] = field(default_factory=list)

    def record(self, started: float, ok: bool, what: str = "", ended: float | None = None) -> None:
        self.latencies.append(((ended or time.perf_counter()) - started) * 1000)
        if not ok:
            self.errors += 1
            if len(self.samples) < 5:
                self.samples.append(what)

    @property
    def p99(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else float("nan")


@dataclass
class Report:
    key: str
    body: bytes
    id: int | None = None
    resends: int = 0


class Load:
    def __init__(self, port: int, raw_key: str, codes: list[str]) -> None:
        self.port = port
        self.auth = {"Authorization": f"Api-Key {raw_key}"}
        self.codes = codes
        self.lock = threading.Lock()
        self.reports: list[Report] = []
        self.feed_disorder: list[str] = []
        self.head = 0
        self.sent = 0

    # Each operation returns (ok, description of a failure).

    def lookup(self, rng: random.Random, stats: Stats) -> None:
        code = rng.choice(self.codes)
        started = time.perf_counter()
        status, _, _ = request(self.port, "GET", f"/api/v1/traders/{code}", self.auth)
        stats.record(started, status == 200, f"GET traders/{code}: {status}")

    def bulk(self, rng: random.Random, stats: Stats) -> None:
        codes = rng.sample(self.codes, min(BULK, len(self.codes)))
        body = json.dumps({"codes": codes}).encode()
        headers = {**self.auth, "Content-Type": "application/json"}
        started = time.perf_counter()
        status, answer, _ = request(self.port, "POST", "/api/v1/traders/lookup", headers, body)
        ok = status == 200 and json.loads(answer)["found"] == len(codes)
        stats.record(started, ok, f"POST traders/lookup: {status}")

    def feed(self, rng: random.Random, stats: Stats, cursor: list[int]) -> None:
        started = time.perf_counter()
        status, answer, _ = request(
            self.port, "GET", f"/api/v1/changes/?after={cursor[0]}&limit=500", self.auth
        )
        if status != 200:
            stats.record(started, False, f"GET changes/: {status}")
            return
        page = json.loads(answer)
        seqs = [entry["seq"] for entry in page["entries"]]
        if seqs and (seqs[0] <= cursor[0] or seqs != sorted(set(seqs))):
            self.feed_disorder.append(f"after {cursor[0]} got {seqs[:5]}")
        cursor[0] = page["next"]
        stats.record(started, True)

    def report(self, rng: random.Random, stats: Stats) -> None:
        key = uuid.uuid4().hex
        body = json.dumps(
            {
                "trader": rng.choice(self.codes),
                "type": "counterfeit-goods",
                "occurred_on": time.strftime("%Y-%m-%d"),
                "description": f"{MARK}: 商标不符 [{key}]",
            }
        ).encode()
        report = Report(key, body)
        if rng.random() < 0.1:
            self._twins(report, stats)
        else:
            self._post(report, stats)
        with self.lock:
            self.reports.append(report)

    def _twins(self, report: Report, stats: Stats) -> None:
        """The same new report from two connections at once (a platform's retry racing its
        first try): one is written, the other gets its stored answer."""
        headers = {**self.auth, "Content-Type": "application/json", "Idempotency-Key": report.key}
        answers: list = [None, None]

        def send(i: int) -> None:
            started = time.perf_counter()
            try:
                status, answer, response = request(
                    self.port, "POST", "/api/v1/reports/", headers, report.body
                )
                replayed = response.getheader("Idempotent-Replayed") == "true"
                got = json.loads(answer).get("id") if status == 201 else None
                answers[i] = (started, time.perf_counter(), status, got, replayed)
            except OSError:
                answers[i] = (started, time.perf_counter(), None, None, False)

        twin = threading.Thread(target=send, args=(1,))
        twin.start()
        send(0)
        twin.join()
        ids = {answer[3] for answer in answers}
        fresh = [answer for answer in answers if answer[2] == 201 and not answer[4]]
        ok = len(ids) == 1 and None not in ids and len(fresh) == 1
        for started, ended, status, got, replayed in answers:
            what = f"twins {report.key}: {status} id {got} replayed={replayed}"
            stats.record(started, ok, what, ended=ended)
        if ok:
            report.id = ids.pop()
            report.resends += 1

    def resend(self, rng: random.Random, stats: Stats) -> None:
        with self.lock:
            done = [r for r in self.reports if r.id is not None]
        if not done:
            return
        report = rng.choice(done)
        report.resends += 1
        self._post(report, stats, replay=True)

    def _post(self, report: Report, stats: Stats, replay: bool = False) -> None:
        headers = {**self.auth, "Content-Type": "application/json", "Idempotency-Key": report.key}
        for attempt in range(3):  # a platform retries a failed POST with the same key
            started = time.perf_counter()
            try:
                status, answer, response = request(
                    self.port, "POST", "/api/v1/reports/", headers, report.body
                )
            except OSError as exc:
                stats.record(started, False, f"POST reports/ attempt {attempt}: {exc!r}")
                continue
            if status != 201:
                stats.record(started, False, f"POST reports/: {status} {answer[:200]!r}")
                continue
            got = json.loads(answer)["id"]
            replayed = response.getheader("Idempotent-Replayed") == "true"
            if report.id is None and not replay:
                report.id = got
            ok = got == report.id and replayed == replay
            stats.record(started, ok, f"report {report.key}: id {got} vs {report.id}, replayed={replayed}")
            return

    # --- phases ---

    def warm(self) -> None:
        """Every gunicorn worker imports, connects and answers once or twice first."""
        rng, scratch = random.Random(0), Stats()
        for _ in range(10):
            self.lookup(rng, scratch)
            self.bulk(rng, scratch)

    def solo(self, op: str, seconds: float) -> Stats:
        rng, stats, cursor = random.Random(1), Stats(), [0]
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._do(op, rng, stats, cursor)
        return stats

    def _do(self, op: str, rng: random.Random, stats: Stats, cursor: list[int]) -> None:
        if op == "feed":
            self.feed(rng, stats, cursor)
        else:
            getattr(self, op)(rng, stats)

    def mixed(self, seconds: float) -> tuple[dict[str, Stats], float]:
        stats = {op: Stats() for op in MIX}
        deadline = time.monotonic() + seconds
        ops, weights = list(MIX), list(MIX.values())
        lock = threading.Lock()
        stop = threading.Event()

        def client(n: int) -> None:
            rng = random.Random(100 + n)
            mine = {op: Stats() for op in MIX}
            cursor = [max(0, self._head() - 2000)]  # readers start near the head and follow it
            while time.monotonic() < deadline:
                with lock:
                    if self.sent >= MAX_REQUESTS:
                        break
                    self.sent += 1
                op = rng.choices(ops, weights)[0]
                self._do(op, rng, mine[op], cursor)
            with lock:
                for op, s in mine.items():
                    stats[op].latencies += s.latencies
                    stats[op].errors += s.errors
                    stats[op].samples += s.samples

        confirmer = threading.Thread(target=self._confirm_some, args=(stop,))
        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        started = time.perf_counter()
        confirmer.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        stop.set()
        confirmer.join()
        for op, s in stats.items():
            for sample in s.samples[:3]:
                print(f"  {op} error: {sample}", file=sys.stderr, flush=True)
        return stats, elapsed

    def _head(self) -> int:
        from creditledger.ledger.models import LedgerEntry

        return LedgerEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0

    def _confirm_some(self, stop: threading.Event) -> None:
        """A supervisor confirms a new report now and then: the worker then reassesses."""
        from django.db import connection

        from penalties.models import Violation
        from penalties.services import violation_confirm

        actor = _supervisor()
        try:
            while not stop.wait(0.5):
                with self.lock:
                    ids = [r.id for r in self.reports[-20:] if r.id is not None]
                pending = Violation.objects.filter(pk__in=ids, status=Violation.Status.PENDING).first()
                if pending is not None:
                    violation_confirm(actor=actor, violation=pending, note="bench load")
        finally:
            connection.close()


# --- checks ----------------------------------------------------------------------------------


def _check(load: Load) -> list[str]:
    from django.core.management import call_command

    from penalties.models import Violation

    out = []
    call_command("verify_ledger", stdout=_Lines(out, "verify_ledger: "))

    answered = [r for r in load.reports if r.id is not None]
    found = dict(
        Violation.objects.filter(description__startswith=MARK).values_list("description", "id").order_by()
    )
    counts: dict[str, int] = {}
    for description in Violation.objects.filter(description__startswith=MARK).values_list(
        "description", flat=True
    ):
        key = description.rsplit("[", 1)[1].rstrip("]")
        counts[key] = counts.get(key, 0) + 1
    twice = [key for key, n in counts.items() if n > 1]
    missing = [r.key for r in answered if counts.get(r.key) != 1]
    wrong_id = [r.key for r in answered if found.get(f"{MARK}: 商标不符 [{r.key}]") not in (r.id, None)]
    if twice or missing or wrong_id:
        raise RuntimeError(f"reports: {len(twice)} twice, {len(missing)} missing, {len(wrong_id)} wrong id")
    resent = sum(r.resends for r in answered)
    out.append(
        f"{len(answered)} reports answered 201, each exactly once ({resent} resends with the same key)"
    )
    if load.feed_disorder:
        raise RuntimeError(f"feed readers saw seqs out of order: {load.feed_disorder[:3]}")
    out.append("feed readers saw seqs only ever increasing")
    return out


class _Lines:
    def __init__(self, out: list[str], prefix: str) -> None:
        self.out, self.prefix = out, prefix

    def write(self, text: str) -> None:
        if text.strip():
            self.out.append(self.prefix + text.strip())

    def flush(self) -> None:
        pass
