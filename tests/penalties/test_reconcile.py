"""The measures planner, without a database: worked examples, then its invariants."""

from __future__ import annotations

import dataclasses
import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from penalties import reconcile, scoring
from penalties.measures import Fact
from penalties.policy import MEASURE_RANK, MEASURES, PolicyRules
from penalties.reconcile import Case, Measure, Policy, TraderState

NOW = dt.datetime(2026, 6, 30, 10, 0, tzinfo=dt.UTC)
TODAY = NOW.date()
DAY = dt.timedelta(days=1)
RULES = PolicyRules()
POLICY = Policy(1, RULES)
REASONS = {"measure", "recovered", "expired", "overturned", "superseded"}

# (type code, category, severity, points, validity days)
TYPES = (
    ("false-advertising", "false_advertising", "general", 60, 730),
    ("unlicensed-operation", "unlicensed", "general", 100, 730),
    ("counterfeit-goods", "counterfeit", "serious", 150, 1095),
    ("counterfeit-large-scale", "counterfeit", "grave", 400, 1825),
    ("refused-returns", "consumer_rights", "minor", 30, 365),
)


def trader(score: int = 1000, grade: str = "A", status: str = "normal", **kwargs) -> TraderState:
    values = {"grade_since": NOW - 400 * DAY, "version": 1, **kwargs}
    return TraderState(id=7, uscc="91350100M000100Y43", score=score, grade=grade, status=status, **values)


def violation(vid: int, type_index: int, age: int) -> tuple[scoring.ScoredViolation, Fact]:
    code, category, severity, points, validity = TYPES[type_index]
    occurred = TODAY - age * DAY
    recorded = dt.datetime.combine(occurred, dt.time(9), tzinfo=dt.UTC) + vid * dt.timedelta(seconds=1)
    return (
        scoring.ScoredViolation(vid, occurred, recorded, category, points, validity, code),
        Fact(vid, code, category, severity, occurred, occurred + DAY, code),
    )


def case(violations=(), held=(), used=(), **trader_fields) -> Case:
    scored = [s for s, _ in violations]
    rules = scoring.ScoringRules(cutoffs=RULES.cutoffs)
    return Case(
        trader=trader(**trader_fields),
        assessment=scoring.assess(scored, TODAY, rules),
        facts=tuple(f for _, f in violations),
        held=tuple(held),
        used_keys=frozenset(used) | {m.trigger_key for m in held if m.trigger_key},
    )


def measure(mid: int, kind: str, state: str = "active", basis: str = "score", **kwargs) -> Measure:
    values = {
        "rule_code": "",
        "trigger_key": f"key-{mid}",
        "policy_version": 1,
        "reasons": {"violations": []},
        "noticed_at": NOW - 30 * DAY,
        "starts_at": NOW - 30 * DAY if state == "active" else None,
        **kwargs,
    }
    return Measure(mid, kind, state, basis, **values)


def actions(plan: reconcile.Plan) -> list[tuple[str, str]]:
    return [(e.action, e.measure.measure if e.measure else "") for e in plan.events]


# --- worked examples --------------------------------------------------------------------------


def test_a_grave_violation_proposes_blacklisting_and_the_grade_measure():
    result = reconcile.plan(case([violation(1, 3, 2)]), POLICY, NOW, TODAY)
    assert (result.trader.score, result.trader.grade, result.trader.status) == (600, "C", "normal")
    assert actions(result) == [
        ("score.changed", ""),
        ("restriction.proposed", "blacklisted"),
        ("restriction.proposed", "listing_restricted"),
    ]
    blacklisting = result.created[0]
    assert blacklisting.objection_deadline == NOW + 5 * DAY
    assert blacklisting.trigger_key == "grave-violation:1"
    assert blacklisting.reasons["violations"][0]["deduction"] == "400.00"
    assert result.history == reconcile.History(TODAY, 600, "C", 1)
    assert result.trader.version == 2 and result.trader.grade_since == NOW


