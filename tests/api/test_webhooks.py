"""Webhooks: events from real ledger entries, who gets them, signatures, the URL guard,
retries against a real local receiver, 410, replay, the dispatcher and the admin."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import itertools
import json
import random
import time
from email.utils import format_datetime

import pytest
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from creditledger.api import admin_webhooks, tasks, webhook_services, webhooks
from creditledger.api.models import WebhookAttempt, WebhookCursor, WebhookDelivery
from creditledger.api.webhook_services import (
    Outcome,
    deliveries_enqueue_from_ledger,
    deliveries_generate,
    deliveries_lease_due,
    delivery_attempt,
    delivery_replay,
    webhook_endpoint_create,
    webhook_endpoint_update,
    webhook_secret_retire,
    webhook_secret_rotate,
)
from creditledger.exceptions import ApplicationError, PermissionDenied
from creditledger.ledger.actors import Actor
from creditledger.ledger.canonical import format_time
from creditledger.ledger.models import LedgerEntry
from penalties.models import Restriction, Violation, ViolationType
from penalties.services import restriction_lift, trader_reassess, violation_confirm, violation_record
from tests import factories
from tests.api.webhook_receiver import Receiver, Step
from traders.models import Trader, WebhookEndpoint

assert admin_webhooks  # registered on the admin site (creditledger/api/admin.py imports it too)

pytestmark = pytest.mark.django_db

DAY = dt.timedelta(days=1)
SYSTEM = Actor.system("test")


@pytest.fixture(autouse=True)
def _loopback_allowed(settings):
    settings.WEBHOOK_ALLOW_LOOPBACK = True
    settings.WEBHOOK_ALLOW_PRIVATE = False
    settings.WEBHOOK_TIMEOUT_SECONDS = 5.0
    settings.WEBHOOK_MAX_ATTEMPTS = 8


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def queued(monkeypatch):
    """Task messages the code would publish, as (delivery_id, attempts)."""
    calls: list[tuple[int, int | None]] = []
    monkeypatch.setattr(webhook_services, "enqueue_delivery", lambda pk, n: calls.append((pk, n)))
    monkeypatch.setattr(tasks, "enqueue_delivery", lambda pk, n: calls.append((pk, n)))
    return calls


@pytest.fixture
def grave(supervisor, other_supervisor):
    """A confirmed grave violation (four eyes), as the officers would record it."""

    def _grave(trader: Trader) -> Violation:
        violation = violation_record(
            actor=Actor.for_user(supervisor),
            trader=trader,
            type=ViolationType.objects.get(code="counterfeit-large-scale"),
            occurred_on=timezone.localdate() - 2 * DAY,
            source=Violation.Source.INSPECTION,
            description="仓库查获假冒商品",
        )
        return violation_confirm(actor=Actor.for_user(other_supervisor), violation=violation)

    return _grave


@pytest.fixture
def trader():
    return factories.TraderFactory()


def _endpoint(platform, url: str, events=()) -> WebhookEndpoint:
    return webhook_endpoint_create(actor=SYSTEM, platform=platform, url=url, events=events)


def _shop_and_endpoint(trader, code: str, url: str, events=()) -> WebhookEndpoint:
    platform = factories.PlatformFactory(code=code)
    factories.ShopFactory(trader=trader, platform=platform)
    return _endpoint(platform, url, events)


def _head() -> int:
    return LedgerEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def _one_delivery(trader, grave, url: str, event: str = webhooks.GRADE_CHANGED) -> WebhookDelivery:
    endpoint = _shop_and_endpoint(trader, "taobao", url, events=[event])
    grave(trader)
    trader_reassess(trader=trader)
    deliveries_enqueue_from_ledger(after_seq=0)
    return WebhookDelivery.objects.get(endpoint=endpoint)


# --- events and payloads ----------------------------------------------------------------------


def test_it_maps_ledger_actions_to_events():
    assert webhooks.event_for("restriction.proposed", {}) == "restriction.proposed"
    assert webhooks.event_for("restriction.applied", {}) == "restriction.applied"
    assert webhooks.event_for("restriction.lifted", {}) == "restriction.lifted"
    assert webhooks.event_for("score.changed", {"grade": "C", "previous_grade": "A"}) == "grade.changed"
    assert webhooks.event_for("score.changed", {"grade": "A", "previous_grade": "A"}) is None
    assert webhooks.event_for("restriction.withdrawn", {}) is None
    assert webhooks.event_for("violation.confirmed", {}) is None


def test_a_grave_violation_gives_the_platform_grade_changed_and_two_proposals(trader, grave, receiver):
    endpoint = _shop_and_endpoint(trader, "taobao", receiver.url)
    grave(trader)
    trader_reassess(trader=trader)
    generated = deliveries_enqueue_from_ledger(after_seq=0)
    assert generated.caught_up and generated.last_seq == _head()

    deliveries = list(WebhookDelivery.objects.filter(endpoint=endpoint).order_by("ledger_seq"))
    assert [d.event for d in deliveries] == ["grade.changed", "restriction.proposed", "restriction.proposed"]
    trader = Trader.objects.get(pk=trader.pk)
    entries = {e.seq: e for e in LedgerEntry.objects.filter(trader_uscc=trader.uscc)}
    grade = deliveries[0].payload
    assert grade["type"] == "grade.changed"
    assert grade["timestamp"] == format_time(entries[deliveries[0].ledger_seq].at)
    assert grade["data"] == {
        "seq": deliveries[0].ledger_seq,
        "trader": trader.uscc,
        "grade": "C",
        "previous_grade": "A",
        "score": 600,
        "previous_score": 1000,
        "as_of": timezone.localdate().isoformat(),
        "status": "normal",
        "version": trader.version,
        "leaf_hash": base64.b64encode(
            hashlib.sha256(b"\x00" + bytes(entries[deliveries[0].ledger_seq].body)).digest()
        ).decode(),
    }
    measures = {}
    for delivery in deliveries[1:]:
        data = delivery.payload["data"]
        entry = entries[delivery.ledger_seq]
        assert entry.action == "restriction.proposed"
        assert data["seq"] == entry.seq and data["trader"] == trader.uscc
        assert data["restriction"] == entry.payload["restriction"]
        assert data["state"] == "proposed" and data["status"] == "normal"
        assert data["version"] == trader.version
        assert data["objection_deadline"] == entry.payload["objection_deadline"]
        measures[data["measure"]] = data
    assert set(measures) == {"blacklisted", "listing_restricted"}
    assert measures["blacklisted"]["rule_code"] == "grave-violation"
    assert len({d.msg_id for d in deliveries}) == 3


def test_the_notices_of_one_commit_share_a_version_but_each_has_its_own_seq_and_leaf(
    trader, grave, receiver, make_api_client
):
    client = make_api_client("taobao", scopes=["status:read"])
    factories.ShopFactory(trader=trader, platform=client.platform)
    endpoint = _endpoint(client.platform, receiver.url)
    grave(trader)
    trader_reassess(trader=trader, now=timezone.now() - 6 * DAY)
    trader_reassess(trader=trader)  # the blacklisting's deadline passed: applied, the listing superseded
    deliveries_enqueue_from_ledger(after_seq=0)
    last = list(WebhookDelivery.objects.filter(endpoint=endpoint).order_by("ledger_seq"))
    commit = [d for d in last if d.payload["data"]["version"] == last[-1].payload["data"]["version"]]
    assert {d.event for d in commit} >= {"restriction.applied"}
    assert len(commit) >= 2, "a reassessment whose entries share a version"
    assert len({d.ledger_seq for d in commit}) == len(commit)
    assert len({d.payload["data"]["status"] for d in commit}) == 1
    bodies = {e.seq: bytes(e.body) for e in LedgerEntry.objects.filter(seq__in=[d.ledger_seq for d in last])}
    feed = {e["seq"]: e for e in client.get("/api/v1/changes/?after=0&limit=1000").json()["entries"]}
    for delivery in last:
        data = delivery.payload["data"]
        leaf = base64.b64encode(hashlib.sha256(b"\x00" + bodies[delivery.ledger_seq]).digest()).decode()
        assert data["seq"] == delivery.ledger_seq and data["leaf_hash"] == leaf
        assert feed[data["seq"]]["leaf_hash"] == leaf
        assert feed[data["seq"]]["payload"]["version"] == data["version"]


def test_applied_and_lifted_measures_follow_in_seq_order(trader, grave, receiver, supervisor):
    endpoint = _shop_and_endpoint(trader, "taobao", receiver.url)
    grave(trader)
    now = timezone.now()
    trader_reassess(trader=trader, now=now)
    trader_reassess(trader=trader, now=now + 4 * DAY)  # listing_restricted takes effect
    listing = Restriction.objects.get(trader=trader, measure="listing_restricted")
    restriction_lift(actor=Actor.for_user(supervisor), restriction=listing, note="整改完成")
    deliveries_enqueue_from_ledger(after_seq=0)
    events = list(
        WebhookDelivery.objects.filter(endpoint=endpoint)
        .order_by("ledger_seq")
        .values_list("event", flat=True)
    )
    assert events[-2:] == ["restriction.applied", "restriction.lifted"]
    applied, lifted = WebhookDelivery.objects.filter(endpoint=endpoint).order_by("-ledger_seq")[:2][::-1]
    assert applied.payload["data"]["status"] == "listing_restricted"
    assert lifted.payload["data"]["lifted_reason"] == "manual"
    assert lifted.payload["data"]["version"] > applied.payload["data"]["version"]


def test_only_platforms_with_a_shop_of_the_trader_get_deliveries(trader, grave, receiver):
    with_shop = _shop_and_endpoint(trader, "taobao", receiver.url)
    without_shop = _endpoint(factories.PlatformFactory(code="jd"), receiver.url)
    switched_off = _shop_and_endpoint(trader, "pdd", receiver.url)
    webhook_endpoint_update(
        actor=SYSTEM, endpoint=switched_off, url=switched_off.url, events=[], is_active=False
    )
    grades_only = _shop_and_endpoint(trader, "vip", receiver.url, events=["grade.changed"])
    other = factories.TraderFactory()
    factories.ShopFactory(trader=other, platform=without_shop.platform)
    grave(trader)
    trader_reassess(trader=trader)
    deliveries_enqueue_from_ledger(after_seq=0)
    assert WebhookDelivery.objects.filter(endpoint=with_shop).count() == 3
    assert not WebhookDelivery.objects.filter(endpoint__in=[without_shop, switched_off]).exists()
    assert list(WebhookDelivery.objects.filter(endpoint=grades_only).values_list("event", flat=True)) == [
        "grade.changed"
    ]


def test_generating_twice_makes_no_second_delivery(trader, grave, receiver):
    _shop_and_endpoint(trader, "taobao", receiver.url)
    grave(trader)
    trader_reassess(trader=trader)
    deliveries_enqueue_from_ledger(after_seq=0)
    deliveries_enqueue_from_ledger(after_seq=0)
    assert WebhookDelivery.objects.count() == 3


def test_the_cursor_moves_past_every_entry_and_a_batch_stops_at_its_limit(trader, grave, receiver):
    _shop_and_endpoint(trader, "taobao", receiver.url)
    grave(trader)
    trader_reassess(trader=trader)
    first = deliveries_generate(limit=2)
    assert not first.caught_up and WebhookDelivery.objects.count() == 2
    second = deliveries_generate(limit=2)
    assert second.caught_up and second.last_seq == _head()
    assert WebhookCursor.objects.get(name="ledger").seq == _head()
    assert WebhookDelivery.objects.count() == 3
    assert deliveries_generate().deliveries == 0  # nothing new


# --- signatures ---------------------------------------------------------------------------------


def test_signatures_verify_with_the_standardwebhooks_package_and_fail_after_a_byte_changes():
    current, previous = webhooks.new_secret(), webhooks.new_secret()
    assert current.startswith("whsec_")
    body = webhooks.body_bytes({"type": "grade.changed", "data": {"trader": "商贸", "seq": 7}})
    headers = webhooks.sign_headers(
        msg_id="msg_1", body=body, secrets_=[current, previous], at=timezone.now()
    )
    assert headers["webhook-id"] == "msg_1"
    assert [s.split(",")[0] for s in headers["webhook-signature"].split(" ")] == ["v1", "v1"]
    assert Webhook(current).verify(body, headers)["data"]["seq"] == 7
    assert Webhook(previous).verify(body, headers)["data"]["trader"] == "商贸"
    tampered = body.replace(b"7", b"8")
    for secret in (current, previous):
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(tampered, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(webhooks.new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(current).verify(body, {**headers, "webhook-id": "msg_2"})


def _genuine_by_hand(secret: str, headers: dict, body: bytes) -> bool:
    """The recipe docs/api.md (Webhooks) gives for receivers without the package."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    msg_id, stamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(stamp)) > 300:
        return False
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    expected = base64.b64encode(mac).decode()
    return any(
        hmac.compare_digest(expected, sig.split(",", 1)[1])
        for sig in headers["webhook-signature"].split(" ")
        if sig.startswith("v1,")
    )


