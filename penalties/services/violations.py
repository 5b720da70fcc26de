"""Writes for violations and evidence. Each function is one transaction with its ledger entry."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import mimetypes
import tempfile
from decimal import Decimal, InvalidOperation
from typing import IO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from creditledger.exceptions import ApplicationError, PermissionDenied, require_perm
from creditledger.ledger.actors import Actor
from creditledger.ledger.services import ledger_append
from creditledger.locks import advisory_xact_lock, try_advisory_xact_lock
from creditledger.text import check_text
from penalties import evidence_types
from penalties.models import HEAVY_SEVERITIES, Evidence, Violation, ViolationType, evidence_path
from traders.jurisdiction import require_jurisdiction
from traders.models import Platform, Shop, Trader

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
# Publishing runs after commit inside a request: give up fast, the sweeper covers for it.
PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


def _flag_for_reassessment(trader_id: int) -> None:
    """A durable flag in the same transaction, and a task once it commits.

    A lost task message (broker down, worker killed) delays a measure, never loses it:
    the sweeper picks up flagged traders every minute.
    """
    Trader.objects.filter(pk=trader_id, needs_reassessment=False).update(needs_reassessment=True)
    # A lambda, not functools.partial: Django names the callback when logging its failure.
    transaction.on_commit(lambda: enqueue_reassessment(trader_id), robust=True)


def enqueue_reassessment(trader_id: int) -> None:
    from penalties.tasks import reassess_trader  # tasks import services: import late

    reassess_trader.apply_async(args=[trader_id], retry_policy=PUBLISH_RETRY)


def _clean_goods_value(value) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise ApplicationError(
            _("Enter an amount in CNY."), field="goods_value", code="invalid", value=str(value)
        ) from exc
    if not amount.is_finite() or amount < 0 or amount >= Decimal("1e12"):
        raise ApplicationError(
            _("The goods value must be between 0 and 999,999,999,999.99 CNY."),
            field="goods_value",
            code="out_of_range",
            value=str(value),
        )
    return amount.quantize(Decimal("0.01"))


def violation_payload(violation: Violation) -> dict:
    vtype = violation.type
    return {
        "violation": violation.pk,
        "trader": violation.trader.uscc,
        "shop": (
            {"platform": violation.shop.platform.code, "platform_shop_id": violation.shop.platform_shop_id}
            if violation.shop_id
            else None
        ),
        "type": vtype.code,
        "category": vtype.category,
        "severity": vtype.severity,
        "points": vtype.points,
        "validity_days": vtype.validity_days,
        "occurred_on": violation.occurred_on,
        "source": violation.source,
        "reporting_platform": violation.reporting_platform.code if violation.reporting_platform_id else None,
        "recorded_by": violation.recorded_by_id,
        "description": violation.description,
        "goods_value": violation.goods_value,
        "status": violation.status,
    }


def earliest_occurrence(today: dt.date) -> dt.date:
    """The oldest occurred_on a new record may have: VIOLATION_MAX_AGE_YEARS before today
    (29 February falls back to the 28th)."""
    years = settings.VIOLATION_MAX_AGE_YEARS
    try:
        return today.replace(year=today.year - years)
    except ValueError:
        return today.replace(year=today.year - years, day=28)


@transaction.atomic
def violation_record(
    *,
    actor: Actor,
    trader: Trader,
    type: ViolationType,
    occurred_on: dt.date,
    source: str,
    description: str,
    shop: Shop | None = None,
    goods_value=None,
    reporting_platform: Platform | None = None,
) -> Violation:
    """Record a violation as pending review. Only a confirmed violation counts for the score."""
    if actor.kind == "user":
        require_perm(actor, "penalties.add_violation", _("You may not record violations."))
    require_jurisdiction(actor, trader.region, field="trader")
    if actor.kind == "apikey":
        # A platform reports only as itself and only into the review queue.
        source = Violation.Source.PLATFORM_REPORT
        reporting_platform = actor.platform
    if not isinstance(occurred_on, dt.date) or isinstance(occurred_on, dt.datetime):
        raise ApplicationError(
            _("Enter a date."), field="occurred_on", code="invalid", value=str(occurred_on)
        )
    today = timezone.localdate()
    if occurred_on > today:
        raise ApplicationError(
            _("The date cannot be in the future (today is %(today)s).")
            % {"today": date_format(today, "SHORT_DATE_FORMAT")},
            field="occurred_on",
            code="future_date",
            value=occurred_on.isoformat(),
        )
    earliest = earliest_occurrence(today)
    if occurred_on < earliest:
        raise ApplicationError(
            _(
                "The date is more than %(years)d years ago (earliest %(earliest)s): a violation "
                "that old can no longer be penalised."
            )
            % {"years": settings.VIOLATION_MAX_AGE_YEARS, "earliest": earliest.isoformat()},
            field="occurred_on",
            code="too_old",
            value=occurred_on.isoformat(),
        )
    if not type.is_active:
        raise ApplicationError(
            _("This violation type is no longer in use."), field="type", code="inactive_type", value=type.code
        )
    if source not in Violation.Source.values:
        raise ApplicationError(
            _("Unknown source; use one of %(choices)s.") % {"choices": ", ".join(Violation.Source.values)},
            field="source",
            code="invalid_choice",
            value=source,
        )
    if source == Violation.Source.PLATFORM_REPORT and reporting_platform is None:
        raise ApplicationError(
            _("A platform report names the reporting platform."), field="reporting_platform", code="required"
        )
    if source != Violation.Source.PLATFORM_REPORT:
        reporting_platform = None
    if shop is not None and shop.trader_id != trader.pk:
        raise ApplicationError(
            _("This shop is not operated by this trader."),
            field="shop",
            code="shop_mismatch",
            value=shop.platform_shop_id,
        )
    description = (description or "").strip()
    if not description:
        raise ApplicationError(_("Describe what happened."), field="description", code="required")
    check_text(description, field="description", multiline=True)
    violation = Violation.objects.create(
        trader=trader,
        shop=shop,
        type=type,
        occurred_on=occurred_on,
        source=source,
        reporting_platform=reporting_platform,
        recorded_by=actor.user if actor.kind == "user" else None,
        description=description,
        goods_value=_clean_goods_value(goods_value),
    )
    ledger_append(
        actor=actor,
        action="violation.recorded",
        subject_type="violation",
        subject_id=violation.pk,
        trader_uscc=trader.uscc,
        payload=violation_payload(violation),
    )
    return violation


def _lock_for_decision(actor: Actor, violation: Violation, target: str) -> Violation:
    if actor.kind != "user":
        raise PermissionDenied(_("Only a member of staff decides on a violation."))
    locked = (
        Violation.objects.select_for_update(of=("self",))
        .select_related("type", "trader", "shop__platform", "reporting_platform")
        .get(pk=violation.pk)
    )
    require_jurisdiction(actor, locked.trader.region)
    if target not in Violation.TRANSITIONS[locked.status]:
        raise ApplicationError(
            _("A %(status)s violation cannot become %(target)s.")
            % {"status": locked.get_status_display(), "target": Violation.Status(target).label},
            field="status",
            code="invalid_transition",
            value=locked.status,
        )
    heavy = locked.type.severity in HEAVY_SEVERITIES
    perm = "penalties.confirm_heavy_violation" if heavy else "penalties.confirm_violation"
    require_perm(
        actor,
        perm,
        _("You may not decide on a %(severity)s violation.")
        % {"severity": locked.type.get_severity_display()},
    )
    if heavy and locked.recorded_by_id == actor.user.pk:
        raise PermissionDenied(
            _("Four eyes: a serious or grave violation is decided by someone other than who recorded it."),
            code="four_eyes",
        )
    return locked


def _decide(*, actor: Actor, violation: Violation, target: str, note: str, action: str) -> Violation:
    locked = _lock_for_decision(actor, violation, target)
    locked.status = target
    locked.decided_by = actor.user
    locked.decided_at = timezone.now()
    locked.decision_note = note
    locked.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    if target == Violation.Status.CONFIRMED:
        _flag_for_reassessment(locked.trader_id)
    ledger_append(
        actor=actor,
        action=action,
        subject_type="violation",
        subject_id=locked.pk,
        trader_uscc=locked.trader.uscc,
        payload={
            "violation": locked.pk,
            "type": locked.type.code,
            "severity": locked.type.severity,
            "points": locked.type.points,
            "occurred_on": locked.occurred_on,
            "status": target,
            "decided_by": actor.user.pk,
            "decided_at": locked.decided_at,
            "note": note,
        },
    )
    return locked


@transaction.atomic
def violation_confirm(*, actor: Actor, violation: Violation, note: str = "") -> Violation:
    """pending → confirmed. Serious and grave: supervisor only, never the recorder (four eyes)."""
    return _decide(
        actor=actor,
        violation=violation,
        target=Violation.Status.CONFIRMED,
        note=(note or "").strip(),
        action="violation.confirmed",
    )


@transaction.atomic
def violation_reject(*, actor: Actor, violation: Violation, note: str) -> Violation:
    """pending → rejected, with the reason."""
    note = (note or "").strip()
    if not note:
        raise ApplicationError(_("Say why the violation is rejected."), field="note", code="required")
    return _decide(
        actor=actor,
        violation=violation,
        target=Violation.Status.REJECTED,
        note=note,
        action="violation.rejected",
    )


@transaction.atomic
def violation_overturn(
    *, actor: Actor, violation: Violation, note: str, appeal_id: int | None = None
) -> Violation:
    """confirmed → overturned, when an appeal is granted. It stops counting at once: the
    trader is flagged, and the reassessment lifts the measures it grounded (`overturned`).

    The confirmation (decided_by/at) stays on the row; the overturning is in the ledger
    and on the appeal."""
    if actor.kind != "user":
        raise PermissionDenied(_("Only a member of staff overturns a violation."))
    require_perm(actor, "penalties.decide_appeal", _("You may not overturn violations."))
    note = (note or "").strip()
    if not note:
        raise ApplicationError(_("Say why the violation is overturned."), field="note", code="required")
    locked = (
        Violation.objects.select_for_update(of=("self",))
        .select_related("type", "trader")
        .get(pk=violation.pk)
    )
    require_jurisdiction(actor, locked.trader.region)
    if Violation.Status.OVERTURNED not in Violation.TRANSITIONS[locked.status]:
        raise ApplicationError(
            _("A %(status)s violation cannot be overturned.") % {"status": locked.get_status_display()},
            field="status",
            code="invalid_transition",
            value=locked.status,
        )
    locked.status = Violation.Status.OVERTURNED
    locked.save(update_fields=["status"])
    _flag_for_reassessment(locked.trader_id)
    ledger_append(
        actor=actor,
        action="violation.overturned",
        subject_type="violation",
        subject_id=locked.pk,
        trader_uscc=locked.trader.uscc,
        payload={
            "violation": locked.pk,
            "type": locked.type.code,
            "severity": locked.type.severity,
            "occurred_on": locked.occurred_on,
            "status": locked.status,
            "appeal": appeal_id,
            "overturned_by": actor.user.pk,
            "note": note,
        },
    )
    return locked


def _content_type(upload, content_type: str | None, name: str) -> str:
    declared = (content_type or getattr(upload, "content_type", None) or "").split(";")[0].strip().lower()
    if not declared or declared == "application/octet-stream":
        declared = (mimetypes.guess_type(name)[0] or "application/octet-stream").lower()
    if declared not in settings.EVIDENCE_CONTENT_TYPES:
        raise ApplicationError(
            _("Files of type %(type)s are not accepted as evidence (accepted: %(accepted)s).")
            % {"type": declared, "accepted": ", ".join(settings.EVIDENCE_CONTENT_TYPES)},
            field="file",
            code="content_type",
            value=declared,
        )
    return declared


def _stream_to_temp(upload: IO[bytes], limit: int) -> tuple[tempfile.SpooledTemporaryFile, str, int]:
    """Copy the upload to a temporary file, hashing as it goes; stop past `limit` bytes."""
    digest = hashlib.sha256()
    size = 0
    tmp = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)
    chunks = upload.chunks(CHUNK) if hasattr(upload, "chunks") else iter(lambda: upload.read(CHUNK), b"")
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            tmp.close()
            raise ApplicationError(
                _("The file is larger than the limit of %(n)d bytes.") % {"n": limit},
                field="file",
                code="too_large",
                value=size,
            )
        digest.update(chunk)
        tmp.write(chunk)
    if size == 0:
        tmp.close()
        raise ApplicationError(_("The file is empty."), field="file", code="empty")
    tmp.seek(0)
    return tmp, digest.hexdigest(), size


@transaction.atomic
def evidence_attach(
    *,
    actor: Actor,
    violation: Violation,
    upload: IO[bytes],
    name: str | None = None,
    content_type: str | None = None,
) -> Evidence:
    """Stream a file into storage, content-addressed by its SHA-256. Evidence never changes."""
    if actor.kind == "user":
        require_perm(actor, "penalties.add_evidence", _("You may not attach evidence."))
        require_jurisdiction(actor, violation.trader.region, field="violation")
    if actor.kind == "apikey" and violation.reporting_platform_id != getattr(actor.platform, "pk", None):
        raise PermissionDenied(_("A platform attaches evidence only to its own reports."))
    if violation.status in (Violation.Status.REJECTED, Violation.Status.OVERTURNED):
        raise ApplicationError(
            _("Evidence cannot be added to a %(status)s violation.")
            % {"status": violation.get_status_display()},
            field="violation",
            code="closed",
            value=violation.status,
        )
    name = (name or getattr(upload, "name", "") or "evidence").rsplit("/", 1)[-1][:255]
    ctype = _content_type(upload, content_type, name)
    tmp, sha256, size = _stream_to_temp(upload, settings.EVIDENCE_MAX_BYTES)
    # Held until commit: the orphan sweep takes the same lock, so it never deletes a file
    # this upload found in storage and is about to reference.
    advisory_xact_lock(evidence_lock_name(sha256))
    with tmp:
        evidence_types.check_content(tmp.read(evidence_types.HEAD_BYTES), ctype)
        tmp.seek(0)
        if Evidence.objects.filter(violation=violation, sha256=sha256).exists():
            raise ApplicationError(
                _("This file is already attached to this violation."),
                field="file",
                code="duplicate",
                value=sha256,
            )
        evidence = Evidence(
            violation=violation,
            original_name=name,
            sha256=sha256,
            size=size,
            content_type=ctype,
            uploaded_by=actor.user if actor.kind == "user" else None,
            uploaded_via=actor.platform if actor.kind == "apikey" else None,
        )
        stored_name = evidence_path(evidence, name)
        created_file = False
        if not default_storage.exists(stored_name):
            stored_name = default_storage.save(stored_name, File(tmp, name=name))
            created_file = True
    evidence.file.name = stored_name
    try:
        with transaction.atomic():
            evidence.save()
        ledger_append(
            actor=actor,
            action="evidence.attached",
            subject_type="evidence",
            subject_id=evidence.pk,
            trader_uscc=violation.trader.uscc,
            payload={
                "evidence": evidence.pk,
                "violation": violation.pk,
                "sha256": sha256,
                "size": size,
                "content_type": ctype,
                "original_name": name,
            },
        )
    except IntegrityError as exc:
        if created_file:
            default_storage.delete(stored_name)
        raise ApplicationError(
            _("This file is already attached to this violation."),
            field="file",
            code="duplicate",
            value=sha256,
        ) from exc
    except Exception:
        if created_file:
            default_storage.delete(stored_name)
        raise
    return evidence


def evidence_lock_name(sha256: str) -> str:
    return f"evidence:{sha256}"


def evidence_orphans_sweep(*, older_than: dt.timedelta, delete: bool = False) -> list[str]:
    """Stored evidence files that no Evidence row references, last written before
    `older_than` ago: the files of uploads whose transaction rolled back after the file was
    written (evidence_attach writes it first). Listed, and with `delete` removed.

    Each file is checked and removed under its evidence lock, in a transaction of its own,
    so an upload of the same content that is committing meanwhile keeps its file.
    """
    cutoff = timezone.now() - older_than
    found: list[str] = []
    try:
        folders, _files = default_storage.listdir("evidence")
    except FileNotFoundError:
        return found
    for folder in sorted(folders):
        prefix = f"evidence/{folder}/"
        _dirs, names = default_storage.listdir(prefix.rstrip("/"))
        referenced = set(
            Evidence.objects.filter(file__startswith=prefix).values_list("file", flat=True).distinct()
        )
        for name in sorted(prefix + file for file in names):
            if name in referenced or default_storage.get_modified_time(name) >= cutoff:
                continue
            with transaction.atomic():
                if not try_advisory_xact_lock(evidence_lock_name(name.rsplit("/", 1)[-1])):
                    continue  # an upload of this content is under way
                if Evidence.objects.filter(file=name).exists():
                    continue
                found.append(name)
                if delete:
                    default_storage.delete(name)
                    log.info("evidence_orphans_sweep: deleted %s", name)
    return found
