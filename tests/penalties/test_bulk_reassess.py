"""The set-based bulk reassessment against the per-trader one, on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creditledger.ledger.actors import Actor
from creditledger.ledger.models import LedgerEntry
from creditledger.ledger.verify import verify_ledger
from penalties.models import Restriction, ScoreHistory, Violation, ViolationType
from penalties.services import (
    restriction_lift,
    restriction_withdraw,
    trader_reassess,
    violation_confirm,
    violation_record,
)
from penalties.services.reassessment import reassess_all
from penalties.tasks import sweep_reassessments
from tests import factories
from traders.models import Trader

pytestmark = pytest.mark.django_db

DAY = dt.timedelta(days=1)
CODES = (
    "false-advertising",
    "unlicensed-operation",
    "counterfeit-goods",
    "counterfeit-large-scale",
    "refused-returns",
    "obstructing-inspection",
)
REASSESSMENT_ACTIONS = ("score.changed", "trader.status_changed")


def _record(trader, code, occurred_on, actor):
    return violation_record(
        actor=actor,
        trader=trader,
        type=ViolationType.objects.get(code=code),
        occurred_on=occurred_on,
        source=Violation.Source.INSPECTION,
        description="检查发现",
    )


class Twins:
    """Pairs of traders with the same record: the left ones reassessed one by one, the right
    ones by the bulk run. Everything but ids and codes must come out the same."""

    def __init__(self, specs, recorder, decider, serial: int) -> None:
        self.recorder, self.decider = Actor.for_user(recorder), Actor.for_user(decider)
        self.pairs = []
        self.violations: dict[int, list[tuple[Violation, Violation]]] = {}
        today = timezone.localdate()
        for i, violations in enumerate(specs):
            pair = tuple(
                factories.TraderFactory(uscc=factories.make_uscc(serial * 100 + 2 * i + side))
                for side in (0, 1)
            )
            self.pairs.append(pair)
            self.violations[i] = []
            for code, age, confirmed in violations:
                both = tuple(_record(t, code, today - age * DAY, self.recorder) for t in pair)
                if confirmed:
                    both = tuple(violation_confirm(actor=self.decider, violation=v) for v in both)
                self.violations[i].append(both)

    def confirm_pending(self, i: int) -> None:
        for pair in self.violations[i]:
            if pair[0].status == Violation.Status.PENDING:
                self.violations[i][self.violations[i].index(pair)] = tuple(
                    violation_confirm(actor=self.decider, violation=v) for v in pair
                )
                return

    def by_hand(self, i: int, now: dt.datetime, supervisor) -> None:
        """Withdraw a proposal, or else lift an active measure, on both twins alike."""
        for state, service in (("proposed", restriction_withdraw), ("active", restriction_lift)):
            found = [
                Restriction.objects.filter(trader=t, state=state).order_by("measure").first()
                for t in self.pair(i)
            ]
            if all(found):
                for r in found:
                    service(actor=Actor.for_user(supervisor), restriction=r, note="复核", now=now)
                return

    def pair(self, i: int):
        return self.pairs[i]


def _normalise(value, names: dict):
    if isinstance(value, dict):
        return {k: _normalise(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v, names) for v in value]
    if isinstance(value, str) and ":" in value:
        head, _, tail = value.rpartition(":")
        if tail.isdigit() and ("violation", int(tail)) in names:
            return f"{head}:{names['violation', int(tail)]}"
    return value


def _snapshot(trader: Trader) -> dict:
    """What a reassessment determines, with this trader's ids replaced by their order."""
    trader.refresh_from_db()
    names: dict = {}
    for n, vid in enumerate(
        Violation.objects.filter(trader=trader).order_by("pk").values_list("pk", flat=True)
    ):
        names["violation", vid] = f"v{n}"
    restrictions = list(Restriction.objects.filter(trader=trader).order_by("pk"))
    for n, r in enumerate(restrictions):
        names["restriction", r.pk] = f"r{n}"

    def ids(payload: dict) -> dict:
        payload = dict(payload)
        payload.pop("trader", None)
        if "restriction" in payload:
            payload["restriction"] = names["restriction", payload["restriction"]]
        if "violations" in payload and all(isinstance(v, int) for v in payload["violations"]):
            payload["violations"] = [names["violation", v] for v in payload["violations"]]
        if "reasons" in payload:
            payload["reasons"] = _reasons(payload["reasons"])
        return _normalise(payload, names)

    def _reasons(reasons: dict) -> dict:
        reasons = dict(reasons)
        reasons["violations"] = [
            {**v, "id": names["violation", v["id"]]} for v in reasons.get("violations", [])
        ]
        return reasons

    return {
        "trader": (
            trader.score,
            trader.grade,
            trader.status,
            trader.version,
            # Until its grade first moves, a trader's grade dates from its registration.
            None if trader.grade_since == trader.created_at else trader.grade_since,
            trader.needs_reassessment,
        ),
        "measures": [
            (
                r.measure,
                r.state,
                r.basis,
                r.rule_code,
                _normalise(r.trigger_key, names),
                _reasons(r.reasons),
                r.noticed_at,
                r.objection_deadline,
                r.duration_days,
                r.starts_at,
                r.ends_at,
                r.lifted_at,
                r.lifted_reason,
            )
            for r in restrictions
        ],
        "history": list(
            ScoreHistory.objects.filter(trader=trader).order_by("pk").values_list("as_of", "score", "grade")
        ),
        "ledger": [
            (e.action, e.at, ids(e.payload))
            for e in LedgerEntry.objects.filter(trader_uscc=trader.uscc).order_by("seq")
            if e.action.startswith("restriction.") or e.action in REASSESSMENT_ACTIONS
        ],
    }