def test_a_signature_verifies_by_hand_as_the_docs_say():
    current, previous = webhooks.new_secret(), webhooks.new_secret()
    body = webhooks.body_bytes({"type": "restriction.applied", "data": {"seq": 12, "trader": "商贸"}})
    headers = webhooks.sign_headers(
        msg_id="msg_9", body=body, secrets_=[current, previous], at=timezone.now()
    )
    assert _genuine_by_hand(current, headers, body) and _genuine_by_hand(previous, headers, body)
    assert not _genuine_by_hand(current, headers, body + b" ")
    stale = webhooks.sign_headers(
        msg_id="msg_9", body=body, secrets_=[current], at=timezone.now() - dt.timedelta(minutes=6)
    )
    assert not _genuine_by_hand(current, stale, body)


def test_a_delivered_notice_verifies_with_both_secrets_during_rotation_and_only_the_new_after(
    trader, grave, receiver
):
    delivery = _one_delivery(trader, grave, receiver.url)
    old = delivery.endpoint.secret
    new = webhook_secret_rotate(actor=SYSTEM, endpoint=delivery.endpoint).secret
    assert new != old
    assert delivery_attempt(delivery_id=delivery.pk) == Outcome.DELIVERED
    sent = receiver.received[-1]
    assert Webhook(new).verify(sent.body, sent.headers)["data"]["seq"] == delivery.ledger_seq
    assert Webhook(old).verify(sent.body, sent.headers)
    assert sent.headers["webhook-id"] == delivery.msg_id
    assert sent.headers["content-type"] == "application/json"

    webhook_secret_retire(actor=SYSTEM, endpoint=delivery.endpoint)
    delivery_replay(actor=SYSTEM, delivery=delivery)
    assert delivery_attempt(delivery_id=delivery.pk, attempts=0) == Outcome.DELIVERED
    sent = receiver.received[-1]
    assert Webhook(new).verify(sent.body, sent.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(sent.body, sent.headers)


# --- the URL guard ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://127.0.0.1/hook", "loopback"),
        ("https://localhost:8080/hook", "loopback"),
        ("https://[::1]/hook", "loopback"),
        ("https://[::ffff:127.0.0.1]/hook", "loopback"),
        ("https://2130706433/hook", "loopback"),  # 127.0.0.1 as a number
        ("https://10.1.2.3/hook", "private"),
        ("https://192.168.1.10/hook", "private"),
        ("https://172.20.0.1/hook", "private"),
        ("https://[fd00::1]/hook", "private"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://[fe80::1]/hook", "link-local"),
        ("https://224.0.0.1/hook", "multicast"),
        ("https://0.0.0.0/hook", "unspecified"),
        ("https://240.0.0.1/hook", "reserved"),
    ],
)
def test_the_guard_refuses_addresses_inside(url, why):
    with pytest.raises(webhooks.UnsafeURL, match=why):
        webhooks.check_url(url, allow_loopback=False, allow_private=False)


