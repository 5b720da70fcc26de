from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from creditledger.ledger.actors import Actor
from creditledger.ledger.models import LedgerEntry
from penalties.models import Restriction, ScoreHistory, Violation, ViolationType
from penalties.services import (
    restriction_impose,
    restriction_lift,
    restriction_withdraw,
    trader_reassess,
    violation_confirm,
    violation_record,
)
from tests import factories
from traders.models import Trader

pytestmark = pytest.mark.django_db

DAY = dt.timedelta(days=1)


@pytest.fixture
def trader():
    return factories.TraderFactory()


@pytest.fixture
def decide(officer, supervisor, other_supervisor):
    """Record and confirm a violation as of `occurred_on`, four eyes respected."""

    def _decide(trader, code, occurred_on):
        recorder = Actor.for_user(supervisor)
        violation = violation_record(
            actor=recorder,
            trader=trader,
            type=ViolationType.objects.get(code=code),
            occurred_on=occurred_on,
            source=Violation.Source.INSPECTION,
            description="检查发现",
        )
        return violation_confirm(actor=Actor.for_user(other_supervisor), violation=violation)

    return _decide


def _reload(trader) -> Trader:
    return Trader.objects.get(pk=trader.pk)


def _held(trader):
    return {r.measure: r for r in Restriction.objects.filter(trader=trader, state__in=["proposed", "active"])}


def test_a_grave_violation_proposes_blacklisting_with_its_reasons(trader, decide):
    now = timezone.now()
    violation = decide(trader, "counterfeit-large-scale", timezone.localdate() - 2 * DAY)
    outcome = trader_reassess(trader=trader, now=now)
    trader = _reload(trader)
    assert trader.score == 600  # 1000 - 400 points, fresh
    assert trader.grade == "C"
    blacklisting = _held(trader)["blacklisted"]
    assert blacklisting.state == "proposed"
    assert blacklisting.basis == "rule" and blacklisting.rule_code == "grave-violation"
    assert blacklisting.objection_deadline == now + 5 * DAY
    assert blacklisting.reasons["policy_version"] == 1
    assert blacklisting.reasons["score"] == 600
    assert [v["id"] for v in blacklisting.reasons["violations"]] == [violation.pk]
    # grade C also wants listing_restricted, with 3 days' notice
    assert _held(trader)["listing_restricted"].state == "proposed"
    assert trader.status == "normal"  # nothing is in force during the notice period
    assert not trader.needs_reassessment
    actions = [e.action for e in outcome.entries]
    assert actions == ["score.changed", "restriction.proposed", "restriction.proposed"]
    assert ScoreHistory.objects.filter(trader=trader).count() == 1


def test_a_second_reassessment_writes_nothing(trader, decide):
    decide(trader, "counterfeit-large-scale", timezone.localdate())
    now = timezone.now()
    trader_reassess(trader=trader, now=now)
    version, entries = _reload(trader).version, LedgerEntry.objects.count()
    outcome = trader_reassess(trader=trader, now=now + dt.timedelta(minutes=1))
    assert not outcome.changed
    assert _reload(trader).version == version
    assert LedgerEntry.objects.count() == entries
    assert ScoreHistory.objects.count() == 1


def test_a_proposed_measure_takes_effect_at_its_deadline(trader, decide):
    decide(trader, "counterfeit-large-scale", timezone.localdate())
    now = timezone.now()
    trader_reassess(trader=trader, now=now)
    trader_reassess(trader=trader, now=now + 4 * DAY)
    assert _held(trader)["listing_restricted"].state == "active"
    assert _held(trader)["blacklisted"].state == "proposed"
    assert _reload(trader).status == "listing_restricted"
    trader_reassess(trader=trader, now=now + 6 * DAY)
    blacklisting = _held(trader)["blacklisted"]
    assert blacklisting.state == "active"
    assert blacklisting.starts_at == now + 5 * DAY  # the deadline, not when the sweeper came by
    assert blacklisting.ends_at == blacklisting.starts_at + 1095 * DAY
    assert _reload(trader).status == "blacklisted"
    assert LedgerEntry.objects.filter(action="restriction.applied").count() == 2


