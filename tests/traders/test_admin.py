from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from creditledger.ledger.models import LedgerEntry
from penalties.services import violation_record
from tests import factories
from traders import uscc as uscc_rules
from traders.models import Shop, Trader
from traders.services import shop_register, trader_register

pytestmark = pytest.mark.django_db

TRADERS = reverse("admin:traders_trader_changelist")
TRADER_ADD = reverse("admin:traders_trader_add")
SHOPS = reverse("admin:traders_shop_changelist")
SHOP_ADD = reverse("admin:traders_shop_add")


def _bad_check(code: str) -> str:
    """The same code with a wrong check character (an early pilot code)."""
    wrong = next(ch for ch in uscc_rules.ALPHABET if ch != code[-1])
    return code[:-1] + wrong


def _queries(client, url: str) -> int:
    client.get(url)  # warm caches (content types, permissions) outside the measurement
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def _traders_with_shops(count: int) -> None:
    platform = factories.PlatformFactory(code="taobao", name="淘宝")
    for _ in range(count):
        trader = factories.TraderFactory(source=Trader.Source.PLATFORM, source_platform=platform)
        factories.ShopFactory(trader=trader, platform=platform)


@pytest.mark.parametrize(
    "query",
    ["", "?status__exact=normal", "?grade__exact=A&region_prefix=33", "?q=测试", "?source__exact=platform"],
)
def test_the_trader_list_costs_the_same_queries_for_5_or_25_traders(client, officer, query):
    client.force_login(officer)
    _traders_with_shops(5)
    small = _queries(client, TRADERS + query)
    _traders_with_shops(20)
    assert _queries(client, TRADERS + query) == small


def test_the_shop_list_costs_the_same_queries_for_5_or_25_shops(client, officer):
    client.force_login(officer)
    _traders_with_shops(5)
    small = _queries(client, SHOPS)
    _traders_with_shops(20)
    assert _queries(client, SHOPS) == small


def test_the_trader_list_shows_code_name_region_grade_score_and_status(client, officer):
    trader = factories.TraderFactory(uscc=factories.make_uscc(7, "330106"), name="杭州西湖商贸有限公司")
    client.force_login(officer)
    body = client.get(TRADERS).content.decode()
    assert trader.uscc in body
    assert "杭州西湖商贸有限公司" in body
    assert "杭州市西湖区" in body
    assert ">1000<" in body


def test_search_finds_a_trader_by_code_name_or_shop_id(client, officer):
    wanted = factories.TraderFactory(name="义乌小商品贸易有限公司")
    other = factories.TraderFactory(name="深圳电子科技有限公司")
    factories.ShopFactory(trader=wanted, platform_shop_id="TB-778899")
    client.force_login(officer)
    for term in [wanted.uscc, wanted.uscc.lower(), wanted.uscc[:10], "义乌小商品", "TB-778899"]:
        found = list(client.get(TRADERS, {"q": term}).context["cl"].result_list)
        assert found == [wanted], term
    assert list(client.get(TRADERS, {"q": "深圳电子"}).context["cl"].result_list) == [other]


def test_the_region_filter_selects_a_province(client, officer):
    zhejiang = factories.TraderFactory(uscc=factories.make_uscc(1, "330106"))
    factories.TraderFactory(uscc=factories.make_uscc(2, "440305"))
    client.force_login(officer)
    response = client.get(TRADERS, {"region_prefix": "33"})
    assert list(response.context["cl"].result_list) == [zhejiang]


def test_an_officer_registers_a_trader_through_the_add_form(client, officer):
    code = factories.make_uscc(42, "310115")
    client.force_login(officer)
    response = client.post(
        TRADER_ADD,
        {
            "uscc": f"  {code.lower()} ",
            "name": "上海浦东贸易有限公司",
            "legal_representative": "张三",
            "address": "",
        },
    )
    assert response.status_code == 302
    trader = Trader.objects.get()
    assert (trader.uscc, trader.region, trader.registered_by) == (code, "310115", officer)
    entry = LedgerEntry.objects.exclude(action="admin.logged").get()
    assert (entry.action, entry.actor, entry.trader_uscc) == ("trader.registered", f"user:{officer.pk}", code)


