"""Celery signal handlers: task metrics, the task's log context, beat's heartbeat, JSON logs.

Imported by creditledger/celery.py, so every Celery process (worker, beat) and every
process that only sends tasks (web) has them. Nothing here touches Django at import time:
this module loads while the settings do.
"""

from __future__ import annotations

import logging
import os
import time

from celery import signals

from creditledger.ops import instruments, log_context

log = logging.getLogger(__name__)

TICK_TASK = "creditledger.ops.tasks.beat_tick"

# task id -> (start time, log context token), between prerun and postrun in the same thread.
_running: dict[str, tuple[float, object]] = {}


def queue_of(task) -> str:
    """The queue a task came from; `eager` for tasks run in process (CELERY_TASK_ALWAYS_EAGER)."""
    request = getattr(task, "request", None)
    delivery = getattr(request, "delivery_info", None) or {}
    queue = delivery.get("routing_key")
    if queue:
        return str(queue)
    return "eager" if getattr(request, "is_eager", False) else "unknown"


@signals.task_prerun.connect
def _task_started(task_id=None, task=None, **kwargs) -> None:
    token = log_context.open_scope(task_name=task.name, task_id=task_id)
    _running[task_id] = (time.perf_counter(), token)


@signals.task_postrun.connect
def _task_finished(task_id=None, task=None, state=None, **kwargs) -> None:
    started, token = _running.pop(task_id, (None, None))
    queue = queue_of(task)
    instruments.TASKS.labels(queue, task.name, state or "UNKNOWN").inc()
    if started is not None:
        instruments.TASK_SECONDS.labels(queue, task.name).observe(time.perf_counter() - started)
    if token is not None:
        log_context.close_scope(token)


@signals.task_failure.connect
def _task_failed(sender=None, **kwargs) -> None:
    instruments.TASK_FAILURES.labels(queue_of(sender), sender.name).inc()


@signals.before_task_publish.connect
def _beat_published_a_tick(sender=None, **kwargs) -> None:
    """Only beat sends the tick, so sending one is beat's heartbeat."""
    if sender != TICK_TASK:
        return
    from creditledger.ops import heartbeats

    heartbeats.stamp_quietly(heartbeats.BEAT)


@signals.worker_ready.connect
def _serve_worker_metrics(**kwargs) -> None:
    """With CELERY_METRICS_PORT, the worker's main process serves its own /metrics: a worker
    on a host without the web cannot be scraped through the web's /metrics."""
    from django.conf import settings

    port = getattr(settings, "CELERY_METRICS_PORT", 0)
    if not port:
        return
    from prometheus_client import REGISTRY, CollectorRegistry, start_http_server

    registry = REGISTRY
    if instruments.MULTIPROCESS:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    start_http_server(port, addr=settings.CELERY_METRICS_ADDR, registry=registry)
    log.info("worker metrics on %s:%s", settings.CELERY_METRICS_ADDR, port)


@signals.worker_process_shutdown.connect
def _forget_dead_child(pid=None, **kwargs) -> None:
    if instruments.MULTIPROCESS:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _json_logs(logger=None, **kwargs) -> None:
    """Celery installs its own handlers; with LOG_FORMAT=json give them ours, so worker and
    beat lines are JSON with the task name and id like the web's."""
    from django.conf import settings

    if getattr(settings, "LOG_FORMAT", "plain") != "json" or logger is None:
        return
    from creditledger.ops.logs import ContextFilter, JsonFormatter

    for handler in logger.handlers:
        handler.setFormatter(JsonFormatter())
        if not any(isinstance(f, ContextFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())
