"""/healthz (liveness) and /readyz (readiness), both JSON.

Liveness says the process answers and touches nothing else: a database outage must not
make an orchestrator restart every web process. Readiness checks what serving needs —
the database (and the replica when there is one), migrations, the broker — and whether the
background side runs: a recent heartbeat from a worker on each queue and a recent tick
from beat. Any failing check makes it 503 and names itself. The answer names transports
and exception classes, never URLs, hosts or credentials; details go to the log.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from creditledger.ops import heartbeats

log = logging.getLogger(__name__)

Check = Callable[[], dict]


class Skipped(Exception):
    """A check that cannot run because one it depends on failed."""


def _database(alias: str) -> dict:
    connection = connections[alias]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        # The next request (or probe) must reconnect rather than reuse a broken connection.
        connection.close()
        raise
    return {"ok": True, "vendor": connection.vendor}


def check_database() -> dict:
    return _database(DEFAULT_DB_ALIAS)


def check_replica() -> dict:
    result = _database("replica")
    if connections["replica"].vendor == "postgresql":
        with connections["replica"].cursor() as cursor:
            # Seconds since the last replayed transaction; NULL on a primary. Informational:
            # the feed tolerates lag (it shows entries later, never out of order).
            cursor.execute("SELECT EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())")
            lag = cursor.fetchone()[0]
        result["lag_seconds"] = None if lag is None else round(float(lag), 1)
    return result


# Once this process's migrations are all applied they stay applied (a rollback means a
# redeploy), so the ~50 ms of loading the migration graph is paid until then only.
_migrations_applied = False


def check_migrations() -> dict:
    global _migrations_applied
    if _migrations_applied:
        return {"ok": True}
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        names = [f"{migration.app_label}.{migration.name}" for migration, _backwards in plan]
        return {"ok": False, "error": f"{len(plan)} unapplied", "unapplied": names[:10]}
    _migrations_applied = True
    return {"ok": True}


def broker_transport() -> str:
    return settings.CELERY_BROKER_URL.split("://", 1)[0] or "unknown"


def check_broker() -> dict:
    transport = broker_transport()
    if transport == "memory":
        return {"ok": True, "transport": transport}
    if transport == "filesystem":
        # No server to reach (make run): the queue folder must be there and writable.
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        if not (folder.is_dir() and os.access(folder, os.W_OK)):
            return {"ok": False, "transport": transport, "error": "queue folder missing or read-only"}
        return {"ok": True, "transport": transport}
    from kombu import Connection

    timeout = settings.HEALTH_BROKER_TIMEOUT
    options = {
        **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "max_retries": 0,
    }
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=timeout, transport_options=options) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
        if transport in ("redis", "rediss"):
            # Connecting alone proves little on Redis (the client connects lazily).
            conn.default_channel.client.ping()
    return {"ok": True, "transport": transport}


def check_workers() -> dict:
    queues = settings.HEALTH_WORKER_QUEUES
    ages = heartbeats.ages([heartbeats.worker_name(q) for q in queues])
    by_queue = {q: _rounded(ages[heartbeats.worker_name(q)]) for q in queues}
    late = [q for q, age in by_queue.items() if age is None or age > settings.HEALTH_WORKER_MAX_AGE]
    result = {"ok": not late, "age_seconds": by_queue, "max_age_seconds": settings.HEALTH_WORKER_MAX_AGE}
    if late:
        result["error"] = f"no recent heartbeat from a worker on {', '.join(late)}"
    return result


def check_beat() -> dict:
    age = _rounded(heartbeats.ages([heartbeats.BEAT])[heartbeats.BEAT])
    ok = age is not None and age <= settings.HEALTH_BEAT_MAX_AGE
    result = {"ok": ok, "age_seconds": age, "max_age_seconds": settings.HEALTH_BEAT_MAX_AGE}
    if not ok:
        result["error"] = "no tick from beat yet" if age is None else "beat's last tick is too old"
    return result


def _rounded(age: float | None) -> float | None:
    return None if age is None else round(age, 1)


def checks() -> list[tuple[str, Check, bool]]:
    """(name, check, needs the database) in the order they run."""
    found: list[tuple[str, Check, bool]] = [("database", check_database, False)]
    if "replica" in settings.DATABASES and settings.API_READ_DATABASE == "replica":
        found.append(("replica", check_replica, False))
    found += [
        ("migrations", check_migrations, True),
        ("broker", check_broker, False),
        ("worker", check_workers, True),
        ("beat", check_beat, True),
    ]
    return found


def readiness() -> dict:
    results: dict[str, dict] = {}
    for name, check, needs_database in checks():
        started = time.perf_counter()
        try:
            if needs_database and not results["database"]["ok"]:
                raise Skipped
            result = check()
        except Skipped:
            result = {"ok": False, "error": "skipped: the database is unreachable"}
        except Exception as exc:
            log.warning("readiness check %s failed", name, exc_info=True)
            result = {"ok": False, "error": type(exc).__name__}
        result["ms"] = round((time.perf_counter() - started) * 1000, 1)
        results[name] = result
    failing = [name for name, result in results.items() if not result["ok"]]
    return {"status": "fail" if failing else "ok", "failing": failing, "checks": results}


@never_cache
def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request):
    report = readiness()
    return JsonResponse(report, status=503 if report["failing"] else 200)
