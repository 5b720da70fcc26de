"""The Celery app. Settings come from Django settings (CELERY_* names)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creditledger.settings")

app = Celery("creditledger")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["penalties.exports"])  # export jobs live in a sub-package

# Task metrics and log context, beat's heartbeat, JSON logs for Celery's own handlers.
from creditledger.ops import celery_hooks  # noqa: E402, F401
