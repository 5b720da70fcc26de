"""One trader's credit file: who, the score and why, every violation, measure and shop,
and the score history. The score section is the trader page's breakdown
(selectors.trader_breakdown), so the file and the page cannot disagree."""

from __future__ import annotations

from collections.abc import Iterator

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from penalties.exports.base import (
    DATE,
    DATETIME,
    DECIMAL,
    INT,
    Column,
    Exporter,
    Filter,
    FilterError,
    Section,
)
from penalties.exports.registers import labels
from penalties.models import (
    Appeal,
    AppealStatus,
    Category,
    LiftedReason,
    MeasureKind,
    Objection,
    ObjectionStatus,
    RepairApplication,
    RepairStatus,
    Restriction,
    RestrictionAck,
    RestrictionBasis,
    RestrictionState,
    ScoreHistory,
    Severity,
    Violation,
    ViolationSource,
    ViolationStatus,
)
from penalties.selectors import trader_breakdown
from traders.models import Shop, Trader, TraderStatus

FIELD_COLUMNS = (Column("field", _("item"), width=22), Column("value", _("value"), width=60))
BREAKDOWN_COLUMNS = (
    Column("violation", _("violation no."), INT, 9),
    Column("occurred_on", _("occurred on"), DATE, 11),
    Column("type", _("violation type"), width=24),
    Column("category", _("category"), width=14),
    Column("points", _("points"), INT, 7),
    Column("age_days", _("age (days)"), INT, 7),
    Column("weight", _("weight"), DECIMAL, 7),
    Column("repeat", _("repeat no."), INT, 7),
    Column("factor", _("repeat factor"), DECIMAL, 7),
    Column("deduction", _("deduction"), DECIMAL, 9),
    Column("expires_on", _("counts until"), DATE, 11),
)
VIOLATION_COLUMNS = (
    Column("id", _("violation no."), INT, 9),
    Column("occurred_on", _("occurred on"), DATE, 11),
    Column("type", _("violation type"), width=22),
    Column("severity", _("severity"), width=8),
    Column("source", _("source"), width=10),
    Column("status", _("status"), width=10),
    Column("shop", _("shop"), width=18),
    Column("goods_value", _("goods value (CNY)"), DECIMAL, 11),
    Column("decided_at", _("decided at"), DATETIME, 16),
    Column("description", _("description"), width=40),
)
MEASURE_COLUMNS = (
    Column("id", _("measure no."), INT, 8),
    Column("measure", _("measure"), width=14),
    Column("state", _("state"), width=9),
    Column("basis", _("basis"), width=10),
    Column("rule", _("rule"), width=14),
    Column("policy_version", _("policy version"), INT, 7),
    Column("noticed_at", _("noticed at"), DATETIME, 16),
    Column("starts_at", _("in force from"), DATETIME, 16),
    Column("ends_at", _("ends at"), DATETIME, 16),
    Column("lifted", _("lifted"), width=20),
    Column("acks", _("platform acknowledgements"), width=30),
)
SHOP_COLUMNS = (
    Column("platform", _("platform"), width=10),
    Column("shop_id", _("platform shop id"), width=14),
    Column("name", _("shop"), width=24),
    Column("url", _("url"), width=40),
    Column("opened_on", _("opened on"), DATE, 11),
    Column("closed_on", _("closed on"), DATE, 11),
)
REMEDY_COLUMNS = (
    Column("kind", _("kind"), width=12),
    Column("id", _("no."), INT, 7),
    Column("about", _("concerns"), width=16),
    Column("status", _("status"), width=10),
    Column("entered_at", _("entered at"), DATETIME, 16),
    Column("deadline", _("decide by"), DATETIME, 16),
    Column("decided_at", _("decided at"), DATETIME, 16),
    Column("grounds", _("grounds"), width=36),
    Column("note", _("decision note"), width=36),
)
HISTORY_COLUMNS = (
    Column("at", _("at"), DATETIME, 16),
    Column("as_of", _("as of"), DATE, 11),
    Column("score", _("score"), INT, 7),
    Column("grade", _("grade"), width=6),
    Column("policy_version", _("policy version"), INT, 7),
)


