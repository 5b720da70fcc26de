"""Lockout after repeated failed sign-ins: keyed on (username, address), nothing wider."""

from __future__ import annotations

import io
import time
from datetime import timedelta

import pytest
from django.test import Client

from tests.guard.conftest import PASSWORD, sign_in, signed_in_as

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _limit_three(settings):
    settings.AXES_FAILURE_LIMIT = 3


def _lock(client, username="alice", address="10.0.0.1"):
    responses = [sign_in(client, username, "wrong", address) for _ in range(3)]
    assert [r.status_code for r in responses[:2]] == [200, 200]  # the form again, with an error
    assert responses[2].status_code == 429
    return responses[2]


def test_the_shared_cache_counts_the_attempts(settings):
    assert settings.AXES_HANDLER == "axes.handlers.cache.AxesCacheHandler"
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]


def test_failed_sign_ins_lock_exactly_that_username_and_address(alice, bob):
    _lock(Client())

    refused = Client()
    response = sign_in(refused, "alice", PASSWORD, "10.0.0.1")
    assert response.status_code == 429
    assert not signed_in_as(refused, alice)

    other_address = Client()
    assert sign_in(other_address, "alice", PASSWORD, "10.0.0.2").status_code == 302
    assert signed_in_as(other_address, alice)

    other_user = Client()
    assert sign_in(other_user, "bob", PASSWORD, "10.0.0.1").status_code == 302
    assert signed_in_as(other_user, bob)


def test_the_lockout_page_says_when_to_try_again(alice):
    response = _lock(Client())
    body = response.content.decode()
    assert 'id="lockout-retry"' in body
    assert "15" in body.split('id="lockout-retry"')[1].split("</p>")[0]  # minutes
    assert response["Retry-After"] == str(15 * 60)
    assert "admin/css/base.css" in body  # in the admin's look
    assert 'name="password"' not in body


def test_the_lock_ends_after_the_cool_off(alice, settings):
    settings.AXES_COOLOFF_TIME = timedelta(seconds=1)
    _lock(Client())
    assert sign_in(Client(), "alice", PASSWORD, "10.0.0.1").status_code == 429
    time.sleep(1.5)
    client = Client()
    assert sign_in(client, "alice", PASSWORD, "10.0.0.1").status_code == 302
    assert signed_in_as(client, alice)


def test_a_success_before_the_limit_starts_the_count_again(alice):
    client = Client()
    for _ in range(2):
        sign_in(client, "alice", "wrong", "10.0.0.1")
    assert sign_in(client, "alice", PASSWORD, "10.0.0.1").status_code == 302
    for _ in range(2):
        assert sign_in(Client(), "alice", "wrong", "10.0.0.1").status_code == 200


def test_unlocking_the_pair_lets_the_user_in_again(alice):
    from django.core.management import call_command

    _lock(Client())
    call_command("axes_reset_ip_username", "10.0.0.1", "alice")
    client = Client()
    assert sign_in(client, "alice", PASSWORD, "10.0.0.1").status_code == 302


def test_a_forwarded_for_header_counts_only_behind_a_trusted_proxy(alice, settings):
    for _ in range(3):
        Client().post(
            "/admin/login/",
            {"username": "alice", "password": "wrong"},
            REMOTE_ADDR="10.0.0.1",
            HTTP_X_FORWARDED_FOR="192.0.2.7",
        )
    # Not trusted: the header is ignored and 10.0.0.1 is locked, whatever the header says.
    response = Client().post(
        "/admin/login/",
        {"username": "alice", "password": PASSWORD},
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="192.0.2.99",
    )
    assert response.status_code == 429

    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    # Behind the trusted proxy the client is the forwarded address: another client is free.
    response = Client().post(
        "/admin/login/",
        {"username": "alice", "password": PASSWORD},
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="spoofed, 192.0.2.99",
    )
    assert response.status_code == 302


def test_a_supervisor_unlocks_a_username_from_every_address_it_was_locked_from(alice, supervisor):
    from django.core.management import call_command

    from creditledger.ledger.models import LedgerEntry

    _lock(Client(), address="10.0.0.1")
    _lock(Client(), address="10.0.0.3")
    out = io.StringIO()
    call_command("staff_unlock", "alice", "--by", "supervisor", stdout=out)
    assert "10.0.0.1, 10.0.0.3" in out.getvalue()
    for address in ("10.0.0.1", "10.0.0.3"):
        assert sign_in(Client(), "alice", PASSWORD, address).status_code == 302
    [entry] = LedgerEntry.objects.filter(action="staff.unlocked")
    assert entry.actor == f"user:{supervisor.pk}"
    assert entry.payload["addresses"] == ["10.0.0.1", "10.0.0.3"]
    assert entry.payload["counters_removed"] == 2


def test_unlocking_refuses_an_officer_and_a_username_with_no_lockout(alice, officer):
    from django.core.management import CommandError, call_command

    from creditledger.ledger.models import LedgerEntry

    _lock(Client())
    with pytest.raises(CommandError, match="not an active supervisor"):
        call_command("staff_unlock", "alice", "--by", "officer")
    with pytest.raises(CommandError, match="No lockout"):
        call_command("staff_unlock", "bob")
    assert not LedgerEntry.objects.filter(action="staff.unlocked").exists()
    assert sign_in(Client(), "alice", PASSWORD, "10.0.0.1").status_code == 429


def test_without_a_shared_cache_the_database_keeps_the_counts(alice, bob, settings):
    # make run's default cache is per process; settings then pick axes' database handler.
    from axes.models import AccessAttempt

    settings.AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
    _lock(Client())
    assert AccessAttempt.objects.filter(username="alice", ip_address="10.0.0.1").exists()
    assert sign_in(Client(), "alice", PASSWORD, "10.0.0.1").status_code == 429
    assert sign_in(Client(), "alice", PASSWORD, "10.0.0.2").status_code == 302
    assert sign_in(Client(), "bob", PASSWORD, "10.0.0.1").status_code == 302


def test_make_runs_default_cache_selects_the_database_handler(tmp_path):
    from tests.test_settings import _start

    result = _start(
        tmp_path,
        "-c",
        "import django; django.setup(); from django.conf import settings as s; print(s.AXES_HANDLER)",
        DEBUG="1",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "axes.handlers.database.AxesDatabaseHandler"
