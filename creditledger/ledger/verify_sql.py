"""Verifying the ledger set-based: the same checks as verify.check_entry and verify._Tree,
one SQL statement per window of seqs, windows on several connections at once.

Per window the database recomputes, for every entry, the chain hash over the stored body,
the link to the entry before it, the leaf hash (compared with the stored level-0 tiles),
and the body the displayed columns describe: the canonical bytes before and after the
payload are rebuilt from the columns (to_json escapes strings exactly as the canonical
encoder does) and compared byte for byte with the body; the payload column is held to the
body's payload as JSON values with their own spelling of numbers (jsonb text, so 1 and 1.0
differ). The tiles above level 0 are hashed here from the stored level-0 tiles, which the
window has just shown to be the entries' leaf hashes; checkpoints are held against the chain
hash and against tree roots read from those same, now verified, tiles.

Nothing here names a fault. A window that is not clean (a row that fails, a gap, a link
to the window before, a tile, a body the database cannot decode, a checkpoint that does
not hold) is checked again by the per-entry path (verify._walk), alone; if that finds a
fault, the per-entry path goes on from the start of that window to the end, everything
before it verified and its tree as a run from the start would hold it, so the fault
named is exactly the one the per-entry path names. If not (a column the database cannot
judge, see _BEFORE), the windows go on. One known difference: a body whose hash is right
but which is valid JSON spelled otherwise than the canonical way (spaces, key order,
escapes) passes here; only a forged body can be like that, and a forger can as well
write it canonically.

All connections read one snapshot (REPEATABLE READ, pg_export_snapshot), so the windows
and the checkpoints agree with each other whatever the sealer appends meanwhile.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import psycopg2
from django.db import DataError, connection, transaction

from creditledger.ledger import canonical, merkle, sealer
from creditledger.ledger import verify as per_entry
from creditledger.ledger.merkle.hashing import perfect_root
from creditledger.ledger.models import LedgerEntry, LedgerTile

WINDOW = 50_000  # seqs per statement: about 25 MB of rows the database reads at a time
MAX_WORKERS = 8

_ENTRIES = LedgerEntry._meta.db_table
_TILES = LedgerTile._meta.db_table
_SETTINGS = (
    # Statement-local: a window is an index range scan and one sort of its leaf hashes.
    ("jit", "off"),
    ("max_parallel_workers_per_gather", "0"),
    ("work_mem", "64MB"),
)

# The canonical bytes either side of the payload (see canonical.entry_parts), from the
# columns. Strings go in between bare quotes (to_json would cost a tenth of the whole
# check): that is the canonical form of any string without " \\ or control characters,
# which the encoder escapes, each with a backslash. So a row whose columns hold a backslash
# counts as failing here, and the per-entry path, which escapes as the encoder does, decides.
_BEFORE = """textsend('{"action":"' || action || '","actor":"' || actor || '","at":"'
  || to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '","payload":')"""
_AFTER = """textsend(',"seq":' || seq || ',"subject":{"id":"' || subject_id || '","trader":"'
  || trader_uscc || '","type":"' || subject_type || '"}}')"""
# One row per window: rows, first and last seq, the first row that fails, whether the leaf
# hashes differ from the stored level-0 tiles, and the hashes at either end (to link windows).
WINDOW_SQL = f"""
WITH e AS (
  SELECT seq, body, prev_hash, hash, payload, lag(hash) OVER (ORDER BY seq) AS prior,
         {_BEFORE} AS before, {_AFTER} AS after,
         strpos(action || actor || subject_type || subject_id || trader_uscc, chr(92)) > 0 AS escaped
  FROM {_ENTRIES} WHERE seq > %(lo)s AND seq <= %(hi)s
)
SELECT count(*), min(seq), max(seq),
  min(seq) FILTER (WHERE
    (prior IS NOT NULL AND prev_hash <> prior)
    OR escaped
    OR encode(sha256(%(tag)s::bytea || textsend(prev_hash || E'\\n') || body), 'hex') <> hash
    OR substr(body, 1, length(before)) <> before
    OR substr(body, length(body) - length(after) + 1) <> after
    OR NOT record_image_eq(ROW(payload), ROW(convert_from(
         substr(body, length(before) + 1, length(body) - length(before) - length(after)), 'UTF8')::jsonb))),
  string_agg(sha256('\\x00'::bytea || body), ''::bytea ORDER BY seq) IS DISTINCT FROM (
    SELECT substr(string_agg(hashes, ''::bytea ORDER BY "index"), %(lo)s %% 256 * 32 + 1,
                  (%(hi)s - %(lo)s) * 32)
    FROM {_TILES} WHERE level = 0 AND "index" BETWEEN %(lo)s / 256 AND (%(hi)s - 1) / 256),
  (SELECT prev_hash FROM {_ENTRIES} WHERE seq = %(lo)s + 1),
  (SELECT hash FROM {_ENTRIES} WHERE seq = %(hi)s)
