"""seed_demo at scale: rows per second against a COPY of the same rows, and peak memory.

BENCH_SIZE picks the size: `100k` (100,000 traders / 500,000 violations, the default) or
`1m` (1,000,000 / 5,000,000). The seeded tables and the ledger are emptied first, so the
seed runs as on a new database; it runs in a fresh process, whose peak RSS
(getrusage) is the seed's alone.

Reference, measured in the same run: every seeded table's rows copied out with COPY TO,
then timed COPY FROM into an empty copy of the table (CREATE TABLE ... (LIKE ... INCLUDING
ALL): the same columns, indexes and CHECK constraints; no foreign keys, no triggers), one
table after the other, in the key order the seed wrote them, a COPY (and a commit) per
million keys. What the seed does beyond that —
drawing the rows, the payloads, the canonical bodies and the hash chain, the foreign-key
checks, the id allocation, ANALYZE — is what the ratio shows.

The reference copies a million keys at a time, so it needs free disk for the largest
table's copy and one piece: about 25 GB at 1m, most of it the ledger. It stops, saying so,
when there is less.

`seed_figures(traders, violations)` yields the same figures for another bench to use.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

SIZES = {"100k": (100_000, 500_000), "1m": (1_000_000, 5_000_000)}
SEED = 7
COPY_PREFIX = "bench_copy_"
READ_SIZE = 1 << 20
PIECE = 1_000_000  # keys per piece of the reference copy


def run():
    size = os.environ.get("BENCH_SIZE", "100k").lower()
    if size not in SIZES:
        raise SystemExit(f"BENCH_SIZE must be one of {', '.join(SIZES)}, not {size!r}")
    yield from seed_figures(*SIZES[size])


def seed_figures(traders: int, violations: int):
    _empty_seeded_tables()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:  # a fresh process: its peak memory is the seed's alone
        seconds, rows, base_mb, peak_mb, summary = pool.apply(_seed_child, (traders, violations))
    print(f"  {summary}", flush=True)
    copy_seconds, copied = _copy_reference()
    if copied != rows:
        raise RuntimeError(f"the reference copied {copied:,} rows, the seed wrote {rows:,}")
    label = f"{traders:,} traders / {violations:,} violations"
    yield (f"seed_demo, {label}", rows / seconds, "rows/s", "COPY of the same rows", rows / copy_seconds)
    yield ("seed_demo wall time", seconds, "s", "COPY of the same rows", copy_seconds)
    yield ("seed_demo rows written (all four tables)", rows, "rows")
    yield ("seed_demo peak RSS", peak_mb, "MB")
    yield ("seed_demo peak RSS above a connected process", peak_mb - base_mb, "MB")


# --- the seed ---------------------------------------------------------------------------


def _seed_child(traders: int, violations: int) -> tuple:
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from penalties import demo

    get_user_model().objects.exists()  # connected, so the baseline includes the driver
    base_mb = _maxrss_mb()
    started = time.perf_counter()
    result = demo.seed(traders=traders, violations=violations, seed=SEED, progress=_progress)
    seconds = time.perf_counter() - started
    rows = result.traders + result.shops + result.violations + result.ledger_entries
    return seconds, rows, base_mb, _maxrss_mb(), result.summary()


def _progress(result, seconds: float) -> None:
    if result.traders % 100_000 < 2000:
        print(f"  ... {result.traders:,} traders, {seconds:.0f} s", file=sys.stderr, flush=True)


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _seeded_models() -> tuple:
    from penalties.demo.store import SEEDED

    return SEEDED


def _empty_seeded_tables() -> None:
    """TRUNCATE the seeded tables (and what refers to them). The ledger's append-only
    triggers refuse that; a superuser switches them off for the moment, as the ledger
    tests do: this is a bench database."""
    from django.db import connection, transaction

    ledger = ("ledger_ledgerentry", "ledger_checkpoint")
    with transaction.atomic(), connection.cursor() as cursor:
        for table in ledger:
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        tables = ", ".join([*(m._meta.db_table for m in _seeded_models()), "ledger_checkpoint"])
        cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        for table in ledger:
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


# --- the reference ----------------------------------------------------------------------


def _copy_reference() -> tuple[float, int]:
    """(seconds, rows) of COPY FROM of every seeded table's rows into an empty copy of it."""
    seconds, rows = 0.0, 0
    workdir = Path(tempfile.mkdtemp(prefix="bench_seed_", dir=_var_dir()))
    try:
        for model in _seeded_models():
            took, count = _copy_table(model, workdir / "piece.copy")
            print(f"  COPY {model._meta.db_table}: {count:,} rows in {took:.1f} s", flush=True)
            seconds += took
            rows += count
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return seconds, rows


def _copy_table(model, path: Path) -> tuple[float, int]:
    """The table's rows out and into the copy a piece of PIECE keys at a time, so that the
    disk holds one piece's file beside the copy, not the whole table twice over (the
    ledger alone is about 20 GB of COPY text at 1m). Only the loads are timed."""
    from django.db import connection

    table, pk = model._meta.db_table, model._meta.pk.column
    copy = COPY_PREFIX + table
    took, count = 0.0, 0
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT pg_total_relation_size(%s::regclass), min({pk}), max({pk}) FROM {table}", [table]
        )
        size, low, high = cursor.fetchone()
        _check_disk(path.parent, 1.05 * size + 6 * 2**30, table)  # a piece, and room for others
        cursor.execute(f"DROP TABLE IF EXISTS {copy}")
        cursor.execute(f"CREATE TABLE {copy} (LIKE {table} INCLUDING ALL)")
        try:
            for start in range(low or 0, (high or -1) + 1, PIECE):
                keys = f"{pk} >= {start} AND {pk} < {start + PIECE}"
                piece = f"SELECT * FROM {table} WHERE {keys} ORDER BY {pk}"
                with open(path, "wb") as out:
                    cursor.cursor.copy_expert(f"COPY ({piece}) TO STDOUT", out, size=READ_SIZE)
                with open(path, "rb") as source:
                    started = time.perf_counter()
                    cursor.cursor.copy_expert(f"COPY {copy} FROM STDIN", source, size=READ_SIZE)
                    took += time.perf_counter() - started  # autocommit: the commit is inside
                count += cursor.cursor.rowcount
        finally:
            path.unlink(missing_ok=True)
            cursor.execute(f"DROP TABLE {copy}")
    return took, count


def _check_disk(directory: Path, needed: float, table: str) -> None:
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise SystemExit(
            f"the reference COPY of {table} needs about {needed / 2**30:.0f} GB free under "
            f"{directory}, there are {free / 2**30:.0f} GB"
        )


def _var_dir() -> Path:
    from django.conf import settings

    path = Path(settings.VAR_DIR) / "bench"
    path.mkdir(parents=True, exist_ok=True)
    return path
