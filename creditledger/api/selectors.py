"""Reads for the platform API: a trader's status as one platform sees it, bulk lookups, the feed.

On PostgreSQL a status read is one statement whatever the size of the answer: the trader
rows, each with its open measures and the caller's shops of it aggregated beside it
(ARRAY(SELECT jsonb_build_object(...)) subqueries, on the restriction and shop indexes),
written once per process (_status_sql), not compiled by the ORM on every request.
A bulk lookup is one statement too: traders named by code, or operating one of the
caller's shops named by id, and the shop ids map back through the shops aggregated on
each row. Elsewhere (SQLite, `make run`) the measures and shops are two prefetches.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from types import SimpleNamespace

import orjson
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


MEASURE_FIELDS = (
    "id",
    "measure",
    "state",
    "basis",
    "rule_code",
    "policy_version",
    "noticed_at",
    "objection_deadline",
    "starts_at",
    "ends_at",
    "reasons",
)
_MEASURE_TIMES = ("noticed_at", "objection_deadline", "starts_at", "ends_at")
SHOP_FIELDS = ("platform_shop_id", "name", "url", "opened_on", "closed_on")
_SHOP_DAYS = ("opened_on", "closed_on")


def _on_postgresql() -> bool:
    return connections[read_db()].vendor == "postgresql"


@functools.cache
def _status_sql() -> str:
    """The status statement, written once per process from the models' tables and columns.

    Building it through the ORM on every request (JSONObject inside ArraySubquery) cost
    2.6 ms of Python per lookup, five times the statement itself; this is the same SQL.
    `{where}` is filled by the caller with a condition on `t`.
    """
    trader_columns = ", ".join(f't."{f.column}"' for f in Trader._meta.concrete_fields)
    measure = ", ".join(f"'{f}', r.\"{Restriction._meta.get_field(f).column}\"" for f in MEASURE_FIELDS)
    shop = ", ".join(f"'{f}', s.\"{Shop._meta.get_field(f).column}\"" for f in SHOP_FIELDS)
    return (
        f"SELECT {trader_columns},"
        f' ARRAY(SELECT jsonb_build_object({measure}) FROM "{Restriction._meta.db_table}" AS r'
        f" WHERE r.trader_id = t.id AND r.state IN %(unlifted)s ORDER BY r.noticed_at, r.id),"
        f' ARRAY(SELECT jsonb_build_object({shop}) FROM "{Shop._meta.db_table}" AS s'
        f" WHERE s.trader_id = t.id AND s.platform_id = %(platform)s ORDER BY s.platform_shop_id)"
        f' FROM "{Trader._meta.db_table}" AS t WHERE {{where}}'
    )


def _status_query(where: str, params: dict, platform: Platform) -> list[Trader]:
    """Traders matching `where` (SQL on `t`), each with `measures` and `platform_shops`."""
    names = [f.attname for f in Trader._meta.concrete_fields]
    sql = _status_sql().replace("{where}", where)
    db = read_db()
    with connections[db].cursor() as cursor:
        cursor.execute(sql, {**params, "unlifted": tuple(UNLIFTED_STATES), "platform": platform.pk})
        rows = cursor.fetchall()
    traders = []
    for row in rows:
        trader = Trader.from_db(db, names, row[: len(names)])
        measures_json, shops_json = row[len(names) :]
        trader.measures_json = [orjson.loads(m) if isinstance(m, str) else m for m in measures_json]
        trader.shops_json = [orjson.loads(s) if isinstance(s, str) else s for s in shops_json]
        traders.append(_unpack(trader))
    return traders


def _unpack(trader: Trader) -> Trader:
    """The aggregated JSON as the `measures` and `platform_shops` a prefetch would attach."""
    measures = []
    for row in trader.measures_json:
        for name in _MEASURE_TIMES:
            if row[name] is not None:
                row[name] = dt.datetime.fromisoformat(row[name])
        # Plain records, not model instances: the renderers only read these attributes, and
        # Model.__init__ was a quarter of a 1000-trader lookup.
        measures.append(SimpleNamespace(pk=row["id"], trader_id=trader.pk, **row))
    shops = []
    for row in trader.shops_json:
        for name in _SHOP_DAYS:
            if row[name] is not None:
                row[name] = dt.date.fromisoformat(row[name])
        shops.append(SimpleNamespace(trader_id=trader.pk, **row))
    trader.measures, trader.platform_shops = measures, shops
    return trader


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
    if _on_postgresql():
        rows = _status_query("t.uscc = %(uscc)s", {"uscc": uscc}, platform)
    else:
        rows = list(_with_status(Trader.objects.using(read_db()).filter(uscc=uscc)[:1], platform))
    return rows[0] if rows else None


def trader_by_shop(*, platform: Platform, platform_shop_id: str) -> Trader | None:
    """The trader operating the platform's shop with this id. Another platform's shop with
    the same id is not looked at."""
    traders = Trader.objects.filter(shops__platform=platform, shops__platform_shop_id=platform_shop_id)
    if _on_postgresql():
        where = (
            f't.id = (SELECT trader_id FROM "{Shop._meta.db_table}"'
            " WHERE platform_id = %(platform)s AND platform_shop_id = %(shop_id)s)"
        )
        rows = _status_query(where, {"shop_id": platform_shop_id}, platform)
    else:
        rows = list(_with_status(traders.using(read_db())[:1], platform))
    trader = rows[0] if rows else None
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

    One statement whatever the number of inputs on PostgreSQL (at most four elsewhere).
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

    if not (wanted_codes or shop_ids):
        return items
    if _on_postgresql():
        # A UNION of the two index lookups: `uscc = ANY(...) OR id IN (...)` made the
        # planner scan every trader (260 ms at 100k traders for 1000 codes).
        where = (
            f't.id = ANY(ARRAY(SELECT id FROM "{Trader._meta.db_table}" WHERE uscc = ANY(%(codes)s)'
            f' UNION SELECT trader_id FROM "{Shop._meta.db_table}"'
            " WHERE platform_id = %(platform)s AND platform_shop_id = ANY(%(shop_ids)s)))"
        )
        found = _status_query(
            where, {"codes": sorted(wanted_codes), "shop_ids": sorted(set(shop_ids))}, platform
        )
    else:
        named = Q(uscc__in=wanted_codes)
        if shop_ids:
            operating = Shop.objects.filter(platform=platform, platform_shop_id__in=set(shop_ids))
            named |= Q(pk__in=operating.values("trader_id"))
        found = list(_with_status(Trader.objects.using(read_db()).filter(named), platform))
    by_code: dict[str, Trader] = {}
    by_shop: dict[str, Trader] = {}
    for trader in found:
        by_code[trader.uscc] = trader
        for shop in trader.platform_shops:  # every shop of the caller's it operates
            by_shop[shop.platform_shop_id] = trader
    for item in items:
        if item.result == "invalid":
            continue
        trader = (by_code if item.kind == "code" else by_shop).get(item.input)
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
