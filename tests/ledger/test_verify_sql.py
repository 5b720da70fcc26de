"""The set-based verification (verify_sql.py) against the per-entry one (verify.py).

Every check runs both: the set-based path in windows of 5 seqs must give exactly the
answer of the per-entry path (fault, seq, detail, range, counts), and must hand over to
the per-entry path at the window the fault is in, never earlier: so the windows really
check what the per-entry path checks, and an intact ledger never goes per entry at all.
"""

from __future__ import annotations

import pytest
from django.core.management.base import CommandError
from django.db import connection, transaction

from creditledger.ledger import canonical, verify_sql
from creditledger.ledger import verify as verify_module
from creditledger.ledger.models import Checkpoint, LedgerEntry, LedgerTile
from creditledger.ledger.services import Entry, checkpoint_create, ledger_append_many
from creditledger.ledger.verify import verify_ledger
from tests.ledger.helpers import append, run_verify, tamper, trigger_disabled

pytestmark = pytest.mark.django_db

WINDOW = 5


@pytest.fixture
def taken_over(monkeypatch):
    """The seqs from which the per-entry path was run."""
    starts = []
    walk = verify_module._walk

    def recording(start, *args, **kwargs):
        starts.append(start)
        return walk(start, *args, **kwargs)

    monkeypatch.setattr(verify_module, "_walk", recording)
    return starts


def fields(result) -> tuple:
    return (
        result.fault,
        result.first,
        result.last,
        result.head,
        result.checkpoints,
        result.fault_range,
        result.summary(),
    )


def both(taken_over, *, start=1, end=None, notes=(), workers=None, batch_size=3):
    """The set-based answer, checked equal to the per-entry one; and where it handed over."""
    sql = verify_sql.verify_ledger(
        start=start, end=end, notes=notes, batch_size=batch_size, workers=workers, window=WINDOW
    )
    handed = list(taken_over)
    python = verify_ledger(start=start, end=end, notes=notes, batch_size=batch_size, method="python")
    assert fields(sql) == fields(python)
    taken_over.clear()
    return sql, handed


def window_of(seq: int, start: int = 1) -> int:
    return start + (seq - start) // WINDOW * WINDOW


def test_an_intact_ledger_is_verified_by_the_windows_alone(taken_over):
    append(23)
    checkpoint_create()
    append(4, start=24)
    checkpoint_create()
    result, handed = both(taken_over)
    assert (result.ok, result.first, result.last, result.checkpoints) == (True, 1, 27, 2)
    assert handed == []
    assert result.summary() == run_verify()


def test_a_ledger_past_the_first_tiles_is_verified_by_the_windows_alone(taken_over):
    append(600)  # level-0 tiles 0, 1 full, and their hashes in the level-1 tile
    checkpoint_create()
    result, handed = both(taken_over, batch_size=100)
    assert (result.ok, result.last, handed) == (True, 600, [])


# Each displayed column in turn, and the stored hashes: the windows find every one.
COLUMN_TAMPERS = {
    "at": "UPDATE ledger_ledgerentry SET at = at + interval '1 microsecond' WHERE seq = %s",
    "actor": "UPDATE ledger_ledgerentry SET actor = 'user:1' WHERE seq = %s",
    "action": "UPDATE ledger_ledgerentry SET action = 'violation.rejected' WHERE seq = %s",
    "subject_type": "UPDATE ledger_ledgerentry SET subject_type = 'appeal' WHERE seq = %s",
    "subject_id": "UPDATE ledger_ledgerentry SET subject_id = subject_id || '0' WHERE seq = %s",
    "trader_uscc": "UPDATE ledger_ledgerentry SET trader_uscc = '91110105MA0000000X' WHERE seq = %s",
    "trader_uscc emptied": "UPDATE ledger_ledgerentry SET trader_uscc = '' WHERE seq = %s",
    "payload": "UPDATE ledger_ledgerentry SET payload = jsonb_set(payload, '{fine}', '\"1.00\"') "
    "WHERE seq = %s",
    "payload key added": "UPDATE ledger_ledgerentry SET payload = payload || '{\"x\": 1}' WHERE seq = %s",
    "payload number respelled": "UPDATE ledger_ledgerentry SET payload = jsonb_set(payload, '{n}', "
    "to_jsonb((payload->>'n')::numeric(10, 1))) WHERE seq = %s",
    "payload string to number": "UPDATE ledger_ledgerentry SET payload = jsonb_set(payload, '{fine}', "
    "'1250.50') WHERE seq = %s",
    "prev_hash": "UPDATE ledger_ledgerentry SET prev_hash = repeat('b', 64) WHERE seq = %s",
    "hash": "UPDATE ledger_ledgerentry SET hash = repeat('a', 64) WHERE seq = %s",
    "hash in capitals": "UPDATE ledger_ledgerentry SET hash = upper(hash) WHERE seq = %s",
    "seq": "UPDATE ledger_ledgerentry SET seq = seq + 100 WHERE seq = %s",
}
COLUMN_FAULTS = {
    "prev_hash": "broken link",
    "hash": "hash mismatch",
    "hash in capitals": "hash mismatch",
    "seq": "gap",
}