def test_records_carry_the_new_ids_status_and_version():
    result = reconcile.plan(case([violation(1, 3, 2)]), POLICY, NOW, TODAY)
    records = result.records([31, 32])
    assert [(r.action, r.subject_type, r.subject_id) for r in records] == [
        ("score.changed", "trader", 7),
        ("restriction.proposed", "restriction", 31),
        ("restriction.proposed", "restriction", 32),
    ]
    assert records[0].payload["violations"] == [1]
    assert all(r.payload["version"] == 2 and r.payload["status"] == "normal" for r in records)
    assert records[1].payload["restriction"] == 31 and records[1].payload["trader"] == "91350100M000100Y43"


def test_the_lighter_grade_measure_stays_until_the_heavier_is_in_force():
    # Grade D wants suspension; the trader holds an active listing restriction and a
    # proposed suspension whose deadline has now passed.
    lighter = measure(1, "listing_restricted", trigger_key="score:listing_restricted:C:x")
    heavier = measure(
        2, "suspended", "proposed", trigger_key="score:suspended:D:y", objection_deadline=NOW - DAY
    )
    violations = [violation(i, 1, 1) for i in range(1, 5)]  # 100+150+200+250 = 700 → 300, D
    result = reconcile.plan(
        case(violations, [lighter, heavier], score=300, grade="D", status="listing_restricted"),
        POLICY,
        NOW,
        TODAY,
    )
    assert actions(result) == [
        ("restriction.applied", "suspended"),
        ("restriction.lifted", "listing_restricted"),
    ]
    applied, lifted = result.updated[1], result.updated[0]
    assert applied.starts_at == NOW - DAY  # the deadline, not when the job came by
    assert lifted.lifted_reason == "superseded"
    assert result.trader.status == "suspended"


def test_a_measure_that_ends_is_continued_without_a_gap_when_still_wanted():
    # A manual suspension ends today while grade D still wants one: the new one applies at once.
    manual = measure(1, "suspended", basis="manual", trigger_key="", ends_at=NOW - DAY)
    violations = [violation(i, 1, 1) for i in range(1, 5)]
    result = reconcile.plan(
        case(violations, [manual], score=300, grade="D", status="suspended"), POLICY, NOW, TODAY
    )
    assert actions(result) == [("restriction.lifted", "suspended"), ("restriction.applied", "suspended")]
    assert result.created[0].state == "active" and result.created[0].starts_at == NOW
    assert result.trader.status == "suspended"


def test_nothing_moved_gives_an_empty_plan_that_only_clears_the_flag():
    result = reconcile.plan(case(flagged=True), POLICY, NOW, TODAY)
    assert result.empty and not result.events and result.history is None
    assert result.trader == dataclasses.replace(trader(), flagged=False)


def test_a_used_trigger_key_never_imposes_again():
    first = reconcile.plan(case([violation(1, 3, 2)]), POLICY, NOW, TODAY)
    keys = {m.trigger_key for m in first.created}
    again = reconcile.plan(case([violation(1, 3, 2)], used=keys), POLICY, NOW, TODAY)
    assert not [e for e in again.events if e.action != "score.changed"]


# --- invariants -------------------------------------------------------------------------------


@st.composite
def cases(draw) -> Case:
    n = draw(st.integers(0, 7))
    violations = [
        violation(vid, draw(st.integers(0, len(TYPES) - 1)), draw(st.integers(0, 1200)))
        for vid in range(1, n + 1)
    ]
    kinds = draw(st.lists(st.sampled_from(MEASURES), unique=True, max_size=4))
    held = []
    for mid, kind in enumerate(kinds, start=100):
        state = draw(st.sampled_from(["proposed", "active"]))
        basis = draw(st.sampled_from(["score", "rule", "manual"]))
        noticed = NOW - draw(st.integers(0, 400)) * DAY
        duration = draw(st.none() | st.integers(1, 400)) if basis != "rule" else draw(st.integers(1, 400))
        fields = {"noticed_at": noticed, "duration_days": duration}
        if state == "proposed":
            fields["objection_deadline"] = noticed + draw(st.integers(0, 10)) * DAY
        else:
            fields["starts_at"] = noticed
            fields["ends_at"] = noticed + duration * DAY if duration else None
        grounds = draw(st.lists(st.integers(1, n + 2), max_size=3, unique=True)) if basis == "rule" else []
        fields["reasons"] = {"violations": [{"id": g} for g in grounds]}
        fields["trigger_key"] = "" if basis == "manual" else f"{basis}:{mid}"
        held.append(measure(mid, kind, state, basis, **fields))
    used = draw(st.sets(st.sampled_from(["grave-violation:1", "repeat-counterfeit:2", "x"]), max_size=2))
    stored = draw(st.integers(0, 1000))
    return case(
        violations,
        held,
        used,
        score=stored,
        grade=RULES.grade_for(stored),
        status=reconcile.worst_active(held),
        flagged=draw(st.booleans()),
    )