def test_the_guard_lets_settings_allow_loopback_and_private_but_never_link_local():
    assert (
        webhooks.check_url("http://127.0.0.1:9/x?a=1", allow_loopback=True, allow_private=False).path
        == "/x?a=1"
    )
    with pytest.raises(webhooks.UnsafeURL):
        webhooks.check_url("https://10.0.0.1/", allow_loopback=True, allow_private=False)
    assert webhooks.check_url("https://10.0.0.1/", allow_loopback=False, allow_private=True).port == 443
    with pytest.raises(webhooks.UnsafeURL, match="link-local"):
        webhooks.check_url("https://169.254.169.254/", allow_loopback=True, allow_private=True)
    public = webhooks.check_url("https://93.184.216.34/hook", allow_loopback=False, allow_private=False)
    assert (public.addresses, public.port) == (("93.184.216.34",), 443)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "https://user:pw@93.184.216.34/",
        "https:///nohost",
        "https://93.184.216.34:99999/",
    ],
)
def test_the_guard_refuses_what_is_not_a_plain_http_url(url):
    with pytest.raises(webhooks.UnsafeURL):
        webhooks.check_url(url, allow_loopback=True, allow_private=True)


def test_the_guard_refuses_a_host_name_resolving_inside_even_among_public_addresses():
    def resolver(host, port):
        return {"inside.example": ["127.0.0.1"], "mixed.example": ["93.184.216.34", "10.0.0.5"]}[host]

    with pytest.raises(webhooks.UnsafeURL, match=r"inside.example resolves to 127.0.0.1, a loopback"):
        webhooks.check_url(
            "https://inside.example/h", allow_loopback=False, allow_private=False, resolver=resolver
        )
    assert webhooks.check_url(
        "https://inside.example/h", allow_loopback=True, allow_private=False, resolver=resolver
    ).addresses == ("127.0.0.1",)
    with pytest.raises(webhooks.UnsafeURL, match=r"10\.0\.0\.5, a private"):
        webhooks.check_url(
            "https://mixed.example/h", allow_loopback=False, allow_private=False, resolver=resolver
        )


