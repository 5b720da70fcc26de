"""A finished export is recorded in the ledger (`export.completed`), a failed one too
(`export.failed`); verify_export checks a file and its manifest against that entry, so
editing both no longer passes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from creditledger.ledger import canonical
from creditledger.ledger.actors import Actor
from creditledger.ledger.models import LedgerEntry
from creditledger.ledger.selectors import STATUS_ACTIONS, changes_after
from creditledger.ledger.services import checkpoint_create
from penalties.exports import manifest, services, tasks
from penalties.models import Export
from tests import factories
from tests.ledger.helpers import tamper
from tests.worker import ROOT

pytestmark = pytest.mark.django_db


def _request(user, report="violations", fmt="csv", **filters) -> Export:
    # A `db` test never commits, so the job is not published: the test runs it.
    return services.export_request(
        actor=Actor.for_user(user), report=report, file_format=fmt, filters=filters
    )


def _entries(export: Export, action: str = manifest.COMPLETED):
    return LedgerEntry.objects.filter(action=action, subject_type="export", subject_id=str(export.pk))


@pytest.fixture
def violations(db):
    for _ in range(3):
        factories.ViolationFactory(status="confirmed", decided_at=timezone.now(), description="虚假宣传")


@pytest.fixture
def downloaded(violations, auditor, tmp_path):
    """A finished CSV export, downloaded with its manifest as the audit page serves them."""
    export = _request(auditor)
    assert tasks.export_run(export.pk) == Export.State.DONE
    export.refresh_from_db()
    path = tmp_path / export.filename
    with export.file.open("rb") as handle:
        path.write_bytes(handle.read())
    manifest_path = tmp_path / f"{export.filename}.manifest.json"
    manifest_path.write_bytes(manifest.dumps(export.manifest))
    return export, path, manifest_path


def test_a_finished_export_is_recorded_with_its_file_and_its_manifest(downloaded):
    export, path, manifest_path = downloaded
    entry = _entries(export).get()
    assert manifest.export_entry(export.pk) == entry
    assert (entry.actor, entry.subject_type, entry.subject_id) == (
        "system:export_run",
        "export",
        str(export.pk),
    )
    body = path.read_bytes()
    served = json.loads(manifest_path.read_bytes())
    recorded = entry.payload
    assert recorded["sha256"] == hashlib.sha256(body).hexdigest() == export.sha256
    assert recorded["size"] == len(body) == served["size"]
    assert recorded["manifest_sha256"] == hashlib.sha256(canonical.dumps(served)).hexdigest()
    assert served["export_id"] == export.pk  # the manifest names the export, not a seq
    assert (recorded["report"], recorded["format"], recorded["filename"]) == (
        "violations",
        "csv",
        export.filename,
    )
    assert recorded["filters"] == export.filters and recorded["scope"] == export.scope
    assert recorded["row_count"] == export.row_count == 3
    anchor = served["ledger"]
    assert recorded["ledger_anchor"] == {
        "head_seq": anchor["head_seq"],
        "head_hash": anchor["head_hash"],
        "checkpoint": {"seq": anchor["checkpoint"]["seq"], "hash": anchor["checkpoint"]["hash"]},
    }
    assert entry.seq > anchor["head_seq"]  # recorded after the ledger state the file shows
    assert recorded["attempt"] == export.attempts == 1


def test_export_entries_stay_out_of_the_platforms_change_feed(downloaded, auditor):
    failed = _request(auditor, report="grades")
    Export.objects.filter(pk=failed.pk).update(filters={"level": "planet"})
    assert tasks.export_run(failed.pk) == Export.State.FAILED
    assert {"export.requested", "export.completed", "export.failed"}.isdisjoint(STATUS_ACTIONS)
    assert LedgerEntry.objects.filter(action__startswith="export.").count() == 4
    assert not [entry for entry in changes_after(0, 10_000) if entry.subject_type == "export"]


def test_an_export_that_fails_is_recorded_as_failed_with_the_reason(db, auditor):
    export = _request(auditor, report="grades")
    Export.objects.filter(pk=export.pk).update(filters={"level": "planet"})
    assert tasks.export_run(export.pk) == Export.State.FAILED
    entry = _entries(export, "export.failed").get()
    assert "planet" in entry.payload["reason"] and entry.payload["was"] == "running"
    assert (entry.payload["report"], entry.payload["attempts"]) == ("grades", 1)
    assert not _entries(export).exists()


@pytest.fixture
def completion_refused(db):
    """The database refuses `export.completed` rows (a trigger, for this test's transaction
    only): the transaction that would finish the export fails at the append."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE FUNCTION pg_temp.refuse_completed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.action = 'export.completed' THEN
                    RAISE EXCEPTION 'refused by the test';
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER refuse_completed BEFORE INSERT ON ledger_ledgerentry
                FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse_completed();
            """
        )


def test_when_the_entry_cannot_be_written_the_export_is_not_done(completion_refused, auditor):
    export = _request(auditor, report="grades")
    assert tasks.export_run(export.pk) == Export.State.FAILED
    export.refresh_from_db()
    # The finishing transaction rolled back whole: no entry, no file, no digest.
    assert not _entries(export).exists()
    assert not export.file and not export.sha256 and export.manifest is None
    assert "refused by the test" in export.error
    assert _entries(export, "export.failed").get().payload["reason"] == export.error
    assert not list((Path(export.file.storage.location) / "exports").rglob("*.csv"))


def test_verify_export_passes_the_untouched_download_naming_its_entry(downloaded, capsys):
    export, path, manifest_path = downloaded
    call_command("verify_export", str(path), str(manifest_path))
    out = capsys.readouterr().out
    seq = _entries(export).get().seq
    assert f"ledger entry {seq} (export.completed of export {export.pk}) matches" in out
    assert ": ok: " in out and export.sha256 in out


def test_verify_export_proves_the_entry_under_the_next_signed_checkpoint(downloaded, capsys):
    export, path, manifest_path = downloaded
    entry = _entries(export).get()
    call_command("verify_export", str(path), str(manifest_path))
    out = capsys.readouterr().out
    assert f"inclusion not proved yet: no signed checkpoint covers entry {entry.seq}" in out
    checkpoint = checkpoint_create()
    assert checkpoint.seq >= entry.seq
    call_command("verify_export", str(path), str(manifest_path))
    out = capsys.readouterr().out
    assert f"entry {entry.seq} proved in signed checkpoint {checkpoint.seq} (root {checkpoint.root}" in out
    verdict = manifest.verify_all(path, manifest.loads(manifest_path.read_bytes()))
    assert verdict.faults == [] and verdict.proof.startswith(f"entry {entry.seq} proved")


def test_an_entry_rewritten_to_match_a_recomputed_manifest_fails_its_inclusion_proof(downloaded):
    """The forger also has the database: it rewrites the export's entry (payload, body and
    hash, the chain relinked) to record the forged file and manifest. Every value then
    agrees, but the entry is no longer the leaf the signed tree holds."""
    export, path, manifest_path = downloaded
    checkpoint_create()
    forged = _edit_and_recompute(path, manifest_path)
    entry = _entries(export).get()
    payload = dict(entry.payload, sha256=forged["sha256"], size=forged["size"])
    payload["manifest_sha256"] = manifest.manifest_digest(forged)
    body = canonical.entry_body(
        seq=entry.seq,
        at=entry.at,
        actor=entry.actor,
        action=entry.action,
        subject_type=entry.subject_type,
        subject_id=entry.subject_id,
        trader_uscc=entry.trader_uscc,
        payload=payload,
    )
    tamper(
        "UPDATE ledger_ledgerentry SET payload = %s, body = %s, hash = %s WHERE seq = %s",
        [json.dumps(payload), body, canonical.chain_hash(entry.prev_hash, body), entry.seq],
    )
    faults = manifest.verify(path, forged)
    assert [f.kind for f in faults] == [manifest.NOT_INCLUDED]
    assert f"entry {entry.seq} as stored is not the leaf signed in checkpoint" in str(faults[0])
    with pytest.raises(CommandError) as caught:
        call_command("verify_export", str(path), str(manifest_path))
    assert caught.value.returncode == 1 and "ledger entry not in the signed tree" in str(caught.value)


def _edit_and_recompute(path: Path, manifest_path: Path) -> dict:
    """What a forger does: change the file, then make the manifest agree with it."""
    path.write_bytes(path.read_bytes().replace("虚假宣传".encode(), "如实宣传，无违法".encode(), 1))
    data = manifest.loads(manifest_path.read_bytes())
    data["sha256"], data["size"] = manifest.file_digest(path)
    manifest_path.write_bytes(manifest.dumps(data))
    return data


def test_an_edited_file_with_a_recomputed_manifest_fails_naming_export_entry_and_values(downloaded):
    export, path, manifest_path = downloaded
    forged = _edit_and_recompute(path, manifest_path)
    seq = _entries(export).get().seq
    faults = manifest.verify(path, forged)
    assert [f.kind for f in faults] == [manifest.ENTRY_MISMATCH] * 3  # nothing else notices
    with pytest.raises(CommandError) as caught:
        call_command("verify_export", str(path), str(manifest_path))
    message = str(caught.value)
    assert caught.value.returncode == 1
    named = f"ledger entry mismatch: export {export.pk}, ledger entry {seq} (export.completed)"
    assert message.count(named) == 3
    assert f"the file's SHA-256 is {forged['sha256']}, the entry recorded {export.sha256}" in message
    assert f"the file's size is {forged['size']}" in message
    assert f"the manifest's SHA-256 is {manifest.manifest_digest(forged)}" in message


def test_a_manifest_edited_alone_fails_on_its_own_digest(downloaded):
    export, path, manifest_path = downloaded
    data = manifest.loads(manifest_path.read_bytes())
    data["filters"] = {"region": "33"}  # claim the file is a narrower register than it is
    assert [str(f) for f in manifest.verify(path, data)] == [
        f"ledger entry mismatch: export {export.pk}, ledger entry {_entries(export).get().seq} "
        f"(export.completed): the manifest's SHA-256 is {manifest.manifest_digest(data)}, "
        f"the entry recorded {manifest.manifest_digest(export.manifest)}"
    ]


def test_a_manifest_naming_an_export_the_ledger_did_not_record_fails(downloaded, auditor):
    _export, path, manifest_path = downloaded
    other = _request(auditor, report="grades")  # requested, never finished
    data = manifest.loads(manifest_path.read_bytes())
    data["export_id"] = other.pk
    faults = manifest.verify(path, data)
    assert [str(f) for f in faults] == [
        f"no ledger entry: the ledger has no export.completed entry for export {other.pk}"
    ]


def test_offline_the_ledger_entry_check_is_skipped_and_said_to_be(downloaded, capsys):
    _export, path, manifest_path = downloaded
    _edit_and_recompute(path, manifest_path)
    call_command("verify_export", str(path), str(manifest_path), "--offline")
    assert "ledger entry check skipped: offline" in capsys.readouterr().out


def test_without_a_database_verify_export_checks_the_signature_and_skips_the_entry(downloaded):
    _export, path, manifest_path = downloaded
    env = {**os.environ, "DATABASE_URL": "postgres://postgres@127.0.0.1:9/nowhere"}
    done = subprocess.run(
        [sys.executable, "manage.py", "verify_export", str(path), str(manifest_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "signature ok, ledger entry check skipped: no database here" in done.stdout


def test_a_manifest_from_export_report_names_no_export_and_says_the_check_is_skipped(
    violations, tmp_path, capsys
):
    target = tmp_path / "violations.csv"
    call_command("export_report", "violations", "-o", str(target), "--no-progress")
    data = manifest.loads((tmp_path / "violations.csv.manifest.json").read_bytes())
    assert data["export_id"] is None
    capsys.readouterr()
    call_command("verify_export", str(target), f"{target}.manifest.json")
    assert "ledger entry check skipped: the manifest names no export" in capsys.readouterr().out
