"""Sign-ins, failures, lockouts, sign-outs and admin log entries land in the ledger."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth import authenticate
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.http import HttpResponse
from django.test import Client, RequestFactory

from creditledger.guard import services
from creditledger.guard.middleware import SignInRecordMiddleware
from creditledger.ledger.models import LedgerEntry
from tests import factories
from tests.guard.conftest import PASSWORD, sign_in

pytestmark = pytest.mark.django_db


def _entries(action: str) -> list[LedgerEntry]:
    return list(LedgerEntry.objects.filter(action=action).order_by("seq"))


def test_a_sign_in_is_recorded_with_the_user_and_address(alice):
    assert sign_in(Client(), "alice", PASSWORD, "10.0.0.5").status_code == 302
    [entry] = _entries("staff.signed_in")
    assert entry.actor == f"user:{alice.pk}"
    assert (entry.subject_type, entry.subject_id) == ("user", str(alice.pk))
    assert entry.payload == {"username": "alice", "address": "10.0.0.5"}


def test_a_sign_out_is_recorded(alice):
    client = Client()
    sign_in(client, "alice", PASSWORD, "10.0.0.5")
    assert client.post("/admin/logout/", REMOTE_ADDR="10.0.0.5").status_code == 200
    [entry] = _entries("staff.signed_out")
    assert entry.actor == f"user:{alice.pk}"


def test_a_failed_sign_in_records_the_username_as_typed_never_the_password(alice):
    sign_in(Client(), "alice", "hunter2-secret", "10.0.0.6")
    sign_in(Client(), "nobody", "other-secret", "10.0.0.6")
    first, second = _entries("staff.sign_in_failed")
    assert first.actor == "client:10.0.0.6"
    assert first.subject_id == str(alice.pk)
    assert first.payload == {"username": "alice", "address": "10.0.0.6", "failures": 1, "locked": False}
    assert second.subject_id == "unknown" and second.payload["username"] == "nobody"
    for entry in (first, second):
        assert "secret" not in entry.body_text
    assert not _entries("staff.signed_in")


def test_a_username_too_long_for_any_account_is_recorded_cut_short(db):
    response = sign_in(Client(), "x" * 500, "wrong", "10.0.0.7")
    assert response.status_code == 200
    [entry] = _entries("staff.sign_in_failed")
    assert entry.payload["username"] == "x" * services.USERNAME_MAX


def test_characters_the_ledger_refuses_are_replaced_not_fatal(db):
    entry = services.staff_sign_in_failed(username="ev\x00il\ud800", address="10.0.0.7")
    assert entry.payload["username"] == "ev\ufffdil?"


def test_a_lockout_is_recorded_once_and_refused_attempts_as_failures(alice, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(5):
        sign_in(Client(), "alice", "wrong", "10.0.0.8")
    failures = _entries("staff.sign_in_failed")
    assert [(e.payload["failures"], e.payload["locked"]) for e in failures] == [
        (1, False),
        (2, False),
        (3, False),
        (4, True),
        (5, True),
    ]
    [lockout] = _entries("staff.locked_out")
    assert lockout.payload == {
        "username": "alice",
        "address": "10.0.0.8",
        "failures": 3,
        "cool_off_minutes": 15,
    }
    assert lockout.actor == "client:10.0.0.8"
    # The failure that reached the limit comes first, then the lockout it caused.
    assert failures[2].seq < lockout.seq < failures[3].seq


def test_a_failed_sign_in_survives_the_rollback_of_the_view_that_tried_it(alice):
    def view(request):
        with transaction.atomic():
            assert authenticate(request, username="alice", password="wrong") is None
            LogEntry.objects.all().exists()
            transaction.set_rollback(True)  # the view's work is undone
        return HttpResponse("no")

    request = RequestFactory().post("/somewhere/", REMOTE_ADDR="10.0.0.9")
    SignInRecordMiddleware(view)(request)
    [entry] = _entries("staff.sign_in_failed")
    assert entry.payload["address"] == "10.0.0.9"


def test_an_admin_change_is_recorded_with_its_object_and_message(db):
    admin_user = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin_user)
    response = client.post("/admin/auth/group/add/", {"name": "Reviewers", "permissions": []})
    assert response.status_code == 302
    group = Group.objects.get(name="Reviewers")
    [entry] = _entries("admin.logged")
    log = LogEntry.objects.get(object_id=str(group.pk), content_type=ContentType.objects.get_for_model(Group))
    assert entry.actor == f"user:{admin_user.pk}"
    assert (entry.subject_type, entry.subject_id) == ("admin_log", str(log.pk))
    assert entry.payload["action"] == "added"
    assert entry.payload["object"] == {"type": "auth.group", "id": str(group.pk), "repr": "Reviewers"}
    assert entry.payload["change_message"] == log.change_message


def test_deleting_several_objects_at_once_records_each_deletion(db):
    admin_user = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    groups = [Group.objects.create(name=f"Temp {n}") for n in range(2)]
    client = Client()
    client.force_login(admin_user)
    response = client.post(
        "/admin/auth/group/",
        {"action": "delete_selected", "_selected_action": [g.pk for g in groups], "post": "yes"},
    )
    assert response.status_code == 302
    deleted = [e for e in _entries("admin.logged") if e.payload["action"] == "deleted"]
    assert sorted(e.payload["object"]["repr"] for e in deleted) == ["Temp 0", "Temp 1"]


def test_an_admin_log_entry_is_recorded_once_however_often_it_is_offered(db):
    user = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    group = Group.objects.create(name="Once")
    [log] = LogEntry.objects.log_actions(user.pk, [group], ADDITION, "[]")
    services.admin_log_record(log_entries=[log, log])
    services.admin_log_record(log_entries=[log])
    assert len(_entries("admin.logged")) == 1


def test_a_sign_in_signalled_twice_in_one_request_is_recorded_once(alice):
    from django.contrib.auth.signals import user_logged_in

    def view(request):
        user_logged_in.send(sender=type(alice), request=request, user=alice)
        user_logged_in.send(sender=type(alice), request=request, user=alice)
        return HttpResponse("ok")

    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.10")
    SignInRecordMiddleware(view)(request)
    assert len(_entries("staff.signed_in")) == 1
