"""Holding the ledger against its witnesses' cosignatures (verify_ledger --witness-key).

The log's own key cannot catch a rewrite by whoever holds that key: a tail rewritten,
re-chained, its tiles rebuilt and its checkpoints re-signed passes every check that uses it.
A witness's cosignature can, because the witness signed the checkpoint as it was then and
its key is not on the server. So for every stored cosignature this module checks

1. the witness's signature, under the key the verifier trusts: the keys it was given
   (--witness-key, from the witnesses themselves) or, without any, the registered ones;
2. the log's signature on the very note that was cosigned (kept with the cosignature);
3. the root that note states, against the root recomputed here from the entries' stored
   bytes (leaf hashes taken in SQL, the tree folded as a compact range: nothing read from
   the stored tiles, which a rewrite would have rebuilt).

A checkpoint whose cosigned root no longer matches is a fault, even when the checkpoint
row now carries a different, validly signed root: the history was rewritten after the
last witnessed checkpoint that still holds and by the first one that does not, and the
fault names that range of seqs.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.db import connection

from creditledger.ledger import merkle, signing
from creditledger.ledger.models import Checkpoint, Cosignature, LedgerEntry, Witness
from creditledger.ledger.verify import BAD_SIGNATURE, Fault

WITNESS_MISMATCH = "rewritten after a witnessed checkpoint"
BAD_COSIGNATURE = "bad cosignature"
BATCH_SIZE = 10_000  # leaf hashes per query: 32 bytes each


@dataclass
class Witnessed:
    """What the cosignatures say about one tree size."""

    size: int
    root: bytes
    witnesses: list[str] = field(default_factory=list)
    resigned: bool = False  # the checkpoint row's note is no longer the note cosigned


@dataclass
class WitnessReport:
    lines: list[str] = field(default_factory=list)  # per witness: what it cosigned
    checkpoints: list[str] = field(default_factory=list)  # per cosigned checkpoint: by whom
    fault: Fault | None = None
    cosignatures: int = 0
    sizes: int = 0
    last_good: int = 0  # the largest witnessed size whose root still holds (before any fault)


def parse_keys(vkeys: Iterable[str]) -> list[merkle.CosignatureVerifier]:
    """cosignature/v1 verifier keys; signing.NoteError names the one that does not parse."""
    return [merkle.CosignatureVerifier.parse(vkey) for vkey in vkeys]


def check_cosignatures(
    *, keys: list[merkle.CosignatureVerifier] | None = None, end: int | None = None
) -> WitnessReport:
    """Check every stored cosignature of checkpoints up to `end` (all by default).

    `keys`: the witness keys to trust; None trusts the registered witnesses' keys.
    """
    report = WitnessReport()
    trusted = _trusted(keys)
    claims: dict[int, Witnessed] = {}
    per_witness: dict[str, list[int]] = defaultdict(list)
    unchecked: dict[str, int] = defaultdict(int)
    rows = Cosignature.objects.select_related("witness", "checkpoint").order_by("checkpoint__seq", "id")
    if end is not None:
        rows = rows.filter(checkpoint__seq__lte=end)
    log_signed: dict[str, str] = {}  # note -> "" or why the log's signature fails: witnesses share notes
    for cosig in rows.iterator(chunk_size=2000):
        name = f"{cosig.witness.name}+{cosig.witness.key_id}"
        verifier = trusted.get((cosig.witness.name, cosig.witness.key_id))
        if verifier is None:
            unchecked[name] += 1
            continue
        fault, claim = _check_one(cosig, verifier, name, log_signed)
        if fault is None:
            fault = _merge(claims, claim, name)
        if fault is not None:
            report.fault = report.fault or fault
            continue
        report.cosignatures += 1
        per_witness[name].append(claim.size)
    report.sizes = len(claims)
    _hold_against_entries(report, claims)
    report.lines = _lines(trusted, per_witness, unchecked, keys is not None)
    report.checkpoints = [
        f"checkpoint {size}: cosigned by {', '.join(sorted(claims[size].witnesses))}"
        for size in sorted(claims)
    ]
    return report


def _trusted(
    keys: list[merkle.CosignatureVerifier] | None,
) -> dict[tuple[str, str], merkle.CosignatureVerifier]:
    if keys is None:
        keys = [
            merkle.CosignatureVerifier.parse(vkey) for vkey in Witness.objects.values_list("vkey", flat=True)
        ]
    return {(key.name, key.key_id.hex()): key for key in keys}


def _check_one(
    cosig: Cosignature, verifier: merkle.CosignatureVerifier, name: str, log_signed: dict[str, str]
) -> tuple[Fault | None, Witnessed | None]:
    size = cosig.checkpoint.seq
    try:
        text, _ = signing.split_note(cosig.note)
        stated = merkle.Checkpoint.parse(text)
        verifier.verify(cosig.note + cosig.signature)
    except signing.NoteError as exc:
        return Fault(size, BAD_COSIGNATURE, f"cosignature by {name} on checkpoint {size}: {exc}"), None
    if cosig.note not in log_signed:
        try:
            signing.open_checkpoint(cosig.note)
            log_signed[cosig.note] = ""
        except signing.NoteError as exc:
            log_signed[cosig.note] = str(exc)
    if log_signed[cosig.note]:
        detail = f"the note {name} cosigned for checkpoint {size} carries no valid log signature: "
        return Fault(size, BAD_SIGNATURE, detail + log_signed[cosig.note]), None
    if stated.size != size:
        detail = f"{name} cosigned a note of size {stated.size}, stored as checkpoint {size}"
        return Fault(size, BAD_COSIGNATURE, detail), None
    claim = Witnessed(size, stated.root_hash, [name], resigned=cosig.note != cosig.checkpoint.note)
    return None, claim


def _merge(claims: dict[int, Witnessed], claim: Witnessed, name: str) -> Fault | None:
    held = claims.get(claim.size)
    if held is None:
        claims[claim.size] = claim
        return None
    if held.root != claim.root:  # two witnesses saw two trees of one size: the log forked
        detail = (
            f"{', '.join(held.witnesses)} and {name} cosigned different roots for checkpoint {claim.size} "
            f"({held.root.hex()} and {claim.root.hex()})"
        )
        return Fault(claim.size, WITNESS_MISMATCH, detail)
    held.witnesses.append(name)
    held.resigned = held.resigned or claim.resigned
    return None


def _hold_against_entries(report: WitnessReport, claims: dict[int, Witnessed]) -> None:
    """Recompute the tree at each witnessed size; the first size whose root differs is a fault."""
    if not claims:
        return
    sizes = sorted(claims)
    last_good = 0
    for size, root in _roots_at(sizes):
        claim = claims[size]
        if root == claim.root:
            last_good = size
            continue
        fault = _rewrite_fault(claim, root, last_good)
        if report.fault is None or report.fault.seq > fault.seq:
            report.fault = fault
        break
    report.last_good = last_good


def _rewrite_fault(claim: Witnessed, root: bytes | None, last_good: int) -> Fault:
    now = "are not all there (a seq is missing)" if root is None else f"now hash to {root.hex()}"
    resigned = "; the checkpoint was re-signed since" if claim.resigned else ""
    held = (
        f"after witnessed checkpoint {last_good}, which still holds"
        if last_good
        else "no earlier witnessed checkpoint holds"
    )
    detail = (
        f"checkpoint {claim.size} as cosigned by {', '.join(claim.witnesses)} (log signature valid) states "
        f"root {claim.root.hex()}; entries 1..{claim.size} {now}{resigned}: the history was rewritten "
        f"within seq ({last_good}, {claim.size}], {held}"
    )
    return Fault(last_good + 1, WITNESS_MISMATCH, detail)


def _roots_at(sizes: list[int]) -> Iterator[tuple[int, bytes | None]]:
    """(size, root of entries 1..size) for each size, ascending; None once an entry is missing."""
    stack: list[tuple[int, bytes]] = []  # the compact range: perfect subtrees (height, hash), left to right
    count = 0
    wanted = iter(sizes)
    target = next(wanted)
    for seq, leaf in _leaf_hashes(sizes[-1]):
        if seq != count + 1:
            break
        count = seq
        height, node = 0, leaf
        while stack and stack[-1][0] == height:
            node = merkle.node_hash(stack.pop()[1], node)
            height += 1
        stack.append((height, node))
        while count == target:
            yield target, _fold(stack)
            target = next(wanted, None)
            if target is None:
                return
    while target is not None:
        yield target, None
        target = next(wanted, None)


def _fold(stack: list[tuple[int, bytes]]) -> bytes:
    root = stack[-1][1]
    for _, node in reversed(stack[:-1]):
        root = merkle.node_hash(node, root)
    return root


def _leaf_hashes(stop: int) -> Iterator[tuple[int, bytes]]:
    """(seq, SHA-256(0x00 ‖ body)) for entries 1..stop in seq order. On PostgreSQL hashed in
    the database and concatenated per window, so 32 bytes per entry and one value per
    query cross the wire (half the time of a row per entry)."""
    low = 0
    while low < stop:
        high = min(low + BATCH_SIZE, stop)
        batch = _window_pg(low, high) if connection.vendor == "postgresql" else _window_rows(low, high)
        if not batch:
            return
        yield from batch
        low = high


_WINDOW_SQL = (
    "SELECT count(*), string_agg(sha256('\\x00'::bytea || body), ''::bytea ORDER BY seq) "
    "FROM ledger_ledgerentry WHERE seq > %s AND seq <= %s"
)


def _window_pg(low: int, high: int) -> list[tuple[int, bytes]]:
    with connection.cursor() as cursor:
        cursor.execute(_WINDOW_SQL, [low, high])
        count, joined = cursor.fetchone()
    if count != high - low:  # a hole in the seqs: take the window row by row to place it
        return _window_rows(low, high)
    joined = bytes(joined)
    return [(low + 1 + i, joined[32 * i : 32 * i + 32]) for i in range(count)]


def _window_rows(low: int, high: int) -> list[tuple[int, bytes]]:
    rows = LedgerEntry.objects.filter(seq__gt=low, seq__lte=high).order_by("seq")
    return [(seq, merkle.leaf_hash(bytes(body))) for seq, body in rows.values_list("seq", "body")]


def _lines(
    trusted: dict[tuple[str, str], merkle.CosignatureVerifier],
    per_witness: dict[str, list[int]],
    unchecked: dict[str, int],
    given: bool,
) -> list[str]:
    lines = []
    for key in trusted.values():
        name = f"{key.name}+{key.key_id.hex()}"
        sizes = per_witness.get(name, [])
        if sizes:
            listed = ", ".join(str(s) for s in sizes[-5:])
            more = f" (the last 5 of {len(sizes)})" if len(sizes) > 5 else ""
            lines.append(f"witness {name}: cosigned checkpoints {listed}{more}; newest {sizes[-1]}")
        elif given:
            lines.append(f"witness {name}: no cosignature stored")
    for name, count in sorted(unchecked.items()):
        lines.append(f"witness {name}: {count} cosignature(s) not checked (no key given for it)")
    return lines


def checkpoint_witnesses(checkpoint: Checkpoint, note: str | None = None) -> list[tuple[str, dt.datetime]]:
    """Who cosigned `checkpoint`: (witness name+key id, cosigned at) by name, for each stored
    cosignature that verifies under its registered key over `note` (default: the checkpoint's
    note as stored now, so a checkpoint re-signed after it was witnessed shows no witness)."""
    note = checkpoint.note if note is None else note
    found = []
    for cosig in sorted(checkpoint.cosignatures.all(), key=lambda c: (c.witness.name, c.witness.key_id)):
        try:
            merkle.CosignatureVerifier.parse(cosig.witness.vkey).verify(note + cosig.signature)
        except signing.NoteError:
            continue
        found.append((str(cosig.witness), dt.datetime.fromtimestamp(cosig.timestamp, dt.UTC)))
    return found


def note_witnesses(note: str, seq: int) -> list[tuple[str, dt.datetime]]:
    """Who cosigned the checkpoint `note` (of size `seq`), as a holder of that note (an
    export's manifest) can tell: the stored cosignatures of that size that verify over it."""
    checkpoint = Checkpoint.objects.prefetch_related("cosignatures__witness").filter(seq=seq).first()
    return [] if checkpoint is None else checkpoint_witnesses(checkpoint, note)