def test_a_warning_needs_no_notice(trader, decide):
    decide(trader, "obstructing-inspection", timezone.localdate())  # 100 points: 900 is still A
    decide(trader, "false-advertising", timezone.localdate())  # 60 more → 840, grade B
    trader_reassess(trader=trader)
    trader = _reload(trader)
    assert (trader.score, trader.grade, trader.status) == (840, "B", "warning")
    assert _held(trader)["warning"].state == "active"


def test_decay_and_expiry_raise_the_score_and_lift_the_measure(trader, decide):
    occurred = timezone.localdate() - 10 * DAY
    decide(trader, "unlicensed-operation", occurred)  # 100 points, 730 days
    decide(trader, "false-advertising", occurred)  # 60 points, 730 days
    now = timezone.now()
    trader_reassess(trader=trader, now=now)
    assert _reload(trader).score == 840
    later = now + (365 + 100) * DAY  # past half the validity: weights below 1
    trader_reassess(trader=trader, now=later)
    decayed = _reload(trader)
    assert 840 < decayed.score < 1000
    trader_reassess(trader=trader, now=now + 730 * DAY)  # both expired
    recovered = _reload(trader)
    assert (recovered.score, recovered.grade, recovered.status) == (1000, "A", "normal")
    warning = Restriction.objects.get(trader=trader, measure="warning")
    assert (warning.state, warning.lifted_reason) == ("lifted", "recovered")


def test_a_heavier_grade_measure_replaces_the_lighter_only_once_in_force(trader, decide):
    today = timezone.localdate()
    for code in ("unlicensed-operation", "unlicensed-operation", "false-advertising"):
        decide(trader, code, today)  # 100 + 150 (repeat ×1.5) + 60 = 310 → 690, grade C
    now = timezone.now()
    trader_reassess(trader=trader, now=now)
    trader_reassess(trader=trader, now=now + 4 * DAY)
    assert _held(trader)["listing_restricted"].state == "active"
    decide(trader, "obstructing-inspection", today)  # 100 more → 590, grade D
    trader_reassess(trader=trader, now=now + 5 * DAY)
    held = _held(trader)
    assert held["suspended"].state == "proposed"
    assert held["listing_restricted"].state == "active"  # no gap during the notice
    trader_reassess(trader=trader, now=now + 11 * DAY)
    held = _held(trader)
    assert set(held) == {"suspended"} and held["suspended"].state == "active"
    lighter = Restriction.objects.get(trader=trader, measure="listing_restricted")
    assert lighter.lifted_reason == "superseded"


def test_three_counterfeit_violations_within_a_year_suspend_for_90_days(trader, decide):
    today = timezone.localdate()
    for days_ago in (300, 100, 1):
        decide(trader, "counterfeit-goods", today - days_ago * DAY)
    now = timezone.now()
    trader_reassess(trader=trader, now=now)
    rule_measures = Restriction.objects.filter(trader=trader, basis="rule")
    assert [(r.measure, r.rule_code, r.duration_days) for r in rule_measures] == [
        ("suspended", "repeat-counterfeit", 90)
    ]


def test_a_withdrawn_proposal_is_not_proposed_again(trader, decide, supervisor):
    decide(trader, "counterfeit-large-scale", timezone.localdate())
    now = timezone.now()
    trader_reassess(trader=trader, now=now)
    proposal = _held(trader)["blacklisted"]
    restriction_withdraw(
        actor=Actor.for_user(supervisor), restriction=proposal, note="异议成立", now=now + DAY
    )
    trader_reassess(trader=trader, now=now + 10 * DAY)
    assert "blacklisted" not in _held(trader)
    assert Restriction.objects.get(pk=proposal.pk).state == "withdrawn"


