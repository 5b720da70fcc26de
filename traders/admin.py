"""Traders, shops and platforms in the admin. Registrations go through the services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.http import Http404, HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from creditledger.ledger.actors import Actor
from creditledger.ledger.admin import (
    BigTableAdminMixin,
    LedgerEntryAdmin,
    ServiceAdminMixin,
    ServiceForm,
    ledger_changelist_url,
)
from creditledger.ledger.models import LedgerEntry
from traders.jurisdiction import Scope, scope_of
from traders.models import Platform, Shop, StaffJurisdiction, Trader
from traders.regions import PROVINCES
from traders.services import jurisdiction_set, shop_register, trader_register

# The trader page shows this many of the newest ledger entries; the link shows them all.
LEDGER_TRAIL_LIMIT = 50


class JurisdictionAdminMixin:
    """Rows of traders outside the user's jurisdiction do not exist on these pages.

    `jurisdiction_field` is the path from the model to its trader's region code. Lists,
    change, history and delete pages, actions (they run on the list's queryset) and
    autocompletes (they use the remote admin's queryset) all go through get_queryset; the
    choices of a foreign key to a scoped model are narrowed the same way, so a POST with
    another area's id fails validation. Put the mixin first among the bases.
    """

    jurisdiction_field = "trader__region"

    def get_queryset(self, request: HttpRequest):
        return scope_of(request.user).filter(super().get_queryset(request), self.jurisdiction_field)

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        related = db_field.related_model
        field = getattr(self.admin_site._registry.get(related), "jurisdiction_field", None)
        if field is not None and "queryset" not in kwargs:
            kwargs["queryset"] = scope_of(request.user).filter(related._default_manager.all(), field)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def _get_obj_does_not_exist_redirect(self, request: HttpRequest, opts, object_id: str):
        # Django redirects to the index with "doesn't exist"; answer 404 instead, the same
        # for a missing id and for another area's, so guessed ids reveal nothing.
        raise Http404(_("No such %(name)s.") % {"name": opts.verbose_name})


def _ledger_entries_in_scope(request: HttpRequest) -> Q:
    """Entries about the viewer's traders, and those about no trader (policies, platforms)."""
    scope = scope_of(request.user)
    return Q() if scope.national else Q(trader_uscc="") | scope.uscc_q("trader_uscc")


LedgerEntryAdmin.entry_scope = staticmethod(_ledger_entries_in_scope)


class RegionFilter(admin.SimpleListFilter):
    """Province from the code's region digits; any 2-6 digit prefix also works in the URL."""

    title = _("region")
    parameter_name = "region_prefix"
    region_field = "region"

    def lookups(self, request, model_admin):
        return sorted(PROVINCES.items())

    def queryset(self, request, queryset):
        value = (self.value() or "").strip()
        if value.isdigit() and 2 <= len(value) <= 6:
            return queryset.filter(**{f"{self.region_field}__startswith": value})
        return queryset


def search_traders(queryset, term: str, prefix: str = ""):
    """Code (prefix, so autocomplete finds it while typing), name, or a shop's platform id."""
    term = term.strip()
    if not term:
        return queryset
    p = prefix
    shops = Shop.objects.filter(platform_shop_id=term).values("trader_id")
    return queryset.filter(
        Q(**{f"{p}uscc__startswith": term.upper()})
        | Q(**{f"{p}name__icontains": term})
        | Q(**{f"{p}pk__in": shops})
    )


class TraderRegisterForm(ServiceForm):
    # Wider than the column: an over-long code gets the USCC rule's message from the service.
    uscc = forms.CharField(label=_("unified social credit code"), max_length=40)
    check_override_reason = forms.CharField(
        label=_("check character override reason"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "Only for an early pilot code that fails the check character; "
            "a supervisor's decision, recorded on the trader."
        ),
    )

    class Meta:
        model = Trader
        fields = ("uscc", "name", "legal_representative", "address", "check_override_reason")

    def call_service(self, actor: Actor, data: dict[str, Any]) -> Trader:
        return trader_register(
            actor=actor,
            uscc=data["uscc"],
            name=data["name"],
            legal_representative=data.get("legal_representative") or "",
            address=data.get("address") or "",
            check_override_reason=data.get("check_override_reason") or "",
        )


class ShopRegisterForm(ServiceForm):
    # Django 6's default scheme, said now: shop pages are https today.
    url = forms.URLField(label=_("url"), max_length=500, required=False, assume_scheme="https")

    class Meta:
        model = Shop
        fields = ("trader", "platform", "platform_shop_id", "name", "url", "opened_on", "closed_on")

    def call_service(self, actor: Actor, data: dict[str, Any]) -> Shop:
        return shop_register(
            actor=actor,
            trader=data["trader"],
            platform=data["platform"],
            platform_shop_id=data["platform_shop_id"],
            name=data["name"],
            url=data.get("url") or "",
            opened_on=data.get("opened_on"),
            closed_on=data.get("closed_on"),
        )


class ShopInline(admin.TabularInline):
    model = Shop
    fields = ("platform", "platform_shop_id", "name", "url", "opened_on", "closed_on", "created_at")
    readonly_fields = fields
    extra = 0
    show_change_link = True

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("platform")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # shops register through shop_register: see the "add shop" link

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Trader)
class TraderAdmin(JurisdictionAdminMixin, BigTableAdminMixin, ServiceAdminMixin, admin.ModelAdmin):
    add_form = TraderRegisterForm
    jurisdiction_field = "region"
    list_display = ("uscc", "name", "region_display", "grade", "score", "status", "source_display")
    list_display_links = ("uscc", "name")
    list_select_related = ("source_platform",)
    list_filter = ("status", "grade", RegionFilter, "source")
    search_fields = ("uscc", "name", "shops__platform_shop_id")
    search_help_text = _("Code (or its beginning), part of the name, or a platform shop id (exact).")
    ordering = ("uscc",)
    add_fieldsets = (
        (None, {"fields": ("uscc", "name", "legal_representative", "address")}),
        (_("Check character override"), {"fields": ("check_override_reason",)}),
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "uscc",
                    "name",
                    "kind_display",
                    "region_display",
                    "legal_representative",
                    "address",
                    "links",
                )
            },
        ),
        (
            _("Credit"),
            {
                # "credit": the change-form template draws the credit record (breakdown,
                # score history, measures) right after this fieldset.
                "classes": ("credit",),
                "fields": (
                    "score",
                    "grade",
                    "status",
                    "assessed_at",
                    "grade_since",
                    "version",
                    "needs_reassessment",
                ),
            },
        ),
        (
            _("Registration"),
            {
                "fields": (
                    "source",
                    "source_platform",
                    "registered_by",
                    "created_at",
                    "check_override_reason",
                    "check_override_by",
                )
            },
        ),
        (_("Ledger trail"), {"fields": ("ledger_trail",)}),
    )
    inlines = (ShopInline,)

    def get_fieldsets(self, request: HttpRequest, obj: Trader | None = None):
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Trader | None = None):
        if obj is None:
            return ()
        return [name for _title, opts in self.fieldsets for name in opts["fields"]]

    def get_inlines(self, request: HttpRequest, obj: Trader | None):
        return self.inlines if obj is not None else ()

    def get_queryset(self, request: HttpRequest):
        return (
            super()
            .get_queryset(request)
            .select_related("source_platform", "registered_by", "check_override_by")
        )

    def get_search_results(self, request: HttpRequest, queryset, search_term: str):
        return search_traders(queryset, search_term), False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # No service edits a trader: its identity comes from the code, its credit from the
        # violations, and every change must reach the ledger. So the page is for reading.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("region"), ordering="region")
    def region_display(self, obj: Trader) -> str:
        return f"{obj.region_name} ({obj.region})"

    @admin.display(description=_("entity kind"))
    def kind_display(self, obj: Trader) -> str:
        return f"{obj.kind_label} ({obj.kind})"

    @admin.display(description=_("source"), ordering="source")
    def source_display(self, obj: Trader) -> str:
        if obj.source_platform_id:
            return f"{obj.get_source_display()}: {obj.source_platform.name}"
        return obj.get_source_display()

    @admin.display(description=_("see also"))
    def links(self, obj: Trader) -> str:
        request_links = [
            (
                reverse("admin:penalties_violation_changelist") + f"?trader__id__exact={obj.pk}",
                _("violations"),
            ),
            (reverse("admin:penalties_violation_add") + f"?trader={obj.pk}", _("record a violation")),
            (reverse("admin:traders_shop_add") + f"?trader={obj.pk}", _("add a shop")),
            (ledger_changelist_url(trader_uscc=obj.uscc), _("ledger entries")),
        ]
        return format_html_join(" | ", '<a href="{}">{}</a>', request_links)

    @admin.display(description=_("newest entries"))
    def ledger_trail(self, obj: Trader) -> str:
        entries = list(
            LedgerEntry.objects.filter(trader_uscc=obj.uscc)
            .order_by("-seq")
            .only("seq", "at", "actor", "action", "subject_type", "subject_id")[:LEDGER_TRAIL_LIMIT]
        )
        if not entries:
            return _("No ledger entries.")
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    reverse("admin:ledger_ledgerentry_change", args=[entry.seq]),
                    entry.seq,
                    date_format(timezone.localtime(entry.at), "DATETIME_FORMAT"),
                    entry.actor,
                    entry.action,
                    f"{entry.subject_type}:{entry.subject_id}",
                )
                for entry in entries
            ),
        )
        return format_html(
            '<table class="ledger-trail"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th>'
            "<th>{}</th></tr></thead><tbody>{}</tbody></table>"
            '<p><a href="{}">{}</a></p>',
            _("seq"),
            _("at"),
            _("actor"),
            _("action"),
            _("subject"),
            rows,
            ledger_changelist_url(trader_uscc=obj.uscc),
            _("All ledger entries of this trader"),
        )


