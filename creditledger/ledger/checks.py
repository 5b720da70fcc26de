"""System checks of the ledger (`manage.py check`, and before migrate and runserver)."""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from creditledger.ledger import hsm, merkle, signing


@checks.register("ledger")
def signer_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """With LEDGER_SIGNER=pkcs11 the module, token, PIN and key must work now, not at the first checkpoint.

    The check loads the signer as the checkpoint task would: it logs in to the token, finds
    the key pair and has it sign a test message. The file signer is not checked here: it
    would create make run's development key as a side effect.
    """
    if settings.LEDGER_SIGNER != "pkcs11":
        return []
    try:
        signing.get_signer()
    except ImproperlyConfigured as exc:
        return [
            checks.Error(
                f"the ledger's PKCS#11 signer is not usable: {exc}",
                hint="See docs/deploy.md, Signing on an HSM.",
                id="ledger.E001",
            )
        ]
    except hsm.HsmError as exc:
        return [checks.Error(f"the ledger's PKCS#11 token failed: {exc}", id="ledger.E002")]
    return []


@checks.register("ledger")
def witness_keys_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """LEDGER_WITNESS_KEYS must parse now, not when the nightly verify_ledger needs them."""
    errors = []
    for vkey in settings.LEDGER_WITNESS_KEYS:
        try:
            merkle.CosignatureVerifier.parse(vkey)
        except signing.NoteError as exc:
            errors.append(
                checks.Error(
                    f"Environment variable LEDGER_WITNESS_KEYS: {exc}",
                    hint="Each key is name+key id+base64, as ledger_witness --generate prints it.",
                    id="ledger.E003",
                )
            )
    return errors
