"""The staff dashboard on the admin's home page, and its two charts.

Like the credit record's score chart, the charts are inline SVG drawn on the server: no
JavaScript, nothing fetched from elsewhere, readable by a screen reader (title, desc, a
text label on every bar) and printable as they look.

`{% staff_dashboard %}` gathers the panels the user may see from penalties.dashboard,
in a fixed number of queries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.timesince import timesince
from django.utils.translation import gettext as _

from penalties import dashboard
from penalties.models import Violation
from traders.jurisdiction import scope_of

register = template.Library()

# SVG user units; the SVGs scale to the width of their panel.
GRADE_W, GRADE_H = 360, 220
WEEK_W, WEEK_H = 780, 260
LEFT, RIGHT, TOP, BOTTOM = 40, 12, 18, 30
LEGEND_W = 220

GRADE_COLOURS = {"A": "#2e7d32", "B": "#79aec8", "C": "#e0a526", "D": "#c0392b"}
# One colour per category, in Category order; distinguishable and legible on white.
CATEGORY_COLOURS = ["#205067", "#e07b39", "#5a9e4b", "#b04a7a", "#7f6bb5", "#c9a227", "#6b7b8c"]


def _html(template: str, *args: Any) -> SafeString:
    """format_html with coordinates rounded to a tenth of a unit (floats only)."""
    return format_html(template, *(f"{a:.1f}" if isinstance(a, float) else a for a in args))


def _nice_max(value: int) -> int:
    """A round top for the y axis, at least 1."""
    if value <= 5:
        return max(value, 1)
    for step in (5, 10, 20, 25, 50, 100, 200, 250, 500):
        if value <= step * 5:
            return -(-value // step) * step
    magnitude = 10 ** (len(str(value)) - 1)
    return -(-value // magnitude) * magnitude


def _svg(
    css_class: str, width: int, height: int, title: str, desc: str, body: SafeString, **data: Any
) -> SafeString:
    attrs = format_html_join("", ' data-{}="{}"', ((key, value) for key, value in data.items()))
    return _html(
        # Natural size as attributes, shrunk to the column by staff.css (no style
        # attribute: the Content-Security-Policy allows none).
        '<svg class="dashboard-chart {}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" '
        'width="{}" height="{}" role="img" aria-labelledby="{}-title {}-desc"{}>'
        '<title id="{}-title">{}</title><desc id="{}-desc">{}</desc>{}</svg>',
        css_class,
        width,
        height,
        width,
        height,
        css_class,
        css_class,
        attrs,
        css_class,
        title,
        css_class,
        desc,
        body,
    )


def grade_chart(distribution: Sequence[tuple[str, int]]) -> SafeString:
    """A bar per grade with its count above it and the grade below it."""
    top = _nice_max(max((n for _grade, n in distribution), default=0))
    plot_w, plot_h = GRADE_W - LEFT - RIGHT, GRADE_H - TOP - BOTTOM
    slot = plot_w / max(len(distribution), 1)
    bar_w = slot * 0.6
    base = TOP + plot_h
    total = sum(n for _grade, n in distribution)
    bars = []
    for i, (grade, n) in enumerate(distribution):
        height = plot_h * n / top
        x = LEFT + slot * i + (slot - bar_w) / 2
        label = _("Grade %(grade)s: %(count)d traders") % {"grade": grade, "count": n}
        bars.append(
            _html(
                '<g class="bar" data-grade="{}" data-count="{}">'
                '<rect x="{}" y="{}" width="{}" height="{}" fill="{}">'
                "<title>{}</title></rect>"
                '<text x="{}" y="{}" font-size="12" text-anchor="middle" fill="#333">{}</text>'
                '<text x="{}" y="{}" font-size="13" font-weight="bold" text-anchor="middle" '
                'fill="#333">{}</text></g>',
                grade,
                n,
                x,
                base - height,
                bar_w,
                height,
                GRADE_COLOURS.get(grade, "#888"),
                label,
                x + bar_w / 2,
                base - height - 4,
                n,
                x + bar_w / 2,
                GRADE_H - 10,
                grade,
            )
        )
    body = _html(
        '{}<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#999"/>'
        '<text x="{}" y="{}" font-size="11" fill="#666" text-anchor="end" '
        'dominant-baseline="hanging">{}</text>'
        '<text x="{}" y="{}" font-size="11" fill="#666" text-anchor="end">0</text>'
        "{}",
        _gridline(top, base - plot_h),
        LEFT,
        base,
        GRADE_W - RIGHT,
        base,
        LEFT - 6,
        TOP,
        top,
        LEFT - 6,
        base,
        SafeString("".join(bars)),
    )
    desc = "; ".join(_("%(grade)s: %(count)d") % {"grade": grade, "count": n} for grade, n in distribution)
    return _svg(
        "grade-chart",
        GRADE_W,
        GRADE_H,
        _("Traders per grade (%(total)d in all)") % {"total": total},
        desc,
        body,
        bars=len(distribution),
    )


def _gridline(top: int, y: float) -> SafeString:
    return _html(
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#e5e5e5" stroke-dasharray="3 3"/>',
        LEFT,
        y,
        GRADE_W - RIGHT,
        y,
    )


def weekly_chart(data: dashboard.WeeklyCategories) -> SafeString:
    """A stacked bar per week, one segment per category, the week's total on top and a legend."""
    totals = [data.week_total(week) for week in data.weeks]
    top = _nice_max(max(totals, default=0))
    plot_w, plot_h = WEEK_W - LEFT - RIGHT - LEGEND_W, WEEK_H - TOP - BOTTOM
    slot = plot_w / max(len(data.weeks), 1)
    bar_w = slot * 0.7
    base = TOP + plot_h
    colours = dict(zip((value for value, _label in data.categories), CATEGORY_COLOURS, strict=False))
    labels = dict(data.categories)
    groups = []
    for i, week in enumerate(data.weeks):
        x = LEFT + slot * i + (slot - bar_w) / 2
        y = base
        segments = []
        for value, label in data.categories:
            n = data.counts.get((week, value), 0)
            if not n:
                continue
            height = plot_h * n / top
            y -= height
            segments.append(
                _html(
                    '<rect class="bar-segment" data-category="{}" data-count="{}" x="{}" y="{}" '
                    'width="{}" height="{}" fill="{}"><title>{}</title></rect>',
                    value,
                    n,
                    x,
                    y,
                    bar_w,
                    height,
                    colours.get(value, "#888"),
                    _("Week of %(week)s, %(category)s: %(count)d")
                    % {"week": date_format(week, "SHORT_DATE_FORMAT"), "category": label, "count": n},
                )
            )
        groups.append(
            _html(
                '<g class="week" data-week="{}" data-total="{}">{}'
                '<text x="{}" y="{}" font-size="11" text-anchor="middle" fill="#333">{}</text>'
                '<text x="{}" y="{}" font-size="10" text-anchor="middle" fill="#666">{}</text></g>',
                week.isoformat(),
                totals[i],
                SafeString("".join(segments)),
                x + bar_w / 2,
                y - 4,
                totals[i] if totals[i] else "",
                x + bar_w / 2,
                WEEK_H - 10,
                week.strftime("%m-%d"),
            )
        )
    legend_x = WEEK_W - LEGEND_W + 8
    legend = format_html_join(
        "",
        '<g class="legend-item"><rect x="{}" y="{}" width="10" height="10" fill="{}"/>'
        '<text x="{}" y="{}" font-size="11" fill="#333" dominant-baseline="middle">{}</text></g>',
        (
            (
                legend_x,
                TOP + 18 * i,
                colours.get(value, "#888"),
                legend_x + 16,
                TOP + 18 * i + 5,
                labels[value],
            )
            for i, (value, _label) in enumerate(data.categories)
        ),
    )
    body = _html(
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#999"/>'
        '<text x="{}" y="{}" font-size="11" fill="#666" text-anchor="end" '
        'dominant-baseline="hanging">{}</text>'
        '<text x="{}" y="{}" font-size="11" fill="#666" text-anchor="end">0</text>'
        "{}{}",
        LEFT,
        base,
        LEFT + plot_w,
        base,
        LEFT - 6,
        TOP,
        top,
        LEFT - 6,
        base,
        SafeString("".join(groups)),
        legend,
    )
    first, last = data.weeks[0], data.weeks[-1]
    desc = "; ".join(
        _("week of %(week)s: %(count)d") % {"week": date_format(week, "SHORT_DATE_FORMAT"), "count": total}
        for week, total in zip(data.weeks, totals, strict=True)
    )
    return _svg(
        "weekly-chart",
        WEEK_W,
        WEEK_H,
        _("Confirmed and pending violations per category, by week recorded, %(first)s to %(last)s")
        % {
            "first": date_format(first, "SHORT_DATE_FORMAT"),
            "last": date_format(last + dt.timedelta(days=6), "SHORT_DATE_FORMAT"),
        },
        desc,
        body,
        weeks=len(data.weeks),
    )


