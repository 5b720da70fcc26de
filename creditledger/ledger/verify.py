"""Verifying the ledger: recompute the chain, check every column against the hashed bytes,
and hold the chain against signed checkpoints.

This module is the per-entry path; verify_sql.py runs the same checks set-based (the
default on PostgreSQL) and comes here only for windows that are not clean.

Entries are read in seq order in fixed-size batches (keyset pagination on the primary key),
so memory stays flat however long the ledger is. Verification stops at the first fault, in
seq order, and names it. The chain alone cannot catch a tail that a database superuser
deleted and re-chained consistently; a checkpoint signed before the rewrite does, as long
as a copy of it survives (the Checkpoint table, or a note an auditor kept).
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from creditledger.ledger import canonical, merkle, sealer, signing
from creditledger.ledger.models import Checkpoint, LedgerEntry

HASH_MISMATCH = "hash mismatch"
BROKEN_LINK = "broken link"
GAP = "gap"
BODY_MISMATCH = "column/body mismatch"
BAD_SIGNATURE = "bad checkpoint signature"
CHECKPOINT_MISMATCH = "checkpoint mismatch"
TILE_MISMATCH = "tile mismatch"

BATCH_SIZE = 2000  # rows per query: about 10 MB of Python objects at a time
_ZERO = dt.timedelta(0)
ENTRY_COLUMNS = (
    "seq",
    "at",
    "actor",
    "action",
    "subject_type",
    "subject_id",
    "trader_uscc",
    "payload",
    "body",
    "prev_hash",
    "hash",
)


@dataclass(frozen=True)
class Fault:
    seq: int
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.kind}: {self.detail}"


@dataclass
class Result:
    first: int | None = None  # first and last seq verified
    last: int | None = None
    head: str = canonical.GENESIS_HASH  # hash of the last verified entry
    checkpoints: int = 0
    fault: Fault | None = None
    witnesses: tuple[str, ...] = ()  # which witnesses cosigned what (witnesses.check_cosignatures)
    # After a checkpoint that no longer holds: (the last checkpoint that holds, or the seq
    # before the range; the one that does not). The change is in the entries between.
    fault_range: tuple[int, int] | None = None
    held_low: bool = False  # whether fault_range starts at a checkpoint that holds

    @property
    def ok(self) -> bool:
        return self.fault is None

    @property
    def entries(self) -> str:
        return f"entries {self.first}..{self.last}" if self.last is not None else "no entries"

    def summary(self) -> str:
        if self.fault and self.fault_range:
            low, high = self.fault_range
            held = f"checkpoint {low} still holds" if self.held_low else "no earlier checkpoint was checked"
            return (
                f"ledger FAULT at {self.fault}; entries in ({low}, {high}] were changed after "
                f"checkpoint {high} was signed; {held}"
            )
        if self.fault:
            return f"ledger FAULT at {self.fault}"
        plural = "" if self.checkpoints == 1 else "s"
        return f"ledger ok: {self.entries}, head {self.head}, {self.checkpoints} checkpoint{plural} verified"


@dataclass(frozen=True)
class Claim:
    """What one checkpoint vouches for after `seq` entries: the tree's root (a tree
    checkpoint), the chain's hash (a chain checkpoint, from before the tree), or, for a note
    kept outside the database, whichever of the two its hash is (`kind` "any")."""

    seq: int
    hash: str  # the chain hash of entry seq (tree and chain), or the note's hash (any)
    label: str
    fault_kind: str = ""
    fault_detail: str = ""
    kind: str = "any"
    root: str = ""  # the signed root (tree)


def verify_ledger(
    *,
    start: int = 1,
    end: int | None = None,
    notes: Iterable[tuple[str, str]] = (),
    batch_size: int = BATCH_SIZE,
    method: str = "sql",
    workers: int | None = None,
) -> Result:
    """Verify entries start..end (end defaults to the head) and the checkpoints in that range.

    `notes` are (label, text) checkpoint notes kept outside the database. `method` "sql"
    (on PostgreSQL) checks set-based, `workers` windows of seqs at a time, and leaves
    windows that are not clean to this module's per-entry path, so both name the same
    fault (verify_sql.py); "python" is the per-entry path throughout.
    """
    if method not in ("sql", "python"):
        raise ValueError(f"method must be sql or python, not {method!r}")
    if method == "sql" and connection.vendor == "postgresql":
        from creditledger.ledger import verify_sql

        return verify_sql.verify_ledger(
            start=start, end=end, notes=notes, batch_size=batch_size, workers=workers
        )
    _, stop, claims = claims_for(start, end, notes, batch_size)
    return _walk(start, stop, claims, batch_size)


def claims_for(
    start: int, end: int | None, notes: Iterable[tuple[str, str]], batch_size: int
) -> tuple[int, int, Iterator[Claim]]:
    """(head, the last seq to verify, the checkpoints to hold it against in seq order)."""
    # Read the newest checkpoint before the head: every checkpoint that already exists then
    # vouches for committed entries, so one past the head means entries were removed.
    ceiling = Checkpoint.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    head = LedgerEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    stop = end if end is not None else head
    kept = [_file_claim(label, text) for label, text in notes]
    kept = sorted((c for c in kept if c.seq >= start and (end is None or c.seq <= end)), key=_by_seq)
    stored = _stored_claims(start, ceiling if end is None else end, batch_size)
    return head, stop, heapq.merge(stored, kept, key=_by_seq)


def _walk(
    start: int,
    stop: int,
    claims: Iterator[Claim],
    batch_size: int,
    held: int = 0,
    tree: _Tree | None = None,
    origin: int | None = None,
) -> Result:
    """The per-entry path. For a run that goes on from another one, which verified from
    `origin` to start: `held`, the seq of the last checkpoint it verified (0 if none), and
    `tree`, the tree it had (by default: the stored one)."""
    result = Result()
    prev = _anchor(start)
    if prev is None:
        result.fault = Fault(start - 1, GAP, f"entry {start - 1} is missing, so seq {start} cannot be linked")
        return result
    result.head = prev
    tree = tree or _Tree(start - 1, batch_size)
    pending = next(claims, None)
    expected = start
    for row in _entries(start, stop, batch_size):
        fault = check_entry(row, expected, prev)
        if fault is None:
            fault = tree.add(merkle.leaf_hash(bytes(row[8])))
        while fault is None and pending is not None and pending.seq <= row[0]:
            fault = tree.flush() or _check_claim(pending, row[0], row[10], tree)
            if fault is None:
                result.checkpoints += 1
                held = pending.seq
            elif fault.kind == CHECKPOINT_MISMATCH and not pending.fault_kind:
                _set_range(result, held, origin or start, pending.seq)
            pending = next(claims, None)
        if fault:
            result.fault = fault
            return result
        if result.first is None:
            result.first = row[0]
        result.last, result.head, prev = row[0], row[10], row[10]
        expected += 1
    fault = tree.flush()
    if fault:
        result.fault = fault
        return result
    if pending is not None and pending.fault_kind:
        result.fault = Fault(pending.seq, pending.fault_kind, pending.fault_detail)
    elif pending is not None:
        # A checkpoint vouches for entries that are not there: the tail was cut.
        detail = f"{pending.label} vouches for {pending.seq} entries but the ledger ends at {expected - 1}"
        result.fault = Fault(expected, CHECKPOINT_MISMATCH, detail)
        _set_range(result, held, origin or start, pending.seq)
    return result


def _set_range(result: Result, held: int, start: int, seq: int) -> None:
    result.fault_range = (held or start - 1, seq)
    result.held_low = bool(held)


class _Tree:
    """The Merkle tree of the entries verified so far, rebuilt from their bodies, holding
    only its right edge (the tiles an append or a root reads). Each tile it computes is held
    against the stored one, so a stored tree that does not hash the entries is a fault."""

    def __init__(self, size: int, batch_size: int, leaves: list[bytes] | None = None) -> None:
        """The stored tree of `size` leaves (a range that starts later trusts the stored
        prefix), with `leaves` added but not yet compared."""
        edge = merkle.right_edge(size)
        self.size, self.batch_size, self.leaves = size, batch_size, leaves or []
        self.tiles = {t.key: t.hashes_of(data) for t, data in zip(edge, sealer.read_tiles(edge), strict=True)}
        self.stored_size = sealer.tree_size()

    def add(self, leaf: bytes) -> Fault | None:
        self.leaves.append(leaf)
        return self.flush() if len(self.leaves) >= self.batch_size else None

    def flush(self) -> Fault | None:
        if not self.leaves:
            return None
        appended = merkle.append_leaves(size=self.size, leaf_hashes=self.leaves, read_tiles=self._read)
        fault = self._compare(appended.tiles)
        self.size, self.leaves = appended.size, []
        edge = {t.key for t in merkle.right_edge(self.size)}
        self.tiles = {t.key: data for t, data in appended.tiles if t.key in edge} | {
            k: v for k, v in self.tiles.items() if k in edge and k not in {t.key for t, _ in appended.tiles}
        }
        return fault

    def root(self) -> str:
        return merkle.tree_root(size=self.size, read_tiles=self._read).hex()

    def _read(self, tiles):
        return [self.tiles.get(t.key, b"") for t in tiles]

    def _compare(self, computed) -> Fault | None:
        """The first leaf whose hashes in storage differ from the ones computed (only as far
        as the stored tree reaches: an older ledger's tree may still be being built)."""
        stored = sealer.read_tiles([tile for tile, _ in computed])
        first = None
        for (tile, data), kept in zip(computed, stored, strict=True):
            span = merkle.TILE_WIDTH**tile.level  # leaves under one hash of this level
            reach = min(len(data), max(0, self.stored_size // span - tile.index * merkle.TILE_WIDTH) * 32)
            if kept[:reach] == data[:reach]:
                continue
            i = next(n for n in range(0, reach, 32) if kept[n : n + 32] != data[n : n + 32]) // 32
            seq = (tile.index * merkle.TILE_WIDTH + i) * span + 1
            if first is None or seq < first[0]:
                where = f"stored tile {tile.level}/{tile.index} hash {i}"
                first = (seq, f"{where} is not the tree of the entries")
        return Fault(first[0], TILE_MISMATCH, first[1]) if first else None


def _by_seq(claim: Claim) -> int:
    return claim.seq


def _anchor(start: int) -> str | None:
    """The hash seq `start` must link to."""
    if start <= 1:
        return canonical.GENESIS_HASH
    return LedgerEntry.objects.filter(seq=start - 1).values_list("hash", flat=True).first()


def _entries(start: int, stop: int, batch_size: int) -> Iterator[tuple]:
    """Entries start..stop in seq order, one window of seqs per query.

    Windows of seq values rather than LIMIT: seq is dense, so each query touches just its
    rows through the primary key, whatever the planner thinks of a long range.
    """
    entries = LedgerEntry.objects.order_by("seq")
    low = start - 1
    while low < stop:
        high = min(low + batch_size, stop)
        batch = list(entries.filter(seq__gt=low, seq__lte=high).values_list(*ENTRY_COLUMNS))
        if not batch:  # a hole in the seqs: jump to the next entry, which will show the gap
            following = entries.filter(seq__gt=high, seq__lte=stop).values_list("seq", flat=True).first()
            if following is None:
                return
            high = following - 1
        yield from batch
        del batch  # let it go before the next window arrives
        low = high


def check_entry(row: tuple, expected: int, prev: str) -> Fault | None:
    """Check one entry (a tuple in ENTRY_COLUMNS order) against its place in the chain."""
    seq, at, actor, action, subject_type, subject_id, trader_uscc, payload, body, prev_hash, hash_ = row
    if seq != expected:
        return Fault(expected, GAP, f"entry {expected} is missing (the next entry is {seq})")
    if prev_hash != prev:
        return Fault(seq, BROKEN_LINK, f"prev_hash {prev_hash} is not the hash of entry {seq - 1} ({prev})")
    body = bytes(body)
    if canonical.chain_hash(prev_hash, body) != hash_:
        return Fault(seq, HASH_MISMATCH, f"stored hash {hash_} is not the hash of the stored body")
    columns = {
        "seq": seq,
        "at": at,
        "actor": actor,
        "action": action,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "trader_uscc": trader_uscc,
        "payload": payload,
    }
    if hashed_form(**columns) != body:
        try:
            rebuilt = canonical.entry_body(**columns)
        except (canonical.CanonicalError, TypeError, ValueError):
            rebuilt = None
        if rebuilt != body:
            return Fault(seq, BODY_MISMATCH, _body_difference(columns, body))
    return None


def hashed_form(*, seq, at, actor, action, subject_type, subject_id, trader_uscc, payload) -> bytes:
    """The body these columns describe, laid out as canonical.entry_body lays it out.

    The fast path: columns read back from the database hold plain JSON types already, so
    this skips canonical.normalise (most of the cost of verifying). Any difference goes
    to the full canonical.entry_body before it counts as a fault.
    """
    doc = {
        "seq": seq,
        "at": _utc_time(at),
        "actor": actor,
        "action": action,
        "subject": {"type": subject_type, "id": subject_id, "trader": trader_uscc},
        "payload": payload,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _utc_time(at) -> str:
    if at.utcoffset() == _ZERO:  # the database hands back UTC; isoformat is much faster than strftime
        return at.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    return canonical.format_time(at)


def _body_difference(columns: dict, body: bytes) -> str:
    """Name the columns that disagree with the hashed body (the slow path, on a fault only)."""
    try:
        doc = json.loads(body)
        subject = doc["subject"]
        hashed = {
            "seq": doc["seq"],
            "at": doc["at"],
            "actor": doc["actor"],
            "action": doc["action"],
            "subject_type": subject["type"],
            "subject_id": subject["id"],
            "trader_uscc": subject["trader"],
            "payload": doc["payload"],
        }
    except (ValueError, KeyError, TypeError):
        return "the stored body is not a ledger entry document"
    differing = []
    for name, value in columns.items():
        try:
            value = canonical.normalise(value)
        except canonical.CanonicalError:
            pass
        if value != hashed[name]:
            differing.append(name)
    if differing:
        return f"column {', '.join(differing)} differs from the hashed body"
    return "the stored body is not in canonical form"


def _stored_claims(start: int, stop: int, batch_size: int) -> Iterator[Claim]:
    last = start - 1
    while last < stop:
        batch = list(
            Checkpoint.objects.filter(seq__gt=last, seq__lte=stop)
            .order_by("seq")
            .values_list("seq", "hash", "origin", "note", "kind", "root")[:batch_size]
        )
        if not batch:
            return
        for seq, hash_, origin, note, kind, root in batch:
            yield _stored_claim(seq, hash_, origin, note, kind, root)
        last = batch[-1][0]


def _stored_claim(seq: int, hash_: str, origin: str, note: str, kind: str, root: str) -> Claim:
    label = f"stored checkpoint {seq}"
    claim = _file_claim(label, note)
    if claim.fault_kind:
        return Claim(seq, hash_, label, claim.fault_kind, claim.fault_detail)
    signed = root if kind == Checkpoint.Kind.TREE else hash_
    if (claim.seq, claim.hash, settings.LEDGER_ORIGIN) != (seq, signed, origin):
        detail = f"{label}: its columns ({seq}, {signed}, {origin}) differ from its signed note"
        return Claim(seq, hash_, label, CHECKPOINT_MISMATCH, detail)
    return Claim(seq, hash_, label, kind=kind, root=root)


def _file_claim(label: str, note: str) -> Claim:
    try:
        body = signing.open_checkpoint(note)
    except signing.NoteError as exc:
        size = note_size(note)
        return Claim(size if size is not None else 0, "", label, BAD_SIGNATURE, f"{label}: {exc}")
    if body.origin != settings.LEDGER_ORIGIN:
        detail = f"{label} is for log {body.origin!r}, not {settings.LEDGER_ORIGIN!r}"
        return Claim(body.size, body.hash, label, CHECKPOINT_MISMATCH, detail)
    return Claim(body.size, body.hash, label)


def note_size(note: str) -> int | None:
    """The size a checkpoint note states, without verifying it; None when it does not parse."""
    try:
        text, _ = signing.split_note(note)
        return signing.CheckpointBody.parse(text).size
    except signing.NoteError:
        return None


def _check_claim(claim: Claim, seq: int, hash_: str, tree: _Tree) -> Fault | None:
    if claim.fault_kind:
        return Fault(claim.seq, claim.fault_kind, claim.fault_detail)
    if claim.kind == "any":  # a kept note: a tree root, or a chain head from before the tree
        if claim.hash == hash_ or claim.hash == tree.root():
            return None
        return Fault(
            seq,
            CHECKPOINT_MISMATCH,
            f"{claim.label} signed hash {claim.hash} for {seq} entries; the chain now has {hash_} "
            f"and the tree {tree.root()}",
        )
    if claim.hash != hash_:
        return Fault(
            seq,
            CHECKPOINT_MISMATCH,
            f"{claim.label} signed hash {claim.hash} for entry {seq}; the chain now has {hash_}",
        )
    if claim.kind == Checkpoint.Kind.TREE and claim.root != tree.root():
        return Fault(
            seq,
            CHECKPOINT_MISMATCH,
            f"{claim.label} signed root {claim.root} for {seq} entries; "
            f"the entries now hash to {tree.root()}",
        )
    return None
