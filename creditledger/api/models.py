from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from traders.models import ApiKey, Platform, WebhookEndpoint


class IdempotencyRecord(models.Model):
    """The stored answer to a platform's POST with an Idempotency-Key: a repeat with the
    same body gets this response again; the same key with another body is refused."""

    platform = models.ForeignKey(Platform, models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=300)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    api_key = models.ForeignKey(ApiKey, models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["platform", "key"], name="idempotency_key_once_per_platform"),
        ]

    def __str__(self) -> str:
        return f"{self.platform_id}:{self.key}"


class WebhookDelivery(models.Model):
    """One notice (a committed ledger entry) for one endpoint. `webhook-id` is this row's
    msg_id, stable across retries."""

    class State(models.TextChoices):
        PENDING = "pending", _("pending")
        DELIVERED = "delivered", _("delivered")
        FAILED = "failed", _("failed")

    endpoint = models.ForeignKey(
        WebhookEndpoint, models.PROTECT, related_name="deliveries", verbose_name=_("webhook endpoint")
    )
    msg_id = models.CharField("webhook-id", max_length=64, unique=True)
    event = models.CharField(_("event"), max_length=40)
    ledger_seq = models.BigIntegerField(_("ledger sequence number"))
    payload = models.JSONField(_("payload"))
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "ledger_seq", "event"], name="delivery_once_per_entry"
            ),
        ]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="delivery_due_idx")]

    def __str__(self) -> str:
        return f"{self.event} #{self.ledger_seq} → {self.endpoint_id}"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(
        WebhookDelivery, models.CASCADE, related_name="attempt_log", verbose_name=_("webhook delivery")
    )
    at = models.DateTimeField(_("at"))
    status_code = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    latency_ms = models.PositiveIntegerField(_("latency (ms)"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")

    def __str__(self) -> str:
        return f"{self.delivery_id} {self.status_code or self.error}"


class WebhookCursor(models.Model):
    """How far the dispatcher has turned committed ledger entries into deliveries: every
    entry up to `seq` has been looked at. One row (name "ledger")."""

    name = models.CharField(max_length=40, unique=True)
    seq = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.seq}"
