from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from creditledger.ledger.models import LedgerEntry
from creditledger.ledger.verify import verify_ledger

WRITERS = 8
EACH = 500
ROOT = Path(settings.BASE_DIR)


def child_database_url() -> str:
    db = connection.settings_dict
    auth = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.mark.django_db(transaction=True)
def test_concurrent_writer_processes_get_a_gap_free_verifying_chain(tmp_path):
    env = {**os.environ, "DATABASE_URL": child_database_url(), "CONN_MAX_AGE": "0"}
    writers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.ledger.append_worker", str(n), str(EACH), str(tmp_path)],
            cwd=ROOT,
            env=env,
        )
        for n in range(WRITERS)
    ]
    try:
        wait_for(lambda: len(list(tmp_path.glob("ready-*"))) == WRITERS, 60, "the writers to start")
        (tmp_path / "go").touch()
        for writer in writers:
            assert writer.wait(timeout=120) == 0
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()

    seqs = list(LedgerEntry.objects.values_list("seq", flat=True))
    assert seqs == list(range(1, WRITERS * EACH + 1))
    result = verify_ledger()
    assert result.ok, result.summary()
    assert result.last == WRITERS * EACH

    actors = list(LedgerEntry.objects.values_list("actor", flat=True))
    switches = sum(1 for a, b in itertools.pairwise(actors) if a != b)
    assert switches > WRITERS, "the writers did not overlap; the test proved nothing"
    for n in range(WRITERS):  # each writer's own entries keep its order
        mine = LedgerEntry.objects.filter(actor=f"system:writer{n}").values_list("payload__n", flat=True)
        assert list(mine) == list(range(EACH))
