"""The export sweeper: a run whose worker stopped and a request whose message was lost are
queued again, up to EXPORT_MAX_ATTEMPTS, then failed with export.failed; two sweeps at once
queue each export once. Messages go to a real private Redis; the end-to-end test kills a
real `celery worker` mid-export."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from pathlib import Path

import psycopg2
import pytest
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from creditledger.ledger.actors import Actor
from creditledger.ledger.models import LedgerEntry
from penalties.exports import manifest, services, tasks
from penalties.models import Export
from tests.worker import wait_for

State = Export.State


def _request(user, report="grades") -> Export:
    return services.export_request(actor=Actor.for_user(user), report=report, file_format="csv", filters={})


def _redis():
    return tasks.export_run.app.connection_for_write().default_channel.client


def _queued(queue: str = "exports") -> list[int]:
    """The export ids of the export_run messages waiting in `queue`, oldest first."""
    ids = []
    for raw in reversed(_redis().lrange(queue, 0, -1)):
        message = json.loads(raw)
        assert message["headers"]["task"] == tasks.export_run.name
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        ids.append(args[0])
    return ids


def _later(settings, after: dt.datetime | None = None) -> dt.datetime:
    """A time at which every unfinished export counts as stalled."""
    wait = max(settings.EXPORT_STUCK_SECONDS, settings.EXPORT_REQUEUE_SECONDS) + 1
    return (after or timezone.now()) + dt.timedelta(seconds=wait)


def _entries(export: Export, action: str):
    return LedgerEntry.objects.filter(action=action, subject_type="export", subject_id=str(export.pk))


@pytest.fixture
def sweep(django_capture_on_commit_callbacks):
    """Run the sweeper as of `now`, publishing what it queues when it commits."""

    def run(now):
        with django_capture_on_commit_callbacks(execute=True):
            return services.exports_sweep(now=now)

    return run


@pytest.mark.django_db
def test_a_stalled_run_and_a_lost_request_are_queued_again(auditor, broker, sweep, settings):
    stalled, lost = _request(auditor), _request(auditor)  # `db` tests never commit: no message
    assert services._claim(stalled.pk, timezone.now()) == 1  # its worker then died
    now = timezone.now()
    assert sweep(now).requeued == []  # neither is stale yet
    later = _later(settings)
    result = sweep(later)
    assert sorted(result.requeued) == [stalled.pk, lost.pk] and result.failed == []
    assert sorted(_queued()) == [stalled.pk, lost.pk]
    for export in (stalled, lost):
        export.refresh_from_db()
        assert (export.state, export.attempts, export.progress_at) == (State.REQUESTED, 2, later)
    assert sweep(later).requeued == []  # queued just now: not stale any more
    for export in (stalled, lost):
        assert tasks.export_run(export.pk) == State.DONE
        entry = _entries(export, manifest.COMPLETED).get()
        assert entry.payload["attempt"] == 2


@pytest.mark.django_db
def test_the_run_the_sweeper_gave_up_on_changes_nothing_if_it_wakes(auditor, broker, sweep, settings):
    export = _request(auditor)
    assert services._claim(export.pk, timezone.now()) == 1
    sweep(_later(settings))  # thought dead: attempt 2 is queued
    export.refresh_from_db()
    services._run(export, 1)  # ... but it was only slow, and now finishes
    export.refresh_from_db()
    assert (export.state, export.attempts, export.sha256) == (State.REQUESTED, 2, "")
    assert not _entries(export, manifest.COMPLETED).exists()
    assert _stored(export) == []  # its file deleted: it belongs to no export
    assert tasks.export_run(export.pk) == State.DONE  # attempt 2 runs it once


def _stored(export: Export) -> list:
    root = Path(export.file.storage.location) / "exports"
    return list(root.rglob("*.csv")) if root.exists() else []


@pytest.mark.django_db
def test_after_the_last_attempt_the_export_fails_saying_why(auditor, broker, sweep, settings, client):
    settings.EXPORT_MAX_ATTEMPTS = 3
    lost, stalled = _request(auditor), _request(auditor)
    now = timezone.now()
    for attempt in (2, 3):
        now = _later(settings, now)
        assert services._claim(stalled.pk, now) == attempt - 1  # a worker takes it, then dies
        assert sorted(sweep(_later(settings, now)).requeued) == [lost.pk, stalled.pk]
        now = _later(settings, now)
    assert services._claim(stalled.pk, now) == 3
    _redis().delete("exports")
    result = sweep(_later(settings, now))
    assert result.requeued == [] and sorted(result.failed) == [lost.pk, stalled.pk]
    assert _queued() == []
    for export, reason in (
        (lost, "No worker took the export in 3 attempts"),
        (stalled, "The export stopped making progress 3 times"),
    ):
        export.refresh_from_db()
        assert export.state == State.FAILED and export.attempts == 3
        assert export.error.startswith(reason) and "request the export again" in export.error
        entry = _entries(export, "export.failed").get()
        assert (entry.actor, entry.payload["reason"], entry.payload["attempts"]) == (
            "system:export_run",
            export.error,
            3,
        )
    assert tasks.export_run(stalled.pk) is None  # a late delivery finds it failed
    # The audit page shows the attempts and why it failed.
    client.force_login(auditor)
    html = client.get(reverse("audit:index")).content.decode()
    assert '<td class="export-attempts">3</td>' in html
    assert f'<small class="export-error">{stalled.error}</small>' in html.replace("&#x27;", "'")


@pytest.mark.django_db
def test_a_redelivered_message_cannot_take_a_run_over_past_the_last_attempt(auditor, settings):
    settings.EXPORT_MAX_ATTEMPTS = 1
    export = _request(auditor)
    assert services._claim(export.pk, timezone.now()) == 1
    past_the_time_limit = timezone.now() + dt.timedelta(seconds=services.job_time_limit() + 1)
    assert services._claim(export.pk, past_the_time_limit) is None  # the sweeper fails it


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_queue_each_export_once(auditor, broker, settings):
    exports = sorted(_request(auditor).pk for _ in range(3))
    assert sorted(_queued()) == exports  # published on commit ...
    _redis().delete("exports")  # ... and lost
    later = _later(settings)
    holding, release, first = threading.Event(), threading.Event(), {}

    def sweep_and_hold():
        try:
            with transaction.atomic():  # the rows stay locked until this commits
                first["sweep"] = services.exports_sweep(now=later)
                holding.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=sweep_and_hold)
    thread.start()
    try:
        assert holding.wait(30)
        second = services.exports_sweep(now=later)  # meanwhile, a second beat's sweep
    finally:
        release.set()
        thread.join(30)
    assert second.requeued == [] and sorted(first["sweep"].requeued) == exports
    assert sorted(_queued()) == exports
    assert services.exports_sweep(now=later).requeued == []
    assert sorted(_queued()) == exports
    assert set(Export.objects.values_list("attempts", flat=True)) == {2}


def _blocker():
    db = connection.settings_dict
    return psycopg2.connect(
        dbname=db["NAME"], user=db["USER"], host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432
    )


def _waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = %s",
            [connection.settings_dict["NAME"]],
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_export_and_a_lost_message_are_finished_after_a_sweep(
    auditor, broker, workers, settings, tmp_path
):
    # Redis would hand the killed worker's message out again only after an hour: what
    # finishes these exports is the sweeper.
    slow_redelivery = {
        "queues": "exports",
        "extra_env": {"CELERY_VISIBILITY_TIMEOUT": "3600", "MEDIA_ROOT": str(settings.MEDIA_ROOT)},
    }
    lost = _request(auditor)
    _redis().delete("exports")
    stalled = _request(auditor)
    blocker = _blocker()
    try:
        with blocker.cursor() as cursor:  # the grades register reads traders: it waits here
            cursor.execute("LOCK TABLE traders_trader IN ACCESS EXCLUSIVE MODE")
        doomed = workers("doomed", **slow_redelivery)
        wait_for(_waiting_on_a_lock, what="the worker to be inside the export")
        assert Export.objects.get(pk=stalled.pk).state == State.RUNNING
        doomed.kill9()
    finally:
        blocker.rollback()
        blocker.close()
    assert Export.objects.get(pk=lost.pk).state == State.REQUESTED
    result = services.exports_sweep(now=_later(settings))
    assert sorted(result.requeued) == sorted([lost.pk, stalled.pk])
    workers("survivor", **slow_redelivery)
    done = {State.DONE}
    wait_for(
        lambda: (
            set(Export.objects.filter(pk__in=[lost.pk, stalled.pk]).values_list("state", flat=True)) == done
        ),
        timeout=60,
        what="both exports to finish",
    )
    for export in (lost, stalled):
        export.refresh_from_db()
        assert export.attempts == 2
        assert _entries(export, manifest.COMPLETED).count() == 1
        path = tmp_path / f"{export.pk}.csv"
        with export.file.open("rb") as handle:
            path.write_bytes(handle.read())
        verdict = manifest.verify_all(path, export.manifest)
        assert verdict.faults == [] and verdict.entry.payload["attempt"] == 2
