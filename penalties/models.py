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


class Policy(models.Model):
    """A versioned rule set. Exactly one is active; an activated policy never changes."""

    version = models.PositiveIntegerField(_("version"), unique=True)
    name = models.CharField(_("name"), max_length=200)
    rules = models.JSONField(_("rules"))
    is_active = models.BooleanField(_("active"), default=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    activated_at = models.DateTimeField(_("activated at"), null=True, blank=True)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("activated by"),
    )

    class Meta:
        ordering = ["-version"]
        verbose_name = _("policy")
        verbose_name_plural = _("policies")
        permissions = [("activate_policy", _("Can activate a policy version"))]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=Q(is_active=True), name="policy_one_active"
            ),
            models.CheckConstraint(
                condition=Q(is_active=False) | Q(activated_at__isnull=False),
                name="policy_active_was_activated",
            ),
        ]

    def __str__(self) -> str:
        return f"v{self.version} {self.name}"

    @property
    def is_frozen(self) -> bool:
        return self.activated_at is not None


class MeasureKind(models.TextChoices):
    WARNING = "warning", _("warning")
    LISTING_RESTRICTED = "listing_restricted", _("listing restricted")
    SUSPENDED = "suspended", _("suspended")
    BLACKLISTED = "blacklisted", _("serious-dishonesty list")


class RestrictionState(models.TextChoices):
    PROPOSED = "proposed", _("proposed")
    ACTIVE = "active", _("active")
    LIFTED = "lifted", _("lifted")
    WITHDRAWN = "withdrawn", _("withdrawn")


class RestrictionBasis(models.TextChoices):
    SCORE = "score", _("score")
    RULE = "rule", _("escalation rule")
    MANUAL = "manual", _("manual")


class LiftedReason(models.TextChoices):
    RECOVERED = "recovered", _("score recovered")
    EXPIRED = "expired", _("period ended")
    REPAIRED = "repaired", _("credit repaired")
    OVERTURNED = "overturned", _("violation overturned")
    SUPERSEDED = "superseded", _("replaced by a heavier measure")
    MANUAL = "manual", _("lifted by a supervisor")


UNLIFTED_STATES = (RestrictionState.PROPOSED, RestrictionState.ACTIVE)


