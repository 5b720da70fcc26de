"""Writing drawn rows: one transaction per chunk, rows and their ledger entries together.

On PostgreSQL the ids come from the tables' own sequences, all three in one statement, and
the rows go in with COPY; elsewhere (SQLite for `make run`) bulk_create returns the ids.
Either way the ids are known before the ledger entries are built, because the payloads
name them.
"""

from __future__ import annotations

import datetime as dt
import operator
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from creditledger import pgcopy
from creditledger.ledger.actors import Actor
from creditledger.ledger.models import LedgerEntry
from creditledger.ledger.services import Entry, ledger_append_many
from penalties.demo.rows import Overturn, ShopRow, TraderRow, ViolationRow
from penalties.models import Violation
from penalties.services import violation_payload
from traders.models import Shop, Trader
from traders.services import shop_payload, trader_payload

ACTOR = Actor.system("seed_demo")
BATCH = 2000  # rows per INSERT where bulk_create is used


class Table:
    """One model's table: the columns a row object carries, the model's defaults for the rest.

    Taken from the model, so a field added later is written with its default rather than
    forgotten (or fails loudly if it has none and may not be null). Defaults are taken once
    a chunk: a field whose default must differ from row to row needs a row attribute."""

    def __init__(self, model, row_type: type) -> None:
        self.model = model
        fields = model._meta.concrete_fields
        self.carried = [f for f in fields if hasattr(row_type, f.attname)]
        self.rest = [f for f in fields if not hasattr(row_type, f.attname)]
        self.values = operator.attrgetter(*(f.attname for f in self.carried))
        self.columns = [f.column for f in self.carried] + [f.column for f in self.rest]
        self._sequence: str | None = None

    def defaults(self, now: dt.datetime) -> dict[str, Any]:
        """What the model would store in the columns the rows leave out; `now` for auto_now(_add)."""
        return {f.attname: now if _stamped(f) else f.get_default() for f in self.rest}

    def sequence(self) -> str:
        if self._sequence is None:
            table, pk = self.model._meta.db_table, self.model._meta.pk.column
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [table, pk])
                self._sequence = cursor.fetchone()[0]
        return self._sequence

    def lines(self, rows: list, now: dt.datetime) -> list[str]:
        """The rows as COPY text."""
        tail = "".join("\t" + pgcopy.value(v) for v in self.defaults(now).values()) + "\n"
        values, value = self.values, pgcopy.value
        return ["\t".join(map(value, values(row))) + tail for row in rows]

    def bulk_create(self, rows: list) -> None:
        names = [f.attname for f in self.carried]
        objects = [self.model(**dict(zip(names, self.values(row), strict=True))) for row in rows]
        with _explicit(self.carried):
            self.model.objects.bulk_create(objects, batch_size=BATCH)
        for row, obj in zip(rows, objects, strict=True):
            row.id = obj.pk


TRADERS = Table(Trader, TraderRow)
SHOPS = Table(Shop, ShopRow)
VIOLATIONS = Table(Violation, ViolationRow)
SEEDED = (Trader, Shop, Violation, LedgerEntry)  # the tables a seed fills


def _stamped(f) -> bool:
    return getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)


@contextmanager
def _explicit(fields):
    """Let bulk_create store the rows' own times in auto_now_add fields (recorded_at is
    backdated). Flips the field flags for the duration: seeding runs in its own process (or a test)."""
    with ExitStack() as stack:
        for f in fields:
            if getattr(f, "auto_now_add", False):
                f.auto_now_add = False
                stack.callback(setattr, f, "auto_now_add", True)
        yield


@dataclass(eq=False)
class Chunk:
    traders: list[TraderRow]
    shops: list[ShopRow]
    violations: list[ViolationRow]
    overturns: list[Overturn]
    now: dt.datetime  # the rows' registration time and the ledger entries' time

    def tables(self) -> tuple:
        return ((TRADERS, self.traders), (SHOPS, self.shops), (VIOLATIONS, self.violations))


@dataclass(frozen=True, eq=False)
class Prepared:
    """A chunk ready for PostgreSQL: ids given, rows as COPY text, ledger entries built."""

    copies: list[tuple[Table, list[str]]]
    entries: list[Entry]
    now: dt.datetime


def write_chunk(chunk: Chunk) -> int:
    """Insert the rows and append their ledger entries in one transaction; the entry count."""
    if connection.vendor == "postgresql":
        return write(prepare(chunk))
    with transaction.atomic():
        for table, rows in chunk.tables():
            table.bulk_create(rows)
        entries = ledger_entries(chunk)
        ledger_append_many(actor=ACTOR, entries=entries, at=chunk.now)
    return len(entries)


def prepare(chunk: Chunk) -> Prepared:
    """Everything but the writing (PostgreSQL). Sequences are not transactional, so this may
    run outside the transaction that writes, even on another connection."""
    _allocate_ids(chunk.tables())
    copies = [(table, table.lines(rows, chunk.now)) for table, rows in chunk.tables()]
    return Prepared(copies, ledger_entries(chunk), chunk.now)


def write(prepared: Prepared, turn: Turn | None = None) -> int:
    with transaction.atomic():
        for table, lines in prepared.copies:
            pgcopy.copy_lines(table.model._meta.db_table, table.columns, lines)
        if turn:
            turn.wait_for_previous()
        ledger_append_many(actor=ACTOR, entries=prepared.entries, at=prepared.now)
        if turn:
            turn.appended()
    return len(prepared.entries)