def _queue_url(**params: str) -> str:
    url = reverse("admin:penalties_violation_queue")
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return f"{url}?{query}" if query else url


@register.inclusion_tag("admin/penalties/dashboard.html", takes_context=True)
def staff_dashboard(context: template.Context) -> dict[str, Any]:
    """The panels this user may see; nothing at all for a user who sees none of the data."""
    user = context["request"].user
    now = timezone.now()
    scope = scope_of(user)  # every count is of the traders the user may see
    data: dict[str, Any] = {"now": now, "scope": scope}
    if user.has_perm("penalties.view_violation"):
        queue = dashboard.queue_sizes(now, scope=scope)
        data["queue"] = queue
        data["queue_age"] = (
            timesince(queue.oldest_recorded_at, now, depth=2) if queue.oldest_recorded_at else ""
        )
        data["queue_url"] = _queue_url()
        data["reports_url"] = _queue_url(source__exact=Violation.Source.PLATFORM_REPORT)
        weekly = dashboard.weekly_categories(now, scope=scope)
        data["weekly_chart"] = weekly_chart(weekly)
    if user.has_perm("penalties.view_restriction"):
        data["deadlines"] = dashboard.objection_deadlines(now, scope=scope)
        data["week"] = dashboard.measures_this_week(now, scope=scope)
        data["unacked"] = dashboard.unacknowledged(now, scope=scope)
    if user.has_perm("penalties.view_objection") or user.has_perm("penalties.view_appeal"):
        data["remedies"] = dashboard.pending_remedies(scope=scope)
        data["remedy_urls"] = {
            name: reverse(f"admin:penalties_{name}_changelist") + "?status__exact=pending"
            for name in ("objection", "appeal", "repairapplication")
        }
    if user.has_perm("penalties.view_appeal"):
        data["appeal_deadlines"] = dashboard.appeal_deadlines(now, scope=scope)
    if user.has_perm("traders.view_trader"):
        data["grade_chart"] = grade_chart(dashboard.grade_distribution(scope=scope))
    return data
