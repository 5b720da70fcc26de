"""Platforms' bulk declarations of their shops and who operates them (all or nothing)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.utils import timezone

from creditledger.exceptions import ApplicationError, PermissionDenied, require_perm
from creditledger.ledger.actors import Actor
from creditledger.ledger.services import Entry, ledger_append_many
from creditledger.text import check_text
from traders import uscc as uscc_rules
from traders.jurisdiction import actor_scope
from traders.models import Platform, Shop, Trader
from traders.services.shops import shop_payload
from traders.services.traders import trader_payload

# --- platforms' bulk declarations -----------------------------------------------------------

SHOP_FIELDS = ("trader", "name", "url", "opened_on", "closed_on")


@dataclass(frozen=True)
class ShopDeclared:
    """What one declared item did: `result` is created, updated or unchanged."""

    index: int
    shop: Shop
    result: str
    trader_registered: bool = False
    changes: dict = field(default_factory=dict)


@dataclass
class _Item:
    index: int
    platform_shop_id: str
    code: uscc_rules.USCC
    trader_name: str
    shop_name: str
    url: str
    opened_on: dt.date | None
    closed_on: dt.date | None


@transaction.atomic
def shops_declare(
    *, actor: Actor, platform: Platform, items: Sequence[Mapping[str, Any]]
) -> list[ShopDeclared]:
    """Upsert a platform's shops and who operates them, all or nothing.

    Every item is checked before anything is written; one ApplicationError lists each bad
    item's fields as "items.N.field". A valid code not yet known registers the trader (source:
    the platform). Changed shops are updated, unchanged ones write nothing. Lookups and
    writes are a constant number of queries, and the ledger entries go in one batch.
    """
    _check_declarer(actor, platform, len(items))
    errors: dict[str, list[str]] = {}
    cleaned = [_clean_item(index, item, errors) for index, item in enumerate(items)]
    valid = [item for item in cleaned if item is not None]
    _check_repeats(valid, errors)
    _check_jurisdiction(actor, valid, errors)
    traders = {t.uscc: t for t in Trader.objects.filter(uscc__in={i.code.code for i in valid})}
    shops = {
        s.platform_shop_id: s
        for s in Shop.objects.select_for_update(of=("self",))
        .select_related("trader", "platform")
        .filter(platform=platform, platform_shop_id__in=[i.platform_shop_id for i in valid])
    }
    _check_new_traders(valid, traders, errors)
    if errors:
        raise _items_error(errors, len(items))
    if any(i.code.code not in traders for i in valid) and actor.kind == "user":
        require_perm(actor, "traders.add_trader", "You may not register traders.")
    new_traders = _register_traders(actor, platform, valid, traders)
    results = _apply_shops(platform, valid, traders, shops, new_traders)
    ledger_append_many(actor=actor, entries=_declared_entries(results))
    return results


def _check_declarer(actor: Actor, platform: Platform, count: int) -> None:
    if actor.kind == "user":
        require_perm(actor, "traders.add_shop", "You may not register shops.")
    if actor.kind == "apikey" and getattr(actor.platform, "pk", None) != platform.pk:
        raise PermissionDenied("A platform declares only its own shops.", field="platform")
    if not platform.is_active:
        raise ApplicationError(
            "This platform is not active.", field="platform", code="inactive", value=platform.code
        )
    if count > settings.API_BULK_LIMIT:
        raise ApplicationError(
            f"At most {settings.API_BULK_LIMIT} items per call (got {count}).",
            field="items",
            code="too_many",
            value=count,
        )


def _clean_item(index: int, item: Mapping[str, Any], errors: dict[str, list[str]]) -> _Item | None:
    """The item with normalised values, or None after noting its errors under items.N."""
    mine: dict[str, str] = {}

    def check(name: str, clean, *args):
        try:
            return clean(item.get(name), *args)
        except ApplicationError as exc:
            mine[name] = exc.message
            return None

    cleaned = _Item(
        index=index,
        platform_shop_id=check("platform_shop_id", _text, 64, True),
        code=check("trader_uscc", _code),
        trader_name=check("trader_name", _text, 200, False),
        shop_name=check("shop_name", _text, 200, True),
        url=check("url", _url),
        opened_on=check("opened_on", _past_date),
        closed_on=check("closed_on", _past_date),
    )
    if cleaned.opened_on and cleaned.closed_on and cleaned.closed_on < cleaned.opened_on:
        mine["closed_on"] = "A shop cannot close before it opened."
    for name, message in mine.items():
        errors[f"items.{index}.{name}"] = [message]
    return None if mine else cleaned


def _text(value: Any, max_length: int, required: bool) -> str:
    value = value.strip() if isinstance(value, str) else ("" if value is None else str(value))
    if required and not value:
        raise ApplicationError("This field is required.")
    if len(value) > max_length:
        raise ApplicationError(f"At most {max_length} characters (got {len(value)}).")
    return check_text(value, field="")  # the caller names the item's field


def _code(value: Any) -> uscc_rules.USCC:
    try:
        # A code failing only its check character may name a trader the regulator already
        # registered with an override; whether it does is checked once the traders are loaded.
        return uscc_rules.parse(value if isinstance(value, str) else "", allow_bad_check=True)
    except uscc_rules.USCCError as exc:
        raise ApplicationError(f"Invalid unified social credit code: {exc.message}.") from exc


def _url(value: Any) -> str:
    url = _text(value, 500, False)
    if url:
        try:
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError as exc:
            raise ApplicationError("Enter a valid http(s) URL.") from exc
    return url


def _past_date(value: Any) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value)
        except ValueError as exc:
            raise ApplicationError("Enter a date as YYYY-MM-DD.") from exc
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        raise ApplicationError("Enter a date as YYYY-MM-DD.")
    if value > timezone.localdate():
        raise ApplicationError("The date cannot be in the future.")
    return value


def _check_repeats(items: list[_Item], errors: dict[str, list[str]]) -> None:
    """One shop once per call; one name per code that is yet to be registered."""
    first_shop: dict[str, int] = {}
    first_name: dict[str, _Item] = {}
    for item in items:
        seen = first_shop.setdefault(item.platform_shop_id, item.index)
        if seen != item.index:
            errors[f"items.{item.index}.platform_shop_id"] = [f"Declared twice in this call (item {seen})."]
        named = first_name.setdefault(item.code.code, item)
        if item.trader_name and named.trader_name and item.trader_name != named.trader_name:
            errors[f"items.{item.index}.trader_name"] = [
                f"Item {named.index} names this trader {named.trader_name!r}."
            ]
        elif item.trader_name and not named.trader_name:
            first_name[item.code.code] = item


def _check_jurisdiction(actor: Actor, items: list[_Item], errors: dict[str, list[str]]) -> None:
    """A member of staff declares shops only of traders in their jurisdiction."""
    scope = actor_scope(actor)
    for item in items:
        if not scope.covers(item.code.region):
            errors[f"items.{item.index}.trader_uscc"] = [
                f"This trader (region {item.code.region}) is outside your jurisdiction."
            ]


def _check_new_traders(items: list[_Item], traders: dict[str, Trader], errors: dict[str, list[str]]) -> None:
    named = {i.code.code for i in items if i.trader_name}
    for item in items:
        code = item.code.code
        if code in traders:
            continue
        if not item.code.check_ok:
            expected = uscc_rules.check_character(code[:17])
            errors[f"items.{item.index}.trader_uscc"] = [
                f"Invalid unified social credit code: check character expected {expected!r}, "
                f"got {code[17]!r}."
            ]
        elif code not in named:
            errors[f"items.{item.index}.trader_name"] = ["Name the trader: this code is not registered yet."]


def _items_error(errors: dict[str, list[str]], total: int) -> ApplicationError:
    bad = sorted({int(path.split(".")[1]) for path in errors})
    ordered = dict(sorted(errors.items(), key=lambda kv: (int(kv[0].split(".")[1]), kv[0])))
    first_path, first_messages = next(iter(ordered.items()))
    return ApplicationError(
        f"{first_path}: {first_messages[0]} ({len(bad)} of {total} items invalid; nothing was written)",
        code="invalid_items",
        extra={"fields": ordered},
    )


def _register_traders(
    actor: Actor, platform: Platform, items: list[_Item], traders: dict[str, Trader]
) -> set[str]:
    """Register every unknown code in one insert; the codes registered."""
    names: dict[str, str] = {}
    for item in items:
        if item.code.code not in traders and not names.get(item.code.code):
            names[item.code.code] = item.trader_name
    codes = {item.code.code: item.code for item in items}
    new = [
        Trader(
            uscc=code,
            name=name,
            kind=codes[code].kind,
            region=codes[code].region,
            source=Trader.Source.PLATFORM if actor.kind == "apikey" else Trader.Source.IMPORT,
            source_platform=platform,
            registered_by=actor.user if actor.kind == "user" else None,
        )
        for code, name in names.items()
    ]
    try:
        with transaction.atomic():
            Trader.objects.bulk_create(new)
    except IntegrityError as exc:  # a concurrent call registered one of them first
        raise ApplicationError(
            "Another request registered one of these traders at the same time; send the call again.",
            field="items",
            code="conflict",
        ) from exc
    traders.update((t.uscc, t) for t in new)
    return set(names)


def _apply_shops(
    platform: Platform,
    items: list[_Item],
    traders: dict[str, Trader],
    shops: dict[str, Shop],
    new_traders: set[str],
) -> list[ShopDeclared]:
    results: list[ShopDeclared] = []
    created: list[Shop] = []
    changed: list[Shop] = []
    unannounced = set(new_traders)  # the first item naming a new trader carries its entry
    for item in items:
        trader = traders[item.code.code]
        registers = item.code.code in unannounced
        unannounced.discard(item.code.code)
        wanted = {
            "trader": trader,
            "name": item.shop_name,
            "url": item.url,
            "opened_on": item.opened_on,
            "closed_on": item.closed_on,
        }
        shop = shops.get(item.platform_shop_id)
        if shop is None:
            shop = Shop(platform=platform, platform_shop_id=item.platform_shop_id, **wanted)
            created.append(shop)
            results.append(ShopDeclared(item.index, shop, "created", registers))
            continue
        changes = _shop_changes(shop, wanted)
        for name in changes:
            setattr(shop, name, wanted[name])
        if changes:
            changed.append(shop)
        results.append(
            ShopDeclared(item.index, shop, "updated" if changes else "unchanged", registers, changes)
        )
    try:
        with transaction.atomic():
            Shop.objects.bulk_create(created)
    except IntegrityError as exc:  # a concurrent call declared one of them first
        raise ApplicationError(
            "Another request declared one of these shops at the same time; send the call again.",
            field="items",
            code="conflict",
        ) from exc
    Shop.objects.bulk_update(changed, fields=list(SHOP_FIELDS))
    return results


def _shop_changes(shop: Shop, wanted: dict[str, Any]) -> dict[str, dict[str, Any]]:
    changes = {}
    for name in SHOP_FIELDS:
        old, new = getattr(shop, name), wanted[name]
        if name == "trader":
            if old.pk != new.pk:
                changes[name] = {"from": old.uscc, "to": new.uscc}
        elif old != new:
            changes[name] = {"from": old, "to": new}
    return changes


def _declared_entries(results: list[ShopDeclared]) -> list[Entry]:
    """Entries in item order, a new trader's registration just before its first shop."""
    entries: list[Entry] = []
    for done in results:
        shop = done.shop
        if done.trader_registered:
            entries.append(
                Entry(
                    "trader.registered",
                    "trader",
                    shop.trader.pk,
                    shop.trader.uscc,
                    trader_payload(shop.trader),
                )
            )
        if done.result == "created":
            entries.append(Entry("shop.registered", "shop", shop.pk, shop.trader.uscc, shop_payload(shop)))
        elif done.result == "updated":
            payload = {**shop_payload(shop), "changes": done.changes}
            entries.append(Entry("shop.updated", "shop", shop.pk, shop.trader.uscc, payload))
    return entries
