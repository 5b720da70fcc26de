"""List, and with --delete remove, stored evidence files that no record references."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from penalties.services import evidence_orphans_sweep


class Command(BaseCommand):
    help = (
        "Evidence files are written before their record commits; an upload whose transaction "
        "rolled back leaves its file behind. This lists such files older than --older-than "
        "hours (default 24) and removes them with --delete. Records are never touched."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--older-than", type=float, default=24.0, metavar="HOURS")
        parser.add_argument("--delete", action="store_true", help="remove the files (default: only list)")

    def handle(self, *args, older_than: float, delete: bool, **options) -> None:
        if older_than < 1:
            raise CommandError("--older-than: at least 1 hour, so no upload still in progress is touched")
        found = evidence_orphans_sweep(older_than=dt.timedelta(hours=older_than), delete=delete)
        for name in found:
            self.stdout.write(name)
        verb = "removed" if delete else "found (run with --delete to remove them)"
        self.stdout.write(f"evidence_sweep: {len(found)} unreferenced file(s) {verb}")
