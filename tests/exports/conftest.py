from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from creditledger.ledger.actors import Actor
from penalties import demo
from penalties.models import Restriction, RestrictionAck
from penalties.services import restriction_acknowledge, restriction_lift, trader_reassess
from tests import factories
from tests.conftest import _staff
from traders.models import Trader


@pytest.fixture
def other_auditor(db):
    from creditledger import roles

    return _staff(roles.AUDITOR, "auditor2")


@pytest.fixture
def seeded(db):
    """Demo traders, shops and violations (penalties.demo.seed), the measures reassessment
    imposes for them, and acknowledgements from some platforms a few hours after the start."""
    demo.seed(traders=40, violations=220, seed=30)
    now = timezone.now()
    flagged = list(Trader.objects.filter(needs_reassessment=True).order_by("pk"))
    # Proposed measures take effect at their objection deadline. Half the traders are first
    # reassessed 20 days ago, all of them 10 days ago: whatever day the suite runs, measures
    # are then noticed on two days, and some are still proposed.
    for days_ago, traders in ((20, flagged[: len(flagged) // 2]), (10, flagged)):
        for trader in traders:
            trader_reassess(trader=trader, now=now - dt.timedelta(days=days_ago))
    in_force = Restriction.objects.filter(state="active").select_related("trader").order_by("pk")
    for n, restriction in enumerate(in_force):
        platforms = sorted({s.platform for s in restriction.trader.shops.all()}, key=lambda p: p.code)
        for k, platform in enumerate(platforms):
            if (n + k) % 3 == 2:
                continue  # some platforms never acknowledge
            actor = Actor.for_apikey(f"key{platform.pk}", platform)
            enforced = restriction.starts_at + dt.timedelta(hours=(n * 7 + k * 5) % 90 + 1)
            restriction_acknowledge(actor=actor, restriction=restriction, enforced_at=min(enforced, now))
    # A lifted measure too, so the registers always hold measures in three states.
    restriction_lift(
        actor=Actor.system("reports_fixture"),
        restriction=in_force.last(),
        note="lifted by hand so the register holds a lifted measure",
        now=now,
    )
    return {"now": now, "acks": RestrictionAck.objects.count()}


@pytest.fixture
def chinese_trader(db):
    trader = factories.TraderFactory(name="杭州鑫源电子商务有限公司", legal_representative="王小明")
    shop = factories.ShopFactory(
        trader=trader, platform=factories.PlatformFactory(code="taobao", name="淘宝")
    )
    factories.ViolationFactory(
        trader=trader,
        shop=shop,
        status="confirmed",
        decided_at=timezone.now(),
        description="虚假宣传“七天美白”",
    )
    return trader
