"""manage.py seed_demo: fill the database with realistic demo data and its ledger entries."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from penalties import demo
from penalties.demo.examples import ensure_examples


class Command(BaseCommand):
    help = (
        "Add realistic demo traders (valid USCC codes), shops on Taobao, Tmall, JD, Pinduoduo and "
        "Douyin, and violations over the last two years in every status, with their ledger entries. "
        "Deterministic for a given --seed on an empty database; on a non-empty one it adds to what "
        "is there and skips codes that already exist."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--traders", type=int, default=2000, help="new traders to add (default 2000)")
        parser.add_argument(
            "--violations", type=int, default=8000, help="violations spread over them (default 8000)"
        )
        parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
        parser.add_argument(
            "--with-examples",
            action="store_true",
            help="also add docs/api.md's example trader 91350100M000100Y43 and its Taobao shop "
            "tb-123456 when missing (demo_setup always does)",
        )

    def handle(
        self, *args, traders: int, violations: int, seed: int, with_examples: bool, verbosity: int, **options
    ) -> None:
        progress = self._progress if verbosity >= 2 else None
        try:
            result = demo.seed(traders=traders, violations=violations, seed=seed, progress=progress)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(result.summary())
        if with_examples:  # docs/api.md's curl lines answer as printed
            added = ensure_examples()
            self.stdout.write(f"docs/api.md examples: {', '.join(added) if added else 'already present'}")

    def _progress(self, result: demo.SeedResult, seconds: float) -> None:
        self.stderr.write(f"  {result.traders} traders, {result.violations} violations, {seconds:.1f} s")
