"""Measures by a supervisor's hand: impose, lift, withdraw. Reassessment (what the policy
wants by itself) is in ``reassessment.py``.

Every function is one transaction that locks the trader's row first, so it never races a
reassessment of the same trader.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from creditledger.exceptions import ApplicationError, require_perm
from creditledger.ledger.actors import Actor
from creditledger.ledger.services import Entry, ledger_append_many
from penalties import reconcile
from penalties.models import UNLIFTED_STATES, Restriction
from penalties.policy import MEASURES
from penalties.selectors import active_policy
from traders.jurisdiction import require_jurisdiction
from traders.models import Trader

State = Restriction.State
Reason = Restriction.LiftedReason


def as_measure(r: Restriction) -> reconcile.Measure:
    return reconcile.Measure(
        r.pk,
        r.measure,
        r.state,
        r.basis,
        r.rule_code,
        r.trigger_key,
        r.policy_version,
        r.reasons,
        r.noticed_at,
        r.objection_deadline,
        r.duration_days,
        r.starts_at,
        r.ends_at,
        r.lifted_at,
        r.lifted_reason,
        r.lift_note,
    )


def restriction_payload(restriction: Restriction, trader: Trader) -> dict:
    return reconcile.payload(as_measure(restriction), trader.uscc)


def _lift(r: Restriction, now: dt.datetime, reason: str, note: str = "") -> None:
    r.state = State.LIFTED
    r.lifted_at = now
    r.lifted_reason = reason
    r.lift_note = note
    r.save(update_fields=["state", "lifted_at", "lifted_reason", "lift_note"])


# --- supervisors' hand --------------------------------------------------------------------


def _record_change(actor: Actor, trader: Trader, action: str, r: Restriction, now: dt.datetime) -> None:
    """Status, version and ledger entry of a supervisor's change; the trader is flagged, for
    a measure set or taken away by hand can change what the policy wants next (a heavier
    measure in force supersedes a lighter one; a lifted one may let another trigger in)."""
    held = trader.restrictions.filter(state__in=UNLIFTED_STATES)
    status = reconcile.worst_active(as_measure(x) for x in held)
    trader.status = status
    trader.version += 1
    trader.needs_reassessment = True
    trader.save(update_fields=["status", "version", "needs_reassessment"])
    payload = restriction_payload(r, trader)
    payload.update({"status": status, "version": trader.version})
    ledger_append_many(
        actor=actor, entries=[Entry(action, "restriction", r.pk, trader.uscc, payload)], at=now
    )


@transaction.atomic
def restriction_impose(
    *,
    actor: Actor,
    trader: Trader,
    measure: str,
    reason: str,
    duration_days: int | None = None,
    now: dt.datetime | None = None,
) -> Restriction:
    """A supervisor's measure, with the policy's notice period. Reassessment never lifts it
    before its end."""
    require_perm(actor, "penalties.impose_restriction", _("You may not impose measures."))
    now = now or timezone.now()
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError(_("State the reasons for the measure."), field="reason", code="required")
    if measure not in MEASURES:
        raise ApplicationError(
            _("Unknown measure; use one of %(choices)s.") % {"choices": ", ".join(MEASURES)},
            field="measure",
            code="invalid_choice",
            value=measure,
        )
    if duration_days is not None and (not isinstance(duration_days, int) or duration_days < 1):
        raise ApplicationError(
            _("The duration is a whole number of days, at least 1."),
            field="duration_days",
            code="invalid",
            value=duration_days,
        )
    trader = Trader.objects.select_for_update().get(pk=trader.pk)
    require_jurisdiction(actor, trader.region, field="trader")
    if trader.restrictions.filter(measure=measure, state__in=UNLIFTED_STATES).exists():
        raise ApplicationError(
            _("The trader already holds this measure."), field="measure", code="duplicate", value=measure
        )
    policy, rules = active_policy()
    r = Restriction(
        trader=trader,
        measure=measure,
        basis=Restriction.Basis.MANUAL,
        policy_version=policy.version,
        reasons={
            "basis": "manual",
            "statement": reason,
            "policy_version": policy.version,
            "score": trader.score,
            "grade": trader.grade,
            "violations": [],
        },
        noticed_at=now,
        duration_days=duration_days,
        created_by=actor.user if actor.kind == "user" else None,
    )
    notice_days = rules.notice_days[measure]
    if notice_days == 0:
        r.state, r.starts_at = State.ACTIVE, now
        r.ends_at = now + dt.timedelta(days=duration_days) if duration_days else None
    else:
        r.state, r.objection_deadline = State.PROPOSED, now + dt.timedelta(days=notice_days)
    r.save()
    action = "restriction.applied" if r.state == State.ACTIVE else "restriction.proposed"
    _record_change(actor, trader, action, r, now)
    return r


@transaction.atomic
def restriction_lift(
    *,
    actor: Actor,
    restriction: Restriction,
    note: str,
    reason: str = Reason.MANUAL,
    now: dt.datetime | None = None,
) -> Restriction:
    """Lift a proposed or active measure by hand, with the reason."""
    require_perm(actor, "penalties.lift_restriction", _("You may not lift measures."))
    now = now or timezone.now()
    note = (note or "").strip()
    if not note:
        raise ApplicationError(_("Say why the measure is lifted."), field="note", code="required")
    if reason not in Reason.values:
        raise ApplicationError(_("Unknown reason."), field="reason", code="invalid_choice", value=reason)
    trader = Trader.objects.select_for_update().get(pk=restriction.trader_id)
    require_jurisdiction(actor, trader.region)
    r = Restriction.objects.select_for_update().get(pk=restriction.pk)
    if r.state not in UNLIFTED_STATES:
        raise ApplicationError(
            _("A %(state)s measure cannot be lifted.") % {"state": r.get_state_display()},
            field="state",
            code="invalid_transition",
            value=r.state,
        )
    if reason == Reason.REPAIRED and r.measure == Restriction.Measure.BLACKLISTED:
        rules = active_policy()[1]
        earliest = (r.starts_at or r.noticed_at) + dt.timedelta(days=rules.blacklist_min_days)
        if now < earliest:
            raise ApplicationError(
                _("A blacklisting can be repaired from %(date)s on (%(days)d days after it took effect).")
                % {
                    "date": date_format(timezone.localdate(earliest), "SHORT_DATE_FORMAT"),
                    "days": rules.blacklist_min_days,
                },
                field="reason",
                code="too_early_for_repair",
                value=reason,
            )
    _lift(r, now, reason, note)
    _record_change(actor, trader, "restriction.lifted", r, now)
    return r


@transaction.atomic
def restriction_withdraw(
    *, actor: Actor, restriction: Restriction, note: str, now: dt.datetime | None = None
) -> Restriction:
    """Withdraw a proposed measure after an upheld objection. Its trigger is spent: the
    same grounds do not propose it again."""
    require_perm(actor, "penalties.withdraw_restriction", _("You may not withdraw measures."))
    now = now or timezone.now()
    note = (note or "").strip()
    if not note:
        raise ApplicationError(_("Say why the measure is withdrawn."), field="note", code="required")
    trader = Trader.objects.select_for_update().get(pk=restriction.trader_id)
    require_jurisdiction(actor, trader.region)
    r = Restriction.objects.select_for_update().get(pk=restriction.pk)
    if r.state != State.PROPOSED:
        raise ApplicationError(
            _("Only a proposed measure can be withdrawn; this one is %(state)s.")
            % {"state": r.get_state_display()},
            field="state",
            code="invalid_transition",
            value=r.state,
        )
    r.state = State.WITHDRAWN
    r.lift_note = note
    r.lifted_at = now
    r.save(update_fields=["state", "lift_note", "lifted_at"])
    _record_change(actor, trader, "restriction.withdrawn", r, now)
    return r
