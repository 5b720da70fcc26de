"""What every Celery task of the project shares: transient-error retries and a cap on
redeliveries of one message."""

from __future__ import annotations

import logging

from celery import Task
from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError

log = logging.getLogger(__name__)

# Only errors that a later try can cure: a dropped connection, a lock timeout, a deadlock
# (PostgreSQL reports those as OperationalError). Bugs and bad data fail at once.
TRANSIENT_ERRORS = (OperationalError, InterfaceError)


class ReliableTask(Task):
    """acks_late + reject_on_worker_lost give a message back when its worker dies; a message
    that kills its worker every time would come back forever. Count deliveries per task id
    in the shared cache and drop the message after CELERY_MAX_DELIVERIES (logged)."""

    abstract = True
    autoretry_for = TRANSIENT_ERRORS
    max_retries = 5
    retry_backoff = 2
    retry_backoff_max = settings.CELERY_RETRY_BACKOFF_MAX
    retry_jitter = True

    def __call__(self, *args, **kwargs):
        task_id = getattr(self.request, "id", None)
        if task_id and not self.request.is_eager:
            key = f"celery:deliveries:{task_id}:{self.request.retries}"
            cache.add(key, 0, timeout=settings.CELERY_VISIBILITY_TIMEOUT * 4)
            try:
                deliveries = cache.incr(key)
            except ValueError:  # evicted between add and incr
                deliveries = 1
            if deliveries > settings.CELERY_MAX_DELIVERIES:
                log.error("%s[%s]: delivered %s times, giving up", self.name, task_id, deliveries)
                return None
        return super().__call__(*args, **kwargs)
