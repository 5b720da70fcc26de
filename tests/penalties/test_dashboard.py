"""The staff dashboard (the admin's home page) and the review queue."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter

import pytest
from django.contrib.admin import helpers
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from penalties import dashboard
from penalties.models import (
    Appeal,
    Category,
    Evidence,
    Objection,
    RepairApplication,
    Restriction,
    RestrictionAck,
    Violation,
    ViolationType,
)
from penalties.services import evidence_attach
from penalties.templatetags.dashboard_charts import grade_chart, weekly_chart
from tests import factories
from traders.models import Trader

pytestmark = pytest.mark.django_db

DAY = dt.timedelta(days=1)
HOME = reverse("admin:index")
QUEUE = reverse("admin:penalties_violation_queue")
# What the home page may cost, whatever the data.
QUERY_BUDGET = 15  # 13 + the second-factor device + the viewer's jurisdiction
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
# A Wednesday afternoon in Beijing: the week began on Monday 2026-11-23.
NOW = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
MONDAY = dt.datetime(2026, 11, 23, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def _pending(recorded_at: dt.datetime, **fields) -> Violation:
    violation = factories.ViolationFactory(**fields)
    # recorded_at is auto_now_add: set it afterwards.
    Violation.objects.filter(pk=violation.pk).update(recorded_at=recorded_at)
    violation.refresh_from_db()
    return violation


def _decided(status: str, recorded_at: dt.datetime, **fields) -> Violation:
    violation = _pending(recorded_at, **fields)
    Violation.objects.filter(pk=violation.pk).update(status=status, decided_at=recorded_at + DAY)
    return violation


def _measure(trader: Trader, state: str, measure: str = Restriction.Measure.WARNING, **fields) -> Restriction:
    values = {
        "trader": trader,
        "measure": measure,
        "state": state,
        "basis": Restriction.Basis.MANUAL,
        "reasons": {"basis": "manual", "statement": "测试"},
        "noticed_at": NOW - 20 * DAY,
    }
    if state in (Restriction.State.ACTIVE, Restriction.State.LIFTED):
        values["starts_at"] = NOW - 10 * DAY
    if state in (Restriction.State.LIFTED, Restriction.State.WITHDRAWN):
        values["lifted_at"] = NOW - 2 * DAY
    values.update(fields)
    return Restriction.objects.create(**values)


def _queries(client, url: str) -> int:
    client.get(url)  # warm caches (content types, permissions) outside the measurement
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


# --- the numbers ----------------------------------------------------------------------------


def test_the_queue_sizes_count_pending_violations_and_platform_reports():
    taobao = factories.PlatformFactory(code="taobao", name="淘宝")
    oldest = NOW - 9 * DAY
    _pending(oldest)
    _pending(NOW - 2 * DAY, source=Violation.Source.PLATFORM_REPORT, reporting_platform=taobao)
    _pending(NOW - 1 * DAY, source=Violation.Source.PLATFORM_REPORT, reporting_platform=taobao)
    _pending(NOW - DAY / 2, source=Violation.Source.COMPLAINT)
    _decided(Violation.Status.CONFIRMED, NOW - 30 * DAY)  # older, but decided
    _decided(Violation.Status.REJECTED, NOW - 40 * DAY, source=Violation.Source.PLATFORM_REPORT)

    queue = dashboard.queue_sizes(NOW)

    pending = [v for v in Violation.objects.all() if v.status == Violation.Status.PENDING]
    assert queue.pending == len(pending) == 4
    assert queue.platform_reports == sum(v.source == Violation.Source.PLATFORM_REPORT for v in pending) == 2
    assert queue.officer_records == 2
    assert queue.oldest_recorded_at == min(v.recorded_at for v in pending) == oldest
    assert queue.oldest_age == 9 * DAY


def test_an_empty_queue_has_no_oldest_item():
    queue = dashboard.queue_sizes(NOW)
    assert (queue.pending, queue.platform_reports, queue.oldest_age) == (0, 0, None)


def test_objection_deadlines_lists_proposed_measures_closing_within_three_days_soonest_first():
    traders = factories.TraderFactory.create_batch(5)
    later = _measure(traders[0], "proposed", objection_deadline=NOW + 2.5 * DAY)
    sooner = _measure(traders[1], "proposed", objection_deadline=NOW + 3 * 3600 * dt.timedelta(seconds=1))
    _measure(traders[2], "proposed", objection_deadline=NOW + 5 * DAY)  # not near yet
    _measure(traders[3], "proposed", objection_deadline=NOW - DAY)  # past, the sweeper's job
    _measure(traders[4], "active")

    deadlines = dashboard.objection_deadlines(NOW)

    expected = [
        r
        for r in Restriction.objects.order_by("objection_deadline")
        if r.state == "proposed" and NOW <= r.objection_deadline <= NOW + 3 * DAY
    ]
    assert deadlines.total == len(expected) == 2
    assert deadlines.measures == expected == [sooner, later]


def test_a_pending_objection_is_flagged_on_its_measures_deadline_row(officer):
    t = factories.TraderFactory.create_batch(2)
    objected = _measure(t[0], "proposed", objection_deadline=NOW + DAY)
    quiet = _measure(t[1], "proposed", objection_deadline=NOW + 2 * DAY)
    Objection.objects.create(restriction=objected, grounds="不服", recorded_by=officer, recorded_at=NOW - DAY)
    Objection.objects.create(
        restriction=quiet,
        grounds="不服",
        recorded_by=officer,
        recorded_at=NOW - 2 * DAY,
        status=Objection.Status.MAINTAINED,
        decided_at=NOW - DAY,
    )

    deadlines = dashboard.objection_deadlines(NOW)

    assert [(r.pk, r.objection_pending) for r in deadlines.measures] == [
        (objected.pk, True),
        (quiet.pk, False),
    ]


def _appeal(violation: Violation, user, deadline: dt.datetime, **fields) -> Appeal:
    return Appeal.objects.create(
        violation=violation,
        grounds="证据不足",
        filed_by=user,
        filed_at=NOW - 10 * DAY,
        deadline=deadline,
        **fields,
    )


def test_appeal_deadlines_list_pending_appeals_due_within_three_days_or_overdue(officer):
    v = [_decided(Violation.Status.CONFIRMED, NOW - 20 * DAY) for _ in range(5)]
    overdue = _appeal(v[0], officer, NOW - DAY)
    soon = _appeal(v[1], officer, NOW + 2 * DAY)
    _appeal(v[2], officer, NOW + 10 * DAY)  # not yet near
    _appeal(v[3], officer, NOW + DAY, status=Appeal.Status.REFUSED, decided_at=NOW - DAY)  # decided

    deadlines = dashboard.appeal_deadlines(NOW)

    expected = [
        a
        for a in Appeal.objects.order_by("deadline")
        if a.status == "pending" and a.deadline <= NOW + 3 * DAY
    ]
    assert deadlines.total == len(expected) == 2
    assert deadlines.appeals == expected == [overdue, soon]


def test_pending_remedies_count_objections_appeals_and_repairs_awaiting_a_decision(officer):
    t = factories.TraderFactory.create_batch(3)
    proposed = [_measure(trader, "proposed", objection_deadline=NOW + DAY) for trader in t[:2]]
    active = _measure(t[2], "active")
    Objection.objects.create(restriction=proposed[0], grounds="x", recorded_by=officer, recorded_at=NOW)
    Objection.objects.create(
        restriction=proposed[1],
        grounds="x",
        recorded_by=officer,
        recorded_at=NOW,
        status=Objection.Status.WITHDRAWN,
        decided_at=NOW,
    )
    violations = [_decided(Violation.Status.CONFIRMED, NOW - 20 * DAY) for _ in range(2)]
    for violation in violations:
        _appeal(violation, officer, NOW + 5 * DAY)
    RepairApplication.objects.create(restriction=active, grounds="已整改", filed_by=officer, filed_at=NOW)

    remedies = dashboard.pending_remedies()

    assert remedies == dashboard.PendingRemedies(
        objections=Objection.objects.filter(status="pending").count(),
        appeals=Appeal.objects.filter(status="pending").count(),
        repairs=RepairApplication.objects.filter(status="pending").count(),
    )
    assert remedies == dashboard.PendingRemedies(1, 2, 1)


def test_measures_this_week_count_proposals_starts_lifts_and_withdrawals_since_monday():
    t = factories.TraderFactory.create_batch(8)
    # proposed this week (still proposed; and proposed then applied at once this week)
    _measure(t[0], "proposed", noticed_at=MONDAY + DAY, objection_deadline=NOW + 4 * DAY)
    _measure(t[1], "active", noticed_at=MONDAY, objection_deadline=MONDAY + DAY, starts_at=MONDAY + DAY)
    # applied this week without notice
    _measure(t[2], "active", noticed_at=NOW - DAY, starts_at=NOW - DAY)
    # applied last week, lifted this week
    _measure(t[3], "lifted", starts_at=MONDAY - 3 * DAY, lifted_at=MONDAY + 2 * DAY)
    # withdrawn this week
    _measure(
        t[4], "withdrawn", noticed_at=MONDAY - DAY, objection_deadline=NOW + DAY, lifted_at=NOW - 1 * DAY
    )
    # all of it last week
    _measure(t[5], "lifted", noticed_at=MONDAY - 6 * DAY, starts_at=MONDAY - 5 * DAY, lifted_at=MONDAY - DAY)
    _measure(t[6], "proposed", noticed_at=MONDAY - DAY, objection_deadline=NOW + DAY)

    week = dashboard.measures_this_week(NOW)

    def this_week(at):
        return at is not None and MONDAY <= at <= NOW

    rows = list(Restriction.objects.all())
    assert week.since == MONDAY
    assert (
        week.proposed == sum(r.objection_deadline is not None and this_week(r.noticed_at) for r in rows) == 2
    )
    assert week.applied == sum(r.state in ("active", "lifted") and this_week(r.starts_at) for r in rows) == 2
    assert week.lifted == sum(r.state == "lifted" and this_week(r.lifted_at) for r in rows) == 1
    assert week.withdrawn == sum(r.state == "withdrawn" and this_week(r.lifted_at) for r in rows) == 1


def test_unacknowledged_measures_are_counted_per_platform_and_flagged_when_overdue():
    taobao = factories.PlatformFactory(code="taobao", name="淘宝")
    jd = factories.PlatformFactory(code="jd", name="京东")
    closed = factories.PlatformFactory(code="closed", name="已关闭", is_active=False)
    both, two_shops, taobao_only, no_shop = factories.TraderFactory.create_batch(4)
    factories.ShopFactory(trader=both, platform=taobao)
    factories.ShopFactory(trader=both, platform=jd)
    factories.ShopFactory(trader=both, platform=closed)
    factories.ShopFactory.create_batch(2, trader=two_shops, platform=taobao)  # one pair, not two
    factories.ShopFactory(trader=taobao_only, platform=taobao)

    old = _measure(both, "active", starts_at=NOW - 10 * DAY)
    fresh = _measure(two_shops, "active", starts_at=NOW - DAY)
    acked = _measure(taobao_only, "active", starts_at=NOW - 10 * DAY)
    _measure(no_shop, "active", starts_at=NOW - 10 * DAY)
    _measure(taobao_only, "proposed", measure=Restriction.Measure.SUSPENDED, objection_deadline=NOW + DAY)
    RestrictionAck.objects.create(
        restriction=acked, platform=taobao, acknowledged_at=NOW - 9 * DAY, enforced_at=NOW - 9 * DAY
    )
    RestrictionAck.objects.create(
        restriction=old, platform=jd, acknowledged_at=NOW - 9 * DAY, enforced_at=NOW - 9 * DAY
    )

    unacked = dashboard.unacknowledged(NOW)

    # Independently: every (active measure, active platform with a shop of the trader) pair
    # without an ack.
    pairs = {
        (r.pk, shop.platform.name, r.starts_at)
        for r in Restriction.objects.filter(state="active")
        for shop in r.trader.shops.all()
        if shop.platform.is_active and not r.acks.filter(platform=shop.platform).exists()
    }
    cutoff = NOW - 3 * DAY
    expected = {
        name: (sum(p == name for _r, p, _s in pairs), sum(p == name and s < cutoff for _r, p, s in pairs))
        for name in {p for _r, p, _s in pairs}
    }
    assert {row.platform: (row.unacked, row.overdue) for row in unacked.by_platform} == expected
    assert expected == {"淘宝": (2, 1)}
    assert (unacked.total, unacked.overdue) == (2, 1)
    assert [(m.restriction_id, m.platform, m.overdue) for m in unacked.oldest] == [
        (old.pk, "淘宝", True),
        (fresh.pk, "淘宝", False),
    ]


def test_the_grade_distribution_counts_traders_per_grade_zeros_included():
    for grade, count in {"A": 5, "B": 3, "D": 1}.items():
        for _ in range(count):
            factories.TraderFactory(grade=grade)

    distribution = dashboard.grade_distribution()

    counted = Counter(Trader.objects.values_list("grade", flat=True))
    assert distribution == [(grade, counted.get(grade, 0)) for grade in "ABCD"]
    assert distribution == [("A", 5), ("B", 3), ("C", 0), ("D", 1)]


def test_violations_per_category_per_week_count_confirmed_and_pending_by_week_recorded():
    counterfeit = ViolationType.objects.filter(category=Category.COUNTERFEIT).first()
    advertising = ViolationType.objects.filter(category=Category.FALSE_ADVERTISING).first()
    _pending(NOW - DAY, type=counterfeit)  # this week
    _pending(MONDAY + dt.timedelta(minutes=1), type=advertising)  # this week, just
    _decided(Violation.Status.CONFIRMED, MONDAY - dt.timedelta(minutes=1), type=counterfeit)  # last week
    _decided(Violation.Status.CONFIRMED, MONDAY - 8 * DAY, type=counterfeit)  # two weeks ago
    _decided(Violation.Status.REJECTED, NOW - DAY, type=counterfeit)  # does not count
    _decided(Violation.Status.OVERTURNED, NOW - DAY, type=counterfeit)  # does not count
    _pending(MONDAY - 12 * 7 * DAY, type=counterfeit)  # before the 12 weeks

    data = dashboard.weekly_categories(NOW)

    first = (MONDAY - 11 * 7 * DAY).date()
    assert data.weeks == [first + dt.timedelta(weeks=i) for i in range(12)]
    assert data.weeks[-1] == MONDAY.date()
    expected: Counter = Counter()
    for v in Violation.objects.select_related("type"):
        local = timezone.localtime(v.recorded_at).date()
        monday = local - dt.timedelta(days=local.weekday())
        if v.status in ("pending", "confirmed") and monday >= first:
            expected[(monday, v.type.category)] += 1
    assert data.counts == dict(expected)
    this_week, last_week, before = MONDAY.date(), (MONDAY - 7 * DAY).date(), (MONDAY - 14 * DAY).date()
    assert data.counts == {
        (this_week, "counterfeit"): 1,
        (this_week, "false_advertising"): 1,
        (last_week, "counterfeit"): 1,
        (before, "counterfeit"): 1,
    }
    assert data.series("counterfeit")[-1] == 1 and data.week_total(this_week) == 2


# --- the charts -------------------------------------------------------------------------------


def test_the_grade_chart_draws_one_labelled_bar_per_grade():
    svg = str(grade_chart([("A", 5), ("B", 3), ("C", 0), ("D", 1)]))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "<title" in svg and "<desc" in svg and 'role="img"' in svg
    bars = re.findall(r'<g class="bar" data-grade="(\w)" data-count="(\d+)">', svg)
    assert bars == [("A", "5"), ("B", "3"), ("C", "0"), ("D", "1")]
    heights = [
        float(h) for h in re.findall(r'<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)"', svg)
    ]
    assert heights[0] > heights[1] > heights[3] > heights[2] == 0
    assert heights[0] == pytest.approx(heights[1] * 5 / 3)


def test_the_weekly_chart_stacks_one_segment_per_category_with_the_weeks_total():
    weeks = [dt.date(2026, 11, 9), dt.date(2026, 11, 16), dt.date(2026, 11, 23)]
    data = dashboard.WeeklyCategories(
        weeks=weeks,
        categories=list(Category.choices),
        counts={(weeks[0], "counterfeit"): 2, (weeks[2], "counterfeit"): 1, (weeks[2], "unlicensed"): 3},
    )
    svg = str(weekly_chart(data))
    assert svg.startswith("<svg") and "<title" in svg and "<desc" in svg
    groups = re.findall(r'<g class="week" data-week="([\d-]+)" data-total="(\d+)">(.*?)</g>', svg)
    assert [(week, total) for week, total, _body in groups] == [
        ("2026-11-09", "2"),
        ("2026-11-16", "0"),
        ("2026-11-23", "4"),
    ]
    segments = re.findall(r'class="bar-segment" data-category="(\w+)" data-count="(\d+)"', groups[2][2])
    assert segments == [("counterfeit", "1"), ("unlicensed", "3")]
    assert svg.count('class="legend-item"') == len(Category.choices)
    assert str(Category.UNLICENSED.label) in svg


# --- the page -----------------------------------------------------------------------------------


def _seed(n: int) -> None:
    """n of everything the dashboard counts."""
    taobao = factories.PlatformFactory(code="taobao", name="淘宝")
    clerk = factories.UserFactory(username="clerk")
    now = timezone.now()
    for i in range(n):
        trader = factories.TraderFactory(grade="ABCD"[i % 4])
        factories.ShopFactory(trader=trader, platform=taobao)
        _pending(
            now - i * DAY, trader=trader, source=Violation.Source.PLATFORM_REPORT, reporting_platform=taobao
        )
        _decided(Violation.Status.CONFIRMED, now - i * 7 * DAY, trader=trader)
        _measure(trader, "active", starts_at=now - i * DAY, noticed_at=now - i * DAY)
        proposed = _measure(
            trader,
            "proposed",
            measure=Restriction.Measure.SUSPENDED,
            noticed_at=now,
            objection_deadline=now + DAY + i * dt.timedelta(hours=1),
        )
        Objection.objects.create(restriction=proposed, grounds="不服", recorded_by=clerk, recorded_at=now)
        confirmed = _decided(Violation.Status.CONFIRMED, now - 30 * DAY, trader=trader)
        Appeal.objects.create(
            violation=confirmed, grounds="x", filed_by=clerk, filed_at=now, deadline=now + i * DAY - DAY / 2
        )


@pytest.mark.parametrize("role", ["officer", "supervisor", "auditor"])
def test_staff_see_the_dashboard_above_the_app_list(client, role, request):
    _seed(3)
    client.force_login(request.getfixturevalue(role))
    response = client.get(HOME)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.index('id="dashboard"') < body.index('id="content-main"')  # above the app list
    for panel in [
        "dashboard-queue",
        "dashboard-week",
        "dashboard-deadlines",
        "dashboard-remedies",
        "dashboard-appeals",
        "dashboard-unacked",
    ]:
        assert f'id="{panel}"' in body
    assert '<svg class="dashboard-chart grade-chart"' in body
    assert '<svg class="dashboard-chart weekly-chart"' in body
    assert re.search(r'data-figure="pending"><span class="number">3<', body)
    assert re.search(r'data-figure="platform-reports"><span class="number">3<', body)
    assert re.search(r'data-figure="objections"><span class="number">3<', body)
    assert body.count('class="objection-pending"') == 3
    assert body.count('class="appeal-row"') == 3  # due within 3 days (one overdue)
    assert QUEUE in body


def test_the_dashboard_keeps_the_audit_link_for_those_who_export(client, auditor):
    client.force_login(auditor)
    body = client.get(HOME).content.decode()
    assert 'id="dashboard"' in body
    if auditor.has_perm("penalties.export_report"):
        assert 'id="audit-link"' in body


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get(HOME)
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]
    response = client.get(QUEUE)
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_the_dashboard_costs_the_same_queries_for_2_or_12_of_everything(client, supervisor):
    client.force_login(supervisor)
    _seed(2)
    small = _queries(client, HOME)
    _seed_extra(10)
    assert _queries(client, HOME) == small
    # session, user, the second-factor device, permissions, jurisdiction, then one query per
    # panel (queue, weekly chart, deadlines, week's measures, unacknowledged measures,
    # remedies, appeals, grades) and the recent-actions box.
    assert small <= QUERY_BUDGET, small


def _seed_extra(n: int) -> None:
    jd = factories.PlatformFactory(code="jd", name="京东")
    now = timezone.now()
    for i in range(n):
        trader = factories.TraderFactory(grade="ABCD"[i % 4])
        factories.ShopFactory(trader=trader, platform=jd)
        _pending(now - i * DAY, trader=trader, source=Violation.Source.COMPLAINT)
        _measure(trader, "active", starts_at=now - i * DAY, noticed_at=now - i * DAY)


# --- the review queue ------------------------------------------------------------------------------


def _queue_ids(body: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'name="_selected_action" value="(\d+)"', body)]


def test_the_queue_lists_pending_violations_oldest_first(client, officer):
    now = timezone.now()
    middle = _pending(now - 2 * DAY)
    newest = _pending(now - DAY / 4)
    oldest = _pending(now - 5 * DAY)
    _decided(Violation.Status.CONFIRMED, now - 9 * DAY)
    client.force_login(officer)
    body = client.get(QUEUE).content.decode()
    assert _queue_ids(body) == [oldest.pk, middle.pk, newest.pk]


def test_the_queue_flags_possible_duplicates_of_the_same_trader_and_type_within_30_days(client, officer):
    now = timezone.now()
    trader = factories.TraderFactory()
    today = timezone.localdate()
    first = _pending(now - 3 * DAY, trader=trader, occurred_on=today - 40 * DAY)
    second = _pending(now - 2 * DAY, trader=trader, occurred_on=today - 15 * DAY)
    far = _pending(now - DAY, trader=trader, occurred_on=today - 100 * DAY)  # same type, too far apart
    other_type = _pending(
        now - DAY,
        trader=trader,
        occurred_on=today - 15 * DAY,
        type=factories.violation_type("substandard-goods"),
    )
    alone = _pending(now - DAY)
    client.force_login(officer)
    body = client.get(QUEUE).content.decode()
    row_html = {
        int(match.group(1)): row
        for row in body.split("<tr")
        if (match := re.search(r'name="_selected_action" value="(\d+)"', row))
    }
    assert set(row_html) == {first.pk, second.pk, far.pk, other_type.pk, alone.pk}
    marked = {pk for pk, row in row_html.items() if 'class="possible-duplicate"' in row}
    assert marked == {first.pk, second.pk}
    assert f"?trader={trader.pk}&amp;type={first.type_id}" in row_html[first.pk]


def test_the_queue_previews_image_evidence_and_links_other_files(client, officer, as_officer):
    violation = _pending(timezone.now() - DAY)
    image = evidence_attach(
        actor=as_officer,
        violation=violation,
        upload=SimpleUploadedFile("现场.png", PNG, content_type="image/png"),
    )
    pdf = evidence_attach(
        actor=as_officer,
        violation=violation,
        upload=SimpleUploadedFile("检测报告.pdf", b"%PDF-1.4 test", content_type="application/pdf"),
    )
    client.force_login(officer)
    body = client.get(QUEUE).content.decode()
    image_url = reverse("penalties:evidence-download", args=[image.pk])
    pdf_url = reverse("penalties:evidence-download", args=[pdf.pk])
    assert re.search(rf'<img class="evidence-thumb" src="{image_url}" alt="现场.png"', body)
    assert f'<a class="evidence-link" href="{pdf_url}">检测报告.pdf</a>' in body
    assert "application/pdf" in body
    assert f'src="{pdf_url}"' not in body
    # The thumbnail's source answers with the image.
    response = client.get(image_url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"


def test_the_queue_costs_the_same_queries_for_3_or_15_rows(client, officer, as_officer):
    client.force_login(officer)

    def add(n: int) -> None:
        platform = factories.PlatformFactory(code="taobao", name="淘宝")
        for i in range(n):
            trader = factories.TraderFactory()
            v = _pending(
                timezone.now() - DAY,
                trader=trader,
                source=Violation.Source.PLATFORM_REPORT,
                reporting_platform=platform,
            )
            _pending(timezone.now() - DAY, trader=trader)  # a duplicate
            evidence_attach(
                actor=as_officer,
                violation=v,
                upload=SimpleUploadedFile(
                    f"{i}.png", PNG + bytes([i]) + bytes(str(v.pk), "ascii"), content_type="image/png"
                ),
            )

    add(2)
    small = _queries(client, QUEUE)
    add(6)
    assert _queries(client, QUEUE) == small


def test_an_officer_confirms_from_the_queue_in_bulk_and_stays_on_the_queue(client, officer, supervisor):
    # Four eyes: the officer confirms what someone else recorded.
    first = _pending(timezone.now() - 2 * DAY, recorded_by=supervisor)
    second = _pending(timezone.now() - DAY, recorded_by=supervisor)
    client.force_login(officer)
    body = client.get(QUEUE).content.decode()
    assert 'value="confirm_selected"' in body and 'value="reject_selected"' in body
    response = client.post(
        QUEUE, {"action": "confirm_selected", helpers.ACTION_CHECKBOX_NAME: [first.pk, second.pk]}
    )
    assert response.status_code == 302 and response["Location"].startswith(QUEUE)
    assert set(Violation.objects.values_list("status", flat=True)) == {"confirmed"}
    assert _queue_ids(client.get(QUEUE).content.decode()) == []


def test_the_violation_list_and_the_queue_link_to_each_other(client, officer):
    client.force_login(officer)
    violations = reverse("admin:penalties_violation_changelist")
    assert f'href="{QUEUE}"' in client.get(violations).content.decode()
    assert f'href="{violations}"' in client.get(QUEUE).content.decode()


def test_an_auditor_sees_the_queue_without_actions(client, auditor):
    _pending(timezone.now() - DAY)
    client.force_login(auditor)
    response = client.get(QUEUE)
    assert response.status_code == 200
    assert 'value="confirm_selected"' not in response.content.decode()


def test_evidence_is_unchanged_by_viewing_the_queue(client, officer, as_officer):
    violation = _pending(timezone.now() - DAY)
    evidence_attach(
        actor=as_officer,
        violation=violation,
        upload=SimpleUploadedFile("a.png", PNG, content_type="image/png"),
    )
    client.force_login(officer)
    client.get(QUEUE)
    assert Evidence.objects.count() == 1
