"""Reads for the platform API: a trader's status as one platform sees it, bulk lookups, the feed.

Every read here costs a fixed number of queries whatever the size of the answer: the
trader rows in one query, then one query each for their open measures and for the
caller's shops of them (prefetches over the whole batch).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connections
from django.db.models import Prefetch, Q, QuerySet
from django.db.models.expressions import RawSQL

from creditledger.ledger.models import LedgerEntry
from creditledger.ledger.selectors import changes_after
from creditledger.ops import log_context
from creditledger.routers import read_db
from penalties.models import UNLIFTED_STATES, Restriction
from traders import uscc as uscc_rules
from traders.models import Platform, Shop, Trader


def normalise_code(raw: str) -> str:
    """Upper case, and no spaces anywhere: "9135 0100 m000 100y43" is a code as written on paper."""
    return "".join((raw or "").split()).upper()


def parse_code(raw: str) -> uscc_rules.USCC:
    """The code after normalising; raises USCCError naming the rule it breaks."""
    return uscc_rules.parse(normalise_code(raw))


def _with_status(queryset: QuerySet[Trader], platform: Platform) -> QuerySet[Trader]:
    """Attach `measures` (proposed and active) and `platform_shops` (the caller's only)."""
    return queryset.prefetch_related(
        Prefetch(
            "restrictions",
            queryset=Restriction.objects.filter(state__in=UNLIFTED_STATES).order_by("noticed_at", "id"),
            to_attr="measures",
        ),
        Prefetch(
            "shops",
            queryset=Shop.objects.filter(platform=platform).order_by("platform_shop_id"),
            to_attr="platform_shops",
        ),
    )


def trader_status(*, uscc: str, platform: Platform) -> Trader | None:
    """A valid, normalised code's trader with its measures and the platform's shops, or None."""
    return _with_status(Trader.objects.filter(uscc=uscc), platform).using(read_db()).first()


def trader_by_shop(*, platform: Platform, platform_shop_id: str) -> Trader | None:
    """The trader operating the platform's shop with this id. Another platform's shop with
    the same id is not looked at."""
    traders = Trader.objects.filter(shops__platform=platform, shops__platform_shop_id=platform_shop_id)
    trader = _with_status(traders, platform).using(read_db()).first()
    if trader is not None:
        log_context.bind(trader=trader.uscc)
    return trader


@dataclass
class LookupItem:
    kind: str  # "code" | "shop_id"
    input: str
    result: str  # "found" | "not_found" | "invalid"
    trader: Trader | None = None
    error: dict | None = None


def traders_lookup(*, platform: Platform, codes: list[str], shop_ids: list[str]) -> list[LookupItem]:
    """One item per input, codes first then shop ids, each list in the order given.

    At most four queries whatever the number of inputs: the platform's shops by id, the
    traders by code or shop, then the measures and the platform's shops of those traders.
    """
    items: list[LookupItem] = []
    wanted_codes: set[str] = set()
    for raw in codes:
        try:
            code = parse_code(raw).code
        except uscc_rules.USCCError as exc:
            items.append(
                LookupItem("code", raw, "invalid", error={"code": f"uscc_{exc.rule}", "message": exc.message})
            )
            continue
        items.append(LookupItem("code", code, "not_found"))
        wanted_codes.add(code)
    items.extend(LookupItem("shop_id", shop_id, "not_found") for shop_id in shop_ids)

    trader_of_shop: dict[str, int] = {}
    if shop_ids:
        trader_of_shop = dict(
            Shop.objects.using(read_db())
            .filter(platform=platform, platform_shop_id__in=set(shop_ids))
            .values_list("platform_shop_id", "trader_id")
        )
    if not (wanted_codes or trader_of_shop):
        return items
    traders = Trader.objects.using(read_db()).filter(
        Q(uscc__in=wanted_codes) | Q(pk__in=set(trader_of_shop.values()))
    )
    by_code, by_id = {}, {}
    for trader in _with_status(traders, platform).order_by():
        by_code[trader.uscc], by_id[trader.pk] = trader, trader
    for item in items:
        if item.result == "invalid":
            continue
        if item.kind == "code":
            trader = by_code.get(item.input)
        else:
            trader = by_id.get(trader_of_shop.get(item.input))
        if trader is not None:
            item.result, item.trader = "found", trader
    return items


def feed_head() -> int:
    """The seq of the newest sealed entry (0 for an empty ledger), as the feed's database sees it."""
    return LedgerEntry.objects.using(read_db()).order_by("-seq").values_list("seq", flat=True).first() or 0


def feed(*, after: int, limit: int) -> tuple[list[LedgerEntry], bool]:
    """Status-relevant entries after `after`, and whether more are waiting (one query)."""
    # The stored bytes and hashes are for verify_ledger; the feed shows only each entry's
    # leaf hash, which the database computes (32 bytes an entry, not the body).
    db = read_db()
    rows = changes_after(after, limit + 1).using(db)
    if connections[db].vendor == "postgresql":
        rows = rows.defer("body", "prev_hash", "hash").annotate(
            leaf=RawSQL("sha256('\\x00'::bytea || body)", [])
        )
    entries = list(rows)
    return entries[:limit], len(entries) > limit
