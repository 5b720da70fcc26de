from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from creditledger.exceptions import ApplicationError, PermissionDenied
from creditledger.ledger.actors import Actor
from creditledger.ledger.models import LedgerEntry
from tests import factories
from traders.models import Shop, Trader
from traders.services import shops_declare

pytestmark = pytest.mark.django_db

PILOT_CODE = "91350100M000100Y44"  # fails only the check character


@pytest.fixture
def taobao():
    return factories.PlatformFactory(code="taobao")


@pytest.fixture
def as_taobao(taobao):
    return Actor.for_apikey("tb123", platform=taobao)


def _item(n: int, **overrides) -> dict:
    item = {
        "platform_shop_id": f"tb-{n}",
        "trader_uscc": factories.make_uscc(5000 + n),
        "trader_name": f"杭州示例{n}号商贸有限公司",
        "shop_name": f"示例{n}号旗舰店",
        "url": f"https://shop{n}.taobao.com/",
        "opened_on": dt.date(2023, 1, 1),
        "closed_on": None,
    }
    item.update(overrides)
    return item


def _counts() -> tuple[int, int, int]:
    return Trader.objects.count(), Shop.objects.count(), LedgerEntry.objects.count()


def _actions() -> list[tuple[str, str]]:
    return list(LedgerEntry.objects.order_by("seq").values_list("action", "subject_type"))


def test_it_registers_unknown_traders_and_their_shops(as_taobao, taobao):
    results = shops_declare(actor=as_taobao, platform=taobao, items=[_item(1), _item(2)])

    assert [(r.index, r.result, r.trader_registered) for r in results] == [
        (0, "created", True),
        (1, "created", True),
    ]
    trader = Trader.objects.get(uscc=factories.make_uscc(5001))
    assert (trader.name, trader.source, trader.source_platform) == (
        "杭州示例1号商贸有限公司",
        "platform",
        taobao,
    )
    assert (trader.kind, trader.region) == ("91", "330106")
    shop = Shop.objects.get(platform=taobao, platform_shop_id="tb-1")
    assert (shop.trader, shop.name, shop.opened_on) == (trader, "示例1号旗舰店", dt.date(2023, 1, 1))
    # A trader's registration comes just before its first shop, all by the platform's key.
    assert _actions() == [
        ("trader.registered", "trader"),
        ("shop.registered", "shop"),
        ("trader.registered", "trader"),
        ("shop.registered", "shop"),
    ]
    first = LedgerEntry.objects.order_by("seq").first()
    assert (first.actor, first.subject_id, first.trader_uscc) == ("apikey:tb123", str(trader.pk), trader.uscc)
    assert first.payload["source_platform"] == "taobao"


def test_a_known_trader_is_not_registered_again_and_keeps_its_name(as_taobao, taobao):
    trader = factories.TraderFactory(name="登记名称")
    shops_declare(actor=as_taobao, platform=taobao, items=[_item(1, trader_uscc=trader.uscc, trader_name="")])
    trader.refresh_from_db()
    assert trader.name == "登记名称"
    assert Trader.objects.count() == 1
    assert _actions() == [("shop.registered", "shop")]


def test_one_new_trader_with_several_shops_is_registered_once(as_taobao, taobao):
    code = factories.make_uscc(777)
    items = [_item(1, trader_uscc=code, trader_name=""), _item(2, trader_uscc=code.lower())]
    results = shops_declare(actor=as_taobao, platform=taobao, items=items)
    assert [r.trader_registered for r in results] == [True, False]
    assert Trader.objects.get().name == "杭州示例2号商贸有限公司"  # the item that names it
    assert [a for a, _ in _actions()] == ["trader.registered", "shop.registered", "shop.registered"]


def test_declaring_the_same_shops_again_writes_nothing(as_taobao, taobao):
    items = [_item(1), _item(2)]
    shops_declare(actor=as_taobao, platform=taobao, items=items)
    before = _counts()
    results = shops_declare(actor=as_taobao, platform=taobao, items=items)
    assert [r.result for r in results] == ["unchanged", "unchanged"]
    assert _counts() == before


