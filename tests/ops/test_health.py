"""/healthz and /readyz: liveness always, readiness only with every dependency up, and a
failing one named."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from django.db import connections
from django.db.migrations import Migration
from django.utils import timezone

from creditledger.celery import app
from creditledger.ops import health, heartbeats
from creditledger.ops.celery_hooks import TICK_TASK
from creditledger.ops.models import Heartbeat
from creditledger.ops.tasks import beat_tick
from tests.ops.conftest import closed_port

pytestmark = pytest.mark.django_db


def _ready(client, expect: int) -> dict:
    response = client.get("/readyz")
    assert response.status_code == expect, response.content
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    return response.json()


def test_readiness_is_green_with_everything_up(client, background_alive):
    body = _ready(client, 200)

    assert body["status"] == "ok"
    assert body["failing"] == []
    assert list(body["checks"]) == ["database", "migrations", "broker", "worker", "beat"]
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["broker"]["transport"] == "redis"
    assert set(body["checks"]["worker"]["age_seconds"]) == {"celery", "scoring", "webhooks", "exports"}


def test_liveness_answers_200_whatever_is_down(client, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"
    with mock.patch.object(health, "check_database", side_effect=Exception("down")):
        response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_a_broker_on_a_closed_port_turns_readiness_red_naming_the_broker(client, settings, background_alive):
    settings.CELERY_BROKER_URL = f"redis://:s3cret-password@127.0.0.1:{closed_port()}/0"

    body = _ready(client, 503)

    assert body["status"] == "fail"
    assert body["failing"] == ["broker"]
    assert body["checks"]["broker"]["ms"] < 5000


def test_an_unreachable_database_turns_readiness_red_and_skips_what_needs_it(
    client, background_alive, monkeypatch
):
    default = connections["default"]
    down = type(default)({**default.settings_dict, "PORT": closed_port()}, "default")
    monkeypatch.setattr(health, "connections", {"default": down})
    try:
        body = _ready(client, 503)
    finally:
        down.close()

    assert body["failing"] == ["database", "migrations", "worker", "beat"]
    assert body["checks"]["database"]["error"] == "OperationalError"
    assert body["checks"]["worker"]["error"] == "skipped: the database is unreachable"
    assert body["checks"]["broker"]["ok"]


def test_an_unapplied_migration_turns_readiness_red_naming_it(client, background_alive, monkeypatch):
    monkeypatch.setattr(health, "_migrations_applied", False)
    pending = [(Migration("0099_future", "ops"), False)]
    with mock.patch("creditledger.ops.health.MigrationExecutor.migration_plan", return_value=pending):
        body = _ready(client, 503)

    assert body["failing"] == ["migrations"]
    assert body["checks"]["migrations"]["unapplied"] == ["ops.0099_future"]


def test_a_stale_worker_heartbeat_turns_readiness_red_naming_the_queue(client, settings, background_alive):
    long_ago = timezone.now() - dt.timedelta(seconds=settings.HEALTH_WORKER_MAX_AGE + 5)
    heartbeats.stamp(heartbeats.worker_name("exports"), at=long_ago)

    body = _ready(client, 503)

    assert body["failing"] == ["worker"]
    assert "exports" in body["checks"]["worker"]["error"]
    assert body["checks"]["worker"]["age_seconds"]["exports"] > settings.HEALTH_WORKER_MAX_AGE


def test_a_queue_no_worker_ever_served_turns_readiness_red(client, background_alive):
    Heartbeat.objects.filter(name="worker:webhooks").delete()

    body = _ready(client, 503)

    assert body["failing"] == ["worker"]
    assert body["checks"]["worker"]["age_seconds"]["webhooks"] is None


def test_a_stale_beat_tick_turns_readiness_red(client, settings, background_alive):
    heartbeats.stamp(
        heartbeats.BEAT, at=timezone.now() - dt.timedelta(seconds=settings.HEALTH_BEAT_MAX_AGE + 1)
    )

    body = _ready(client, 503)

    assert body["failing"] == ["beat"]
    assert body["checks"]["beat"]["error"] == "beat's last tick is too old"


def test_readiness_names_no_secret(client, settings, background_alive):
    settings.CELERY_BROKER_URL = f"redis://:s3cret-password@127.0.0.1:{closed_port()}/0"

    text = client.get("/readyz").content.decode()

    for secret in ("s3cret-password", "redis://", "postgres://", settings.SECRET_KEY + '"'):
        assert secret not in text


def test_probes_skip_the_host_and_https_checks(client, settings, background_alive):
    """Orchestrators and Prometheus address a process by IP, over plain HTTP."""
    settings.ALLOWED_HOSTS = ["creditledger.example.gov.cn"]
    settings.SECURE_SSL_REDIRECT = True

    assert client.get("/healthz", HTTP_HOST="10.0.0.7:8000").status_code == 200
    assert client.get("/readyz", HTTP_HOST="10.0.0.7:8000").status_code == 200
    assert client.get("/admin/", HTTP_HOST="10.0.0.7:8000").status_code == 400


def test_the_tick_stamps_the_worker_of_its_queue(db):
    beat_tick.apply(kwargs={"queue": "scoring"})

    age = heartbeats.ages(["worker:scoring"])["worker:scoring"]
    assert age is not None and age < 5


def test_beat_is_stamped_when_it_sends_a_tick_and_only_then(db):
    from celery import signals

    signals.before_task_publish.send(sender="penalties.tasks.sweep_reassessments", body=None)
    assert heartbeats.ages(["beat"])["beat"] is None

    signals.before_task_publish.send(sender=TICK_TASK, body=None)
    age = heartbeats.ages(["beat"])["beat"]
    assert age is not None and age < 5


def test_beat_sends_a_tick_to_every_queue_readiness_watches(settings):
    ticks = {
        entry["options"]["queue"] for entry in app.conf.beat_schedule.values() if entry["task"] == TICK_TASK
    }
    assert ticks == set(settings.HEALTH_WORKER_QUEUES)
