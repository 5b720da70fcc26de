"""The tree over stored tiles: append a batch, and answer roots and proofs from storage.

Every function here reads through `read_tiles`, a callable the storage layer provides, and
calls it at most once per operation with every tile it needs (distinct, sorted by level and
index). The proofs follow RFC 9162 §2.1.3.1 (PATH) and §2.1.4.1 (PROOF / SUBPROOF); each
proof element is the root of a range of leaves, and each range splits into O(log n)
complete subtrees whose hashes come out of the tiles: a complete subtree of height h is the
root of 2**(h mod 8) consecutive hashes of one tile at level h // 8. So a proof reads at most
a few tiles per tile level (three levels hold 16 million leaves) and hashes at most 255
node pairs per tile it touches, whatever the size of the tree.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from creditledger.ledger.merkle.hashing import (
    EMPTY_ROOT,
    HASH_SIZE,
    MerkleError,
    check_hash,
    fold_right,
    perfect_root,
)
from creditledger.ledger.merkle.tiles import TILE_HEIGHT, TILE_WIDTH, Tile, level_size, right_edge, tile_width

TileReader = Callable[[Sequence[Tile]], Sequence[bytes]]
"""Storage's side: given tiles, return each one's stored bytes, in the order asked.

A stored tile may be wider than asked (a later copy of a partial tile): only the first
`tile.width` hashes are used. Fewer bytes than that is a MerkleError.
"""

Node = tuple[int, int]  # (height, n): the complete subtree over leaves [n·2**height, (n+1)·2**height)
Range = tuple[int, int]  # [lo, hi): leaves whose MTH is one proof element

_TILE_BYTES = TILE_WIDTH * HASH_SIZE


@dataclass(frozen=True)
class Appended:
    """What an append changed: the tree's new size and root, and the tiles to store.

    `tiles` holds every tile the batch touched, in its new state: full tiles (written once,
    never changed again) and the new partial tiles, which replace the stored copy under the
    same (level, index) — their first hashes are the old copy's, byte for byte.
    """

    size: int
    root: bytes
    tiles: tuple[tuple[Tile, bytes], ...]


def append_leaves(*, size: int, leaf_hashes: Sequence[bytes], read_tiles: TileReader) -> Appended:
    """Append `leaf_hashes` to a stored tree of `size` leaves.

    Reads the tree's partial tiles only (one per level), hashes each tile the batch fills
    (255 node hashes per 256 hashes below), so a batch of n costs O(n + log size).
    """
    _check_size("size", size)
    for leaf in leaf_hashes:
        check_hash(leaf, "leaf hash")
    have = _read(read_tiles, right_edge(size))
    written = _grow(size, have, leaf_hashes)
    new_size = size + len(leaf_hashes)
    tiles = tuple(
        (Tile(level, index, len(data) // HASH_SIZE), data) for (level, index), data in written.items()
    )
    return Appended(size=new_size, root=_root(new_size, {**have, **written}), tiles=tiles)


def _grow(
    size: int, have: dict[tuple[int, int], bytes], leaf_hashes: Sequence[bytes]
) -> dict[tuple[int, int], bytes]:
    """The tiles that change, level by level: each level gets the roots of the tiles the
    level below filled, and stops where nothing filled."""
    written: dict[tuple[int, int], bytes] = {}
    pending, level = list(leaf_hashes), 0
    while pending:
        index = level_size(size, level) // TILE_WIDTH  # the level's partial tile, or the next one
        data = have.get((level, index), b"") + b"".join(pending)
        pending = []
        for start in range(0, len(data), _TILE_BYTES):
            chunk = data[start : start + _TILE_BYTES]
            written[(level, index + start // _TILE_BYTES)] = chunk
            if len(chunk) == _TILE_BYTES:  # full: its root is a hash of the level above
                pending.append(perfect_root(chunk))
        level += 1
    return written


def tree_root(*, size: int, read_tiles: TileReader) -> bytes:
    """The root hash of the tree's first `size` leaves (any size up to the stored one)."""
    _check_size("size", size)
    return _root(size, _read(read_tiles, right_edge(size)))


def inclusion_proof(*, index: int, size: int, read_tiles: TileReader) -> list[bytes]:
    """The audit path of leaf `index` in the tree of `size` leaves, leaf side first."""
    _check_size("size", size)
    if not 0 <= index < size:
        raise MerkleError(f"leaf {index} is not in a tree of {size}")
    return _prove(size, _inclusion_ranges(index, size), read_tiles)


def consistency_proof(*, old_size: int, new_size: int, read_tiles: TileReader) -> list[bytes]:
    """The proof that the tree of `old_size` leaves is a prefix of that of `new_size`.

    Empty when old_size is 0 or equals new_size: nothing needs proving then.
    """
    _check_size("old_size", old_size)
    _check_size("new_size", new_size)
    if old_size > new_size:
        raise MerkleError(f"old size {old_size} is past new size {new_size}")
    if old_size in (0, new_size):
        return []
    return _prove(new_size, _consistency_ranges(old_size, new_size), read_tiles)


