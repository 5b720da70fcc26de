"""The Celery settings that make a measure happen exactly once, pinned."""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings
from django.db import OperationalError

from creditledger.celery import app
from creditledger.tasks import TRANSIENT_ERRORS, ReliableTask


def test_a_task_is_acknowledged_after_it_ran_and_given_back_if_its_worker_dies():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.worker_cancel_long_running_tasks_on_connection_loss is True


def test_the_visibility_timeout_outlasts_the_longest_task_and_the_longest_retry_wait():
    timeout = settings.CELERY_VISIBILITY_TIMEOUT
    assert timeout > app.conf.task_time_limit + settings.CELERY_RETRY_BACKOFF_MAX
    assert app.conf.task_soft_time_limit < app.conf.task_time_limit
    if settings.CELERY_BROKER_URL.startswith("redis"):
        assert app.conf.broker_transport_options["visibility_timeout"] == timeout


def test_queues_routes_and_one_utc_beat_schedule_in_code():
    routes = app.conf.task_routes
    assert routes["penalties.tasks.*"] == {"queue": "scoring"}
    assert routes["creditledger.api.tasks.*"] == {"queue": "webhooks"}
    assert routes["penalties.exports.tasks.*"] == {"queue": "exports"}
    assert app.conf.timezone == "UTC" and app.conf.enable_utc
    schedule = app.conf.beat_schedule
    app.loader.import_default_modules()  # what a worker does at start: autodiscovery
    assert schedule["sweep-reassessments"]["schedule"] == 60.0
    assert schedule["nightly-reassess"]["task"] == "penalties.tasks.nightly_reassess"
    assert schedule["ledger-checkpoint"]["task"] == "creditledger.ledger.tasks.ledger_checkpoint"
    for name, entry in schedule.items():
        assert entry["task"] in app.tasks, name
        assert entry.get("options", {}).get("expires"), f"{name}: a missed run must not pile up"


def test_only_transient_errors_are_retried_with_backoff_and_jitter():
    from penalties.tasks import reassess_trader, sweep_reassessments

    for task in (reassess_trader, sweep_reassessments):
        assert isinstance(task, ReliableTask)
        assert tuple(task.autoretry_for) == TRANSIENT_ERRORS
        assert task.max_retries == 5
        assert task.retry_backoff and task.retry_jitter
        assert task.retry_backoff_max == settings.CELERY_RETRY_BACKOFF_MAX
    assert OperationalError in TRANSIENT_ERRORS
    assert ValueError not in TRANSIENT_ERRORS


@pytest.mark.django_db
def test_a_message_delivered_too_often_is_dropped(settings, monkeypatch):
    """A poison message (one that kills its worker every time) comes back forever with
    acks_late; past CELERY_MAX_DELIVERIES deliveries the task gives up instead of running."""
    from penalties.tasks import reassess_trader
    from tests import factories

    settings.CELERY_MAX_DELIVERIES = 2
    trader = factories.TraderFactory()
    calls = []
    monkeypatch.setattr("penalties.tasks.trader_reassess_if_free", lambda **kw: calls.append(kw))
    request = {"id": f"message-{uuid.uuid4()}", "retries": 0, "is_eager": False}
    for _ in range(4):
        reassess_trader.push_request(**request)
        try:
            reassess_trader(trader.pk)
        finally:
            reassess_trader.pop_request()
    assert len(calls) == 2