@pytest.mark.parametrize("column", COLUMN_TAMPERS)
def test_each_column_is_checked_by_the_windows(taken_over, column):
    append(12)
    tamper(COLUMN_TAMPERS[column], [8])
    result, handed = both(taken_over)
    kind = COLUMN_FAULTS.get(column, "column/body mismatch")
    assert (result.fault.seq, result.fault.kind) == (8, kind)
    if kind == "column/body mismatch" and column != "payload number respelled":
        assert f"column {column.split()[0]} differs" in result.fault.detail
    if column == "seq":  # the stored tree is not over the entries (108): per entry throughout
        assert handed == [1]
    else:
        assert handed == [window_of(8)] * 2  # the window alone, then on from it


def test_a_payload_number_respelled_is_a_payload_fault():
    append(3)
    tamper(COLUMN_TAMPERS["payload number respelled"], [2])
    assert LedgerEntry.objects.get(seq=2).payload["n"] == 2  # the same number, another spelling
    assert "seq 2: column/body mismatch" in verify_ledger().summary()


@pytest.mark.parametrize("seq", [1, 5, 6, 10, 11, 12])
def test_a_fault_at_either_end_of_a_window_is_found_in_that_window(taken_over, seq):
    append(12)
    tamper(COLUMN_TAMPERS["payload"], [seq])
    result, handed = both(taken_over)
    assert (result.fault.seq, result.fault.kind) == (seq, "column/body mismatch")
    assert handed == [window_of(seq)] * 2


@pytest.mark.parametrize("seq", [5, 12])
def test_a_hash_spelled_in_capitals_at_the_end_of_a_window_is_found_in_that_window(taken_over, seq):
    append(12)
    tamper(COLUMN_TAMPERS["hash in capitals"], [seq])
    result, handed = both(taken_over)
    assert (result.fault.seq, result.fault.kind) == (seq, "hash mismatch")
    assert handed == [window_of(seq)] * 2


@pytest.mark.parametrize("seq", [5, 6, 12])
def test_a_deleted_entry_at_either_end_of_a_window_is_a_gap(taken_over, seq):
    append(12)
    tamper("DELETE FROM ledger_ledgerentry WHERE seq = %s", [seq])
    result, handed = both(taken_over)
    if seq == 12:  # the last entry gone: the ledger ends at 11, which verifies; the tree
        # is longer than the entries, so it is checked per entry (nothing signed vouches for 12)
        assert (result.ok, result.last, handed) == (True, 11, [1])
    else:
        assert (result.fault.seq, result.fault.kind) == (seq, "gap")
        assert handed == [window_of(seq)] * 2


def test_an_edited_body_is_a_hash_mismatch(taken_over):
    append(12)
    tamper(
        "UPDATE ledger_ledgerentry SET body = convert_to(replace(convert_from(body, 'UTF8'), "
        "'1250.50', '1.00'), 'UTF8') WHERE seq = 7"
    )
    result, handed = both(taken_over)
    assert (result.fault.seq, result.fault.kind, handed) == (7, "hash mismatch", [6, 6])


