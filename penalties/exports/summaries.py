"""Summaries: a row per platform or per region, small enough to print."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db.models import Avg, Count, Q
from django.db.models.functions import Substr
from django.utils.translation import gettext_lazy as _

from penalties.exports.base import DECIMAL, INT, Column, Exporter, Filter, period_filters, region_filter
from penalties.exports.registers import hours_between
from penalties.models import Restriction, RestrictionAck, RestrictionState
from traders.models import Platform, Trader
from traders.regions import PROVINCES, region_name

IN_FORCE = (RestrictionState.ACTIVE, RestrictionState.LIFTED)
TWO_PLACES = Decimal("0.01")


def ack_overdue_days() -> int:
    """Days a platform has to acknowledge a measure in force before it counts as overdue."""
    return int(getattr(settings, "REPORTS_ACK_OVERDUE_DAYS", 3))


def nearest_rank(values: list[Decimal], percent: int) -> Decimal | None:
    """The nearest-rank percentile: the smallest value with `percent`% of values at or below."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(percent * len(ordered) / 100) - 1)]


def median(values: list[Decimal]) -> Decimal | None:
    return statistics.median(values).quantize(TWO_PLACES) if values else None


@dataclass
class _PlatformTally:
    notified: int = 0
    active: int = 0
    acknowledged: int = 0
    overdue: int = 0
    delays: list[Decimal] = field(default_factory=list)


class PlatformCompliance(Exporter):
    """Per platform, over the measures that took effect (active now, or lifted after being
    in force) of traders with a shop on the platform: how many it acknowledged, how fast
    it enforced them (hours from the start of the measure to the enforcement the platform
    declared), and how many are overdue — not acknowledged although the measure has been
    in force for more than the allowed days."""

    name = "platform_compliance"
    title = _("Platform compliance summary")
    description = _(
        "Per platform: measures notified, acknowledged, median and 95th percentile time to "
        "enforce, and overdue acknowledgements."
    )
    formats = ("csv", "xlsx", "pdf")
    filters = (
        *period_filters("started", _("measure in force from")),
        region_filter(),
        Filter(
            "overdue_days",
            _("overdue after (days)"),
            kind="int",
            minimum=0,
            help=_("Unacknowledged this many days after a measure took effect counts as overdue."),
        ),
    )
    columns = (
        Column("platform", _("platform"), width=12),
        Column("platform_name", _("platform name"), width=14),
        Column("notified", _("measures notified"), INT, 10),
        Column("active", _("of which active now"), INT, 10),
        Column("acknowledged", _("acknowledged"), INT, 10),
        Column("acknowledged_pct", _("acknowledged (%)"), DECIMAL, 10),
        Column("median_hours", _("median hours to enforce"), DECIMAL, 11),
        Column("p95_hours", _("95th percentile hours to enforce"), DECIMAL, 11),
        Column("overdue", _("overdue"), INT, 9),
        Column("overdue_days", _("overdue after (days)"), INT, 9),
    )

    def scope(self):
        v = self.values
        qs = self.scoped(Restriction.objects.filter(state__in=IN_FORCE, starts_at__isnull=False))
        if v["started_from"]:
            qs = qs.filter(starts_at__date__gte=v["started_from"])
        if v["started_to"]:
            qs = qs.filter(starts_at__date__lte=v["started_to"])
        if v["region"]:
            qs = qs.filter(trader__region__startswith=v["region"])
        return qs

    def rows(self) -> Iterator[tuple]:
        days = self.values["overdue_days"]
        days = ack_overdue_days() if days is None else days
        allowed = Decimal(days * 24)
        scope = self.scope()
        enforced = {
            (rid, pid): at
            for rid, pid, at in RestrictionAck.objects.filter(restriction__in=scope)
            .order_by()
            .values_list("restriction_id", "platform_id", "enforced_at")
            .iterator(chunk_size=self.chunk_size)
        }
        tallies: dict[int, _PlatformTally] = {}
        # One row per (measure, platform with a shop of the trader).
        pairs = (
            scope.filter(trader__shops__isnull=False)
            .order_by()
            .values_list("id", "state", "starts_at", "lifted_at", "trader__shops__platform_id")
            .distinct()
        )
        for rid, state, starts_at, lifted_at, pid in pairs.iterator(chunk_size=self.chunk_size):
            tally = tallies.setdefault(pid, _PlatformTally())
            tally.notified += 1
            tally.active += state == RestrictionState.ACTIVE
            enforced_at = enforced.get((rid, pid))
            if enforced_at is not None:
                tally.acknowledged += 1
                tally.delays.append(hours_between(starts_at, enforced_at))
            elif hours_between(starts_at, lifted_at or self.now) > allowed:
                tally.overdue += 1
        for pk, code, name in Platform.objects.order_by("code").values_list("pk", "code", "name"):
            t = tallies.get(pk, _PlatformTally())
            pct = (Decimal(100 * t.acknowledged) / t.notified).quantize(TWO_PLACES) if t.notified else None
            yield (
                code,
                name,
                t.notified,
                t.active,
                t.acknowledged,
                pct,
                median(t.delays),
                nearest_rank(t.delays, 95),
                t.overdue,
                days,
            )


LEVELS = {"province": 2, "city": 4, "district": 6}


class GradeDistribution(Exporter):
    name = "grades"
    title = _("Grade distribution by region")
    description = _("Traders per credit grade in each province, city or district, with the average score.")
    formats = ("csv", "xlsx", "pdf")
    filters = (
        region_filter(),
        Filter(
            "level",
            _("group by"),
            kind="choice",
            choices=lambda: [("province", _("province")), ("city", _("city")), ("district", _("district"))],
            default="province",
        ),
    )
    columns = (
        Column("region", _("region code"), width=10),
        Column("region_name", _("region"), width=18),
        Column("A", "A", INT, 8),
        Column("B", "B", INT, 8),
        Column("C", "C", INT, 8),
        Column("D", "D", INT, 8),
        Column("total", _("traders"), INT, 9),
        Column("under_measure", _("under a measure"), INT, 9),
        Column("average_score", _("average score"), DECIMAL, 9),
    )

    def rows(self) -> Iterator[tuple]:
        width = LEVELS[self.values["level"]]
        qs = self.scoped(Trader.objects.all(), "region")
        if self.values["region"]:
            qs = qs.filter(region__startswith=self.values["region"])
        grouped = (
            qs.annotate(area=Substr("region", 1, width))
            .values("area")
            .annotate(
                a=Count("pk", filter=Q(grade="A")),
                b=Count("pk", filter=Q(grade="B")),
                c=Count("pk", filter=Q(grade="C")),
                d=Count("pk", filter=Q(grade="D")),
                total=Count("pk"),
                under=Count("pk", filter=~Q(status=Trader.Status.NORMAL)),
                average=Avg("score"),
            )
            .order_by("area")
        )
        for g in grouped:
            code = g["area"]
            yield (
                code,
                _area_name(code),
                g["a"],
                g["b"],
                g["c"],
                g["d"],
                g["total"],
                g["under"],
                Decimal(str(g["average"])).quantize(Decimal("0.1")),
            )


def _area_name(code: str) -> str:
    if len(code) == 2:
        return PROVINCES.get(code, code)
    return region_name(code.ljust(6, "0"))