# --- Planning: which ranges a proof is made of --------------------------------------------


def _split(count: int) -> int:
    """k, the largest power of two smaller than count (count > 1): RFC 6962's split point."""
    return 1 << ((count - 1).bit_length() - 1)


def _inclusion_ranges(index: int, size: int) -> list[Range]:
    """PATH(index, D[0:size]) as ranges: walk down to the leaf, keep the side not taken."""
    siblings, lo, hi = [], 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            siblings.append((lo + k, hi))
            hi = lo + k
        else:
            siblings.append((lo, lo + k))
            lo += k
    return siblings[::-1]


def _consistency_ranges(old_size: int, new_size: int) -> list[Range]:
    """PROOF(old_size, D[0:new_size]) = SUBPROOF(old_size, D[0:new_size], true) as ranges."""
    proof, lo, hi, whole_old_tree = [], 0, new_size, True
    while old_size != hi:
        k = _split(hi - lo)
        if old_size <= lo + k:
            proof.append((lo + k, hi))
            hi = lo + k
        else:
            proof.append((lo, lo + k))
            lo += k
            whole_old_tree = False
    if not whole_old_tree:  # the verifier knows the old root, not this subtree's hash
        proof.append((lo, hi))
    return proof[::-1]


def _subtrees(lo: int, hi: int) -> list[Node]:
    """[lo, hi) as aligned complete subtrees, largest first (lo is aligned in every caller)."""
    nodes = []
    while lo < hi:
        height = (hi - lo).bit_length() - 1
        if lo & ((1 << height) - 1):
            raise MerkleError(f"range [{lo}, {hi}) does not start on a subtree boundary")
        nodes.append((height, lo >> height))
        lo += 1 << height
    return nodes


# --- Hashing out of tiles ---------------------------------------------------------------


def _place(node: Node) -> tuple[int, int, int, int]:
    """Where a complete subtree's hash comes from: (level, tile index, first hash, count)."""
    height, n = node
    level, rest = divmod(height, TILE_HEIGHT)
    first = n << rest  # its first hash at that level
    return level, first // TILE_WIDTH, first % TILE_WIDTH, 1 << rest


def _tiles_for(size: int, nodes: Sequence[Node]) -> list[Tile]:
    keys = {_place(node)[:2] for node in nodes}
    return [Tile(level, index, tile_width(size, level, index)) for level, index in sorted(keys)]


def _node_hash(node: Node, tiles: dict[tuple[int, int], bytes]) -> bytes:
    level, index, first, count = _place(node)
    data = tiles[(level, index)]
    hashes = data[first * HASH_SIZE : (first + count) * HASH_SIZE]
    if len(hashes) != count * HASH_SIZE:
        raise MerkleError(f"tile {level}/{index} is missing hashes for subtree {node}")
    return _subtree_root(hashes) if count >= _MEMO_FROM else perfect_root(hashes)


_MEMO_FROM = 8  # below this a root costs less than looking it up


@functools.lru_cache(maxsize=2048)  # keys of at most 128 hashes (4 kB): 8 MB at worst
def _subtree_root(hashes: bytes) -> bytes:
    """perfect_root, remembered by its hashes: the upper tiles' subtrees are in nearly every
    proof of one tree (hashing them was a fifth of a proof request). Keyed by the bytes, not
    by the place, so a tree that changed under the process can never be answered stale."""
    return perfect_root(hashes)


def _root(size: int, tiles: dict[tuple[int, int], bytes]) -> bytes:
    if size == 0:
        return EMPTY_ROOT
    return fold_right([_node_hash(node, tiles) for node in _subtrees(0, size)])


def _prove(size: int, ranges: list[Range], read_tiles: TileReader) -> list[bytes]:
    parts = [_subtrees(lo, hi) for lo, hi in ranges]
    tiles = _read(read_tiles, _tiles_for(size, [node for nodes in parts for node in nodes]))
    return [fold_right([_node_hash(node, tiles) for node in nodes]) for nodes in parts]


def _read(read_tiles: TileReader, tiles: list[Tile]) -> dict[tuple[int, int], bytes]:
    if not tiles:
        return {}
    found = read_tiles(tiles)
    if len(found) != len(tiles):
        raise MerkleError(f"storage returned {len(found)} tiles for {len(tiles)} asked")
    return {tile.key: tile.hashes_of(bytes(data)) for tile, data in zip(tiles, found, strict=True)}


def _check_size(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MerkleError(f"{name} must be a non-negative integer, got {value!r}")
