from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from creditledger.exceptions import ApplicationError, PermissionDenied
from creditledger.ledger.actors import Actor
from creditledger.ledger.models import LedgerEntry
from penalties.models import Restriction, RestrictionAck
from penalties.services import restriction_acknowledge
from tests import factories

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


@pytest.fixture
def taobao():
    return factories.PlatformFactory(code="taobao")


@pytest.fixture
def as_taobao(taobao):
    return Actor.for_apikey("tb123", platform=taobao)


@pytest.fixture
def shop(taobao):
    return factories.ShopFactory(platform=taobao)


def _measure(trader, state=Restriction.State.ACTIVE, **fields) -> Restriction:
    values = {
        "trader": trader,
        "measure": Restriction.Measure.LISTING_RESTRICTED,
        "state": state,
        "basis": Restriction.Basis.MANUAL,
        "reasons": {"basis": "manual", "statement": "三次售假"},
        "noticed_at": NOW - dt.timedelta(days=10),
        "starts_at": NOW - dt.timedelta(days=3) if state != Restriction.State.PROPOSED else None,
    }
    values.update(fields)
    return Restriction.objects.create(**values)


def _ack(actor, restriction, enforced_at=NOW - dt.timedelta(days=2), **kwargs):
    return restriction_acknowledge(actor=actor, restriction=restriction, enforced_at=enforced_at, **kwargs)


def test_a_platform_acknowledges_an_active_measure_with_its_ledger_entry(as_taobao, taobao, shop):
    r = _measure(shop.trader)
    ack, created = _ack(as_taobao, r, note=" 已下架全部商品 ")
    assert created
    assert (ack.restriction, ack.platform, ack.enforced_at, ack.note) == (
        r,
        taobao,
        NOW - dt.timedelta(days=2),
        "已下架全部商品",
    )
    entry = LedgerEntry.objects.get()
    assert (entry.action, entry.subject_type, entry.subject_id) == (
        "restriction.acknowledged",
        "restriction",
        str(r.pk),
    )
    assert (entry.actor, entry.trader_uscc) == ("apikey:tb123", shop.trader.uscc)
    assert entry.payload["platform"] == "taobao"
    assert entry.payload["measure"] == "listing_restricted"


def test_a_repeat_with_the_same_time_returns_the_ack_and_writes_nothing(as_taobao, shop):
    r = _measure(shop.trader)
    first, _ = _ack(as_taobao, r)
    again, created = _ack(as_taobao, r, note="重复")
    assert (again.pk, created) == (first.pk, False)
    assert LedgerEntry.objects.count() == 1


def test_a_repeat_with_another_time_is_refused(as_taobao, shop):
    r = _measure(shop.trader)
    _ack(as_taobao, r)
    with pytest.raises(ApplicationError) as info:
        _ack(as_taobao, r, enforced_at=NOW - dt.timedelta(days=1))
    assert (info.value.field, info.value.code) == ("enforced_at", "already_acknowledged")
    assert RestrictionAck.objects.count() == LedgerEntry.objects.count() == 1


def test_each_platform_acknowledges_once(as_taobao, shop):
    jd = factories.PlatformFactory(code="jd")
    factories.ShopFactory(platform=jd, trader=shop.trader)
    r = _measure(shop.trader)
    _ack(as_taobao, r)
    _ack(Actor.for_apikey("jd1", platform=jd), r)
    assert sorted(RestrictionAck.objects.values_list("platform__code", flat=True)) == ["jd", "taobao"]


def test_only_for_a_trader_with_a_shop_on_the_platform(as_taobao, shop):
    other = factories.ShopFactory(platform=factories.PlatformFactory(code="jd"))
    with pytest.raises(PermissionDenied) as info:
        _ack(as_taobao, _measure(other.trader))
    assert info.value.field == "restriction"
    assert not RestrictionAck.objects.exists()
    assert not LedgerEntry.objects.exists()


def test_a_closed_shop_still_counts(as_taobao, shop):
    shop.closed_on = timezone.localdate()
    shop.save()
    assert _ack(as_taobao, _measure(shop.trader))[1]


@pytest.mark.parametrize(
    ("state", "extra"),
    [
        (Restriction.State.PROPOSED, {"objection_deadline": NOW + dt.timedelta(days=5)}),
        (Restriction.State.WITHDRAWN, {"lifted_at": NOW - dt.timedelta(days=1)}),
        (
            Restriction.State.LIFTED,
            {"starts_at": None, "lifted_at": NOW - dt.timedelta(days=1), "lifted_reason": "manual"},
        ),
    ],
)
def test_a_measure_that_never_took_effect_cannot_be_acknowledged(as_taobao, shop, state, extra):
    with pytest.raises(ApplicationError) as info:
        _ack(as_taobao, _measure(shop.trader, state, **extra))
    assert info.value.code == "not_in_force"
    assert not RestrictionAck.objects.exists()


def test_a_measure_lifted_after_it_took_effect_can_be_acknowledged_up_to_the_lift(as_taobao, shop):
    r = _measure(
        shop.trader, Restriction.State.LIFTED, lifted_at=NOW - dt.timedelta(days=1), lifted_reason="expired"
    )
    with pytest.raises(ApplicationError) as info:
        _ack(as_taobao, r, enforced_at=NOW - dt.timedelta(hours=1))
    assert info.value.code == "after_lift"
    assert _ack(as_taobao, r, enforced_at=NOW - dt.timedelta(days=2))[1]


@pytest.mark.parametrize(
    ("enforced_at", "code"),
    [
        (NOW + dt.timedelta(days=1), "future"),
        (NOW - dt.timedelta(days=11), "before_notice"),
        (dt.datetime(2024, 1, 1, 12, 0), "invalid"),  # naive: whose noon?
    ],
)
def test_the_enforcement_time_lies_between_the_notice_and_now(as_taobao, shop, enforced_at, code):
    with pytest.raises(ApplicationError) as info:
        _ack(as_taobao, _measure(shop.trader), enforced_at=enforced_at, now=NOW)
    assert (info.value.field, info.value.code) == ("enforced_at", code)
    assert not RestrictionAck.objects.exists()
    assert not LedgerEntry.objects.exists()


def test_the_enforcement_time_may_be_now(as_taobao, shop):
    assert _ack(as_taobao, _measure(shop.trader), enforced_at=NOW, now=NOW)[1]


def test_a_long_note_is_refused(as_taobao, shop):
    with pytest.raises(ApplicationError) as info:
        _ack(as_taobao, _measure(shop.trader), note="长" * 501)
    assert info.value.field == "note"


def test_only_a_platform_acknowledges(as_supervisor, shop):
    with pytest.raises(PermissionDenied):
        _ack(as_supervisor, _measure(shop.trader))
