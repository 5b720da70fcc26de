"""Export jobs. Thin: an id in, the service does the work. Routed to the `exports` queue
(CELERY_TASK_ROUTES: penalties.exports.tasks.*)."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from creditledger.tasks import ReliableTask
from penalties.exports import services

TIME_LIMIT = services.job_time_limit()


@shared_task(base=ReliableTask, time_limit=TIME_LIMIT, soft_time_limit=TIME_LIMIT - 60)
def export_run(export_id: int) -> str | None:
    """Run one export. Safe to deliver twice: the claim lets one run through."""
    export = services.export_run(export_id=export_id)
    return export.state if export else None


@shared_task(base=ReliableTask)
def exports_sweep() -> int:
    """Queue again the exports whose job stalled, and fail those out of attempts (beat,
    every minute). Returns how many it queued again."""
    sweep = services.exports_sweep(now=timezone.now())
    return len(sweep.requeued)


@shared_task(base=ReliableTask)
def exports_expire() -> int:
    """Delete expired export files (each export run also does this on its way out)."""
    return services.exports_expire(now=timezone.now())