violation_specs = st.lists(
    st.tuples(st.sampled_from(CODES), st.integers(0, 900), st.booleans()), min_size=0, max_size=5
)
scenarios = st.fixed_dictionaries(
    {
        "traders": st.lists(violation_specs, min_size=1, max_size=3),
        "steps": st.lists(
            st.tuples(
                st.integers(0, 200), st.sampled_from(["none", "confirm", "by_hand"]), st.integers(0, 2)
            ),
            min_size=1,
            max_size=4,
        ),
        "batch": st.integers(1, 4),
    }
)
_serial = iter(range(1, 10**6))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios)
def test_the_bulk_run_and_the_per_trader_task_give_identical_results(scenario, supervisor, other_supervisor):
    with transaction.atomic():
        twins = Twins(scenario["traders"], supervisor, other_supervisor, next(_serial))
        now = timezone.now()
        for days, intervention, which in scenario["steps"]:
            now += days * DAY
            for left, _ in twins.pairs:
                trader_reassess(trader=left, now=now)
            reassess_all(now=now, batch_size=scenario["batch"])
            for left, right in twins.pairs:
                assert _snapshot(left) == _snapshot(right)
            i = which % len(twins.pairs)
            if intervention == "confirm":
                twins.confirm_pending(i)
            elif intervention == "by_hand":
                twins.by_hand(i, now, supervisor)
        transaction.set_rollback(True)


# --- runs -------------------------------------------------------------------------------------


@pytest.fixture
def record(supervisor, other_supervisor):
    recorder, decider = Actor.for_user(supervisor), Actor.for_user(other_supervisor)

    def _record_confirmed(trader, code, days_ago=1):
        violation = _record(trader, code, timezone.localdate() - days_ago * DAY, recorder)
        return violation_confirm(actor=decider, violation=violation)

    return _record_confirmed


def test_a_second_run_writes_nothing(record):
    traders = [factories.TraderFactory() for _ in range(5)]
    for n, trader in enumerate(traders):
        for code in CODES[: n + 1]:
            record(trader, code)
    now = timezone.now()
    first = reassess_all(now=now, batch_size=2)
    assert first.changed == 5 and first.candidates == 5
    entries, history = LedgerEntry.objects.count(), ScoreHistory.objects.count()
    second = reassess_all(now=now + dt.timedelta(minutes=5))
    assert (second.candidates, second.changed) == (0, 0)
    assert (LedgerEntry.objects.count(), ScoreHistory.objects.count()) == (entries, history)