@pytest.mark.parametrize(
    "body", [b"\xff\xfe not utf-8", b"{", b"", b'{"action":"violation.recorded","actor":"system:test"']
)
def test_a_body_the_database_cannot_decode_is_handed_over_and_named(taken_over, body):
    append(12)
    tamper("UPDATE ledger_ledgerentry SET body = %s WHERE seq = 9", [body])
    result, handed = both(taken_over)
    assert (result.fault.seq, result.fault.kind, handed) == (9, "hash mismatch", [6, 6])
    assert connection.in_atomic_block  # the caller's transaction goes on (a savepoint rolled back)
    assert LedgerEntry.objects.count() == 12


def test_an_entry_rewritten_with_its_own_hash_breaks_the_next_link(taken_over):
    append(12)
    row = LedgerEntry.objects.get(seq=5)
    body = bytes(row.body).replace(b"1250.50", b"1.00")
    tamper(
        "UPDATE ledger_ledgerentry SET body = %s, payload = jsonb_set(payload, '{fine}', '\"1.00\"'), "
        "hash = %s WHERE seq = 5",
        [body, canonical.chain_hash(row.prev_hash, body)],
    )
    result, handed = both(taken_over)
    # Entry 6 is in the next window: the link across windows is checked too.
    assert (result.fault.seq, result.fault.kind) == (6, "broken link")
    assert handed == [1, 1]  # entry 5's leaf no longer matches the stored tile


def test_a_tile_that_does_not_hash_the_entries_is_named_as_the_per_entry_path_names_it(taken_over):
    append(300)
    with_bad = bytearray(LedgerTile.objects.get(level=0, index=1).hashes)
    with_bad[32 * 5] ^= 1
    tamper("UPDATE ledger_ledgertile SET hashes = %s WHERE level = 0 AND index = 1", [bytes(with_bad)])
    result, handed = both(taken_over, batch_size=7)
    assert (result.fault.seq, result.fault.kind) == (256 + 5 + 1, "tile mismatch")
    assert handed == [window_of(262)] * 2


def test_a_level_one_tile_that_does_not_hash_the_tiles_below_is_named(taken_over):
    append(520)
    with_bad = bytearray(LedgerTile.objects.get(level=1, index=0).hashes)
    with_bad[32 + 3] ^= 1  # the hash of level-0 tile 1, filled by entry 512
    tamper("UPDATE ledger_ledgertile SET hashes = %s WHERE level = 1 AND index = 0", [bytes(with_bad)])
    result, handed = both(taken_over, batch_size=50)
    assert (result.fault.seq, result.fault.kind) == (257, "tile mismatch")
    assert handed == [window_of(512)] * 2


def rewrite_tail(keep: int, count: int) -> None:
    tamper("DELETE FROM ledger_ledgerentry WHERE seq > %s", [keep])
    tamper("DELETE FROM ledger_ledgertile")
    entries = [Entry("violation.rejected", "violation", n, payload={"forged": True}) for n in range(count)]
    with transaction.atomic():
        ledger_append_many(actor="user:1", entries=entries)


def test_a_rechained_tail_gives_the_range_between_the_checkpoints(taken_over):
    append(5)
    checkpoint_create()
    append(5, start=6)
    checkpoint_create()
    rewrite_tail(keep=7, count=3)
    result, handed = both(taken_over)
    assert (result.fault.seq, result.fault.kind) == (10, "checkpoint mismatch")
    assert result.fault_range == (5, 10)
    assert result.summary().endswith(
        "; entries in (5, 10] were changed after checkpoint 10 was signed; checkpoint 5 still holds"
    )
    assert result.checkpoints == 1
    assert handed == [window_of(10)] * 2


def test_a_rechained_tail_with_no_checkpoint_before_it_gives_the_range_from_the_start(taken_over):
    append(10)
    checkpoint_create()
    rewrite_tail(keep=7, count=3)
    result, _ = both(taken_over)
    assert result.fault_range == (0, 10)
    assert result.summary().endswith("no earlier checkpoint was checked")


