"""The trader's remedies in the admin: objections, appeals and credit repair applications.

Each list is a queue (pending first, oldest first, with its deadline and the days left).
An officer enters an item on the add page; a supervisor decides through the list's actions,
which ask for the reasons first and then call the service once per row, reporting every
refusal by row. Nothing here is edited or deleted: the records change only by decision.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Case, IntegerField, Value, When
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, ngettext_lazy

from creditledger.ledger.actors import Actor
from creditledger.ledger.admin import ServiceAdminMixin, ServiceForm, ledger_changelist_url
from penalties import services
from penalties.admin.display import render_reasons
from penalties.admin.rowactions import RowActionsMixin
from penalties.models import Appeal, Objection, RepairApplication
from traders.admin import JurisdictionAdminMixin
from traders.jurisdiction import scope_of

GROUNDS_WIDGET = forms.Textarea(attrs={"rows": 6, "cols": 80})

# --- forms -----------------------------------------------------------------------------------


class ObjectionRecordForm(ServiceForm):
    class Meta:
        model = Objection
        fields = ("restriction", "grounds")
        widgets = {"grounds": GROUNDS_WIDGET}
        help_texts = {
            "restriction": _("A proposed measure whose objection deadline has not passed."),
            "grounds": _("The trader's objection, as stated."),
        }

    def call_service(self, actor: Actor, data: dict[str, Any]) -> Objection:
        return services.objection_record(
            actor=actor, restriction=data["restriction"], grounds=data["grounds"]
        )


class AppealFileForm(ServiceForm):
    class Meta:
        model = Appeal
        fields = ("violation", "grounds")
        widgets = {"grounds": GROUNDS_WIDGET}
        help_texts = {
            "violation": _(
                "A confirmed violation, within the policy's appeal period after its confirmation."
            ),
            "grounds": _("The trader's grounds of appeal, as stated."),
        }

    def call_service(self, actor: Actor, data: dict[str, Any]) -> Appeal:
        return services.appeal_file(actor=actor, violation=data["violation"], grounds=data["grounds"])


class RepairApplyForm(ServiceForm):
    class Meta:
        model = RepairApplication
        fields = ("restriction", "grounds")
        widgets = {"grounds": GROUNDS_WIDGET}
        help_texts = {
            "restriction": _("A measure in force."),
            "grounds": _("What the trader has rectified, and the proof of it."),
        }

    def call_service(self, actor: Actor, data: dict[str, Any]) -> RepairApplication:
        return services.repair_apply(actor=actor, restriction=data["restriction"], grounds=data["grounds"])


class DecisionForm(forms.Form):
    note = forms.CharField(
        label=_("reasons for the decision"),
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        max_length=4000,
    )


# --- display helpers ---------------------------------------------------------------------------


def days_left(deadline: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """Whole days until the deadline, or how long it is overdue."""
    if deadline is None:
        return "—"
    left = deadline - (now or timezone.now())
    if left.total_seconds() < 0:
        overdue = -left.days  # floor: 2 hours late is 1 day overdue
        return format_html(
            '<strong class="deadline-overdue">{}</strong>',
            ngettext("overdue by %(days)d day", "overdue by %(days)d days", overdue) % {"days": overdue},
        )
    if left.days == 0:
        return format_html('<strong class="deadline-today">{}</strong>', _("less than a day"))
    return ngettext("%(days)d day", "%(days)d days", left.days) % {"days": left.days}


def _when(value: dt.datetime | dt.date | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, dt.datetime):
        return date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT")
    return date_format(value, "SHORT_DATE_FORMAT")


def _link(url_name: str, obj: Any) -> str:
    if obj is None:
        return "—"
    return format_html('<a href="{}">{}</a>', reverse(url_name, args=[obj.pk]), obj)


class DeadlineFilter(admin.SimpleListFilter):
    """Pending items by how close their deadline is. `deadline_field` names the date."""

    title = _("deadline")
    parameter_name = "due"
    deadline_field = "deadline"
    SOON_DAYS = 7

    def lookups(self, request: HttpRequest, model_admin):
        return (
            ("overdue", _("overdue")),
            ("soon", _("due within %(days)d days") % {"days": self.SOON_DAYS}),
        )

    def queryset(self, request: HttpRequest, queryset):
        now = timezone.now()
        pending = queryset.filter(status="pending")
        if self.value() == "overdue":
            return pending.filter(**{f"{self.deadline_field}__lt": now})
        if self.value() == "soon":
            return pending.filter(
                **{
                    f"{self.deadline_field}__gte": now,
                    f"{self.deadline_field}__lte": now + dt.timedelta(days=self.SOON_DAYS),
                }
            )
        return queryset


class ObjectionDeadlineFilter(DeadlineFilter):
    deadline_field = "restriction__objection_deadline"


# --- the shared queue admin ------------------------------------------------------------------


class RemedyAdmin(JurisdictionAdminMixin, ServiceAdminMixin, RowActionsMixin, admin.ModelAdmin):
    """A queue of remedies: read-only rows, entered by a service, decided by actions."""

    add_form: type[ServiceForm]
    decide_perm: str
    filed_field: str  # when the item was entered: the queue's age order
    detail_fields: tuple[str, ...]
    subject_type: str  # the ledger's subject_type for these rows
    decision_buttons: tuple[tuple[str, Any], ...] = ()  # (action, label) on a pending item's page
    change_form_template = "admin/penalties/remedy_change_form.html"
    list_filter = ("status",)
    list_per_page = 50
    show_full_result_count = False
    actions: tuple[str, ...] = ()

    def get_queryset(self, request: HttpRequest):
        # Pending first, each part oldest first: the queue's head is what is due. The rank
        # is annotated before ModelAdmin orders by it, so this replaces super()'s query.
        rank = Case(When(status="pending", then=Value(0)), default=Value(1), output_field=IntegerField())
        qs = self.model._default_manager.get_queryset().annotate(queue_rank=rank)
        qs = scope_of(request.user).filter(qs, self.jurisdiction_field)
        return qs.order_by(*self.get_ordering(request))

    def get_ordering(self, request: HttpRequest):
        return ["queue_rank", self.filed_field, "id"]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None):
        if obj is None:
            return ((None, {"fields": self.add_form.Meta.fields}),)
        return ((None, {"fields": self.detail_fields}),)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None):
        return () if obj is None else self.detail_fields

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        obj = self.get_object(request, object_id)
        buttons = ()
        if obj is not None and obj.status == "pending" and self.has_decide_permission(request):
            buttons = self.decision_buttons
        extra_context = {**(extra_context or {}), "decision_buttons": buttons}
        return super().change_view(request, object_id, form_url, extra_context)

    # --- permissions ---------------------------------------------------------------------

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # decided through the actions, never edited

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_decide_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(self.decide_perm)

    # --- actions -------------------------------------------------------------------------

    def row_label(self, row: Any) -> str:
        return _("%(item)s %(id)s") % {"item": self.opts.verbose_name, "id": row.pk}

    def _decide(
        self,
        request: HttpRequest,
        queryset,
        *,
        action: str,
        call: Callable[..., Any],
        title,
        question,
        submit,
        done,
    ) -> TemplateResponse | None:
        """Ask for the reasons, then one service call (one transaction) per row."""
        rows = self.selected_rows(request, queryset)
        if rows is None:
            return None
        form = self.note_form(request, DecisionForm)
        if not form.is_valid():
            return self.confirmation_page(
                request,
                "admin/penalties/decision_confirmation.html",
                rows=rows,
                form=form,
                action=action,
                title=title,
                question=question,
                submit_label=submit,
            )
        note = form.cleaned_data["note"]
        self.run_each(request, rows, lambda actor, row: call(actor=actor, row=row, note=note), done)
        return None

    # --- display -------------------------------------------------------------------------

    @admin.display(description=_("statement of reasons"))
    def measure_reasons(self, obj: Objection | RepairApplication) -> str:
        return render_reasons(obj.restriction)

    @admin.display(description=_("ledger"))
    def ledger_link(self, obj: Any) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            ledger_changelist_url(subject_type=self.subject_type, subject_id=str(obj.pk)),
            _("entries for this item"),
        )


@admin.register(Objection)
class ObjectionAdmin(RemedyAdmin):
    jurisdiction_field = "restriction__trader__region"
    add_form = ObjectionRecordForm
    decide_perm = "penalties.decide_objection"
    filed_field = "recorded_at"
    subject_type = "objection"
    list_display = ("id", "trader", "restriction", "status", "recorded_at", "deadline", "time_left")
    list_filter = ("status", ObjectionDeadlineFilter)
    list_display_links = ("id",)
    list_select_related = ("restriction__trader",)
    search_fields = ("restriction__trader__uscc", "restriction__trader__name")
    autocomplete_fields = ("restriction",)
    detail_fields = (
        "restriction_link",
        "trader",
        "deadline",
        "measure_reasons",
        "grounds",
        "recorded_by",
        "recorded_at",
        "status",
        "decided_by",
        "decided_at",
        "note",
        "ledger_link",
    )
    actions = ("maintain_selected", "withdraw_selected")
    decision_buttons = (
        ("maintain_selected", _("Maintain the measure…")),
        ("withdraw_selected", _("Withdraw the measure…")),
    )

    @admin.display(description=_("trader"))
    def trader(self, obj: Objection) -> str:
        return _link("admin:traders_trader_change", obj.restriction.trader)

    @admin.display(description=_("measure"))
    def restriction_link(self, obj: Objection) -> str:
        return _link("admin:penalties_restriction_change", obj.restriction)

    @admin.display(description=_("objection deadline"), ordering="restriction__objection_deadline")
    def deadline(self, obj: Objection):
        return obj.restriction.objection_deadline

    @admin.display(description=_("time left"))
    def time_left(self, obj: Objection) -> str:
        return days_left(obj.restriction.objection_deadline) if obj.status == "pending" else "—"

    @admin.action(description=_("Maintain the measures (objection not upheld)…"), permissions=["decide"])
    def maintain_selected(self, request: HttpRequest, queryset):
        def call(*, actor: Actor, row: Objection, note: str) -> Objection:
            return services.objection_decide(actor=actor, objection=row, decision="maintained", note=note)

        return self._decide(
            request,
            queryset,
            action="maintain_selected",
            call=call,
            title=_("Maintain the measures"),
            question=_("Maintain these measures? Each takes effect at its objection deadline."),
            submit=_("Maintain"),
            done=ngettext_lazy("Decided %(count)d objection.", "Decided %(count)d objections.", "count"),
        )

    @admin.action(description=_("Withdraw the measures (objection upheld)…"), permissions=["decide"])
    def withdraw_selected(self, request: HttpRequest, queryset):
        def call(*, actor: Actor, row: Objection, note: str) -> Objection:
            return services.objection_decide(actor=actor, objection=row, decision="withdrawn", note=note)

        return self._decide(
            request,
            queryset,
            action="withdraw_selected",
            call=call,
            title=_("Withdraw the measures"),
            question=_(
                "Uphold these objections and withdraw the measures? They will not take effect, and "
                "the same grounds will not propose them again."
            ),
            submit=_("Withdraw"),
            done=ngettext_lazy("Decided %(count)d objection.", "Decided %(count)d objections.", "count"),
        )


@admin.register(Appeal)
class AppealAdmin(RemedyAdmin):
    jurisdiction_field = "violation__trader__region"
    add_form = AppealFileForm
    decide_perm = "penalties.decide_appeal"
    filed_field = "filed_at"
    subject_type = "appeal"
    list_display = ("id", "trader", "violation", "status", "filed_at", "deadline", "time_left")
    list_filter = ("status", DeadlineFilter)
    list_display_links = ("id",)
    list_select_related = ("violation__trader", "violation__type")
    search_fields = ("violation__trader__uscc", "violation__trader__name")
    autocomplete_fields = ("violation",)
    detail_fields = (
        "violation_link",
        "trader",
        "violation_summary",
        "grounds",
        "filed_by",
        "filed_at",
        "deadline",
        "status",
        "decided_by",
        "decided_at",
        "note",
        "ledger_link",
    )
    actions = ("grant_selected", "refuse_selected")
    decision_buttons = (("grant_selected", _("Grant…")), ("refuse_selected", _("Refuse…")))

    @admin.display(description=_("trader"))
    def trader(self, obj: Appeal) -> str:
        return _link("admin:traders_trader_change", obj.violation.trader)

    @admin.display(description=_("violation"))
    def violation_link(self, obj: Appeal) -> str:
        return _link("admin:penalties_violation_change", obj.violation)

    @admin.display(description=_("the violation"))
    def violation_summary(self, obj: Appeal) -> str:
        v = obj.violation
        return format_html(
            "{} ({}) · {} {} · {} {} · {} {}",
            v.type,
            v.type.get_severity_display(),
            _("occurred on"),
            _when(v.occurred_on),
            _("confirmed by"),
            v.confirmed_by or "—",
            _("on"),
            _when(v.confirmed_at),
        )

    @admin.display(description=_("time left"))
    def time_left(self, obj: Appeal) -> str:
        return days_left(obj.deadline) if obj.status == "pending" else "—"

    @admin.action(description=_("Grant the appeals (overturn the violations)…"), permissions=["decide"])
    def grant_selected(self, request: HttpRequest, queryset):
        def call(*, actor: Actor, row: Appeal, note: str) -> Appeal:
            return services.appeal_decide(actor=actor, appeal=row, decision="granted", note=note)

        return self._decide(
            request,
            queryset,
            action="grant_selected",
            call=call,
            title=_("Grant the appeals"),
            question=_(
                "Grant these appeals? Each violation is overturned, stops counting for the score, "
                "and the trader is reassessed."
            ),
            submit=_("Grant"),
            done=ngettext_lazy("Decided %(count)d appeal.", "Decided %(count)d appeals.", "count"),
        )

    @admin.action(description=_("Refuse the appeals…"), permissions=["decide"])
    def refuse_selected(self, request: HttpRequest, queryset):
        def call(*, actor: Actor, row: Appeal, note: str) -> Appeal:
            return services.appeal_decide(actor=actor, appeal=row, decision="refused", note=note)

        return self._decide(
            request,
            queryset,
            action="refuse_selected",
            call=call,
            title=_("Refuse the appeals"),
            question=_("Refuse these appeals? The violations stand."),
            submit=_("Refuse"),
            done=ngettext_lazy("Decided %(count)d appeal.", "Decided %(count)d appeals.", "count"),
        )


@admin.register(RepairApplication)
class RepairApplicationAdmin(RemedyAdmin):
    jurisdiction_field = "restriction__trader__region"
    add_form = RepairApplyForm
    decide_perm = "penalties.decide_repair"
    filed_field = "filed_at"
    subject_type = "repair"
    list_display = ("id", "trader", "restriction", "status", "filed_at", "waiting")
    list_display_links = ("id",)
    list_select_related = ("restriction__trader",)
    search_fields = ("restriction__trader__uscc", "restriction__trader__name")
    autocomplete_fields = ("restriction",)
    detail_fields = (
        "restriction_link",
        "trader",
        "measure_period",
        "measure_reasons",
        "grounds",
        "filed_by",
        "filed_at",
        "status",
        "decided_by",
        "decided_at",
        "note",
        "ledger_link",
    )
    actions = ("approve_selected", "reject_selected")
    decision_buttons = (("approve_selected", _("Approve…")), ("reject_selected", _("Reject…")))

    @admin.display(description=_("trader"))
    def trader(self, obj: RepairApplication) -> str:
        return _link("admin:traders_trader_change", obj.restriction.trader)

    @admin.display(description=_("measure"))
    def restriction_link(self, obj: RepairApplication) -> str:
        return _link("admin:penalties_restriction_change", obj.restriction)

    @admin.display(description=_("in force"))
    def measure_period(self, obj: RepairApplication) -> str:
        r = obj.restriction
        until = _when(r.ends_at) if r.ends_at else _("until lifted")
        return format_html("{} — {}", _when(r.starts_at), until)

    @admin.display(description=_("waiting"))
    def waiting(self, obj: RepairApplication) -> str:
        if obj.status != "pending":
            return "—"
        days = (timezone.now() - obj.filed_at).days
        return ngettext("%(days)d day", "%(days)d days", days) % {"days": days}

    @admin.action(description=_("Approve the applications (lift the measures)…"), permissions=["decide"])
    def approve_selected(self, request: HttpRequest, queryset):
        def call(*, actor: Actor, row: RepairApplication, note: str) -> RepairApplication:
            return services.repair_decide(actor=actor, application=row, decision="approved", note=note)

        return self._decide(
            request,
            queryset,
            action="approve_selected",
            call=call,
            title=_("Approve credit repair"),
            question=_(
                "Approve these applications? Each measure is lifted now as repaired (a blacklisting "
                "only after the policy's minimum period)."
            ),
            submit=_("Approve"),
            done=ngettext_lazy("Decided %(count)d application.", "Decided %(count)d applications.", "count"),
        )

    @admin.action(description=_("Reject the applications…"), permissions=["decide"])
    def reject_selected(self, request: HttpRequest, queryset):
        def call(*, actor: Actor, row: RepairApplication, note: str) -> RepairApplication:
            return services.repair_decide(actor=actor, application=row, decision="rejected", note=note)

        return self._decide(
            request,
            queryset,
            action="reject_selected",
            call=call,
            title=_("Reject credit repair"),
            question=_("Reject these applications? The measures stay in force."),
            submit=_("Reject"),
            done=ngettext_lazy("Decided %(count)d application.", "Decided %(count)d applications.", "count"),
        )
