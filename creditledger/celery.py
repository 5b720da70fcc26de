"""The Celery app. Settings come from Django settings (CELERY_* names)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creditledger.settings")

app = Celery("creditledger")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["penalties.reports"])  # export jobs live in a sub-package

# Task metrics and log context, beat's heartbeat, JSON logs for Celery's own handlers.
from creditledger.ops import celery_hooks  # noqa: E402, F401


@app.on_after_configure.connect
def _beat_schedule(sender, **kwargs):
    """Periodic jobs, in code. Read here, not at import: this module loads with the settings."""
    from django.conf import settings

    every = settings.LEDGER_CHECKPOINT_SECONDS
    sender.conf.beat_schedule = {
        **(sender.conf.beat_schedule or {}),
        "ledger-checkpoint": {
            "task": "creditledger.ledger.tasks.ledger_checkpoint",
            "schedule": every,
            "options": {"expires": every},  # a backlog after an outage is one run, not many
        },
    }
