"""Exports: the violations register to CSV and to XLSX at 100k and 500k rows — rows per
second and peak memory, each run in a fresh process so its peak is its own.

References, measured in the same run on the same rows (the register's own SQL, joins and
order):
- CSV: PostgreSQL's `COPY (SELECT …) TO STDOUT WITH CSV` into a file (no Python at all),
  and csv.writer over a plain server-side cursor (Python, but no labels, no local times);
- XLSX: XlsxWriter's write_row over the same plain cursor, constant_memory as ours.

Memory is the child's peak resident set (VmHWM) above its resident set just before the
export starts (Django loaded, connected): flat means the 500k figure is about the 100k
one.

The bench database is topped up to BENCH_EXPORT_VIOLATIONS (500000) violations with
penalties.demo.seed (BENCH_EXPORT_TRADERS, 50000, traders for the new ones) and kept
between runs; another bench may have seeded it already. Knob: BENCH_EXPORT_SIZES
("100000,500000").
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sys
import tempfile
import time

VIOLATIONS = int(os.environ.get("BENCH_EXPORT_VIOLATIONS", 500_000))
TRADERS = int(os.environ.get("BENCH_EXPORT_TRADERS", 50_000))
SIZES = [int(n) for n in os.environ.get("BENCH_EXPORT_SIZES", "100000,500000").split(",")]


def run():
    _seed()
    workdir = tempfile.mkdtemp(prefix="bench-exports-")
    try:
        for size in SIZES:
            label = f"{size // 1000}k"
            ours = _in_child("export", "csv", size, workdir)
            copy = _in_child("copy", "csv", size, workdir)
            raw = _in_child("raw", "csv", size, workdir)
            yield (f"CSV export, {label} rows", ours["rate"], "rows/s", "COPY TO STDOUT", copy["rate"])
            yield (f"CSV export, {label} rows", ours["rate"], "rows/s", "csv.writer on a cursor", raw["rate"])
            yield (
                f"  CSV peak memory, {label} rows",
                ours["growth"],
                "MB",
                "csv.writer on a cursor",
                raw["growth"],
            )
            ours = _in_child("export", "xlsx", size, workdir)
            raw = _in_child("raw", "xlsx", size, workdir)
            yield (
                f"XLSX export, {label} rows",
                ours["rate"],
                "rows/s",
                "xlsxwriter on a cursor",
                raw["rate"],
            )
            yield (
                f"  XLSX peak memory, {label} rows",
                ours["growth"],
                "MB",
                "xlsxwriter on a cursor",
                raw["growth"],
            )
            yield (f"  XLSX file size, {label} rows", ours["bytes"] / 2**20, "MB")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# --- data ---------------------------------------------------------------------------------


def _seed() -> None:
    from penalties import demo
    from penalties.models import Violation

    have = Violation.objects.count()
    missing = VIOLATIONS - have
    if missing <= 0:
        print(f"  reusing the {have:,} violations already in the bench database", flush=True)
        return
    traders = max(1, TRADERS * missing // VIOLATIONS)
    print(f"  seeding {missing:,} violations over {traders:,} new traders ...", file=sys.stderr, flush=True)

    def progress(result, seconds):
        if result.traders % 10_000 < demo.CHUNK:
            print(f"  ... {result.violations:,} violations, {seconds:.0f} s", file=sys.stderr, flush=True)

    result = demo.seed(traders=traders, violations=missing, seed=int(time.time()) % 10_000, progress=progress)
    print(f"  {result.summary()}", file=sys.stderr, flush=True)


def _exporter(size: int):
    """The violations register limited to the first `size` violations by id."""
    from penalties.exports.registers import ViolationsRegister
    from penalties.models import Violation

    last = Violation.objects.order_by("id").values_list("id", flat=True)[size - 1]

    class FirstRows(ViolationsRegister):
        def queryset(self):
            return super().queryset().filter(id__lte=last)

    return FirstRows({})


# --- one run per process ------------------------------------------------------------------


def _in_child(kind: str, fmt: str, size: int, workdir: str) -> dict:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        result = pool.apply(_child, (kind, fmt, size, workdir))
    if result["rows"] != size:
        raise RuntimeError(f"{kind} {fmt} wrote {result['rows']} rows, expected {size}")
    return result


def _child(kind: str, fmt: str, size: int, workdir: str) -> dict:
    import django

    django.setup()
    from django.db import connection

    from penalties.exports.services import export_to_file  # imported before the baseline

    exporter = _exporter(size)  # connects, and finds the id bound
    path = os.path.join(workdir, f"{kind}.{fmt}")
    baseline = _rss_mb()
    started = time.perf_counter()
    if kind == "export":
        rows = export_to_file(exporter, fmt, path, generated_by="bench")["row_count"]
    elif kind == "copy":
        rows = _copy(connection, exporter, path)
    else:
        rows = _raw(connection, exporter, path, fmt)
    seconds = time.perf_counter() - started
    peak = _status_mb("VmHWM")  # this process's own peak (ru_maxrss would count the forked parent)
    size_bytes = os.path.getsize(path)
    os.unlink(path)
    return {
        "rows": rows,
        "rate": rows / seconds,
        "growth": max(0.0, peak - baseline),
        "bytes": size_bytes,
    }


def _sql(connection, exporter) -> str:
    """The register's own query (same joins, filters and order) as literal SQL."""
    qs = exporter.queryset().order_by("occurred_on", "id").values_list(*exporter.FIELDS)
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        return cursor.cursor.mogrify(sql, params).decode()


def _copy(connection, exporter, path: str) -> int:
    sql = _sql(connection, exporter)
    with open(path, "wb") as out, connection.cursor() as cursor:
        out.write(b"\xef\xbb\xbf")
        cursor.cursor.copy_expert(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER true)", out)
    with open(path, "rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b"")) - 1


def _raw(connection, exporter, path: str, fmt: str) -> int:
    import csv

    from django.db import transaction

    sql = _sql(connection, exporter)
    rows = 0
    with transaction.atomic(), connection.connection.cursor(name="bench_raw") as cursor:
        cursor.itersize = 2000
        cursor.execute(sql)
        if fmt == "csv":
            with open(path, "w", encoding="utf-8-sig", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(exporter.FIELDS)
                for row in cursor:
                    writer.writerow(row)
                    rows += 1
        else:
            import xlsxwriter

            options = {"constant_memory": True, "strings_to_formulas": False, "remove_timezone": True}
            book = xlsxwriter.Workbook(path, options)
            sheet = book.add_worksheet()
            sheet.write_row(0, 0, exporter.FIELDS)
            for row in cursor:
                rows += 1
                sheet.write_row(rows, 0, row)
            book.close()
    return rows


def _rss_mb() -> float:
    return _status_mb("VmRSS")


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {field} in /proc/self/status")
