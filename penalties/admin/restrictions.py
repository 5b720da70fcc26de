"""Operating restrictions in the admin: read-only records, changed only through the services.

A supervisor imposes a measure (the add page), withdraws a proposed one after an upheld
objection, or lifts one; each with a stated reason, each row in its own transaction.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from creditledger.ledger.admin import BigTableAdminMixin, ServiceAdminMixin, ledger_changelist_url
from penalties import services
from penalties.admin.display import render_reasons
from penalties.admin.rowactions import RowActionsMixin
from penalties.forms import LiftForm, RestrictionImposeForm, WithdrawForm
from penalties.models import Restriction
from traders.admin import JurisdictionAdminMixin, search_traders

State = Restriction.State


@admin.register(Restriction)
class RestrictionAdmin(
    JurisdictionAdminMixin, BigTableAdminMixin, ServiceAdminMixin, RowActionsMixin, admin.ModelAdmin
):
    add_form = RestrictionImposeForm
    list_display = (
        "id",
        "trader",
        "measure",
        "state",
        "basis",
        "rule_code",
        "noticed_at",
        "objection_deadline",
        "starts_at",
        "ends_at",
    )
    list_display_links = ("id", "measure")
    list_select_related = ("trader",)
    list_filter = ("state", "measure", "basis")
    search_fields = ("trader__uscc", "trader__name")
    search_help_text = _("The trader's code (or its beginning) or part of its name.")
    ordering = ("-id",)
    autocomplete_fields = ("trader",)
    actions = ("withdraw_selected", "lift_selected")
    action_select_related = ("trader",)
    too_many = _("Select at most %(limit)d measures at a time; nothing was changed.")
    add_fieldsets = ((None, {"fields": RestrictionImposeForm.Meta.fields}),)
    fieldsets = (
        (None, {"fields": ("trader", "measure", "state", "basis", "rule_code", "policy_version")}),
        (_("Statement of reasons"), {"fields": ("reasons_display",)}),
        (
            _("Dates"),
            {
                "fields": (
                    "noticed_at",
                    "objection_deadline",
                    "duration_days",
                    "starts_at",
                    "ends_at",
                    "lifted_at",
                    "lifted_reason",
                    "lift_note",
                )
            },
        ),
        (_("Record"), {"fields": ("created_by", "created_at", "trigger_key", "ledger_link")}),
    )

    def get_fieldsets(self, request: HttpRequest, obj: Restriction | None = None):
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Restriction | None = None):
        if obj is None:
            return ()
        return [name for _title, opts in self.fieldsets for name in opts["fields"]]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("trader", "created_by")

    def get_search_results(self, request: HttpRequest, queryset, search_term: str):
        return search_traders(queryset, search_term, prefix="trader__"), False

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        return {key: value for key, value in initial.items() if key in ("trader", "measure")}

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        obj = self.get_object(request, object_id)
        buttons = []
        if obj is not None and obj.state == State.PROPOSED and self.has_withdraw_permission(request):
            buttons.append(("withdraw_selected", _("Withdraw…")))
        if (
            obj is not None
            and obj.state in (State.PROPOSED, State.ACTIVE)
            and self.has_lift_permission(request)
        ):
            buttons.append(("lift_selected", _("Lift…")))
        extra_context = {**(extra_context or {}), "restriction_buttons": buttons}
        return super().change_view(request, object_id, form_url, extra_context)

    # --- permissions ---------------------------------------------------------------------

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Adding is imposing: the roles hold "impose", never the bare model "add".
        return request.user.has_perm("penalties.impose_restriction")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a measure moves only through the services (actions below)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_withdraw_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("penalties.withdraw_restriction")

    def has_lift_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("penalties.lift_restriction")

    # --- actions -------------------------------------------------------------------------

    def row_label(self, row: Restriction) -> str:
        return _("Measure #%(id)d (%(measure)s, %(trader)s)") % {
            "id": row.pk,
            "measure": row.get_measure_display(),
            "trader": row.trader,
        }

    def _confirm_page(self, request: HttpRequest, rows, form, action: str, title, question, submit):
        return self.confirmation_page(
            request,
            "admin/penalties/restriction/action_confirmation.html",
            rows=rows,
            form=form,
            action=action,
            title=title,
            question=question,
            submit_label=submit,
        )

    @admin.action(description=_("Withdraw selected proposed measures…"), permissions=["withdraw"])
    def withdraw_selected(self, request: HttpRequest, queryset) -> TemplateResponse | None:
        """After an upheld objection. Asks for the note first, then withdraws each row."""
        rows = self.selected_rows(request, queryset)
        if rows is None:
            return None
        form = self.note_form(request, WithdrawForm)
        if form.is_valid():
            note = form.cleaned_data["note"]
            self.run_each(
                request,
                rows,
                lambda actor, row: services.restriction_withdraw(actor=actor, restriction=row, note=note),
                ngettext_lazy("Withdrew %(count)d measure.", "Withdrew %(count)d measures.", "count"),
            )
            return None
        return self._confirm_page(
            request,
            rows,
            form,
            "withdraw_selected",
            _("Withdraw measures"),
            _(
                "Withdraw these proposed measures? They will not take effect, and the same "
                "grounds will not propose them again."
            ),
            _("Withdraw"),
        )

    @admin.action(description=_("Lift selected measures…"), permissions=["lift"])
    def lift_selected(self, request: HttpRequest, queryset) -> TemplateResponse | None:
        rows = self.selected_rows(request, queryset)
        if rows is None:
            return None
        form = self.note_form(request, LiftForm)
        if form.is_valid():
            note, reason = form.cleaned_data["note"], form.cleaned_data["reason"]
            self.run_each(
                request,
                rows,
                lambda actor, row: services.restriction_lift(
                    actor=actor, restriction=row, note=note, reason=reason
                ),
                ngettext_lazy("Lifted %(count)d measure.", "Lifted %(count)d measures.", "count"),
            )
            return None
        return self._confirm_page(
            request,
            rows,
            form,
            "lift_selected",
            _("Lift measures"),
            _("Lift these measures? They end now, and the traders' status is recomputed."),
            _("Lift"),
        )

    # --- display -------------------------------------------------------------------------

    @admin.display(description=_("statement of reasons"))
    def reasons_display(self, obj: Restriction) -> str:
        return render_reasons(obj)

    @admin.display(description=_("ledger"))
    def ledger_link(self, obj: Restriction) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            ledger_changelist_url(subject_type="restriction", subject_id=str(obj.pk)),
            _("entries for this measure"),
        )
