"""One writer process for the sealer test: python -m tests.ledger.queue_worker ID COUNT DIR.

Like append_worker, with LEDGER_SEALER=process: COUNT transactions, transaction n queues
n % 3 + 1 entries, and every fifth one (n % 5 == 4) rolls back after queueing them.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


class RolledBack(Exception):
    pass


def committed(n: int) -> bool:
    return n % 5 != 4


def entries_of(n: int) -> int:
    return n % 3 + 1


def main(writer: int, count: int, sync_dir: Path) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creditledger.settings")
    import django

    django.setup()
    from django.db import connection, transaction

    from creditledger.ledger.services import Entry, ledger_append_many

    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO off")
    (sync_dir / f"ready-{writer}").touch()
    deadline = time.monotonic() + 60
    while not (sync_dir / "go").exists():
        if time.monotonic() > deadline:
            sys.exit("no go signal")
        time.sleep(0.005)
    for n in range(count):
        try:
            with transaction.atomic():
                entries = [
                    Entry(
                        "test.queued", "test", f"{writer}-{n}-{i}", payload={"writer": writer, "n": n, "i": i}
                    )
                    for i in range(entries_of(n))
                ]
                ledger_append_many(actor=f"system:writer{writer}", entries=entries)
                if not committed(n):
                    raise RolledBack
        except RolledBack:
            pass
        time.sleep(0.01)  # a changing transaction's own work, so writers and sealers overlap
    (sync_dir / f"done-{writer}").touch()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