FROM e
"""


@dataclass
class Window:
    """Seqs lo+1..hi, as the database found them."""

    lo: int
    hi: int
    rows: int = 0
    first: int | None = None
    last: int | None = None
    bad_row: int | None = None
    leaves_differ: bool = False  # from the stored level-0 tiles
    first_prev: str | None = None
    last_hash: str | None = None
    error: str = ""
    upper_ok: bool = True

    @property
    def clean(self) -> bool:
        dense = (self.rows, self.first, self.last) == (self.hi - self.lo, self.lo + 1, self.hi)
        return dense and self.bad_row is None and not self.leaves_differ and not self.error and self.upper_ok


def verify_ledger(
    *, start: int, end: int | None, notes, batch_size: int, workers: int | None, window: int = WINDOW
) -> per_entry.Result:
    """verify.verify_ledger, set-based; inside the caller's transaction if there is one (then
    on its connection alone), else in a read-only snapshot shared by `workers` connections."""
    if connection.in_atomic_block:
        return _verify(start, end, notes, batch_size, window, None, 1)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]
        count = min(MAX_WORKERS, workers or os.cpu_count() or 1)
        return _verify(start, end, notes, batch_size, window, snapshot, count)


def _verify(start, end, notes, batch_size, window, snapshot, workers) -> per_entry.Result:
    head, stop, claims = per_entry.claims_for(start, end, notes, batch_size)
    claims = list(claims)
    anchor = per_entry._anchor(start)
    if anchor is None or stop < start or sealer.tree_size() != head:
        # Nothing to check, a gap before the range, or a tree not (or not only) over the
        # entries: the per-entry path says which, or builds what the tree lacks.
        return per_entry._walk(start, stop, iter(claims), batch_size)
    bounds = [(lo, min(lo + window, stop)) for lo in range(start - 1, stop, window)]
    upper = _upper_tiles(start, stop)
    holds = _Claims(claims, stop)
    with contextlib.closing(_run(bounds, snapshot, workers)) as windows:
        return _follow(windows, start, stop, anchor, claims, holds, upper, batch_size)


def _follow(windows, start, stop, anchor, claims, holds, upper, batch_size) -> per_entry.Result:
    """Go through the windows in seq order, the per-entry path where one is not clean."""
    prev, done = anchor, 0  # the hash the next window links to; claims checked
    for w in windows:
        inside = claims[done : done + holds.count(w.lo, w.hi)]
        clean = w.clean and w.first_prev == prev and not any(w.lo < seq <= w.hi for seq in upper)
        if clean and all(holds.check(c) for c in inside):
            prev = w.last_hash
        else:  # the per-entry path over this window alone: is there a fault in it?
            tree = _tree_at(w.lo + 1, start, claims[:done], batch_size)
            alone = per_entry._walk(w.lo + 1, w.hi, iter(inside), batch_size, tree=tree)
            if alone.fault or alone.last != w.hi:  # (or the window's last entries are missing)
                windows.close()  # nothing after the fault counts: stop checking
                return _take_over(w.lo + 1, start, stop, claims, batch_size)
            prev = alone.head
        done += len(inside)
    if done < len(claims):  # checkpoints past the last entry verified
        return _take_over(w.lo + 1, start, stop, claims, batch_size)
    return per_entry.Result(first=start, last=stop, head=prev, checkpoints=len(claims))


def _take_over(seq: int, start: int, stop: int, claims: list, batch_size: int) -> per_entry.Result:
    """The per-entry path from `seq` on, everything before it verified: it names the first
    fault as a run from `start` would."""
    before = [c for c in claims if c.seq < seq]  # all of them hold
    tree = _tree_at(seq, start, before, batch_size)
    rest = iter(claims[len(before) :])
    result = per_entry._walk(seq, stop, rest, batch_size, held=_held(before), tree=tree, origin=start)
    result.checkpoints += len(before)
    if seq > start:
        result.first = start
        if result.last is None:
            result.last = seq - 1
    return result


def _held(claims: list) -> int:
    return claims[-1].seq if claims else 0


def _tree_at(take_over: int, start: int, before: list[per_entry.Claim], batch_size: int) -> per_entry._Tree:
    """The per-entry path's tree as a run from `start` has it on reaching `take_over`.

    That run compares its tiles with the stored ones every batch_size leaves and at each
    checkpoint, and names the first fault it meets then: the leaves since the last
    comparison wait for the next one here too, so the fault named is the same."""
    last = start - 1
    for claim in before:
        last += (claim.seq - last) // batch_size * batch_size
        last = claim.seq
    last += (take_over - 1 - last) // batch_size * batch_size
    count = take_over - 1 - last
    if not count:
        return per_entry._Tree(last, batch_size)
    width = merkle.TILE_WIDTH
    tiles = [merkle.Tile(0, n) for n in range(last // width, (take_over - 2) // width + 1)]
    stored = b"".join(sealer.read_tiles(tiles))  # verified: the leaf hashes of the entries
    at = (last % width) * merkle.HASH_SIZE
    leaves = [
        stored[i : i + merkle.HASH_SIZE] for i in range(at, at + count * merkle.HASH_SIZE, merkle.HASH_SIZE)
    ]
    return per_entry._Tree(last, batch_size, leaves)


# --- the windows -----------------------------------------------------------------------


def _run(bounds: list[tuple[int, int]], snapshot: str | None, workers: int) -> Iterator[Window]:
    """The windows in order, each as soon as it and those before it are checked; closing the
    iterator stops the checks still to come (once a fault is found, nothing after it counts)."""
    if snapshot is None or workers <= 1 or len(bounds) == 1:
        return _in_turn(bounds)
    return _Pool(bounds, snapshot, min(workers, len(bounds))).windows()


def _in_turn(bounds: list[tuple[int, int]]) -> Iterator[Window]:
    with connection.cursor() as cursor:
        saved = _configure(cursor)
        try:
            for lo, hi in bounds:
                try:
                    with transaction.atomic():  # a savepoint: a body that does not decode aborts it
                        w = _window(cursor, lo, hi)
                except DataError as exc:
                    w = Window(lo, hi, error=str(exc).strip())
                yield w
        finally:
            _configure(cursor, saved)  # the caller's transaction goes on with its own settings


class _Pool:
    """Windows handed out in seq order to worker threads, one connection each, all on one
    snapshot."""

    def __init__(self, bounds, snapshot, workers) -> None:
        self.bounds, self.snapshot, self.workers = bounds, snapshot, workers
        self.ready = threading.Condition()
        self.next = 0
        self.stop_at = len(bounds)
        self.done: dict[int, Window] = {}
        self.errors: list[BaseException] = []

    def windows(self) -> Iterator[Window]:
        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        threads = [threading.Thread(target=self._work, args=(params,)) for _ in range(self.workers)]
        for thread in threads:
            thread.start()
        try:
            for n in range(len(self.bounds)):
                with self.ready:
                    self.ready.wait_for(lambda n=n: n in self.done or self.errors)
                    if self.errors:
                        raise self.errors[0]
                    w = self.done.pop(n)
                yield w
        finally:
            with self.ready:
                self.stop_at = 0
            for thread in threads:
                thread.join()

    def _take(self) -> int | None:
        with self.ready:
            if self.next >= self.stop_at:
                return None
            self.next += 1
            return self.next - 1

    def _work(self, params) -> None:
        try:
            conn = psycopg2.connect(**params)
            try:
                self._windows(conn.cursor())
            finally:
                conn.close()  # read only: nothing to commit
        except BaseException as exc:  # re-raised in the calling thread
            with self.ready:
                self.errors.append(exc)
                self.stop_at = 0
                self.ready.notify_all()

    def _windows(self, cursor) -> None:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SET TRANSACTION SNAPSHOT %s", [self.snapshot])
        _configure(cursor)
        while (n := self._take()) is not None:
            lo, hi = self.bounds[n]
            cursor.execute("SAVEPOINT verify_window")
            try:
                w = _window(cursor, lo, hi)
            except psycopg2.DataError as exc:  # a body that is not UTF-8, JSON, or long enough
                cursor.execute("ROLLBACK TO SAVEPOINT verify_window")
                w = Window(lo, hi, error=str(exc).strip())
            with self.ready:
                self.done[n] = w
                self.ready.notify_all()


def _configure(cursor, values: Sequence[tuple[str, str]] = _SETTINGS) -> list[tuple[str, str]]:
    """Set the settings for this transaction; returns the ones they replaced."""
    saved = []
    for name, value in values:
        cursor.execute("SELECT current_setting(%s), set_config(%s, %s, true)", [name, name, value])
        saved.append((name, cursor.fetchone()[0]))
    return saved


def _window(cursor, lo: int, hi: int) -> Window:
    """One window's row; raises DataError where a body does not decode (not UTF-8, not JSON,
    too short for the columns around its payload)."""
    w = Window(lo, hi)
    cursor.execute(WINDOW_SQL, {"lo": lo, "hi": hi, "tag": canonical.VERSION_TAG})
    w.rows, w.first, w.last, w.bad_row, w.leaves_differ, w.first_prev, w.last_hash = cursor.fetchone()
    if w.clean:
        w.upper_ok = _level_one(cursor, lo, hi)
    return w


def _level_one(cursor, lo: int, hi: int) -> bool:
    """The level-1 hashes of the level-0 tiles this window fills (their last leaf is in it),
    against the stored level-1 tiles. The level-0 tiles are the leaf hashes: just checked."""
    first, last = lo // merkle.TILE_WIDTH, hi // merkle.TILE_WIDTH - 1
    if last < first:
        return True
    return _hashes_above(cursor, 0, first, last)


def _hashes_above(cursor, level: int, first: int, last: int) -> bool:
    """Each full tile (level, first..last) hashes to its entry in the tile above it."""
    width = merkle.TILE_WIDTH
    cursor.execute(
        f'SELECT level, "index", hashes FROM {_TILES} WHERE (level = %s AND "index" BETWEEN %s AND %s) '
        'OR (level = %s AND "index" BETWEEN %s AND %s)',
        [level, first, last, level + 1, first // width, last // width],
    )
    tiles = {(lv, index): bytes(data) for lv, index, data in cursor.fetchall()}
    for n in range(first, last + 1):
        below = tiles.get((level, n), b"")
        above = tiles.get((level + 1, n // width), b"")
        at = (n % width) * merkle.HASH_SIZE
        if len(below) != width * merkle.HASH_SIZE or perfect_root(below) != above[at : at + merkle.HASH_SIZE]:
            return False
    return True


def _upper_tiles(start: int, stop: int) -> list[int]:
    """The hashes of levels 2 and up over the leaves start..stop (a few per 65,536 entries):
    the leaves that complete a tile that does not hash to its entry in the tile above. The
    tiles below are the ones the windows check (a window with a wrong one goes to the
    per-entry path, which says what is wrong)."""
    wrong, level = [], 1
    with connection.cursor() as cursor:
        while merkle.TILE_WIDTH ** (level + 1) <= stop:
            span = merkle.TILE_WIDTH ** (level + 1)  # leaves under one full tile of this level
            first = max(0, -(-start // span) - 1)  # the first tile completed at or after start
            wrong += [
                (n + 1) * span for n in range(first, stop // span) if not _hashes_above(cursor, level, n, n)
            ]
            level += 1
    return wrong


# --- the checkpoints -------------------------------------------------------------------


class _StoredTree:
    """The root at one size, read from the stored tiles (only once the tiles are verified)."""

    def __init__(self, size: int, read) -> None:
        self.size, self.read, self._root = size, read, None

    def root(self) -> str:
        if self._root is None:
            self._root = merkle.tree_root(size=self.size, read_tiles=self.read).hex()
        return self._root


class _TileCache:
    def __init__(self) -> None:
        self.tiles: dict[tuple[int, int], bytes] = {}

    def __call__(self, tiles: Sequence[merkle.Tile]) -> list[bytes]:
        missing = [t for t in tiles if t.key not in self.tiles]
        for tile, data in zip(missing, sealer.read_tiles(missing), strict=True):
            self.tiles[tile.key] = data
        return [self.tiles[t.key] for t in tiles]


class _Claims:
    """Checkpoints held against the stored chain hashes and the roots of the stored tiles
    (both verified by the window a checkpoint is in before it is checked)."""

    def __init__(self, claims: list[per_entry.Claim], stop: int) -> None:
        self.seqs = [c.seq for c in claims]
        inside = {c.seq for c in claims if c.seq <= stop and not c.fault_kind}
        self.hashes = dict(LedgerEntry.objects.filter(seq__in=inside).values_list("seq", "hash"))
        self.read = _TileCache()

    def count(self, lo: int, hi: int) -> int:
        return bisect.bisect_right(self.seqs, hi) - bisect.bisect_right(self.seqs, lo)

    def check(self, claim: per_entry.Claim) -> bool:
        tree = _StoredTree(claim.seq, self.read)
        return per_entry._check_claim(claim, claim.seq, self.hashes.get(claim.seq, ""), tree) is None
