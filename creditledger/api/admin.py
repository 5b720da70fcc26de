"""Platform API keys in the admin: supervisors issue and revoke them, through
traders.services (apikey_issue, apikey_revoke), so each is in the ledger.

The full key is shown once, on the page that answers the creation (never stored, never
put in a message or cookie); only its SHA-512 hash is kept. A key is never edited or
deleted: it is revoked, and the row stays as the record of who could call the API.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from rest_framework_api_key.models import APIKey as LibraryAPIKey

from creditledger.ledger.actors import Actor
from creditledger.ledger.admin import ServiceAdminMixin, ServiceForm
from traders.models import ApiKey, Platform
from traders.services import apikey_issue, apikey_revoke

# The library registers its own, platform-less key model; ours replaces it.
if admin.site.is_registered(LibraryAPIKey):
    admin.site.unregister(LibraryAPIKey)


class ApiKeyCreateForm(ServiceForm):
    scopes = forms.MultipleChoiceField(
        label=_("scopes"), choices=ApiKey.Scope.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = ApiKey
        fields = ("name", "platform", "scopes", "expiry_date")
        # The library's fields have no translatable verbose names of their own.
        labels = {"name": _("name"), "expiry_date": _("Expires")}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "platform" in self.fields:  # the view-only page of an issued key has no fields
            self.fields["platform"].queryset = Platform.objects.filter(is_active=True)

    def call_service(self, actor: Actor, data: dict) -> ApiKey:
        key, raw = apikey_issue(
            actor=actor,
            platform=data["platform"],
            name=data["name"],
            scopes=data["scopes"],
            expiry_date=data.get("expiry_date"),
        )
        key.raw_key = raw  # for response_add only: shown once, never stored
        return key


@admin.register(ApiKey)
class ApiKeyAdmin(ServiceAdminMixin, admin.ModelAdmin):
    add_form = ApiKeyCreateForm
    form = ApiKeyCreateForm
    list_display = (
        "prefix",
        "key_name",
        "platform",
        "scope_list",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = ("platform", ("revoked_at", admin.EmptyFieldListFilter))
    list_select_related = ("platform",)
    search_fields = ("prefix", "name", "platform__code", "platform__name")
    actions = ["revoke"]
    view_fields = (
        "prefix",
        "key_name",
        "platform",
        "scope_list",
        "created_at",
        "created_by",
        "expiry_date",
        "last_used_at",
        "revoked_at",
    )

    @admin.display(description=_("name"), ordering="name")
    def key_name(self, obj: ApiKey) -> str:
        return obj.name

    @admin.display(description=_("created at"), ordering="created")
    def created_at(self, obj: ApiKey):
        return obj.created  # the library's field, whose name has no translation

    @admin.display(description=_("scopes"))
    def scope_list(self, obj: ApiKey) -> str:
        return ", ".join(obj.scopes)

    def get_fields(self, request, obj=None):
        return ApiKeyCreateForm.Meta.fields if obj is None else self.view_fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.view_fields

    def has_change_permission(self, request, obj=None) -> bool:
        # An issued key is only viewed; the change permission is what the revoke action needs.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def response_add(self, request, obj: ApiKey, post_url_continue=None):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("API key issued"),
            "api_key": obj,
            "raw_key": obj.raw_key,
        }
        response = TemplateResponse(request, "admin/api/apikey/key_created.html", context)
        add_never_cache_headers(response)
        response["Cache-Control"] += ", no-store"
        return response

    @admin.action(description=_("Revoke the selected keys"), permissions=["change"])
    def revoke(self, request, queryset) -> None:
        revoked = len(apikey_revoke(actor=Actor.for_user(request.user), keys=queryset))
        self.message_user(
            request, ngettext("%d key revoked.", "%d keys revoked.", revoked) % revoked, level="success"
        )


from creditledger.api import admin_webhooks  # noqa: E402, F401
