"""Reads over the ledger."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from creditledger.ledger import merkle, sealer
from creditledger.ledger.models import STATUS_ACTIONS, Checkpoint, Cosignature, LedgerEntry

__all__ = [
    "STATUS_ACTIONS",
    "changes_after",
    "checkpoints_after",
    "consistency_proof",
    "inclusion_proof",
    "latest_checkpoint",
    "leaf_hash",
    "recent_checkpoints",
    "trader_trail",
    "tree_size",
]


def changes_after(seq: int, limit: int) -> QuerySet[LedgerEntry]:
    """Status-relevant entries after `seq`, oldest first, at most `limit` of them.

    Entries are sealed in seq order (see sealer.py), so a reader that resumes after the
    last seq it saw never misses an entry sealed later.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    return LedgerEntry.objects.filter(seq__gt=seq, action__in=STATUS_ACTIONS).order_by("seq")[:limit]


def _cosigned() -> QuerySet[Checkpoint]:
    """Checkpoints with their witnesses' cosignatures (one more query per page, by witness name)."""
    cosignatures = Cosignature.objects.select_related("witness").order_by("witness__name", "witness__key_id")
    return Checkpoint.objects.prefetch_related(Prefetch("cosignatures", queryset=cosignatures))


def latest_checkpoint() -> Checkpoint | None:
    return _cosigned().order_by("-seq").first()


def trader_trail(uscc: str, limit: int) -> QuerySet[LedgerEntry]:
    """A trader's entries, newest first (the trader_uscc, seq index serves it)."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    return LedgerEntry.objects.filter(trader_uscc=uscc).order_by("-seq")[:limit]


def recent_checkpoints(limit: int) -> list[Checkpoint]:
    """The newest checkpoints, newest first, with their cosignatures."""
    return list(_cosigned().order_by("-seq")[:limit])


def checkpoints_after(size: int, limit: int) -> list[Checkpoint]:
    """Checkpoints of trees larger than `size`, smallest first: the log's signed history."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    return list(_cosigned().filter(seq__gt=size).order_by("seq")[:limit])


def tree_size() -> int:
    return sealer.tree_size()


def leaf_hash(seq: int) -> bytes | None:
    """The tree's leaf for entry `seq` (SHA-256(0x00 ‖ body)), None when there is none."""
    body = LedgerEntry.objects.filter(seq=seq).values_list("body", flat=True).first()
    return None if body is None else merkle.leaf_hash(bytes(body))


def inclusion_proof(*, seq: int, size: int) -> list[bytes]:
    """The audit path of entry `seq` (leaf seq - 1) in the tree of the first `size` entries."""
    return merkle.inclusion_proof(index=seq - 1, size=size, read_tiles=sealer.read_tiles)


def consistency_proof(*, old: int, new: int) -> list[bytes]:
    """The proof that the tree of `old` entries is a prefix of the tree of `new` entries."""
    return merkle.consistency_proof(old_size=old, new_size=new, read_tiles=sealer.read_tiles)