class Turn:
    """A chunk's place in the ledger: chunks written side by side still append in the order
    they were drawn. Each waits until the one before it has appended; that one's commit
    follows, and until then the ledger lock holds this one back. So the entries come in
    order and their times never run backwards."""

    def __init__(self, previous: Turn | None) -> None:
        self.previous = previous
        self._done = threading.Event()
        self._failed = False

    def wait_for_previous(self) -> None:
        if self.previous is not None:
            self.previous._done.wait()
            if self.previous._failed:
                raise RuntimeError("an earlier chunk failed to write, so this one is not written either")

    def appended(self) -> None:
        self._done.set()

    def failed(self) -> None:
        self._failed = True
        self._done.set()


class Writer:
    """Writes prepared chunks in threads of their own while the caller draws and prepares
    the next ones. Two writers: while one waits for PostgreSQL (COPY, the commit's flush)
    the other builds its ledger entries' canonical bodies, and the caller draws; Python
    keeps one core busy and PostgreSQL the other, instead of each waiting for the other.

    The threads have their own connections and so their own transactions: only for a caller
    that has no transaction open. At most WRITERS chunks are in hand, so memory is bounded."""

    WRITERS = 2

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=self.WRITERS, thread_name_prefix="seed-writer")
        self._pending: deque[Future] = deque()
        self._last: Turn | None = None

    def submit(self, prepared: Prepared) -> None:
        if len(self._pending) >= self.WRITERS:
            self._pending.popleft().result()  # a failed write raises here, before more is drawn
        turn = self._last = Turn(self._last)
        self._pending.append(self._pool.submit(_write_in_turn, prepared, turn))

    def wait(self) -> None:
        """Until every chunk is written; then the first failure, if any."""
        errors = self._drain()
        if errors:
            raise errors[0]

    def close(self) -> None:
        """Let the writes in hand finish (quietly: the caller is done or already failing)
        and close the threads' connections."""
        self._drain()
        # One task per thread (each waits for the others), so every thread closes its own.
        barrier = threading.Barrier(self.WRITERS)
        for closing in [self._pool.submit(_close_connection, barrier) for _ in range(self.WRITERS)]:
            closing.result()
        self._pool.shutdown()

    def _drain(self) -> list[Exception]:
        errors = []
        while self._pending:
            try:
                self._pending.popleft().result()
            except Exception as exc:
                errors.append(exc)
        return errors


def _write_in_turn(prepared: Prepared, turn: Turn) -> int:
    try:
        return write(prepared, turn)
    except BaseException:
        turn.failed()
        raise


def _close_connection(barrier: threading.Barrier) -> None:
    barrier.wait()
    connection.close()  # looked up in the calling thread: the writer's own connection


def _allocate_ids(tables) -> None:
    """Draw every row's id from its table's sequence: one statement for the whole chunk."""
    arrays = ", ".join("ARRAY(SELECT nextval(%s::regclass) FROM generate_series(1, %s))" for _ in tables)
    params = [p for table, rows in tables for p in (table.sequence(), len(rows))]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {arrays}", params)
        allocated = cursor.fetchone()
    for (_, rows), ids in zip(tables, allocated, strict=True):
        for row, pk in zip(rows, sorted(ids), strict=True):
            row.id = pk


def ledger_entries(chunk: Chunk) -> list[Entry]:
    """The entries the services would have written, in the order they would have."""
    traders, shops, violations, overturns = chunk.traders, chunk.shops, chunk.violations, chunk.overturns
    entries = [Entry("trader.registered", "trader", t.pk, t.uscc, trader_payload(t)) for t in traders]
    entries += [Entry("shop.registered", "shop", s.pk, s.trader.uscc, shop_payload(s)) for s in shops]
    decisions = []
    for v in violations:
        payload = violation_payload(v)
        payload["status"] = "pending"  # as it was when recorded (a plain str: normalise's fast path)
        entries.append(Entry("violation.recorded", "violation", v.pk, v.trader.uscc, payload))
        if v.status != Violation.Status.PENDING:
            first = v.status if v.status == Violation.Status.REJECTED else Violation.Status.CONFIRMED
            decisions.append((v.decided_at, 0, v, first, v.decided_by_id, v.decision_note))
    decisions += [(o.at, 1, o.violation, Violation.Status.OVERTURNED, o.by_id, o.note) for o in overturns]
    decisions.sort(key=operator.itemgetter(0, 1))  # by time; a decision before its overturn
    for at, _, v, status, by, note in decisions:
        entries.append(
            Entry(f"violation.{status}", "violation", v.pk, v.trader.uscc, _decision(v, status, by, at, note))
        )
    return entries


def _decision(violation: ViolationRow, status: str, by: int, at: dt.datetime, note: str) -> dict:
    """The payload penalties.services.violations._decide writes for a decision."""
    vtype = violation.type
    return {
        "violation": violation.pk,
        "type": vtype.code,
        "severity": vtype.severity,
        "points": vtype.points,
        "occurred_on": violation.occurred_on,
        "status": status,
        "decided_by": by,
        "decided_at": at,
        "note": note,
    }


def analyze() -> None:
    """Fresh planner statistics for the seeded tables. Autovacuum would get there in its
    own time; until then the planner takes millions of rows for a few hundred and picks
    nested loops that go quadratic."""
    if connection.vendor != "postgresql":
        return
    names = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in SEEDED)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {names}")