class CreditFile(Exporter):
    name = "credit_file"
    title = _("Credit file")
    description = _(
        "One trader: identity, score and grade with the deduction per violation, every "
        "violation, measure and shop, the objections, appeals and credit-repair applications, "
        "and the score history."
    )
    formats = ("pdf", "xlsx", "csv")
    filters = (
        Filter(
            "uscc",
            _("unified social credit code"),
            required=True,
            upper=True,
            pattern=r"[0-9A-HJ-NPQRTUWXY]{18}",
            pattern_message=_("Give an 18-character unified social credit code."),
        ),
        Filter("as_of", _("score as of"), kind="date", help=_("Default: today.")),
    )

    def check_scope(self) -> None:
        # Within a jurisdiction, an unknown code and another area's get the same answer, so
        # codes cannot be probed here.
        if not self.scoped(Trader.objects.filter(uscc=self.values["uscc"]), "region").exists():
            if self.jurisdiction.national:
                message = _("No trader has this code.")
            else:
                message = _("No trader in your jurisdiction has this code.")
            raise FilterError(str(message), field="uscc", code="not_found")

    def sections(self) -> list[Section]:
        trader = Trader.objects.get(uscc=self.values["uscc"])
        breakdown = trader_breakdown(trader, self.values["as_of"])
        return [
            Section(_("Trader"), FIELD_COLUMNS, self._identity(trader, breakdown), "trader"),
            Section(_("Score breakdown"), BREAKDOWN_COLUMNS, self._breakdown(breakdown), "breakdown"),
            Section(_("Violations"), VIOLATION_COLUMNS, self._violations(trader), "violations"),
            Section(_("Measures"), MEASURE_COLUMNS, self._measures(trader), "measures"),
            Section(
                _("Objections, appeals and credit repair"), REMEDY_COLUMNS, self._remedies(trader), "remedies"
            ),
            Section(_("Shops"), SHOP_COLUMNS, self._shops(trader), "shops"),
            Section(_("Score history"), HISTORY_COLUMNS, self._history(trader), "history"),
        ]

    def _identity(self, trader: Trader, breakdown) -> list[tuple]:
        status = labels(TraderStatus)
        return [
            (str(_("name")), trader.name),
            (str(_("unified social credit code")), trader.uscc),
            (str(_("entity kind")), trader.kind_label),
            (str(_("region")), f"{trader.region_name} ({trader.region})"),
            (str(_("legal representative")), trader.legal_representative),
            (str(_("address")), trader.address),
            (str(_("registered at")), _when(trader.created_at)),
            (str(_("stored score and grade")), f"{trader.score} {trader.grade}"),
            (str(_("status")), status.get(trader.status, trader.status)),
            (str(_("assessed at")), _when(trader.assessed_at)),
            (
                str(_("score as of %(day)s under policy v%(version)s"))
                % {"day": breakdown.as_of.isoformat(), "version": breakdown.policy.version},
                f"{breakdown.score} {breakdown.grade}",
            ),
            (str(_("total deduction")), str(breakdown.assessment.total_deduction)),
        ]

    def _breakdown(self, breakdown) -> Iterator[tuple]:
        category = labels(Category)
        for line in breakdown.lines:
            v = line.violation
            yield (
                v.pk,
                v.occurred_on,
                v.type.name,
                category.get(v.type.category, v.type.category),
                line.points,
                line.age_days,
                line.weight,
                line.repeat,
                line.factor,
                line.deduction,
                line.expires_on,
            )

    def _violations(self, trader: Trader) -> Iterator[tuple]:
        severity, source, status = labels(Severity), labels(ViolationSource), labels(ViolationStatus)
        rows = (
            Violation.objects.filter(trader=trader)
            .select_related("type", "shop__platform")
            .order_by("occurred_on", "id")
        )
        for v in rows:
            shop = f"{v.shop.platform.name} {v.shop.name}" if v.shop else ""
            yield (
                v.pk,
                v.occurred_on,
                v.type.name,
                severity.get(v.type.severity, v.type.severity),
                source.get(v.source, v.source),
                status.get(v.status, v.status),
                shop,
                v.goods_value,
                v.decided_at,
                v.description,
            )

    def _measures(self, trader: Trader) -> Iterator[tuple]:
        measure, state = labels(MeasureKind), labels(RestrictionState)
        basis, lifted = labels(RestrictionBasis), labels(LiftedReason)
        restrictions = list(Restriction.objects.filter(trader=trader).order_by("noticed_at", "id"))
        acks: dict[int, list[str]] = {}
        for ack in (
            RestrictionAck.objects.filter(restriction__in=restrictions)
            .select_related("platform")
            .order_by("platform__code")
        ):
            when = _when(ack.enforced_at)
            acks.setdefault(ack.restriction_id, []).append(f"{ack.platform.name} {when}")
        for r in restrictions:
            lift = ""
            if r.lifted_at:
                when = _when(r.lifted_at)[:10]
                lift = f"{when} {lifted.get(r.lifted_reason, r.lifted_reason)}"
            yield (
                r.pk,
                measure.get(r.measure, r.measure),
                state.get(r.state, r.state),
                basis.get(r.basis, r.basis),
                r.rule_code,
                r.policy_version,
                r.noticed_at,
                r.starts_at,
                r.ends_at,
                lift,
                "; ".join(acks.get(r.pk, [])),
            )

    def _remedies(self, trader: Trader) -> Iterator[tuple]:
        """The trader's remedies, each kind in the order they were entered."""
        measure_no, violation_no = str(_("measure no. %(id)s")), str(_("violation no. %(id)s"))
        objection, status = str(_("objection")), labels(ObjectionStatus)
        for o in Objection.objects.filter(restriction__trader=trader).order_by("recorded_at", "id"):
            about = measure_no % {"id": o.restriction_id}
            yield (objection, o.pk, about, status.get(o.status, o.status), o.recorded_at, None,
                   o.decided_at, o.grounds, o.note)  # fmt: skip
        appeal, status = str(_("appeal")), labels(AppealStatus)
        for a in Appeal.objects.filter(violation__trader=trader).order_by("filed_at", "id"):
            about = violation_no % {"id": a.violation_id}
            yield (appeal, a.pk, about, status.get(a.status, a.status), a.filed_at, a.deadline,
                   a.decided_at, a.grounds, a.note)  # fmt: skip
        repair, status = str(_("credit repair")), labels(RepairStatus)
        for r in RepairApplication.objects.filter(restriction__trader=trader).order_by("filed_at", "id"):
            about = measure_no % {"id": r.restriction_id}
            yield (repair, r.pk, about, status.get(r.status, r.status), r.filed_at, None,
                   r.decided_at, r.grounds, r.note)  # fmt: skip

    def _shops(self, trader: Trader) -> Iterator[tuple]:
        for s in (
            Shop.objects.filter(trader=trader).select_related("platform").order_by("platform__code", "pk")
        ):
            yield (s.platform.name, s.platform_shop_id, s.name, s.url, s.opened_on, s.closed_on)

    def _history(self, trader: Trader) -> Iterator[tuple]:
        rows = ScoreHistory.objects.filter(trader=trader).order_by("at", "id")
        yield from rows.values_list("at", "as_of", "score", "grade", "policy_version")


def _when(at) -> str:
    return f"{timezone.localtime(at):%Y-%m-%d %H:%M}" if at else ""
