from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from traders.models import Platform, Shop, Trader


class Category(models.TextChoices):
    COUNTERFEIT = "counterfeit", _("counterfeit goods")
    SUBSTANDARD = "substandard", _("substandard or unsafe goods")
    FALSE_ADVERTISING = "false_advertising", _("false or exaggerated advertising")
    PARALLEL_TRADING = "parallel_trading", _("parallel trading / smuggling")
    UNLICENSED = "unlicensed", _("unlicensed operation")
    CONSUMER_RIGHTS = "consumer_rights", _("consumer rights")
    OBSTRUCTION = "obstruction", _("obstructing supervision")


class Severity(models.TextChoices):
    MINOR = "minor", _("minor")
    GENERAL = "general", _("general")
    SERIOUS = "serious", _("serious")
    GRAVE = "grave", _("grave")


# Deciding a serious or grave violation needs the supervisor's permission and four eyes.
HEAVY_SEVERITIES = frozenset({Severity.SERIOUS, Severity.GRAVE})


class ViolationType(models.Model):
    code = models.SlugField(_("code"), max_length=48, unique=True)
    name = models.CharField(_("name"), max_length=200)
    category = models.CharField(_("category"), max_length=24, choices=Category.choices)
    severity = models.CharField(_("severity"), max_length=10, choices=Severity.choices)
    points = models.PositiveIntegerField(_("points"))
    validity_days = models.PositiveIntegerField(_("validity (days)"))
    legal_basis = models.TextField(_("legal basis"))
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["category", "code"]
        verbose_name = _("violation type")
        verbose_name_plural = _("violation types")
        constraints = [
            models.CheckConstraint(condition=Q(points__gte=0), name="violationtype_points_nonnegative"),
            models.CheckConstraint(condition=Q(validity_days__gt=0), name="violationtype_validity_positive"),
            models.CheckConstraint(
                condition=Q(category__in=Category.values), name="violationtype_category_valid"
            ),
            models.CheckConstraint(
                condition=Q(severity__in=Severity.values), name="violationtype_severity_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ViolationStatus(models.TextChoices):
    PENDING = "pending", _("pending review")
    CONFIRMED = "confirmed", _("confirmed")
    REJECTED = "rejected", _("rejected")
    OVERTURNED = "overturned", _("overturned on appeal")


class ViolationSource(models.TextChoices):
    INSPECTION = "inspection", _("inspection")
    SAMPLING = "sampling", _("sampling")
    COMPLAINT = "complaint", _("complaint")
    PLATFORM_REPORT = "platform_report", _("platform report")
    REFERRAL = "referral", _("referral")


class Violation(models.Model):
    Status = ViolationStatus
    Source = ViolationSource

    # The only moves a violation's status may make.
    TRANSITIONS = {
        Status.PENDING: {Status.CONFIRMED, Status.REJECTED},
        Status.CONFIRMED: {Status.OVERTURNED},
        Status.REJECTED: set(),
        Status.OVERTURNED: set(),
    }

    trader = models.ForeignKey(Trader, models.PROTECT, related_name="violations", verbose_name=_("trader"))
    shop = models.ForeignKey(
        Shop, models.PROTECT, null=True, blank=True, related_name="violations", verbose_name=_("shop")
    )
    type = models.ForeignKey(
        ViolationType, models.PROTECT, related_name="violations", verbose_name=_("violation type")
    )
    occurred_on = models.DateField(_("occurred on"))
    source = models.CharField(_("source"), max_length=20, choices=Source.choices)
    reporting_platform = models.ForeignKey(
        Platform,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("reporting platform"),
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    recorded_at = models.DateTimeField(_("recorded at"), auto_now_add=True)
    description = models.TextField(_("description"))
    goods_value = models.DecimalField(
        _("goods value (CNY)"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_note = models.TextField(_("decision note"), blank=True)

    class Meta:
        ordering = ["-occurred_on", "-id"]
        verbose_name = _("violation")
        verbose_name_plural = _("violations")
        permissions = [
            ("confirm_violation", _("Can confirm or reject minor and general violations")),
            ("confirm_heavy_violation", _("Can confirm or reject serious and grave violations")),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ViolationStatus.values), name="violation_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(source__in=ViolationSource.values), name="violation_source_valid"
            ),
            models.CheckConstraint(
                condition=Q(status="pending") | Q(decided_at__isnull=False), name="violation_decided_has_time"
            ),
            models.CheckConstraint(
                condition=Q(goods_value__isnull=True) | Q(goods_value__gte=0),
                name="violation_goods_value_nonnegative",
            ),
        ]
        indexes = [
            models.Index(fields=["trader", "status", "occurred_on"], name="violation_trader_status_idx"),
            models.Index(fields=["status", "recorded_at"], name="violation_queue_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.type} @ {self.occurred_on}"

    @property
    def confirmed_by(self):
        return self.decided_by if self.status in (self.Status.CONFIRMED, self.Status.OVERTURNED) else None

    @property
    def confirmed_at(self):
        return self.decided_at if self.status in (self.Status.CONFIRMED, self.Status.OVERTURNED) else None


def evidence_path(instance: Evidence, filename: str) -> str:
    # Content-addressed: the stored name is the digest, so a file cannot be swapped in place.
    return f"evidence/{instance.sha256[:2]}/{instance.sha256}"


class Evidence(models.Model):
    violation = models.ForeignKey(
        Violation, models.PROTECT, related_name="evidence", verbose_name=_("violation")
    )
    file = models.FileField(_("file"), upload_to=evidence_path, max_length=200)
    original_name = models.CharField(_("original name"), max_length=255)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    size = models.PositiveBigIntegerField(_("size (bytes)"))
    content_type = models.CharField(_("content type"), max_length=100)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("uploaded by"),
    )
    uploaded_via = models.ForeignKey(
        Platform,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("uploaded via platform"),
    )
    uploaded_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)

    class Meta:
        ordering = ["uploaded_at", "id"]
        verbose_name = _("evidence")
        verbose_name_plural = _("evidence")
        constraints = [
            models.UniqueConstraint(fields=["violation", "sha256"], name="evidence_unique_per_violation"),
            models.CheckConstraint(condition=Q(sha256__regex=r"^[0-9a-f]{64}$"), name="evidence_sha256_form"),
        ]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.sha256[:12]})"
