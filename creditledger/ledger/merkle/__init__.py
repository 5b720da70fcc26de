"""The ledger as an RFC 6962 / RFC 9162 Merkle tree over C2SP tlog-tiles. Pure: no ORM, no clock.

The tree
    Leaf i is meant to be ledger entry seq i + 1 (seq counts from 1, without gaps); its hash
    is leaf_hash(body) = SHA-256(0x00 ‖ body) over the entry's stored canonical bytes.
    Interior nodes are node_hash(l, r) = SHA-256(0x01 ‖ l ‖ r); the root of the empty tree
    is EMPTY_ROOT = SHA-256(""). The root of a tree of n leaves is RFC 6962's MTH(D[0:n]),
    which is what a checkpoint of size n states.

What storage keeps: tiles
    Tiles as c2sp.org/tlog-tiles lays them out (height 8): tile (level l, index n) is up to
    256 consecutive hashes of level 8·l of the tree — leaf hashes at level 0, the roots of
    full level l - 1 tiles above. Storage keeps one byte string per (level, index), 32
    bytes per hash, and a tile only ever grows at its end until it is full (256 hashes,
    8,192 bytes), after which it never changes. Storage needs to provide two things:

    - read_tiles(tiles: Sequence[Tile]) -> Sequence[bytes]: the stored bytes of each tile
      asked (by tile.key = (level, index)), in the order asked. Each must hold at least
      tile.width hashes; a longer, later copy is fine. Every operation below calls it at
      most once, with distinct tiles sorted by (level, index): one query.
      For a tile it lacks, storage may raise or return short data (a MerkleError here).
    - writing what append_leaves returns: Appended.tiles, pairs (Tile, bytes) to upsert
      under (level, index), in the same transaction as the entries they hash. An append is
      a function of the size and the stored partial tiles, so it must run under the ledger's
      append lock; storage may refuse any write that changes a tile's existing bytes.

    Rebuilding or auditing from the entries alone (verify_ledger) is append_leaves over a
    dict-backed read_tiles: the same tiles and roots come out, to compare with storage and
    with the signed checkpoints.

    A tree of size s needs the tiles tiles_for_size(s); right_edge(s) are its partial ones,
    the only ones an append reads. Tile.path() / parse_tile_path() spell tile/<l>/<n>[.p/<w>]
    and tile/entries/<n>[.p/<w>] for the API; Tile.hashes_of(stored) cuts a stored tile to
    the width a path asks; format_entry_bundle() makes an entry bundle (uint16-prefixed
    entries, 256 to a full bundle) from entry bodies.

Operations on stored tiles (tree.py)
    append_leaves(size=, leaf_hashes=, read_tiles=) -> Appended(size, root, tiles)
        O(n + log size) hashing, one read of the partial tiles (at most one per level).
    tree_root(size=, read_tiles=) -> bytes
        the root of any size up to the stored one; reads that size's partial tiles.
    inclusion_proof(index=, size=, read_tiles=) -> list[bytes]          (RFC 9162 §2.1.3.1)
    consistency_proof(old_size=, new_size=, read_tiles=) -> list[bytes] (RFC 9162 §2.1.4.1)
        each reads a few tiles per tile level (3 levels hold 16 million leaves) and hashes
        at most 255 pairs per tile: at a million leaves, at most 6 tiles (9 for consistency)
        and about 620 SHA-256 calls, under a millisecond of CPU. Consistency proofs are
        empty from size 0 or between equal sizes.

Verifying, with nothing but hashes (proofs.py)
    verify_inclusion(index=, size=, leaf_hash=, proof=, root=)                (§2.1.3.2)
    verify_consistency(old_size=, new_size=, old_root=, new_root=, proof=)    (§2.1.4.2)
        return None or raise ProofError; root_from_inclusion_proof() gives the implied root.

Checkpoints (checkpoint.py) and cosignatures (cosignature.py)
    Checkpoint(origin, size, root_hash, extensions).text() / Checkpoint.parse(text): the
    c2sp.org/tlog-checkpoint body. signing.Signer and signing.Verifier sign and open the
    note: Checkpoint.sign(signer) and Checkpoint.open(note, verifier) are those two calls.
    Cosigner(name, private_key).cosign(text, timestamp=) -> signature line;
    CosignatureVerifier(name, public_bytes) (vkey str() / parse()) .verify(note) -> timestamp;
    cosignature_key_id(), cosignature_message(): c2sp.org/tlog-cosignature, cosignature/v1
    (signature type 0x04). add_signature_lines() appends cosignatures to a note.

Errors: MerkleError (a ValueError) for bad sizes, indexes, paths or short tiles; ProofError
(a MerkleError) for proofs that do not verify; signing.NoteError for checkpoints and notes.

Why not a library: pymerkle, the maintained Python Merkle tree (RFC 6962 hashing, inclusion
and consistency proofs), stores leaf hashes only: each subtree hash is recomputed from its
leaves (a read of up to half the tree for a cold proof, eased by an in-process cache), and
it has no tiles. Proofs in O(log n) reads from a database need the interior hashes stored,
which is what tiles are. The few C2SP tlog packages on PyPI are young single-author
projects or marked work in progress. The algorithms are short and published (RFC 9162,
Go's golang.org/x/mod/sumdb/tlog), so they are written out here and held to Certificate
Transparency's test vectors and to a tiled log published by trillian-tessera.
"""

from __future__ import annotations

from creditledger.ledger.merkle.checkpoint import Checkpoint
from creditledger.ledger.merkle.cosignature import (
    CosignatureVerifier,
    Cosigner,
    add_signature_lines,
    cosignature_key_id,
    cosignature_message,
)
from creditledger.ledger.merkle.hashing import EMPTY_ROOT, HASH_SIZE, MerkleError, leaf_hash, node_hash
from creditledger.ledger.merkle.proofs import (
    ProofError,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from creditledger.ledger.merkle.tiles import (
    ENTRIES,
    TILE_HEIGHT,
    TILE_WIDTH,
    Tile,
    entry_bundle,
    format_entry_bundle,
    parse_entry_bundle,
    parse_tile_path,
    right_edge,
    tile_width,
    tiles_for_size,
)
from creditledger.ledger.merkle.tree import (
    Appended,
    TileReader,
    append_leaves,
    consistency_proof,
    inclusion_proof,
    tree_root,
)

__all__ = [
    "EMPTY_ROOT",
    "ENTRIES",
    "HASH_SIZE",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "Appended",
    "Checkpoint",
    "CosignatureVerifier",
    "Cosigner",
    "MerkleError",
    "ProofError",
    "Tile",
    "TileReader",
    "add_signature_lines",
    "append_leaves",
    "consistency_proof",
    "cosignature_key_id",
    "cosignature_message",
    "entry_bundle",
    "format_entry_bundle",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "parse_entry_bundle",
    "parse_tile_path",
    "right_edge",
    "root_from_inclusion_proof",
    "tile_width",
    "tiles_for_size",
    "tree_root",
    "verify_consistency",
    "verify_inclusion",
]