def test_a_cut_tail_gives_the_range_too(taken_over, tmp_path):
    append(4)
    checkpoint_create()
    append(6, start=5)
    checkpoint_create()
    tamper("DELETE FROM ledger_ledgerentry WHERE seq > 8")
    result, handed = both(taken_over)
    assert (result.fault.seq, result.fault.kind) == (9, "checkpoint mismatch")
    assert result.fault_range == (4, 10)
    assert handed == [1]  # a tree of 10 over 8 entries: per entry throughout


def test_checkpoint_notes_and_signatures_are_checked_by_the_windows(taken_over, tmp_path):
    append(4)
    kept = checkpoint_create().note
    append(8, start=5)
    checkpoint = checkpoint_create()
    notes = [("kept", kept)]
    result, handed = both(taken_over, notes=notes)
    assert (result.ok, result.checkpoints, handed) == (True, 3, [])
    forged = [("kept", kept.replace("\n4\n", "\n3\n"))]
    result, handed = both(taken_over, notes=forged)
    assert (result.fault.seq, result.fault.kind, handed) == (3, "bad checkpoint signature", [1, 1])
    with trigger_disabled():
        Checkpoint.objects.filter(pk=checkpoint.pk).update(root="b" * 64)
    result, handed = both(taken_over)
    assert (result.fault.seq, result.fault.kind, handed) == (12, "checkpoint mismatch", [11, 11])
    assert result.fault_range is None  # the checkpoint's row was changed, not the entries


def test_ranges_are_verified_alike(taken_over):
    append(17)
    checkpoint_create()
    tamper(COLUMN_TAMPERS["hash"], [14])
    result, handed = both(taken_over, start=3, end=12)
    assert (result.ok, result.first, result.last, handed) == (True, 3, 12, [])
    result, handed = both(taken_over, start=4)
    assert (result.fault.seq, result.fault.kind, handed) == (14, "hash mismatch", [window_of(14, 4)] * 2)
    result, handed = both(taken_over, start=15)
    assert (result.fault.seq, result.fault.kind) == (15, "broken link")


def test_strings_the_encoder_escapes_verify(taken_over):
    entries = [
        Entry("violation.recorded", "violation", 'a"b\\c\nd', "", {"k": 'x"\\\u0001y', "z": "商品"}),
        Entry("violation.recorded", "violation", "plain", "", {"k": "plain"}),
    ]
    with transaction.atomic():
        ledger_append_many(actor="user:1", entries=entries)
    append(8)
    result, handed = both(taken_over)
    assert (result.ok, result.last) == (True, 10)
    # The payload's escapes are the body's JSON; a column with a backslash goes per entry.
    assert handed == [1]
    tamper("UPDATE ledger_ledgerentry SET subject_id = 'a\\\"b\\c\nd' WHERE seq = 1")  # now spelled escaped
    result, handed = both(taken_over)
    assert (result.fault.seq, result.fault.kind, handed) == (1, "column/body mismatch", [1, 1])


@pytest.mark.django_db(transaction=True)
def test_windows_on_several_connections_share_one_snapshot_and_name_the_same_fault(taken_over):
    append(23)
    checkpoint_create()
    result, handed = both(taken_over, workers=3)
    assert (result.ok, result.last, handed) == (True, 23, [])
    tamper("UPDATE ledger_ledgerentry SET body = %s WHERE seq = 19", [b"\xff"])
    tamper(COLUMN_TAMPERS["actor"], [22])
    result, handed = both(taken_over, workers=3)
    assert (result.fault.seq, result.fault.kind, handed) == (19, "hash mismatch", [16, 16])
    assert not connection.in_atomic_block


def test_the_command_names_the_same_fault_by_either_method():
    append(12)
    checkpoint_create()
    assert run_verify() == run_verify("--method", "python") == run_verify("--workers", "1")
    tamper(COLUMN_TAMPERS["subject_id"], [9])
    faults = set()
    for args in ([], ["--method", "python"], ["--workers", "3"]):
        with pytest.raises(CommandError) as info:
            run_verify(*args)
        assert info.value.returncode == 1
        faults.add(str(info.value))
    assert len(faults) == 1
    assert "seq 9: column/body mismatch: column subject_id differs" in faults.pop()


def test_zero_workers_is_a_usage_error():
    with pytest.raises(CommandError) as info:
        run_verify("--workers", "0")
    assert info.value.returncode == 2
