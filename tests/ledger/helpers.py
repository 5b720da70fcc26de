"""Helpers for the ledger tests: append sample entries, tamper as a superuser could, verify."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
from decimal import Decimal

from django.core.management import call_command
from django.db import connection, transaction

from creditledger.ledger.services import Entry, ledger_append_many

TABLES = ("ledger_ledgerentry", "ledger_checkpoint", "ledger_ledgertile")


@contextlib.contextmanager
def trigger_disabled():
    """What a database superuser can do: switch the append-only triggers off for a moment."""
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for table in TABLES:
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def mth(bodies: list[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH over entry bodies, written out from the RFC (not the module)."""
    import hashlib

    if not bodies:
        return hashlib.sha256(b"").digest()
    if len(bodies) == 1:
        return hashlib.sha256(b"\x00" + bodies[0]).digest()
    k = 1 << ((len(bodies) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + mth(bodies[:k]) + mth(bodies[k:])).digest()


def tamper(sql: str, params=()) -> None:
    with trigger_disabled(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def sample_entries(count: int, *, start: int = 1, action: str = "violation.recorded") -> list[Entry]:
    return [
        Entry(
            action=action,
            subject_type="violation",
            subject_id=n,
            trader_uscc="91330106MA2K000001",
            payload={
                "n": n,
                "fine": Decimal("1250.50"),
                "occurred_on": dt.date(2026, 3, n % 28 + 1),
                "note": "商品详情页宣传与实际不符",
                "evidence": [{"sha256": f"{n:064x}"}],
            },
        )
        for n in range(start, start + count)
    ]


def append(count: int, *, actor: str = "system:test", **kwargs) -> list:
    with transaction.atomic():
        return ledger_append_many(actor=actor, entries=sample_entries(count, **kwargs))


def run_verify(*args: str) -> str:
    """verify_ledger's output; raises CommandError (with .returncode) on a fault."""
    out = io.StringIO()
    call_command("verify_ledger", *args, stdout=out)
    return out.getvalue().strip()
