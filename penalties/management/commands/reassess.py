"""manage.py reassess [--all | --due | USCC ...] [--as-of DATE]"""

from __future__ import annotations

import datetime as dt
import time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from tqdm import tqdm

from creditledger.ledger.actors import Actor
from penalties.services.reassessment import reassess_all, trader_reassess_if_free
from traders import uscc as uscc_rules
from traders.models import Trader


def _moment(value: str) -> dt.datetime:
    """A bare date means the end of that day, local time (so what falls due later that day
    is applied); a datetime is taken as given, local time when it names no offset."""
    value = value.strip()
    try:
        day = parse_date(value) if len(value) == 10 else None
        moment = dt.datetime.combine(day, dt.time.max) if day else parse_datetime(value)
    except ValueError:  # well formed, but no such day or time
        moment = None
    if moment is None:
        raise CommandError(f"--as-of: {value!r} is not a date (YYYY-MM-DD) or a datetime")
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


class Command(BaseCommand):
    help = "Reassess traders' scores, grades and measures now (or as of a date)."

    def add_arguments(self, parser):
        parser.add_argument("codes", nargs="*", metavar="USCC")
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--all", action="store_true", help="every trader")
        group.add_argument("--due", action="store_true", help="what the nightly job would take")
        parser.add_argument("--as-of", help="date or datetime; default now")

    def handle(self, *args, codes, all, due, as_of, **options):
        now = _moment(as_of) if as_of else timezone.now()
        if all == bool(codes) and not due:
            raise CommandError("name traders by code, or use --all or --due")
        actor = Actor.system("manage.reassess")
        started = time.monotonic()
        if codes:
            self._named(self._ids(codes), now, actor, started)
            return
        # --due is what the nightly job takes; since the run is set-based, that is every
        # trader whose record moved, which is all that --all has left to do.
        with tqdm(desc="reassess", unit="traders", file=self.stderr, disable=not self.stderr.isatty()) as bar:

            def progress(count: int, total: int) -> None:
                bar.total = total
                bar.update(count)

            report = reassess_all(now=now, actor=actor, progress=progress)
        self.stdout.write(
            f"reassessed {report.candidates} candidate traders as of {now.isoformat()}: "
            f"{report.changed} changed, {report.skipped} busy elsewhere (flagged), "
            f"{len(report.failed)} failed, {time.monotonic() - started:.1f}s"
        )

    def _named(self, ids: list[int], now: dt.datetime, actor: Actor, started: float) -> None:
        changed = skipped = 0
        for trader_id in ids:
            outcome = trader_reassess_if_free(trader_id=trader_id, now=now, actor=actor)
            if outcome is None:
                skipped += 1
            elif outcome.changed:
                changed += 1
        self.stdout.write(
            f"reassessed {len(ids)} traders as of {now.isoformat()}: {changed} changed, "
            f"{skipped} busy elsewhere, {time.monotonic() - started:.1f}s"
        )

    def _ids(self, codes: list[str]) -> list[int]:
        normalised = [uscc_rules.normalise(code) for code in codes]
        found = dict(Trader.objects.filter(uscc__in=normalised).values_list("uscc", "pk"))
        missing = [code for code in normalised if code not in found]
        if missing:
            raise CommandError(f"unknown trader code(s): {', '.join(missing)}")
        return [found[code] for code in normalised]