def test_a_changed_shop_is_updated_with_its_changes_in_the_ledger(as_taobao, taobao):
    shops_declare(actor=as_taobao, platform=taobao, items=[_item(1), _item(2)])
    old_trader = Trader.objects.get(uscc=factories.make_uscc(5001))
    new_trader = factories.TraderFactory()
    entries = LedgerEntry.objects.count()

    closed = timezone.localdate() - dt.timedelta(days=1)
    results = shops_declare(
        actor=as_taobao,
        platform=taobao,
        items=[
            _item(1, trader_uscc=new_trader.uscc, shop_name="新店名", closed_on=closed),
            _item(2),
        ],
    )

    assert [r.result for r in results] == ["updated", "unchanged"]
    assert results[0].changes == {
        "trader": {"from": old_trader.uscc, "to": new_trader.uscc},
        "name": {"from": "示例1号旗舰店", "to": "新店名"},
        "closed_on": {"from": None, "to": closed},
    }
    shop = Shop.objects.get(platform=taobao, platform_shop_id="tb-1")
    assert (shop.trader, shop.name, shop.closed_on) == (new_trader, "新店名", closed)
    update = LedgerEntry.objects.get(seq=entries + 1)
    assert (update.action, update.trader_uscc) == ("shop.updated", new_trader.uscc)
    assert update.payload["changes"]["closed_on"] == {"from": None, "to": closed.isoformat()}
    assert LedgerEntry.objects.count() == entries + 1


@pytest.mark.parametrize(
    ("overrides", "field", "needle"),
    [
        ({"trader_uscc": "91350100I000100Y43"}, "trader_uscc", "position 9"),
        ({"trader_uscc": "9135010"}, "trader_uscc", "18 characters"),
        ({"trader_uscc": PILOT_CODE}, "trader_uscc", "check character"),
        ({"trader_name": ""}, "trader_name", "not registered yet"),
        ({"shop_name": "  "}, "shop_name", "required"),
        ({"platform_shop_id": ""}, "platform_shop_id", "required"),
        ({"platform_shop_id": "x" * 65}, "platform_shop_id", "At most 64"),
        ({"url": "javascript:alert(1)"}, "url", "URL"),
        (
            {"opened_on": dt.date(2024, 5, 2), "closed_on": dt.date(2024, 5, 1)},
            "closed_on",
            "before it opened",
        ),
        ({"opened_on": "2024-13-01"}, "opened_on", "YYYY-MM-DD"),
        ({"opened_on": timezone.localdate() + dt.timedelta(days=1)}, "opened_on", "future"),
    ],
)
def test_one_bad_item_fails_the_whole_call_naming_it(as_taobao, taobao, overrides, field, needle):
    items = [_item(0), _item(1), _item(2, **overrides), _item(3)]
    with pytest.raises(ApplicationError) as info:
        shops_declare(actor=as_taobao, platform=taobao, items=items)
    error = info.value.as_dict()
    assert error["code"] == "invalid_items"
    assert list(error["fields"]) == [f"items.2.{field}"]
    assert needle in error["fields"][f"items.2.{field}"][0]
    assert error["message"].startswith(f"items.2.{field}: ")
    assert _counts() == (0, 0, 0)


def test_every_bad_item_is_listed(as_taobao, taobao):
    items = [_item(0, trader_uscc="bad"), _item(1), _item(2, shop_name="", url="ftp://x")]
    with pytest.raises(ApplicationError) as info:
        shops_declare(actor=as_taobao, platform=taobao, items=items)
    assert sorted(info.value.extra["fields"]) == ["items.0.trader_uscc", "items.2.shop_name", "items.2.url"]
    assert "(2 of 3 items invalid; nothing was written)" in info.value.message
    assert _counts() == (0, 0, 0)


