"""Each report's rows against an independent query of the same seeded data, and each filter."""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import Counter
from decimal import Decimal

import pytest
from django.db.models import Q
from django.utils import timezone

from creditledger.ledger import canonical
from creditledger.ledger.models import LedgerEntry
from penalties import exports
from penalties.exports.base import FilterError
from penalties.exports.registers import MeasuresRegister, ViolationsRegister
from penalties.models import Restriction, RestrictionAck, Violation
from traders.models import Platform, Shop, Trader
from traders.regions import PROVINCES, region_name

pytestmark = pytest.mark.django_db


def _rows(name: str, **filters) -> list[tuple]:
    exporter = exports.build(name, exports.REPORTS[name].formats[0], filters)
    return [row for section in exporter.sections() for row in section.rows]


def _hours(start, end) -> Decimal:
    return (Decimal((end - start).total_seconds()) / 3600).quantize(Decimal("0.01"))


# --- violations register ------------------------------------------------------------------


def _violation_row(v: Violation) -> tuple:
    t, shop = v.trader, v.shop
    return (
        v.pk,
        v.occurred_on,
        t.uscc,
        t.name,
        t.region,
        region_name(t.region),
        v.type.code,
        v.type.name,
        v.type.get_category_display(),
        v.type.get_severity_display(),
        v.type.points,
        v.get_source_display(),
        shop.platform.code if shop else None,
        shop.platform_shop_id if shop else None,
        shop.name if shop else None,
        v.reporting_platform.code if v.reporting_platform else None,
        v.get_status_display(),
        v.goods_value,
        v.recorded_at,
        v.decided_at,
        v.decision_note,
        v.description,
    )


def _all_violations() -> list[Violation]:
    rows = Violation.objects.select_related("trader", "type", "shop__platform", "reporting_platform")
    return sorted(rows, key=lambda v: (v.occurred_on, v.pk))


def test_the_violations_register_holds_every_violation_as_recorded(seeded):
    expected = [_violation_row(v) for v in _all_violations()]
    assert len(expected) == 220
    assert _rows("violations") == expected


