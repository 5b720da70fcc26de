"""The trader's remedies, entered by an officer and decided by a supervisor.

- objection: against a proposed measure, before its objection deadline; the supervisor
  maintains the measure (it takes effect at the deadline) or withdraws it.
- appeal: against a confirmed violation, within the policy's appeal window; granting it
  overturns the violation. A pending appeal does not suspend the violation.
- credit repair: to lift an active measure early after rectification; approving it lifts
  the measure with reason `repaired` (a blacklisting only after the policy's minimum).

Each function is one transaction with its ledger entry; a decision and what it moves
(withdrawal, overturning, lifting) commit or fail together. Rows are locked in the order
trader → restriction / violation → remedy, as the measure services lock them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Model
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from creditledger.exceptions import ApplicationError, PermissionDenied, require_perm
from creditledger.ledger.actors import Actor
from creditledger.ledger.services import ledger_append
from penalties.models import UNLIFTED_STATES, Appeal, Objection, RepairApplication, Restriction, Violation
from penalties.selectors import active_policy
from penalties.services.restrictions import restriction_lift, restriction_withdraw
from penalties.services.violations import violation_overturn
from traders.jurisdiction import require_jurisdiction
from traders.models import Trader

State = Restriction.State


def _staff(actor: Actor, perm: str, message: str) -> None:
    if actor.kind != "user":
        raise PermissionDenied(_("Only a member of staff enters or decides a trader's remedies."))
    require_perm(actor, perm, message)


def _required(text: str, field: str, message: str) -> str:
    text = (text or "").strip()
    if not text:
        raise ApplicationError(message, field=field, code="required")
    return text


def _decision(decision: str, allowed: tuple[str, ...]) -> str:
    if decision not in allowed:
        raise ApplicationError(
            _("Decide one of %(choices)s.") % {"choices": ", ".join(allowed)},
            field="decision",
            code="invalid_choice",
            value=decision,
        )
    return decision


def _create_once(model: type[Model], duplicate: str, **fields: Any) -> Any:
    # The caller holds the parent row's lock, so a concurrent filing waits and then sees
    # this one; the partial unique constraint is the backstop.
    try:
        with transaction.atomic():
            return model.objects.create(**fields)
    except IntegrityError as exc:
        raise ApplicationError(duplicate, code="duplicate") from exc


def _still_pending(row: Objection | Appeal | RepairApplication) -> None:
    if row.status != "pending":
        raise ApplicationError(
            _("This was already decided (%(status)s).") % {"status": row.get_status_display()},
            field="status",
            code="already_decided",
            value=row.status,
        )


def _decided(row, actor: Actor, status: str, note: str, now: dt.datetime) -> None:
    row.status, row.decided_by, row.decided_at, row.note = status, actor.user, now, note
    row.save(update_fields=["status", "decided_by", "decided_at", "note"])


def _log(actor: Actor, action: str, subject_type: str, row, trader: Trader, payload: dict) -> None:
    ledger_append(
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject_id=row.pk,
        trader_uscc=trader.uscc,
        payload={subject_type: row.pk, "trader": trader.uscc, "status": row.status, **payload},
    )


# --- objections ------------------------------------------------------------------------------


@transaction.atomic
def objection_record(
    *, actor: Actor, restriction: Restriction, grounds: str, now: dt.datetime | None = None
) -> Objection:
    """The trader objects to a proposed measure; only before its objection deadline, and
    one open objection per measure."""
    _staff(actor, "penalties.add_objection", _("You may not record objections."))
    grounds = _required(grounds, "grounds", _("State the trader's grounds for objecting."))
    now = now or timezone.now()
    r = Restriction.objects.select_for_update().select_related("trader").get(pk=restriction.pk)
    require_jurisdiction(actor, r.trader.region, field="restriction")
    if r.state != State.PROPOSED:
        raise ApplicationError(
            _("Objections are taken only against a proposed measure; this one is %(state)s.")
            % {"state": r.get_state_display()},
            field="restriction",
            code="not_proposed",
            value=r.state,
        )
    if r.objection_deadline is None or now >= r.objection_deadline:
        raise ApplicationError(
            _("The objection period of this measure has ended."),
            field="restriction",
            code="objection_period_over",
            value=r.objection_deadline,
        )
    duplicate = _("An objection to this measure is already awaiting a decision.")
    if r.objections.filter(status=Objection.Status.PENDING).exists():
        raise ApplicationError(duplicate, field="restriction", code="duplicate")
    objection = _create_once(
        Objection, duplicate, restriction=r, grounds=grounds, recorded_by=actor.user, recorded_at=now
    )
    _log(
        actor,
        "objection.recorded",
        "objection",
        objection,
        r.trader,
        {
            "restriction": r.pk,
            "measure": r.measure,
            "objection_deadline": r.objection_deadline,
            "grounds": grounds,
            "recorded_by": actor.user.pk,
            "recorded_at": now,
        },
    )
    return objection


@transaction.atomic
def objection_decide(
    *, actor: Actor, objection: Objection, decision: str, note: str, now: dt.datetime | None = None
) -> Objection:
    """`maintained`: the measure stands and takes effect at its deadline. `withdrawn`: the
    measure is withdrawn in the same transaction, and its grounds do not propose it again."""
    _staff(actor, "penalties.decide_objection", _("You may not decide on objections."))
    decision = _decision(decision, (Objection.Status.MAINTAINED, Objection.Status.WITHDRAWN))
    note = _required(note, "note", _("State the reasons for the decision."))
    now = now or timezone.now()
    restriction_id, trader_id = Objection.objects.values_list("restriction_id", "restriction__trader_id").get(
        pk=objection.pk
    )
    trader = Trader.objects.select_for_update().get(pk=trader_id)
    require_jurisdiction(actor, trader.region)
    r = Restriction.objects.select_for_update().get(pk=restriction_id)
    locked = Objection.objects.select_for_update().get(pk=objection.pk)
    _still_pending(locked)
    if decision == Objection.Status.WITHDRAWN and r.state != State.WITHDRAWN:
        # Refuses a measure that has already taken effect: lift it instead.
        r = restriction_withdraw(actor=actor, restriction=r, note=note, now=now)
    elif decision == Objection.Status.MAINTAINED and r.state not in UNLIFTED_STATES:
        raise ApplicationError(
            _("The measure is %(state)s: there is nothing to maintain.") % {"state": r.get_state_display()},
            field="decision",
            code="measure_ended",
            value=r.state,
        )
    _decided(locked, actor, decision, note, now)
    _log(
        actor,
        "objection.decided",
        "objection",
        locked,
        trader,
        {
            "restriction": r.pk,
            "measure": r.measure,
            "measure_state": r.state,
            "decided_by": actor.user.pk,
            "decided_at": now,
            "note": note,
        },
    )
    return locked


# --- appeals ---------------------------------------------------------------------------------


@transaction.atomic
def appeal_file(
    *, actor: Actor, violation: Violation, grounds: str, now: dt.datetime | None = None
) -> Appeal:
    """An appeal against a confirmed violation, within the policy's appeal window after
    its confirmation. The supervisor's deadline is set from the policy too."""
    _staff(actor, "penalties.add_appeal", _("You may not enter appeals."))
    grounds = _required(grounds, "grounds", _("State the trader's grounds of appeal."))
    now = now or timezone.now()
    v = Violation.objects.select_for_update(of=("self",)).select_related("trader").get(pk=violation.pk)
    require_jurisdiction(actor, v.trader.region, field="violation")
    if v.status != Violation.Status.CONFIRMED:
        raise ApplicationError(
            _("Only a confirmed violation can be appealed; this one is %(status)s.")
            % {"status": v.get_status_display()},
            field="violation",
            code="not_confirmed",
            value=v.status,
        )
    rules = active_policy()[1]
    closes = v.decided_at + dt.timedelta(days=rules.appeal_window_days)
    if now > closes:
        raise ApplicationError(
            _("The appeal period ended on %(date)s (%(days)d days after the confirmation).")
            % {
                "date": date_format(timezone.localdate(closes), "SHORT_DATE_FORMAT"),
                "days": rules.appeal_window_days,
            },
            field="violation",
            code="appeal_period_over",
            value=closes,
        )
    duplicate = _("An appeal against this violation is already awaiting a decision.")
    if v.appeals.filter(status=Appeal.Status.PENDING).exists():
        raise ApplicationError(duplicate, field="violation", code="duplicate")
    deadline = now + dt.timedelta(days=rules.appeal_decision_days)
    appeal = _create_once(
        Appeal, duplicate, violation=v, grounds=grounds, filed_by=actor.user, filed_at=now, deadline=deadline
    )
    _log(
        actor,
        "appeal.filed",
        "appeal",
        appeal,
        v.trader,
        {
            "violation": v.pk,
            "grounds": grounds,
            "filed_by": actor.user.pk,
            "filed_at": now,
            "deadline": deadline,
        },
    )
    return appeal