def test_manual_measures_survive_automatic_reassessment(trader, supervisor):
    now = timezone.now()
    manual = restriction_impose(
        actor=Actor.for_user(supervisor),
        trader=trader,
        measure="warning",
        reason="约谈后仍未整改",
        duration_days=30,
        now=now,
    )
    assert manual.state == "active"
    trader_reassess(trader=trader, now=now + DAY)  # score 1000, grade A: the policy wants nothing
    assert Restriction.objects.get(pk=manual.pk).state == "active"
    assert _reload(trader).status == "warning"
    trader_reassess(trader=trader, now=now + 31 * DAY)
    manual.refresh_from_db()
    assert (manual.state, manual.lifted_reason) == ("lifted", "expired")
    assert _reload(trader).status == "normal"


def test_an_overturned_violation_lifts_its_rule_measure(trader, decide):
    violation = decide(trader, "counterfeit-large-scale", timezone.localdate())
    now = timezone.now()
    trader_reassess(trader=trader, now=now)
    Violation.objects.filter(pk=violation.pk).update(status="overturned")  # the appeals service comes later
    trader_reassess(trader=trader, now=now + DAY)
    blacklisting = Restriction.objects.get(trader=trader, measure="blacklisted")
    assert (blacklisting.state, blacklisting.lifted_reason) == ("lifted", "overturned")
    assert _reload(trader).score == 1000


def test_a_supervisor_lifts_by_hand_and_the_same_grounds_do_not_return(trader, decide, supervisor):
    decide(trader, "counterfeit-large-scale", timezone.localdate())
    now = timezone.now()
    trader_reassess(trader=trader, now=now)
    proposal = _held(trader)["blacklisted"]
    restriction_lift(actor=Actor.for_user(supervisor), restriction=proposal, note="复核认定处罚过重", now=now)
    trader_reassess(trader=trader, now=now + DAY)
    assert "blacklisted" not in _held(trader)


def test_officers_cannot_impose_or_lift(trader, officer):
    with pytest.raises(Exception) as info:
        restriction_impose(actor=Actor.for_user(officer), trader=trader, measure="warning", reason="x")
    assert info.value.code == "permission_denied"
    assert not Restriction.objects.exists()


def test_confirming_enqueues_a_reassessment_only_after_commit(
    trader, officer, django_capture_on_commit_callbacks
):
    actor = Actor.for_user(officer)
    violation = violation_record(
        actor=actor,
        trader=trader,
        type=ViolationType.objects.get(code="false-advertising"),
        occurred_on=timezone.localdate(),
        source="inspection",
        description="x",
    )
    with django_capture_on_commit_callbacks() as callbacks:
        violation_confirm(actor=actor, violation=violation)
    assert len(callbacks) == 1
    assert _reload(trader).needs_reassessment


def test_a_rolled_back_confirmation_enqueues_nothing_and_changes_nothing(
    trader, officer, django_capture_on_commit_callbacks
):
    actor = Actor.for_user(officer)
    violation = violation_record(
        actor=actor,
        trader=trader,
        type=ViolationType.objects.get(code="false-advertising"),
        occurred_on=timezone.localdate(),
        source="inspection",
        description="x",
    )
    entries = LedgerEntry.objects.count()
    with django_capture_on_commit_callbacks() as callbacks:
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                violation_confirm(actor=actor, violation=violation)
                raise RuntimeError("the caller failed after confirming")
    assert callbacks == []
    assert Violation.objects.get(pk=violation.pk).status == "pending"
    assert not _reload(trader).needs_reassessment
    assert LedgerEntry.objects.count() == entries


def test_the_nightly_job_rescores_decay_in_bulk_exactly_as_a_full_reassessment_would(decide):
    from penalties.tasks import reassess_due

    today = timezone.localdate()
    steady, regraded, untouched = (factories.TraderFactory() for _ in range(3))
    decide(steady, "refused-returns", today - 200 * DAY)  # 30 points over 365 days: decaying, stays A
    decide(regraded, "unlicensed-operation", today - 300 * DAY)  # 100 points over 730 days
    decide(regraded, "false-advertising", today - 300 * DAY)  # B now, A once decayed enough
    now = timezone.now()
    for trader in (steady, regraded, untouched):
        trader_reassess(trader=trader, now=now)
    assert _reload(regraded).grade == "B"
    later = now + 210 * DAY  # steady's violation has expired; regraded's weigh 0.6: 904, A
    changed = reassess_due(later)
    assert changed == 2
    assert _reload(steady).score == 1000
    assert _reload(regraded).grade == "A"
    assert Restriction.objects.get(trader=regraded, measure="warning").lifted_reason == "recovered"
    assert _reload(untouched).version == 1
    # The bulk path left each trader exactly where a full reassessment would.
    entries = LedgerEntry.objects.count()
    for trader in (steady, regraded, untouched):
        assert not trader_reassess(trader=trader, now=later).changed
    assert LedgerEntry.objects.count() == entries


