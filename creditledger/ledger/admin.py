"""The ledger in the admin: read-only, filterable, cheap to page through a million rows.

Also the admin plumbing that the apps' admins share (both `traders` and `penalties` may
depend on the ledger app, not on each other): a paginator that does not COUNT(*) a big
table, and forms/admins whose "save" is a service call.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar
from urllib.parse import urlencode

from django import forms
from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections, models, router, transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import NoReverseMatch, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from creditledger.exceptions import ApplicationError
from creditledger.ledger.actors import Actor
from creditledger.ledger.models import Checkpoint, LedgerEntry

# --- shared plumbing ----------------------------------------------------------------------


class EstimatedCountPaginator(Paginator):
    """Counts exactly up to `exact_limit` rows and estimates beyond.

    The admin asks the paginator for a count on every list page; COUNT(*) over a million
    ledger rows costs more than the page itself. An unfiltered list takes PostgreSQL's
    table statistics, a filtered one a capped count and, past the cap, the planner's
    estimate. Either way one or two queries, whatever the size of the table.
    """

    exact_limit = 10_000
    estimated = False

    @cached_property
    def count(self) -> int:
        qs = self.object_list
        if not isinstance(qs, models.QuerySet):
            return super().count
        connection = connections[qs.db]
        if connection.vendor == "postgresql" and not qs.query.has_filters():
            estimate = self._table_estimate(connection, qs.model._meta.db_table)
            if estimate > self.exact_limit:
                self.estimated = True
                return estimate
        # A sliced count is COUNT(*) over a LIMITed subquery: it stops at the cap. Without
        # the list's ORDER BY, or the subquery would sort the whole table to find the cap,
        # and of the columns only the key: a per-row annotation the list shows (the review
        # queue's possible duplicates) is not computed for every row counted.
        exact = qs.order_by().values("pk")[: self.exact_limit + 1].count()
        if exact <= self.exact_limit:
            return exact
        self.estimated = True
        if connection.vendor == "postgresql":
            return max(exact, self._plan_estimate(qs))
        return exact

    @staticmethod
    def _table_estimate(connection, table: str) -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [table])
            row = cursor.fetchone()
        # -1 means "never analysed": fall back to counting.
        return int(row[0]) if row and row[0] is not None else -1

    @staticmethod
    def _plan_estimate(qs: models.QuerySet) -> int:
        sql, params = qs.order_by().values("pk").query.sql_with_params()
        with connections[qs.db].cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
        if isinstance(plan, str):
            plan = json.loads(plan)
        return int(plan[0]["Plan"]["Plan Rows"])


class BigTableAdminMixin:
    """List settings for tables that grow without bound."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50


class ServiceForm(forms.ModelForm):
    """A model form whose save is a service call.

    The service runs when the form validates (inside the admin's transaction), so an
    ApplicationError lands on the field it names instead of becoming a 500. The admin sets
    `request` on the form class; see ServiceAdminMixin.
    """

    request: HttpRequest | None = None
    created: models.Model | None = None

    def call_service(self, actor: Actor, data: dict[str, Any]) -> models.Model:
        raise NotImplementedError

    def _post_clean(self) -> None:
        # ModelForm's model validation would repeat the service's rules with other words,
        # and its uniqueness check would see the row the service has just written.
        if self.errors:
            return
        try:
            self.created = self.call_service(Actor.for_user(self.request.user), self.cleaned_data)
        except ApplicationError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)

    def save(self, commit: bool = True) -> models.Model:
        if self.created is None:
            raise ValueError("The form did not validate, so nothing was written.")
        self.instance = self.created
        return self.created

    def save_m2m(self) -> None:
        pass


