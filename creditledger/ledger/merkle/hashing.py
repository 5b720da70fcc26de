"""RFC 6962 §2.1 hashing: the leaf and node hashes, and the root of a run of hashes."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()  # MTH({}), the root of the empty tree

_LEAF = b"\x00"
_NODE = b"\x01"
_sha256 = hashlib.sha256


class MerkleError(ValueError):
    """A tree that cannot answer: bad sizes or indexes, or storage missing hashes."""


def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 ‖ entry): the leaf hash of one entry's bytes (its stored canonical body)."""
    return _sha256(_LEAF + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right): an interior node."""
    return _sha256(_NODE + left + right).digest()


def perfect_root(hashes: Sequence[bytes] | bytes) -> bytes:
    """The root over 2**k hashes of one level (a complete subtree), level by level.

    Takes a list of hashes or their concatenation (a tile's bytes). 2**k - 1 node hashes,
    each over one 64-byte slice of the level below: the hot loop of every proof.
    """
    level = hashes if isinstance(hashes, bytes) else b"".join(hashes)
    count = len(level) // HASH_SIZE
    if not count or count & (count - 1) or len(level) % HASH_SIZE:
        raise MerkleError(f"perfect_root needs a power of two of hashes, got {len(level) / HASH_SIZE:g}")
    pair = 2 * HASH_SIZE
    while len(level) > HASH_SIZE:
        level = b"".join([_sha256(_NODE + level[i : i + pair]).digest() for i in range(0, len(level), pair)])
    return level


def fold_right(hashes: Sequence[bytes]) -> bytes:
    """Combine the complete subtrees of a range, left to right, into the range's root.

    For [lo, hi) split into aligned complete subtrees s0, s1, … (largest first, as RFC 6962's
    split at the largest power of two does), MTH(D[lo:hi]) = node(s0, node(s1, … sk)).
    """
    if not hashes:
        raise MerkleError("fold_right needs at least one hash")
    root = hashes[-1]
    for left in reversed(hashes[:-1]):
        root = _sha256(_NODE + left + root).digest()
    return root


def check_hash(value: bytes, what: str = "hash") -> bytes:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise MerkleError(f"{what} must be {HASH_SIZE} bytes")
    return value
