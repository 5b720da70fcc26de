"""The examples docs/api.md uses, present in every demo database, so its curl lines answer
as printed: trader 91350100M000100Y43 (the standard's worked example) and its Taobao shop
tb-123456. Written through the services (trader.registered, shop.registered in the ledger);
idempotent, so demo_setup may run it every time."""

from __future__ import annotations

from django.db import transaction

from creditledger.ledger.actors import Actor
from penalties.demo import ensure_platforms
from traders.models import Shop, Trader
from traders.services import shop_register, trader_register

EXAMPLE_USCC = "91350100M000100Y43"
EXAMPLE_NAME = "福州示例贸易有限公司"
EXAMPLE_PLATFORM = "taobao"
EXAMPLE_SHOP = "tb-123456"
EXAMPLE_SHOP_NAME = "示例旗舰店"
ACTOR = Actor.system("demo.examples")


@transaction.atomic
def ensure_examples() -> list[str]:
    """Register what is missing; returns what was added (empty when all was there)."""
    added = []
    platform = ensure_platforms()[EXAMPLE_PLATFORM]
    trader = Trader.objects.filter(uscc=EXAMPLE_USCC).first()
    if trader is None:
        trader = trader_register(
            actor=ACTOR, uscc=EXAMPLE_USCC, name=EXAMPLE_NAME, address="福建省福州市鼓楼区示例路1号"
        )
        added.append(f"trader {EXAMPLE_USCC}")
    if not Shop.objects.filter(platform=platform, platform_shop_id=EXAMPLE_SHOP).exists():
        shop_register(
            actor=ACTOR,
            trader=trader,
            platform=platform,
            platform_shop_id=EXAMPLE_SHOP,
            name=EXAMPLE_SHOP_NAME,
        )
        added.append(f"shop {EXAMPLE_PLATFORM}/{EXAMPLE_SHOP}")
    return added
