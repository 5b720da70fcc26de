"""Webhook endpoints and deliveries in the admin. Every change goes through
webhook_services: the URL guard, secrets and replays are the services' business."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from creditledger.api import webhooks
from creditledger.api.models import WebhookAttempt, WebhookDelivery
from creditledger.api.webhook_services import (
    delivery_replay,
    describe,
    webhook_endpoint_create,
    webhook_endpoint_update,
    webhook_ping,
    webhook_secret_retire,
    webhook_secret_rotate,
)
from creditledger.exceptions import ApplicationError
from creditledger.ledger.actors import Actor
from creditledger.ledger.admin import BigTableAdminMixin, ReadOnlyAdminMixin, ServiceAdminMixin, ServiceForm
from traders.models import WebhookEndpoint

EVENT_CHOICES = [(event, event) for event in webhooks.EVENTS]


def _secret_hint(secret: str) -> str:
    # Enough to tell two secrets apart on the phone with the platform, not to sign with.
    return f"{secret[:12]}…" if secret else "-"


class _EndpointFields(ServiceForm):
    url = forms.URLField(label=_("url"), max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(
        label=_("events"),
        choices=EVENT_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked means every event."),
    )


class EndpointCreateForm(_EndpointFields):
    class Meta:
        model = WebhookEndpoint
        fields = ("platform", "url", "events", "is_active")

    def call_service(self, actor: Actor, data: dict[str, Any]) -> WebhookEndpoint:
        return webhook_endpoint_create(
            actor=actor,
            platform=data["platform"],
            url=data["url"],
            events=data.get("events") or [],
            is_active=data.get("is_active", True),
        )


class EndpointChangeForm(_EndpointFields):
    class Meta:
        model = WebhookEndpoint
        fields = ("url", "events", "is_active")

    def call_service(self, actor: Actor, data: dict[str, Any]) -> WebhookEndpoint:
        return webhook_endpoint_update(
            actor=actor,
            endpoint=self.instance,
            url=data["url"],
            events=data.get("events") or [],
            is_active=data.get("is_active", False),
        )


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ServiceAdminMixin, admin.ModelAdmin):
    add_form = EndpointCreateForm
    form = EndpointChangeForm
    list_display = ("url", "platform", "is_active", "events_display", "rotating", "disabled_at", "deliveries")
    list_filter = ("is_active", "platform")
    list_select_related = ("platform",)
    search_fields = ("url", "platform__code", "platform__name")
    ordering = ("platform__code", "id")
    actions = ("send_ping", "rotate_secret", "retire_previous_secret")
    add_fieldsets = ((None, {"fields": ("platform", "url", "events", "is_active")}),)
    fieldsets = (
        (None, {"fields": ("platform", "url", "events", "is_active", "disabled_at", "disabled_reason")}),
        (_("Signing"), {"fields": ("secret_hint", "previous_secret_hint")}),
        (None, {"fields": ("created_at", "deliveries")}),
    )
    readonly_fields = (
        "platform",
        "disabled_at",
        "disabled_reason",
        "secret_hint",
        "previous_secret_hint",
        "created_at",
        "deliveries",
    )

    def get_fieldsets(self, request: HttpRequest, obj: WebhookEndpoint | None = None):
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: WebhookEndpoint | None = None):
        return () if obj is None else self.readonly_fields

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # its deliveries and their attempt log stay; switch it off instead

    def response_add(self, request: HttpRequest, obj: WebhookEndpoint, post_url_continue=None):
        return self._secret_page(request, [obj], _("Webhook endpoint created"))

    def _secret_page(self, request: HttpRequest, endpoints: list[WebhookEndpoint], title: str):
        # The one page that shows a whole secret: not in a message (a cookie), not cached.
        context = {**self.admin_site.each_context(request), "opts": self.opts, "title": title}
        context["endpoints"] = endpoints
        response = TemplateResponse(request, "admin/traders/webhookendpoint/secret_shown.html", context)
        add_never_cache_headers(response)
        response["Cache-Control"] += ", no-store"
        return response

    @admin.action(
        description=_("Rotate the signing secret (the old one keeps signing)"), permissions=["change"]
    )
    def rotate_secret(self, request: HttpRequest, queryset):
        actor = Actor.for_user(request.user)
        rotated = [webhook_secret_rotate(actor=actor, endpoint=endpoint) for endpoint in queryset]
        return self._secret_page(request, rotated, _("Signing secrets rotated"))

    @admin.action(
        description=_("End the rotation: stop signing with the previous secret"), permissions=["change"]
    )
    def retire_previous_secret(self, request: HttpRequest, queryset) -> None:
        actor = Actor.for_user(request.user)
        for endpoint in queryset:
            webhook_secret_retire(actor=actor, endpoint=endpoint)
        self.message_user(request, _("The previous secrets no longer sign."), messages.SUCCESS)

    @admin.action(description=_("Send a signed test notice (ping) now"), permissions=["change"])
    def send_ping(self, request: HttpRequest, queryset) -> None:
        actor = Actor.for_user(request.user)
        for endpoint in queryset.select_related("platform"):
            try:
                ping = webhook_ping(actor=actor, endpoint=endpoint)
            except ApplicationError as exc:
                self.message_user(request, f"{endpoint.url}: {exc.message}", messages.ERROR)
                continue
            level = messages.SUCCESS if ping.response.ok else messages.WARNING
            self.message_user(request, f"{endpoint.url}: {describe(ping)} (webhook-id {ping.msg_id})", level)

    @admin.display(description=_("events"))
    def events_display(self, obj: WebhookEndpoint) -> str:
        return ", ".join(obj.events) if obj.events else _("all")

    @admin.display(description=_("rotating"), boolean=True)
    def rotating(self, obj: WebhookEndpoint) -> bool:
        return bool(obj.previous_secret)

    @admin.display(description=_("signing secret"))
    def secret_hint(self, obj: WebhookEndpoint) -> str:
        return _secret_hint(obj.secret)

    @admin.display(description=_("previous secret"))
    def previous_secret_hint(self, obj: WebhookEndpoint) -> str:
        return _secret_hint(obj.previous_secret)

    @admin.display(description=_("deliveries"))
    def deliveries(self, obj: WebhookEndpoint) -> str:
        url = reverse("admin:api_webhookdelivery_changelist") + f"?endpoint__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, _("deliveries"))


class AttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ("at", "status_code", "latency_ms", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(BigTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "event",
        "ledger_seq",
        "platform",
        "endpoint",
        "state",
        "attempts",
        "next_attempt_at",
        "delivered_at",
    )
    list_filter = ("state", "event", "endpoint__platform", "endpoint")
    list_select_related = ("endpoint__platform",)
    search_fields = ("=msg_id",)
    search_help_text = _("A webhook-id (msg_…) or a ledger seq.")
    ordering = ("-id",)
    actions = ("replay",)
    fields = (
        "msg_id",
        "endpoint",
        "event",
        "ledger_entry",
        "state",
        "attempts",
        "next_attempt_at",
        "created_at",
        "delivered_at",
        "payload_display",
    )
    readonly_fields = fields
    inlines = (AttemptInline,)

    def get_search_results(self, request: HttpRequest, queryset, search_term: str):
        term = search_term.strip()
        if term.isdigit():
            return queryset.filter(ledger_seq=int(term)), False
        if term:
            return queryset.filter(msg_id=term), False
        return queryset, False

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("api.change_webhookdelivery")

    @admin.action(description=_("Replay: send again with the same webhook-id"), permissions=["replay"])
    def replay(self, request: HttpRequest, queryset) -> None:
        actor = Actor.for_user(request.user)
        done = 0
        for delivery in queryset.select_related("endpoint"):
            try:
                delivery_replay(actor=actor, delivery=delivery)
            except ApplicationError as exc:
                self.message_user(request, f"#{delivery.pk}: {exc.message}", messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, _("%(n)d deliveries queued again.") % {"n": done}, messages.SUCCESS)

    @admin.display(description=_("platform"), ordering="endpoint__platform__code")
    def platform(self, obj: WebhookDelivery) -> str:
        return obj.endpoint.platform.name

    @admin.display(description=_("ledger entry"))
    def ledger_entry(self, obj: WebhookDelivery) -> str:
        url = reverse("admin:ledger_ledgerentry_change", args=[obj.ledger_seq])
        return format_html('<a href="{}">#{}</a>', url, obj.ledger_seq)

    @admin.display(description=_("payload"))
    def payload_display(self, obj: WebhookDelivery) -> str:
        text = json.dumps(obj.payload, ensure_ascii=False, indent=2, sort_keys=True)
        return format_html('<pre class="wrapped" translate="no">{}</pre>', text)
