"""Appending to the ledger. Called by every service inside its own transaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.utils import timezone

from creditledger.ledger import canonical
from creditledger.ledger.actors import Actor
from creditledger.ledger.models import LedgerEntry

# pg_advisory_xact_lock key: "ledger" in ASCII. Held until the appending transaction ends,
# so seq follows commit order and nobody reads seq N+1 before N is visible.
ADVISORY_LOCK_KEY = 0x6C6564676572


@dataclass
class Entry:
    action: str
    subject_type: str
    subject_id: Any
    trader_uscc: str = ""
    payload: dict = field(default_factory=dict)


def _lock_and_head() -> tuple[int, str]:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_LOCK_KEY])
    # On SQLite the transaction holds the database write lock from BEGIN IMMEDIATE.
    head = LedgerEntry.objects.order_by("-seq").values_list("seq", "hash").first()
    return head if head else (0, canonical.GENESIS_HASH)


def _build(seq: int, prev: str, at, actor: Actor | str, entry: Entry) -> LedgerEntry:
    payload = canonical.normalise(entry.payload)
    body = canonical.entry_body(
        seq=seq,
        at=at,
        actor=str(actor),
        action=entry.action,
        subject_type=entry.subject_type,
        subject_id=str(entry.subject_id),
        trader_uscc=entry.trader_uscc,
        payload=payload,
    )
    return LedgerEntry(
        seq=seq,
        at=at,
        actor=str(actor),
        action=entry.action,
        subject_type=entry.subject_type,
        subject_id=str(entry.subject_id),
        trader_uscc=entry.trader_uscc,
        payload=payload,
        body=body,
        prev_hash=prev,
        hash=canonical.chain_hash(prev, body),
    )


def ledger_append_many(*, actor: Actor | str, entries: Iterable[Entry], at=None) -> list[LedgerEntry]:
    """Append entries in order under one lock. Must run inside the caller's transaction."""
    if not connection.in_atomic_block:
        raise RuntimeError("ledger appends must run inside the transaction of the change they record")
    entries = list(entries)
    if not entries:
        return []
    at = at or timezone.now()
    seq, prev = _lock_and_head()
    rows = []
    for entry in entries:
        seq += 1
        row = _build(seq, prev, at, actor, entry)
        rows.append(row)
        prev = row.hash
    LedgerEntry.objects.bulk_create(rows, batch_size=2000)
    return rows


def ledger_append(
    *,
    actor: Actor | str,
    action: str,
    subject_type: str,
    subject_id: Any,
    trader_uscc: str = "",
    payload: dict | None = None,
) -> LedgerEntry:
    entry = Entry(action, subject_type, subject_id, trader_uscc, payload or {})
    return ledger_append_many(actor=actor, entries=[entry])[0]
