"""End to end with real `celery worker` processes, a real Redis broker and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter

import psycopg2
import pytest
from django.db import connection
from django.utils import timezone

from creditledger.ledger.actors import Actor
from creditledger.ledger.models import LedgerEntry
from creditledger.ledger.sealer import ADVISORY_LOCK_KEY
from creditledger.ledger.verify import verify_ledger
from penalties.models import Restriction, ScoreHistory, Violation, ViolationType
from penalties.services import trader_reassess, violation_confirm, violation_record
from penalties.services.reassessment import reassess_all
from penalties.tasks import nightly_reassess, reassess_trader, sweep_reassessments
from tests import factories
from tests.worker import wait_for
from traders.models import Trader

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _grave_violation(trader) -> Violation:
    """Recorded by one supervisor, confirmed by another (four eyes); enqueues on commit."""
    recorder = factories.UserFactory(username="rec", is_staff=True, is_superuser=True)
    decider = factories.UserFactory(username="dec", is_staff=True, is_superuser=True)
    violation = violation_record(
        actor=Actor.for_user(recorder),
        trader=trader,
        type=ViolationType.objects.get(code="counterfeit-large-scale"),
        occurred_on=timezone.localdate(),
        source="inspection",
        description="仓库查获假冒商品",
    )
    return violation_confirm(actor=Actor.for_user(decider), violation=violation)


def _blacklistings(trader):
    return Restriction.objects.filter(trader=trader, measure="blacklisted")


def _proposed_entries(trader) -> int:
    return LedgerEntry.objects.filter(trader_uscc=trader.uscc, action="restriction.proposed").count()


def test_the_worker_proposes_blacklisting_which_takes_effect_after_the_deadline(workers):
    workers("w1")
    trader = factories.TraderFactory()
    _grave_violation(trader)
    proposal = wait_for(lambda: _blacklistings(trader).first(), what="the worker's proposal")
    assert proposal.state == "proposed"
    assert Trader.objects.get(pk=trader.pk).grade == "C"
    trader_reassess(trader=trader, now=proposal.objection_deadline + dt.timedelta(minutes=1))
    assert _blacklistings(trader).get().state == "active"
    assert Trader.objects.get(pk=trader.pk).status == "blacklisted"


def _waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = %s",
            [connection.settings_dict["NAME"]],
        )
        return cursor.fetchone()[0] > 0


def test_a_worker_killed_mid_reassessment_leaves_the_measure_recorded_exactly_once(broker, workers):
    trader = factories.TraderFactory()
    _grave_violation(trader)  # the message waits in the queue: no worker yet
    db = connection.settings_dict
    blocker = psycopg2.connect(
        dbname=db["NAME"], user=db["USER"], host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432
    )
    try:
        with blocker.cursor() as cursor:
            cursor.execute("SELECT id FROM traders_trader WHERE id = %s FOR UPDATE", [trader.pk])
        first = workers("doomed")
        wait_for(_waiting_on_a_lock, what="the worker to be inside the reassessment")
        first.kill9()
    finally:
        blocker.rollback()
        blocker.close()
    assert not _blacklistings(trader).exists()
    workers("survivor")
    # acks_late: the killed worker never acknowledged; Redis hands the message out again
    # once its visibility timeout has passed.
    wait_for(lambda: _blacklistings(trader).exists(), timeout=60, what="the redelivered reassessment")
    assert _blacklistings(trader).count() == 1
    assert _proposed_entries(trader) == 2  # blacklisted and listing_restricted, once each
    assert not Trader.objects.get(pk=trader.pk).needs_reassessment


def test_two_workers_reassessing_one_trader_agree_on_one_result(broker, workers):
    workers("a")
    workers("b")
    trader = factories.TraderFactory()
    _grave_violation(trader)
    for _ in range(20):
        reassess_trader.delay(trader.pk)
    wait_for(lambda: _blacklistings(trader).exists(), what="the proposal")
    redis = reassess_trader.app.connection_for_write().default_channel.client
    wait_for(lambda: redis.llen("scoring") == 0 and redis.hlen("unacked") == 0, what="the queue to drain")
    assert _blacklistings(trader).count() == 1
    assert Restriction.objects.filter(trader=trader).count() == 2
    assert _proposed_entries(trader) == 2
    assert LedgerEntry.objects.filter(trader_uscc=trader.uscc, action="score.changed").count() == 1


def test_with_the_broker_down_the_sweeper_applies_the_measure_once_the_worker_runs(broker, workers):
    workers("w1")
    broker.stop()
    trader = factories.TraderFactory()
    _grave_violation(trader)  # publishing fails after commit; the request still succeeds
    assert Trader.objects.get(pk=trader.pk).needs_reassessment
    assert not _blacklistings(trader).exists()
    broker.start()
    sweep_reassessments.delay()
    wait_for(lambda: _blacklistings(trader).exists(), timeout=60, what="the sweeper")
    assert _blacklistings(trader).count() == 1
    assert not Trader.objects.get(pk=trader.pk).needs_reassessment


def _lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory' AND datname = %s",
            [connection.settings_dict["NAME"]],
        )
        return cursor.fetchone()[0]


def _session():
    db = connection.settings_dict
    session = psycopg2.connect(
        dbname=db["NAME"], user=db["USER"], host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432
    )
    session.autocommit = True
    return session


def test_a_worker_killed_during_a_bulk_run_leaves_whole_batches_and_a_rerun_finishes(workers):
    """The nightly run is killed while its second batch is written; the first batch stays
    committed, the second leaves nothing, and a rerun does the rest exactly once."""
    recorder = factories.UserFactory(username="rec", is_staff=True, is_superuser=True)
    codes = ("false-advertising", "unlicensed-operation", "counterfeit-large-scale")
    traders = [factories.TraderFactory() for _ in range(40)]
    for n, trader in enumerate(traders):
        violation = violation_record(
            actor=Actor.for_user(recorder),
            trader=trader,
            type=ViolationType.objects.get(code=codes[n % 3]),
            occurred_on=timezone.localdate(),
            source="inspection",
            description="抽查",
        )
        Violation.objects.filter(pk=violation.pk).update(status="confirmed", decided_at=timezone.now())
    Trader.objects.update(needs_reassessment=True)

    first, second = _session(), _session()
    try:
        with first.cursor() as cursor:  # holds the ledger: batch 1 waits at its append
            cursor.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
        worker = workers(
            "bulk",
            extra_env={
                "REASSESS_BATCH": "10",
                "CELERY_TASK_TIME_LIMIT": "120",
                "CELERY_VISIBILITY_TIMEOUT": "300",
            },
        )
        nightly_reassess.delay()
        wait_for(lambda: _lock_waiters() == 1, what="batch 1 at its ledger append")
        # Queue a second holder behind batch 1, then let batch 1 through: it commits, and
        # batch 2 finds the ledger held again, its rows written but not committed.
        taken = threading.Event()

        def take_after_batch_1():
            with second.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
            taken.set()

        holder = threading.Thread(target=take_after_batch_1)
        holder.start()
        wait_for(lambda: _lock_waiters() == 2, what="the second holder in the queue")
        with first.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])
        assert taken.wait(30)
        wait_for(lambda: _lock_waiters() == 1, what="batch 2 at its ledger append")
        assert ScoreHistory.objects.count() == 10  # batch 1 only
        worker.kill9()
        holder.join()
    finally:
        first.close()
        second.close()  # ends its session: the lock goes with it

    assert ScoreHistory.objects.count() == 10  # nothing of batch 2 survived
    report = reassess_all()
    assert (report.candidates, report.changed) == (30, 30)
    assert ScoreHistory.objects.count() == 40
    counts = Counter(
        LedgerEntry.objects.filter(subject_type="restriction").values_list("subject_id", "action")
    )
    assert counts and set(counts.values()) == {1}
    assert {int(s) for s, _ in counts} == set(Restriction.objects.values_list("pk", flat=True))
    assert reassess_all().changed == 0
    assert verify_ledger().ok
