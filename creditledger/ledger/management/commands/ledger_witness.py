"""manage.py ledger_witness: be a witness of a creditledger log (see ledger/witness_client.py).

    ledger_witness --generate NAME --key witness.key     # once: prints the vkey to register
    ledger_witness --url https://credit.example --key witness.key [--state witness.key.state]

Exit 0 after cosigning, 1 when the log's newest checkpoint must not be cosigned (it does not
extend the last one cosigned: the sizes are named), 2 on any other error.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

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
        parser.add_argument("--url", help="The log's site, e.g. https://credit.example.gov.cn")
        parser.add_argument("--key", required=True, type=Path, help="The witness's private key file.")
        parser.add_argument(
            "--state", type=Path, help="Where the last cosigned checkpoint is kept (default: KEY.state)."
        )
        parser.add_argument(
            "--api-key",
            default=os.environ.get("LEDGER_WITNESS_API_KEY", ""),
            help="An API key to read the log's checkpoints and proofs (default: $LEDGER_WITNESS_API_KEY).",
        )
        parser.add_argument(
            "--log-key", default="", metavar="VKEY", help="Pin this log verifier key instead of the one kept."
        )
        parser.add_argument(
            "--generate",
            metavar="NAME",
            help="Create a new key file at --key for witness NAME and print its vkey.",
        )

    def handle(self, *args, url, key: Path, state: Path | None, api_key, log_key, generate, **options):
        try:
            if generate:
                cosigner = witness_client.generate_key(key, generate)
                self.stdout.write(f"{cosigner.verifier}")
                return
            if not url or not url.startswith(("http://", "https://")):
                raise CommandError("--url must be the log's http(s) address", returncode=2)
            outcome = witness_client.run(
                api=witness_client.Api(url, api_key),
                cosigner=witness_client.load_key(key),
                state_path=state or key.with_name(key.name + ".state"),
                now=int(time.time()),
                log_vkey=log_key,
            )
        except witness_client.WitnessError as exc:
            raise CommandError(str(exc), returncode=exc.returncode) from exc
        for message in outcome.messages:
            self.stdout.write(message)
