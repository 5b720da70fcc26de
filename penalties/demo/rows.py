"""The rows the seeder draws, before they are written.

Plain slotted objects instead of model instances: a model's __init__ and its relation
descriptors cost more than drawing the row did, millions of times over. They carry the
model's attribute names (`pk`, `trader`, `shop_id`, `type` …), so the services' own payload
functions (trader_payload, shop_payload, violation_payload) read them as they read the
models, and the ledger entries come out exactly as the services would write them. If a
payload function starts reading an attribute these lack, the seed fails loudly.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from penalties.models import ViolationType
from traders.models import Platform


@dataclass(slots=True, eq=False)
class TraderRow:
    uscc: str
    name: str
    kind: str
    region: str
    legal_representative: str
    address: str
    brand: str  # for the shop names; not a column
    source: str = "import"
    source_platform: Platform | None = None
    registered_by_id: int | None = None
    needs_reassessment: bool = False
    check_override_reason: str = ""
    check_override_by_id: int | None = None
    id: int | None = None

    @property
    def pk(self) -> int | None:
        return self.id

    @property
    def source_platform_id(self) -> int | None:
        return self.source_platform.pk if self.source_platform else None


@dataclass(slots=True, eq=False)
class ShopRow:
    trader: TraderRow
    platform: Platform
    platform_shop_id: str
    name: str
    url: str
    opened_on: dt.date
    closed_on: dt.date | None
    id: int | None = None

    @property
    def pk(self) -> int | None:
        return self.id

    @property
    def trader_id(self) -> int | None:
        return self.trader.id

    @property
    def platform_id(self) -> int:
        return self.platform.pk


@dataclass(slots=True, eq=False)
class ViolationRow:
    trader: TraderRow
    shop: ShopRow | None
    type: ViolationType
    occurred_on: dt.date
    source: str
    reporting_platform: Platform | None
    recorded_by_id: int | None
    recorded_at: dt.datetime
    description: str
    goods_value: Decimal | None
    status: str
    decided_by_id: int | None = None
    decided_at: dt.datetime | None = None
    decision_note: str = ""
    id: int | None = None

    @property
    def pk(self) -> int | None:
        return self.id

    @property
    def trader_id(self) -> int | None:
        return self.trader.id

    @property
    def shop_id(self) -> int | None:
        return self.shop.id if self.shop else None

    @property
    def type_id(self) -> int:
        return self.type.pk

    @property
    def reporting_platform_id(self) -> int | None:
        return self.reporting_platform.pk if self.reporting_platform else None


@dataclass(slots=True, eq=False)
class Overturn:
    """An appeal that overturned a confirmed violation: one more ledger entry, no row."""

    violation: ViolationRow
    by_id: int
    at: dt.datetime
    note: str
