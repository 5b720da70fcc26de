"""Appending to the ledger. Called by every service inside its own transaction."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from creditledger.ledger import canonical, merkle, sealer, signing
from creditledger.ledger.actors import Actor
from creditledger.ledger.models import Checkpoint, LedgerEntry

log = logging.getLogger(__name__)


@dataclass
class Entry:
    action: str
    subject_type: str
    subject_id: Any
    trader_uscc: str = ""
    payload: dict = field(default_factory=dict)


def ledger_append_many(*, actor: Actor | str, entries: Iterable[Entry], at=None) -> list[LedgerEntry]:
    """Append entries in order. Must run inside the transaction of the change they record.

    They are queued and sealed (seq, chain hash, tree) by the sealer once that transaction
    commits, so the entries returned have no seq yet; with LEDGER_SEALER=inline they are
    sealed here, under the ledger lock, and come back with their seq (see sealer.py).
    Everything that does not depend on the seq (normalising, serialising) happens first.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("ledger appends must run inside the transaction of the change they record")
    entries = list(entries)
    if not entries:
        return []
    at = at or timezone.now()
    actor = str(actor)
    prepared = [
        canonical.entry_parts(
            at=at,
            actor=actor,
            action=entry.action,
            subject_type=entry.subject_type,
            subject_id=str(entry.subject_id),
            trader_uscc=entry.trader_uscc,
            payload=entry.payload,
        )
        for entry in entries
    ]
    items = [
        sealer.Unsealed(
            at,
            actor,
            entry.action,
            entry.subject_type,
            str(entry.subject_id),
            entry.trader_uscc,
            parts.payload,
            parts.payload_json,
            parts.before_seq,
            parts.after_seq,
        )
        for entry, parts in zip(entries, prepared, strict=True)
    ]
    return sealer.seal(items) if sealer.inline() else sealer.enqueue(items)


def ledger_append(
    *,
    actor: Actor | str,
    action: str,
    subject_type: str,
    subject_id: Any,
    trader_uscc: str = "",
    payload: dict | None = None,
) -> LedgerEntry:
    entry = Entry(action, subject_type, subject_id, trader_uscc, payload or {})
    return ledger_append_many(actor=actor, entries=[entry])[0]


def sign_tree(size: int, root: bytes) -> tuple[str, str]:
    """(signed note, key id) of the checkpoint of the tree of `size` entries."""
    signer = signing.get_signer()
    note = merkle.Checkpoint(origin=settings.LEDGER_ORIGIN, size=size, root_hash=root).sign(signer)
    return note, signer.verifier.key_id


@transaction.atomic
def checkpoint_create() -> Checkpoint | None:
    """Sign the tree of the sealed entries as a checkpoint (C2SP tlog-checkpoint: origin,
    size, Merkle root); None when it has not grown since the last one.

    No lock is needed: the sealer writes an entry and its tiles in one transaction, and a
    tree's size, root and entries never change once committed (tiles only grow). The size
    is the tree's, which trails the entries only while an older ledger's tree is built.
    Checkpoint.seq is unique, so a concurrent run can at worst lose the race, never duplicate.
    """
    size = sealer.tree_size()
    if size == 0:
        return None
    last = Checkpoint.objects.order_by("-seq").values_list("seq", flat=True).first()
    if last is not None and last > size:
        # Entries a checkpoint vouched for are gone: only tampering does that.
        log.error("ledger tree size %s is behind checkpoint %s: run verify_ledger", size, last)
    if last is not None and last >= size:
        return None
    root = merkle.tree_root(size=size, read_tiles=sealer.read_tiles)
    note, key_id = sign_tree(size, root)
    checkpoint = Checkpoint(
        seq=size,
        hash=LedgerEntry.objects.values_list("hash", flat=True).get(seq=size),
        kind=Checkpoint.Kind.TREE,
        root=root.hex(),
        at=timezone.now(),
        origin=settings.LEDGER_ORIGIN,
        key_id=key_id,
        note=note,
    )
    try:
        with transaction.atomic():
            checkpoint.save()
    except IntegrityError:  # another run signed the same tree first
        return None
    return checkpoint
