"""The sequencer: entries get their seq, chain hash and place in the Merkle tree here.

A change's transaction writes its entries to the queue (PendingEntry) and commits; the
sealer, one at a time under the ledger lock, takes committed queued entries in queue
order, gives them the next seqs, chains and hashes them, inserts them into LedgerEntry,
grows the tree's tiles, and deletes them from the queue, all in one transaction. So:

- nothing that did not commit is ever sealed (the sealer cannot see it), and nothing that
  committed is lost (it stays queued until a sealing transaction commits);
- a sealer killed at any instant rolls back whole: the entries stay queued, the seqs it
  meant to give are given by the next run; nothing is sealed twice (the same transaction
  that inserts an entry deletes its queue row);
- seq has no gaps and grows in the order sealing transactions commit, so a reader that
  resumes after the last seq it saw never misses one (sealed rows of one run appear at once).

Queue order is the queue's id, taken when the change wrote its entries: a change that had
to wait for another one's row locks writes its entries after that one did, so entries
about one trader stay in the order of the changes.

`LEDGER_SEALER = "inline"` seals a change's entries in its own transaction instead, under
the same lock (the queue is then only used by entries left there by a sealer process):
simple, and every writer waits for the one before it to commit. That is for the test
suite and for small installations; production runs `manage.py ledger_seal` (docs/deploy.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings
from django.db import connection, transaction
from psycopg2.extras import execute_values

from creditledger import pgcopy
from creditledger.ledger import canonical, merkle
from creditledger.ledger.models import LedgerEntry, LedgerTile, PendingEntry

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key: "ledger" in ASCII. Held by a sealing transaction until it
# ends, so seq follows commit order and nobody reads seq N+1 before N is visible.
ADVISORY_LOCK_KEY = 0x6C6564676572
# How long an idle sealer waits before it looks at the queue again: the most an entry waits
# to be seen (Trillian's sequencer polls the same way). Writers send no NOTIFY: PostgreSQL
# serialises the commits of notifying transactions (a database-wide lock held through the
# commit's WAL flush), which cost concurrent writers their group commit: 8 writers managed
# under half the appends per second that they do without it (bench_ledger).
POLL_SECONDS = 0.05
BATCH = 5000  # queued entries sealed per transaction
CATCH_UP_BATCH = 50_000  # existing entries hashed into the tree per transaction
COPY_FROM_ROWS = 500  # from this many rows on, COPY beats a multi-row INSERT


@dataclass(frozen=True, slots=True)
class Unsealed:
    """An entry before its seq: its columns and its canonical bytes either side of the seq."""

    at: Any
    actor: str
    action: str
    subject_type: str
    subject_id: str
    trader_uscc: str
    payload: Any  # normalised
    payload_json: str
    head: bytes
    tail: bytes


def inline() -> bool:
    return settings.LEDGER_SEALER == "inline"


# --- the queue -------------------------------------------------------------------------

_QUEUE_COLUMNS = (
    "at",
    "actor",
    "action",
    "subject_type",
    "subject_id",
    "trader_uscc",
    "payload",
    "head",
    "tail",
)


def enqueue(items: Sequence[Unsealed]) -> list[LedgerEntry]:
    """Queue the entries in the caller's transaction; the sealer sees them once it commits.

    Returns the entries as they will read, but without seq and hashes (not known yet)."""
    if connection.vendor == "postgresql":
        rows = [(*_columns(i)[:6], i.payload_json, i.head, i.tail) for i in items]
        table = PendingEntry._meta.db_table
        with connection.cursor() as cursor:
            if len(rows) >= COPY_FROM_ROWS:
                lines = ("\t".join(map(pgcopy.value, row)) + "\n" for row in rows)
                pgcopy.copy_lines(table, _QUEUE_COLUMNS, lines)
            else:
                execute_values(
                    cursor.cursor,
                    f"INSERT INTO {table} ({', '.join(_QUEUE_COLUMNS)}) VALUES %s",
                    rows,
                    template="(%s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s)",
                    page_size=1000,
                )
    else:
        PendingEntry.objects.bulk_create(
            [PendingEntry(**dict(zip(_QUEUE_COLUMNS, _columns(i), strict=True))) for i in items],
            batch_size=2000,
        )
    return [_entry(None, i, b"", "", "") for i in items]


def _columns(i: Unsealed) -> tuple:
    return (i.at, i.actor, i.action, i.subject_type, i.subject_id, i.trader_uscc, i.payload, i.head, i.tail)


def _entry(seq: int | None, i: Unsealed, body: bytes, prev: str, digest: str) -> LedgerEntry:
    return LedgerEntry(
        seq=seq,
        at=i.at,
        actor=i.actor,
        action=i.action,
        subject_type=i.subject_type,
        subject_id=i.subject_id,
        trader_uscc=i.trader_uscc,
        payload=i.payload,
        body=body,
        prev_hash=prev,
        hash=digest,
    )


# --- sealing ---------------------------------------------------------------------------


def _lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_LOCK_KEY])
    # On SQLite the transaction holds the database write lock from BEGIN IMMEDIATE.


def _head() -> tuple[int, str]:
    head = LedgerEntry.objects.order_by("-seq").values_list("seq", "hash").first()
    return head if head else (0, canonical.GENESIS_HASH)


def seal(items: Sequence[Unsealed]) -> list[LedgerEntry]:
    """Seal `items` now, in the caller's transaction, after anything already queued.

    Takes the ledger lock until the transaction ends."""
    if not connection.in_atomic_block:
        raise RuntimeError("sealing must run inside a transaction")
    _lock()
    if PendingEntry.objects.exists():
        _seal_queued(limit=None)
    return _seal(items)


def _seal(items: Sequence[Unsealed]) -> list[LedgerEntry]:
    seq, prev = _head()
    size = tree_size()
    if size < seq:  # an older ledger whose tree is not built yet, or not all of it
        _catch_up(size, seq, limit=None)
    elif size > seq:
        raise RuntimeError(f"the tree has {size} leaves but the ledger ends at {seq}: run verify_ledger")
    rows, leaves = [], []
    for i in items:
        seq += 1
        body = i.head + str(seq).encode("ascii") + i.tail
        digest = canonical.chain_hash(prev, body)
        rows.append(_entry(seq, i, body, prev, digest))
        leaves.append(merkle.leaf_hash(body))
        prev = digest
    _insert(rows, [i.payload_json for i in items])
    _grow(seq - len(rows), leaves)
    return rows


def _seal_queued(limit: int | None) -> int:
    queued = PendingEntry.objects.order_by("id").values_list("id", *_QUEUE_COLUMNS)
    if limit is not None:
        queued = queued[:limit]
    ids, items = [], []
    for pk, at, actor, action, subject_type, subject_id, uscc, payload, head, tail in queued:
        ids.append(pk)
        items.append(
            Unsealed(
                at,
                actor,
                action,
                subject_type,
                subject_id,
                uscc,
                payload,
                orjson.dumps(payload).decode("utf-8"),
                bytes(head),
                bytes(tail),
            )
        )
    if not ids:
        return 0
    _seal(items)
    PendingEntry.objects.filter(id__in=ids).delete()
    return len(ids)


def seal_queued(limit: int = BATCH) -> int:
    """One sealing transaction: up to `limit` queued entries sealed, or, while an older
    ledger's tree is being built, the next CATCH_UP_BATCH entries hashed into it. Returns
    how many entries it sealed or hashed (0: nothing to do)."""
    with transaction.atomic():
        _lock()
        seq = _head()[0]
        size = tree_size()
        if size < seq:  # build the tree over the existing entries first, a batch at a time
            return _catch_up(size, seq, limit=CATCH_UP_BATCH)
        return _seal_queued(limit)


def run(*, stop=lambda: False, idle_seconds: float = POLL_SECONDS, batch: int = BATCH) -> None:
    """The sealer's loop: seal while there is work, then look at the queue every
    `idle_seconds` (one cheap query) until there is some again.

    Run one (`manage.py ledger_seal`); a second one waits on the ledger lock and takes over
    whenever the first stops."""
    sealed = seal_queued(batch)  # first, whatever is queued, or the tree's catch-up
    while not stop():
        if sealed:
            started = time.monotonic()
            sealed = seal_queued(batch)
            if sealed:
                log.debug("sealed %s entries in %.3f s", sealed, time.monotonic() - started)
            continue
        time.sleep(idle_seconds)
        if PendingEntry.objects.exists():  # an index probe, without the ledger lock
            sealed = seal_queued(batch)


def catching_up() -> bool:
    return tree_size() < _head()[0]


# --- the tree --------------------------------------------------------------------------


def tree_size() -> int:
    """Leaves in the stored tree: the last level-0 tile's index × 256 plus its width."""
    last = LedgerTile.objects.filter(level=0).order_by("-index").values_list("index", "hashes").first()
    if last is None:
        return 0
    index, hashes = last
    return index * merkle.TILE_WIDTH + len(hashes) // merkle.HASH_SIZE


