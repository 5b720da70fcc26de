"""Run the benchmarks: `make bench`, or `python bench/run.py [NAME ...]` to pick some.

Each bench/bench_NAME.py has a run() returning figures: (name, value, unit) or
(name, value, unit, reference name, reference value), the reference measured in the same
run so that the ratio means something on any machine. The runner creates and migrates
the bench database first. It refuses a database whose name does not say "bench": benches
empty tables.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent


def available() -> list[str]:
    return sorted(path.stem.removeprefix("bench_") for path in BENCH_DIR.glob("bench_*.py"))


def prepare_database() -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    name = connection.settings_dict["NAME"]
    if "bench" not in str(name):
        sys.exit(f"refusing to run benches on database {name!r}: its name must contain 'bench'")
    if connection.vendor == "postgresql":
        _create_postgres_database(connection)
    call_command("migrate", verbosity=0, interactive=False)


def _create_postgres_database(connection) -> None:
    import psycopg2

    params = connection.get_connection_params()
    name = params.pop("dbname")
    params.pop("cursor_factory", None)
    admin = psycopg2.connect(dbname="postgres", **params)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()


def show(figure: tuple) -> str:
    name, value, unit, *reference = figure
    line = f"  {name:<46} {value:>12,.1f} {unit}"
    if reference:
        ref_name, ref_value = reference
        line += f"   = {value / ref_value:.2f} x {ref_name} ({ref_value:,.1f} {unit})"
    return line


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creditledger.settings")
    names = argv or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        sys.exit(f"no bench named {', '.join(unknown)}; there are: {', '.join(available())}")
    prepare_database()
    for name in names:
        module = importlib.import_module(f"bench_{name}")
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        for figure in module.run():
            print(show(figure), flush=True)
        print(f"  ({time.perf_counter() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