def test_an_endpoint_inside_is_refused_at_save_time_with_a_field_error(settings, monkeypatch):
    settings.WEBHOOK_ALLOW_LOOPBACK = False
    monkeypatch.setattr(webhooks, "resolve", lambda host, port: ["169.254.169.254"])
    platform = factories.PlatformFactory(code="taobao")
    for url in ("https://127.0.0.1:8000/hook", "https://metadata.example/"):
        with pytest.raises(ApplicationError) as caught:
            _endpoint(platform, url)
        assert caught.value.field == "url" and caught.value.code == "unsafe_url"
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("allow_loopback", [False, True])
def test_the_guard_refuses_plain_http_to_a_public_host(allow_loopback):
    with pytest.raises(webhooks.InsecureURL, match="https://") as caught:
        webhooks.check_url(
            "http://hooks.example/in",
            allow_loopback=allow_loopback,
            allow_private=True,
            resolver=lambda host, port: ["93.184.216.34"],
        )
    assert caught.value.rule == "https_required"


def test_plain_http_is_accepted_only_to_loopback_and_only_where_loopback_is_allowed():
    def resolver(host, port):
        return {"dev.test": ["127.0.0.1", "::1"], "half.test": ["127.0.0.1", "10.0.0.5"]}[host]

    local = webhooks.check_url(
        "http://dev.test:8080/in", allow_loopback=True, allow_private=False, resolver=resolver
    )
    assert (local.scheme, local.port) == ("http", 8080)
    with pytest.raises(webhooks.InsecureURL):
        webhooks.check_url(
            "http://dev.test:8080/in", allow_loopback=False, allow_private=False, resolver=resolver
        )
    with pytest.raises(webhooks.InsecureURL):  # private is allowed, but not in clear text
        webhooks.check_url("http://half.test/in", allow_loopback=True, allow_private=True, resolver=resolver)


