"""manage.py verify_export FILE MANIFEST: does this file match its manifest, and does the
manifest's ledger checkpoint carry the ledger's signature?

Exit 0 when everything holds; 1 naming each fault (sha256, size, row count, checkpoint
signature, checkpoint against the ledger); 2 when a file cannot be read or the manifest
is not one."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from creditledger.ledger import signing
from penalties.reports import manifest as export_manifest


class Command(BaseCommand):
    help = (
        "Check an export against its manifest: SHA-256, size and row count of the file, and "
        "the Ed25519 signature of the ledger checkpoint it carries."
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
            help="Do not compare the checkpoint with the ledger in the database.",
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
        faults = export_manifest.verify(path, data, verifier=verifier, check_ledger=not offline)
        if faults:
            raise CommandError(f"{path}: FAULT: " + "; ".join(str(fault) for fault in faults), returncode=1)
        checkpoint = data["ledger"].get("checkpoint")
        signed = f"checkpoint {checkpoint['seq']} signature ok" if checkpoint else "ledger was empty"
        self.stdout.write(
            f"{path}: ok: sha256 {data['sha256']}, {data['row_count']} rows, {signed} "
            f"({data['report']}, generated {data['generated_at']})"
        )
