"""manage.py ledger_hsm_keygen: generate the checkpoint signing key pair on the PKCS#11 token."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from creditledger.ledger import hsm, signing


class Command(BaseCommand):
    help = (
        "Generate an Ed25519 key pair labelled LEDGER_PKCS11_KEY_LABEL on the token "
        "LEDGER_PKCS11_TOKEN (module LEDGER_PKCS11_MODULE, PIN LEDGER_PKCS11_PIN or _PIN_FILE). "
        "The private key is generated on the token and cannot be read off it. Refuses a label "
        "already on the token. Prints the verifier key to publish."
    )
    # The system checks would load the signer, and fail for want of the key made here.
    requires_system_checks = []

    def handle(self, *args, **options):
        try:
            signing.check_key_name(settings.LEDGER_ORIGIN)
            config = hsm.settings_config()
            public_bytes = hsm.generate_key(config)
        except (ImproperlyConfigured, hsm.HsmError) as exc:
            raise CommandError(str(exc), returncode=2) from exc
        verifier = signing.Verifier(settings.LEDGER_ORIGIN, public_bytes)
        self.stderr.write(
            f"Generated Ed25519 key pair {config.key_label!r} on token {config.token!r} "
            f"(key id {verifier.key_id}). Publish the verifier key; with LEDGER_SIGNER=pkcs11 it "
            "signs the next checkpoint."
        )
        self.stdout.write(str(verifier))