def test_traders_whose_record_did_not_move_are_not_candidates(record):
    moved, settled, clean = factories.TraderFactory(), factories.TraderFactory(), factories.TraderFactory()
    record(moved, "false-advertising")
    record(settled, "false-advertising")
    trader_reassess(trader=settled)
    report = reassess_all()
    assert (report.candidates, report.changed) == (1, 1)
    assert Trader.objects.get(pk=clean.pk).version == 1


def test_as_of_a_day_means_the_end_of_that_day(record):
    trader = factories.TraderFactory()
    for code in ("unlicensed-operation", "unlicensed-operation", "false-advertising"):
        record(trader, code)  # 690: grade C, listing restriction with 3 days' notice
    trader_reassess(trader=trader)
    proposal = Restriction.objects.get(trader=trader, measure="listing_restricted")
    tomorrow = timezone.localdate() + DAY
    due = timezone.make_aware(dt.datetime.combine(tomorrow, dt.time(15)))
    Restriction.objects.filter(pk=proposal.pk).update(objection_deadline=due)
    call_command("reassess", "--all", "--as-of", tomorrow.isoformat())
    proposal.refresh_from_db()
    assert (proposal.state, proposal.starts_at) == ("active", due)


@pytest.mark.django_db(transaction=True)
def test_a_trader_another_worker_holds_is_skipped_and_flagged_for_the_sweeper(record):
    held, free = factories.TraderFactory(), factories.TraderFactory()
    record(held, "false-advertising")
    record(free, "false-advertising")
    Trader.objects.filter(pk__in=[held.pk, free.pk]).update(needs_reassessment=False)
    locked = threading.Event()

    def hold():  # another worker, busy with the trader for a while
        with transaction.atomic():
            Trader.objects.select_for_update().get(pk=held.pk)
            locked.set()
            time.sleep(2)
        connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert locked.wait(10)
    report = reassess_all()  # flags the skipped trader once the other worker lets go
    thread.join()
    assert (report.changed, report.skipped) == (1, 1)
    assert Trader.objects.get(pk=free.pk).score == 940
    skipped = Trader.objects.get(pk=held.pk)
    assert (skipped.score, skipped.needs_reassessment) == (1000, True)
    sweep_reassessments()
    skipped.refresh_from_db()
    assert (skipped.score, skipped.needs_reassessment) == (940, False)


def _each_measure_once() -> None:
    """Every measure is proposed, applied and lifted at most once in the ledger, and every
    measure the ledger names exists (and the other way round)."""
    counts = Counter(
        LedgerEntry.objects.filter(subject_type="restriction").values_list("subject_id", "action")
    )
    assert counts and all(n == 1 for n in counts.values()), counts.most_common(3)
    assert {sid for sid, _ in counts} == {str(pk) for pk in Restriction.objects.values_list("pk", flat=True)}


@pytest.mark.django_db(transaction=True)
def test_two_bulk_runs_at_once_give_one_result(record):
    traders = [factories.TraderFactory() for _ in range(40)]
    for n, trader in enumerate(traders):
        for code in CODES[: n % len(CODES) + 1]:
            record(trader, code)
    now = timezone.now()
    reports, errors = [], []

    def run():
        try:
            reports.append(reassess_all(now=now, batch_size=3))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    sweep_reassessments()  # what either run skipped, it flagged
    assert sum(r.changed for r in reports) == 40
    assert ScoreHistory.objects.count() == 40  # each trader changed by one run only
    _each_measure_once()
    assert LedgerEntry.objects.filter(action="score.changed").count() == 40
    assert not Trader.objects.filter(needs_reassessment=True).exists()
    assert reassess_all(now=now).changed == 0
    assert verify_ledger().ok
