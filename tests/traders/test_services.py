from __future__ import annotations

import datetime as dt

import pytest

from creditledger.exceptions import ApplicationError, PermissionDenied
from creditledger.ledger.actors import Actor
from creditledger.ledger.models import LedgerEntry
from tests import factories
from traders.models import Shop, Trader
from traders.services import shop_register, trader_register

pytestmark = pytest.mark.django_db

PILOT_CODE = "91350100M000100Y44"  # fails only the check character


def _nothing_written(traders=0, shops=0, entries=0):
    assert Trader.objects.count() == traders
    assert Shop.objects.count() == shops
    assert LedgerEntry.objects.count() == entries


def test_it_registers_a_trader_with_derived_kind_and_region(as_officer, officer):
    trader = trader_register(
        actor=as_officer,
        uscc=" 91350100m000100y43 ",
        name=" 福州示例科技有限公司 ",
        legal_representative="张三",
    )
    assert trader.uscc == "91350100M000100Y43"
    assert (trader.kind, trader.region, trader.name) == ("91", "350100", "福州示例科技有限公司")
    assert trader.registered_by == officer
    entry = LedgerEntry.objects.get()
    assert (entry.action, entry.subject_type, entry.subject_id) == (
        "trader.registered",
        "trader",
        str(trader.pk),
    )
    assert entry.actor == f"user:{officer.pk}"
    assert entry.trader_uscc == trader.uscc
    assert entry.payload["name"] == "福州示例科技有限公司"
    assert entry.payload["check_override"] is None


@pytest.mark.parametrize(
    ("code", "code_name"),
    [("9135010", "uscc_length"), ("91350100I000100Y43", "uscc_character"), (PILOT_CODE, "uscc_check")],
)
def test_it_rejects_an_invalid_code_and_writes_nothing(as_officer, code, code_name):
    with pytest.raises(ApplicationError) as info:
        trader_register(actor=as_officer, uscc=code, name="某公司")
    assert info.value.field == "uscc"
    assert info.value.code == code_name
    _nothing_written()


def test_it_requires_a_name(as_officer):
    with pytest.raises(ApplicationError) as info:
        trader_register(actor=as_officer, uscc="91350100M000100Y43", name="  ")
    assert info.value.field == "name"
    _nothing_written()


def test_it_refuses_a_duplicate_code(as_officer):
    trader_register(actor=as_officer, uscc="91350100M000100Y43", name="甲公司")
    with pytest.raises(ApplicationError) as info:
        trader_register(actor=as_officer, uscc="91350100m000100y43", name="乙公司")
    assert info.value.code == "duplicate"
    _nothing_written(traders=1, entries=1)


def test_a_supervisor_registers_a_pilot_code_with_an_override_reason(as_supervisor, supervisor):
    trader = trader_register(
        actor=as_supervisor,
        uscc=PILOT_CODE,
        name="试点企业",
        check_override_reason="2015年试点期间发放的代码，核对营业执照原件无误",
    )
    assert trader.check_overridden
    assert trader.check_override_by == supervisor
    payload = LedgerEntry.objects.get().payload
    assert payload["check_override"]["by"] == supervisor.pk
    assert "试点" in payload["check_override"]["reason"]


def test_an_officer_cannot_override_the_check_character(as_officer):
    with pytest.raises(PermissionDenied):
        trader_register(
            actor=as_officer, uscc=PILOT_CODE, name="试点企业", check_override_reason="看起来没问题"
        )
    _nothing_written()


def test_an_override_is_refused_for_a_code_that_passes(as_supervisor):
    with pytest.raises(ApplicationError) as info:
        trader_register(actor=as_supervisor, uscc="91350100M000100Y43", name="甲", check_override_reason="x")
    assert info.value.code == "override_not_needed"
    _nothing_written()


def test_an_auditor_cannot_register_traders(auditor):
    with pytest.raises(PermissionDenied):
        trader_register(actor=Actor.for_user(auditor), uscc="91350100M000100Y43", name="甲")
    _nothing_written()


def test_it_registers_a_shop(as_officer):
    trader = factories.TraderFactory()
    platform = factories.PlatformFactory(code="taobao", name="淘宝")
    shop = shop_register(
        actor=as_officer,
        trader=trader,
        platform=platform,
        platform_shop_id=" 10001 ",
        name="示例旗舰店",
        url="https://shop10001.taobao.com",
        opened_on=dt.date(2024, 1, 1),
    )
    assert shop.platform_shop_id == "10001"
    entry = LedgerEntry.objects.get()
    assert entry.action == "shop.registered"
    assert entry.payload == {
        "platform": "taobao",
        "platform_shop_id": "10001",
        "trader": trader.uscc,
        "name": "示例旗舰店",
        "url": "https://shop10001.taobao.com",
        "opened_on": "2024-01-01",
        "closed_on": None,
    }


@pytest.mark.parametrize(
    ("kwargs", "field", "code"),
    [
        ({"platform_shop_id": ""}, "platform_shop_id", "required"),
        ({"name": ""}, "name", "required"),
        ({"url": "ftp://example.com"}, "url", "invalid_url"),
        (
            {"opened_on": dt.date(2024, 2, 1), "closed_on": dt.date(2024, 1, 1)},
            "closed_on",
            "closed_before_opened",
        ),
    ],
)
def test_it_rejects_a_bad_shop_and_writes_nothing(as_officer, kwargs, field, code):
    trader = factories.TraderFactory()
    platform = factories.PlatformFactory()
    arguments = {"platform_shop_id": "1", "name": "店", **kwargs}
    with pytest.raises(ApplicationError) as info:
        shop_register(actor=as_officer, trader=trader, platform=platform, **arguments)
    assert (info.value.field, info.value.code) == (field, code)
    _nothing_written(traders=1)


def test_a_shop_id_is_unique_per_platform_only(as_officer):
    trader = factories.TraderFactory()
    taobao, jd = factories.PlatformFactory(code="taobao"), factories.PlatformFactory(code="jd")
    shop_register(actor=as_officer, trader=trader, platform=taobao, platform_shop_id="1", name="店")
    shop_register(actor=as_officer, trader=trader, platform=jd, platform_shop_id="1", name="店")
    with pytest.raises(ApplicationError) as info:
        shop_register(actor=as_officer, trader=trader, platform=taobao, platform_shop_id="1", name="另一店")
    assert info.value.code == "duplicate"
    _nothing_written(traders=1, shops=2, entries=2)


def test_an_inactive_platform_takes_no_shops(as_officer):
    platform = factories.PlatformFactory(is_active=False)
    with pytest.raises(ApplicationError) as info:
        shop_register(
            actor=as_officer,
            trader=factories.TraderFactory(),
            platform=platform,
            platform_shop_id="1",
            name="店",
        )
    assert info.value.code == "inactive"
    _nothing_written(traders=1)


def test_a_platform_key_registers_only_its_own_shops():
    taobao, jd = factories.PlatformFactory(code="taobao"), factories.PlatformFactory(code="jd")
    with pytest.raises(PermissionDenied):
        shop_register(
            actor=Actor.for_apikey("abc123", platform=jd),
            trader=factories.TraderFactory(),
            platform=taobao,
            platform_shop_id="1",
            name="店",
        )
    _nothing_written(traders=1)
