"""Reassessment and measures: score, grade and the restrictions the policy wants.

Every function is one transaction that locks the trader's row first, so one trader is
reassessed by one worker at a time and a second run sees the first one's result.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from creditledger.exceptions import ApplicationError, require_perm
from creditledger.ledger.actors import Actor
from creditledger.ledger.services import Entry, ledger_append_many
from penalties import scoring
from penalties.measures import Fact, Wanted, rule_triggers
from penalties.models import UNLIFTED_STATES, Restriction, ScoreHistory, Violation
from penalties.policy import MEASURE_RANK, MEASURES
from penalties.selectors import Rescore, active_policy, assess_violations, confirmed_violations
from traders.jurisdiction import require_jurisdiction
from traders.models import Trader

REASSESS = Actor.system("reassess")

State = Restriction.State
Reason = Restriction.LiftedReason


@dataclass
class Outcome:
    """What one reassessment changed (empty when nothing did)."""

    trader: Trader
    assessment: scoring.Assessment
    entries: list[Entry] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.entries)


def restriction_payload(restriction: Restriction, trader: Trader) -> dict:
    return {
        "restriction": restriction.pk,
        "trader": trader.uscc,
        "measure": restriction.measure,
        "state": restriction.state,
        "basis": restriction.basis,
        "rule_code": restriction.rule_code,
        "trigger_key": restriction.trigger_key,
        "policy_version": restriction.policy_version,
        "reasons": restriction.reasons,
        "noticed_at": restriction.noticed_at,
        "objection_deadline": restriction.objection_deadline,
        "duration_days": restriction.duration_days,
        "starts_at": restriction.starts_at,
        "ends_at": restriction.ends_at,
        "lifted_at": restriction.lifted_at,
        "lifted_reason": restriction.lifted_reason,
        "note": restriction.lift_note,
    }


def _facts(violations: list[Violation]) -> list[Fact]:
    return [
        Fact(
            v.id,
            v.type.code,
            v.type.category,
            v.type.severity,
            v.occurred_on,
            timezone.localdate(v.decided_at),
        )
        for v in violations
    ]


def _statement(
    wanted: Wanted, assessment: scoring.Assessment, policy_version: int, violations: dict[int, Violation]
) -> dict:
    """The statement of reasons the trader is told: rule, policy, violations, score."""
    deductions = {line.violation_id: scoring.to_decimal(line.deduction) for line in assessment.breakdown}
    if wanted.basis == "score":
        ids = [line.violation_id for line in assessment.breakdown]
    else:
        ids = list(wanted.violation_ids)
    return {
        "basis": wanted.basis,
        "rule": wanted.rule_code,
        "policy_version": policy_version,
        "score": assessment.score,
        "grade": assessment.grade,
        "total_deduction": str(assessment.total_deduction),
        "violations": [
            {
                "id": vid,
                "type": violations[vid].type.code,
                "name": violations[vid].type.name,
                "severity": violations[vid].type.severity,
                "occurred_on": violations[vid].occurred_on.isoformat(),
                "deduction": str(deductions.get(vid, "0.00")),
            }
            for vid in ids
            if vid in violations
        ],
    }


def _lift_reason(
    r: Restriction,
    now: dt.datetime,
    confirmed_ids: set[int],
    grade_wants: str | None,
    held: dict[str, Restriction],
) -> str | None:
    if r.basis == Restriction.Basis.MANUAL:
        # A supervisor's measure runs its course; only its own end lifts it.
        return Reason.EXPIRED if r.ends_at and r.ends_at <= now else None
    if r.basis == Restriction.Basis.RULE:
        grounds = {v["id"] for v in r.reasons.get("violations", [])}
        if not grounds <= confirmed_ids:
            return Reason.OVERTURNED
        return Reason.EXPIRED if r.ends_at and r.ends_at <= now else None
    # Score-based: follows the grade.
    if grade_wants == r.measure:
        return None
    if grade_wants is None or MEASURE_RANK[grade_wants] < MEASURE_RANK[r.measure]:
        return Reason.RECOVERED
    heavier = held.get(grade_wants)
    # Keep the lighter measure until the heavier one is in force: no gap during notice.
    return Reason.SUPERSEDED if heavier is not None and heavier.state == State.ACTIVE else None


def _lift(r: Restriction, now: dt.datetime, reason: str, note: str = "") -> None:
    r.state = State.LIFTED
    r.lifted_at = now
    r.lifted_reason = reason
    r.lift_note = note
    r.save(update_fields=["state", "lifted_at", "lifted_reason", "lift_note"])


def _activate(r: Restriction, starts_at: dt.datetime) -> None:
    r.state = State.ACTIVE
    r.starts_at = starts_at
    if r.duration_days:
        r.ends_at = starts_at + dt.timedelta(days=r.duration_days)
    r.save(update_fields=["state", "starts_at", "ends_at"])


def _worst_active(held: dict[str, Restriction]) -> str:
    active = [m for m, r in held.items() if r.state == State.ACTIVE]
    return max(active, key=MEASURE_RANK.__getitem__) if active else Trader.Status.NORMAL


def _new_restriction(
    trader: Trader,
    *,
    measure: str,
    basis: str,
    rule_code: str,
    trigger_key: str,
    policy_version: int | None,
    reasons: dict,
    duration_days: int | None,
    notice_days: int,
    now: dt.datetime,
    created_by=None,
    continuing: bool = False,
) -> Restriction:
    r = Restriction(
        trader=trader,
        measure=measure,
        basis=basis,
        rule_code=rule_code,
        trigger_key=trigger_key,
        policy_version=policy_version,
        reasons=reasons,
        noticed_at=now,
        duration_days=duration_days,
        created_by=created_by,
    )
    if notice_days == 0 or continuing:
        r.state = State.ACTIVE
        r.starts_at = now
        r.ends_at = now + dt.timedelta(days=duration_days) if duration_days else None
    else:
        r.state = State.PROPOSED
        r.objection_deadline = now + dt.timedelta(days=notice_days)
    r.save()
    return r


@transaction.atomic
def trader_reassess(
    *, trader: Trader | int, now: dt.datetime | None = None, actor: Actor = REASSESS
) -> Outcome:
    """Recompute score, grade and measures as of `now`, reconcile, and record the changes.

    Idempotent: a second call with the same inputs finds nothing to change and writes
    nothing. Manual measures are never touched before their end.
    """
    now = now or timezone.now()
    today = timezone.localdate(now)
    trader = Trader.objects.select_for_update().get(pk=trader.pk if isinstance(trader, Trader) else trader)
    require_jurisdiction(actor, trader.region)
    policy, rules = active_policy()
    violations = confirmed_violations(trader)
    by_id = {v.id: v for v in violations}
    assessment = assess_violations(violations, today, rules)
    outcome = Outcome(trader=trader, assessment=assessment)

    old_score, old_grade = trader.score, trader.grade
    grade_changed = assessment.grade != old_grade
    grade_since = now if grade_changed else (trader.grade_since or trader.created_at)
    grade_wants = rules.grade_measures.get(assessment.grade)

    held = {r.measure: r for r in trader.restrictions.select_for_update().filter(state__in=UNLIFTED_STATES)}
    used_keys = set(trader.restrictions.exclude(trigger_key="").values_list("trigger_key", flat=True))
    restriction_events: list[tuple[str, Restriction]] = []
    expired_now: set[str] = set()

    def lift_unwarranted() -> None:
        for measure, r in list(held.items()):
            reason = _lift_reason(r, now, set(by_id), grade_wants, held)
            if reason:
                _lift(r, now, reason)
                del held[measure]
                restriction_events.append(("restriction.lifted", r))
                if reason == Reason.EXPIRED:
                    expired_now.add(measure)

    lift_unwarranted()
    for r in held.values():
        if r.state == State.PROPOSED and r.objection_deadline and r.objection_deadline <= now:
            _activate(r, r.objection_deadline)
            restriction_events.append(("restriction.applied", r))

    wanted = [w for w in rule_triggers(_facts(violations), rules, today) if w.trigger_key not in used_keys]
    if grade_wants:
        key = f"score:{grade_wants}:{assessment.grade}:{grade_since.isoformat()}"
        if key not in used_keys:
            wanted.append(Wanted(grade_wants, "score", f"grade-{assessment.grade}", key, None, ()))
    for w in wanted:
        if w.measure in held:
            continue
        r = _new_restriction(
            trader,
            measure=w.measure,
            basis=w.basis,
            rule_code=w.rule_code,
            trigger_key=w.trigger_key,
            policy_version=policy.version,
            reasons=_statement(w, assessment, policy.version, by_id),
            duration_days=w.duration_days,
            notice_days=rules.notice_days[w.measure],
            now=now,
            continuing=w.measure in expired_now,
        )
        held[w.measure] = r
        restriction_events.append(
            ("restriction.applied" if r.state == State.ACTIVE else "restriction.proposed", r)
        )
    # A heavier grade measure that just took effect supersedes the lighter one.
    lift_unwarranted()

    status = _worst_active(held)
    score_changed = assessment.score != old_score or grade_changed
    if not (score_changed or restriction_events or status != trader.status):
        if trader.needs_reassessment:
            Trader.objects.filter(pk=trader.pk).update(needs_reassessment=False)
            trader.needs_reassessment = False
        return outcome

    trader.score, trader.grade, trader.status = assessment.score, assessment.grade, status
    trader.grade_since = grade_since
    trader.version += 1
    trader.assessed_at = now
    trader.needs_reassessment = False
    trader.save(
        update_fields=[
            "score",
            "grade",
            "status",
            "grade_since",
            "version",
            "assessed_at",
            "needs_reassessment",
        ]
    )
    if score_changed:
        ScoreHistory.objects.create(
            trader=trader,
            at=now,
            as_of=today,
            score=assessment.score,
            grade=assessment.grade,
            policy_version=policy.version,
        )
        outcome.entries.append(
            Entry(
                "score.changed",
                "trader",
                trader.pk,
                trader.uscc,
                {
                    "trader": trader.uscc,
                    "score": assessment.score,
                    "grade": assessment.grade,
                    "previous_score": old_score,
                    "previous_grade": old_grade,
                    "as_of": today,
                    "policy_version": policy.version,
                    "total_deduction": assessment.total_deduction,
                    "violations": [line.violation_id for line in assessment.breakdown],
                    "status": status,
                    "version": trader.version,
                },
            )
        )
    for action, r in restriction_events:
        payload = restriction_payload(r, trader)
        payload.update({"status": status, "version": trader.version})
        outcome.entries.append(Entry(action, "restriction", r.pk, trader.uscc, payload))
    if not outcome.entries:  # only the status moved (cannot happen without an event, but be exact)
        outcome.entries.append(
            Entry(
                "trader.status_changed",
                "trader",
                trader.pk,
                trader.uscc,
                {"status": status, "version": trader.version},
            )
        )
    ledger_append_many(actor=actor, entries=outcome.entries, at=now)
    return outcome


# --- supervisors' hand --------------------------------------------------------------------


def _record_change(actor: Actor, trader: Trader, action: str, r: Restriction, now: dt.datetime) -> None:
    held = {x.measure: x for x in trader.restrictions.filter(state__in=UNLIFTED_STATES)}
    status = _worst_active(held)
    trader.status = status
    trader.version += 1
    trader.save(update_fields=["status", "version"])
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
    r = _new_restriction(
        trader,
        measure=measure,
        basis=Restriction.Basis.MANUAL,
        rule_code="",
        trigger_key="",
        policy_version=policy.version,
        reasons={
            "basis": "manual",
            "statement": reason,
            "policy_version": policy.version,
            "score": trader.score,
            "grade": trader.grade,
            "violations": [],
        },
        duration_days=duration_days,
        notice_days=rules.notice_days[measure],
        now=now,
        created_by=actor.user if actor.kind == "user" else None,
    )
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


@transaction.atomic
def trader_reassess_if_free(
    *, trader_id: int, now: dt.datetime | None = None, wait: bool = False, actor: Actor = REASSESS
) -> Outcome | None:
    """Reassess unless another worker holds the trader (then that one's result stands and
    None is returned). With wait=True, queue behind the other worker instead."""
    rows = Trader.objects.select_for_update(skip_locked=not wait).filter(pk=trader_id)
    if not rows.exists():
        return None
    return trader_reassess(trader=trader_id, now=now, actor=actor)


@transaction.atomic
def traders_rescore(*, rows: list[Rescore], now: dt.datetime, actor: Actor = REASSESS) -> int:
    """The nightly bulk path: rewrite scores that decayed while the grade stayed.

    No measure can change without a grade change or a due measure (those go through
    trader_reassess), so this writes score, version, history and `score.changed` for a
    batch at once. Rows are claimed compare-and-swap: a trader that is locked, flagged or
    whose score moved since the rows were computed is left for the full path.
    """
    expected = {row.trader_id: row for row in rows}
    locked = (
        Trader.objects.select_for_update(skip_locked=True)
        .filter(pk__in=expected, needs_reassessment=False)
        .only("pk", "uscc", "score", "grade", "status", "version")
    )
    policy = active_policy()[0]
    today = timezone.localdate(now)
    traders, history, entries = [], [], []
    for trader in locked:
        row = expected[trader.pk]
        if (trader.score, trader.grade) != (row.old_score, row.grade):
            continue
        trader.score, trader.version, trader.assessed_at = row.score, trader.version + 1, now
        traders.append(trader)
        history.append(
            ScoreHistory(
                trader=trader,
                at=now,
                as_of=today,
                score=row.score,
                grade=row.grade,
                policy_version=policy.version,
            )
        )
        entries.append(
            Entry(
                "score.changed",
                "trader",
                trader.pk,
                trader.uscc,
                {
                    "trader": trader.uscc,
                    "score": row.score,
                    "grade": row.grade,
                    "previous_score": row.old_score,
                    "previous_grade": row.grade,
                    "as_of": today,
                    "policy_version": policy.version,
                    "total_deduction": row.total_deduction,
                    "status": trader.status,
                    "version": trader.version,
                },
            )
        )
    Trader.objects.bulk_update(traders, ["score", "version", "assessed_at"], batch_size=1000)
    ScoreHistory.objects.bulk_create(history, batch_size=1000)
    ledger_append_many(actor=actor, entries=entries, at=now)
    return len(traders)
