"""The registers: every violation, and every measure with each platform's acknowledgement.
Long by nature, so each streams from one server-side cursor."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from itertools import islice
from typing import ClassVar

from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext_lazy as _

from penalties.exports.base import (
    DATE,
    DATETIME,
    DECIMAL,
    INT,
    Column,
    Exporter,
    Filter,
    period_filters,
    region_filter,
)
from penalties.models import (
    Category,
    LiftedReason,
    MeasureKind,
    Restriction,
    RestrictionAck,
    RestrictionBasis,
    RestrictionState,
    Severity,
    Violation,
    ViolationSource,
    ViolationStatus,
)
from traders.models import Platform, Shop
from traders.regions import region_name

HOUR = Decimal(3600)


def platform_choices() -> list[tuple[str, str]]:
    return list(Platform.objects.order_by("code").values_list("code", "name"))


def labels(choices) -> dict[str, str]:
    """Code → label in the active language, resolved once per export, not per row."""
    return {code: str(label) for code, label in choices.choices}


def hours_between(start: dt.datetime | None, end: dt.datetime | None) -> Decimal | None:
    if start is None or end is None:
        return None
    return (Decimal((end - start).total_seconds()) / HOUR).quantize(Decimal("0.01"))


def chunks(iterable, size: int) -> Iterator[list]:
    iterator = iter(iterable)
    while batch := list(islice(iterator, size)):
        yield batch


class ViolationsRegister(Exporter):
    name = "violations"
    title = _("Violations register")
    description = _("Every recorded violation with its trader, type, shop, source and decision.")
    filters = (
        *period_filters("occurred", _("occurred")),
        region_filter(),
        Filter("category", _("category"), kind="choice", choices=lambda: Category.choices),
        Filter("severity", _("severity"), kind="choice", choices=lambda: Severity.choices),
        Filter("status", _("status"), kind="choice", choices=lambda: ViolationStatus.choices),
        Filter("source", _("source"), kind="choice", choices=lambda: ViolationSource.choices),
        Filter(
            "platform",
            _("platform"),
            kind="choice",
            choices=platform_choices,
            help=_("Violations in a shop on this platform, or reported by this platform."),
        ),
    )
    columns = (
        Column("id", _("violation no."), INT, 10),
        Column("occurred_on", _("occurred on"), DATE, 11),
        Column("uscc", _("unified social credit code"), width=20),
        Column("trader", _("trader"), width=28),
        Column("region", _("region code"), width=8),
        Column("region_name", _("region"), width=16),
        Column("type_code", _("violation type code"), width=20),
        Column("type", _("violation type"), width=24),
        Column("category", _("category"), width=16),
        Column("severity", _("severity"), width=8),
        Column("points", _("points"), INT, 7),
        Column("source", _("source"), width=10),
        Column("shop_platform", _("shop platform"), width=10),
        Column("shop_id", _("platform shop id"), width=14),
        Column("shop", _("shop"), width=20),
        Column("reporting_platform", _("reporting platform"), width=10),
        Column("status", _("status"), width=10),
        Column("goods_value", _("goods value (CNY)"), DECIMAL, 12),
        Column("recorded_at", _("recorded at"), DATETIME, 17),
        Column("decided_at", _("decided at"), DATETIME, 17),
        Column("decision_note", _("decision note"), width=30),
        Column("description", _("description"), width=50),
    )
    FIELDS: ClassVar[tuple[str, ...]] = (
        "id",
        "occurred_on",
        "trader__uscc",
        "trader__name",
        "trader__region",
        "type__code",
        "type__name",
        "type__category",
        "type__severity",
        "type__points",
        "source",
        "shop__platform__code",
        "shop__platform_shop_id",
        "shop__name",
        "reporting_platform__code",
        "status",
        "goods_value",
        "recorded_at",
        "decided_at",
        "decision_note",
        "description",
    )

    def queryset(self):
        v = self.values
        qs = self.scoped(Violation.objects.all())
        if v["occurred_from"]:
            qs = qs.filter(occurred_on__gte=v["occurred_from"])
        if v["occurred_to"]:
            qs = qs.filter(occurred_on__lte=v["occurred_to"])
        if v["region"]:
            qs = qs.filter(trader__region__startswith=v["region"])
        if v["category"]:
            qs = qs.filter(type__category=v["category"])
        if v["severity"]:
            qs = qs.filter(type__severity=v["severity"])
        if v["status"]:
            qs = qs.filter(status=v["status"])
        if v["source"]:
            qs = qs.filter(source=v["source"])
        if v["platform"]:
            qs = qs.filter(Q(shop__platform__code=v["platform"]) | Q(reporting_platform__code=v["platform"]))
        return qs

    def count(self) -> int:
        return self.queryset().count()

    def rows(self) -> Iterator[tuple]:
        category, severity = labels(Category), labels(Severity)
        status, source = labels(ViolationStatus), labels(ViolationSource)
        names: dict[str, str] = {}
        rows = self.queryset().order_by("occurred_on", "id").values_list(*self.FIELDS)
        for r in rows.iterator(chunk_size=self.chunk_size):
            region = r[4]
            if region not in names:
                names[region] = region_name(region)
            yield (
                *r[:5],
                names[region],
                r[5],
                r[6],
                category.get(r[7], r[7]),
                severity.get(r[8], r[8]),
                r[9],
                source.get(r[10], r[10]),
                r[11],
                r[12],
                r[13],
                r[14],
                status.get(r[15], r[15]),
                *r[16:],
            )


class MeasuresRegister(Exporter):
    """One row per measure and platform it concerns (the platforms where the trader has a
    shop, or that acknowledged it); a measure of a trader with no shop has one row with no
    platform. Two lookups per chunk of measures: the shops' platforms and the acks."""

    name = "measures"
    title = _("Measures register")
    description = _(
        "Every measure (proposed, applied, lifted, withdrawn) with its basis, rule and policy "
        "version, and each platform's acknowledgement and delay to enforcement."
    )
    filters = (
        *period_filters("noticed", _("noticed")),
        region_filter(),
        Filter("measure", _("measure"), kind="choice", choices=lambda: MeasureKind.choices),
        Filter("state", _("state"), kind="choice", choices=lambda: RestrictionState.choices),
        Filter("basis", _("basis"), kind="choice", choices=lambda: RestrictionBasis.choices),
        Filter(
            "platform",
            _("platform"),
            kind="choice",
            choices=platform_choices,
            help=_("Only the rows of this platform: measures of traders with a shop on it."),
        ),
    )
    columns = (
        Column("id", _("measure no."), INT, 9),
        Column("uscc", _("unified social credit code"), width=20),
        Column("trader", _("trader"), width=28),
        Column("region", _("region code"), width=8),
        Column("measure", _("measure"), width=14),
        Column("state", _("state"), width=9),
        Column("basis", _("basis"), width=10),
        Column("rule", _("rule"), width=16),
        Column("policy_version", _("policy version"), INT, 7),
        Column("score", _("score at notice"), INT, 7),
        Column("grade", _("grade at notice"), width=6),
        Column("violations", _("violations relied on"), width=16),
        Column("noticed_at", _("noticed at"), DATETIME, 17),
        Column("objection_deadline", _("objection deadline"), DATETIME, 17),
        Column("starts_at", _("in force from"), DATETIME, 17),
        Column("ends_at", _("ends at"), DATETIME, 17),
        Column("lifted_at", _("lifted at"), DATETIME, 17),
        Column("lifted_reason", _("lifted because"), width=14),
        Column("platform", _("platform"), width=10),
        Column("platform_name", _("platform name"), width=12),
        Column("acknowledged_at", _("acknowledged at"), DATETIME, 17),
        Column("enforced_at", _("enforced at"), DATETIME, 17),
        Column("hours_to_enforce", _("hours from start to enforcement"), DECIMAL, 10),
    )
    FIELDS: ClassVar[tuple[str, ...]] = (
        "id",
        "trader_id",
        "trader__uscc",
        "trader__name",
        "trader__region",
        "measure",
        "state",
        "basis",
        "rule_code",
        "policy_version",
        "reasons",
        "noticed_at",
        "objection_deadline",
        "starts_at",
        "ends_at",
        "lifted_at",
        "lifted_reason",
    )

    def queryset(self):
        v = self.values
        qs = self.scoped(Restriction.objects.all())
        if v["noticed_from"]:
            qs = qs.filter(noticed_at__date__gte=v["noticed_from"])
        if v["noticed_to"]:
            qs = qs.filter(noticed_at__date__lte=v["noticed_to"])
        if v["region"]:
            qs = qs.filter(trader__region__startswith=v["region"])
        for name in ("measure", "state", "basis"):
            if v[name]:
                qs = qs.filter(**{name: v[name]})
        if v["platform"]:
            shops = Shop.objects.filter(trader_id=OuterRef("trader_id"), platform__code=v["platform"])
            acks = RestrictionAck.objects.filter(restriction_id=OuterRef("pk"), platform__code=v["platform"])
            qs = qs.filter(Exists(shops) | Exists(acks))
        return qs

    def rows(self) -> Iterator[tuple]:
        measure, state = labels(MeasureKind), labels(RestrictionState)
        basis, lifted = labels(RestrictionBasis), labels(LiftedReason)
        platforms = {
            pk: (code, name) for pk, code, name in Platform.objects.values_list("pk", "code", "name")
        }
        only = self.values["platform"]
        stream = self.queryset().order_by("id").values_list(*self.FIELDS).iterator(chunk_size=self.chunk_size)
        for chunk in chunks(stream, self.chunk_size):
            on_platforms, acks = self._lookups(chunk)
            for r in chunk:
                reasons = r[10] if isinstance(r[10], dict) else {}
                head = (
                    r[0],
                    r[2],
                    r[3],
                    r[4],
                    measure.get(r[5], r[5]),
                    state.get(r[6], r[6]),
                    basis.get(r[7], r[7]),
                    r[8],
                    r[9],
                    reasons.get("score"),
                    reasons.get("grade", ""),
                    ", ".join(str(item.get("id")) for item in reasons.get("violations", [])),
                    *r[11:16],
                    lifted.get(r[16], r[16]),
                )
                by_platform = acks.get(r[0], {})
                concerned = sorted(on_platforms.get(r[1], set()) | set(by_platform), key=platforms.get)
                if only:
                    concerned = [p for p in concerned if platforms[p][0] == only]
                if not concerned:
                    yield (*head, "", "", None, None, None)
                for pk in concerned:
                    acknowledged_at, enforced_at = by_platform.get(pk, (None, None))
                    yield (
                        *head,
                        *platforms[pk],
                        acknowledged_at,
                        enforced_at,
                        hours_between(r[13], enforced_at),
                    )

    @staticmethod
    def _lookups(chunk: list[tuple]) -> tuple[dict[int, set[int]], dict[int, dict[int, tuple]]]:
        on_platforms: dict[int, set[int]] = defaultdict(set)
        shops = Shop.objects.filter(trader_id__in={r[1] for r in chunk}).order_by()
        for trader_id, platform_id in shops.values_list("trader_id", "platform_id").distinct():
            on_platforms[trader_id].add(platform_id)
        acks: dict[int, dict[int, tuple]] = defaultdict(dict)
        rows = RestrictionAck.objects.filter(restriction_id__in=[r[0] for r in chunk]).order_by()
        for rid, pid, acknowledged_at, enforced_at in rows.values_list(
            "restriction_id", "platform_id", "acknowledged_at", "enforced_at"
        ):
            acks[rid][pid] = (acknowledged_at, enforced_at)
        return on_platforms, acks
