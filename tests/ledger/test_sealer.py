"""The sequencer: entries queued in the change's transaction, sealed by the sealer."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from django.db import transaction
from django.test import override_settings

from creditledger.ledger import merkle, sealer
from creditledger.ledger.models import LedgerEntry, LedgerTile, PendingEntry
from creditledger.ledger.services import checkpoint_create
from creditledger.ledger.verify import verify_ledger
from tests.ledger.helpers import append, mth, sample_entries, tamper
from tests.ledger.queue_worker import committed, entries_of
from tests.ledger.test_concurrency import ROOT, child_database_url, wait_for

pytestmark = pytest.mark.django_db


def bodies() -> list[bytes]:
    return [bytes(b) for b in LedgerEntry.objects.order_by("seq").values_list("body", flat=True)]


@override_settings(LEDGER_SEALER="process")
def test_queued_entries_get_their_seq_only_when_sealed():
    append(3, start=1)
    assert LedgerEntry.objects.count() == 0 and PendingEntry.objects.count() == 3
    with pytest.raises(RuntimeError), transaction.atomic():
        from creditledger.ledger.services import ledger_append_many

        ledger_append_many(actor="system:test", entries=sample_entries(2, start=50))
        raise RuntimeError("the change fails")
    assert PendingEntry.objects.count() == 3  # a rolled-back change queued nothing
    assert sealer.seal_queued() == 3
    assert PendingEntry.objects.count() == 0
    assert list(LedgerEntry.objects.values_list("seq", "payload__n")) == [(1, 1), (2, 2), (3, 3)]
    assert sealer.tree_size() == 3
    assert merkle.tree_root(size=3, read_tiles=sealer.read_tiles) == mth(bodies())
    assert sealer.seal_queued() == 0
    assert verify_ledger().ok


@override_settings(LEDGER_SEALER="process")
def test_sealing_in_batches_keeps_queue_order_and_the_tree():
    append(700)  # over COPY_FROM_ROWS, and over two level-0 tiles
    assert sealer.seal_queued(limit=300) == 300
    assert sealer.seal_queued(limit=300) == 300
    assert sealer.seal_queued(limit=300) == 100
    ns = list(LedgerEntry.objects.order_by("seq").values_list("payload__n", flat=True))
    assert ns == list(range(1, 701))
    assert merkle.tree_root(size=700, read_tiles=sealer.read_tiles) == mth(bodies())
    assert [
        len(t) // 32
        for t in LedgerTile.objects.filter(level=0).order_by("index").values_list("hashes", flat=True)
    ] == [256, 256, 188]
    result = verify_ledger()
    assert result.ok, result.summary()


def test_a_ledger_from_before_the_tree_gets_its_tree_built_in_batches(monkeypatch):
    append(30)
    tamper("DELETE FROM ledger_ledgertile")  # as the migration leaves an older ledger
    assert sealer.tree_size() == 0 and sealer.catching_up()
    monkeypatch.setattr(sealer, "CATCH_UP_BATCH", 12)
    assert [sealer.seal_queued(), sealer.seal_queued(), sealer.seal_queued(), sealer.seal_queued()] == [
        12,
        12,
        6,
        0,
    ]
    assert not sealer.catching_up()
    checkpoint = checkpoint_create()
    assert bytes.fromhex(checkpoint.root) == mth(bodies())
    assert verify_ledger().ok


def test_a_tree_that_does_not_hash_the_entries_is_a_fault_at_the_first_leaf_it_gets_wrong():
    append(300)
    with_bad = bytearray(LedgerTile.objects.get(level=0, index=1).hashes)
    with_bad[32 * 5] ^= 1
    tamper("UPDATE ledger_ledgertile SET hashes = %s WHERE level = 0 AND index = 1", [bytes(with_bad)])
    result = verify_ledger()
    assert (result.fault.seq, result.fault.kind) == (256 + 5 + 1, "tile mismatch")


def test_tiles_only_grow():
    append(3)
    from django.db import DatabaseError

    with pytest.raises(DatabaseError, match="only grows"), transaction.atomic():
        LedgerTile.objects.filter(level=0).update(hashes=b"\0" * 96)
    with pytest.raises(DatabaseError, match="only grows"), transaction.atomic():
        LedgerTile.objects.all().delete()


@pytest.mark.django_db(transaction=True)
def test_a_sealer_killed_at_random_moments_loses_and_duplicates_nothing(tmp_path):
    """8 writers queue entries (a fifth of their transactions roll back) while the sealer is
    started and killed with SIGKILL at random moments; one last run seals the rest."""
    writers, each = 8, 200
    env = {
        **os.environ,
        "DATABASE_URL": child_database_url(),
        "CONN_MAX_AGE": "0",
        "LEDGER_SEALER": "process",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.ledger.queue_worker", str(n), str(each), str(tmp_path)],
            cwd=ROOT,
            env=env,
        )
        for n in range(writers)
    ]
    kills = 0
    rng = random.Random(13)
    try:
        wait_for(lambda: len(list(tmp_path.glob("ready-*"))) == writers, 60, "the writers to start")
        (tmp_path / "go").touch()
        while len(list(tmp_path.glob("done-*"))) < writers or kills < 5:
            seal = subprocess.Popen(
                [sys.executable, "manage.py", "ledger_seal", "--batch", str(rng.choice([1, 7, 50]))],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert seal.stdout.readline().strip() == "ledger sealer: running"
            time.sleep(rng.uniform(0.0, 0.4))  # then killed at any moment of its work
            seal.send_signal(signal.SIGKILL)
            seal.wait()
            kills += 1
        for proc in procs:
            assert proc.wait(timeout=120) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    sealed_before = LedgerEntry.objects.count()
    subprocess.run([sys.executable, "manage.py", "ledger_seal", "--once"], cwd=ROOT, env=env, check=True)

    expected = Counter(
        f"{w}-{n}-{i}"
        for w in range(writers)
        for n in range(each)
        if committed(n)
        for i in range(entries_of(n))
    )
    got = Counter(LedgerEntry.objects.values_list("subject_id", flat=True))
    assert got == expected  # every committed change's entries exactly once, none rolled back
    assert 0 < sealed_before, "the killed sealers sealed nothing: the test proved little"
    total = sum(expected.values())
    assert list(LedgerEntry.objects.order_by("seq").values_list("seq", flat=True)) == list(
        range(1, total + 1)
    )
    assert PendingEntry.objects.count() == 0
    for w in range(writers):  # each writer's entries in the order it wrote them
        mine = LedgerEntry.objects.filter(actor=f"system:writer{w}").order_by("seq")
        assert list(mine.values_list("subject_id", flat=True)) == sorted(
            (k for k in expected if k.startswith(f"{w}-")), key=lambda k: tuple(map(int, k.split("-")[1:]))
        )
    assert merkle.tree_root(size=total, read_tiles=sealer.read_tiles) == mth(bodies())
    result = verify_ledger()
    assert result.ok, result.summary()