def test_an_http_endpoint_is_refused_with_the_field_the_rule_and_the_value(settings, monkeypatch):
    settings.WEBHOOK_ALLOW_LOOPBACK = False  # as in production: the default
    monkeypatch.setattr(webhooks, "resolve", lambda host, port: ["93.184.216.34"])
    platform = factories.PlatformFactory(code="taobao")
    with pytest.raises(ApplicationError) as caught:
        _endpoint(platform, "http://hooks.taobao.example/creditledger")
    error = caught.value
    assert (error.field, error.code, error.value) == (
        "url",
        "https_required",
        "http://hooks.taobao.example/creditledger",
    )
    assert "https://" in error.message
    assert not WebhookEndpoint.objects.exists()
    assert _endpoint(platform, "https://hooks.taobao.example/creditledger").url.startswith("https://")


def test_the_guard_runs_again_at_send_time(trader, grave, receiver, monkeypatch):
    monkeypatch.setattr(webhooks, "resolve", lambda host, port: ["127.0.0.1"])
    delivery = _one_delivery(trader, grave, f"http://hooks.platform.test:{receiver.port}/in")
    monkeypatch.setattr(webhooks, "resolve", lambda host, port: ["10.0.0.5"])  # the name moved inside
    assert delivery_attempt(delivery_id=delivery.pk) == Outcome.RETRY
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert attempt.status_code is None and attempt.error.startswith("refused:")
    assert "10.0.0.5, a private address" in attempt.error
    assert receiver.received == []


def test_it_connects_to_the_address_it_checked_not_a_fresh_lookup(trader, grave, receiver, monkeypatch):
    # The name exists nowhere but in this resolver: reaching the receiver proves the
    # connection went to the checked address, with the name kept for the Host header.
    monkeypatch.setattr(webhooks, "resolve", lambda host, port: ["127.0.0.1"])
    delivery = _one_delivery(trader, grave, f"http://hooks.platform.test:{receiver.port}/in")
    assert delivery_attempt(delivery_id=delivery.pk) == Outcome.DELIVERED
    assert receiver.received[0].headers["host"] == f"hooks.platform.test:{receiver.port}"
    assert receiver.received[0].path == "/in"


# --- attempts, retries, 410, replay ------------------------------------------------------------


def test_a_failing_receiver_gets_retries_with_growing_delays_then_the_delivery_fails(
    trader, grave, receiver, settings
):
    settings.WEBHOOK_MAX_ATTEMPTS = 5
    receiver.answer(default=Step(500))
    delivery = _one_delivery(trader, grave, receiver.url)
    now = timezone.now()
    delays = []
    for attempt in range(1, 6):
        outcome = delivery_attempt(delivery_id=delivery.pk, now=now)
        delivery.refresh_from_db()
        assert delivery.attempts == attempt
        if attempt < 5:
            assert outcome == Outcome.RETRY and delivery.state == "pending"
            delays.append((delivery.next_attempt_at - now).total_seconds())
            # Not due yet: a call before the scheduled time sends nothing.
            assert delivery_attempt(delivery_id=delivery.pk, now=now + dt.timedelta(seconds=1)) == "skipped"
            now = delivery.next_attempt_at
    assert outcome == Outcome.FAILED
    assert delivery.state == "failed" and delivery.next_attempt_at is None
    assert all(later > earlier for earlier, later in itertools.pairwise(delays))
    assert 24 <= delays[0] <= 30 and delays[-1] > 10 * delays[0] * 0.8
    log = list(WebhookAttempt.objects.filter(delivery=delivery))
    assert [a.status_code for a in log] == [500] * 5
    assert all(a.latency_ms is not None and a.error.startswith("HTTP 500") for a in log)
    assert {r.headers["webhook-id"] for r in receiver.received} == {delivery.msg_id}
    assert len(receiver.received) == 5


