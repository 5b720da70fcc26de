"""PostgreSQL advisory locks: for sweeps that must never overlap, and for one stored file."""

from __future__ import annotations

import zlib
from contextlib import contextmanager

from django.db import connection


def lock_key(name: str) -> int:
    """A stable 32-bit key for a lock name."""
    return zlib.crc32(name.encode("utf-8"))


def try_advisory_xact_lock(name: str) -> bool:
    """Take the named lock until the current transaction ends; False if someone holds it.

    On SQLite there is one writer at a time anyway, so the lock is always granted.
    """
    if connection.vendor != "postgresql":
        return True
    if not connection.in_atomic_block:
        raise RuntimeError("an advisory transaction lock needs a transaction")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [lock_key(name)])
        return bool(cursor.fetchone()[0])


def advisory_xact_lock(name: str) -> None:
    """Wait for the named lock and hold it until the current transaction ends."""
    if connection.vendor != "postgresql":
        return
    if not connection.in_atomic_block:
        raise RuntimeError("an advisory transaction lock needs a transaction")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key(name)])


@contextmanager
def advisory_lock(name: str):
    """A session-level advisory lock for a sweep made of many transactions.

    Yields True when taken (and releases it on exit), False when another process holds it.
    """
    if connection.vendor != "postgresql":
        yield True
        return
    key = lock_key(name)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        taken = bool(cursor.fetchone()[0])
    try:
        yield taken
    finally:
        if taken:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
