"""The read side of the platform API: status by code and by shop, bulk lookup, the change
feed and the ledger's key and checkpoint."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import threading
import time

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from creditledger.api import selectors, serializers_read
from creditledger.api.serializers_read import (
    FeedEntrySerializer,
    LookupItemSerializer,
    TraderStatusSerializer,
)
from creditledger.ledger import signing
from creditledger.ledger.actors import Actor
from creditledger.ledger.models import LedgerEntry
from creditledger.ledger.selectors import STATUS_ACTIONS
from creditledger.ledger.services import Entry, checkpoint_create, ledger_append_many
from penalties.models import Restriction, Violation, ViolationType
from penalties.services import (
    restriction_impose,
    restriction_lift,
    restriction_withdraw,
    trader_reassess,
    violation_confirm,
    violation_record,
)
from penalties.services.reassessment import reassess_all
from tests import factories
from tests.ledger.helpers import mth
from traders.models import Trader
from traders.services import shop_register, trader_register

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")
EXAMPLE = "91350100M000100Y43"  # the standard's worked example


@pytest.fixture(autouse=True)
def signing_key(settings):
    # A fixed seed, so no test writes a key file under var/.
    settings.LEDGER_SIGNING_KEY = base64.b64encode(bytes(range(32))).decode("ascii")
    settings.LEDGER_ORIGIN = "ledger.test/creditledger"


@pytest.fixture
def client(make_api_client) -> APIClient:
    return make_api_client("taobao", ["status:read"])


@pytest.fixture
def jd(db):
    return factories.PlatformFactory(code="jd", name="JD")


def _measure(trader, measure, state, **fields) -> Restriction:
    now = timezone.now()
    values = {
        "basis": "score",
        "rule_code": "grade-C",
        "policy_version": 1,
        "reasons": {"basis": "score", "rule": "grade-C", "score": 640, "grade": "C", "violations": []},
        "noticed_at": now - dt.timedelta(days=10),
    }
    if state == "proposed":
        values["objection_deadline"] = now + dt.timedelta(days=3)
    if state in ("active", "lifted"):
        values["starts_at"] = now - dt.timedelta(days=7)
        values["ends_at"] = now + dt.timedelta(days=83)
    if state == "lifted":
        values["lifted_at"] = now - dt.timedelta(days=1)
        values["lifted_reason"] = "recovered"
    values.update(fields)
    return Restriction.objects.create(trader=trader, measure=measure, state=state, **values)


def _errors_shape(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) >= {"code", "message", "fields"}
    if code is not None:
        assert body["code"] == code
    return body


# --- GET traders/{uscc} -----------------------------------------------------------------------


def test_it_returns_a_traders_status_measures_and_only_the_callers_shops(client, jd):
    trader = factories.TraderFactory(
        uscc=EXAMPLE, name="福州示例贸易有限公司", kind="91", region="350100", score=640, grade="C"
    )
    Trader.objects.filter(pk=trader.pk).update(status="listing_restricted", version=7)
    active = _measure(trader, "listing_restricted", "active")
    proposed = _measure(
        trader,
        "suspended",
        "proposed",
        basis="rule",
        rule_code="repeat-counterfeit",
        reasons={"basis": "rule", "rule": "repeat-counterfeit", "violations": [{"id": 1}]},
    )
    _measure(trader, "warning", "lifted")
    _measure(trader, "blacklisted", "withdrawn", lifted_at=timezone.now())
    mine = factories.ShopFactory(
        trader=trader, platform=client.platform, platform_shop_id="tb-1", name="旗舰店"
    )
    factories.ShopFactory(trader=trader, platform=jd, platform_shop_id="jd-1")

    response = client.get(f"/api/v1/traders/{EXAMPLE}")

    assert response.status_code == 200
    body = response.json()
    assert body["uscc"] == EXAMPLE
    assert body["name"] == "福州示例贸易有限公司"
    assert (body["kind"], body["region"]) == ("91", "350100")
    assert body["kind_label"] and body["region_name"]
    assert (body["score"], body["grade"], body["status"], body["version"]) == (
        640,
        "C",
        "listing_restricted",
        7,
    )
    assert [m["id"] for m in body["measures"]] == [active.pk, proposed.pk]
    first, second = body["measures"]
    assert first["measure"] == "listing_restricted" and first["state"] == "active"
    assert first["reason_code"] == "grade-C" and first["basis"] == "score"
    assert first["starts_at"] and first["ends_at"] and first["noticed_at"]
    assert first["reasons"]["grade"] == "C"
    assert second["state"] == "proposed" and second["reason_code"] == "repeat-counterfeit"
    assert second["objection_deadline"] and second["starts_at"] is None
    assert second["policy_version"] == 1
    assert body["shops"] == [
        {
            "platform_shop_id": mine.platform_shop_id,
            "name": "旗舰店",
            "url": "",
            "opened_on": None,
            "closed_on": None,
        }
    ]


def test_a_manual_measure_has_the_reason_code_manual(client):
    trader = factories.TraderFactory()
    _measure(trader, "warning", "active", basis="manual", rule_code="", reasons={"statement": "约谈"})
    body = client.get(f"/api/v1/traders/{trader.uscc}").json()
    assert body["measures"][0]["reason_code"] == "manual"
    assert body["measures"][0]["reasons"] == {"statement": "约谈"}


@pytest.mark.parametrize("written", ["91350100m000100y43", " 9135 0100 M000 100Y43 ", "91350100m000100Y43"])
def test_lower_case_and_spaced_codes_are_normalised(client, written):
    factories.TraderFactory(uscc=EXAMPLE)
    response = client.get(f"/api/v1/traders/{written}")
    assert response.status_code == 200
    assert response.json()["uscc"] == EXAMPLE


@pytest.mark.parametrize(
    ("code", "rule"),
    [
        ("91350100M000100Y44", "uscc_check"),
        ("91350100M000100Y4", "uscc_length"),
        ("91350100M000100I43", "uscc_character"),
        ("Z1350100M000100Y43", "uscc_character"),
        ("B1350100M000100Y43", "uscc_authority"),
    ],
)
def test_an_invalid_code_is_a_400_naming_the_rule(client, code, rule):
    body = _errors_shape(client.get(f"/api/v1/traders/{code}"), 400, rule)
    assert body["fields"]["uscc"] == [body["message"]]


def test_an_unknown_valid_code_is_a_404(client):
    body = _errors_shape(client.get(f"/api/v1/traders/{EXAMPLE}"), 404, "not_found")
    assert EXAMPLE in body["message"]


# --- ETag -------------------------------------------------------------------------------------


def test_the_etag_answers_304_while_the_copy_is_current(client, jd):
    trader = factories.TraderFactory()
    url = f"/api/v1/traders/{trader.uscc}"
    first = client.get(url)
    etag = first["ETag"]
    assert etag.startswith('W/"') and "Authorization" in first["Vary"]

    again = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    assert client.get(url, HTTP_IF_NONE_MATCH=f'"x", {etag.removeprefix("W/")}').status_code == 304
    assert client.get(url, HTTP_IF_NONE_MATCH="*").status_code == 304
    assert client.get(url, HTTP_IF_NONE_MATCH='W/"1.000000000000"').status_code == 200

    # another platform's shop changes nothing this caller sees
    factories.ShopFactory(trader=trader, platform=jd)
    assert client.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 304

    # a status change bumps the version
    Trader.objects.filter(pk=trader.pk).update(version=2, status="warning")
    changed = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed.json()["status"] == "warning"
    assert changed["ETag"] != etag

    # the caller's own new shop is in the answer, so it changes the ETag too
    etag = changed["ETag"]
    factories.ShopFactory(trader=trader, platform=client.platform)
    assert client.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 200


# --- GET traders/?shop= -------------------------------------------------------------------------


def test_a_shop_id_finds_the_trader_operating_the_callers_shop(client, jd):
    trader = factories.TraderFactory()
    other = factories.TraderFactory()
    factories.ShopFactory(trader=trader, platform=client.platform, platform_shop_id="s-1")
    factories.ShopFactory(trader=other, platform=jd, platform_shop_id="s-2")

    response = client.get("/api/v1/traders/", {"shop": "s-1"})
    assert response.status_code == 200
    assert response.json()["uscc"] == trader.uscc
    assert response["ETag"]
    assert (
        client.get("/api/v1/traders/", {"shop": "s-1"}, HTTP_IF_NONE_MATCH=response["ETag"]).status_code
        == 304
    )


def test_another_platforms_shop_with_the_same_id_is_invisible(client, jd):
    factories.ShopFactory(platform=jd, platform_shop_id="same-id")
    _errors_shape(client.get("/api/v1/traders/", {"shop": "same-id"}), 404, "not_found")
    _errors_shape(client.get("/api/v1/traders/", {"shop": "never-declared"}), 404, "not_found")


def test_the_shop_parameter_is_required(client):
    body = _errors_shape(client.get("/api/v1/traders/"), 400)
    assert "shop" in body["fields"]
    body = _errors_shape(client.get("/api/v1/traders/", {"shop": "x" * 65}), 400)
    assert "shop" in body["fields"]


# --- POST traders/lookup ------------------------------------------------------------------------


def test_a_bulk_lookup_answers_each_item_in_request_order(client, jd):
    known = factories.TraderFactory(uscc=EXAMPLE)
    _measure(known, "warning", "active")
    by_shop = factories.TraderFactory()
    factories.ShopFactory(trader=by_shop, platform=client.platform, platform_shop_id="tb-9")
    factories.ShopFactory(platform=jd, platform_shop_id="jd-only")
    unknown = factories.make_uscc(99_999_999, "110105")

    response = client.post(
        "/api/v1/traders/lookup",
        {
            "codes": [unknown, "91350100m000100y43", "91350100M000100Y44", "", EXAMPLE],
            "shop_ids": ["jd-only", "tb-9", "nope"],
        },
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    results = body["results"]
    assert [(r["kind"], r["input"], r["result"]) for r in results] == [
        ("code", unknown, "not_found"),
        ("code", EXAMPLE, "found"),
        ("code", "91350100M000100Y44", "invalid"),
        ("code", "", "invalid"),
        ("code", EXAMPLE, "found"),
        ("shop_id", "jd-only", "not_found"),
        ("shop_id", "tb-9", "found"),
        ("shop_id", "nope", "not_found"),
    ]
    assert results[1]["trader"]["uscc"] == EXAMPLE
    assert results[1]["trader"]["measures"][0]["measure"] == "warning"
    assert results[2]["error"]["code"] == "uscc_check" and results[2]["trader"] is None
    assert results[3]["error"]["code"] == "uscc_length"
    assert results[6]["trader"]["uscc"] == by_shop.uscc
    assert results[6]["trader"]["shops"][0]["platform_shop_id"] == "tb-9"
    assert results[0]["trader"] is None and results[0]["error"] is None
    assert (body["found"], body["not_found"], body["invalid"]) == (3, 3, 2)


def test_a_bulk_lookup_of_1000_items_is_answered_and_1001_is_refused(client, settings):
    assert settings.API_BULK_LIMIT == 1000
    codes = [factories.make_uscc(n) for n in range(1, 601)]
    shops = [f"s-{n}" for n in range(400)]
    response = client.post("/api/v1/traders/lookup", {"codes": codes, "shop_ids": shops}, format="json")
    assert response.status_code == 200
    assert len(response.json()["results"]) == 1000

    body = _errors_shape(
        client.post(
            "/api/v1/traders/lookup", {"codes": codes, "shop_ids": [*shops, "one-more"]}, format="json"
        ),
        400,
    )
    assert "1000" in body["fields"]["codes"][0] and "1001" in body["fields"]["codes"][0]
    body = _errors_shape(
        client.post("/api/v1/traders/lookup", {"shop_ids": [f"s-{n}" for n in range(1001)]}, format="json"),
        400,
    )
    assert "shop_ids" in body["fields"]


@pytest.mark.parametrize(
    ("payload", "field", "code"),
    [
        ({}, "codes", "empty"),
        ({"codes": []}, "codes", "empty"),
        ({"codes": "91350100M000100Y43"}, "codes", "not_a_list"),
        ({"codes": [1, None]}, "codes.1", "null"),
        ({"shop_ids": [{"id": 1}]}, "shop_ids.0", "invalid"),
        ({"codes": ["x" * 65]}, "codes.0", "max_length"),
    ],
)
def test_a_malformed_lookup_is_a_400_naming_the_field_and_rule(client, payload, field, code):
    body = _errors_shape(client.post("/api/v1/traders/lookup", payload, format="json"), 400, code)
    assert field in body["fields"], body


def test_a_lookup_that_is_not_json_is_refused_in_the_error_shape(client):
    _errors_shape(
        client.post("/api/v1/traders/lookup", "{not json", content_type="application/json"),
        400,
        "parse_error",
    )
    _errors_shape(
        client.post("/api/v1/traders/lookup", "codes=1", content_type="text/plain"),
        415,
        "unsupported_media_type",
    )
    _errors_shape(client.get("/api/v1/traders/lookup"), 405, "method_not_allowed")


# --- the fast renderers ---------------------------------------------------------------------------


def test_the_fast_renderers_give_what_the_serializers_document(client, jd):
    trader = trader_register(actor=SYSTEM, uscc=EXAMPLE, name="示例")
    Trader.objects.filter(pk=trader.pk).update(assessed_at=timezone.now(), score=640, grade="C")
    _measure(trader, "listing_restricted", "active")
    _measure(trader, "suspended", "proposed", basis="manual", rule_code="", reasons={"statement": "拒不整改"})
    shop_register(
        actor=SYSTEM,
        trader=trader,
        platform=client.platform,
        platform_shop_id="tb-1",
        name="店",
        url="https://shop.example.com/1",
        opened_on=dt.date(2024, 5, 1),
    )
    shop_register(actor=SYSTEM, trader=trader, platform=jd, platform_shop_id="jd-1", name="京东店")
    platform = client.platform

    found = selectors.trader_status(uscc=EXAMPLE, platform=platform)
    assert serializers_read.trader_status_data(found) == TraderStatusSerializer(found).data

    items = selectors.traders_lookup(
        platform=platform, codes=[EXAMPLE, "bad", factories.make_uscc(7)], shop_ids=["tb-1"]
    )
    assert [serializers_read.lookup_item_data(i) for i in items] == LookupItemSerializer(
        items, many=True
    ).data

    entries, _ = selectors.feed(after=0, limit=100)
    assert {e.action for e in entries} >= {"trader.registered", "shop.registered"}
    assert [serializers_read.feed_entry_data(e, platform) for e in entries] == (
        FeedEntrySerializer(entries, many=True, context={"platform": platform}).data
    )


# --- query counts -------------------------------------------------------------------------------

# A warm key costs no query: the process holds it for API_KEY_CACHE_SECONDS (and writes
# last_used_at at most once a minute). Each test's first request warms it.
AUTH = 0


def _populate(platform, n: int) -> tuple[list[str], list[str]]:
    traders = [factories.TraderFactory() for _ in range(n)]
    for trader in traders:
        _measure(trader, "warning", "active")
        _measure(trader, "suspended", "proposed", basis="rule", rule_code="repeat-counterfeit")
        factories.ShopFactory(trader=trader, platform=platform)
    shops = [t.shops.get().platform_shop_id for t in traders]
    return [t.uscc for t in traders], shops


def test_the_detail_costs_a_fixed_number_of_queries(client, django_assert_num_queries):
    codes, shops = _populate(client.platform, 2)
    client.get(f"/api/v1/traders/{codes[0]}")  # warm: last_used_at
    with django_assert_num_queries(AUTH + 1):  # the trader, its measures and the caller's shops
        response = client.get(f"/api/v1/traders/{codes[1]}")
    with django_assert_num_queries(AUTH + 1):
        assert (
            client.get(f"/api/v1/traders/{codes[1]}", HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304
        )
    with django_assert_num_queries(AUTH + 1):
        assert client.get("/api/v1/traders/", {"shop": shops[1]}).status_code == 200
    with django_assert_num_queries(AUTH + 1):
        assert client.get("/api/v1/traders/91350100M000100Y43").status_code == 404
    with django_assert_num_queries(AUTH):
        assert client.get("/api/v1/traders/91350100M000100Y44").status_code == 400


@pytest.mark.parametrize("size", [10, 1000])
def test_a_bulk_lookup_costs_the_same_queries_for_10_or_1000_items(client, size, django_assert_num_queries):
    codes, shops = _populate(client.platform, 20)
    half = size // 2
    # half codes, half shop ids; most of them found, a few unknown and invalid
    asked_codes = (codes * (half // len(codes) + 1))[: half - 2] + [factories.make_uscc(88_888_888), "bad"]
    asked_shops = (shops * (half // len(shops) + 1))[: half - 1] + ["unknown-shop"]
    client.get("/api/v1/ledger/public-key")  # warm: last_used_at
    # one statement: the traders by code or by the caller's shops, their measures and shops
    with django_assert_num_queries(AUTH + 1):
        response = client.post(
            "/api/v1/traders/lookup", {"codes": asked_codes, "shop_ids": asked_shops}, format="json"
        )
    assert response.status_code == 200
    body = response.json()
    assert len(body["results"]) == size
    assert (body["invalid"], body["not_found"]) == (1, 2)


@pytest.mark.parametrize("limit", [10, 1000])
def test_a_feed_page_costs_the_same_queries_for_10_or_1000_entries(client, limit, django_assert_num_queries):
    entries = [
        Entry(
            "score.changed", "trader", n, factories.make_uscc(n), {"score": 990, "grade": "A", "version": 2}
        )
        for n in range(1, 1101)
    ]
    ledger_append_many(actor=SYSTEM, entries=entries)
    client.get("/api/v1/ledger/public-key")  # warm: last_used_at
    with django_assert_num_queries(AUTH + 1):
        response = client.get("/api/v1/changes/", {"after": 0, "limit": limit})
    assert len(response.json()["entries"]) == limit


def _register_many(codes: list[str]) -> None:
    for code in codes:
        trader_register(actor=SYSTEM, uscc=code, name=f"商户{code[-6:]}")


# --- GET changes/ -------------------------------------------------------------------------------


def test_the_feed_returns_status_entries_after_a_seq_in_order(client):
    trader = trader_register(actor=SYSTEM, uscc=EXAMPLE, name="示例")
    violation = violation_record(
        actor=SYSTEM,
        trader=trader,
        type=ViolationType.objects.get(code="false-advertising"),
        occurred_on=timezone.localdate(),
        source="inspection",
        description="宣传不实",
    )  # violation.recorded is not status-relevant
    shop = shop_register(
        actor=SYSTEM, trader=trader, platform=client.platform, platform_shop_id="tb-1", name="店"
    )
    entries = list(LedgerEntry.objects.order_by("seq"))
    assert [e.action for e in entries] == ["trader.registered", "violation.recorded", "shop.registered"]

    body = client.get("/api/v1/changes/").json()
    assert [e["seq"] for e in body["entries"]] == [entries[0].seq, entries[2].seq]
    assert body["next"] == entries[2].seq and body["has_more"] is False
    first, second = body["entries"]
    assert first["action"] == "trader.registered" and first["trader"] == EXAMPLE
    assert first["subject"] == {"type": "trader", "id": str(trader.pk)}
    assert first["payload"]["uscc"] == EXAMPLE and first["at"]
    assert first["payload_withheld"] is False
    assert second["payload"]["platform_shop_id"] == shop.platform_shop_id
    assert violation.pk  # recorded, yet absent from the feed

    body = client.get("/api/v1/changes/", {"after": entries[0].seq, "limit": 1}).json()
    assert [e["seq"] for e in body["entries"]] == [entries[2].seq]
    body = client.get("/api/v1/changes/", {"after": entries[2].seq}).json()
    assert body == {"entries": [], "next": entries[2].seq, "has_more": False}
    response = client.get("/api/v1/changes/", {"after": 10**12})  # beyond the head: not an empty page
    assert response.status_code == 409 and response.json()["head"] == entries[2].seq


def test_the_feed_says_when_more_entries_wait(client):
    _register_many([factories.make_uscc(n) for n in range(1, 6)])
    body = client.get("/api/v1/changes/", {"limit": 3}).json()
    assert len(body["entries"]) == 3 and body["has_more"] is True
    body = client.get("/api/v1/changes/", {"after": body["next"], "limit": 3}).json()
    assert len(body["entries"]) == 2 and body["has_more"] is False


def test_another_platforms_shop_declarations_are_withheld_in_the_feed(client, jd):
    trader = trader_register(actor=SYSTEM, uscc=EXAMPLE, name="示例")
    shop_register(actor=SYSTEM, trader=trader, platform=jd, platform_shop_id="jd-secret", name="京东店")
    entry = client.get("/api/v1/changes/").json()["entries"][-1]
    assert entry["action"] == "shop.registered" and entry["trader"] == EXAMPLE
    assert entry["payload"] == {} and entry["payload_withheld"] is True
    assert entry["payload_redacted"] == []


def test_the_feed_leaves_out_who_decided_and_the_internal_note(client, officer, supervisor):
    trader = trader_register(actor=SYSTEM, uscc=EXAMPLE, name="示例")
    violation = violation_record(
        actor=Actor.for_user(officer),
        trader=trader,
        type=ViolationType.objects.get(code="false-advertising"),
        occurred_on=timezone.localdate(),
        source="inspection",
        description="宣传不实",
    )
    violation_confirm(actor=Actor.for_user(supervisor), violation=violation, note="内部意见：证据充分")
    recorded = LedgerEntry.objects.get(action="violation.confirmed")
    assert recorded.payload["decided_by"] == supervisor.pk and recorded.payload["note"]

    entry = client.get("/api/v1/changes/").json()["entries"][-1]
    assert entry["action"] == "violation.confirmed" and entry["payload_withheld"] is False
    assert entry["payload_redacted"] == ["decided_by", "note"]
    assert "decided_by" not in entry["payload"] and "note" not in entry["payload"]
    assert entry["payload"]["type"] == "false-advertising" and entry["payload"]["status"] == "confirmed"
    registered = client.get("/api/v1/changes/").json()["entries"][0]
    assert registered["action"] == "trader.registered"
    assert registered["payload_redacted"] == ["check_override"]
    assert "check_override" not in registered["payload"]


@pytest.mark.parametrize(
    ("query", "field", "code"),
    [
        ({"after": -1}, "after", "min_value"),
        ({"after": "abc"}, "after", "invalid"),
        ({"after": 2**63}, "after", "max_value"),
        ({"limit": 0}, "limit", "min_value"),
        ({"limit": 1001}, "limit", "max_value"),
        ({"limit": "ten"}, "limit", "invalid"),
    ],
)
def test_bad_feed_parameters_are_a_400_naming_them_and_the_rule(client, query, field, code):
    body = _errors_shape(client.get("/api/v1/changes/", query), 400, code)
    assert field in body["fields"]


def _four_eyes(supervisor, other_supervisor, trader, code: str, occurred_on) -> Violation:
    violation = violation_record(
        actor=Actor.for_user(supervisor),
        trader=trader,
        type=ViolationType.objects.get(code=code),
        occurred_on=occurred_on,
        source="inspection",
        description="检查发现",
    )
    return violation_confirm(actor=Actor.for_user(other_supervisor), violation=violation)


def test_replaying_the_feed_from_0_rebuilds_every_traders_status(client, supervisor, other_supervisor):
    """Apply trader.registered (the defaults), then the status, score, grade and version that
    score.changed and restriction.* entries carry, in seq order: the result is the table."""
    today = timezone.localdate()
    now = timezone.now()
    traders = [
        trader_register(actor=SYSTEM, uscc=factories.make_uscc(n), name=f"商户{n}") for n in range(1, 7)
    ]
    a, b, c, d, e, f = traders
    as_supervisor = Actor.for_user(supervisor)

    _four_eyes(supervisor, other_supervisor, a, "counterfeit-large-scale", today)  # grave: blacklisting
    trader_reassess(trader=a, now=now)
    trader_reassess(trader=a, now=now + dt.timedelta(days=6))  # the proposals take effect

    for days in (40, 20):
        _four_eyes(supervisor, other_supervisor, b, "false-advertising", today - dt.timedelta(days=days))
    trader_reassess(trader=b, now=now)

    restriction_impose(actor=as_supervisor, trader=c, measure="warning", reason="约谈未改正")
    proposed = restriction_impose(actor=as_supervisor, trader=c, measure="suspended", reason="拒不整改")
    restriction_withdraw(actor=as_supervisor, restriction=proposed, note="异议成立")

    warning = restriction_impose(actor=as_supervisor, trader=d, measure="warning", reason="约谈")
    restriction_lift(actor=as_supervisor, restriction=warning, note="已整改")

    _four_eyes(supervisor, other_supervisor, e, "substandard-goods", today - dt.timedelta(days=500))
    trader_reassess(trader=e, now=now)
    # f: registered only

    shop_register(actor=SYSTEM, trader=f, platform=client.platform, platform_shop_id="tb-f", name="店")

    state: dict[str, dict] = {}
    after, pages = 0, 0
    while True:
        body = client.get("/api/v1/changes/", {"after": after, "limit": 7}).json()
        pages += 1
        for entry in body["entries"]:
            _apply(state, entry)
        after = body["next"]
        if not body["has_more"]:
            break
    assert pages > 3, "the replay should span several pages"

    expected = {
        t.uscc: {"score": t.score, "grade": t.grade, "status": t.status, "version": t.version}
        for t in Trader.objects.all()
    }
    assert state == expected
    # the scenario moved every kind of field
    assert {s["status"] for s in expected.values()} >= {"normal", "warning", "blacklisted"}
    assert {s["grade"] for s in expected.values()} >= {"A", "C"}
    assert any(s["score"] not in (1000, 600) for s in expected.values())


def _apply(state: dict[str, dict], entry: dict) -> None:
    action, payload = entry["action"], entry["payload"]
    if action == "trader.registered":
        # A new trader starts clean: score 1000, grade A, normal, version 1.
        state[entry["trader"]] = {"score": 1000, "grade": "A", "status": "normal", "version": 1}
    elif action == "score.changed":
        state[entry["trader"]].update({k: payload[k] for k in ("score", "grade", "status", "version")})
    elif action.startswith("restriction.") or action == "trader.status_changed":
        if "status" in payload:
            state[entry["trader"]].update({"status": payload["status"], "version": payload["version"]})


def test_traders_rescored_in_bulk_replay_too(client):
    trader = trader_register(actor=SYSTEM, uscc=EXAMPLE, name="示例")
    Trader.objects.filter(pk=trader.pk).update(score=950, grade="A")  # as if its violation had expired
    reassess_all(now=timezone.now())
    state: dict[str, dict] = {}
    for entry in client.get("/api/v1/changes/").json()["entries"]:
        _apply(state, entry)
    trader.refresh_from_db()
    assert state[EXAMPLE]["score"] == trader.score == 1000
    assert state[EXAMPLE]["version"] == trader.version


# --- a reader polling while writers commit --------------------------------------------------------

WRITERS = 4
EACH = 40


def _writer(n: int, start: threading.Barrier, failures: list) -> None:
    type_ = ViolationType.objects.get(code="false-advertising")
    try:
        start.wait()
        for i in range(EACH):
            trader = trader_register(
                actor=Actor.system(f"writer{n}"),
                uscc=factories.make_uscc(n * 1000 + i + 1),
                name=f"商户{n}-{i}",
            )
            # not status-relevant: leaves holes in seq that the reader must not mistake for gaps
            violation_record(
                actor=Actor.system(f"writer{n}"),
                trader=trader,
                type=type_,
                occurred_on=timezone.localdate(),
                source="inspection",
                description="抽查",
            )
    except Exception as exc:  # pragma: no cover - reported below
        failures.append(exc)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_reader_polling_while_4_writers_commit_sees_every_entry_once(make_api_client):
    client = make_api_client("taobao", ["status:read"])
    start = threading.Barrier(WRITERS + 1)
    failures: list = []
    writers = [threading.Thread(target=_writer, args=(n, start, failures)) for n in range(WRITERS)]
    for thread in writers:
        thread.start()
    start.wait()

    seen: list[int] = []
    after, polls = 0, 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        writing = any(thread.is_alive() for thread in writers)
        body = client.get("/api/v1/changes/", {"after": after, "limit": 5}).json()
        polls += 1
        seen += [entry["seq"] for entry in body["entries"]]
        assert all(entry["action"] in STATUS_ACTIONS for entry in body["entries"])
        after = body["next"]
        if not writing and not body["has_more"]:
            break  # a full pass after the last commit
    for thread in writers:
        thread.join(timeout=10)
    assert not failures, failures

    expected = list(
        LedgerEntry.objects.filter(action__in=STATUS_ACTIONS).order_by("seq").values_list("seq", flat=True)
    )
    assert len(expected) == WRITERS * EACH
    assert seen == expected  # each once, in order, none missing
    assert LedgerEntry.objects.count() == 2 * WRITERS * EACH
    assert polls > 10, "the reader did not poll while the writers ran"
    actors = list(LedgerEntry.objects.order_by("seq").values_list("actor", flat=True))
    switches = sum(1 for x, y in itertools.pairwise(actors) if x != y)
    assert switches > WRITERS, "the writers did not overlap; the test proved nothing"


# --- ledger ---------------------------------------------------------------------------------------


def test_the_public_key_is_the_ledger_signers(client):
    body = client.get("/api/v1/ledger/public-key").json()
    assert body == signing.public_key_info()
    assert body["algorithm"] == "Ed25519"


def test_the_latest_checkpoint_verifies_with_the_public_key(client):
    _errors_shape(client.get("/api/v1/ledger/checkpoints/latest"), 404, "not_found")
    trader_register(actor=SYSTEM, uscc=EXAMPLE, name="示例")
    checkpoint_create()
    body = client.get("/api/v1/ledger/checkpoints/latest").json()
    head = LedgerEntry.objects.order_by("-seq").first()
    assert (body["seq"], body["hash"]) == (head.seq, head.hash)
    root = mth([bytes(e.body) for e in LedgerEntry.objects.order_by("seq")]).hex()
    assert body["root"] == root

    key = client.get("/api/v1/ledger/public-key").json()
    verifier = signing.Verifier.parse(key["verifier_key"])
    stated = signing.open_checkpoint(body["note"], verifier)
    assert (stated.size, stated.hash, stated.origin) == (head.seq, root, key["origin"])


def test_the_ledger_endpoints_need_no_scope_and_no_key(make_api_client):
    client = make_api_client("jd", [])
    assert client.get("/api/v1/ledger/public-key").status_code == 200
    assert client.get("/api/v1/ledger/checkpoints/latest").status_code == 404
    assert APIClient().get("/api/v1/ledger/public-key").status_code == 200  # anyone may check


@pytest.mark.parametrize(
    "items",
    [
        ["91350100M000100Y43", " 9135 0100 m000 100y43 ", ""],
        ["x" * 64, "y"],
        ["x" * 65],
        ["ok", None],
        ["ok", 7, 1.5],
        ["ok", True],
        ["ok", {"a": 1}],
        ["店铺", "ok"],
        ["a\x00b"],
        ["  ", "ok"],
    ],
)
def test_the_fast_code_list_takes_and_refuses_what_drf_would(items):
    from rest_framework import serializers as drf

    fast = serializers_read.StringListField(child=drf.CharField(max_length=64))
    slow = drf.ListField(child=drf.CharField(max_length=64))
    for field in (fast, slow):
        field.bind("shop_ids", drf.Serializer())
    outcomes = []
    for field in (fast, slow):
        try:
            outcomes.append(("ok", field.run_validation(items)))
        except drf.ValidationError as exc:
            outcomes.append(("error", exc.detail))
    assert outcomes[0] == outcomes[1]
    codes_fast = serializers_read.StringListField(
        child=drf.CharField(max_length=64, allow_blank=True, trim_whitespace=False)
    )
    codes_slow = drf.ListField(child=drf.CharField(max_length=64, allow_blank=True, trim_whitespace=False))
    results = []
    for field in (codes_fast, codes_slow):
        field.bind("codes", drf.Serializer())
        try:
            results.append(("ok", field.run_validation(items)))
        except drf.ValidationError as exc:
            results.append(("error", exc.detail))
    assert results[0] == results[1]
