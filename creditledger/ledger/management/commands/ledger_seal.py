"""manage.py ledger_seal: the sequencer. Run exactly one beside the workers (a second one
waits on the ledger lock, sealing nothing twice, and takes over when the first stops)."""

from __future__ import annotations

import signal

from django.core.management.base import BaseCommand

from creditledger.ledger import sealer


class Command(BaseCommand):
    help = (
        "Seal queued ledger entries (seq, chain hash, Merkle tree) as their transactions commit. "
        "Runs until stopped; --once seals what is queued and exits; --catch-up builds the tree "
        "over existing entries and exits."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Seal everything queued now, then exit.")
        parser.add_argument(
            "--catch-up",
            action="store_true",
            help="Build the tree over the entries not in it yet, then exit.",
        )
        parser.add_argument(
            "--batch", type=int, default=sealer.BATCH, help="Entries per sealing transaction."
        )
        parser.add_argument(
            "--idle",
            type=float,
            default=sealer.POLL_SECONDS,
            help="Seconds between looks at the queue while it is empty (the longest an entry waits unseen).",
        )

    def handle(self, *args, once, catch_up, batch, idle, **options):
        if catch_up:
            while sealer.catching_up():
                sealer.seal_queued(batch)  # hashes entries into the tree while it trails them
            self.stdout.write(f"ledger tree: {sealer.tree_size()} entries")
            return
        if once:
            total = 0
            while sealed := sealer.seal_queued(batch):
                total += sealed
            self.stdout.write(f"sealed or hashed {total} entries; tree of {sealer.tree_size()}")
            return
        stopping = []
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stopping.append(True))
        self.stdout.write("ledger sealer: running")
        self.stdout.flush()
        sealer.run(stop=lambda: bool(stopping), idle_seconds=idle, batch=batch)
        self.stdout.write("ledger sealer: stopped")
