"""gunicorn settings for `make serve` and production: `gunicorn -c gunicorn.conf.py creditledger.wsgi`.

Every value from the environment; a bad one stops start-up naming the variable.
Workers × threads is the number of requests served at once, and the number of database
connections the web side may hold (see docs/deploy.md, "PostgreSQL").
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
from pathlib import Path


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"Environment variable {name}: {raw!r} is not an integer") from None
    if value < 0:
        raise SystemExit(f"Environment variable {name}: must not be negative")
    return value


bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",")
workers = _int("GUNICORN_WORKERS", 2 * multiprocessing.cpu_count() + 1)
# More than one thread makes gunicorn use its threaded worker (gthread).
threads = _int("GUNICORN_THREADS", 1)
timeout = _int("GUNICORN_TIMEOUT", 60)  # evidence uploads are the slowest requests
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Recycle a worker after this many requests (with jitter, so they do not all restart at once).
max_requests = _int("GUNICORN_MAX_REQUESTS", 10000)
max_requests_jitter = max_requests // 10
# The Django app writes its own access line (LOG_REQUESTS, with the request id); gunicorn's
# access log is off unless asked for ("-" for stdout).
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# The proxy in front sets X-Forwarded-Proto; trust it only from these addresses.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None
if os.environ.get("LOG_FORMAT") == "json":
    # gunicorn's own lines (start, worker boots and timeouts) as JSON too, like the app's.
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {"()": "creditledger.ops.logs.JsonFormatter"},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
        },
        "loggers": {
            "gunicorn.error": {"handlers": ["console"], "level": loglevel.upper(), "propagate": False},
            # The app's own request line (LOG_REQUESTS) carries the request id; gunicorn's
            # access line only when asked for.
            "gunicorn.access": {
                "handlers": ["console"],
                "level": "INFO" if accesslog else "WARNING",
                "propagate": False,
            },
        },
    }
proc_name = "creditledger-web"

_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def on_starting(server) -> None:
    """prometheus_client's multiprocess mode keeps one file per worker pid; files from a
    previous run would be summed in with this one's."""
    if _metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
        Path(_metrics_dir).mkdir(parents=True, exist_ok=True)


def child_exit(server, worker) -> None:
    if _metrics_dir:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
