from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.utils import translation

from creditledger import roles
from creditledger.ledger.actors import Actor
from tests import factories


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _fresh_api_key_cache():
    """Each test starts with no API key trusted from an earlier one (creditledger.api.auth)."""
    from creditledger.api.auth import forget_keys

    forget_keys()


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    # PBKDF2's deliberate slowness costs ~0.3 s per test user and proves nothing here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _english(settings):
    """Tests speak English unless they say otherwise.

    The site's default language is Simplified Chinese (LANGUAGE_CODE zh-hans), but the suite
    asserts the English source strings: each test runs with LANGUAGE_CODE en and English
    active. Tests of the language choice (tests/test_i18n.py) set LANGUAGE_CODE back to
    zh-hans or send Accept-Language.
    """
    settings.LANGUAGE_CODE = "en"
    translation.activate("en")
    yield
    translation.deactivate()


def _uses_db(request) -> tuple[bool, bool]:
    """(uses the database, is transactional) for this test, by fixture or marker."""
    names = set(request.fixturenames)
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(names & {"transactional_db", "live_server"}) or bool(
        marker and marker.kwargs.get("transaction")
    )
    return transactional or "db" in names or marker is not None, transactional


@pytest.fixture(autouse=True)
def _ledger_trigger(request):
    """Keep the ledger's append-only trigger on during every test.

    Transactional tests end with Django's flush (TRUNCATE), which the trigger refuses;
    for those the trigger is switched off after the test body, before the flush, and on
    again when the next test starts.
    """
    uses_db, transactional = _uses_db(request)
    if not uses_db:
        yield
        return
    request.getfixturevalue("_django_db_helper")
    _set_trigger("ENABLE")
    yield
    if transactional:
        _set_trigger("DISABLE")


LEDGER_TABLES = ("ledger_ledgerentry", "ledger_checkpoint", "ledger_ledgertile")


def _set_trigger(mode: str) -> None:
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for table in LEDGER_TABLES:
            cursor.execute(f"ALTER TABLE {table} {mode} TRIGGER USER")


# --- staff sign-in: force_login gives a two-factor verified session -------------------------


def totp_device(user):
    """The user's confirmed TOTP device, created (without any sign-in) when missing."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="test authenticator", confirmed=True)


@pytest.fixture(autouse=True)
def _force_login_is_otp_verified(monkeypatch):
    """client.force_login(user) signs in fully: password step and second factor, with a
    real confirmed TOTPDevice. A client with `otp_verified = False` (the
    `unverified_client` fixture) gets a password-only session, for the gate's tests."""
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY

    original = Client.force_login

    def force_login(self, user, backend=None):
        original(self, user, backend)
        if getattr(self, "otp_verified", True):
            session = self.session
            session[DEVICE_ID_SESSION_KEY] = totp_device(user).persistent_id
            session.save()

    monkeypatch.setattr(Client, "force_login", force_login)


@pytest.fixture
def unverified_client(db):
    """A test client whose force_login stops after the password step (no second factor)."""
    from django.test import Client

    client = Client()
    client.otp_verified = False
    return client


def _staff(role: str, username: str, regions: tuple[str, ...] | None = None):
    """A staff member of `role`; national unless given region-code prefixes (jurisdiction
    is deny-by-default, so a user without a StaffJurisdiction row sees no trader)."""
    from traders.models import StaffJurisdiction

    user = factories.UserFactory(username=username, is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    StaffJurisdiction.objects.update_or_create(
        user=user, defaults={"national": regions is None, "regions": list(regions or ())}
    )
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


# Jurisdiction (issue 6): city bureau staff of Hangzhou (3301) and a provincial supervisor
# of Zhejiang (33). factories.TraderFactory(region=...) makes traders anywhere.


@pytest.fixture
def city_officer(db):
    return _staff(roles.OFFICER, "hz_officer", regions=("3301",))


@pytest.fixture
def city_supervisor(db):
    return _staff(roles.SUPERVISOR, "hz_supervisor", regions=("3301",))


@pytest.fixture
def province_supervisor(db):
    return _staff(roles.SUPERVISOR, "zj_supervisor", regions=("33",))


@pytest.fixture
def as_officer(officer):
    return Actor.for_user(officer)


@pytest.fixture
def as_supervisor(supervisor):
    return Actor.for_user(supervisor)


# --- platform API -------------------------------------------------------------------------

ALL_SCOPES = ["status:read", "shops:write", "reports:write"]


@pytest.fixture
def make_api_client(db):
    """make_api_client(platform_code, scopes=...) -> an APIClient with a fresh key.

    The client carries .api_key (the ApiKey row), .raw_key and .platform.
    """
    from rest_framework.test import APIClient

    from traders.models import ApiKey

    def _make(code: str = "taobao", scopes: list[str] | None = None) -> APIClient:
        platform = factories.PlatformFactory(code=code, name=code.title())
        api_key, raw_key = ApiKey.objects.create_key(
            name=f"{code} test key", platform=platform, scopes=list(ALL_SCOPES if scopes is None else scopes)
        )
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
        client.api_key, client.raw_key, client.platform = api_key, raw_key, platform
        return client

    return _make


@pytest.fixture
def platform_client(make_api_client):
    """A platform (taobao) with a key holding every scope."""
    return make_api_client("taobao")


def pytest_collection_modifyitems(items):
    """Every transactional test restores the migrated reference data (catalog, roles,
    policy) after its flush. Mixing flushes with and without serialized rollback makes
    the restore collide with the content types a plain flush re-creates."""
    for item in items:
        marker = item.get_closest_marker("django_db")
        if marker and marker.kwargs.get("transaction") and not marker.kwargs.get("serialized_rollback"):
            item.add_marker(
                pytest.mark.django_db(*marker.args, **{**marker.kwargs, "serialized_rollback": True}),
                append=False,
            )


# --- real brokers and workers (end-to-end tests) -------------------------------------------


@pytest.fixture
def broker(tmp_path):
    """A private redis-server this test may stop and restart; the test process publishes to it."""
    import os

    from tests.worker import Broker, point_app_at

    previous = os.environ.get("CELERY_BROKER_URL")
    broker = Broker(tmp_path)
    broker.start()
    point_app_at(broker.url)
    yield broker
    broker.stop()
    if previous:
        point_app_at(previous)


@pytest.fixture
def workers(broker, tmp_path):
    """workers(name, queues=..., extra_env=...) starts a `celery worker` process; all stop at the end."""
    from tests.worker import Worker

    started = []

    def start(name: str, **options):
        worker = Worker(name, broker, tmp_path, **options).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
