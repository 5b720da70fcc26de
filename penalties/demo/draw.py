"""Drawing demo traders, shops and violations: every choice comes from one random.Random.

Nothing here touches the database, so the same seed draws the same rows whatever the
database does; the ids come later, when the rows are written.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import random
from dataclasses import dataclass
from decimal import Decimal

from penalties.demo.rows import Overturn, ShopRow, TraderRow, ViolationRow
from penalties.demo.words import (
    BRAND_WORDS,
    CLAIMS,
    CONFIRM_NOTES,
    DESCRIPTIONS,
    GIVEN,
    INDUSTRIES,
    LETTERS,
    MARKS,
    OVERTURN_NOTES,
    PLATFORM_WEIGHTS,
    PRODUCTS,
    REJECT_NOTES,
    ROADS,
    SEVERITY_WEIGHTS,
    SHOP_ID_SPACE,
    SHOP_SUFFIXES,
    SHOP_URLS,
    SOLE_TRADES,
    SOURCE_WEIGHTS,
    SOURCES,
    STATUSES,
    SURNAMES,
    TEST_ITEMS,
)
from penalties.models import HEAVY_SEVERITIES, ViolationType
from traders import uscc
from traders.models import Platform
from traders.regions import DIVISIONS

# Online trade concentrates in a few places; they are weighted up.
HUBS = ("杭州", "义乌", "深圳", "广州", "上海", "东莞")
DAYS = 730  # violations occur over the last two years
PENDING, CONFIRMED, REJECTED, OVERTURNED = STATUSES


@dataclass(frozen=True)
class Catalog:
    """What the rows refer to, read from the database once."""

    platforms: list[Platform]
    types: list[ViolationType]
    officers: list[int]  # user ids
    supervisors: list[int]


@dataclass(frozen=True)
class Clock:
    now: dt.datetime
    today: dt.date
    tz: dt.tzinfo


def _spread(span: int) -> int:
    """A multiplier coprime with `span` near span/φ: consecutive indexes land far apart."""
    mult = int(span * 0.6180339887) | 1
    while math.gcd(mult, span) != 1:
        mult += 2
    return mult


class _Permutation:
    """index -> (index * mult + key) mod span: a bijection, so ids never repeat within one
    seed, and the key (drawn from the seed) makes different seeds give different ids."""

    def __init__(self, span: int, key: int) -> None:
        self.span, self.key, self.mult = span, key % span, _spread(span)

    def __call__(self, index: int) -> int:
        return (index * self.mult + self.key) % self.span


def _base(value: int, alphabet: str, width: int) -> str:
    out = []
    for _ in range(width):
        value, digit = divmod(value, len(alphabet))
        out.append(alphabet[digit])
    return "".join(reversed(out))


class Drawer:
    """Draws rows. `first_trader` and `first_shop` (per platform code) number the codes and
    shop ids, so a second run on the same database continues where the first stopped."""

    def __init__(
        self,
        rng: random.Random,
        catalog: Catalog,
        clock: Clock,
        first_trader: int = 0,
        first_shop: dict[str, int] | None = None,
    ) -> None:
        self.rng, self.catalog, self.clock = rng, catalog, clock
        self.platform_cum = list(
            itertools.accumulate(PLATFORM_WEIGHTS.get(p.code, 10) for p in catalog.platforms)
        )
        self.type_cum = list(
            itertools.accumulate(SEVERITY_WEIGHTS.get(t.severity, 1.0) for t in catalog.types)
        )
        self.divisions = sorted(DIVISIONS.items())
        self.division_cum = list(
            itertools.accumulate(4 if name.startswith(HUBS) else 1 for _, name in self.divisions)
        )
        self.org_code = _Permutation(31**9, rng.randrange(31**9))
        self.shop_ids = {
            p.code: _Permutation(SHOP_ID_SPACE.get(p.code, (0, 10**10))[1], rng.randrange(10**12))
            for p in catalog.platforms
        }
        self.next_trader = first_trader
        self.next_shop = {p.code: (first_shop or {}).get(p.code, 0) for p in catalog.platforms}
        self.violation_index = 0

    # --- traders and shops ----------------------------------------------------------------------

    def trader(self) -> TraderRow:
        rng = self.rng
        region, division = rng.choices(self.divisions, cum_weights=self.division_cum)[0]
        kind = "91" if rng.random() < 0.6 else "92"
        code = uscc.make(kind + region + _base(self.org_code(self.next_trader), uscc.ALPHABET, 9))
        self.next_trader += 1
        person = self._person()
        brand = rng.choice(BRAND_WORDS) + (rng.choice(BRAND_WORDS) if rng.random() < 0.3 else "")
        if kind == "91":
            city = division.split("市", 1)[0]
            city += "市" if rng.random() < 0.3 else ""
            name = (
                f"{city}{brand}{rng.choice(INDUSTRIES)}{'有限公司' if rng.random() < 0.9 else '有限责任公司'}"
            )
        else:
            name = f"{division}{person if rng.random() < 0.6 else brand}{rng.choice(SOLE_TRADES)}"
        address = f"{division}{rng.choice(ROADS)}{rng.randint(1, 999)}号"
        if rng.random() < 0.6:
            address += f"{rng.randint(1, 12)}幢{rng.randint(1, 30)}{rng.randint(1, 20):02d}室"
        return TraderRow(
            uscc=code,
            name=name,
            kind=kind,
            region=region,
            legal_representative=person,
            address=address,
            brand=brand,
        )

    def _person(self) -> str:
        rng = self.rng
        given = rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.7 else "")
        return rng.choice(SURNAMES) + given

    def shops(self, trader: TraderRow) -> list[ShopRow]:
        """One to three shops; also settles who registered the trader (a platform declares
        the traders of its own shops)."""
        rng = self.rng
        count = rng.choices((1, 2, 3), (55, 30, 15))[0]
        platforms = rng.choices(self.catalog.platforms, cum_weights=self.platform_cum, k=count)
        shops = [self._shop(trader, platform) for platform in platforms]
        source = rng.choices(("officer", "platform", "import"), (60, 30, 10))[0]
        trader.source = source
        if source == "platform" and shops:
            trader.source_platform = shops[0].platform
        elif source == "officer":
            trader.registered_by_id = rng.choice(self.catalog.officers)
        else:
            trader.source = "import"
        return shops

    def _shop(self, trader: TraderRow, platform: Platform) -> ShopRow:
        rng, today = self.rng, self.clock.today
        first, _ = SHOP_ID_SPACE.get(platform.code, (0, 0))
        number = self.shop_ids[platform.code](self.next_shop[platform.code])
        self.next_shop[platform.code] += 1
        shop_id = _base(number, LETTERS, 7) if platform.code == "douyin" else str(first + number)
        closed = today - dt.timedelta(days=rng.randint(0, 60)) if rng.random() < 0.04 else None
        return ShopRow(
            trader=trader,
            platform=platform,
            platform_shop_id=shop_id,
            name=trader.brand + rng.choice(SHOP_SUFFIXES.get(platform.code, ("店",))),
            url=SHOP_URLS.get(platform.code, "https://{}.example.com").format(shop_id),
            opened_on=today - dt.timedelta(days=rng.randint(730, 3000)),
            closed_on=closed,
        )

    def exposure(self, count: int) -> list[float]:
        """Cumulative weights for picking a violation's trader: most traders stay clean, and
        among the others a heavy tail collects many violations."""
        rng = self.rng
        weights = [0.0 if rng.random() < 0.6 else min(rng.paretovariate(1.1), 100.0) for _ in range(count)]
        if not any(weights):
            weights = [1.0] * count
        return list(itertools.accumulate(weights))

    # --- violations -----------------------------------------------------------------------------

    def violation(self, trader: TraderRow, shops: list[ShopRow]) -> tuple[ViolationRow, Overturn | None]:
        rng, index = self.rng, self.violation_index
        self.violation_index += 1
        vtype = rng.choices(self.catalog.types, cum_weights=self.type_cum)[0]
        # Days since it was recorded (recent records are the most common), then how long
        # before that it occurred. Drawn this way round, records spread evenly up to today;
        # drawing the occurrence first piles the records of the last days onto today.
        age = int(rng.triangular(0, DAYS, 0))
        recorded_on = self.clock.today - dt.timedelta(days=age)
        occurred = recorded_on - dt.timedelta(days=rng.randint(0, min(10, DAYS - age)))
        # The first few of a run cover every status and source, so even a tiny demo shows them.
        source = SOURCES[index] if index < len(SOURCES) else rng.choices(SOURCES, SOURCE_WEIGHTS)[0]
        status = STATUSES[index] if index < len(STATUSES) else self._status(age)
        shop = rng.choice(shops) if shops and (source == "platform_report" or rng.random() < 0.7) else None
        if shop is not None and shop.closed_on and shop.closed_on < occurred:
            shop = None
        if source == "platform_report" and shop is None:
            source = "complaint"  # a platform reports about one of its own shops
        if source == "platform_report":
            recorder = None
        else:
            staff = self.catalog.supervisors if rng.random() < 0.1 else self.catalog.officers
            recorder = rng.choice(staff)
        violation = ViolationRow(
            trader=trader,
            shop=shop,
            type=vtype,
            occurred_on=occurred,
            source=source,
            reporting_platform=shop.platform if source == "platform_report" else None,
            recorded_by_id=recorder,
            recorded_at=self._recorded_at(recorded_on),
            description=self._description(vtype.category),
            goods_value=self._goods_value(vtype.category),
            status=status,
        )
        if status == CONFIRMED:
            trader.needs_reassessment = True  # the scoring sweep picks these up
        overturn = self._decide(violation, vtype.severity in HEAVY_SEVERITIES) if status != PENDING else None
        return violation, overturn

    def _status(self, age: int) -> str:
        if age < 30:  # recorded in the last month: many still await a decision
            return self.rng.choices(STATUSES[:3], (55, 35, 10))[0]
        return self.rng.choices(STATUSES, (3, 70, 18, 9))[0]

    def _decide(self, violation: ViolationRow, heavy: bool) -> Overturn | None:
        """Set the decision; return the overturn of an overturned one.

        Four eyes: a serious or grave violation is decided by a supervisor who did not record it.
        """
        rng, catalog = self.rng, self.catalog
        if heavy:
            deciders = [u for u in catalog.supervisors if u != violation.recorded_by_id]
        else:
            deciders = catalog.officers * 3 + catalog.supervisors
        violation.decided_by_id = rng.choice(deciders)
        delay = dt.timedelta(days=rng.randint(1, 20), hours=rng.randint(0, 8))
        violation.decided_at = self._later(violation.recorded_at, delay)
        rejected = violation.status == REJECTED
        violation.decision_note = rng.choice(REJECT_NOTES if rejected else CONFIRM_NOTES)
        if violation.status != OVERTURNED:
            return None
        # An appeal is decided by a supervisor other than the one who confirmed.
        judge = rng.choice([u for u in catalog.supervisors if u != violation.decided_by_id])
        at = self._later(violation.decided_at, dt.timedelta(days=rng.randint(15, 90)))
        return Overturn(violation, judge, at, rng.choice(OVERTURN_NOTES))

    # --- times ----------------------------------------------------------------------------------

    def _recorded_at(self, day: dt.date) -> dt.datetime:
        """Office hours on `day`. Today's office hours may not have come yet: then a moment
        between midnight and now, so that no record is dated after the seed ran and none
        piles up on the very moment it ran."""
        rng, clock = self.rng, self.clock
        moment = dt.time(rng.randint(8, 17), rng.randrange(60), rng.randrange(60))
        at = dt.datetime.combine(day, moment, tzinfo=clock.tz)
        if at <= clock.now:
            return at
        midnight = dt.datetime.combine(clock.today, dt.time(0), tzinfo=clock.tz)
        return midnight + (clock.now - midnight) * rng.random()

    def _later(self, start: dt.datetime, delay: dt.timedelta) -> dt.datetime:
        """`start` + `delay`, or a moment between `start` and now when that lies ahead."""
        at = start + delay
        if at <= self.clock.now:
            return at
        return start + (self.clock.now - start) * self.rng.random()

    # --- words ----------------------------------------------------------------------------------

    def _description(self, category: str) -> str:
        rng = self.rng
        template = rng.choice(
            DESCRIPTIONS.get(category, ("经营{product}过程中存在违法行为，详见检查记录。",))
        )
        return template.format(
            product=rng.choice(PRODUCTS),
            mark=rng.choice(MARKS),
            item=rng.choice(TEST_ITEMS),
            claim=rng.choice(CLAIMS),
            qty=rng.randint(3, 2000),
        )

    def _goods_value(self, category: str) -> Decimal | None:
        if category in ("unlicensed", "consumer_rights", "obstruction") and self.rng.random() < 0.5:
            return None
        cents = min(int(self.rng.lognormvariate(8.0, 1.6) * 100), 10**11)
        return Decimal(cents).scaleb(-2)  # exactly two places, like the service stores it
