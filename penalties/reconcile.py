"""The measures planner: what one reassessment changes. Pure: no ORM, no clock.

``plan(case, policy, now, today)`` takes what the trader holds (its proposed and active
measures, the trigger keys it has ever used, its stored score, grade and status), the new
assessment (``scoring.assess``) with the confirmed violations behind it, and the policy,
and returns a Plan: the measures to propose or apply, to activate, to lift (each with its
reason), the trader's resulting score, grade, status and version, the score-history row,
and the ledger entries to write. The per-trader task and the set-based bulk path both load
a Case, plan, and apply the plan, so they cannot disagree.

The rule, every step in order:

1. Score and grade are the assessment's. When the grade moves, ``grade_since`` becomes
   ``now``; otherwise it stays.
2. The grade's measure is the policy's ``grade_measures[grade]`` (or none). Escalation
   rules (``measures.rule_triggers``) want their measure once per trigger, for a fixed
   period. Each automatic measure has a trigger key (``rule:violation`` for a rule;
   ``score:measure:grade:grade_since`` for the grade's) and a key once used never imposes
   again: a withdrawn proposal stays withdrawn until the grounds change.
3. Then, until nothing more changes (the result is a fixed point, so planning again on
   the result gives an empty plan):
   a. Lift what is no longer warranted, each with its reason:
      - manual: ``expired`` once its end has come; nothing else lifts it (a supervisor's
        measure runs its course);
      - rule: ``overturned`` as soon as one of its grounds is no longer a confirmed
        violation, else ``expired`` once its end has come;
      - score: ``recovered`` when the grade wants no measure or a lighter one. When the
        grade wants a heavier one, the lighter stays until that heavier measure is active
        (no gap during the notice period) and is then lifted ``superseded``.
   b. A proposed measure whose objection deadline has passed becomes active as of its
      deadline (not as of when the job came by), and its end counts from there.
   c. Each wanted measure whose trigger key is unused and whose kind the trader does not
      hold is created, noticed ``now``, with the statement of reasons (basis, rule,
      policy version, score, grade, and the violations with their deductions). It is
      active at once when the policy gives its kind no notice days, or when a measure of
      the same kind expired in this same run (it continues it: no gap); otherwise it is
      proposed with ``objection_deadline = now + notice days``.
4. The status is the worst active measure (``normal`` when none is).
5. When score, grade, status and measures are all unchanged, the plan is empty: nothing
   is written but the trader's needs-reassessment flag, cleared. Otherwise the version
   goes up by one, a score-history row is added when score or grade moved, and the
   ledger gets ``score.changed`` (when score or grade moved) and one entry per measure
   event in the order they happened, each carrying the resulting status and version.

Held measures are taken in id order, so the result never depends on how they were loaded.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from penalties import scoring
from penalties.measures import Fact, Wanted, rule_triggers
from penalties.policy import MEASURE_RANK, PolicyRules

PROPOSED, ACTIVE, LIFTED = "proposed", "active", "lifted"
SCORE, RULE, MANUAL = "score", "rule", "manual"
RECOVERED, EXPIRED, OVERTURNED, SUPERSEDED = "recovered", "expired", "overturned", "superseded"
NORMAL = "normal"


@dataclass(frozen=True, slots=True)
class Measure:
    """A restriction as the planner sees it; ``id`` is None for one the plan creates."""

    id: int | None
    measure: str
    state: str
    basis: str
    rule_code: str
    trigger_key: str
    policy_version: int | None
    reasons: Mapping[str, Any]
    noticed_at: dt.datetime
    objection_deadline: dt.datetime | None = None
    duration_days: int | None = None
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
    lifted_at: dt.datetime | None = None
    lifted_reason: str = ""
    lift_note: str = ""

    @property
    def grounds(self) -> frozenset[int]:
        """The violations a rule measure stands on."""
        return frozenset(v["id"] for v in self.reasons.get("violations", ()))

    def ended(self, now: dt.datetime) -> bool:
        return self.ends_at is not None and self.ends_at <= now


@dataclass(frozen=True, slots=True)
class TraderState:
    """The trader's stored assessment. ``grade_since`` falls back to its registration."""

    id: int
    uscc: str
    score: int
    grade: str
    status: str
    grade_since: dt.datetime
    version: int
    flagged: bool = False


