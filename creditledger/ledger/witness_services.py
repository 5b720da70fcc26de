"""Witnesses and their cosignatures: registering a witness's key, recording what it cosigned.

A witness (`manage.py ledger_witness`, run by an auditor or a platform on its own machine)
fetches the newest checkpoint, checks it extends the last one it cosigned, and posts back a
C2SP tlog-cosignature line. The line is its own credential: it must verify under the key an
admin registered for that (name, key id), or nothing is stored.

Registering and retiring a witness are ledger entries (who may vouch for the log is part of
its history). Recording a cosignature is not: an entry would grow the tree, so every
cosigned checkpoint would call for a new checkpoint and a new cosignature without end; and
a cosignature needs no entry to be trusted, since anyone holding the witness's key checks it.
"""

from __future__ import annotations

import time

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from creditledger.exceptions import ApplicationError
from creditledger.ledger import merkle, signing
from creditledger.ledger.actors import Actor
from creditledger.ledger.models import Checkpoint, Cosignature, Witness
from creditledger.ledger.services import ledger_append

MAX_SIGNATURE_LINE = 512  # "— <name> <base64 of 76 bytes>": ~210 characters with a long name
FUTURE_SKEW_SECONDS = 600  # a witness's clock may be ahead, not by more than this


@transaction.atomic
def witness_register(*, actor: Actor | str, vkey: str, description: str = "") -> Witness:
    """Accept cosignatures by the key `vkey` (<name>+<key id>+<base64(0x04 ‖ key)>)."""
    try:
        verifier = merkle.CosignatureVerifier.parse(vkey)
    except signing.NoteError as exc:
        raise ApplicationError(
            _("%(value)r is not a cosignature/v1 verifier key: %(reason)s") % {"value": vkey, "reason": exc},
            field="vkey",
            code="invalid_vkey",
            value=vkey,
        ) from exc
    key_id = verifier.key_id.hex()
    if Witness.objects.filter(name=verifier.name, key_id=key_id).exists():
        raise ApplicationError(
            _("witness %(value)s is already registered") % {"value": f"{verifier.name}+{key_id}"},
            field="vkey",
            code="already_registered",
            value=vkey,
        )
    witness = Witness.objects.create(
        name=verifier.name,
        key_id=key_id,
        vkey=str(verifier),
        description=description,
        created_at=timezone.now(),
    )
    ledger_append(
        actor=actor,
        action="witness.registered",
        subject_type="witness",
        subject_id=witness.pk,
        payload={"name": witness.name, "key_id": key_id, "vkey": witness.vkey, "description": description},
    )
    return witness


@transaction.atomic
def witness_retire(*, actor: Actor | str, witness: Witness) -> Witness:
    """Accept no new cosignatures by this key; the ones stored stay and are still checked."""
    updated = Witness.objects.filter(pk=witness.pk, is_active=True).update(is_active=False)
    witness.refresh_from_db()
    if updated:
        ledger_append(
            actor=actor,
            action="witness.retired",
            subject_type="witness",
            subject_id=witness.pk,
            payload={"name": witness.name, "key_id": witness.key_id},
        )
    return witness


def _refuse(message: str, *, field: str, code: str, value) -> ApplicationError:
    return ApplicationError(message, field=field, code=code, value=value)


@transaction.atomic
def cosignature_record(*, size: int, line: str, now: float | None = None) -> tuple[Cosignature, bool]:
    """Store a witness's cosignature `line` of the checkpoint of `size` entries.

    Returns (cosignature, created). The line must be a cosignature/v1 signature line by a
    registered, active witness that verifies over the stored checkpoint's text; a second
    cosignature of the same checkpoint by the same witness answers with the first one.
    """
    checkpoint = Checkpoint.objects.filter(seq=size).first()
    if checkpoint is None:
        raise _refuse(
            _("no checkpoint of size %(value)s") % {"value": size},
            field="size",
            code="unknown_checkpoint",
            value=size,
        )
    if checkpoint.kind != Checkpoint.Kind.TREE:
        raise _refuse(
            _("checkpoint %(value)s signs a chain head, not a tree: witnesses cosign tree checkpoints")
            % {"value": size},
            field="size",
            code="not_a_tree",
            value=size,
        )
    line = line if line.endswith("\n") else line + "\n"
    if len(line) > MAX_SIGNATURE_LINE:
        raise _refuse(
            _("a signature line is at most %(max)s characters") % {"max": MAX_SIGNATURE_LINE},
            field="cosignature",
            code="too_long",
            value=len(line),
        )
    try:
        note = merkle.add_signature_lines(checkpoint.note, [line])
        _text, lines = signing.split_note(note)
    except signing.NoteError as exc:
        raise _refuse(
            _("not a signature line: %(reason)s") % {"reason": exc},
            field="cosignature",
            code="malformed",
            value=line,
        ) from exc
    name, key_id, _signature = lines[-1]
    witness = Witness.objects.filter(name=name, key_id=key_id.hex()).first()
    if witness is None:
        raise _refuse(
            _("unknown witness %(value)s: an admin must register its verifier key first")
            % {"value": f"{name}+{key_id.hex()}"},
            field="cosignature",
            code="unknown_witness",
            value=f"{name}+{key_id.hex()}",
        )
    if not witness.is_active:
        raise _refuse(
            _("witness %(value)s is retired") % {"value": witness},
            field="cosignature",
            code="retired",
            value=str(witness),
        )
    timestamp = _verified_timestamp(witness, note, line, time.time() if now is None else now)
    existing = Cosignature.objects.filter(checkpoint=checkpoint, witness=witness).first()
    if existing is not None:
        return existing, False
    cosignature = Cosignature(
        checkpoint=checkpoint,
        witness=witness,
        timestamp=timestamp,
        signature=line,
        note=checkpoint.note,
        received_at=timezone.now(),
    )
    try:
        with transaction.atomic():
            cosignature.save()
    except IntegrityError:  # the same witness posted twice at once; the first one stands
        return Cosignature.objects.get(checkpoint=checkpoint, witness=witness), False
    return cosignature, True


def _verified_timestamp(witness: Witness, note: str, line: str, now: float) -> int:
    verifier = merkle.CosignatureVerifier.parse(witness.vkey)
    try:
        # The note holds the log's line and this one; the verifier reads this key's lines only.
        timestamp = verifier.verify(note)
    except signing.NoteError as exc:
        raise _refuse(
            _("bad signature: %(reason)s") % {"reason": exc},
            field="cosignature",
            code="bad_signature",
            value=line,
        ) from exc
    if timestamp == 0:  # tlog-witness: a witness's cosignature of a checkpoint carries its time
        raise _refuse(
            _("a cosignature timestamp of 0 states no time"),
            field="cosignature",
            code="zero_timestamp",
            value=0,
        )
    if timestamp > now + FUTURE_SKEW_SECONDS:
        raise _refuse(
            _("cosignature timestamp %(value)s is more than %(skew)s seconds in the future")
            % {"value": timestamp, "skew": FUTURE_SKEW_SECONDS},
            field="cosignature",
            code="future_timestamp",
            value=timestamp,
        )
    return timestamp
