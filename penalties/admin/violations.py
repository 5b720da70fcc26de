"""Violations, their types and evidence in the admin. Decisions go through the services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from creditledger.exceptions import ApplicationError
from creditledger.ledger.actors import Actor
from creditledger.ledger.admin import (
    BigTableAdminMixin,
    ReadOnlyAdminMixin,
    ServiceAdminMixin,
    ledger_changelist_url,
)
from penalties import services
from penalties.admin.rowactions import RowActionsMixin
from penalties.forms import DecisionActionForm, EvidenceUploadForm, RejectForm, ViolationRecordForm
from penalties.models import Evidence, Violation, ViolationType
from traders.admin import JurisdictionAdminMixin, RegionFilter, search_traders
from traders.models import Platform


def _download_link(evidence: Evidence) -> str:
    return format_html(
        '<a href="{}">{}</a>', reverse("penalties:evidence-download", args=[evidence.pk]), _("download")
    )


def _uploader(evidence: Evidence) -> str:
    if evidence.uploaded_by_id:
        return str(evidence.uploaded_by)
    if evidence.uploaded_via_id:
        return str(evidence.uploaded_via)
    return "-"


@admin.register(ViolationType)
class ViolationTypeAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "category", "severity", "points", "validity_days", "is_active")
    list_filter = ("category", "severity", "is_active")
    search_fields = ("code", "name")

    def get_readonly_fields(self, request: HttpRequest, obj: ViolationType | None = None):
        # Ledger payloads name types by code; a renamed code would orphan them.
        return ("code",) if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # violations refer to it; deactivate instead


class ViolationRegionFilter(RegionFilter):
    region_field = "trader__region"


class EvidenceInline(admin.TabularInline):
    """The evidence already attached: immutable, so read-only for everyone."""

    model = Evidence
    fields = ("original_name", "sha256", "size", "content_type", "uploader", "uploaded_at", "download")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("uploaded_by", "uploaded_via")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("uploaded by"))
    def uploader(self, obj: Evidence) -> str:
        return _uploader(obj)

    @admin.display(description=_("file"))
    def download(self, obj: Evidence) -> str:
        return _download_link(obj)


class EvidenceUploadInline(admin.TabularInline):
    """Empty rows for new files; ViolationAdmin.save_formset hands them to evidence_attach."""

    model = Evidence
    form = EvidenceUploadForm
    fields = ("upload",)
    extra = 2
    can_delete = False
    verbose_name = _("new evidence file")
    verbose_name_plural = _("attach evidence")

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).none()

    def has_add_permission(self, request: HttpRequest, obj: Violation | None = None) -> bool:
        if not request.user.has_perm("penalties.add_evidence"):
            return False
        return obj is None or obj.status == Violation.Status.PENDING

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Violation)
class ViolationAdmin(
    JurisdictionAdminMixin, BigTableAdminMixin, ServiceAdminMixin, RowActionsMixin, admin.ModelAdmin
):
    add_form = ViolationRecordForm
    list_display = (
        "id",
        "trader",
        "type",
        "severity",
        "occurred_on",
        "status",
        "source",
        "reporting_platform",
        "recorded_by",
        "recorded_at",
    )
    list_display_links = ("id", "type")
    list_select_related = ("trader", "type", "reporting_platform", "recorded_by")
    list_filter = (
        "status",
        "type__category",
        "type__severity",
        "reporting_platform",
        ViolationRegionFilter,
        "source",
        ("occurred_on", admin.DateFieldListFilter),
    )
    search_fields = ("trader__uscc", "trader__name")
    search_help_text = _("The trader's code (or its beginning) or part of its name; #123 finds a violation.")
    # Newest recorded first, straight off the primary key; "occurred on" sorts on a click
    # (there is no index on it, and sorting 500k rows for every page is not free).
    ordering = ("-id",)
    autocomplete_fields = ("trader", "shop")
    actions = ("confirm_selected", "reject_selected")
    action_form = DecisionActionForm
    action_select_related = ("type", "trader")
    too_many = _("Select at most %(limit)d violations at a time; nothing was changed.")
    inlines = (EvidenceInline, EvidenceUploadInline)
    add_fieldsets = ((None, {"fields": ViolationRecordForm.Meta.fields}),)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "trader",
                    "shop",
                    "type",
                    "category_and_severity",
                    "occurred_on",
                    "source",
                    "reporting_platform",
                    "description",
                    "goods_value",
                )
            },
        ),
        (_("Record"), {"fields": ("recorded_by", "recorded_at", "ledger_link")}),
        (_("Decision"), {"fields": ("status", "decided_by", "decided_at", "decision_note")}),
    )

    def get_urls(self):
        from penalties.admin.queue import queue_urls  # the queue subclasses this admin

        return queue_urls(self) + super().get_urls()

    def get_fieldsets(self, request: HttpRequest, obj: Violation | None = None):
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_inlines(self, request: HttpRequest, obj: Violation | None):
        return self.inlines if obj is not None else (EvidenceUploadInline,)

    def get_readonly_fields(self, request: HttpRequest, obj: Violation | None = None):
        # Recorded facts are never edited: a correction is a rejection and a new record.
        if obj is None:
            return ()
        return [name for _title, opts in self.fieldsets for name in opts["fields"]]

    def get_queryset(self, request: HttpRequest):
        return (
            super()
            .get_queryset(request)
            .select_related(
                "trader", "type", "shop__platform", "reporting_platform", "recorded_by", "decided_by"
            )
        )

    def get_search_results(self, request: HttpRequest, queryset, search_term: str):
        term = search_term.strip()
        if term.startswith("#") and term[1:].isdigit():
            return queryset.filter(pk=int(term[1:])), False
        return search_traders(queryset, term, prefix="trader__"), False

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "type":
            kwargs["queryset"] = ViolationType.objects.filter(is_active=True)
        elif db_field.name == "reporting_platform":
            kwargs["queryset"] = Platform.objects.filter(is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    # --- permissions ---------------------------------------------------------------------

    def has_change_permission(self, request: HttpRequest, obj: Violation | None = None) -> bool:
        # "Change" is only attaching evidence to a violation still under review; the
        # recorded facts are read-only and a decided violation is read-only as a whole.
        if not request.user.has_perm("penalties.add_evidence"):
            return False
        return obj is None or obj.status == Violation.Status.PENDING

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_confirm_permission(self, request: HttpRequest) -> bool:
        """May decide on some violations; the service checks the severity of each one."""
        user = request.user
        return user.has_perm("penalties.confirm_violation") or user.has_perm(
            "penalties.confirm_heavy_violation"
        )

    # --- saving ----------------------------------------------------------------------------

    def save_formset(self, request: HttpRequest, form, formset, change: bool) -> None:
        super().save_formset(request, form, formset, change)
        if not issubclass(formset.form, EvidenceUploadForm):
            return
        violation = form.instance  # on the add page, the violation the service just recorded
        actor = Actor.for_user(request.user)
        for upload_form in formset.forms:
            upload = upload_form.cleaned_data.get("upload") if upload_form.has_changed() else None
            if not upload:
                continue
            try:
                evidence = services.evidence_attach(
                    actor=actor,
                    violation=violation,
                    upload=upload,
                    name=upload.name,
                    content_type=upload.content_type,
                )
            except ApplicationError as exc:
                # The violation stands; the officer can attach the file again on its page.
                self.message_user(
                    request,
                    _("%(name)s was not attached: %(error)s") % {"name": upload.name, "error": exc.message},
                    messages.ERROR,
                )
            else:
                formset.new_objects.append(evidence)

    # --- actions -------------------------------------------------------------------------

    def row_label(self, row: Violation) -> str:
        return _("Violation %(violation)s") % {"violation": row}

    @admin.action(description=_("Confirm selected violations"), permissions=["confirm"])
    def confirm_selected(self, request: HttpRequest, queryset) -> None:
        violations = self.selected_rows(request, queryset)
        if violations is None:
            return
        note = _action_note(request)
        self.run_each(
            request,
            violations,
            lambda actor, row: services.violation_confirm(actor=actor, violation=row, note=note),
            ngettext_lazy("Confirmed %(count)d violation.", "Confirmed %(count)d violations.", "count"),
        )

    @admin.action(description=_("Reject selected violations…"), permissions=["confirm"])
    def reject_selected(self, request: HttpRequest, queryset) -> TemplateResponse | None:
        """Ask for the reason first (like Django's delete confirmation), then reject each.
        A note typed in the action bar is the reason to start from."""
        violations = self.selected_rows(request, queryset)
        if violations is None:
            return None
        form = self.note_form(request, RejectForm, initial={"note": _action_note(request)})
        if form.is_valid():
            note = form.cleaned_data["note"]
            self.run_each(
                request,
                violations,
                lambda actor, row: services.violation_reject(actor=actor, violation=row, note=note),
                ngettext_lazy("Rejected %(count)d violation.", "Rejected %(count)d violations.", "count"),
            )
            return None
        return self.confirmation_page(
            request,
            "admin/penalties/violation/reject_selected_confirmation.html",
            rows=violations,
            form=form,
            action="reject_selected",
            title=_("Reject violations"),
        )

    # --- display ---------------------------------------------------------------------------

    @admin.display(description=_("severity"), ordering="type__severity")
    def severity(self, obj: Violation) -> str:
        return obj.type.get_severity_display()

    @admin.display(description=_("category / severity"))
    def category_and_severity(self, obj: Violation) -> str:
        vtype = obj.type
        return _("%(category)s / %(severity)s, %(points)d points, valid %(days)d days") % {
            "category": vtype.get_category_display(),
            "severity": vtype.get_severity_display(),
            "points": vtype.points,
            "days": vtype.validity_days,
        }

    @admin.display(description=_("ledger"))
    def ledger_link(self, obj: Violation) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            ledger_changelist_url(subject_type="violation", subject_id=str(obj.pk)),
            _("entries for this violation"),
        )


def _action_note(request: HttpRequest) -> str:
    """The note typed in the action bar (DecisionActionForm), at most its field's length."""
    return request.POST.get("note", "").strip()[: DecisionActionForm.base_fields["note"].max_length]


@admin.register(Evidence)
class EvidenceAdmin(JurisdictionAdminMixin, BigTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    jurisdiction_field = "violation__trader__region"

    list_display = (
        "original_name",
        "violation_link",
        "short_sha256",
        "size",
        "content_type",
        "uploader",
        "uploaded_at",
        "download",
    )
    list_select_related = ("violation__type", "uploaded_by", "uploaded_via")
    list_filter = (("uploaded_at", admin.DateFieldListFilter),)
    search_fields = ("=sha256",)
    search_help_text = _("The file's SHA-256 (exact).")
    ordering = ("-id",)
    fields = (
        "violation_link",
        "original_name",
        "sha256",
        "size",
        "content_type",
        "uploader",
        "uploaded_at",
        "download",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("violation__type", "uploaded_by", "uploaded_via")

    def get_search_results(self, request: HttpRequest, queryset, search_term: str):
        term = search_term.strip().lower()
        if not term:
            return queryset, False
        return queryset.filter(sha256=term), False

    @admin.display(description=_("violation"), ordering="violation")
    def violation_link(self, obj: Evidence) -> str:
        url = reverse("admin:penalties_violation_change", args=[obj.violation_id])
        return format_html('<a href="{}">{}</a>', url, obj.violation)

    @admin.display(description=_("SHA-256"))
    def short_sha256(self, obj: Evidence) -> str:
        return format_html('<code title="{}">{}…</code>', obj.sha256, obj.sha256[:16])

    @admin.display(description=_("uploaded by"))
    def uploader(self, obj: Evidence) -> str:
        return _uploader(obj)

    @admin.display(description=_("file"))
    def download(self, obj: Evidence) -> str:
        return _download_link(obj)
