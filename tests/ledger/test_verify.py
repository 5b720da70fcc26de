from __future__ import annotations

import pytest
from django.core.management.base import CommandError
from django.db import transaction

from creditledger.ledger import canonical
from creditledger.ledger import verify as verify_module
from creditledger.ledger.models import Checkpoint, LedgerEntry
from creditledger.ledger.services import Entry, checkpoint_create, ledger_append_many
from creditledger.ledger.verify import verify_ledger
from tests.ledger.helpers import append, run_verify, tamper, trigger_disabled

pytestmark = pytest.mark.django_db


def fault_of(*args: str) -> str:
    with pytest.raises(CommandError) as info:
        run_verify(*args)
    assert info.value.returncode == 1
    return str(info.value)


def test_an_intact_ledger_verifies_with_a_one_line_summary():
    entries = append(6)
    checkpoint_create()
    out = run_verify()
    assert out == f"ledger ok: entries 1..6, head {entries[-1].hash}, 1 checkpoint verified"


def test_an_empty_ledger_verifies():
    assert run_verify() == f"ledger ok: no entries, head {canonical.GENESIS_HASH}, 0 checkpoints verified"


def test_an_edited_payload_is_found_at_its_seq():
    append(6)
    tamper("UPDATE ledger_ledgerentry SET payload = jsonb_set(payload, '{fine}', '\"1.00\"') WHERE seq = 4")
    assert "seq 4: column/body mismatch: column payload differs" in fault_of()


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("actor", "user:1"),
        ("action", "violation.rejected"),
        ("trader_uscc", "91110105MA0000000X"),
        ("at", None),
    ],
)
def test_every_column_an_auditor_sees_must_match_the_hashed_body(column, value):
    append(5)
    if column == "at":
        tamper("UPDATE ledger_ledgerentry SET at = at - interval '1 day' WHERE seq = 3")
    else:
        tamper(f"UPDATE ledger_ledgerentry SET {column} = %s WHERE seq = 3", [value])
    assert f"seq 3: column/body mismatch: column {column} differs" in fault_of()


def test_an_edited_hash_is_found_at_its_seq():
    append(6)
    tamper("UPDATE ledger_ledgerentry SET hash = repeat('a', 64) WHERE seq = 5")
    assert "seq 5: hash mismatch" in fault_of()


def test_an_edited_body_is_found_at_its_seq():
    append(6)
    tamper(
        "UPDATE ledger_ledgerentry SET body = convert_to(replace(convert_from(body, 'UTF8'), "
        "'1250.50', '1.00'), 'UTF8') WHERE seq = 2"
    )
    assert "seq 2: hash mismatch" in fault_of()


def test_an_entry_rewritten_with_its_own_hash_breaks_the_next_link():
    append(6)
    row = LedgerEntry.objects.get(seq=3)
    body = bytes(row.body).replace(b"1250.50", b"1.00")
    tamper(
        "UPDATE ledger_ledgerentry SET body = %s, payload = jsonb_set(payload, '{fine}', '\"1.00\"'), "
        "hash = %s WHERE seq = 3",
        [body, canonical.chain_hash(row.prev_hash, body)],
    )
    assert "seq 4: broken link" in fault_of()


def test_a_deleted_entry_is_found_as_a_gap_at_its_seq():
    append(6)
    tamper("DELETE FROM ledger_ledgerentry WHERE seq = 3")
    assert "seq 3: gap: entry 3 is missing" in fault_of()


def test_a_deleted_first_entry_is_a_gap_at_one():
    append(3)
    tamper("DELETE FROM ledger_ledgerentry WHERE seq = 1")
    assert "seq 1: gap" in fault_of()


def test_the_range_options_limit_what_is_checked():
    append(8)
    tamper("UPDATE ledger_ledgerentry SET hash = repeat('a', 64) WHERE seq = 7")
    assert run_verify("--from", "2", "--to", "5").startswith("ledger ok: entries 2..5, head ")
    assert "seq 7: hash mismatch" in fault_of("--from", "6")
    # Entry 7's stored hash no longer links entry 8 to it.
    assert "seq 8: broken link" in fault_of("--from", "8")


def test_a_bad_range_is_a_usage_error():
    with pytest.raises(CommandError) as info:
        run_verify("--from", "5", "--to", "2")
    assert info.value.returncode == 2


def rewrite_tail(keep: int, count: int) -> None:
    """What a superuser could do: cut the tail and append a different one with correct hashes,
    the tree rebuilt over it (the sealer rebuilds a tree whose tiles are gone)."""
    tamper("DELETE FROM ledger_ledgerentry WHERE seq > %s", [keep])
    tamper("DELETE FROM ledger_ledgertile")
    entries = [Entry("violation.rejected", "violation", n, payload={"forged": True}) for n in range(count)]
    with transaction.atomic():
        ledger_append_many(actor="user:1", entries=entries)


