"""manage.py export_report NAME --format csv|xlsx|pdf [--filter key=value ...] -o FILE

Writes FILE and FILE.manifest.json, for scripted audits. Shows a row counter when
stderr is a terminal. Exit 2 on a bad report name, format or filter (named)."""

from __future__ import annotations

import getpass
import os
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation

from penalties import exports
from penalties.exports import formats, manifest
from penalties.exports.base import FilterError
from penalties.exports.services import export_to_file


class Command(BaseCommand):
    help = "Export a report to FILE and write FILE.manifest.json beside it. Reports: " + ", ".join(
        f"{name} ({'/'.join(cls.formats)})" for name, cls in exports.REPORTS.items()
    )

    def add_arguments(self, parser):
        parser.add_argument("report", metavar="NAME", choices=sorted(exports.REPORTS))
        parser.add_argument("--format", dest="file_format", choices=formats.FORMATS, default="csv")
        parser.add_argument(
            "--filter",
            dest="filters",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="A filter of the report; may be repeated. --list-filters shows them.",
        )
        parser.add_argument("-o", "--output", metavar="FILE", help="Where to write the export.")
        parser.add_argument("--list-filters", action="store_true", help="Show the report's filters and stop.")
        parser.add_argument("--no-progress", action="store_true", help="No row counter, even on a terminal.")
        parser.add_argument(
            "--language",
            choices=[code for code, _name in settings.LANGUAGES],
            default=settings.LANGUAGE_CODE,
            help="The language of headers and labels (default: the site's, %(default)s).",
        )

    def handle(
        self, *args, report, file_format, filters, output, list_filters, no_progress, language, **options
    ):
        translation.activate(language)
        cls = exports.get_report(report)
        if list_filters:
            for spec in cls.filters:
                required = " (required)" if spec.required else ""
                self.stdout.write(f"{spec.name:<14} {spec.kind:<7} {spec.label}{required}  {spec.help}")
            return
        if not output:
            raise CommandError("-o FILE is required", returncode=2)
        try:
            exporter = exports.build(report, file_format, self._parse(filters))
        except FilterError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        target = Path(output)
        progress = None if no_progress or not sys.stderr.isatty() else _Counter(exporter.count())
        # Write beside the target and rename: a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=target.parent or ".", prefix=f".{target.name}.", suffix=".part")
        os.close(fd)
        try:
            data = export_to_file(
                exporter,
                file_format,
                tmp,
                generated_by=f"manage.py export_report ({getpass.getuser()})",
                filename=target.name,
                progress=progress,
            )
            os.replace(tmp, target)
        except formats.ExportTooLarge as exc:
            raise CommandError(str(exc), returncode=2) from exc
        finally:
            Path(tmp).unlink(missing_ok=True)
        manifest_path = target.with_name(target.name + ".manifest.json")
        manifest_path.write_bytes(manifest.dumps(data))
        if progress:
            progress.done(data["row_count"])
        checkpoint = data["ledger"]["checkpoint"]
        anchor = f"checkpoint {checkpoint['seq']}" if checkpoint else "no checkpoint (empty ledger)"
        self.stdout.write(
            f"{target}: {data['row_count']} rows, sha256 {data['sha256']}, {anchor}; manifest {manifest_path}"
        )

    @staticmethod
    def _parse(pairs: list[str]) -> dict[str, str]:
        filters = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep or not key.strip():
                raise CommandError(f"--filter {pair!r}: write it as key=value", returncode=2)
            filters[key.strip()] = value
        return filters


class _Counter:
    """A one-line row counter on stderr, redrawn at most ten times a second."""

    def __init__(self, total: int | None) -> None:
        self.total, self.started, self.shown = total, time.monotonic(), 0.0

    def __call__(self, rows: int) -> None:
        now = time.monotonic()
        if now - self.shown >= 0.1:
            self.shown = now
            self._draw(rows, now)

    def _draw(self, rows: int, now: float) -> None:
        rate = rows / max(now - self.started, 1e-6)
        of = f" / {self.total:,}" if self.total is not None else ""
        percent = f" {100 * rows / self.total:5.1f}%" if self.total else ""
        sys.stderr.write(f"\r{rows:,}{of} rows{percent}  {rate:,.0f} rows/s ")
        sys.stderr.flush()

    def done(self, rows: int) -> None:
        self._draw(rows, time.monotonic())
        sys.stderr.write("\n")
