"""Appending to the ledger. Called by every service inside its own transaction."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from psycopg2.extras import execute_values

from creditledger import pgcopy
from creditledger.ledger import canonical, signing
from creditledger.ledger.actors import Actor
from creditledger.ledger.models import Checkpoint, LedgerEntry

log = logging.getLogger(__name__)

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


_COLUMNS = "seq, at, actor, action, subject_type, subject_id, trader_uscc, payload, body, prev_hash, hash"


# From this many rows on, COPY beats execute_values (its setup costs a round trip).
COPY_FROM_ROWS = 500


def _insert(rows: list[LedgerEntry], payload_json: list[str]) -> None:
    if connection.vendor != "postgresql":
        LedgerEntry.objects.bulk_create(rows, batch_size=2000)
    elif len(rows) >= COPY_FROM_ROWS:
        _copy(rows, payload_json)
    else:
        _insert_values(rows, payload_json)


def _insert_values(rows: list[LedgerEntry], payload_json: list[str]) -> None:
    # execute_values skips the ORM's per-object work, which dominated bulk appends.
    values = [
        (
            r.seq,
            r.at,
            r.actor,
            r.action,
            r.subject_type,
            r.subject_id,
            r.trader_uscc,
            js,
            r.body,
            r.prev_hash,
            r.hash,
        )
        for r, js in zip(rows, payload_json, strict=True)
    ]
    with connection.cursor() as cursor:
        execute_values(
            cursor.cursor,
            f"INSERT INTO {LedgerEntry._meta.db_table} ({_COLUMNS}) VALUES %s",
            values,
            template="(%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s)",
            page_size=1000,
        )


def _copy(rows: list[LedgerEntry], payload_json: list[str]) -> None:
    """The same rows through COPY: the payload goes in as the very JSON text that was hashed."""
    pgcopy.copy_lines(LedgerEntry._meta.db_table, _COLUMNS.split(", "), _copy_lines(rows, payload_json))


def _copy_lines(rows: list[LedgerEntry], payload_json: list[str]) -> Iterator[str]:
    text = pgcopy.text
    at, stamp = None, ""
    for r, js in zip(rows, payload_json, strict=True):
        if r.at is not at:  # one time for a whole batch, as a rule
            at, stamp = r.at, r.at.isoformat()
        yield (
            f"{r.seq}\t{stamp}\t{text(r.actor)}\t{text(r.action)}\t{text(r.subject_type)}\t"
            f"{text(r.subject_id)}\t{text(r.trader_uscc)}\t{text(js)}\t\\\\x{r.body.hex()}\t"
            f"{r.prev_hash}\t{r.hash}\n"
        )


def ledger_append_many(*, actor: Actor | str, entries: Iterable[Entry], at=None) -> list[LedgerEntry]:
    """Append entries in order under one lock. Must run inside the caller's transaction.

    Everything that does not depend on the seq (normalising, serialising) happens before
    the lock is taken, so concurrent writers queue only for the hashing and the insert.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("ledger appends must run inside the transaction of the change they record")
    entries = list(entries)
    if not entries:
        return []
    at = at or timezone.now()
    actor = str(actor)
    prepared = [
        canonical.entry_parts(
            at=at,
            actor=actor,
            action=entry.action,
            subject_type=entry.subject_type,
            subject_id=str(entry.subject_id),
            trader_uscc=entry.trader_uscc,
            payload=entry.payload,
        )
        for entry in entries
    ]
    seq, prev = _lock_and_head()
    rows = []
    for entry, parts in zip(entries, prepared, strict=True):
        seq += 1
        body = parts.body(seq)
        digest = canonical.chain_hash(prev, body)
        rows.append(
            LedgerEntry(
                seq=seq,
                at=at,
                actor=actor,
                action=entry.action,
                subject_type=entry.subject_type,
                subject_id=str(entry.subject_id),
                trader_uscc=entry.trader_uscc,
                payload=parts.payload,
                body=body,
                prev_hash=prev,
                hash=digest,
            )
        )
        prev = digest
    _insert(rows, [parts.payload_json for parts in prepared])
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


@transaction.atomic
def checkpoint_create() -> Checkpoint | None:
    """Sign the chain head as a checkpoint; None when the head has not moved since the last one.

    No ledger lock is needed to read the head: appends hold the advisory lock until they
    commit, so the highest committed seq always has all smaller ones committed before it.
    Checkpoint.seq is unique, so a concurrent run can at worst lose the race, never duplicate.
    """
    head = LedgerEntry.objects.order_by("-seq").values_list("seq", "hash").first()
    if head is None:
        return None
    seq, head_hash = head
    last = Checkpoint.objects.order_by("-seq").values_list("seq", flat=True).first()
    if last is not None and last > seq:
        # Entries a checkpoint vouched for are gone: only tampering does that.
        log.error("ledger head %s is behind checkpoint %s: run verify_ledger", seq, last)
    if last is not None and last >= seq:
        return None
    note, key_id = signing.sign_checkpoint(size=seq, head_hash=head_hash)
    checkpoint = Checkpoint(
        seq=seq,
        hash=head_hash,
        at=timezone.now(),
        origin=settings.LEDGER_ORIGIN,
        key_id=key_id,
        note=note,
    )
    try:
        with transaction.atomic():
            checkpoint.save()
    except IntegrityError:  # another run signed the same head first
        return None
    return checkpoint
