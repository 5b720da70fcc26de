"""manage.py verify_export FILE MANIFEST: does this file match its manifest, does the
manifest's ledger checkpoint carry the ledger's signature, and did the ledger record this
file and this manifest when the export finished (its `export.completed` entry, proved to be
in the signed Merkle tree by an inclusion proof under the newest checkpoint)?

Exit 0 when everything holds; 1 naming each fault (sha256, size, row count, checkpoint
signature, checkpoint against the ledger, the ledger entry: which export, which entry,
which value differs); 2 when a file cannot be read or the manifest is not one. With
--offline, or without a database, the checks against the ledger are skipped, and the
output says so."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from creditledger.ledger import signing, witnesses
from penalties.exports import manifest as export_manifest


class Command(BaseCommand):
    help = (
        "Check an export against its manifest: SHA-256, size and row count of the file, the "
        "Ed25519 signature of the ledger checkpoint it carries, and the export's "
        "export.completed ledger entry (the file's and the manifest's SHA-256 it recorded)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE")
        parser.add_argument("manifest", metavar="MANIFEST")
        parser.add_argument(
            "--public-key",
            metavar="VKEY",
            help="The ledger's verifier key (as /ledger/public-key shows it); default: this "
            "installation's own key.",
        )
        parser.add_argument(
            "--offline",
            action="store_true",
            help="Do not compare the checkpoint and the export with the ledger in the database.",
        )

    def handle(self, *args, file, manifest: str, public_key, offline, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"cannot read {path}", returncode=2)
        try:
            data = export_manifest.loads(Path(manifest).read_bytes())
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read the manifest {manifest}: {exc}", returncode=2) from exc
        try:
            verifier = signing.Verifier.parse(public_key) if public_key else None
        except signing.NoteError as exc:
            raise CommandError(f"--public-key: {exc}", returncode=2) from exc
        verdict = export_manifest.verify_all(path, data, verifier=verifier, check_ledger=not offline)
        if verdict.faults:
            raise CommandError(
                f"{path}: FAULT: " + "; ".join(str(fault) for fault in verdict.faults), returncode=1
            )
        checkpoint = data["ledger"].get("checkpoint")
        signed = f"checkpoint {checkpoint['seq']} signature ok" if checkpoint else "ledger was empty"
        if verdict.entry is not None:
            recorded = (
                f"ledger entry {verdict.entry.seq} ({verdict.entry.action} of export "
                f"{data['export_id']}) matches"
            )
            if verdict.proof:
                recorded += f", {verdict.proof}"
        else:
            recorded = f"ledger entry check skipped: {verdict.entry_skipped}"
        self.stdout.write(
            f"{path}: ok: sha256 {data['sha256']}, {data['row_count']} rows, {signed}, {recorded} "
            f"({data['report']}, generated {data['generated_at']})"
        )
        if checkpoint and not offline:
            self.stdout.write(f"checkpoint {checkpoint['seq']}: {self._witnessed(checkpoint)}")

    def _witnessed(self, checkpoint: dict) -> str:
        """Which witnesses cosigned the manifest's checkpoint (their stored cosignatures that
        verify over the very note the manifest carries)."""
        try:
            found = witnesses.note_witnesses(checkpoint["note"], checkpoint["seq"])
        except DatabaseError:
            return "witnesses not checked (no database here)"
        if not found:
            return "cosigned by no witness yet"
        return "cosigned by " + ", ".join(f"{name} at {at:%Y-%m-%dT%H:%M:%SZ}" for name, at in found)
