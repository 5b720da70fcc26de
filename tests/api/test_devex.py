"""Developer experience: issuing a key from the shell, a signed ping to an endpoint (admin
action and manage.py webhook_test), and the docs' examples in the demo data."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient
from standardwebhooks import Webhook

from creditledger.api.models import WebhookAttempt, WebhookDelivery
from creditledger.api.webhook_services import webhook_endpoint_create, webhook_endpoint_update
from creditledger.ledger.actors import Actor
from creditledger.ledger.models import LedgerEntry
from tests import factories
from tests.api.webhook_receiver import Receiver, Step
from traders.models import ApiKey, Shop

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")


@pytest.fixture(autouse=True)
def _loopback_allowed(settings):
    settings.WEBHOOK_ALLOW_LOOPBACK = True
    settings.WEBHOOK_TIMEOUT_SECONDS = 5.0


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


def _run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# --- manage.py apikey_issue ---------------------------------------------------------------


def test_apikey_issue_prints_a_working_key_once_and_writes_the_admins_ledger_entry():
    platform = factories.PlatformFactory(code="taobao", name="Taobao")
    out, err = _run("apikey_issue", "taobao", "--scopes", "status:read,reports:write", "--name", "sync")
    raw = out.strip()
    key = ApiKey.objects.get(platform=platform)
    assert raw.startswith(f"{key.prefix}.") and raw not in err
    assert key.prefix in err and "status:read, reports:write" in err
    assert ApiKey.objects.get_from_key(raw) == key  # only the hash is kept, and it matches
    assert key.scopes == ["status:read", "reports:write"] and key.name == "sync"
    entry = LedgerEntry.objects.get(action="apikey.issued")
    assert entry.actor == "system:manage.apikey_issue" and entry.subject_id == key.prefix
    assert entry.payload["scopes"] == ["status:read", "reports:write"]
    assert raw not in str(entry.payload)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert client.get("/api/v1/changes/?after=0").status_code == 200


def test_apikey_issue_records_the_staff_member_given_with_as(supervisor):
    factories.PlatformFactory(code="jd")
    _run(
        "apikey_issue",
        "jd",
        "--scopes",
        "status:read",
        "--as",
        supervisor.username,
        "--expires",
        "2999-01-01",
    )
    key = ApiKey.objects.get()
    assert key.created_by == supervisor and timezone.localtime(key.expiry_date).date() == dt.date(2999, 1, 1)
    assert LedgerEntry.objects.get(action="apikey.issued").actor == f"user:{supervisor.pk}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["nosuch", "--scopes", "status:read"],
            r"platform: no platform with the code 'nosuch' \(known: taobao\)",
        ),
        (["taobao", "--scopes", "status:read,admin"], r"scopes: Unknown scope admin"),
        (["taobao", "--scopes", ","], r"scopes: Choose at least one scope"),
        (
            ["taobao", "--scopes", "status:read", "--expires", "2020-01-01"],
            r"expires: 2020-01-01 is not in the",
        ),
        (["taobao", "--scopes", "status:read", "--expires", "soon"], r"expires: 'soon' is not a date"),
        (["taobao", "--scopes", "status:read", "--as", "ghost"], r"as: no active user 'ghost'"),
    ],
)
def test_apikey_issue_refuses_bad_input_saying_which_and_writes_nothing(args, message):
    factories.PlatformFactory(code="taobao")
    with pytest.raises(CommandError, match=message):
        _run("apikey_issue", *args)
    assert not ApiKey.objects.exists()
    assert not LedgerEntry.objects.filter(action="apikey.issued").exists()


def test_an_officer_given_with_as_may_not_issue_keys(officer):
    factories.PlatformFactory(code="taobao")
    with pytest.raises(CommandError, match="You may not issue API keys"):
        _run("apikey_issue", "taobao", "--scopes", "status:read", "--as", officer.username)
    assert not ApiKey.objects.exists()


# --- ping: manage.py webhook_test and the admin action ------------------------------------


def _endpoint(url: str, code: str = "taobao"):
    return webhook_endpoint_create(actor=SYSTEM, platform=factories.PlatformFactory(code=code), url=url)


def test_webhook_test_sends_a_signed_ping_and_prints_status_and_latency(receiver):
    receiver.answer(Step(204, sleep=0.05))
    endpoint = _endpoint(receiver.url)
    out, _err = _run("webhook_test", str(endpoint.pk))
    assert re.search(
        rf"POST {re.escape(receiver.url)} \(taobao\): HTTP 204 in \d+ ms; webhook-id msg_\w+", out
    )
    assert int(re.search(r"in (\d+) ms", out).group(1)) >= 50
    (sent,) = receiver.received
    notice = Webhook(endpoint.secret).verify(sent.body, sent.headers)
    assert notice["type"] == "ping" and notice["data"]["endpoint"] == endpoint.pk
    assert sent.headers["webhook-id"] in out
    # A test writes nothing: no delivery, no attempt, no ledger entry.
    assert not WebhookDelivery.objects.exists() and not WebhookAttempt.objects.exists()
    assert not LedgerEntry.objects.filter(action__startswith="webhook.").exists()


def test_webhook_test_fails_loudly_on_a_refusal_and_a_410_to_a_ping_disables_nothing(receiver):
    receiver.answer(Step(410))
    endpoint = _endpoint(receiver.url)
    with pytest.raises(CommandError, match=r"failed after \d+ ms: HTTP 410"):
        _run("webhook_test", str(endpoint.pk))
    endpoint.refresh_from_db()
    assert endpoint.is_active


def test_webhook_test_pings_a_disabled_endpoint_and_says_it_is_disabled(receiver):
    endpoint = _endpoint(receiver.url)
    webhook_endpoint_update(actor=SYSTEM, endpoint=endpoint, url=endpoint.url, events=[], is_active=False)
    out, _err = _run("webhook_test", str(endpoint.pk))
    assert "(the endpoint is disabled): HTTP 200" in out and len(receiver.received) == 1


def test_webhook_test_names_an_unknown_endpoint_and_an_unsafe_url(receiver, settings):
    with pytest.raises(CommandError, match="endpoint: no webhook endpoint with the id 999"):
        _run("webhook_test", "999")
    endpoint = _endpoint(receiver.url)
    settings.WEBHOOK_ALLOW_LOOPBACK = False  # as in production: http:// is refused
    with pytest.raises(CommandError, match="url: Use an https:// URL"):
        _run("webhook_test", str(endpoint.pk))
    assert receiver.received == []


def test_the_admin_pings_the_selected_endpoints_and_shows_each_answer(client, supervisor, receiver):
    receiver.answer(Step(200), Step(503))
    first, second = _endpoint(receiver.url, "taobao"), _endpoint(receiver.url + "/b", "jd")
    client.force_login(supervisor)
    response = client.post(
        reverse("admin:traders_webhookendpoint_changelist"),
        {"action": "send_ping", "_selected_action": [first.pk, second.pk]},
        follow=True,
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert re.search(r"HTTP 200 in \d+ ms \(webhook-id msg_\w+\)", page)
    assert re.search(r"failed after \d+ ms: HTTP 503", page)
    assert {r.path for r in receiver.received} == {"/hooks/creditledger", "/hooks/creditledger/b"}


def test_an_auditor_cannot_ping(client, auditor, receiver):
    endpoint = _endpoint(receiver.url)
    client.force_login(auditor)
    client.post(
        reverse("admin:traders_webhookendpoint_changelist"),
        {"action": "send_ping", "_selected_action": [endpoint.pk]},
    )
    assert receiver.received == []


# --- the docs' examples in the demo data ----------------------------------------------------


def test_demo_examples_hold_the_docs_trader_and_shop_once(make_api_client):
    from penalties.demo.examples import EXAMPLE_SHOP, EXAMPLE_USCC, ensure_examples

    ensure_examples()
    entries = LedgerEntry.objects.count()
    ensure_examples()  # demo_setup runs every time: the second run writes nothing
    assert LedgerEntry.objects.count() == entries
    client = make_api_client("taobao", scopes=["status:read"])
    body = client.get(f"/api/v1/traders/{EXAMPLE_USCC}").json()
    assert body["uscc"] == "91350100M000100Y43" and body["name"] == "福州示例贸易有限公司"
    assert [s["platform_shop_id"] for s in body["shops"]] == [EXAMPLE_SHOP] == ["tb-123456"]
    assert client.get("/api/v1/traders/?shop=tb-123456").json()["uscc"] == EXAMPLE_USCC


def test_seed_demo_adds_the_examples_when_asked():
    out, _err = _run("seed_demo", "--traders", "3", "--violations", "5", "--with-examples")
    assert "docs/api.md examples: trader 91350100M000100Y43, shop taobao/tb-123456" in out
    assert Shop.objects.filter(platform__code="taobao", platform_shop_id="tb-123456").exists()


def test_check_deploy_warns_when_the_webhook_guard_is_relaxed(settings):
    from django.core import checks

    settings.WEBHOOK_ALLOW_LOOPBACK, settings.WEBHOOK_ALLOW_PRIVATE = False, False
    assert not [m for m in checks.run_checks(include_deployment_checks=True) if m.id.startswith("api.")]
    settings.WEBHOOK_ALLOW_LOOPBACK, settings.WEBHOOK_ALLOW_PRIVATE = True, True
    found = {m.id for m in checks.run_checks(include_deployment_checks=True) if m.id.startswith("api.")}
    assert found == {"api.W001", "api.W002"}
    assert not checks.run_checks(tags=["webhooks"])  # a deployment check only: tests and make run pass