@dataclass(frozen=True)
class Case:
    """Everything the planner reads about one trader."""

    trader: TraderState
    assessment: scoring.Assessment
    facts: Sequence[Fact]  # the confirmed violations (grounds for rules and statements)
    held: Sequence[Measure]  # proposed and active measures
    used_keys: frozenset[str] = frozenset()  # trigger keys of every measure ever held


@dataclass(frozen=True, slots=True)
class Policy:
    version: int
    rules: PolicyRules


@dataclass(frozen=True, slots=True)
class Event:
    """One ledger entry of the plan. ``created`` indexes ``Plan.created`` when the measure
    is new (its id is known only once it is written)."""

    action: str
    measure: Measure | None = None
    created: int | None = None
    payload: Mapping[str, Any] | None = None  # trader-level entries


@dataclass(frozen=True, slots=True)
class History:
    as_of: dt.date
    score: int
    grade: str
    policy_version: int


@dataclass(frozen=True, slots=True)
class Record:
    """A ledger entry to append: the fields of ``ledger.services.Entry``."""

    action: str
    subject_type: str
    subject_id: int
    payload: dict[str, Any]


@dataclass(frozen=True)
class Plan:
    before: TraderState
    trader: TraderState  # after; equal to ``before`` (flag cleared) when nothing changed
    changed: bool
    created: tuple[Measure, ...] = ()
    updated: tuple[Measure, ...] = ()  # held measures in their final state (activated, lifted)
    held: tuple[Measure, ...] = ()  # proposed and active after the plan (new ones with id None)
    used_keys: frozenset[str] = frozenset()
    history: History | None = None
    events: tuple[Event, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not self.changed

    def records(self, created_ids: Sequence[int] = ()) -> list[Record]:
        """The ledger entries, once the new measures have ids (in ``created`` order)."""
        if len(created_ids) != len(self.created):
            raise ValueError("one id for each created measure")
        trader = self.trader
        tail = {"status": trader.status, "version": trader.version}
        out = []
        for event in self.events:
            if event.measure is None:
                out.append(Record(event.action, "trader", trader.id, {**event.payload, **tail}))
                continue
            measure = event.measure
            if event.created is not None:
                measure = replace(measure, id=created_ids[event.created])
            body = {**payload(measure, trader.uscc), **tail}
            out.append(Record(event.action, "restriction", measure.id, body))
        return out


def payload(measure: Measure, uscc: str) -> dict[str, Any]:
    """A measure as its ledger entries show it."""
    return {
        "restriction": measure.id,
        "trader": uscc,
        "measure": measure.measure,
        "state": measure.state,
        "basis": measure.basis,
        "rule_code": measure.rule_code,
        "trigger_key": measure.trigger_key,
        "policy_version": measure.policy_version,
        "reasons": measure.reasons,
        "noticed_at": measure.noticed_at,
        "objection_deadline": measure.objection_deadline,
        "duration_days": measure.duration_days,
        "starts_at": measure.starts_at,
        "ends_at": measure.ends_at,
        "lifted_at": measure.lifted_at,
        "lifted_reason": measure.lifted_reason,
        "note": measure.lift_note,
    }


def worst_active(measures: Iterable[Measure]) -> str:
    active = [m.measure for m in measures if m.state == ACTIVE]
    return max(active, key=MEASURE_RANK.__getitem__) if active else NORMAL


def statement(
    wanted: Wanted,
    assessment: scoring.Assessment,
    version: int,
    facts: Sequence[Fact],
    deductions: Mapping[int, Any] | None = None,
) -> dict:
    """The statement of reasons the trader is told: rule, policy, violations, score.
    (``deductions``: each violation's deduction for display, when the caller has them.)"""
    if deductions is None:
        deductions = _deductions(assessment)
    by_id = {f.id: f for f in facts}
    ids = (
        [line.violation_id for line in assessment.breakdown]
        if wanted.basis == SCORE
        else wanted.violation_ids
    )
    return {
        "basis": wanted.basis,
        "rule": wanted.rule_code,
        "policy_version": version,
        "score": assessment.score,
        "grade": assessment.grade,
        "total_deduction": str(assessment.total_deduction),
        "violations": [
            {
                "id": vid,
                "type": by_id[vid].type_code,
                "name": by_id[vid].name,
                "severity": by_id[vid].severity,
                "occurred_on": by_id[vid].occurred_on.isoformat(),
                "deduction": str(deductions.get(vid, "0.00")),
            }
            for vid in ids
            if vid in by_id
        ],
    }


def _deductions(assessment: scoring.Assessment) -> dict[int, Any]:
    return {line.violation_id: scoring.to_decimal(line.deduction) for line in assessment.breakdown}


class _Run:
    """The mutable bookkeeping of one planning run; ``plan`` is the only way in."""

    def __init__(self, case: Case, policy: Policy, now: dt.datetime, today: dt.date) -> None:
        self.case, self.policy, self.rules, self.now = case, policy, policy.rules, now
        a, before = case.assessment, case.trader
        self.grade_since = now if a.grade != before.grade else before.grade_since
        self.grade_wants = self.rules.grade_measures.get(a.grade)
        self.confirmed = frozenset(f.id for f in case.facts)
        # Held measures by kind (one unlifted measure per kind: a database constraint).
        self.held: dict[str, Measure] = {m.measure: m for m in sorted(case.held, key=lambda m: m.id or 0)}
        self.used = set(case.used_keys)
        self.expired_now: set[str] = set()
        self.events: list[Event] = []
        self.created: list[Measure] = []
        self.wanted = self._wanted(today)

    @functools.cached_property
    def deductions(self) -> dict[int, Any]:
        return _deductions(self.case.assessment)

    def _wanted(self, today: dt.date) -> list[Wanted]:
        wanted = rule_triggers(self.case.facts, self.rules, today)
        if self.grade_wants:
            grade = self.case.assessment.grade
            key = f"score:{self.grade_wants}:{grade}:{self.grade_since.isoformat()}"
            wanted.append(Wanted(self.grade_wants, SCORE, f"grade-{grade}", key, None, ()))
        return wanted

    def settle(self) -> None:
        while (
            self._lift(superseding=False) | self._lift(superseding=True) | self._activate() | self._create()
        ):
            pass

    def _lift_reason(self, m: Measure, superseding: bool) -> str | None:
        if superseding:
            if m.basis != SCORE or self.grade_wants is None:
                return None
            heavier = self.held.get(self.grade_wants)
            lighter = MEASURE_RANK[m.measure] < MEASURE_RANK[self.grade_wants]
            return SUPERSEDED if lighter and heavier is not None and heavier.state == ACTIVE else None
        if m.basis == MANUAL:
            return EXPIRED if m.ended(self.now) else None
        if m.basis == RULE:
            if not m.grounds <= self.confirmed:
                return OVERTURNED
            return EXPIRED if m.ended(self.now) else None
        if self.grade_wants is None or MEASURE_RANK[self.grade_wants] < MEASURE_RANK[m.measure]:
            return RECOVERED
        return None

    def _lift(self, *, superseding: bool) -> bool:
        moved = False
        for kind, m in list(self.held.items()):
            reason = self._lift_reason(m, superseding)
            if reason is None:
                continue
            lifted = replace(m, state=LIFTED, lifted_at=self.now, lifted_reason=reason, lift_note="")
            del self.held[kind]
            self._event("restriction.lifted", lifted)
            if reason == EXPIRED:
                self.expired_now.add(kind)
            moved = True
        return moved

    def _activate(self) -> bool:
        moved = False
        for kind, m in list(self.held.items()):
            deadline = m.objection_deadline
            if m.state == PROPOSED and deadline is not None and deadline <= self.now:
                ends = deadline + dt.timedelta(days=m.duration_days) if m.duration_days else None
                self.held[kind] = replace(m, state=ACTIVE, starts_at=deadline, ends_at=ends)
                self._event("restriction.applied", self.held[kind])
                moved = True
        return moved

    def _create(self) -> bool:
        moved = False
        for w in self.wanted:
            if w.trigger_key in self.used or w.measure in self.held:
                continue
            self.used.add(w.trigger_key)
            m = self._new(w)
            self.held[w.measure] = m
            self.created.append(m)
            action = "restriction.applied" if m.state == ACTIVE else "restriction.proposed"
            self.events.append(Event(action, m, created=len(self.created) - 1))
            moved = True
        return moved

    def _new(self, w: Wanted) -> Measure:
        now, notice = self.now, self.rules.notice_days[w.measure]
        at_once = notice == 0 or w.measure in self.expired_now
        return Measure(
            id=None,
            measure=w.measure,
            state=ACTIVE if at_once else PROPOSED,
            basis=w.basis,
            rule_code=w.rule_code,
            trigger_key=w.trigger_key,
            policy_version=self.policy.version,
            reasons=statement(w, self.case.assessment, self.policy.version, self.case.facts, self.deductions),
            noticed_at=now,
            objection_deadline=None if at_once else now + dt.timedelta(days=notice),
            duration_days=w.duration_days,
            starts_at=now if at_once else None,
            ends_at=now + dt.timedelta(days=w.duration_days) if at_once and w.duration_days else None,
        )

    def _event(self, action: str, m: Measure) -> None:
        if m.id is None:  # a measure created in this run changes again: keep the record current
            index = next(i for i, c in enumerate(self.created) if c.trigger_key == m.trigger_key)
            self.created[index] = m
            self.events.append(Event(action, m, created=index))
        else:
            self.events.append(Event(action, m))


def plan(case: Case, policy: Policy, now: dt.datetime, today: dt.date) -> Plan:
    """Reassess one trader as of ``now`` (``today`` is ``now``'s date where the trader is
    assessed). See the module docstring for the rule."""
    run = _Run(case, policy, now, today)
    run.settle()
    a, before = case.assessment, case.trader
    status = worst_active(run.held.values())
    score_moved = a.score != before.score or a.grade != before.grade
    if not (score_moved or run.events or status != before.status):
        return Plan(
            before=before,
            trader=replace(before, flagged=False),
            changed=False,
            held=tuple(sorted(case.held, key=lambda m: m.id or 0)),
            used_keys=frozenset(run.used),
        )
    after = replace(
        before,
        score=a.score,
        grade=a.grade,
        status=status,
        grade_since=run.grade_since,
        version=before.version + 1,
        flagged=False,
    )
    events = list(run.events)
    history = None
    if score_moved:
        history = History(today, a.score, a.grade, policy.version)
        events.insert(0, Event("score.changed", payload=_score_payload(a, before, today, policy.version)))
    elif not events:  # only the status moved (cannot happen without an event, but be exact)
        events.append(Event("trader.status_changed", payload={}))
    final = {
        e.measure.id: e.measure for e in run.events if e.measure is not None and e.measure.id is not None
    }
    return Plan(
        before=before,
        trader=after,
        changed=True,
        created=tuple(run.created),
        updated=tuple(final[i] for i in sorted(final)),
        held=tuple(run.held.values()),
        used_keys=frozenset(run.used),
        history=history,
        events=tuple(events),
    )


def _score_payload(a: scoring.Assessment, before: TraderState, today: dt.date, version: int) -> dict:
    return {
        "trader": before.uscc,
        "score": a.score,
        "grade": a.grade,
        "previous_score": before.score,
        "previous_grade": before.grade,
        "as_of": today,
        "policy_version": version,
        "total_deduction": a.total_deduction,
        "violations": [line.violation_id for line in a.breakdown],
    }


def after(case: Case, result: Plan, created_ids: Sequence[int] | None = None) -> Case:
    """The case as it stands once ``result`` is applied: what the next run would load."""
    ids = list(created_ids) if created_ids is not None else [-(i + 1) for i in range(len(result.created))]
    by_key = {m.trigger_key: i for i, m in enumerate(result.created)}
    held = tuple(replace(m, id=ids[by_key[m.trigger_key]]) if m.id is None else m for m in result.held)
    return dataclasses.replace(case, trader=result.trader, held=held, used_keys=result.used_keys)
