"""PUT /api/v1/shops/: a platform declares its shops and their operators in bulk."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from creditledger.ledger.models import LedgerEntry
from tests import factories
from traders.models import Shop, Trader

pytestmark = pytest.mark.django_db

URL = "/api/v1/shops/"


@pytest.fixture
def client(make_api_client):
    return make_api_client("taobao", ["shops:write"])


def _item(n: int, **overrides) -> dict:
    item = {
        "platform_shop_id": f"tb-{n}",
        "trader_uscc": factories.make_uscc(8000 + n),
        "trader_name": f"示例{n}号电子商务有限公司",
        "shop_name": f"示例{n}号店",
        "url": f"https://shop{n}.example.com/",
        "opened_on": "2022-06-01",
        "closed_on": None,
    }
    item.update(overrides)
    return item


def _put(client, items):
    return client.put(URL, {"items": items}, format="json")


def _counts() -> tuple[int, int, int]:
    return Trader.objects.count(), Shop.objects.count(), LedgerEntry.objects.count()


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) >= {"code", "message", "fields"}
    return body


def test_it_creates_updates_and_leaves_alone(client):
    first = _put(client, [_item(1), _item(2)])
    assert first.status_code == 200, first.content
    assert first.json()["created"] == 2
    assert first.json()["traders_registered"] == 2
    entries = LedgerEntry.objects.count()

    response = _put(client, [_item(1), _item(2, shop_name="新名字"), _item(3)])

    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("created", "updated", "unchanged", "traders_registered")} == {
        "created": 1,
        "updated": 1,
        "unchanged": 1,
        "traders_registered": 1,
    }
    assert [(i["index"], i["platform_shop_id"], i["result"]) for i in body["items"]] == [
        (0, "tb-1", "unchanged"),
        (1, "tb-2", "updated"),
        (2, "tb-3", "created"),
    ]
    assert body["items"][1]["changes"] == {"name": {"from": "示例2号店", "to": "新名字"}}
    assert body["items"][2]["trader_uscc"] == factories.make_uscc(8003)
    actions = LedgerEntry.objects.filter(seq__gt=entries).order_by("seq").values_list("action", flat=True)
    assert list(actions) == ["shop.updated", "trader.registered", "shop.registered"]
    trader = Trader.objects.get(uscc=factories.make_uscc(8003))
    assert (trader.source, trader.source_platform) == ("platform", client.platform)


def test_one_bad_code_writes_nothing_and_names_the_item(client):
    response = _put(client, [_item(1), _item(2), _item(3, trader_uscc="91350100M000100Y44")])
    body = _error(response, 400)
    assert list(body["fields"]) == ["items.2.trader_uscc"]
    assert "check character" in body["fields"]["items.2.trader_uscc"][0]
    assert body["message"].startswith("items.2.trader_uscc")
    assert _counts() == (0, 0, 0)


def test_a_malformed_item_is_named_too(client):
    body = _error(_put(client, [_item(1), _item(2, opened_on="01/06/2022")]), 400)
    assert list(body["fields"]) == ["items.1.opened_on"]
    assert _counts() == (0, 0, 0)


def test_a_future_date_is_refused(client):
    body = _error(_put(client, [_item(1, opened_on="2999-01-01")]), 400)
    assert "future" in body["fields"]["items.0.opened_on"][0]
    assert _counts() == (0, 0, 0)


def test_1001_items_are_refused(client):
    body = _error(_put(client, [_item(n) for n in range(1001)]), 400)
    assert list(body["fields"]) == ["items"]
    assert _counts() == (0, 0, 0)


def test_1000_items_go_through_with_a_constant_number_of_queries(client):
    _put(client, [_item(5000)])  # the key's first use records last_used_at: not counted
    with CaptureQueriesContext(connection) as few:
        assert _put(client, [_item(n) for n in range(3)]).status_code == 200
    with CaptureQueriesContext(connection) as many:
        response = _put(client, [_item(n) for n in range(3, 1003)])
    assert response.status_code == 200, response.content[:500]
    assert response.json()["created"] == 1000
    assert len(many) == len(few)
    assert _counts() == (1004, 1004, 2008)


@pytest.mark.parametrize("items", [[], "not a list", [["a list"]]])
def test_the_items_must_be_a_non_empty_list_of_objects(client, items):
    _error(client.put(URL, {"items": items}, format="json"), 400)
    assert _counts() == (0, 0, 0)


def test_malformed_json_is_a_400(client):
    body = _error(client.put(URL, '{"items": [', content_type="application/json"), 400)
    assert body["code"] == "parse_error"


def test_multipart_is_a_415(client):
    _error(client.put(URL, {"items": "x"}, format="multipart"), 415)


def test_a_platform_cannot_write_another_platforms_shops(client, make_api_client):
    _put(client, [_item(1)])
    jd = make_api_client("jd", ["shops:write"])
    response = _put(jd, [_item(1, shop_name="京东冒名", trader_uscc=factories.make_uscc(9999))])
    assert response.json()["items"][0]["result"] == "created"  # jd's own tb-1, not taobao's
    taobao_shop = Shop.objects.get(platform=client.platform, platform_shop_id="tb-1")
    assert (taobao_shop.name, taobao_shop.trader.uscc) == ("示例1号店", factories.make_uscc(8001))


def test_a_key_without_shops_write_is_a_403(make_api_client):
    reporter = make_api_client("taobao", ["reports:write", "status:read"])
    body = _error(_put(reporter, [_item(1)]), 403)
    assert "shops:write" in body["message"]
    assert _counts() == (0, 0, 0)


def test_a_revoked_key_is_a_401(client):
    client.api_key.revoked = True
    client.api_key.save()
    _error(_put(client, [_item(1)]), 401)
    assert _counts() == (0, 0, 0)
