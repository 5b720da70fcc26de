"""The audit pages: who may open them, requesting an export, and who may download it."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from penalties.exports import tasks
from penalties.models import Export

pytestmark = pytest.mark.django_db

INDEX = reverse("audit:index")


def _done_export(user, **fields) -> Export:
    export = Export.objects.create(
        requested_by=user, report="grades", format="csv", filters={"level": "province"}
    )
    tasks.export_run(export.pk)
    export.refresh_from_db()
    assert export.state == Export.State.DONE
    for name, value in fields.items():
        setattr(export, name, value)
    export.save()
    return export


def test_an_officer_cannot_open_the_audit_page(client, officer):
    client.force_login(officer)
    assert client.get(INDEX).status_code == 403
    assert client.get(reverse("audit:request", args=["violations"])).status_code == 403


def test_a_visitor_is_sent_to_the_login_page(client):
    response = client.get(INDEX)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.parametrize("role", ["auditor", "supervisor"])
def test_auditors_and_supervisors_see_the_reports(client, request, role):
    client.force_login(request.getfixturevalue(role))
    response = client.get(INDEX)
    assert response.status_code == 200
    html = response.content.decode()
    for name in ("violations", "measures", "platform_compliance", "grades", "credit_file", "ledger"):
        assert reverse("audit:request", args=[name]) in html


def test_the_admin_home_links_to_the_audit_page_for_those_who_may_export(client, auditor, officer):
    client.force_login(auditor)
    assert INDEX in client.get(reverse("admin:index")).content.decode()
    client.force_login(officer)
    assert INDEX not in client.get(reverse("admin:index")).content.decode()


def test_requesting_an_export_records_it_and_queues_the_job_after_commit(
    client, auditor, django_capture_on_commit_callbacks
):
    client.force_login(auditor)
    url = reverse("audit:request", args=["violations"])
    assert client.get(url).status_code == 200
    with mock.patch.object(tasks.export_run, "apply_async") as publish:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(url, {"region": "33", "status": "confirmed", "format": "xlsx"})
    assert response.status_code == 302
    export = Export.objects.get()
    assert (export.requested_by, export.report, export.format) == (auditor, "violations", "xlsx")
    assert export.filters == {"region": "33", "status": "confirmed"}
    assert export.state == Export.State.REQUESTED
    publish.assert_called_once()
    assert publish.call_args.kwargs["args"] == [export.pk]
    page = client.get(INDEX).content.decode()
    assert 'http-equiv="refresh"' in page  # the page follows a running export


def test_a_bad_filter_is_shown_on_the_form_and_nothing_is_queued(client, auditor):
    client.force_login(auditor)
    response = client.post(
        reverse("audit:request", args=["credit_file"]), {"uscc": "91330106000000017X", "format": "pdf"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors["uscc"]
    assert not Export.objects.exists()


def test_a_broker_that_refuses_the_job_fails_the_export_at_once(
    client, auditor, django_capture_on_commit_callbacks
):
    client.force_login(auditor)
    with mock.patch.object(tasks.export_run, "apply_async", side_effect=OSError("broker down")):
        with django_capture_on_commit_callbacks(execute=True):
            client.post(reverse("audit:request", args=["grades"]), {"level": "city", "format": "csv"})
    export = Export.objects.get()
    assert export.state == Export.State.FAILED and export.error


def test_the_requester_downloads_the_file_and_its_manifest(client, auditor, seeded):
    export = _done_export(auditor)
    client.force_login(auditor)
    page = client.get(INDEX).content.decode()
    assert reverse("audit:download", args=[export.pk]) in page
    response = client.get(reverse("audit:download", args=[export.pk]))
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert body.startswith(b"\xef\xbb\xbf")
    assert export.filename in response["Content-Disposition"]
    import hashlib

    assert hashlib.sha256(body).hexdigest() == export.sha256
    manifest = client.get(reverse("audit:manifest", args=[export.pk]))
    assert manifest.status_code == 200 and manifest.json()["sha256"] == export.sha256


def test_an_auditor_cannot_download_another_auditors_export(client, auditor, other_auditor, supervisor):
    export = _done_export(auditor)
    for intruder in (other_auditor, supervisor):
        client.force_login(intruder)
        assert client.get(reverse("audit:download", args=[export.pk])).status_code == 404
        assert client.get(reverse("audit:manifest", args=[export.pk])).status_code == 404
        assert reverse("audit:download", args=[export.pk]) not in client.get(INDEX).content.decode()


def test_an_officer_cannot_download_at_all(client, auditor, officer):
    export = _done_export(auditor)
    client.force_login(officer)
    assert client.get(reverse("audit:download", args=[export.pk])).status_code == 403


def test_an_expired_export_is_no_longer_downloadable(client, auditor):
    export = _done_export(auditor, expires_at=timezone.now() - dt.timedelta(seconds=1))
    client.force_login(auditor)
    assert client.get(reverse("audit:download", args=[export.pk])).status_code == 404
