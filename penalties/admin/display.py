"""What the credit pages draw: the score-history chart and the statement of reasons.

Both are rendered on the server (no JavaScript, nothing fetched from elsewhere), so the
page works on a locked-down office machine and prints as it looks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from penalties.models import Restriction, RestrictionBasis, ScoreHistory, Severity

# The chart's frame in SVG user units; the SVG scales to the page width.
WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 72, 12, 28
MAX_SCORE = 1000


def _x_scale(start: dt.datetime, end: dt.datetime):
    span = (end - start).total_seconds()
    plot = WIDTH - LEFT - RIGHT

    def x(at: dt.datetime) -> float:
        if span <= 0:
            return LEFT + plot / 2
        return LEFT + plot * (at - start).total_seconds() / span

    return x


def _y_scale(floor: int):
    plot = HEIGHT - TOP - BOTTOM

    def y(score: int) -> float:
        return TOP + plot * (MAX_SCORE - score) / (MAX_SCORE - floor)

    return y


def _floor(history: Sequence[ScoreHistory], cutoffs: Sequence[tuple[str, int]]) -> int:
    """The bottom of the chart: a round hundred below the lowest score and cut-off.

    Scores mostly live between the lowest cut-off and 1000; a fixed 0-1000 axis would
    squeeze all of it into the top third."""
    lowest = min([row.score for row in history] + [cut for _grade, cut in cutoffs])
    return max(0, (lowest - 50) // 100 * 100)


def _when(at: dt.datetime) -> str:
    return date_format(timezone.localtime(at), "SHORT_DATETIME_FORMAT")


def score_chart(
    history: Sequence[ScoreHistory], cutoffs: Sequence[tuple[str, int]], now: dt.datetime | None = None
) -> SafeString:
    """An inline SVG line chart of the score over time, with the grade cut-offs.

    The score holds between reassessments, so the line is drawn in steps and runs on to
    `now`; each history row is one marked point whose tooltip gives date, score and grade.
    """
    if not history:
        return format_html('<p class="score-chart-empty">{}</p>', _("No score changes recorded yet."))
    now = max(now or timezone.now(), history[-1].at)
    x = _x_scale(history[0].at, now)
    floor = _floor(history, cutoffs)
    y = _y_scale(floor)
    right_edge = WIDTH - RIGHT

    path = [f"M{x(history[0].at):.1f},{y(history[0].score):.1f}"]
    for row in history[1:]:
        path.append(f"H{x(row.at):.1f}V{y(row.score):.1f}")
    path.append(f"H{x(now):.1f}")

    cutoff_lines = format_html_join(
        "",
        '<line class="cutoff" x1="{}" y1="{}" x2="{}" y2="{}" stroke="#b0b0b0" stroke-dasharray="4 3"/>'
        '<text x="{}" y="{}" font-size="11" fill="#666" dominant-baseline="middle">{} ≥ {}</text>',
        (
            (LEFT, f"{y(cut):.1f}", right_edge, f"{y(cut):.1f}", right_edge + 6, f"{y(cut):.1f}", grade, cut)
            for grade, cut in cutoffs
        ),
    )
    points = format_html_join(
        "",
        '<circle class="score-point" cx="{}" cy="{}" r="3.5" fill="#205067">'
        "<title>{}: {} ({})</title></circle>",
        ((f"{x(row.at):.1f}", f"{y(row.score):.1f}", _when(row.at), row.score, row.grade) for row in history),
    )
    axis_y = HEIGHT - BOTTOM
    label = _("Score history: %(count)d changes from %(start)s to %(end)s") % {
        "count": len(history),
        "start": _when(history[0].at),
        "end": _when(history[-1].at),
    }
    return format_html(
        '<svg class="score-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" '
        'width="{w}" height="{h}" role="img" aria-label="{label}" data-points="{count}">'
        "<title>{label}</title>"
        '<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ddd"/>'
        "{cutoffs}"
        '<text x="{lx}" y="{top}" font-size="11" fill="#666" text-anchor="end" '
        'dominant-baseline="hanging">1000</text>'
        '<text x="{lx}" y="{axis_y}" font-size="11" fill="#666" text-anchor="end">{floor}</text>'
        '<path class="score-line" d="{path}" fill="none" stroke="#205067" stroke-width="2"/>'
        "{points}"
        '<text x="{left}" y="{date_y}" font-size="11" fill="#666">{first}</text>'
        '<text x="{right_edge}" y="{date_y}" font-size="11" fill="#666" text-anchor="end">{last}</text>'
        "</svg>",
        w=WIDTH,
        h=HEIGHT,
        label=label,
        count=len(history),
        left=LEFT,
        top=TOP,
        pw=WIDTH - LEFT - RIGHT,
        ph=HEIGHT - TOP - BOTTOM,
        cutoffs=cutoff_lines,
        lx=LEFT - 6,
        axis_y=axis_y,
        floor=floor,
        path=" ".join(path),
        points=points,
        date_y=HEIGHT - 8,
        first=date_format(timezone.localtime(history[0].at), "SHORT_DATE_FORMAT"),
        right_edge=right_edge,
        last=date_format(timezone.localtime(now), "SHORT_DATE_FORMAT"),
    )


def _label(choices: type, value: Any) -> str:
    return choices(value).label if value in choices.values else str(value or "")


def reasons_context(reasons: Mapping[str, Any] | None) -> dict[str, Any]:
    """The statement of reasons, tolerant of older or partial JSON (it is stored as written)."""
    reasons = reasons if isinstance(reasons, Mapping) else {}
    violations = []
    for item in reasons.get("violations") or []:
        if not isinstance(item, Mapping):
            continue
        vid = item.get("id")
        violations.append(
            {
                "id": vid if isinstance(vid, int) else None,
                "type": item.get("type", ""),
                "name": item.get("name", ""),
                "severity": _label(Severity, item.get("severity")),
                "occurred_on": item.get("occurred_on", ""),
                "deduction": item.get("deduction", ""),
            }
        )
    return {
        "basis": _label(RestrictionBasis, reasons.get("basis")),
        "rule": reasons.get("rule") or "",
        "policy_version": reasons.get("policy_version"),
        "score": reasons.get("score"),
        "grade": reasons.get("grade") or "",
        "total_deduction": reasons.get("total_deduction") or "",
        "statement": reasons.get("statement") or "",
        "violations": violations,
    }


def render_reasons(restriction: Restriction) -> SafeString:
    html = render_to_string(
        "admin/penalties/restriction/reasons.html", {"reasons": reasons_context(restriction.reasons)}
    )
    return mark_safe(html)  # a template with autoescaping made it