@transaction.atomic
def appeal_decide(
    *, actor: Actor, appeal: Appeal, decision: str, note: str, now: dt.datetime | None = None
) -> Appeal:
    """`granted` overturns the violation (and the reassessment follows); `refused` leaves it.
    Four eyes: the supervisor who confirmed the violation does not decide its appeal."""
    _staff(actor, "penalties.decide_appeal", _("You may not decide on appeals."))
    decision = _decision(decision, (Appeal.Status.GRANTED, Appeal.Status.REFUSED))
    note = _required(note, "note", _("State the reasons for the decision."))
    now = now or timezone.now()
    violation_id = Appeal.objects.values_list("violation_id", flat=True).get(pk=appeal.pk)
    v = Violation.objects.select_for_update(of=("self",)).select_related("trader").get(pk=violation_id)
    require_jurisdiction(actor, v.trader.region)
    locked = Appeal.objects.select_for_update().get(pk=appeal.pk)
    _still_pending(locked)
    if v.decided_by_id == actor.user.pk:
        raise PermissionDenied(
            _("Four eyes: an appeal is decided by someone other than who confirmed the violation."),
            code="four_eyes",
        )
    if decision == Appeal.Status.GRANTED:
        v = violation_overturn(actor=actor, violation=v, note=note, appeal_id=locked.pk)
    _decided(locked, actor, decision, note, now)
    _log(
        actor,
        "appeal.decided",
        "appeal",
        locked,
        v.trader,
        {
            "violation": v.pk,
            "violation_status": v.status,
            "decided_by": actor.user.pk,
            "decided_at": now,
            "deadline": locked.deadline,
            "note": note,
        },
    )
    return locked