def test_an_invalid_code_shows_the_rule_on_the_code_field_and_writes_nothing(client, officer):
    client.force_login(officer)
    response = client.post(TRADER_ADD, {"uscc": _bad_check(factories.make_uscc(3)), "name": "某公司"})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "check character expected" in errors["uscc"][0]
    assert not Trader.objects.exists()
    assert not LedgerEntry.objects.exists()


def test_a_short_code_names_the_length_rule(client, officer):
    client.force_login(officer)
    response = client.post(TRADER_ADD, {"uscc": "91330106", "name": "某公司"})
    assert "must be 18 characters" in response.context["adminform"].form.errors["uscc"][0]


def test_a_registered_code_cannot_be_registered_again(client, officer, as_officer):
    code = factories.make_uscc(5)
    trader_register(actor=as_officer, uscc=code, name="先登记的公司")
    client.force_login(officer)
    response = client.post(TRADER_ADD, {"uscc": code, "name": "后登记的公司"})
    assert response.status_code == 200
    assert "already registered" in response.context["adminform"].form.errors["uscc"][0]
    assert Trader.objects.count() == 1
    assert LedgerEntry.objects.count() == 1


def test_an_officer_cannot_override_the_check_character(client, officer):
    client.force_login(officer)
    response = client.post(
        TRADER_ADD,
        {
            "uscc": _bad_check(factories.make_uscc(9)),
            "name": "试点企业",
            "check_override_reason": "早期试点代码",
        },
    )
    assert response.status_code == 200
    assert "supervisor" in response.context["adminform"].form.errors["check_override_reason"][0]
    assert not Trader.objects.exists()
    assert not LedgerEntry.objects.exists()


def test_a_supervisor_registers_a_pilot_code_with_an_override_reason(client, supervisor):
    code = _bad_check(factories.make_uscc(11))
    client.force_login(supervisor)
    response = client.post(
        TRADER_ADD,
        {"uscc": code, "name": "试点企业", "check_override_reason": "2015年试点期间核发，营业执照原件已核验"},
    )
    assert response.status_code == 302
    trader = Trader.objects.get(uscc=code)
    assert trader.check_override_by == supervisor
    assert trader.check_override_reason.startswith("2015年")


def test_the_trader_page_is_read_only_and_shows_its_ledger_trail_newest_first(client, officer, as_officer):
    trader = trader_register(actor=as_officer, uscc=factories.make_uscc(21), name="被检查的公司")
    platform = factories.PlatformFactory(code="jd", name="京东")
    shop_register(
        actor=as_officer, trader=trader, platform=platform, platform_shop_id="JD-1", name="京东自营店"
    )
    violation_record(
        actor=as_officer,
        trader=trader,
        type=factories.violation_type(),
        occurred_on=factories.ViolationFactory.build().occurred_on,
        source="inspection",
        description="宣传与实际不符",
    )
    factories.TraderFactory()  # someone else's history stays off this page
    client.force_login(officer)
    url = reverse("admin:traders_trader_change", args=[trader.pk])
    response = client.get(url)
    assert response.status_code == 200
    body = response.content.decode()
    actions = ["violation.recorded", "shop.registered", "trader.registered"]
    positions = [body.index(action) for action in actions]
    assert positions == sorted(positions)
    assert f"?trader_uscc={trader.uscc}" in body
    assert "京东自营店" in body  # the shops inline
    assert f"{SHOP_ADD}?trader={trader.pk}" in body
    assert 'name="score"' not in body and 'name="name"' not in body
    assert client.post(url, {"name": "改名"}).status_code == 403


def test_the_ledger_trail_is_capped(client, officer, as_officer, monkeypatch):
    from traders import admin as traders_admin

    monkeypatch.setattr(traders_admin, "LEDGER_TRAIL_LIMIT", 2)
    trader = trader_register(actor=as_officer, uscc=factories.make_uscc(22), name="公司")
    platform = factories.PlatformFactory()
    for n in range(3):
        shop_register(actor=as_officer, trader=trader, platform=platform, platform_shop_id=f"S{n}", name="店")
    client.force_login(officer)
    body = client.get(reverse("admin:traders_trader_change", args=[trader.pk])).content.decode()
    assert body.count("shop.registered") == 2
    assert "trader.registered" not in body