def test_a_shop_declared_twice_in_one_call_is_refused(as_taobao, taobao):
    with pytest.raises(ApplicationError) as info:
        shops_declare(actor=as_taobao, platform=taobao, items=[_item(1), _item(2, platform_shop_id="tb-1")])
    assert info.value.extra["fields"] == {
        "items.1.platform_shop_id": ["Declared twice in this call (item 0)."]
    }
    assert _counts() == (0, 0, 0)


def test_two_names_for_one_code_are_refused(as_taobao, taobao):
    code = factories.make_uscc(9)
    items = [_item(1, trader_uscc=code, trader_name="甲"), _item(2, trader_uscc=code, trader_name="乙")]
    with pytest.raises(ApplicationError) as info:
        shops_declare(actor=as_taobao, platform=taobao, items=items)
    assert list(info.value.extra["fields"]) == ["items.1.trader_name"]
    assert _counts() == (0, 0, 0)


def test_a_pilot_code_the_regulator_registered_is_accepted(as_taobao, taobao, supervisor):
    factories.TraderFactory(uscc=PILOT_CODE, check_override_reason="试点代码", check_override_by=supervisor)
    results = shops_declare(actor=as_taobao, platform=taobao, items=[_item(1, trader_uscc=PILOT_CODE)])
    assert results[0].shop.trader.uscc == PILOT_CODE


def test_a_platform_declares_only_its_own_shops(taobao):
    jd = factories.PlatformFactory(code="jd")
    with pytest.raises(PermissionDenied):
        shops_declare(actor=Actor.for_apikey("jd1", platform=jd), platform=taobao, items=[_item(1)])
    assert _counts() == (0, 0, 0)


def test_shop_ids_are_per_platform(as_taobao, taobao):
    jd = factories.PlatformFactory(code="jd")
    shops_declare(
        actor=Actor.for_apikey("jd1", platform=jd), platform=jd, items=[_item(1, shop_name="京东店")]
    )
    results = shops_declare(actor=as_taobao, platform=taobao, items=[_item(1)])
    assert results[0].result == "created"
    assert Shop.objects.get(platform=jd).name == "京东店"


def test_at_most_the_bulk_limit(as_taobao, taobao, settings):
    settings.API_BULK_LIMIT = 3
    with pytest.raises(ApplicationError) as info:
        shops_declare(actor=as_taobao, platform=taobao, items=[_item(n) for n in range(4)])
    assert (info.value.field, info.value.code) == ("items", "too_many")
    assert _counts() == (0, 0, 0)


def test_an_inactive_platform_declares_nothing(as_taobao, taobao):
    taobao.is_active = False
    taobao.save()
    with pytest.raises(ApplicationError) as info:
        shops_declare(actor=as_taobao, platform=taobao, items=[_item(1)])
    assert info.value.code == "inactive"


def test_an_officer_may_import_a_platforms_list_but_an_auditor_may_not(as_officer, officer, auditor, taobao):
    with pytest.raises(PermissionDenied):
        shops_declare(actor=Actor.for_user(auditor), platform=taobao, items=[_item(1)])
    shops_declare(actor=as_officer, platform=taobao, items=[_item(1)])
    trader = Trader.objects.get()
    assert (trader.source, trader.source_platform, trader.registered_by) == ("import", taobao, officer)


def _queries(actor, platform, items) -> int:
    with CaptureQueriesContext(connection) as captured:
        shops_declare(actor=actor, platform=platform, items=items)
    return len(captured)


def test_the_number_of_queries_does_not_grow_with_the_items(as_taobao, taobao):
    _queries(as_taobao, taobao, [_item(900)])  # the ledger's first entries: its tree has no tiles to read yet
    small = _queries(as_taobao, taobao, [_item(n) for n in range(2)])
    large = _queries(as_taobao, taobao, [_item(n) for n in range(100, 160)])
    assert small == large
    # Updates: the same, whatever the number of changed shops.
    small = _queries(as_taobao, taobao, [_item(n, shop_name="改") for n in range(2)])
    large = _queries(as_taobao, taobao, [_item(n, shop_name="改") for n in range(100, 160)])
    assert small == large
