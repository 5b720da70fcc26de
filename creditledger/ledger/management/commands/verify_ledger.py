"""manage.py verify_ledger: recompute the hash chain and check the signed checkpoints."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from creditledger.ledger import signing, witnesses
from creditledger.ledger.verify import note_size, verify_ledger


class Command(BaseCommand):
    help = (
        "Recompute the ledger's hash chain, check every column against the hashed bytes and "
        "every stored checkpoint's signature and hash. Exits 1 naming the first bad seq."
    )

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="start", type=int, default=1, metavar="SEQ")
        parser.add_argument("--to", dest="end", type=int, default=None, metavar="SEQ")
        parser.add_argument(
            "--checkpoint-file",
            dest="files",
            action="append",
            default=[],
            metavar="FILE",
            help="A checkpoint note kept outside the database; may be repeated.",
        )
        parser.add_argument(
            "--witness-key",
            dest="witness_keys",
            action="append",
            default=[],
            metavar="VKEY",
            help="Trust this witness's cosignature/v1 verifier key (as the witness gave it) instead "
            "of LEDGER_WITNESS_KEYS or the registered ones; may be repeated. Every stored "
            "cosignature is checked against the tree recomputed from the entries.",
        )

        parser.add_argument(
            "--method",
            choices=("sql", "python"),
            default="sql",
            help="sql (default): set-based, in windows of 50,000 seqs, the per-entry check only "
            "where a window fails; python: the per-entry check throughout. Both name the same fault.",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            metavar="N",
            help="Windows checked at once, one database connection each (default: one per CPU).",
        )

    def handle(self, *args, start, end, files, witness_keys, method, workers, **options):
        if start < 1 or (end is not None and end < start):
            raise CommandError("--from must be at least 1 and --to at least --from", returncode=2)
        if workers is not None and workers < 1:
            raise CommandError("--workers must be at least 1", returncode=2)
        notes = [self._read_note(Path(name), start, end) for name in files]
        where = "--witness-key" if witness_keys else "Environment variable LEDGER_WITNESS_KEYS"
        witness_keys = witness_keys or settings.LEDGER_WITNESS_KEYS
        try:
            keys = witnesses.parse_keys(witness_keys) if witness_keys else None
        except signing.NoteError as exc:
            raise CommandError(f"{where}: {exc}", returncode=2) from exc
        result = verify_ledger(start=start, end=end, notes=notes, method=method, workers=workers)
        witnessed = witnesses.check_cosignatures(keys=keys, end=end)
        # -v 2 lists every cosigned checkpoint with its witnesses, not only each witness's last ones.
        result.witnesses = tuple(
            witnessed.lines + (witnessed.checkpoints if options["verbosity"] > 1 else [])
        )
        if not result.ok:
            also = f"; and {witnessed.fault}" if witnessed.fault else ""
            verified = f"; {result.entries} verified before it" if result.last is not None else ""
            self._write_witnesses(result)
            raise CommandError(result.summary() + verified + also, returncode=1)
        if witnessed.fault is not None:
            # The chain, the tiles and the log's signatures all hold: only a witness sees this.
            result.fault = witnessed.fault
            self._write_witnesses(result)
            held = f"{result.entries} and {result.checkpoints} checkpoint(s) hold under the log's own key"
            raise CommandError(f"{result.summary()}; {held}", returncode=1)
        self.stdout.write(result.summary())
        self._write_witnesses(result)

    def _write_witnesses(self, result) -> None:
        for line in result.witnesses:
            self.stdout.write(line)

    def _read_note(self, path: Path, start: int, end: int | None) -> tuple[str, str]:
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read checkpoint file {path}: {exc}", returncode=2) from exc
        size = note_size(text)
        if size is None:
            raise CommandError(f"{path} is not a checkpoint note", returncode=2)
        if size < start or (end is not None and size > end):
            raise CommandError(
                f"checkpoint file {path} (size {size}) is outside the range checked", returncode=2
            )
        return f"checkpoint file {path}", text
