from __future__ import annotations

import psycopg2
import pytest
from django.db import connection

from creditledger.ledger import services, signing
from creditledger.ledger.models import Checkpoint
from creditledger.ledger.services import checkpoint_create
from creditledger.ledger.tasks import CHECKPOINT_LOCK, ledger_checkpoint
from creditledger.locks import lock_key
from tests.ledger.helpers import append


def other_connection():
    """A second session on the test database, as another worker would have."""
    conn = psycopg2.connect(**connection.get_connection_params())
    conn.autocommit = True
    return conn


@pytest.mark.django_db
def test_the_task_skips_an_empty_ledger():
    assert ledger_checkpoint() is None
    assert not Checkpoint.objects.exists()


@pytest.mark.django_db
def test_the_task_signs_the_head_and_skips_until_it_moves():
    append(3)
    assert ledger_checkpoint() == 3
    assert ledger_checkpoint() is None
    assert list(Checkpoint.objects.values_list("seq", flat=True)) == [3]
    append(2, start=4)
    assert ledger_checkpoint() == 5
    assert list(Checkpoint.objects.values_list("seq", flat=True)) == [5, 3]
    checkpoint = Checkpoint.objects.get(seq=5)
    assert signing.open_checkpoint(checkpoint.note).hash == checkpoint.root


@pytest.mark.django_db
def test_the_task_leaves_while_another_run_holds_the_lock():
    append(2)
    other = other_connection()
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [lock_key(CHECKPOINT_LOCK)])
        assert ledger_checkpoint() is None
        assert not Checkpoint.objects.exists()
        # Unlock explicitly: a closed session's locks are released asynchronously.
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [lock_key(CHECKPOINT_LOCK)])
    finally:
        other.close()
    assert ledger_checkpoint() == 2


@pytest.mark.django_db(transaction=True)
def test_a_run_that_loses_the_race_writes_no_second_checkpoint(monkeypatch):
    """Another process commits a checkpoint for the same head while this one signs."""
    append(2)
    real_sign = services.sign_tree

    def sign_while_another_commits(size, root):
        note, key_id = real_sign(size, root)
        other = other_connection()
        try:
            with other.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO ledger_checkpoint (seq, hash, kind, root, at, origin, key_id, note) "
                    "VALUES (%s, %s, 'tree', %s, now(), %s, %s, %s)",
                    [size, "0" * 64, root.hex(), "origin", key_id, note],
                )
        finally:
            other.close()
        return note, key_id

    monkeypatch.setattr(services, "sign_tree", sign_while_another_commits)
    assert checkpoint_create() is None
    assert Checkpoint.objects.filter(seq=2).count() == 1
