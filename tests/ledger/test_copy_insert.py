"""Big batches go in through COPY; what is stored must not depend on which path wrote it."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from creditledger.ledger import sealer
from creditledger.ledger.models import LedgerEntry
from creditledger.ledger.services import Entry, ledger_append_many
from tests.ledger.helpers import run_verify, sample_entries

pytestmark = pytest.mark.django_db

COLUMNS = ("seq", "at", "actor", "action", "subject_type", "subject_id", "trader_uscc", "payload")
# Every character COPY's text format treats specially, and some JSON escapes besides.
AWKWARD = 'tab\there, new\nline, cr\r, back\\slash, \\N, quote " and 中文'


def stored() -> list[tuple]:
    return [
        (*row[:-3], bytes(row[-3]), row[-2], row[-1])
        for row in LedgerEntry.objects.order_by("seq").values_list(*COLUMNS, "body", "prev_hash", "hash")
    ]


def awkward_entries(count: int) -> list[Entry]:
    entries = sample_entries(count)
    for n, entry in enumerate(entries):
        entry.payload["note"] = f"{AWKWARD} {n}"
        entry.subject_id = f"id\t{n}\\"
    return entries


def append_through(path: str, monkeypatch, entries: list[Entry], at=None) -> None:
    called = []
    original = getattr(sealer, path)
    monkeypatch.setattr(sealer, path, lambda *args: called.append(path) or original(*args))
    with transaction.atomic():
        ledger_append_many(actor="user:back\\slash\tactor", entries=entries, at=at)
    assert called == [path]


def test_a_big_batch_is_stored_exactly_as_the_insert_path_stores_it(monkeypatch):
    count, at = sealer.COPY_FROM_ROWS, timezone.now()
    point = transaction.savepoint()
    monkeypatch.setattr(sealer, "COPY_FROM_ROWS", count + 1)
    append_through("_insert_values", monkeypatch, awkward_entries(count), at)
    inserted = stored()
    transaction.savepoint_rollback(point)

    monkeypatch.setattr(sealer, "COPY_FROM_ROWS", count)
    append_through("_copy", monkeypatch, awkward_entries(count), at)
    copied = stored()

    assert len(copied) == count
    assert copied == inserted  # columns, payloads, bodies, hashes: byte for byte
    assert copied[0][7]["note"] == f"{AWKWARD} 0"
    assert copied[0][5] == "id\t0\\"
    assert run_verify().startswith(f"ledger ok: entries 1..{count}")


def test_copy_appends_after_small_appends_and_keeps_the_chain(monkeypatch):
    with transaction.atomic():
        ledger_append_many(actor="system:test", entries=sample_entries(3))
    append_through("_copy", monkeypatch, sample_entries(sealer.COPY_FROM_ROWS, start=4))
    with transaction.atomic():
        ledger_append_many(actor="system:test", entries=sample_entries(2, start=10_000))
    seqs = list(LedgerEntry.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, sealer.COPY_FROM_ROWS + 6))
    assert run_verify().startswith("ledger ok")


def test_a_failed_copy_raises_djangos_error_and_writes_nothing(monkeypatch):
    with transaction.atomic():
        ledger_append_many(actor="system:test", entries=sample_entries(1))
    # A head read that lags (as a writer without the lock would see it) makes seq collide.
    monkeypatch.setattr(sealer, "_head", lambda: (0, "0" * 64))
    monkeypatch.setattr(sealer, "tree_size", lambda: 0)
    with pytest.raises(IntegrityError), transaction.atomic():
        ledger_append_many(actor="system:test", entries=sample_entries(sealer.COPY_FROM_ROWS))
    assert LedgerEntry.objects.count() == 1
