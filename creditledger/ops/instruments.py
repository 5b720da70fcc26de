"""The process-side Prometheus instruments: request latency and Celery task figures.

No Django here: the Celery hooks import this before Django is set up. Under gunicorn or a
prefork Celery worker set PROMETHEUS_MULTIPROC_DIR (before the process starts) so that the
children's figures are summed at scrape time; see docs/deploy.md.
"""

from __future__ import annotations

import os

from prometheus_client import Counter, Histogram

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

REQUEST_SECONDS = Histogram(
    "creditledger_http_request_duration_seconds",
    "Time from the request reaching Django to the response leaving it, by resolved view.",
    ["view", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

TASKS = Counter(
    "creditledger_celery_tasks",
    "Celery tasks run, by queue, task and final state (SUCCESS, FAILURE, RETRY, ...).",
    ["queue", "task", "state"],
)
TASK_FAILURES = Counter(
    "creditledger_celery_task_failures",
    "Celery task runs that failed for good (not retried), by queue and task.",
    ["queue", "task"],
)
TASK_SECONDS = Histogram(
    "creditledger_celery_task_duration_seconds",
    "Celery task run time, by queue and task.",
    ["queue", "task"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0),
)

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def observe_request(view: str, method: str, status: int, seconds: float) -> None:
    method = method if method in HTTP_METHODS else "other"  # label values stay a small set
    REQUEST_SECONDS.labels(view, method, f"{status // 100}xx").observe(seconds)
