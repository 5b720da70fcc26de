"""The heartbeat tick. Beat sends one per queue every HEALTH_TICK_SECONDS; the worker that
runs it proves the queue is being consumed (beat's side is stamped as it publishes: see
celery_hooks)."""

from __future__ import annotations

from celery import shared_task

from creditledger.ops import heartbeats
from creditledger.ops.celery_hooks import TICK_TASK


@shared_task(name=TICK_TASK, ignore_result=True)
def beat_tick(queue: str) -> None:
    heartbeats.stamp(heartbeats.worker_name(queue))