def test_a_tail_rewritten_and_rechained_is_caught_by_the_stored_checkpoint():
    append(10)
    checkpoint_create()
    rewrite_tail(keep=7, count=3)
    assert "seq 10: checkpoint mismatch: stored checkpoint 10 signed hash" in fault_of()


def test_a_tail_rewritten_along_with_the_checkpoints_is_caught_by_an_auditors_copy(tmp_path):
    append(10)
    kept = tmp_path / "checkpoint-10.txt"
    kept.write_text(checkpoint_create().note, encoding="utf-8")
    append(2, start=11)
    checkpoint_create()
    rewrite_tail(keep=7, count=5)
    with trigger_disabled():  # as a superuser can
        Checkpoint.objects.all().delete()
    assert run_verify().startswith("ledger ok: entries 1..12")  # nothing left inside to compare with
    fault = fault_of("--checkpoint-file", str(kept))
    assert f"seq 10: checkpoint mismatch: checkpoint file {kept} signed hash" in fault


def test_a_cut_tail_is_caught_by_the_checkpoint_that_vouched_for_it(tmp_path):
    append(10)
    kept = tmp_path / "checkpoint.txt"
    kept.write_text(checkpoint_create().note, encoding="utf-8")
    tamper("DELETE FROM ledger_ledgerentry WHERE seq > 8")
    assert "seq 9: checkpoint mismatch: stored checkpoint 10 vouches for 10 entries" in fault_of()
    with trigger_disabled():
        Checkpoint.objects.all().delete()
    assert "ledger ends at 8" in fault_of("--checkpoint-file", str(kept))


def test_an_auditors_copy_that_matches_counts_as_verified(tmp_path):
    append(4)
    kept = tmp_path / "checkpoint.txt"
    kept.write_text(checkpoint_create().note, encoding="utf-8")
    append(2, start=5)
    checkpoint_create()
    assert run_verify("--checkpoint-file", str(kept)).endswith("3 checkpoints verified")


def test_a_changed_byte_in_an_auditors_copy_is_a_bad_signature(tmp_path):
    append(4)
    note = checkpoint_create().note
    kept = tmp_path / "checkpoint.txt"
    kept.write_text(note.replace("\n4\n", "\n3\n"), encoding="utf-8")
    assert "seq 3: bad checkpoint signature" in fault_of("--checkpoint-file", str(kept))


def test_a_stored_checkpoint_with_a_forged_note_is_a_bad_signature():
    append(4)
    checkpoint = checkpoint_create()
    with trigger_disabled():
        Checkpoint.objects.filter(pk=checkpoint.pk).update(note=checkpoint.note.replace("— ", "— x"))
    assert "seq 4: bad checkpoint signature" in fault_of()


def test_a_stored_checkpoint_whose_columns_disagree_with_its_note_is_a_mismatch():
    append(4)
    checkpoint = checkpoint_create()
    with trigger_disabled():
        Checkpoint.objects.filter(pk=checkpoint.pk).update(root="b" * 64)
    assert "seq 4: checkpoint mismatch: stored checkpoint 4: its columns" in fault_of()
    with trigger_disabled():
        Checkpoint.objects.filter(pk=checkpoint.pk).update(root=checkpoint.root, hash="b" * 64)
    assert "seq 4: checkpoint mismatch: stored checkpoint 4 signed hash bbbb" in fault_of()


def test_a_checkpoint_file_that_is_not_a_note_is_a_usage_error(tmp_path):
    junk = tmp_path / "junk.txt"
    junk.write_text("hello\n", encoding="utf-8")
    with pytest.raises(CommandError, match="not a checkpoint note") as info:
        run_verify("--checkpoint-file", str(junk))
    assert info.value.returncode == 2


def test_small_batches_verify_the_same():
    append(23)
    result = verify_ledger(batch_size=5)
    assert (result.ok, result.first, result.last) == (True, 1, 23)
    tamper("DELETE FROM ledger_ledgerentry WHERE seq BETWEEN 11 AND 21")  # whole windows empty
    assert verify_ledger(batch_size=5).fault == verify_ledger().fault
    assert verify_ledger(batch_size=5).fault.seq == 11


def test_the_fast_rebuild_matches_the_canonical_body():
    for row in append(3):
        columns = {name: getattr(row, name) for name in verify_module.ENTRY_COLUMNS[:8]}
        stored = LedgerEntry.objects.values_list(*verify_module.ENTRY_COLUMNS[:8]).get(seq=row.seq)
        assert verify_module.hashed_form(**dict(zip(columns, stored, strict=True))) == row.body
        assert canonical.entry_body(**columns) == row.body
