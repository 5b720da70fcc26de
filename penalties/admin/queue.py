"""The review queue: pending violations, oldest first, with what a decision needs at hand.

It is the violation changelist with another queryset and other columns, so the existing
confirm/reject actions (four eyes and permissions checked by the services), filters,
search and paging work here unchanged. ViolationAdmin.get_urls hooks it in at
/admin/penalties/violation/queue/.

A constant number of queries per page: the rows with their possible-duplicate count (a
correlated subquery on the (trader, status, occurred_on) index) and one prefetch of the
page's evidence.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import admin
from django.db.models import Count, IntegerField, OuterRef, Prefetch, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince
from django.utils.translation import gettext_lazy as _

from penalties.admin.violations import ViolationAdmin, ViolationRegionFilter
from penalties.models import Evidence, Violation

# Another violation of the same trader and type within this many days may be the same case.
DUPLICATE_WINDOW_DAYS = 30
# Shown inline; anything else (PDF, video, SVG that could carry script) is a link.
PREVIEW_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
PREVIEW_LIMIT = 3


def possible_duplicates() -> Subquery:
    """How many other live violations (pending or confirmed) the same trader has of the same
    type, occurring within DUPLICATE_WINDOW_DAYS either side of this one."""
    window = dt.timedelta(days=DUPLICATE_WINDOW_DAYS)
    others = (
        Violation.objects.filter(
            trader=OuterRef("trader"),
            type=OuterRef("type"),
            status__in=[Violation.Status.PENDING, Violation.Status.CONFIRMED],
            occurred_on__gte=OuterRef("occurred_on") - window,
            occurred_on__lte=OuterRef("occurred_on") + window,
        )
        .exclude(pk=OuterRef("pk"))
        .order_by()
        .values("trader")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(others, output_field=IntegerField()), 0)


class ReviewQueueAdmin(ViolationAdmin):
    list_display = (
        "id",
        "recorded_age",
        "trader",
        "type",
        "severity",
        "source_and_platform",
        "occurred_on",
        "evidence_preview",
        "duplicates",
    )
    list_display_links = ("id", "type")
    list_filter = (
        "source",
        "reporting_platform",
        "type__severity",
        "type__category",
        ViolationRegionFilter,
    )
    # Oldest first: the order officers work in, straight off the (status, recorded_at) index.
    ordering = ("recorded_at", "id")
    sortable_by = ("id", "recorded_age", "occurred_on")

    class Media:
        css = {"all": ["penalties/dashboard.css"]}

    def get_queryset(self, request: HttpRequest):
        evidence = Evidence.objects.order_by("uploaded_at", "id")
        return (
            super()
            .get_queryset(request)
            .filter(status=Violation.Status.PENDING)
            .annotate(duplicate_count=possible_duplicates())
            .prefetch_related(Prefetch("evidence", queryset=evidence, to_attr="evidence_files"))
        )

    def changelist_view(self, request: HttpRequest, extra_context=None):
        context = {
            "title": _("Review queue: pending violations, oldest first"),
            "is_review_queue": True,
            **(extra_context or {}),
        }
        return super().changelist_view(request, context)

    def get_urls(self):  # reached through ViolationAdmin's URLs only
        return []

    # --- columns ------------------------------------------------------------------------------

    @admin.display(description=_("waiting"), ordering="recorded_at")
    def recorded_age(self, obj: Violation) -> str:
        return format_html(
            '<span title="{}">{}</span>',
            date_format(timezone.localtime(obj.recorded_at), "SHORT_DATETIME_FORMAT"),
            timesince(obj.recorded_at, depth=1),
        )

    @admin.display(description=_("source"))
    def source_and_platform(self, obj: Violation) -> str:
        if obj.reporting_platform_id:
            return format_html("{} ({})", obj.get_source_display(), obj.reporting_platform)
        return obj.get_source_display()

    @admin.display(description=_("evidence"))
    def evidence_preview(self, obj: Violation) -> str:
        files = obj.evidence_files
        if not files:
            return format_html('<span class="quiet">{}</span>', _("none"))
        images = [e for e in files if e.content_type in PREVIEW_TYPES][:PREVIEW_LIMIT]
        others = [e for e in files if e not in images]
        # <img> shows the download view's image although it is sent as an attachment;
        # the browser never navigates to it, so it is never rendered as a page.
        thumbs = format_html_join(
            "",
            '<a href="{0}" title="{1}"><img class="evidence-thumb" src="{0}" alt="{1}" loading="lazy"></a>',
            ((reverse("penalties:evidence-download", args=[e.pk]), e.original_name) for e in images),
        )
        links = format_html_join(
            "<br>",
            '<a class="evidence-link" href="{}">{}</a> <span class="quiet">{}, {}</span>',
            (
                (
                    reverse("penalties:evidence-download", args=[e.pk]),
                    e.original_name,
                    e.content_type,
                    filesizeformat(e.size),
                )
                for e in others
            ),
        )
        return format_html("{}{}{}", thumbs, mark_safe("<br>") if thumbs and links else "", links)

    @admin.display(description=_("possible duplicates"), ordering="duplicate_count")
    def duplicates(self, obj: Violation) -> str:
        if not obj.duplicate_count:
            return "-"
        url = reverse("admin:penalties_violation_changelist")
        return format_html(
            '<a class="possible-duplicate" href="{}?trader={}&amp;type={}" title="{}">⚠ {}</a>',
            url,
            obj.trader_id,
            obj.type_id,
            _("Same trader and type within %(days)d days") % {"days": DUPLICATE_WINDOW_DAYS},
            obj.duplicate_count,
        )


def queue_urls(violation_admin: ViolationAdmin) -> list:
    """The queue's URL, for ViolationAdmin.get_urls."""
    queue = ReviewQueueAdmin(Violation, violation_admin.admin_site)
    return [
        path(
            "queue/",
            violation_admin.admin_site.admin_view(queue.changelist_view),
            name="penalties_violation_queue",
        )
    ]