class ServiceAdminMixin:
    """A ModelAdmin whose add form writes through a service, never through Model.save().

    A POST that shows the form again (a field error, an invalid inline) writes nothing:
    whatever a service wrote while the form validated is rolled back with it.
    """

    add_form: type[ServiceForm]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        if obj is None:
            kwargs["form"] = self.add_form
        form = super().get_form(request, obj, change=change, **kwargs)
        # modelform_factory made a fresh class for this request, so the attribute stays local.
        form.request = request
        return form

    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context=None
    ) -> HttpResponse:
        request._service_form_saved = False
        with transaction.atomic(using=router.db_for_write(self.model)):
            response = super().changeform_view(request, object_id, form_url, extra_context)
            if request.method == "POST" and not request._service_form_saved:
                transaction.set_rollback(True)
        return response

    def save_form(self, request: HttpRequest, form: forms.ModelForm, change: bool) -> Any:
        if isinstance(form, ServiceForm):
            return form.save(commit=False)
        # A change form: recorded facts are read-only, so there is nothing to take from it.
        return form.instance

    def save_model(self, request: HttpRequest, obj: Any, form: forms.ModelForm, change: bool) -> None:
        # The service has written the row (add); a change form has nothing to write.
        request._service_form_saved = True

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets, change: bool) -> None:
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def save_formset(self, request: HttpRequest, form, formset, change: bool) -> None:
        # Inlines are read-only unless the admin says otherwise; never Model.save() them.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []


