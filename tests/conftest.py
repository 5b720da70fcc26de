from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import connection

from creditledger import roles
from creditledger.ledger.actors import Actor
from tests import factories


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    # PBKDF2's deliberate slowness costs ~0.3 s per test user and proves nothing here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _ledger_trigger(request):
    """Keep the ledger's append-only trigger on during every test.

    Transactional tests end with Django's flush (TRUNCATE), which the trigger refuses;
    for those the trigger is switched off after the test body, before the flush, and on
    again when the next test starts.
    """
    if "transactional_db" not in request.fixturenames and "live_server" not in request.fixturenames:
        if "db" not in request.fixturenames and "django_db_setup" not in request.fixturenames:
            yield
            return
    _set_trigger("ENABLE")
    yield
    if "transactional_db" in request.fixturenames or "live_server" in request.fixturenames:
        _set_trigger("DISABLE")


def _set_trigger(mode: str) -> None:
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE ledger_ledgerentry {mode} TRIGGER USER")


def _staff(role: str, username: str):
    user = factories.UserFactory(username=username, is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def officer(db):
    return _staff(roles.OFFICER, "officer")


@pytest.fixture
def other_officer(db):
    return _staff(roles.OFFICER, "officer2")


@pytest.fixture
def supervisor(db):
    return _staff(roles.SUPERVISOR, "supervisor")


@pytest.fixture
def other_supervisor(db):
    return _staff(roles.SUPERVISOR, "supervisor2")


@pytest.fixture
def auditor(db):
    return _staff(roles.AUDITOR, "auditor")


@pytest.fixture
def as_officer(officer):
    return Actor.for_user(officer)


@pytest.fixture
def as_supervisor(supervisor):
    return Actor.for_user(supervisor)
