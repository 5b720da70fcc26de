"""One writer process for the concurrency test: python -m tests.ledger.append_worker ID COUNT DIR.

Touches DIR/ready-ID once Django is up, waits for DIR/go, then appends COUNT entries, each
in its own transaction, as every service does. DATABASE_URL names the test database.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def main(writer: int, count: int, sync_dir: Path) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creditledger.settings")
    import django

    django.setup()
    from django.db import connection, transaction

    from creditledger.ledger.services import ledger_append

    with connection.cursor() as cursor:
        # Durability is not under test; commit order and the lock are, and this keeps them.
        cursor.execute("SET synchronous_commit TO off")
    (sync_dir / f"ready-{writer}").touch()
    deadline = time.monotonic() + 60
    while not (sync_dir / "go").exists():
        if time.monotonic() > deadline:
            sys.exit("no go signal")
        time.sleep(0.005)
    for n in range(count):
        with transaction.atomic():
            ledger_append(
                actor=f"system:writer{writer}",
                action="test.appended",
                subject_type="test",
                subject_id=f"{writer}-{n}",
                payload={"writer": writer, "n": n},
            )


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