def read_tiles(tiles: Sequence[merkle.Tile]) -> list[bytes]:
    """The stored bytes of each tile asked, in order; b"" for one not stored (merkle then
    says which tile is short)."""
    if not tiles:
        return []
    keys = [t.key for t in tiles]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"SELECT level, index, hashes FROM {LedgerTile._meta.db_table} "
                "WHERE (level, index) IN (SELECT * FROM unnest(%s::smallint[], %s::bigint[]))",
                [[k[0] for k in keys], [k[1] for k in keys]],
            )
            found = {(level, index): bytes(data) for level, index, data in cursor.fetchall()}
        else:
            found = {}
            for level, index in keys:
                tile = LedgerTile.objects.filter(level=level, index=index)
                data = tile.values_list("hashes", flat=True).first()
                if data is not None:
                    found[level, index] = bytes(data)
    return [found.get(k, b"") for k in keys]


def _grow(size: int, leaves: Sequence[bytes]) -> merkle.Appended:
    appended = merkle.append_leaves(size=size, leaf_hashes=leaves, read_tiles=read_tiles)
    rows = [(tile.level, tile.index, data) for tile, data in appended.tiles]
    table = LedgerTile._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            execute_values(
                cursor.cursor,
                f'INSERT INTO {table} (level, "index", hashes) VALUES %s '
                'ON CONFLICT (level, "index") DO UPDATE SET hashes = EXCLUDED.hashes',
                rows,
                page_size=1000,
            )
        else:
            cursor.executemany(
                f'INSERT INTO {table} (level, "index", hashes) VALUES (%s, %s, %s) '
                'ON CONFLICT (level, "index") DO UPDATE SET hashes = excluded.hashes',
                rows,
            )
    return appended