# --- credit repair ---------------------------------------------------------------------------


@transaction.atomic
def repair_apply(
    *, actor: Actor, restriction: Restriction, grounds: str, now: dt.datetime | None = None
) -> RepairApplication:
    """The trader applies to lift an active measure early; one pending application each."""
    _staff(actor, "penalties.add_repairapplication", _("You may not enter credit repair applications."))
    grounds = _required(grounds, "grounds", _("Describe the rectification the trader has done."))
    now = now or timezone.now()
    r = Restriction.objects.select_for_update().select_related("trader").get(pk=restriction.pk)
    require_jurisdiction(actor, r.trader.region, field="restriction")
    if r.state != State.ACTIVE:
        raise ApplicationError(
            _("Credit repair applies to a measure in force; this one is %(state)s.")
            % {"state": r.get_state_display()},
            field="restriction",
            code="not_active",
            value=r.state,
        )
    duplicate = _("A repair application for this measure is already awaiting a decision.")
    if r.repair_applications.filter(status=RepairApplication.Status.PENDING).exists():
        raise ApplicationError(duplicate, field="restriction", code="duplicate")
    application = _create_once(
        RepairApplication, duplicate, restriction=r, grounds=grounds, filed_by=actor.user, filed_at=now
    )
    _log(
        actor,
        "repair.applied",
        "repair",
        application,
        r.trader,
        {
            "restriction": r.pk,
            "measure": r.measure,
            "grounds": grounds,
            "filed_by": actor.user.pk,
            "filed_at": now,
        },
    )
    return application


@transaction.atomic
def repair_decide(
    *,
    actor: Actor,
    application: RepairApplication,
    decision: str,
    note: str,
    now: dt.datetime | None = None,
) -> RepairApplication:
    """`approved` lifts the measure with reason `repaired` in the same transaction;
    restriction_lift refuses a blacklisting before the policy's minimum period."""
    _staff(actor, "penalties.decide_repair", _("You may not decide on credit repair."))
    decision = _decision(decision, (RepairApplication.Status.APPROVED, RepairApplication.Status.REJECTED))
    note = _required(note, "note", _("State the reasons for the decision."))
    now = now or timezone.now()
    restriction_id, trader_id = RepairApplication.objects.values_list(
        "restriction_id", "restriction__trader_id"
    ).get(pk=application.pk)
    trader = Trader.objects.select_for_update().get(pk=trader_id)
    require_jurisdiction(actor, trader.region)
    r = Restriction.objects.select_for_update().get(pk=restriction_id)
    locked = RepairApplication.objects.select_for_update().get(pk=application.pk)
    _still_pending(locked)
    if decision == RepairApplication.Status.APPROVED:
        r = restriction_lift(
            actor=actor, restriction=r, note=note, reason=Restriction.LiftedReason.REPAIRED, now=now
        )
    _decided(locked, actor, decision, note, now)
    _log(
        actor,
        "repair.decided",
        "repair",
        locked,
        trader,
        {
            "restriction": r.pk,
            "measure": r.measure,
            "measure_state": r.state,
            "decided_by": actor.user.pk,
            "decided_at": now,
            "note": note,
        },
    )
    return locked
