from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from rest_framework_api_key.models import AbstractAPIKey

from traders import uscc as uscc_rules
from traders.regions import region_name


class Platform(models.Model):
    code = models.SlugField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("platform")
        verbose_name_plural = _("platforms")

    def __str__(self) -> str:
        return self.name


class TraderStatus(models.TextChoices):
    """The worst measure in force, or normal."""

    NORMAL = "normal", _("normal")
    WARNING = "warning", _("warning")
    LISTING_RESTRICTED = "listing_restricted", _("listing restricted")
    SUSPENDED = "suspended", _("suspended")
    BLACKLISTED = "blacklisted", _("blacklisted")


class Trader(models.Model):
    class Grade(models.TextChoices):
        A = "A", "A"
        B = "B", "B"
        C = "C", "C"
        D = "D", "D"

    Status = TraderStatus

    class Source(models.TextChoices):
        OFFICER = "officer", _("registered by an officer")
        PLATFORM = "platform", _("declared by a platform")
        IMPORT = "import", _("imported")

    uscc = models.CharField(_("unified social credit code"), max_length=18, unique=True)
    name = models.CharField(_("name"), max_length=200, db_index=True)
    kind = models.CharField(_("entity kind"), max_length=2, editable=False)
    region = models.CharField(_("region code"), max_length=6, editable=False, db_index=True)
    legal_representative = models.CharField(_("legal representative"), max_length=100, blank=True)
    address = models.CharField(_("address"), max_length=300, blank=True)

    score = models.PositiveSmallIntegerField(_("score"), default=1000)
    grade = models.CharField(_("grade"), max_length=1, choices=Grade.choices, default=Grade.A)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.NORMAL)
    assessed_at = models.DateTimeField(_("assessed at"), null=True, blank=True)
    # When the current grade began: a withdrawn score-based measure is not proposed again
    # until the grade changes.
    grade_since = models.DateTimeField(_("grade since"), null=True, blank=True)
    version = models.PositiveIntegerField(_("version"), default=1)
    needs_reassessment = models.BooleanField(_("needs reassessment"), default=False)

    # Early pilot codes that fail the check character register only with an override.
    check_override_reason = models.TextField(_("check character override reason"), blank=True)
    check_override_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("override approved by"),
    )

    source = models.CharField(_("source"), max_length=10, choices=Source.choices, default=Source.OFFICER)
    source_platform = models.ForeignKey(
        Platform, models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("declared by")
    )
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("registered by"),
    )
    created_at = models.DateTimeField(_("registered at"), auto_now_add=True)

    class Meta:
        ordering = ["uscc"]
        verbose_name = _("trader")
        verbose_name_plural = _("traders")
        permissions = [("override_uscc_check", _("Can register a code that fails the check character"))]
        constraints = [
            models.CheckConstraint(condition=Q(score__gte=0, score__lte=1000), name="trader_score_range"),
            models.CheckConstraint(condition=Q(grade__in=["A", "B", "C", "D"]), name="trader_grade_valid"),
            models.CheckConstraint(condition=Q(status__in=TraderStatus.values), name="trader_status_valid"),
            models.CheckConstraint(
                condition=Q(uscc__regex=r"^[0-9A-HJ-NPQRTUWXY]{18}$"), name="trader_uscc_form"
            ),
        ]
        indexes = [
            models.Index(
                fields=["needs_reassessment"], condition=Q(needs_reassessment=True), name="trader_flagged_idx"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.uscc})"

    @property
    def region_name(self) -> str:
        return region_name(self.region)

    @property
    def kind_label(self) -> str:
        return uscc_rules.ENTITY_KINDS.get(self.kind, self.kind)

    @property
    def check_overridden(self) -> bool:
        return bool(self.check_override_reason)


class Shop(models.Model):
    trader = models.ForeignKey(Trader, models.PROTECT, related_name="shops", verbose_name=_("trader"))
    platform = models.ForeignKey(Platform, models.PROTECT, related_name="shops", verbose_name=_("platform"))
    platform_shop_id = models.CharField(_("platform shop id"), max_length=64)
    name = models.CharField(_("name"), max_length=200)
    url = models.URLField(_("url"), max_length=500, blank=True)
    opened_on = models.DateField(_("opened on"), null=True, blank=True)
    closed_on = models.DateField(_("closed on"), null=True, blank=True)
    created_at = models.DateTimeField(_("registered at"), auto_now_add=True)

    class Meta:
        ordering = ["platform", "platform_shop_id"]
        verbose_name = _("shop")
        verbose_name_plural = _("shops")
        constraints = [
            models.UniqueConstraint(fields=["platform", "platform_shop_id"], name="shop_unique_per_platform"),
            models.CheckConstraint(
                condition=Q(closed_on__isnull=True)
                | Q(opened_on__isnull=True)
                | Q(closed_on__gte=models.F("opened_on")),
                name="shop_closed_after_opened",
            ),
        ]
        indexes = [models.Index(fields=["platform_shop_id"], name="shop_platform_shop_id_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.platform_shop_id})"


class ApiKey(AbstractAPIKey):
    """A platform's credential. Only a hash is stored; the key is shown once, at creation."""

    class Scope(models.TextChoices):
        STATUS_READ = "status:read", _("read trader status and the change feed")
        SHOPS_WRITE = "shops:write", _("declare shops and their operators")
        REPORTS_WRITE = "reports:write", _("report suspected violations, acknowledge measures")

    platform = models.ForeignKey(
        Platform, models.PROTECT, related_name="api_keys", verbose_name=_("platform")
    )
    scopes = models.JSONField(_("scopes"), default=list)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )

    class Meta(AbstractAPIKey.Meta):
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class WebhookEndpoint(models.Model):
    """Where a platform wants signed notices of its traders' measures and grades.

    Two secrets during rotation: notices are signed with both, receivers accept either.
    """

    platform = models.ForeignKey(
        Platform, models.PROTECT, related_name="webhook_endpoints", verbose_name=_("platform")
    )
    url = models.URLField(_("url"), max_length=500)
    secret = models.CharField(_("signing secret"), max_length=100)
    previous_secret = models.CharField(_("previous secret"), max_length=100, blank=True)
    events = models.JSONField(_("events"), default=list, help_text=_("empty means every event"))
    is_active = models.BooleanField(_("active"), default=True)
    disabled_at = models.DateTimeField(_("disabled at"), null=True, blank=True)
    disabled_reason = models.CharField(_("disabled because"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["platform", "id"]
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")

    def __str__(self) -> str:
        return self.url


class StaffJurisdiction(models.Model):
    """The traders a staff member may see and act on: region-code prefixes of 2 (province),
    4 (city) or 6 (district) digits, or the whole country.

    Deny by default: a staff member without a row, or with neither `national` nor a prefix,
    sees no trader. A superuser is national without a row. Changed only through
    traders.services.jurisdiction_set, which writes the ledger entry.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        models.CASCADE,
        primary_key=True,
        related_name="jurisdiction",
        verbose_name=_("staff member"),
    )
    national = models.BooleanField(_("national"), default=False, help_text=_("Sees every trader."))
    regions = models.JSONField(
        _("region-code prefixes"),
        default=list,
        blank=True,
        help_text=_("2, 4 or 6 digits of the administrative division code, e.g. 33 or 3301."),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("updated by"),
    )

    class Meta:
        verbose_name = _("staff jurisdiction")
        verbose_name_plural = _("staff jurisdictions")

    def __str__(self) -> str:
        return str(self.user)
