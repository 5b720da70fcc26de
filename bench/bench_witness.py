"""Witnesses: the cost of holding the ledger against its cosignatures (verify_ledger's
witness check, creditledger/ledger/witnesses.py) over BENCH_WITNESS_ENTRIES entries (200,000)
with a cosigned checkpoint every tenth of them, by two witnesses.

References, measured in the same run and interleaved with it (medians of BENCH_RUNS, 3):
- verify_ledger's own walk over the same entries (chain, columns, tiles, checkpoints);
- reading the entries' bodies alone, in the same windows, without hashing them.

The entries are built once and kept; BENCH_FRESH=1 empties the ledger first.
"""

from __future__ import annotations

import os
import statistics
import time

ENTRIES = int(os.environ.get("BENCH_WITNESS_ENTRIES", 200_000))
RUNS = int(os.environ.get("BENCH_RUNS", 3))
BATCH = 5000
CHECKPOINTS = 10


def run() -> list[tuple]:
    cosigners = _prepare()
    from creditledger.ledger import witnesses
    from creditledger.ledger.verify import verify_ledger

    keys = [c.verifier for c in cosigners]
    timings: dict[str, list[float]] = {"witness": [], "verify": [], "sql": []}
    for _ in range(RUNS):  # interleaved, so drift on a shared machine hits all three alike
        start = time.perf_counter()
        report = witnesses.check_cosignatures(keys=keys)
        timings["witness"].append(time.perf_counter() - start)
        assert report.fault is None and report.cosignatures == CHECKPOINTS * len(keys), report
        start = time.perf_counter()
        assert verify_ledger().ok
        timings["verify"].append(time.perf_counter() - start)
        start = time.perf_counter()
        _read_bodies()
        timings["sql"].append(time.perf_counter() - start)
    witness, verify, sql = (statistics.median(timings[k]) for k in ("witness", "verify", "sql"))
    return [
        (
            "witness check, entries/s",
            round(ENTRIES / witness),
            "entries/s",
            "verify_ledger",
            round(ENTRIES / verify),
        ),
        ("witness check, seconds", round(witness, 3), "s", "reading the bodies alone", round(sql, 3)),
    ]


def _read_bodies() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for low in range(0, ENTRIES, 10_000):
            cursor.execute(
                "SELECT seq, body FROM ledger_ledgerentry WHERE seq > %s AND seq <= %s", [low, low + 10_000]
            )
            cursor.fetchall()


def _prepare():
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from django.conf import settings
    from django.db import connection, transaction

    from creditledger.ledger import merkle, sealer
    from creditledger.ledger.actors import Actor
    from creditledger.ledger.models import Checkpoint, Cosignature, LedgerEntry, Witness
    from creditledger.ledger.services import Entry, checkpoint_create, ledger_append_many
    from creditledger.ledger.witness_services import cosignature_record, witness_register

    settings.LEDGER_SEALER = "inline"
    settings.LEDGER_SIGNER = "file"
    settings.LEDGER_SIGNING_KEY = base64.b64encode(bytes(range(32))).decode()
    seeds = [bytes([n]) * 32 for n in (1, 2)]
    cosigners = [
        merkle.Cosigner(f"bench.example/witness-{n}", Ed25519PrivateKey.from_private_bytes(seed))
        for n, seed in enumerate(seeds)
    ]
    if os.environ.get("BENCH_FRESH") == "1" or LedgerEntry.objects.count() != ENTRIES:
        with connection.cursor() as cursor:
            for table in ("ledger_ledgerentry", "ledger_checkpoint", "ledger_ledgertile"):
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            cursor.execute(
                "TRUNCATE ledger_cosignature, ledger_witness, ledger_checkpoint, ledger_ledgertile, "
                "ledger_ledgerentry, ledger_pendingentry"
            )
            for table in ("ledger_ledgerentry", "ledger_checkpoint", "ledger_ledgertile"):
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        with transaction.atomic():
            for cosigner in cosigners:
                witness_register(actor=Actor.system("bench"), vkey=str(cosigner.verifier))
        every = ENTRIES // CHECKPOINTS
        done = LedgerEntry.objects.count()
        while done < ENTRIES:
            count = min(BATCH, ENTRIES - done, every - done % every)
            entries = [
                Entry("violation.confirmed", "violation", n, "91330106MA2K000001", {"n": n, "note": "抽查"})
                for n in range(done, done + count)
            ]
            with transaction.atomic():
                ledger_append_many(actor="system:bench", entries=entries)
            done += count
            if done % every == 0:
                checkpoint = checkpoint_create()
                text = checkpoint.note[: checkpoint.note.rindex("\n\n") + 1]
                for cosigner in cosigners:
                    cosignature_record(
                        size=checkpoint.seq, line=cosigner.cosign(text, timestamp=1_700_000_000)
                    )
    assert sealer.tree_size() == ENTRIES
    assert Cosignature.objects.count() == CHECKPOINTS * len(cosigners), Cosignature.objects.count()
    assert Checkpoint.objects.count() == CHECKPOINTS and Witness.objects.count() == len(cosigners)
    return cosigners
