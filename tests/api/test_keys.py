"""Platform API keys: authentication, scopes, throttling, and issuing/revoking in the admin."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_api_key.models import APIKey as LibraryAPIKey

from creditledger.ledger.actors import Actor
from tests import factories
from traders.models import ApiKey, Platform
from traders.services import apikey_revoke

pytestmark = pytest.mark.django_db

STATUS_URLS = [
    ("get", "/api/v1/traders/91350100M000100Y43", None),
    ("get", "/api/v1/traders/?shop=s-1", None),
    ("post", "/api/v1/traders/lookup", {"codes": ["91350100M000100Y43"]}),
    ("get", "/api/v1/changes/", None),
]
ADD_URL = reverse("admin:traders_apikey_add")
LIST_URL = reverse("admin:traders_apikey_changelist")


def _call(client: APIClient, method: str, url: str, body):
    return client.post(url, body, format="json") if method == "post" else client.get(url)


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code and body["message"] and "fields" in body
    return body


# --- authentication -----------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "url", "body"), STATUS_URLS)
def test_a_call_without_a_key_is_a_401(method, url, body):
    response = _call(APIClient(), method, url, body)
    _error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Api-Key"


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("Api-Key", "authentication_failed"),
        ("Api-Key a b", "authentication_failed"),
        ("Api-Key nosuchkey.0123456789", "authentication_failed"),
        ("Bearer something", "not_authenticated"),
    ],
)
def test_a_malformed_or_unknown_key_is_a_401(header, code):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    _error(client.get("/api/v1/changes/"), 401, code)


def test_the_right_prefix_with_a_wrong_secret_is_a_401(platform_client):
    prefix = platform_client.raw_key.partition(".")[0]
    platform_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {prefix}.{'x' * 32}")
    _error(platform_client.get("/api/v1/changes/"), 401, "authentication_failed")


@pytest.mark.parametrize(
    "revoke",
    [
        {"revoked_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)},
        {"revoked": True},
        {"expiry_date": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)},
    ],
)
def test_a_revoked_or_expired_key_is_a_401(platform_client, revoke):
    ApiKey.objects.filter(pk=platform_client.api_key.pk).update(**revoke)
    _error(platform_client.get("/api/v1/changes/"), 401, "authentication_failed")


@pytest.mark.parametrize(
    "change",
    [
        lambda key: ApiKey.objects.filter(pk=key.pk).update(revoked=True, revoked_at=timezone.now()),
        lambda key: Platform.objects.filter(pk=key.platform_id).update(is_active=False),
    ],
    ids=["key revoked", "platform deactivated"],
)
def test_a_revocation_elsewhere_takes_effect_within_the_key_cache_bound(platform_client, settings, change):
    """Another process revoked the key (a plain UPDATE: this process is not told): the key
    this process checked is trusted until API_KEY_CACHE_SECONDS have passed, never longer."""
    settings.API_KEY_CACHE_SECONDS = 0.5
    assert platform_client.get("/api/v1/changes/").status_code == 200
    checked = time.monotonic()
    change(platform_client.api_key)
    while time.monotonic() - checked < 0.4:
        assert platform_client.get("/api/v1/changes/").status_code == 200  # within the bound
        time.sleep(0.05)
    time.sleep(max(0.0, 0.5 - (time.monotonic() - checked)))
    _error(platform_client.get("/api/v1/changes/"), 401, "authentication_failed")


def test_a_key_revoked_through_the_service_is_refused_at_once_by_this_process(
    platform_client, supervisor, django_capture_on_commit_callbacks
):
    assert platform_client.get("/api/v1/changes/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        apikey_revoke(actor=Actor.for_user(supervisor), keys=[platform_client.api_key])
    _error(platform_client.get("/api/v1/changes/"), 401, "authentication_failed")


def test_a_key_of_an_inactive_platform_is_a_401(platform_client):
    Platform.objects.filter(pk=platform_client.platform.pk).update(is_active=False)
    _error(platform_client.get("/api/v1/changes/"), 401, "authentication_failed")


@pytest.mark.parametrize(("method", "url", "body"), STATUS_URLS)
def test_a_key_without_status_read_is_a_403(make_api_client, method, url, body):
    client = make_api_client("jd", ["shops:write", "reports:write"])
    body = _error(_call(client, method, url, body), 403, "permission_denied")
    assert "status:read" in body["message"]


def test_keys_are_stored_as_sha512_hashes_only(platform_client):
    key = ApiKey.objects.get(pk=platform_client.api_key.pk)
    assert key.hashed_key.startswith("sha512$$")
    secret = platform_client.raw_key.partition(".")[2]
    stored = [str(value) for value in ApiKey.objects.filter(pk=key.pk).values().get().values()]
    assert not any(secret in value for value in stored)


def test_last_used_at_is_written_at_most_once_a_minute(platform_client, django_assert_num_queries):
    assert ApiKey.objects.get(pk=platform_client.api_key.pk).last_used_at is None
    platform_client.get("/api/v1/ledger/public-key")
    used = ApiKey.objects.get(pk=platform_client.api_key.pk).last_used_at
    assert used is not None and timezone.now() - used < dt.timedelta(seconds=5)
    with django_assert_num_queries(0):  # the key is held by the process; no UPDATE
        platform_client.get("/api/v1/ledger/public-key")


# --- throttling ---------------------------------------------------------------------------------


def test_a_key_over_its_rate_gets_429_with_retry_after(make_api_client, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"apikey": "3/min"}}
    client = make_api_client("taobao", ["status:read"])
    other = make_api_client("jd", ["status:read"])
    for _ in range(3):
        assert client.get("/api/v1/changes/").status_code == 200
    response = client.get("/api/v1/changes/")
    _error(response, 429, "throttled")
    assert 0 < int(response["Retry-After"]) <= 60
    _error(client.post("/api/v1/traders/lookup", {"codes": ["x"]}, format="json"), 429, "throttled")
    assert other.get("/api/v1/changes/").status_code == 200  # counted per key


# --- the admin ----------------------------------------------------------------------------------


@pytest.fixture
def platform(db):
    return factories.PlatformFactory(code="pdd", name="Pinduoduo")


def _issue(client, platform, scopes=("status:read",), name="pdd sync"):
    return client.post(ADD_URL, {"name": name, "platform": platform.pk, "scopes": list(scopes)})


def test_a_supervisor_issues_a_key_that_is_shown_once(client, supervisor, platform):
    client.force_login(supervisor)
    form = client.get(ADD_URL)
    assert form.status_code == 200
    assert 'name="scopes"' in form.content.decode() and 'name="platform"' in form.content.decode()
    response = _issue(client, platform, scopes=["status:read", "reports:write"])
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    raw = re.search(r'id="api-key"[^>]*>([^<]+)<', response.content.decode()).group(1)

    key = ApiKey.objects.get()
    assert raw.startswith(key.prefix + ".")
    assert (key.platform, key.scopes, key.created_by) == (
        platform,
        ["status:read", "reports:write"],
        supervisor,
    )
    assert key.hashed_key.startswith("sha512$$") and raw not in key.hashed_key

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert api.get("/api/v1/changes/").status_code == 200

    for url in (LIST_URL, reverse("admin:traders_apikey_change", args=[key.pk])):
        page = client.get(url)
        assert page.status_code == 200
        assert raw.partition(".")[2] not in page.content.decode()


def test_a_key_needs_a_scope_and_an_active_platform(client, supervisor, platform):
    client.force_login(supervisor)
    response = _issue(client, platform, scopes=[])
    assert response.status_code == 200 and "scopes" in response.context["adminform"].form.errors
    Platform.objects.filter(pk=platform.pk).update(is_active=False)
    response = _issue(client, platform)
    assert "platform" in response.context["adminform"].form.errors
    assert not ApiKey.objects.exists()


def test_the_list_shows_prefix_platform_scopes_and_use(client, supervisor, platform):
    key, _ = ApiKey.objects.create_key(name="k", platform=platform, scopes=["status:read", "shops:write"])
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
    client.force_login(supervisor)
    page = client.get(LIST_URL).content.decode()
    for text in (key.prefix, "Pinduoduo", "status:read, shops:write"):
        assert text in page


def test_an_issued_key_cannot_be_edited_or_deleted(client, supervisor, platform):
    key, _ = ApiKey.objects.create_key(name="k", platform=platform, scopes=["status:read"])
    client.force_login(supervisor)
    url = reverse("admin:traders_apikey_change", args=[key.pk])
    page = client.get(url).content.decode()
    assert 'name="name"' not in page and 'name="scopes"' not in page
    client.post(url, {"name": "renamed", "platform": platform.pk, "scopes": ["shops:write"]})
    key.refresh_from_db()
    assert (key.name, key.scopes) == ("k", ["status:read"])
    assert client.get(reverse("admin:traders_apikey_delete", args=[key.pk])).status_code == 403


def test_revoking_sets_revoked_at_and_the_key_stops_working(client, supervisor, platform):
    key, raw = ApiKey.objects.create_key(name="k", platform=platform, scopes=["status:read"])
    kept, _ = ApiKey.objects.create_key(name="kept", platform=platform, scopes=["status:read"])
    client.force_login(supervisor)
    response = client.post(LIST_URL, {"action": "revoke", "_selected_action": [key.pk]}, follow=True)
    assert response.status_code == 200
    key.refresh_from_db()
    kept.refresh_from_db()
    assert key.revoked and key.revoked_at is not None
    assert not kept.revoked and kept.revoked_at is None
    first = key.revoked_at

    client.post(LIST_URL, {"action": "revoke", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at == first  # revoking twice keeps the first time

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    _error(api.get("/api/v1/changes/"), 401, "authentication_failed")


def test_officers_and_auditors_cannot_issue_keys(client, officer, auditor, platform):
    for user in (officer, auditor):
        client.force_login(user)
        assert client.get(ADD_URL).status_code == 403
        assert _issue(client, platform).status_code == 403
    assert not ApiKey.objects.exists()


def test_the_librarys_own_key_model_is_not_in_the_admin():
    assert not admin.site.is_registered(LibraryAPIKey)
    assert admin.site.is_registered(ApiKey)