@admin.register(Shop)
class ShopAdmin(JurisdictionAdminMixin, BigTableAdminMixin, ServiceAdminMixin, admin.ModelAdmin):
    add_form = ShopRegisterForm
    list_display = ("platform_shop_id", "name", "platform", "trader", "opened_on", "closed_on", "created_at")
    list_select_related = ("platform", "trader")
    list_filter = ("platform",)
    search_fields = ("platform_shop_id", "trader__uscc")
    search_help_text = _("A platform shop id, or the operating trader's code (both exact).")
    autocomplete_fields = ("trader",)
    ordering = ("-id",)
    fields = ("trader", "platform", "platform_shop_id", "name", "url", "opened_on", "closed_on")

    def get_fields(self, request: HttpRequest, obj: Shop | None = None):
        return self.fields if obj is None else (*self.fields, "created_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Shop | None = None):
        return () if obj is None else self.get_fields(request, obj)

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("platform", "trader")

    def get_search_results(self, request: HttpRequest, queryset, search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(Q(platform_shop_id=term) | Q(trader__uscc=term.upper())), False

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "platform":
            kwargs["queryset"] = Platform.objects.filter(is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # no service edits a shop; a new declaration is a new row

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Platform)
class PlatformAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "is_active")
    list_filter = ("is_active",)
    search_fields = ("code", "name")

    def get_readonly_fields(self, request: HttpRequest, obj: Platform | None = None):
        # The code is how ledger payloads and API keys name the platform.
        return ("code",) if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # shops, reports and acknowledgements refer to it; deactivate instead


class JurisdictionForm(ServiceForm):
    # Typed as text; the service parses and validates it (and names a bad prefix).
    regions = forms.CharField(
        label=_("region-code prefixes"),
        required=False,
        max_length=500,
        help_text=_(
            "2 (province), 4 (city) or 6 (district) digits of the administrative division code, "
            "separated by spaces or commas, e.g. 3301 3302. Ignored when national is ticked; "
            "neither means the staff member sees no trader."
        ),
    )

    class Meta:
        model = StaffJurisdiction
        fields = ("user", "national", "regions")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "user" in self.fields:
            self.fields["user"].queryset = get_user_model().objects.filter(is_staff=True).order_by("username")
            if self.instance.pk:
                self.fields["user"].disabled = True
        if self.instance.pk:
            self.initial["regions"] = " ".join(self.instance.regions)

    def call_service(self, actor: Actor, data: dict[str, Any]) -> StaffJurisdiction:
        return jurisdiction_set(
            actor=actor,
            user=data.get("user") or self.instance.user,
            national=bool(data.get("national")),
            regions=data.get("regions") or "",
        )


@admin.register(StaffJurisdiction)
class StaffJurisdictionAdmin(ServiceAdminMixin, admin.ModelAdmin):
    """Superusers assign jurisdictions; every change goes through jurisdiction_set (ledger)."""

    add_form = JurisdictionForm
    form = JurisdictionForm
    list_display = ("user", "scope_display", "updated_by", "updated_at")
    list_select_related = ("user", "updated_by")
    list_filter = ("national",)
    search_fields = ("user__username",)
    ordering = ("user__username",)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        kwargs["form"] = JurisdictionForm
        form = admin.ModelAdmin.get_form(self, request, obj, change=change, **kwargs)
        form.request = request
        return form

    def get_readonly_fields(self, request: HttpRequest, obj: StaffJurisdiction | None = None):
        return () if obj is None else ("updated_by", "updated_at")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # clear the prefixes instead: the change is then in the ledger

    @admin.display(description=_("jurisdiction"))
    def scope_display(self, obj: StaffJurisdiction) -> str:
        return Scope(national=obj.national, regions=tuple(obj.regions)).describe()
