"""manage.py ledger_witness: be a witness of a creditledger log (see ledger/witness_client.py).

    ledger_witness --generate NAME --key witness.key     # once: prints the vkey to register
    ledger_witness --url https://credit.example --key witness.key [--state witness.key.state]

Exit 0 after cosigning, 1 when the log's newest checkpoint must not be cosigned (it does not
extend the last one cosigned: the sizes are named), 2 on any other error. The same command
runs without Django settings as `python -m creditledger.ledger.witness_client`.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from creditledger.ledger import witness_client


class Command(BaseCommand):
    help = (
        "Witness a creditledger log: fetch its newest checkpoint, check a consistency proof from "
        "the last checkpoint this witness cosigned, cosign it (C2SP cosignature/v1) and post the "
        "cosignature to the log. Needs no database."
    )
    requires_system_checks: list = []

    def add_arguments(self, parser):
        witness_client.add_arguments(parser)

    def handle(self, *args, url, key, state, api_key, log_key, generate, **options):
        try:
            lines = witness_client.execute(
                url=url, key=key, state=state, api_key=api_key, log_key=log_key, generate=generate
            )
        except witness_client.WitnessError as exc:
            raise CommandError(str(exc), returncode=exc.returncode) from exc
        for line in lines:
            self.stdout.write(line)