def test_retry_delays_grow_until_the_cap_whatever_the_jitter():
    for seed in range(20):
        rng = random.Random(seed)
        delays = [webhooks.retry_delay(n, rng=rng) for n in range(1, 8)]
        assert all(b > a for a, b in itertools.pairwise(delays))
        assert max(delays) <= webhooks.BACKOFF_MAX_SECONDS


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        ("3600", 3600.0),
        ("999999999", webhooks.BACKOFF_MAX_SECONDS),  # capped
    ],
)
def test_retry_after_in_seconds_is_honoured_and_capped(trader, grave, receiver, retry_after, expected):
    receiver.answer(Step(503, {"Retry-After": retry_after}))
    delivery = _one_delivery(trader, grave, receiver.url)
    now = timezone.now()
    assert delivery_attempt(delivery_id=delivery.pk, now=now) == Outcome.RETRY
    delivery.refresh_from_db()
    assert (delivery.next_attempt_at - now).total_seconds() == pytest.approx(expected)
    assert WebhookAttempt.objects.get(delivery=delivery).status_code == 503


def test_retry_after_as_an_http_date_is_honoured(trader, grave, receiver):
    delivery = _one_delivery(trader, grave, receiver.url)
    now = timezone.now()
    when = (now + dt.timedelta(hours=2)).replace(microsecond=0)
    receiver.answer(Step(429, {"Retry-After": format_datetime(when, usegmt=True)}))
    assert delivery_attempt(delivery_id=delivery.pk, now=now) == Outcome.RETRY
    delivery.refresh_from_db()
    assert delivery.next_attempt_at == when


def test_a_200_after_failures_delivers_with_the_same_webhook_id(trader, grave, receiver):
    receiver.answer(Step(500), Step(502), default=Step(204))
    delivery = _one_delivery(trader, grave, receiver.url)
    now = timezone.now()
    outcomes = []
    for _ in range(3):
        outcomes.append(delivery_attempt(delivery_id=delivery.pk, now=now))
        delivery.refresh_from_db()
        now = delivery.next_attempt_at or now
    assert outcomes == ["retry", "retry", "delivered"]
    assert delivery.state == "delivered" and delivery.delivered_at and delivery.attempts == 3
    assert [r.headers["webhook-id"] for r in receiver.received] == [delivery.msg_id] * 3
    assert len({r.body for r in receiver.received}) == 1  # the same bytes every time
    for sent in receiver.received:  # each attempt signed afresh, each verifies
        Webhook(delivery.endpoint.secret).verify(sent.body, sent.headers)
    assert [a.status_code for a in delivery.attempt_log.all()] == [500, 502, 204]


def test_a_410_disables_the_endpoint_and_fails_what_waits_for_it(trader, grave, receiver):
    endpoint = _shop_and_endpoint(trader, "taobao", receiver.url)
    grave(trader)
    trader_reassess(trader=trader)
    deliveries_enqueue_from_ledger(after_seq=0)
    receiver.answer(Step(410))
    first, *others = WebhookDelivery.objects.filter(endpoint=endpoint).order_by("ledger_seq")
    assert delivery_attempt(delivery_id=first.pk) == Outcome.GONE
    endpoint.refresh_from_db()
    assert not endpoint.is_active and endpoint.disabled_at and "410" in endpoint.disabled_reason
    assert set(WebhookDelivery.objects.filter(endpoint=endpoint).values_list("state", flat=True)) == {
        "failed"
    }
    assert len(receiver.received) == 1
    assert delivery_attempt(delivery_id=others[0].pk) == Outcome.SKIPPED
    # New entries make nothing for a disabled endpoint; switching it on again clears the reason.
    trader_reassess(trader=trader, now=timezone.now() + 4 * DAY)
    assert deliveries_enqueue_from_ledger(after_seq=others[-1].ledger_seq).deliveries == 0
    endpoint = webhook_endpoint_update(
        actor=SYSTEM, endpoint=endpoint, url=endpoint.url, events=[], is_active=True
    )
    assert endpoint.is_active and endpoint.disabled_at is None and endpoint.disabled_reason == ""


def test_a_redirect_is_not_followed(trader, grave, receiver):
    receiver.answer(Step(302, {"Location": f"http://127.0.0.1:{receiver.port}/elsewhere"}))
    delivery = _one_delivery(trader, grave, receiver.url)
    assert delivery_attempt(delivery_id=delivery.pk) == Outcome.RETRY
    assert [r.path for r in receiver.received] == ["/hooks/creditledger"]
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert attempt.status_code == 302 and "not followed" in attempt.error


