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
    "forget_tree_size",
    "inclusion",
    "latest_checkpoint",
    "recent_checkpoints",
    "trader_trail",
    "tree_size",
    "tree_size_reaching",
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


_seen_size = 0  # the largest tree this process has read: the tree only grows


def tree_size_reaching(size: int) -> int:
    """A tree size of at least `size` when the tree has reached it, else the tree's size now.

    Read from the database only when `size` is past the largest tree this process has seen:
    a proof request for a size already reached (nearly all of them) makes no query for it.
    A tree that shrank under a running process (a restore from backup) shows up as tiles
    shorter than a proof needs: call forget_tree_size() and ask again.
    """
    global _seen_size
    if size > _seen_size:
        _seen_size = sealer.tree_size()
    return _seen_size


def forget_tree_size() -> None:
    global _seen_size
    _seen_size = 0


def inclusion(*, seq: int, size: int) -> tuple[bytes, list[bytes]]:
    """The leaf hash of entry `seq` and its audit path in the tree of `size`, in one query.

    The leaf comes from the level-0 tile that holds it, read with the proof's own tiles (the
    tree is built from those hashes, so the two always agree). MerkleError when the stored
    tiles do not reach `size`.
    """
    index = seq - 1
    leaf_tile = merkle.Tile(level=0, index=index // merkle.TILE_WIDTH, width=index % merkle.TILE_WIDTH + 1)
    leaf: list[bytes] = []

    def read_with_leaf(tiles):
        found = sealer.read_tiles([*tiles, leaf_tile])
        leaf.append(leaf_tile.hashes_of(bytes(found[-1]))[-merkle.HASH_SIZE :])
        return found[:-1]

    proof = merkle.inclusion_proof(index=index, size=size, read_tiles=read_with_leaf)
    if not leaf:  # a tree of one leaf: its proof needs no tile
        read_with_leaf([])
    return leaf[0], proof


def consistency_proof(*, old: int, new: int) -> list[bytes]:
    """The proof that the tree of `old` entries is a prefix of the tree of `new` entries."""
    return merkle.consistency_proof(old_size=old, new_size=new, read_tiles=sealer.read_tiles)
