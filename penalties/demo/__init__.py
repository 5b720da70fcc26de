"""Demo data: realistic, reproducible and fast at national scale. `seed_demo` and
`demo_setup` are thin wrappers.

One random.Random(seed) drives every choice (draw.py), so the same seed on an empty database
gives the same codes, names, shops and violations. Rows are drawn a chunk of traders at a
time; each chunk is one transaction that writes its rows (COPY on PostgreSQL, store.py) and
appends their ledger entries, built with the services' own payload functions, so a demo
database verifies like a real one. Outside a transaction writer threads write chunks while
the next is drawn (store.Writer), so Python and PostgreSQL each keep a core busy; the
chunks still reach the ledger in the order they were drawn. Nothing is kept from one chunk
to the next but counts: memory stays at three chunks however many traders are asked for.
At the end the seeded tables are ANALYZEd, so the planner knows their size before the
first query.

Times: violations occur over the last two years, recent ones the most often, and are
recorded, decided and overturned after that, never after the seed ran. The ledger entries
carry the time the seed actually ran: the ledger records when the system learned a fact,
and its times must not run backwards.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection, reset_queries
from django.utils import timezone

from creditledger import roles
from penalties.demo import store
from penalties.demo.draw import Catalog, Clock, Drawer
from penalties.demo.rows import ShopRow, TraderRow
from penalties.demo.words import PLATFORMS, STATUSES
from penalties.models import ViolationType
from traders.models import Platform, Shop, Trader

CHUNK = 2000  # traders per transaction: bounded memory, and the ledger lock is never held long
SEED_STAFF = (
    ("seed-officer-1", roles.OFFICER),
    ("seed-officer-2", roles.OFFICER),
    ("seed-officer-3", roles.OFFICER),
    ("seed-supervisor-1", roles.SUPERVISOR),
    ("seed-supervisor-2", roles.SUPERVISOR),
)


@dataclass
class SeedResult:
    seed: int
    traders: int = 0
    shops: int = 0
    violations: int = 0
    ledger_entries: int = 0
    skipped_codes: int = 0
    statuses: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def summary(self) -> str:
        statuses = ", ".join(f"{self.statuses[s]} {s}" for s in STATUSES)
        return (
            f"seed_demo: {self.traders} traders, {self.shops} shops, {self.violations} violations "
            f"({statuses}), {self.ledger_entries} ledger entries, {self.skipped_codes} existing codes "
            f"skipped, seed {self.seed}, {self.seconds:.1f} s"
        )


def seed(*, traders: int, violations: int, seed: int = 1, progress=None) -> SeedResult:
    """Add `traders` new traders and `violations` violations spread over them (skewed: most
    traders are clean, a few collect many). Existing rows are kept; codes that exist are skipped."""
    if traders < 0 or violations < 0:
        raise ValueError("counts cannot be negative")
    if violations and not traders:
        raise ValueError("violations are spread over the new traders; ask for at least one trader")
    return _Seeder(seed, progress).run(traders, violations)


def seed_staff() -> tuple[list, list]:
    """The officers and supervisors the demo violations are recorded and decided by.

    They hold the real roles (so every decision respects the role matrix) but have no
    usable password: nobody signs in as them.
    """
    User = get_user_model()
    officers, supervisors = [], []
    for username, role in SEED_STAFF:
        user, created = User.objects.get_or_create(
            username=username, defaults={"is_staff": True, "first_name": "演示数据"}
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
            user.groups.add(Group.objects.get(name=role))
        (supervisors if role == roles.SUPERVISOR else officers).append(user)
    return officers, supervisors


def ensure_platforms() -> dict[str, Platform]:
    found = {}
    for code, name in PLATFORMS:
        found[code], _ = Platform.objects.get_or_create(code=code, defaults={"name": name})
    return found


def _catalog() -> Catalog:
    platforms = [p for p in ensure_platforms().values() if p.is_active]
    if not platforms:
        raise ValueError("no active platform to open demo shops on")
    types = list(ViolationType.objects.filter(is_active=True).order_by("code"))
    if not types:
        raise ValueError("the violation-type catalog has no active type")
    officers, supervisors = seed_staff()
    return Catalog(platforms, types, [u.pk for u in officers], [u.pk for u in supervisors])


class _Seeder:
    def __init__(self, seed: int, progress) -> None:
        self.result = SeedResult(seed=seed)
        self.progress = progress
        now = timezone.now()
        catalog = _catalog()
        # Existing rows only matter on a database that is not empty (an extra query a chunk).
        self.check_existing = Trader.objects.exists() or Shop.objects.exists()
        first_shop = {p.code: Shop.objects.filter(platform=p).count() for p in catalog.platforms}
        self.draw = Drawer(
            random.Random(seed),
            catalog,
            Clock(now, timezone.localdate(now), timezone.get_current_timezone()),
            first_trader=Trader.objects.count(),
            first_shop=first_shop,
        )

    def run(self, n_traders: int, n_violations: int) -> SeedResult:
        started = time.monotonic()
        # A caller's open transaction (a test's) must hold every row: no second connection then.
        background = connection.vendor == "postgresql" and not connection.in_atomic_block
        writer = store.Writer() if background else None
        try:
            done = 0
            while done < n_traders:
                want = min(CHUNK, n_traders - done)
                traders = [self.draw.trader() for _ in range(want)]
                if self.check_existing:
                    traders = self._drop_existing_codes(traders)
                # Spread the violations in proportion, so the total is exact whatever was skipped.
                count = n_violations * (done + len(traders)) // n_traders - n_violations * done // n_traders
                self._chunk(traders, count, writer)
                done += len(traders)
                if settings.DEBUG:
                    reset_queries()  # DEBUG keeps every query in memory otherwise
                if self.progress:
                    self.progress(self.result, time.monotonic() - started)
            if writer:
                writer.wait()
        finally:
            if writer:
                writer.close()
        store.analyze()
        self.result.seconds = time.monotonic() - started
        return self.result

    def _chunk(self, traders: list[TraderRow], n_violations: int, writer: store.Writer | None) -> None:
        draw = self.draw
        shops = [draw.shops(t) for t in traders]
        if self.check_existing:
            shops = self._drop_existing_shops(shops)
        cum = draw.exposure(len(traders))
        violations, overturns = [], []
        for index in random_indexes(draw.rng, cum, n_violations):
            violation, overturn = draw.violation(traders[index], shops[index])
            violations.append(violation)
            if overturn:
                overturns.append(overturn)
        all_shops = [s for group in shops for s in group]
        chunk = store.Chunk(traders, all_shops, violations, overturns, timezone.now())
        if writer:
            prepared = store.prepare(chunk)
            writer.submit(prepared)
            entries = len(prepared.entries)
        else:
            entries = store.write_chunk(chunk)
        result = self.result
        result.traders += len(traders)
        result.shops += len(all_shops)
        result.violations += len(violations)
        result.ledger_entries += entries
        result.statuses.update(v.status for v in violations)

    def _drop_existing_codes(self, traders: list[TraderRow]) -> list[TraderRow]:
        taken = set(Trader.objects.filter(uscc__in=[t.uscc for t in traders]).values_list("uscc", flat=True))
        self.result.skipped_codes += len(taken)
        return [t for t in traders if t.uscc not in taken]

    def _drop_existing_shops(self, shops: list[list[ShopRow]]) -> list[list[ShopRow]]:
        ids = {s.platform_shop_id for group in shops for s in group}
        taken = set(
            Shop.objects.filter(platform_shop_id__in=ids).values_list("platform_id", "platform_shop_id")
        )
        return [[s for s in group if (s.platform_id, s.platform_shop_id) not in taken] for group in shops]


def random_indexes(rng: random.Random, cum_weights: list[float], count: int) -> list[int]:
    """`count` indexes drawn with the cumulative weights, in one call."""
    return rng.choices(range(len(cum_weights)), cum_weights=cum_weights, k=count)
