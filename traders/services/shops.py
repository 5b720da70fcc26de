"""Registering one shop."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction

from creditledger.exceptions import ApplicationError, PermissionDenied, require_perm
from creditledger.ledger.actors import Actor
from creditledger.ledger.services import ledger_append
from traders.jurisdiction import require_jurisdiction
from traders.models import Platform, Shop, Trader
from traders.services.traders import required_text


@transaction.atomic
def shop_register(
    *,
    actor: Actor,
    trader: Trader,
    platform: Platform,
    platform_shop_id: str,
    name: str,
    url: str = "",
    opened_on: dt.date | None = None,
    closed_on: dt.date | None = None,
) -> Shop:
    if actor.kind == "user":
        require_perm(actor, "traders.add_shop", "You may not register shops.")
        require_jurisdiction(actor, trader.region, field="trader")
    if actor.kind == "apikey" and actor.platform is not None and actor.platform.pk != platform.pk:
        raise PermissionDenied("A platform registers only its own shops.", field="platform")
    if not platform.is_active:
        raise ApplicationError(
            "This platform is not active.", field="platform", code="inactive", value=platform.code
        )
    platform_shop_id = required_text(platform_shop_id, field="platform_shop_id", max_length=64)
    name = required_text(name, field="name", max_length=200)
    url = (url or "").strip()
    if url:
        try:
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError as exc:
            raise ApplicationError(
                "Enter a valid http(s) URL.", field="url", code="invalid_url", value=url
            ) from exc
    if opened_on and closed_on and closed_on < opened_on:
        raise ApplicationError(
            "A shop cannot close before it opened.",
            field="closed_on",
            code="closed_before_opened",
            value=str(closed_on),
        )
    if Shop.objects.filter(platform=platform, platform_shop_id=platform_shop_id).exists():
        raise ApplicationError(
            "This platform already declared a shop with this id.",
            field="platform_shop_id",
            code="duplicate",
            value=platform_shop_id,
        )
    shop = Shop(
        trader=trader,
        platform=platform,
        platform_shop_id=platform_shop_id,
        name=name,
        url=url,
        opened_on=opened_on,
        closed_on=closed_on,
    )
    try:
        with transaction.atomic():
            shop.save()
    except IntegrityError as exc:
        raise ApplicationError(
            "This platform already declared a shop with this id.",
            field="platform_shop_id",
            code="duplicate",
            value=platform_shop_id,
        ) from exc
    ledger_append(
        actor=actor,
        action="shop.registered",
        subject_type="shop",
        subject_id=shop.pk,
        trader_uscc=trader.uscc,
        payload=shop_payload(shop),
    )
    return shop


def shop_payload(shop: Shop) -> dict:
    return {
        "platform": shop.platform.code,
        "platform_shop_id": shop.platform_shop_id,
        "trader": shop.trader.uscc,
        "name": shop.name,
        "url": shop.url,
        "opened_on": shop.opened_on,
        "closed_on": shop.closed_on,
    }