def test_an_officer_adds_a_shop_through_shop_register(client, officer):
    trader = factories.TraderFactory()
    platform = factories.PlatformFactory(code="pdd", name="拼多多")
    client.force_login(officer)
    assert client.get(SHOP_ADD, {"trader": trader.pk}).status_code == 200
    response = client.post(
        SHOP_ADD,
        {"trader": trader.pk, "platform": platform.pk, "platform_shop_id": "PDD-9", "name": "拼多多旗舰店"},
    )
    assert response.status_code == 302
    shop = Shop.objects.get()
    assert (shop.trader, shop.platform_shop_id) == (trader, "PDD-9")
    assert LedgerEntry.objects.exclude(action="admin.logged").get().action == "shop.registered"


def test_a_shop_id_the_platform_already_declared_is_a_field_error(client, officer):
    existing = factories.ShopFactory(platform_shop_id="DUP-1")
    client.force_login(officer)
    response = client.post(
        SHOP_ADD,
        {
            "trader": factories.TraderFactory().pk,
            "platform": existing.platform.pk,
            "platform_shop_id": "DUP-1",
            "name": "重复的店",
        },
    )
    assert response.status_code == 200
    assert "already declared" in response.context["adminform"].form.errors["platform_shop_id"][0]
    assert Shop.objects.count() == 1
    assert not LedgerEntry.objects.exists()


def test_a_shop_cannot_close_before_it_opened(client, officer):
    client.force_login(officer)
    response = client.post(
        SHOP_ADD,
        {
            "trader": factories.TraderFactory().pk,
            "platform": factories.PlatformFactory().pk,
            "platform_shop_id": "X-1",
            "name": "店",
            "opened_on": "2024-05-01",
            "closed_on": "2024-04-01",
        },
    )
    assert response.context["adminform"].form.errors["closed_on"]
    assert not Shop.objects.exists()


def test_traders_and_shops_cannot_be_deleted_even_by_a_superuser(client):
    admin_user = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    shop = factories.ShopFactory()
    client.force_login(admin_user)
    assert client.get(reverse("admin:traders_trader_delete", args=[shop.trader.pk])).status_code == 403
    assert client.get(reverse("admin:traders_shop_delete", args=[shop.pk])).status_code == 403
    assert client.post(reverse("admin:traders_trader_change", args=[shop.trader.pk])).status_code == 403


def test_the_trader_autocomplete_searches_by_code(client, officer):
    trader = factories.TraderFactory()
    factories.TraderFactory()
    client.force_login(officer)
    response = client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "penalties",
            "model_name": "violation",
            "field_name": "trader",
            "term": trader.uscc[:12],
        },
    )
    assert response.status_code == 200
    assert [r["id"] for r in response.json()["results"]] == [str(trader.pk)]


def test_a_supervisor_edits_a_platform_but_an_officer_only_views_it(client, officer, supervisor):
    platform = factories.PlatformFactory(code="douyin", name="抖音")
    url = reverse("admin:traders_platform_change", args=[platform.pk])
    client.force_login(officer)
    assert client.get(url).status_code == 200
    assert client.post(url, {"name": "改", "is_active": ""}).status_code == 403
    client.force_login(supervisor)
    assert client.post(url, {"name": "抖音电商", "is_active": "on"}).status_code == 302
    platform.refresh_from_db()
    assert (platform.code, platform.name) == ("douyin", "抖音电商")
    assert client.get(reverse("admin:traders_platform_delete", args=[platform.pk])).status_code == 403


def test_a_trader_registered_from_a_popup_is_kept(client, officer):
    # The "+" beside the violation form's trader field: the answer is a page, not a redirect.
    code = factories.make_uscc(31)
    client.force_login(officer)
    response = client.post(TRADER_ADD, {"uscc": code, "name": "弹窗登记的公司", "_popup": "1"})
    assert response.status_code == 200
    assert "admin/popup_response.html" in [t.name for t in response.templates]
    assert Trader.objects.filter(uscc=code).exists()
    assert LedgerEntry.objects.filter(action="trader.registered", trader_uscc=code).exists()
