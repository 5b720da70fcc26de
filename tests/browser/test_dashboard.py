"""The staff landing page draws its SVG charts in a real browser, with the data behind them,
and the browser reports no error (script errors, failed requests, CSP violations)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from penalties.models import Violation
from tests import factories
from tests.browser.conftest import sign_in

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

GRADES = {"A": (950, 3), "B": (800, 2), "C": (650, 1), "D": (500, 1)}  # grade: (score, traders)


def _market() -> dict[str, int]:
    """Traders of every grade; violations recorded this week and three weeks ago.
    Returns the violations per category that the weekly chart must count."""
    traders = [
        factories.TraderFactory(grade=grade, score=score)
        for grade, (score, count) in GRADES.items()
        for _ in range(count)
    ]
    factories.ViolationFactory(trader=traders[0], type=factories.violation_type("false-advertising"))
    factories.ViolationFactory(trader=traders[1], type=factories.violation_type("false-advertising"))
    factories.ViolationFactory(trader=traders[2], type=factories.violation_type("counterfeit-goods"))
    older = [
        factories.ViolationFactory(trader=traders[3], type=factories.violation_type("substandard-goods")),
        factories.ViolationFactory(trader=traders[4], type=factories.violation_type("unsafe-goods")),
    ]
    three_weeks_ago = timezone.now() - dt.timedelta(weeks=3)
    Violation.objects.filter(pk__in=[v.pk for v in older]).update(
        status=Violation.Status.CONFIRMED, recorded_at=three_weeks_ago, decided_at=three_weeks_ago
    )
    # Rejected violations are not work arriving: the chart leaves them out.
    rejected = factories.ViolationFactory(trader=traders[5], type=factories.violation_type("unlicensed-food"))
    Violation.objects.filter(pk=rejected.pk).update(
        status=Violation.Status.REJECTED, decided_at=timezone.now(), decision_note="证据不足"
    )
    return {"false_advertising": 2, "counterfeit": 1, "substandard": 2}


def _counts(locator) -> list[tuple[str, int]]:
    return [
        (
            el.get_attribute("data-grade") or el.get_attribute("data-category"),
            int(el.get_attribute("data-count")),
        )
        for el in locator.all()
    ]


def test_the_dashboard_draws_its_charts_without_browser_errors(browser, page, officer):
    expected_categories = _market()
    sign_in(page, browser.base, officer)

    grades = page.locator("#dashboard-grades svg.dashboard-chart.grade-chart")
    assert grades.is_visible()
    box = grades.bounding_box()
    assert box["width"] > 200 and box["height"] > 100, box
    bars = grades.locator("g.bar")
    assert _counts(bars) == [(grade, count) for grade, (_score, count) in GRADES.items()]
    for bar in bars.all():
        assert float(bar.locator("rect").get_attribute("height")) > 0, bar.get_attribute("data-grade")
    # The tallest bar is A's (3 traders), drawn as such by the browser, not only in markup.
    heights = {
        bar.get_attribute("data-grade"): bar.locator("rect").bounding_box()["height"] for bar in bars.all()
    }
    assert heights["A"] > heights["B"] > heights["C"] == heights["D"] > 0

    weekly = page.locator("#dashboard-weekly svg.dashboard-chart")
    assert weekly.is_visible()
    segments = weekly.locator("rect.bar-segment")
    drawn: dict[str, int] = {}
    for category, count in _counts(segments):
        drawn[category] = drawn.get(category, 0) + count
    assert drawn == expected_categories
    weeks_with_data = [
        int(week.get_attribute("data-total"))
        for week in weekly.locator("g.week").all()
        if int(week.get_attribute("data-total"))
    ]
    assert sorted(weeks_with_data) == [2, 3]  # three weeks ago, and this week
    assert page.locator("[data-figure=pending] .number").inner_text() == "3"
    browser.shot(page, "dashboard")
    browser.assert_no_errors()
