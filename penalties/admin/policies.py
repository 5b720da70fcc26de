"""Policy versions in the admin.

A version is never edited in place: a supervisor drafts a new one (policy_create, the
rules as JSON, pre-filled from the active version or from the one it starts from) and
activates it (policy_activate) after a confirmation page that shows what changes.
"""

from __future__ import annotations

import difflib
from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from creditledger.exceptions import ApplicationError
from creditledger.ledger.actors import Actor
from creditledger.ledger.admin import ServiceAdminMixin, ledger_changelist_url
from penalties import services
from penalties.forms import PolicyDraftForm, pretty_json
from penalties.models import Policy


@admin.register(Policy)
class PolicyAdmin(ServiceAdminMixin, admin.ModelAdmin):
    add_form = PolicyDraftForm
    list_display = (
        "version",
        "name",
        "state_display",
        "created_at",
        "created_by",
        "activated_at",
        "activated_by",
    )
    list_display_links = ("version", "name")
    list_select_related = ("created_by", "activated_by")
    list_filter = ("is_active",)
    ordering = ("-version",)
    actions = ("activate_selected",)
    add_fieldsets = ((None, {"fields": ("name", "rules")}),)
    fieldsets = (
        (None, {"fields": ("version", "name", "state_display")}),
        (
            _("Record"),
            {"fields": ("created_at", "created_by", "activated_at", "activated_by", "ledger_link")},
        ),
        (_("Rules"), {"fields": ("rules_display",)}),
    )

    def get_fieldsets(self, request: HttpRequest, obj: Policy | None = None):
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Policy | None = None):
        if obj is None:
            return ()
        return [name for _title, opts in self.fieldsets for name in opts["fields"]]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("created_by", "activated_by")

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        # A draft starts from the version named by ?from=, else from the active one.
        source = None
        start = request.GET.get("from", "")
        if start.isdigit():
            source = Policy.objects.filter(pk=int(start)).first()
        if source is None:
            source = Policy.objects.filter(is_active=True).first()
        if source is None:
            return {}
        return {"rules": source.rules}

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        obj = self.get_object(request, object_id)
        extra_context = {
            **(extra_context or {}),
            "can_activate": obj is not None and not obj.is_frozen and self.has_activate_permission(request),
            "can_draft": obj is not None and self.has_add_permission(request),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    # --- permissions ---------------------------------------------------------------------

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Activated versions are frozen, and there is no service that edits a draft: a
        # change is a new draft (the "new draft from this version" button).
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # restrictions and score history name the version they were made under

    def has_activate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("penalties.activate_policy")

    # --- actions -------------------------------------------------------------------------

    @admin.action(description=_("Activate the selected version…"), permissions=["activate"])
    def activate_selected(self, request: HttpRequest, queryset) -> TemplateResponse | None:
        chosen = list(queryset.order_by("version")[:2])
        if len(chosen) != 1:
            self.message_user(
                request, _("Select exactly one version to activate; nothing was changed."), messages.ERROR
            )
            return None
        policy = chosen[0]
        if request.POST.get("post") == "yes":
            try:
                services.policy_activate(actor=Actor.for_user(request.user), policy=policy)
            except ApplicationError as exc:
                self.message_user(
                    request,
                    _("Version %(version)d: %(error)s") % {"version": policy.version, "error": exc.message},
                    messages.ERROR,
                )
            else:
                self.message_user(
                    request,
                    _("Version %(version)d is active; every trader will be reassessed under it.")
                    % {"version": policy.version},
                    messages.SUCCESS,
                )
            return None
        current = Policy.objects.filter(is_active=True).first()
        diff = ""
        if current is not None:
            diff = "\n".join(
                difflib.unified_diff(
                    pretty_json(current.rules).splitlines(),
                    pretty_json(policy.rules).splitlines(),
                    fromfile=f"v{current.version}",
                    tofile=f"v{policy.version}",
                    lineterm="",
                )
            )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Activate policy version %(version)d") % {"version": policy.version},
            "opts": self.opts,
            "policy": policy,
            "current": current,
            "diff": diff,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/penalties/policy/activate_confirmation.html", context)

    # --- display -------------------------------------------------------------------------

    @admin.display(description=_("state"), ordering="-is_active")
    def state_display(self, obj: Policy) -> str:
        if obj.is_active:
            return _("active")
        if obj.is_frozen:
            return _("retired")
        return _("draft")

    @admin.display(description=_("rules"))
    def rules_display(self, obj: Policy) -> str:
        return format_html('<pre class="policy-rules" translate="no">{}</pre>', pretty_json(obj.rules))

    @admin.display(description=_("ledger"))
    def ledger_link(self, obj: Policy) -> str:
        if not obj.is_frozen:
            return "-"
        return format_html(
            '<a href="{}">{}</a>',
            ledger_changelist_url(subject_type="policy", subject_id=str(obj.pk)),
            _("activation entry"),
        )