class ReadOnlyAdminMixin:
    """Nothing can be added, changed or deleted here; viewing needs the view permission."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- the ledger ---------------------------------------------------------------------------

KNOWN_ACTIONS = [
    "trader.registered",
    "trader.status_changed",
    "shop.registered",
    "shop.updated",
    "violation.recorded",
    "violation.confirmed",
    "violation.rejected",
    "violation.overturned",
    "evidence.attached",
    "appeal.filed",
    "appeal.decided",
    "objection.recorded",
    "objection.decided",
    "repair.applied",
    "repair.decided",
    "score.changed",
    "restriction.proposed",
    "restriction.applied",
    "restriction.withdrawn",
    "restriction.lifted",
    "restriction.acknowledged",
    "policy.activated",
    # Staff two-factor sign-in (creditledger/accounts/services.py).
    "staff.otp_enrolment_started",
    "staff.otp_enrolled",
    "staff.backup_codes_issued",
    "staff.otp_verified",
    "staff.otp_failed",
    "staff.otp_reset",
    "jurisdiction.set",
    "staff.signed_in",
    "staff.sign_in_failed",
    "staff.locked_out",
    "staff.signed_out",
    "staff.unlocked",
    "admin.logged",
    # Admin actions outside the add and change forms (issue #6).
    "apikey.issued",
    "apikey.revoked",
    "webhook.secret_rotated",
    "webhook.secret_retired",
    "webhook.delivery_replayed",
    "export.requested",
    # Witnesses of the checkpoints (creditledger/ledger/witness_services.py).
    "witness.registered",
    "witness.retired",
]

# subject_type -> admin URL name of the object it names, for links from an entry.
SUBJECT_ADMIN_URLS = {
    "trader": "admin:traders_trader_change",
    "shop": "admin:traders_shop_change",
    "platform": "admin:traders_platform_change",
    "violation": "admin:penalties_violation_change",
    "evidence": "admin:penalties_evidence_change",
    "restriction": "admin:penalties_restriction_change",
    "policy": "admin:penalties_policy_change",
    "user": "admin:auth_user_change",
    "webhookendpoint": "admin:traders_webhookendpoint_change",
    "webhookdelivery": "admin:api_webhookdelivery_change",
    "witness": "admin:ledger_witness_change",
}


class ActionFilter(admin.SimpleListFilter):
    """A fixed list: the distinct actions of a million rows are not worth a query per page."""

    title = _("action")
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return [(action, action) for action in KNOWN_ACTIONS]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        # "violation." selects the whole family.
        if value.endswith("."):
            return queryset.filter(action__startswith=value)
        return queryset.filter(action=value)


class ActorKindFilter(admin.SimpleListFilter):
    title = _("actor kind")
    parameter_name = "actor_kind"

    def lookups(self, request, model_admin):
        return [
            ("user", _("staff user")),
            ("apikey", _("platform API key")),
            ("system", _("background task")),
            ("client", _("client not signed in")),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value in {"user", "apikey", "system", "client"}:
            return queryset.filter(actor__startswith=f"{value}:")
        return queryset


@admin.register(LedgerEntry)
class LedgerEntryAdmin(BigTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("seq", "at", "actor", "action", "subject", "trader_link")
    list_display_links = ("seq",)
    list_filter = (ActionFilter, ActorKindFilter, ("at", admin.DateFieldListFilter))
    # Exact only (see get_search_results); the box also takes an actor ("user:12") or a seq.
    search_fields = ("=trader_uscc",)
    search_help_text = _("A trader's code (exact), an actor such as user:12, or a sequence number.")
    ordering = ("-seq",)
    list_per_page = 100
    fields = (
        "seq",
        "at",
        "actor",
        "action",
        "subject",
        "trader_link",
        "body_display",
        "prev_hash",
        "hash",
    )
    readonly_fields = fields
    # request -> a filter for the entries the viewer may see. Set by the traders app (staff
    # jurisdictions by region), which the ledger app may not import; None shows everything.
    entry_scope: ClassVar[Callable[[HttpRequest], models.Q] | None] = None

    def get_queryset(self, request: HttpRequest):
        qs = super().get_queryset(request)
        if self.entry_scope is not None:
            qs = qs.filter(self.entry_scope(request))
        match = request.resolver_match
        if match and match.url_name == "ledger_ledgerentry_changelist":
            # The list shows none of the body; don't ship 100 bodies to draw it.
            qs = qs.defer("body", "payload")
        return qs

    def get_search_results(self, request: HttpRequest, queryset, search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        if ":" in term:
            return queryset.filter(actor=term), False
        if term.isdigit() and len(term) < 18:
            return queryset.filter(seq=int(term)), False
        # Exact and case-normalised, so the trader_uscc index answers it.
        return queryset.filter(trader_uscc=term.upper()), False

    def _get_obj_does_not_exist_redirect(self, request: HttpRequest, opts, object_id: str):
        # A 404 for a seq that does not exist or is about a trader the viewer may not see.
        raise Http404(_("No such ledger entry."))

    @admin.display(description=_("subject"))
    def subject(self, obj: LedgerEntry) -> str:
        label = f"{obj.subject_type}:{obj.subject_id}"
        url_name = SUBJECT_ADMIN_URLS.get(obj.subject_type)
        if url_name and obj.subject_id.isdigit():
            try:
                return format_html('<a href="{}">{}</a>', reverse(url_name, args=[obj.subject_id]), label)
            except NoReverseMatch:
                pass
        return label

    @admin.display(description=_("trader"), ordering="trader_uscc")
    def trader_link(self, obj: LedgerEntry) -> str:
        if not obj.trader_uscc:
            return "-"
        return format_html(
            '<a href="{}">{}</a>', ledger_changelist_url(trader_uscc=obj.trader_uscc), obj.trader_uscc
        )

    @admin.display(description=_("hashed body (canonical JSON)"))
    def body_display(self, obj: LedgerEntry) -> str:
        return format_html('<pre class="wrapped" translate="no">{}</pre>', obj.body_pretty)


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("seq", "at", "hash", "key_id", "origin", "cosigned_by")
    list_filter = (("at", admin.DateFieldListFilter),)
    search_fields = ("=seq", "=hash")
    ordering = ("-seq",)
    show_full_result_count = False
    fields = ("seq", "at", "hash", "origin", "key_id", "note_display", "cosigned_by")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).prefetch_related("cosignatures__witness")

    @admin.display(description=_("cosigned by"))
    def cosigned_by(self, obj: Checkpoint) -> str:
        """The witnesses whose cosignature was accepted (checked when posted; verify_ledger
        checks them again, against the entries)."""
        names = sorted(str(c.witness) for c in obj.cosignatures.all())
        return ", ".join(names) or "—"

    @admin.display(description=_("signed note"))
    def note_display(self, obj: Checkpoint) -> str:
        return format_html('<pre class="wrapped" translate="no">{}</pre>', obj.note)


def ledger_changelist_url(**params: str) -> str:
    """The ledger list filtered by exact column values (e.g. trader_uscc=...)."""
    return reverse("admin:ledger_ledgerentry_changelist") + "?" + urlencode(params)


__all__ = [
    "BigTableAdminMixin",
    "EstimatedCountPaginator",
    "ReadOnlyAdminMixin",
    "ServiceAdminMixin",
    "ServiceForm",
    "ledger_changelist_url",
]

from creditledger.ledger import admin_witnesses  # noqa: E402, F401  (registers Witness, Cosignature)
