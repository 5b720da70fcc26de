"""bench/bench_ledger.py end to end at a tiny size: its writer processes, the real sealer
process, the verify child and the proof requests all run, and leave a ledger that verifies."""

from __future__ import annotations

import math

import pytest
from django.db import connection

from creditledger.ledger.models import LedgerEntry, PendingEntry
from creditledger.ledger.verify import verify_ledger
from tests.ledger.conftest import TEST_ORIGIN, TEST_SEED
from tests.ledger.test_concurrency import ROOT, child_database_url

pytestmark = pytest.mark.django_db(transaction=True)

TINY = {"ENTRIES": 600, "SMALL": 300, "ROUNDS": 1, "WRITERS": 2, "APPENDS": 30, "APPENDS_EACH": 20}


@pytest.fixture
def bench_ledger(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import bench_ledger

    # The spawned writers, the verify child and the sealer read the environment, not settings.
    monkeypatch.setenv("DATABASE_URL", child_database_url())
    monkeypatch.setenv("CONN_MAX_AGE", "0")
    monkeypatch.setenv("LEDGER_SIGNING_KEY", TEST_SEED)
    monkeypatch.setenv("LEDGER_ORIGIN", TEST_ORIGIN)
    monkeypatch.delenv("BENCH_FRESH", raising=False)
    for name, value in {**TINY, "PROOFS": 20}.items():
        monkeypatch.setattr(bench_ledger, name, value)
    return bench_ledger


def test_the_ledger_bench_runs_at_a_tiny_size_and_leaves_a_verifying_ledger(bench_ledger):
    figures = bench_ledger.run()

    names = [figure[0].strip() for figure in figures]
    expected = [
        "bulk append (ledger_append_many x5000, sealed inline)",
        "inclusion proof p99 at 300: API",
        "consistency proof p99 at 600: selector",
        "verify_ledger over 300 entries",
        "verify_ledger over 600 entries",
        "appends, 1 writer (queued, sealed)",
        "seal latency p99, 2 writer processes",
    ]
    assert all(name in names for name in expected), names
    for name, value, _unit, *reference in figures:
        assert math.isfinite(value) and value >= 0, (name, value)
        assert not reference or reference[1] > 0, (name, reference)

    appended = TINY["ROUNDS"] * (TINY["APPENDS"] + TINY["WRITERS"] * TINY["APPENDS_EACH"])
    assert LedgerEntry.objects.count() == TINY["ENTRIES"] + appended  # every append sealed once
    assert not PendingEntry.objects.exists()
    result = verify_ledger()
    assert result.ok and result.last == TINY["ENTRIES"] + appended, result.summary()
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [bench_ledger.PLAIN_TABLE])
        assert cursor.fetchone() == (None,)  # the reference table is gone