class Restriction(models.Model):
    """An operating restriction with its statement of reasons.

    proposed → active → lifted, or proposed → withdrawn. A proposed measure takes effect
    by itself at its objection deadline.
    """

    Measure = MeasureKind
    State = RestrictionState
    Basis = RestrictionBasis
    LiftedReason = LiftedReason

    trader = models.ForeignKey(Trader, models.PROTECT, related_name="restrictions", verbose_name=_("trader"))
    measure = models.CharField(_("measure"), max_length=20, choices=MeasureKind.choices)
    state = models.CharField(_("state"), max_length=10, choices=RestrictionState.choices)
    basis = models.CharField(_("basis"), max_length=10, choices=RestrictionBasis.choices)
    rule_code = models.CharField(_("rule"), max_length=48, blank=True)
    # Identifies what triggered an automatic measure (e.g. "grave-violation:123"), so one
    # trigger imposes its measure once, even after the measure has ended.
    trigger_key = models.CharField(_("trigger"), max_length=100, blank=True)
    policy_version = models.PositiveIntegerField(_("policy version"), null=True, blank=True)
    reasons = models.JSONField(_("statement of reasons"))
    noticed_at = models.DateTimeField(_("noticed at"))
    objection_deadline = models.DateTimeField(_("objection deadline"), null=True, blank=True)
    duration_days = models.PositiveIntegerField(_("duration (days)"), null=True, blank=True)
    starts_at = models.DateTimeField(_("starts at"), null=True, blank=True)
    ends_at = models.DateTimeField(_("ends at"), null=True, blank=True)
    lifted_at = models.DateTimeField(_("lifted at"), null=True, blank=True)
    lifted_reason = models.CharField(
        _("lifted because"), max_length=12, choices=LiftedReason.choices, blank=True
    )
    lift_note = models.TextField(_("lift note"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-noticed_at", "-id"]
        verbose_name = _("restriction")
        verbose_name_plural = _("restrictions")
        permissions = [
            ("impose_restriction", _("Can impose a measure by hand")),
            ("lift_restriction", _("Can lift a measure by hand")),
            ("withdraw_restriction", _("Can withdraw a proposed measure")),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["trader", "measure"],
                condition=Q(state__in=["proposed", "active"]),
                name="restriction_one_unlifted_per_measure",
            ),
            models.UniqueConstraint(
                fields=["trader", "trigger_key"],
                condition=~Q(trigger_key=""),
                name="restriction_one_per_trigger",
            ),
            models.CheckConstraint(
                condition=Q(measure__in=MeasureKind.values), name="restriction_measure_valid"
            ),
            models.CheckConstraint(
                condition=Q(state__in=RestrictionState.values), name="restriction_state_valid"
            ),
            models.CheckConstraint(
                condition=Q(basis__in=RestrictionBasis.values), name="restriction_basis_valid"
            ),
            models.CheckConstraint(
                condition=Q(state="active", starts_at__isnull=False) | ~Q(state="active"),
                name="restriction_active_has_start",
            ),
            models.CheckConstraint(
                condition=Q(state="lifted", lifted_at__isnull=False) | ~Q(state="lifted"),
                name="restriction_lifted_has_time",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "objection_deadline"], name="restriction_due_start_idx"),
            models.Index(fields=["state", "ends_at"], name="restriction_due_end_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_measure_display()} ({self.get_state_display()})"


class ScoreHistory(models.Model):
    """One row each time a trader's score or grade changes."""

    trader = models.ForeignKey(Trader, models.PROTECT, related_name="score_history", verbose_name=_("trader"))
    at = models.DateTimeField(_("at"))
    as_of = models.DateField(_("as of"))
    score = models.PositiveSmallIntegerField(_("score"))
    grade = models.CharField(_("grade"), max_length=1)
    policy_version = models.PositiveIntegerField(_("policy version"))

    class Meta:
        ordering = ["trader", "at"]
        verbose_name = _("score history")
        verbose_name_plural = _("score history")
        indexes = [models.Index(fields=["trader", "at"], name="scorehistory_trader_at_idx")]

    def __str__(self) -> str:
        return f"{self.score} {self.grade} @ {self.at:%Y-%m-%d %H:%M}"


class RestrictionAck(models.Model):
    """A platform's declaration that it enforced a measure on its shops of the trader."""

    restriction = models.ForeignKey(
        Restriction, models.PROTECT, related_name="acks", verbose_name=_("restriction")
    )
    platform = models.ForeignKey(
        Platform, models.PROTECT, related_name="restriction_acks", verbose_name=_("platform")
    )
    acknowledged_at = models.DateTimeField(_("acknowledged at"))
    enforced_at = models.DateTimeField(_("enforced at"))
    note = models.CharField(_("note"), max_length=500, blank=True)

    class Meta:
        ordering = ["-acknowledged_at"]
        verbose_name = _("acknowledgement")
        verbose_name_plural = _("acknowledgements")
        constraints = [
            models.UniqueConstraint(
                fields=["restriction", "platform"], name="restrictionack_once_per_platform"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.platform_id} ack {self.restriction_id}"


def export_path(instance: Export, filename: str) -> str:
    # Never under a guessable public name: files are served only by the audit download view.
    return f"exports/{instance.created_at:%Y/%m}/{filename}"


class ExportState(models.TextChoices):
    REQUESTED = "requested", _("requested")
    RUNNING = "running", _("running")
    DONE = "done", _("done")
    FAILED = "failed", _("failed")
    EXPIRED = "expired", _("expired")


class ExportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    XLSX = "xlsx", "Excel (XLSX)"
    PDF = "pdf", "PDF"


class Export(models.Model):
    """One report export an auditor asked for: requested → running → done | failed, and
    expired once its file is deleted. Only the requester downloads it."""

    State = ExportState
    Format = ExportFormat

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, related_name="+", verbose_name=_("requested by")
    )
    report = models.CharField(_("report"), max_length=48)
    format = models.CharField(_("format"), max_length=4, choices=ExportFormat.choices)
    filters = models.JSONField(_("filters"), default=dict, blank=True)
    state = models.CharField(
        _("state"), max_length=10, choices=ExportState.choices, default=ExportState.REQUESTED
    )
    rows_done = models.PositiveBigIntegerField(_("rows so far"), default=0)
    rows_total = models.PositiveBigIntegerField(_("rows in all"), null=True, blank=True)
    file = models.FileField(_("file"), upload_to=export_path, max_length=200, blank=True)
    filename = models.CharField(_("file name"), max_length=120, blank=True)
    row_count = models.PositiveBigIntegerField(_("row count"), null=True, blank=True)
    sha256 = models.CharField(_("SHA-256"), max_length=64, blank=True)
    # The requester's jurisdiction when requested ({"national": bool, "regions": [...]});
    # null: national (made before jurisdictions existed).
    scope = models.JSONField(_("jurisdiction"), null=True, blank=True)
    manifest = models.JSONField(_("manifest"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    # How many times the job was handed to a worker: the request's own message, and each
    # time the sweeper queued it again (its worker stopped, or its message was lost). A run
    # works under the attempt it claimed; a run of an earlier attempt changes nothing.
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=1)
    # The job's last sign of life: queued, claimed, or rows written. The sweeper queues a
    # requested or running export again when this stops moving.
    progress_at = models.DateTimeField(_("last progress at"), null=True, blank=True)
    # Headers, labels and dates are written in the requester's language (the worker has none).
    language = models.CharField(_("language"), max_length=16, choices=settings.LANGUAGES, blank=True)
    created_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("export")
        verbose_name_plural = _("exports")
        permissions = [("export_report", _("Can request and download report exports"))]
        constraints = [
            models.CheckConstraint(condition=Q(state__in=ExportState.values), name="export_state_valid"),
            models.CheckConstraint(condition=Q(format__in=ExportFormat.values), name="export_format_valid"),
            models.CheckConstraint(
                condition=~Q(state="done") | (Q(row_count__isnull=False) & ~Q(sha256="")),
                name="export_done_has_digest",
            ),
        ]
        indexes = [
            models.Index(fields=["requested_by", "-created_at"], name="export_requester_idx"),
            models.Index(fields=["state", "expires_at"], name="export_state_expiry_idx"),
            models.Index(
                fields=["progress_at"],
                name="export_unfinished_idx",
                condition=Q(state__in=["requested", "running"]),
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.report}.{self.format} ({self.get_state_display()})"


# --- objections, appeals, credit repair ------------------------------------------------------
# Each is entered by an officer on the trader's behalf and decided by a supervisor; the
# decision moves the measure or the violation through its own service, in one transaction.


class Decided(models.Model):
    """What a supervisor's decision leaves on an objection, an appeal or a repair application."""

    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    note = models.TextField(_("decision note"), blank=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_status_display()}"


class ObjectionStatus(models.TextChoices):
    PENDING = "pending", _("pending decision")
    MAINTAINED = "maintained", _("measure maintained")
    WITHDRAWN = "withdrawn", _("measure withdrawn")


class Objection(Decided):
    """A trader's objection to a proposed measure, recorded before its objection deadline."""

    Status = ObjectionStatus

    restriction = models.ForeignKey(
        Restriction, models.PROTECT, related_name="objections", verbose_name=_("measure")
    )
    grounds = models.TextField(_("grounds"))
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, related_name="+", verbose_name=_("recorded by")
    )
    recorded_at = models.DateTimeField(_("recorded at"))
    status = models.CharField(
        _("status"), max_length=12, choices=ObjectionStatus.choices, default=ObjectionStatus.PENDING
    )

    class Meta:
        ordering = ["-recorded_at", "-id"]
        verbose_name = _("objection")
        verbose_name_plural = _("objections")
        permissions = [("decide_objection", _("Can maintain or withdraw a measure on an objection"))]
        constraints = [
            models.UniqueConstraint(
                fields=["restriction"], condition=Q(status="pending"), name="objection_one_pending"
            ),
            models.CheckConstraint(
                condition=Q(status__in=ObjectionStatus.values), name="objection_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(status="pending") | Q(decided_at__isnull=False), name="objection_decided_has_time"
            ),
        ]
        indexes = [models.Index(fields=["status", "recorded_at"], name="objection_queue_idx")]


class AppealStatus(models.TextChoices):
    PENDING = "pending", _("pending decision")
    GRANTED = "granted", _("granted")
    REFUSED = "refused", _("refused")


class Appeal(Decided):
    """An appeal against a confirmed violation. Pending, it does not suspend the violation."""

    Status = AppealStatus

    violation = models.ForeignKey(
        Violation, models.PROTECT, related_name="appeals", verbose_name=_("violation")
    )
    grounds = models.TextField(_("grounds"))
    filed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, related_name="+", verbose_name=_("entered by")
    )
    filed_at = models.DateTimeField(_("filed at"))
    deadline = models.DateTimeField(_("decide by"))
    status = models.CharField(
        _("status"), max_length=10, choices=AppealStatus.choices, default=AppealStatus.PENDING
    )

    class Meta:
        ordering = ["-filed_at", "-id"]
        verbose_name = _("appeal")
        verbose_name_plural = _("appeals")
        permissions = [("decide_appeal", _("Can grant or refuse an appeal"))]
        constraints = [
            models.UniqueConstraint(
                fields=["violation"], condition=Q(status="pending"), name="appeal_one_pending"
            ),
            models.CheckConstraint(condition=Q(status__in=AppealStatus.values), name="appeal_status_valid"),
            models.CheckConstraint(
                condition=Q(status="pending") | Q(decided_at__isnull=False), name="appeal_decided_has_time"
            ),
        ]
        indexes = [models.Index(fields=["status", "deadline"], name="appeal_queue_idx")]


class RepairStatus(models.TextChoices):
    PENDING = "pending", _("pending decision")
    APPROVED = "approved", _("approved")
    REJECTED = "rejected", _("rejected")


class RepairApplication(Decided):
    """A trader's application to lift an active measure early after rectification."""

    Status = RepairStatus

    restriction = models.ForeignKey(
        Restriction, models.PROTECT, related_name="repair_applications", verbose_name=_("measure")
    )
    grounds = models.TextField(_("rectification done"))
    filed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, related_name="+", verbose_name=_("entered by")
    )
    filed_at = models.DateTimeField(_("filed at"))
    status = models.CharField(
        _("status"), max_length=10, choices=RepairStatus.choices, default=RepairStatus.PENDING
    )

    class Meta:
        ordering = ["-filed_at", "-id"]
        verbose_name = _("credit repair application")
        verbose_name_plural = _("credit repair applications")
        permissions = [("decide_repair", _("Can approve or reject a credit repair application"))]
        constraints = [
            models.UniqueConstraint(
                fields=["restriction"], condition=Q(status="pending"), name="repair_one_pending"
            ),
            models.CheckConstraint(condition=Q(status__in=RepairStatus.values), name="repair_status_valid"),
            models.CheckConstraint(
                condition=Q(status="pending") | Q(decided_at__isnull=False), name="repair_decided_has_time"
            ),
        ]
        indexes = [models.Index(fields=["status", "filed_at"], name="repair_queue_idx")]