def _catch_up(size: int, seq: int, limit: int | None) -> int:
    """Hash entries size+1.. into the tree (up to `limit` of them, or to `seq`)."""
    end = seq if limit is None else min(seq, size + limit)
    step = CATCH_UP_BATCH
    done = size
    while done < end:
        upto = min(end, done + step)
        window = LedgerEntry.objects.filter(seq__gt=done, seq__lte=upto)
        bodies = window.order_by("seq").values_list("seq", "body")
        leaves = []
        for n, (s, body) in enumerate(bodies, start=done + 1):
            if s != n:
                raise RuntimeError(f"ledger seq {n} is missing: run verify_ledger")
            leaves.append(merkle.leaf_hash(bytes(body)))
        if len(leaves) != upto - done:
            raise RuntimeError(f"ledger seq {done + len(leaves) + 1} is missing: run verify_ledger")
        _grow(done, leaves)
        done = upto
    if end > size:
        log.info("ledger tree: %s of %s entries hashed", end, seq)
    return end - size


# --- inserting -------------------------------------------------------------------------

_COLUMNS = "seq, at, actor, action, subject_type, subject_id, trader_uscc, payload, body, prev_hash, hash"


def _insert(rows: list[LedgerEntry], payload_json: list[str]) -> None:
    if not rows:
        return
    if connection.vendor != "postgresql":
        LedgerEntry.objects.bulk_create(rows, batch_size=2000)
    elif len(rows) >= COPY_FROM_ROWS:
        _copy(rows, payload_json)
    else:
        _insert_values(rows, payload_json)


def _insert_values(rows: list[LedgerEntry], payload_json: list[str]) -> None:
    values = [
        (r.seq, r.at, r.actor, r.action, r.subject_type, r.subject_id, r.trader_uscc)
        + (js, r.body, r.prev_hash, r.hash)
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
    pgcopy.copy_lines(LedgerEntry._meta.db_table, _COLUMNS.split(", "), _copy_lines(rows, payload_json))


def _copy_lines(rows: list[LedgerEntry], payload_json: list[str]):
    """The rows as COPY text: the payload goes in as the very JSON text that was hashed."""
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