policies = st.builds(
    lambda notice, grades: Policy(2, dataclasses.replace(RULES, notice_days=notice, grade_measures=grades)),
    st.fixed_dictionaries({m: st.integers(0, 5) for m in MEASURES}),
    st.fixed_dictionaries({g: st.none() | st.sampled_from(MEASURES) for g in "ABCD"}),
)
moments = st.integers(0, 3 * 24 * 60).map(lambda minutes: NOW + dt.timedelta(minutes=minutes))


@settings(max_examples=300, deadline=None)
@given(cases(), policies, moments)
def test_applying_a_plan_and_planning_again_gives_an_empty_plan(c, policy, now):
    first = reconcile.plan(c, policy, now, now.date())
    again = reconcile.plan(reconcile.after(c, first), policy, now, now.date())
    assert again.empty, again.events
    assert not again.events and not again.created and not again.updated


@settings(max_examples=300, deadline=None)
@given(cases(), policies, moments)
def test_a_manual_measure_is_never_lifted_before_its_end(c, policy, now):
    result = reconcile.plan(c, policy, now, now.date())
    lifted = {e.measure.id for e in result.events if e.action == "restriction.lifted" and e.measure.id}
    for m in c.held:
        if m.basis != "manual":
            continue
        end = m.ends_at
        if m.state == "proposed" and m.duration_days:  # its period counts from its deadline
            end = m.objection_deadline + m.duration_days * DAY
        if end is None or end > now:
            assert m.id not in lifted
            kept = next(h for h in result.held if h.id == m.id)
            assert (kept.noticed_at, kept.reasons, kept.duration_days) == (
                m.noticed_at,
                m.reasons,
                m.duration_days,
            )


@settings(max_examples=300, deadline=None)
@given(cases(), policies, moments)
def test_a_proposed_measure_keeps_its_notice_and_objection_deadline(c, policy, now):
    result = reconcile.plan(c, policy, now, now.date())
    final = {m.id: m for m in (*result.updated, *result.held) if m.id is not None}
    for m in c.held:
        if m.state != "proposed":
            continue
        after = final[m.id]
        assert (after.noticed_at, after.objection_deadline) == (m.noticed_at, m.objection_deadline)
        if m.objection_deadline > now:
            assert after.state in ("proposed", "lifted")  # lifted: its grounds went first
        elif after.starts_at is not None:
            assert after.starts_at == m.objection_deadline  # took effect at its deadline
        else:  # never in force: replaced or its grounds went before it took effect
            assert after.state == "lifted"
    for m in result.created:
        if m.state == "proposed":
            assert m.objection_deadline == now + policy.rules.notice_days[m.measure] * DAY


@settings(max_examples=300, deadline=None)
@given(cases(), policies, moments)
def test_the_status_is_the_worst_active_measure(c, policy, now):
    result = reconcile.plan(c, policy, now, now.date())
    active = [m.measure for m in result.held if m.state == "active"]
    assert result.trader.status == (max(active, key=MEASURE_RANK.__getitem__) if active else "normal")
    assert len({m.measure for m in result.held}) == len(result.held)  # one per kind


@settings(max_examples=300, deadline=None)
@given(cases(), policies, moments)
def test_lifting_always_carries_a_reason(c, policy, now):
    result = reconcile.plan(c, policy, now, now.date())
    for event in result.events:
        if event.action == "restriction.lifted":
            assert event.measure.lifted_reason in REASONS - {"measure"}
            assert event.measure.lifted_at == now and event.measure.state == "lifted"
    assert {m.trigger_key for m in result.created}.isdisjoint(c.used_keys)