def test_the_bulk_rescore_path_is_taken_when_only_the_score_moves(decide):
    from penalties.tasks import reassess_due

    trader = factories.TraderFactory()
    decide(trader, "unlicensed-operation", timezone.localdate() - 400 * DAY)  # decaying since day 365
    now = timezone.now()
    trader_reassess(trader=trader, now=now)
    before = _reload(trader)
    assert reassess_due(now + 30 * DAY) == 1
    after = _reload(trader)
    assert after.score > before.score and after.grade == before.grade
    assert after.version == before.version + 1
    entry = LedgerEntry.objects.filter(action="score.changed").last()
    assert (entry.payload["previous_score"], entry.payload["score"]) == (before.score, after.score)
    assert entry.actor == "system:reassess"
    assert ScoreHistory.objects.filter(trader=trader).count() == 2
    assert not trader_reassess(trader=trader, now=now + 30 * DAY).changed


def test_a_blacklisting_is_repaired_only_after_the_policys_minimum(trader, supervisor):
    now = timezone.now()
    actor = Actor.for_user(supervisor)
    blacklisting = restriction_impose(
        actor=actor, trader=trader, measure="blacklisted", reason="严重失信", duration_days=1095, now=now
    )
    trader_reassess(trader=trader, now=now + 6 * DAY)
    with pytest.raises(Exception) as info:
        restriction_lift(
            actor=actor, restriction=blacklisting, note="已整改", reason="repaired", now=now + 100 * DAY
        )
    assert info.value.code == "too_early_for_repair"
    lifted = restriction_lift(
        actor=actor, restriction=blacklisting, note="已整改", reason="repaired", now=now + 400 * DAY
    )
    assert (lifted.state, lifted.lifted_reason) == ("lifted", "repaired")


@pytest.mark.parametrize("rules", [[], {"cutoffs": "x"}, {"escalations": 5}])
def test_malformed_policy_rules_are_a_field_error_not_a_crash(supervisor, rules):
    from penalties.services import policy_create

    with pytest.raises(Exception) as info:
        policy_create(actor=Actor.for_user(supervisor), name="坏的", rules=rules)
    assert info.value.code == "invalid_policy"


def test_a_measure_that_expires_is_continued_by_the_grade_in_the_same_run(trader, decide, supervisor):
    """The grade's warning takes over from an expiring manual one without a gap: the lift
    and the new measure are written in one run (the old one is lifted before the new one is
    inserted, so one-unlifted-per-kind holds throughout)."""
    now = timezone.now()
    manual = restriction_impose(
        actor=Actor.for_user(supervisor),
        trader=trader,
        measure="warning",
        reason="约谈",
        duration_days=30,
        now=now,
    )
    decide(trader, "obstructing-inspection", timezone.localdate())
    decide(trader, "false-advertising", timezone.localdate())  # 840: grade B wants a warning
    trader_reassess(trader=trader, now=now + DAY)
    assert set(_held(trader)) == {"warning"} and _held(trader)["warning"].pk == manual.pk
    later = now + 31 * DAY
    outcome = trader_reassess(trader=trader, now=later)
    manual.refresh_from_db()
    assert (manual.state, manual.lifted_reason) == ("lifted", "expired")
    successor = _held(trader)["warning"]
    assert (successor.basis, successor.state, successor.starts_at) == ("score", "active", later)
    assert _reload(trader).status == "warning"
    assert [e.action for e in outcome.entries][-2:] == ["restriction.lifted", "restriction.applied"]