def _middle_date() -> dt.date:
    days = sorted(Violation.objects.values_list("occurred_on", flat=True))
    return days[len(days) // 2]


VIOLATION_FILTERS = {
    "occurred_from": (
        lambda: _middle_date().isoformat(),
        lambda v, x: v.occurred_on >= dt.date.fromisoformat(x),
    ),
    "occurred_to": (
        lambda: _middle_date().isoformat(),
        lambda v, x: v.occurred_on <= dt.date.fromisoformat(x),
    ),
    "region": (lambda: "33", lambda v, x: v.trader.region.startswith(x)),
    "category": (lambda: "counterfeit", lambda v, x: v.type.category == x),
    "severity": (lambda: "general", lambda v, x: v.type.severity == x),
    "status": (lambda: "confirmed", lambda v, x: v.status == x),
    "source": (lambda: "platform_report", lambda v, x: v.source == x),
    "platform": (
        lambda: "taobao",
        lambda v, x: (
            (v.shop is not None and v.shop.platform.code == x)
            or (v.reporting_platform is not None and v.reporting_platform.code == x)
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(VIOLATION_FILTERS))
def test_each_violations_filter_keeps_exactly_the_matching_rows(seeded, name):
    value, keep = VIOLATION_FILTERS[name]
    value = value()
    everything = _all_violations()
    expected = [v.pk for v in everything if keep(v, value)]
    assert 0 < len(expected) < len(everything), "the seed must have rows on both sides of the filter"
    assert [row[0] for row in _rows("violations", **{name: value})] == expected


def test_violations_filters_combine(seeded):
    rows = _rows("violations", region="33", status="confirmed", occurred_from=_middle_date().isoformat())
    expected = [
        v.pk
        for v in _all_violations()
        if v.trader.region.startswith("33") and v.status == "confirmed" and v.occurred_on >= _middle_date()
    ]
    assert [row[0] for row in rows] == expected


@pytest.mark.parametrize(
    ("filters", "field", "code"),
    [
        ({"region": "3"}, "region", "invalid"),
        ({"category": "bribery"}, "category", "invalid_choice"),
        ({"occurred_from": "2026-13-01"}, "occurred_from", "invalid"),
        ({"occurred_from": "2026-05-02", "occurred_to": "2026-05-01"}, "occurred_to", "invalid_period"),
        ({"colour": "red"}, "colour", "unknown_filter"),
    ],
)
def test_a_bad_filter_is_refused_and_named(db, filters, field, code):
    with pytest.raises(FilterError) as caught:
        ViolationsRegister(filters)
    assert (caught.value.field, caught.value.code) == (field, code)


def test_a_report_refuses_a_format_it_does_not_offer(db):
    with pytest.raises(FilterError) as caught:
        exports.build("violations", "pdf", {})
    assert caught.value.field == "format"


def test_the_violations_register_costs_one_query_however_many_chunks(seeded, django_assert_num_queries):
    exporter = ViolationsRegister({}, chunk_size=25)  # 220 rows: 9 fetches from the cursor
    with django_assert_num_queries(1):
        assert len(list(exporter.rows())) == 220


# --- measures register --------------------------------------------------------------------


def _measure_rows(restrictions) -> list[tuple]:
    out = []
    for r in sorted(restrictions, key=lambda r: r.pk):
        acks = {
            a.platform: a for a in RestrictionAck.objects.filter(restriction=r).select_related("platform")
        }
        platforms = {s.platform for s in Shop.objects.filter(trader=r.trader).select_related("platform")}
        head = (
            r.pk,
            r.trader.uscc,
            r.trader.name,
            r.trader.region,
            r.get_measure_display(),
            r.get_state_display(),
            r.get_basis_display(),
            r.rule_code,
            r.policy_version,
            r.reasons.get("score"),
            r.reasons.get("grade", ""),
            ", ".join(str(v["id"]) for v in r.reasons.get("violations", [])),
            r.noticed_at,
            r.objection_deadline,
            r.starts_at,
            r.ends_at,
            r.lifted_at,
            r.get_lifted_reason_display() if r.lifted_reason else "",
        )
        concerned = sorted(platforms | set(acks), key=lambda p: p.code)
        if not concerned:
            out.append((*head, "", "", None, None, None))
        for p in concerned:
            a = acks.get(p)
            delay = _hours(r.starts_at, a.enforced_at) if a and r.starts_at else None
            out.append((*head, p.code, p.name, a and a.acknowledged_at, a and a.enforced_at, delay))
    return out


def test_the_measures_register_has_a_row_per_measure_and_platform(seeded):
    restrictions = list(Restriction.objects.select_related("trader"))
    assert len(restrictions) >= 10 and seeded["acks"] >= 5
    rows = _rows("measures")
    assert rows == _measure_rows(restrictions)
    assert any(row[-1] is not None for row in rows), "some rows carry an enforcement delay"


@pytest.mark.parametrize(
    ("filters", "keep"),
    [
        ({"state": "active"}, lambda r: r.state == "active"),
        ({"basis": "score"}, lambda r: r.basis == "score"),
        ({"measure": "warning"}, lambda r: r.measure == "warning"),
        ({"region": "33"}, lambda r: r.trader.region.startswith("33")),
    ],
)
def test_each_measures_filter_keeps_exactly_the_matching_measures(seeded, filters, keep):
    everything = list(Restriction.objects.select_related("trader"))
    kept = [r for r in everything if keep(r)]
    assert 0 < len(kept) < len(everything)
    assert _rows("measures", **filters) == _measure_rows(kept)


def test_the_measures_noticed_period_filters_on_the_local_notice_date(seeded):
    days = sorted({r.noticed_at.date() for r in Restriction.objects.all()})
    assert len(days) >= 2
    rows = _rows("measures", noticed_to=days[0].isoformat())

    kept = [r for r in Restriction.objects.all() if timezone.localdate(r.noticed_at) <= days[0]]
    assert sorted({row[0] for row in rows}) == sorted(r.pk for r in kept)


def test_the_measures_platform_filter_keeps_that_platforms_rows_only(seeded):
    rows = _rows("measures", platform="taobao")
    expected = [
        row for row in _measure_rows(Restriction.objects.select_related("trader")) if row[18] == "taobao"
    ]
    assert rows == expected and rows


def test_the_measures_register_costs_two_queries_per_chunk(seeded, django_assert_num_queries):
    count = Restriction.objects.count()
    exporter = MeasuresRegister({}, chunk_size=4)
    # the platforms, the measures' cursor, then shops and acks for each chunk
    with django_assert_num_queries(2 + 2 * math.ceil(count / 4)):
        list(exporter.rows())


# --- platform compliance ------------------------------------------------------------------


def _nearest_rank(values, percent):
    ordered = sorted(values)
    return ordered[math.ceil(percent * len(ordered) / 100) - 1] if ordered else None


def _compliance(now, overdue_days=3) -> list[tuple]:
    rows = []
    in_force = [
        r
        for r in Restriction.objects.select_related("trader")
        if r.starts_at and r.state in ("active", "lifted")
    ]
    for p in Platform.objects.order_by("code"):
        mine = [r for r in in_force if r.trader.shops.filter(platform=p).exists()]
        acks = {a.restriction_id: a for a in RestrictionAck.objects.filter(platform=p)}
        delays = [_hours(r.starts_at, acks[r.pk].enforced_at) for r in mine if r.pk in acks]
        overdue = sum(
            1
            for r in mine
            if r.pk not in acks
            and (min(now, r.lifted_at or now) - r.starts_at) > dt.timedelta(days=overdue_days)
        )
        acked = sum(1 for r in mine if r.pk in acks)
        rows.append(
            (
                p.code,
                p.name,
                len(mine),
                sum(1 for r in mine if r.state == "active"),
                acked,
                (Decimal(100 * acked) / len(mine)).quantize(Decimal("0.01")) if mine else None,
                statistics.median(delays).quantize(Decimal("0.01")) if delays else None,
                _nearest_rank(delays, 95),
                overdue,
                overdue_days,
            )
        )
    return rows


def test_the_compliance_summary_agrees_with_a_count_by_hand(seeded):
    exporter = exports.build("platform_compliance", "csv", {})
    exporter.now = seeded["now"]
    rows = list(exporter.rows())
    assert rows == _compliance(seeded["now"])
    assert sum(row[2] for row in rows) > 0 and sum(row[8] for row in rows) > 0, (
        "measures notified and overdue"
    )


def test_the_compliance_overdue_days_filter_moves_the_overdue_count(seeded):
    exporter = exports.build("platform_compliance", "csv", {"overdue_days": "30"})
    exporter.now = seeded["now"]
    rows = list(exporter.rows())
    assert rows == _compliance(seeded["now"], overdue_days=30)
    assert sum(row[8] for row in rows) == 0  # every measure started less than 30 days ago


def test_the_compliance_period_filter_counts_measures_started_in_it(seeded):
    exporter = exports.build(
        "platform_compliance", "csv", {"started_from": "2000-01-01", "started_to": "2000-12-31"}
    )
    assert [row[2] for row in exporter.rows()] == [0] * Platform.objects.count()


def test_nearest_rank_percentiles():
    from penalties.exports.summaries import nearest_rank

    values = [Decimal(n) for n in range(1, 21)]  # 1..20
    assert nearest_rank(values, 95) == 19
    assert nearest_rank(values, 50) == 10
    assert nearest_rank([Decimal(7)], 95) == 7
    assert nearest_rank([], 95) is None


# --- grades -------------------------------------------------------------------------------


@pytest.mark.parametrize(("level", "width"), [("province", 2), ("city", 4), ("district", 6)])
def test_the_grade_distribution_counts_each_region(seeded, level, width):
    traders = list(Trader.objects.all())
    grades = Counter((t.region[:width], t.grade) for t in traders)
    areas = sorted({t.region[:width] for t in traders})
    rows = _rows("grades", level=level)
    assert [row[0] for row in rows] == areas
    for row in rows:
        mine = [t for t in traders if t.region.startswith(row[0])]
        assert row[2:6] == tuple(grades[(row[0], g)] for g in "ABCD")
        assert row[6] == len(mine)
        assert row[7] == sum(1 for t in mine if t.status != "normal")
        assert row[8] == (Decimal(sum(t.score for t in mine)) / len(mine)).quantize(Decimal("0.1"))
    if level == "province":
        assert all(row[1] == PROVINCES[row[0]] for row in rows)


def test_the_grade_distribution_region_filter(seeded):
    rows = _rows("grades", region="33", level="district")
    assert rows and all(row[0].startswith("33") for row in rows)
    assert sum(row[6] for row in rows) == Trader.objects.filter(region__startswith="33").count()


# --- credit file --------------------------------------------------------------------------


def test_the_credit_file_holds_the_traders_record(seeded):
    trader = Restriction.objects.filter(acks__isnull=False).first().trader
    exporter = exports.build("credit_file", "pdf", {"uscc": trader.uscc.lower()})
    sections = {s.key: list(s.rows) for s in exporter.sections()}
    assert (trader.name, trader.uscc) == tuple(value for _label, value in sections["trader"][:2])
    assert [r[0] for r in sections["violations"]] == list(
        trader.violations.order_by("occurred_on", "id").values_list("id", flat=True)
    )
    live = [
        v
        for v in trader.violations.filter(status="confirmed")
        if v.occurred_on + dt.timedelta(days=v.type.validity_days) > timezone.localdate() >= v.occurred_on
    ]
    assert sorted(r[0] for r in sections["breakdown"]) == sorted(v.pk for v in live)
    assert [r[0] for r in sections["measures"]] == list(
        trader.restrictions.order_by("noticed_at", "id").values_list("id", flat=True)
    )
    assert any(r[10] for r in sections["measures"]), "acknowledgements are listed"
    assert len(sections["shops"]) == trader.shops.count()
    assert [r[2] for r in sections["history"]] == list(
        trader.score_history.order_by("at", "id").values_list("score", flat=True)
    )


def test_the_credit_file_lists_objections_appeals_and_repairs(officer, supervisor, other_supervisor):
    from creditledger.ledger.actors import Actor
    from penalties.models import ViolationType
    from penalties.services import (
        appeal_file,
        objection_decide,
        objection_record,
        repair_apply,
        trader_reassess,
        violation_confirm,
        violation_record,
    )
    from tests import factories

    trader = factories.TraderFactory()
    entry, decide = Actor.for_user(officer), Actor.for_user(supervisor)

    def confirmed(code: str, days_ago: int) -> Violation:
        violation = violation_record(
            actor=Actor.for_user(other_supervisor),
            trader=trader,
            type=ViolationType.objects.get(code=code),
            occurred_on=timezone.localdate() - dt.timedelta(days=days_ago),
            source="inspection",
            description="执法检查",
        )
        return violation_confirm(actor=decide, violation=violation)

    confirmed("unsafe-goods", 20)
    trader_reassess(trader=trader)
    warning = Restriction.objects.get(trader=trader, state="active")
    repair = repair_apply(actor=entry, restriction=warning, grounds="已整改")
    counterfeit = confirmed("counterfeit-goods", 5)
    trader_reassess(trader=trader)
    proposed = Restriction.objects.get(trader=trader, state="proposed")
    objection = objection_record(actor=entry, restriction=proposed, grounds="有授权书")
    objection = objection_decide(
        actor=decide, objection=objection, decision="maintained", note="理由不成立，维持"
    )
    appeal = appeal_file(actor=entry, violation=counterfeit, grounds="事实有误")

    exporter = exports.build("credit_file", "csv", {"uscc": trader.uscc})
    rows = {s.key: list(s.rows) for s in exporter.sections()}["remedies"]
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("objection", objection.pk, f"measure no. {proposed.pk}", str(objection.get_status_display())),
        ("appeal", appeal.pk, f"violation no. {counterfeit.pk}", str(appeal.get_status_display())),
        ("credit repair", repair.pk, f"measure no. {warning.pk}", str(repair.get_status_display())),
    ]
    assert objection.status == "maintained" and appeal.status == repair.status == "pending"
    assert rows[0][8] == "理由不成立，维持" and rows[0][6] is not None
    assert rows[1][5] == appeal.deadline and rows[1][7] == "事实有误"


def test_the_credit_file_needs_a_known_trader(db):
    with pytest.raises(FilterError) as caught:
        exports.build("credit_file", "pdf", {"uscc": "91330106000000017X"})
    assert caught.value.field == "uscc"
    with pytest.raises(FilterError) as caught:
        exports.build("credit_file", "pdf", {})
    assert caught.value.code == "required"


# --- ledger extract -----------------------------------------------------------------------


def test_the_ledger_extract_holds_the_hashed_bytes_of_each_entry(seeded):
    rows = _rows("ledger", seq_from="5", seq_to="40")
    entries = list(LedgerEntry.objects.filter(seq__gte=5, seq__lte=40).order_by("seq"))
    assert [r[0] for r in rows] == [e.seq for e in entries]
    for row, entry in zip(rows, entries, strict=True):
        assert row[:9] == (
            entry.seq,
            entry.at,
            entry.actor,
            entry.action,
            entry.subject_type,
            entry.subject_id,
            entry.trader_uscc,
            entry.prev_hash,
            entry.hash,
        )
        assert canonical.chain_hash(row[7], row[9].encode("utf-8")) == row[8]  # checkable offline


def test_the_ledger_extract_filters_by_trader_and_action(seeded):
    uscc = Trader.objects.filter(restrictions__isnull=False).first().uscc
    rows = _rows("ledger", trader=uscc, action="restriction.applied")
    expected = LedgerEntry.objects.filter(Q(trader_uscc=uscc) & Q(action="restriction.applied")).order_by(
        "seq"
    )
    assert [r[0] for r in rows] == list(expected.values_list("seq", flat=True)) and rows
