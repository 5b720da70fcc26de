from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from creditledger.exceptions import ApplicationError
from creditledger.ledger.actors import Actor
from creditledger.ledger.canonical import GENESIS_HASH, CanonicalError
from creditledger.ledger.models import Checkpoint, LedgerEntry
from creditledger.ledger.services import ledger_append
from tests.factories import make_uscc
from tests.ledger.helpers import append, run_verify
from traders.models import Trader
from traders.services import trader_register

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE ledger_ledgerentry SET actor = 'user:666' WHERE seq = 2",
        "UPDATE ledger_ledgerentry SET payload = '{}'::jsonb",
        "DELETE FROM ledger_ledgerentry WHERE seq = 3",
        "DELETE FROM ledger_ledgerentry",
        "TRUNCATE ledger_ledgerentry",
    ],
)
def test_raw_sql_cannot_change_or_remove_entries(sql):
    append(3)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql)
    assert LedgerEntry.objects.count() == 3
    assert LedgerEntry.objects.get(seq=2).actor == "system:test"


def test_the_orm_cannot_change_or_remove_entries_either():
    [entry] = append(1)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        LedgerEntry.objects.filter(seq=entry.seq).update(action="violation.rejected")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        entry.delete()


def test_entries_chain_from_the_genesis_value():
    first, second = append(2)
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    stored = LedgerEntry.objects.get(seq=2)
    assert bytes(stored.body) == second.body


def test_a_failed_service_writes_no_entry_and_leaves_no_gap():
    actor = Actor.system("test")

    @transaction.atomic
    def register_then_fail():
        trader_register(actor=actor, uscc=make_uscc(1), name="杭州测试商贸有限公司")
        assert LedgerEntry.objects.count() == 1  # written inside the transaction...
        raise RuntimeError("a later step of the service failed")

    with pytest.raises(RuntimeError):
        register_then_fail()
    assert LedgerEntry.objects.count() == 0  # ...and gone with it
    assert Trader.objects.count() == 0

    trader_register(actor=actor, uscc=make_uscc(2), name="宁波测试商贸有限公司")
    assert list(LedgerEntry.objects.values_list("seq", "action")) == [(1, "trader.registered")]


def test_a_refused_service_writes_no_entry():
    actor = Actor.system("test")
    trader_register(actor=actor, uscc=make_uscc(1), name="杭州测试商贸有限公司")
    with pytest.raises(ApplicationError):
        trader_register(actor=actor, uscc=make_uscc(1), name="重复登记")
    assert LedgerEntry.objects.count() == 1


def test_a_float_in_the_payload_is_refused_and_nothing_is_written():
    with pytest.raises(CanonicalError, match="floats"), transaction.atomic():
        ledger_append(
            actor="system:test",
            action="score.changed",
            subject_type="trader",
            subject_id=1,
            payload={"score": 9.5},
        )
    assert LedgerEntry.objects.count() == 0


def test_service_entries_verify():
    actor = Actor.system("test")
    trader_register(actor=actor, uscc=make_uscc(1), name="杭州测试商贸有限公司")
    append(3)
    assert run_verify().startswith("ledger ok: entries 1..4")


@pytest.mark.parametrize(
    "statement",
    ["UPDATE ledger_checkpoint SET seq = seq", "DELETE FROM ledger_checkpoint", "TRUNCATE ledger_checkpoint"],
)
def test_checkpoints_are_append_only_too(statement):
    from creditledger.ledger.services import checkpoint_create

    append(2)
    checkpoint_create()
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    assert Checkpoint.objects.count() == 1
