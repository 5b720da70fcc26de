"""The sweep of evidence files that no record references (left by rolled-back uploads)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import threading
import time

import psycopg2
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from creditledger.locks import lock_key
from penalties.models import Evidence
from penalties.services import evidence_attach, evidence_orphans_sweep
from penalties.services.violations import evidence_lock_name
from tests import factories

DAY = dt.timedelta(days=1)


def _stored(content: bytes, *, age: dt.timedelta) -> str:
    """A file in the evidence store, named as evidence_attach names it, last written `age` ago."""
    sha = hashlib.sha256(content).hexdigest()
    name = default_storage.save(f"evidence/{sha[:2]}/{sha}", ContentFile(content))
    stamp = time.time() - age.total_seconds()
    os.utime(default_storage.path(name), (stamp, stamp))
    return name


def _attach(as_officer, content: bytes) -> Evidence:
    return evidence_attach(
        actor=as_officer, violation=factories.ViolationFactory(), upload=io.BytesIO(content), name="现场.txt"
    )


@pytest.mark.django_db
def test_only_old_unreferenced_files_are_listed_and_removed(as_officer):
    kept = _attach(as_officer, b"referenced evidence")
    os.utime(default_storage.path(kept.file.name), (0, 0))  # old, but a record holds it
    old = _stored(b"left by a rolled-back upload", age=2 * DAY)
    recent = _stored(b"an upload still committing", age=dt.timedelta(minutes=5))

    assert evidence_orphans_sweep(older_than=DAY) == [old]
    assert default_storage.exists(old)  # listing removes nothing

    assert evidence_orphans_sweep(older_than=DAY, delete=True) == [old]
    assert not default_storage.exists(old)
    assert default_storage.exists(recent) and default_storage.exists(kept.file.name)
    assert evidence_orphans_sweep(older_than=DAY, delete=True) == []


@pytest.mark.django_db
def test_an_upload_rolled_back_after_its_file_was_written_leaves_an_orphan_the_sweep_finds(as_officer):
    with pytest.raises(RuntimeError), transaction.atomic():
        evidence = _attach(as_officer, b"the form around the upload failed")
        name = evidence.file.name
        raise RuntimeError("a later step of the same request failed")
    assert not Evidence.objects.exists() and default_storage.exists(name)
    assert evidence_orphans_sweep(older_than=dt.timedelta(0), delete=True) == [name]
    assert not default_storage.exists(name)


@pytest.mark.django_db(transaction=True)
def test_the_sweep_leaves_a_file_whose_upload_holds_its_lock():
    if connection.vendor != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's")
    content = b"the same content, being uploaded again right now"
    name = _stored(content, age=2 * DAY)
    sha = hashlib.sha256(content).hexdigest()
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    other = psycopg2.connect(**params)  # another session: an upload inside its transaction
    held, release = threading.Event(), threading.Event()

    def upload_in_progress():
        with other.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key(evidence_lock_name(sha))])
            held.set()
            release.wait(10)
            cursor.execute("COMMIT")

    thread = threading.Thread(target=upload_in_progress)
    thread.start()
    try:
        assert held.wait(10)
        assert evidence_orphans_sweep(older_than=DAY, delete=True) == []
        assert default_storage.exists(name)
    finally:
        release.set()
        thread.join()
        other.close()
    assert evidence_orphans_sweep(older_than=DAY, delete=True) == [name]


@pytest.mark.django_db
def test_the_command_lists_by_default_and_refuses_a_grace_under_an_hour(as_officer):
    old = _stored(b"orphan", age=3 * DAY)
    out = io.StringIO()
    call_command("evidence_sweep", stdout=out)
    assert old in out.getvalue() and "1 unreferenced file(s) found" in out.getvalue()
    assert default_storage.exists(old)
    call_command("evidence_sweep", "--delete", stdout=io.StringIO())
    assert not default_storage.exists(old)
    with pytest.raises(CommandError, match="at least 1 hour"):
        call_command("evidence_sweep", "--older-than", "0.5")