def test_a_slow_receiver_is_cut_off_at_the_timeout(trader, grave, receiver, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.4
    receiver.answer(Step(sleep=2.0), Step(trickle=3.0))
    delivery = _one_delivery(trader, grave, receiver.url)
    now = timezone.now()
    assert delivery_attempt(delivery_id=delivery.pk, now=now) == Outcome.RETRY
    delivery.refresh_from_db()
    # A receiver that sends a byte now and then is cut off too, not only a silent one.
    assert delivery_attempt(delivery_id=delivery.pk, now=delivery.next_attempt_at) == Outcome.RETRY
    for attempt in WebhookAttempt.objects.filter(delivery=delivery):
        assert attempt.status_code is None and "timed out" in attempt.error
        assert 300 <= attempt.latency_ms < 1500


def test_an_unreachable_receiver_is_logged_and_retried(trader, grave, receiver):
    delivery = _one_delivery(trader, grave, receiver.url)
    receiver.stop()
    assert delivery_attempt(delivery_id=delivery.pk) == Outcome.RETRY
    assert "Connection" in WebhookAttempt.objects.get(delivery=delivery).error


def test_replay_sends_again_with_the_same_msg_id_and_logs_new_attempts(
    trader, grave, receiver, queued, supervisor
):
    delivery = _one_delivery(trader, grave, receiver.url)
    assert delivery_attempt(delivery_id=delivery.pk) == Outcome.DELIVERED
    replayed = delivery_replay(actor=Actor.for_user(supervisor), delivery=delivery)
    assert (replayed.state, replayed.attempts, replayed.delivered_at) == ("pending", 0, None)
    with pytest.raises(ApplicationError, match="still being sent"):
        delivery_replay(actor=SYSTEM, delivery=delivery)
    assert delivery_attempt(delivery_id=delivery.pk, attempts=0) == Outcome.DELIVERED
    assert [r.headers["webhook-id"] for r in receiver.received] == [delivery.msg_id] * 2
    assert WebhookAttempt.objects.filter(delivery=delivery).count() == 2


def test_replay_needs_the_permission_and_an_enabled_endpoint(trader, grave, receiver, officer):
    receiver.answer(Step(410))
    delivery = _one_delivery(trader, grave, receiver.url)
    delivery_attempt(delivery_id=delivery.pk)
    with pytest.raises(PermissionDenied):
        delivery_replay(actor=Actor.for_user(officer), delivery=delivery)
    with pytest.raises(ApplicationError, match="disabled"):
        delivery_replay(actor=SYSTEM, delivery=delivery)


def test_replay_queues_the_delivery_after_commit(
    trader, grave, receiver, queued, django_capture_on_commit_callbacks
):
    delivery = _one_delivery(trader, grave, receiver.url)
    delivery_attempt(delivery_id=delivery.pk)
    with django_capture_on_commit_callbacks(execute=True):
        delivery_replay(actor=SYSTEM, delivery=delivery)
        assert queued == []
    assert queued == [(delivery.pk, 0)]


# --- the tasks ---------------------------------------------------------------------------------


def test_dispatch_generates_from_the_cursor_and_queues_each_due_delivery_once(
    trader, grave, receiver, queued
):
    endpoint = _shop_and_endpoint(trader, "taobao", receiver.url)
    grave(trader)
    trader_reassess(trader=trader)
    assert tasks.webhooks_dispatch() == 3
    ids = set(WebhookDelivery.objects.filter(endpoint=endpoint).values_list("pk", flat=True))
    assert set(queued) == {(pk, 0) for pk in ids}
    assert WebhookCursor.objects.get(name="ledger").seq == _head()
    # The next run finds them leased: no second message while the first is on its way.
    assert tasks.webhooks_dispatch() == 0
    # A lost message: once the lease runs out they are due again.
    later = timezone.now() + webhook_services.QUEUE_LEASE + dt.timedelta(seconds=1)
    assert {pk for pk, _ in deliveries_lease_due(now=later)} == ids


def test_a_duplicate_deliver_message_sends_once(trader, grave, receiver, queued):
    _shop_and_endpoint(trader, "taobao", receiver.url, events=["grade.changed"])
    grave(trader)
    trader_reassess(trader=trader)
    tasks.webhooks_dispatch()
    [(delivery_id, attempts)] = queued
    assert tasks.deliver(delivery_id, attempts) == Outcome.DELIVERED
    assert tasks.deliver(delivery_id, attempts) == Outcome.SKIPPED
    assert len(receiver.received) == 1
    body = json.loads(receiver.received[0].body)
    assert body["type"] == "grade.changed" and body["data"]["grade"] == "C"


def test_the_beat_schedule_runs_the_dispatcher_on_the_webhooks_queue(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["webhooks-dispatch"]
    assert entry["task"] == "creditledger.api.tasks.webhooks_dispatch" == tasks.webhooks_dispatch.name
    assert entry["schedule"] <= 15
    route = settings.CELERY_TASK_ROUTES["creditledger.api.tasks.*"]
    assert route == {"queue": "webhooks"}


# --- the admin ---------------------------------------------------------------------------------


@pytest.fixture
def staff_client(client, supervisor):
    client.force_login(supervisor)
    return client


def test_the_admin_creates_an_endpoint_and_shows_its_secret_once(staff_client, receiver):
    platform = factories.PlatformFactory(code="taobao")
    response = staff_client.post(
        reverse("admin:traders_webhookendpoint_add"),
        {"platform": platform.pk, "url": receiver.url, "events": ["grade.changed"], "is_active": "on"},
        follow=True,
    )
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret.startswith("whsec_") and endpoint.events == ["grade.changed"]
    assert endpoint.secret in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    page = staff_client.get(
        reverse("admin:traders_webhookendpoint_change", args=[endpoint.pk])
    ).content.decode()
    assert endpoint.secret not in page and endpoint.secret[:12] in page


def test_the_admin_refuses_an_endpoint_inside_with_a_field_error(staff_client, settings):
    settings.WEBHOOK_ALLOW_LOOPBACK = False
    platform = factories.PlatformFactory(code="taobao")
    response = staff_client.post(
        reverse("admin:traders_webhookendpoint_add"),
        {"platform": platform.pk, "url": "https://10.0.0.8/hook", "is_active": "on"},
    )
    assert response.status_code == 200
    assert "a private address" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_the_admin_rotates_a_secret(staff_client, receiver):
    endpoint = _endpoint(factories.PlatformFactory(code="taobao"), receiver.url)
    old = endpoint.secret
    response = staff_client.post(
        reverse("admin:traders_webhookendpoint_changelist"),
        {"action": "rotate_secret", "_selected_action": [endpoint.pk]},
        follow=True,
    )
    endpoint.refresh_from_db()
    assert endpoint.previous_secret == old and endpoint.secret != old
    assert endpoint.secret in response.content.decode()


def test_the_admin_edits_an_endpoint_through_the_service(staff_client, receiver, settings):
    endpoint = _endpoint(factories.PlatformFactory(code="taobao"), receiver.url)
    url = reverse("admin:traders_webhookendpoint_change", args=[endpoint.pk])
    response = staff_client.post(url, {"url": receiver.url + "/v2", "events": ["restriction.applied"]})
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (
        endpoint.url.endswith("/v2") and endpoint.events == ["restriction.applied"] and not endpoint.is_active
    )
    assert endpoint.disabled_reason.startswith("Disabled by user:")
    settings.WEBHOOK_ALLOW_LOOPBACK = False
    response = staff_client.post(url, {"url": "https://127.0.0.1/other", "is_active": "on"})
    assert response.status_code == 200 and "loopback" in response.content.decode()


def test_the_admin_shows_a_delivery_with_its_attempts_and_replays_it(
    staff_client, trader, grave, receiver, queued
):
    receiver.answer(Step(500), default=Step(200))
    delivery = _one_delivery(trader, grave, receiver.url)
    now = timezone.now()
    delivery_attempt(delivery_id=delivery.pk, now=now)
    delivery.refresh_from_db()
    delivery_attempt(delivery_id=delivery.pk, now=delivery.next_attempt_at)
    page = staff_client.get(reverse("admin:api_webhookdelivery_change", args=[delivery.pk])).content.decode()
    assert delivery.msg_id in page and "HTTP 500" in page and "grade.changed" in page
    listing = staff_client.get(reverse("admin:api_webhookdelivery_changelist"), {"q": delivery.msg_id})
    assert listing.status_code == 200 and f"{delivery.ledger_seq}" in listing.content.decode()
    staff_client.post(
        reverse("admin:api_webhookdelivery_changelist"),
        {"action": "replay", "_selected_action": [delivery.pk]},
    )
    delivery.refresh_from_db()
    assert delivery.state == "pending" and delivery.attempts == 0


def test_auditors_see_deliveries_but_cannot_replay(client, auditor, trader, grave, receiver):
    delivery = _one_delivery(trader, grave, receiver.url)
    delivery_attempt(delivery_id=delivery.pk)
    client.force_login(auditor)
    assert client.get(reverse("admin:api_webhookdelivery_change", args=[delivery.pk])).status_code == 200
    page = client.get(reverse("admin:traders_webhookendpoint_change", args=[delivery.endpoint_id]))
    assert page.status_code == 200 and delivery.endpoint.secret not in page.content.decode()
    client.post(
        reverse("admin:api_webhookdelivery_changelist"),
        {"action": "replay", "_selected_action": [delivery.pk]},
    )
    delivery.refresh_from_db()
    assert delivery.state == "delivered"
