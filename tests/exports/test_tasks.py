"""The export job end to end: claim, stream, store, manifest; twice-safe; failures; expiry."""

from __future__ import annotations

import datetime as dt
import hashlib
from unittest import mock

import pytest
from django.db import OperationalError
from django.utils import timezone

from creditledger.exceptions import PermissionDenied
from creditledger.ledger.actors import Actor
from penalties.exports import manifest, services, tasks
from penalties.models import Export

pytestmark = pytest.mark.django_db


def _request(user, report="violations", fmt="csv", **filters) -> Export:
    with mock.patch.object(tasks.export_run, "apply_async"):
        return services.export_request(
            actor=Actor.for_user(user), report=report, file_format=fmt, filters=filters
        )


def test_the_task_runs_an_export_end_to_end(seeded, auditor, tmp_path):
    export = _request(auditor, fmt="xlsx", region="33")
    assert tasks.export_run(export.pk) == Export.State.DONE
    export.refresh_from_db()
    assert export.state == Export.State.DONE
    assert export.started_at <= export.finished_at < export.expires_at
    assert export.rows_total == export.rows_done == export.row_count > 0
    assert export.filename.startswith("violations-") and export.filename.endswith(".xlsx")
    with export.file.open("rb") as handle:
        body = handle.read()
    assert hashlib.sha256(body).hexdigest() == export.sha256 == export.manifest["sha256"]
    assert export.manifest["filters"] == {"region": "33"}
    assert export.manifest["generated_by"] == f"user:{auditor.pk}"
    copy = tmp_path / export.filename
    copy.write_bytes(body)
    assert manifest.verify(copy, export.manifest) == []


def test_a_second_delivery_does_nothing(db, auditor):
    export = _request(auditor, report="grades")
    tasks.export_run(export.pk)
    export.refresh_from_db()
    first = (export.file.name, export.sha256, export.finished_at)
    assert tasks.export_run(export.pk) is None
    export.refresh_from_db()
    assert (export.file.name, export.sha256, export.finished_at) == first


def test_a_run_whose_worker_died_is_taken_over_after_the_time_limit(db, auditor, settings):
    export = _request(auditor, report="grades")
    Export.objects.filter(pk=export.pk).update(state="running", started_at=timezone.now())
    assert tasks.export_run(export.pk) is None  # still running elsewhere, as far as we know
    assert tasks.export_run.time_limit == services.job_time_limit() >= settings.CELERY_TASK_TIME_LIMIT
    long_ago = timezone.now() - dt.timedelta(seconds=services.job_time_limit() + 1)
    Export.objects.filter(pk=export.pk).update(started_at=long_ago)
    assert tasks.export_run(export.pk) == Export.State.DONE


def test_an_error_fails_the_export_and_says_why(db, auditor):
    export = _request(auditor, report="grades")
    Export.objects.filter(pk=export.pk).update(filters={"level": "planet"})
    assert tasks.export_run(export.pk) == Export.State.FAILED
    export.refresh_from_db()
    assert "planet" in export.error and not export.file


def test_a_transient_database_error_hands_the_job_back_for_a_retry(db, auditor):
    export = _request(auditor, report="grades")
    with mock.patch.object(services, "_run", side_effect=OperationalError("connection reset")):
        with pytest.raises(OperationalError):
            services.export_run(export_id=export.pk)
    export.refresh_from_db()
    assert export.state == Export.State.REQUESTED
    assert tasks.export_run(export.pk) == Export.State.DONE


def test_an_officer_cannot_request_an_export(db, officer):
    with pytest.raises(PermissionDenied):
        _request(officer)
    assert not Export.objects.exists()


def test_expired_exports_lose_their_files(db, auditor):
    export = _request(auditor, report="grades")
    tasks.export_run(export.pk)
    export.refresh_from_db()
    storage, name = export.file.storage, export.file.name
    assert storage.exists(name)
    Export.objects.filter(pk=export.pk).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    assert tasks.exports_expire() == 1
    export.refresh_from_db()
    assert export.state == Export.State.EXPIRED and not export.file and not storage.exists(name)
    assert export.manifest  # the manifest stays: what was exported remains on record


def test_the_export_task_is_routed_to_the_exports_queue(settings):
    from creditledger.celery import app

    route = app.amqp.router.route({}, tasks.export_run.name)
    assert route["queue"].name == "exports"
    assert tasks.export_run.name in app.tasks
