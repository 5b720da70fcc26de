"""The Merkle tree over tiles, its proofs, checkpoints and cosignatures. No database.

The reference side lives in this file and owes nothing to the module: RFC 9162's recursive
definitions of MTH, PATH and PROOF (§2.1.1, §2.1.3.1, §2.1.4.1) computed from the entries
themselves, and its verification algorithms (§2.1.3.2, §2.1.4.2) transcribed step by step.
"""

from __future__ import annotations

import base64
import hashlib
import random
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creditledger.ledger import merkle, signing
from creditledger.ledger.merkle import (
    EMPTY_ROOT,
    Checkpoint,
    CosignatureVerifier,
    Cosigner,
    MerkleError,
    ProofError,
    Tile,
)
from creditledger.ledger.signing import NoteError

# --- Published vectors ----------------------------------------------------------------------
# The certificate-transparency test tree: eight leaves, the roots of sizes 0..8, and audit and
# consistency paths. From transparency-dev/merkle (the Go code of Certificate Transparency
# and Trillian), proof/verify_test.go at 9ca563d3ac2bab915317cf153ed4f952f6e74c07 (since moved
# to testdata/*.json, same values), testonly/constants.go for the roots.

CT_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
_H = {  # the hashes the paths below are made of, named as in testonly.NodeHashes (level.index)
    "0.1": "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "0.0": "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "0.4": "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "0.6": "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    "1.0": "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "1.1": "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "1.2": "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    "1.3": "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    "2.0": "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "2.1": "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
}
# (leaf index counted from 1 as the Go vectors count it, tree size, path)
CT_INCLUSION = [
    (1, 1, []),
    (1, 8, ["0.1", "1.1", "2.1"]),
    (6, 8, ["0.4", "1.3", "2.0"]),
    (3, 3, ["1.0"]),
    (2, 5, ["0.0", "1.1", "0.4"]),
]
CT_CONSISTENCY = [  # (old size, new size, path)
    (1, 1, []),
    (1, 8, ["0.1", "1.1", "2.1"]),
    (6, 8, ["1.2", "1.3", "2.0"]),
    (2, 5, ["1.1", "0.4"]),
    (6, 7, ["1.2", "0.6", "2.0"]),
]

# A small tiled log published by transparency-dev/trillian-tessera, testdata/ at
# 8ee4e93b2823dfd62fb04ce69775c27545f1caf5 (built by testdata/build_log.sh): fifteen entries,
# a checkpoint after each, and its tiles and entry bundle. Roots are checkpoint.0 … checkpoint.15.
TESSERA_ENTRIES = [
    s.encode()
    for s in "one two three four five six seven eit nain ten ileven twelf threeten fourten fivten".split()
]
TESSERA_ROOTS = """47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU= 0Nc2CrefWKseHj/mStd+LqC8B+NrX0btIiPt2SmN+ek=
T1X2GdkhUjV3iyufF9b0kVsWFxIU0VI4EpNml2Teci4= Wqx3HImawpLnS/Gv4ubjAvi1WIOy0b8Ze0amvqbavKk=
zY1lN35vrXYAPixXSd59LsU29xUJtuW4o2dNNg5Y2Co= gy5gl3aksFyiCO95a/1vLXz88A3dRq+0l9Sxte8ZqZQ=
a6sWvsc2eEzmj72vah7mZ5dwFltivehh2b11qwlp5Jg= IrSXADBqJ7EQoUODSDKROySgNveeL6CFhik2w/+fS7U=
bC+VwvrJbalNVjfkdI8kUgs7mJoXrqiXCE7bgnD28pY= CvhHViE3S9E3htHLR+25mapWoGCJ3WckMq1UtC3VmEY=
y8/gZsZCtitsMan09tY+k8I7Qpr7Y5fbO2tLi9GQnfU= Yok1cS5VdokGLBy73BC2I16b3atss6KBN9jnIi6Fz/A=
uZo6M+IhVna+CLgWCrJs0xBPUHbozHkYTQASduHSLME= av0kLH0VkkVDrTuZzBGIx7d9z5G1l/GlKz/nAV/8woQ=
SvCd38yNade7xEPY1a/aAc1M3A2AHYVF8lIiUnsH1ao= rKbDipCvhuX1GZ7g5BBe8sA6BbJ7ja/1nk427v383cs=""".split()
TESSERA_TILE_SHA256 = "93593af14d2cce39867d2e73fe4ca400a38581605c5c4501a03e752d9b51a130"  # tile/0/000.p/15
TESSERA_BUNDLE_SHA256 = (
    "9ac6a9fc9012f2b4d67ac26041933c119e1505defc5c808ed614c5778c9f1716"  # tile/entries/000.p/15
)
TESSERA_SEED = "7KZj9JkBfSNlwnx6dnkVjUPP7BMwvbJZKQr70NIXd6A="  # from LOG_PRIVATE_KEY in build_log.sh
TESSERA_VKEY = "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx"
TESSERA_CHECKPOINT_15 = (
    "example.com/log/testdata\n15\nrKbDipCvhuX1GZ7g5BBe8sA6BbJ7ja/1nk427v383cs=\n\n"
    "— example.com/log/testdata M9e0luh4jTG+UMBqOUo9/q+yAEvx1ilBEniMvjf1zfcBOhg+CKubMt53MvIt"
    "/uEWP6zdkdIQzd/fmwlM/dlPWF74ewI=\n"
)


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# --- The reference: RFC 9162 written out -----------------------------------------------------


def ref_mth(entries: list[bytes]) -> bytes:
    """§2.1.1: MTH over the entries themselves."""
    n = len(entries)
    if n == 0:
        return _sha256(b"")
    if n == 1:
        return _sha256(b"\x00" + entries[0])
    k = _largest_power_of_two_below(n)
    return _sha256(b"\x01" + ref_mth(entries[:k]) + ref_mth(entries[k:]))


def ref_path(m: int, entries: list[bytes]) -> list[bytes]:
    """§2.1.3.1: PATH(m, D[n])."""
    n = len(entries)
    if n == 1:
        return []
    k = _largest_power_of_two_below(n)
    if m < k:
        return [*ref_path(m, entries[:k]), ref_mth(entries[k:])]
    return [*ref_path(m - k, entries[k:]), ref_mth(entries[:k])]


def ref_proof(m: int, entries: list[bytes]) -> list[bytes]:
    """§2.1.4.1: PROOF(m, D[n]) = SUBPROOF(m, D[n], true), for 0 < m <= n."""
    return _ref_subproof(m, entries, True)


def _ref_subproof(m: int, entries: list[bytes], b: bool) -> list[bytes]:
    n = len(entries)
    if m == n:
        return [] if b else [ref_mth(entries)]
    k = _largest_power_of_two_below(n)
    if m <= k:
        return [*_ref_subproof(m, entries[:k], b), ref_mth(entries[k:])]
    return [*_ref_subproof(m - k, entries[k:], False), ref_mth(entries[:k])]


def _largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def rfc_verify_inclusion(
    leaf_index: int, tree_size: int, hash_: bytes, path: list[bytes], root: bytes
) -> bool:
    """§2.1.3.2, step by step."""
    if leaf_index >= tree_size:  # 1
        return False
    fn, sn = leaf_index, tree_size - 1  # 2
    r = hash_  # 3
    for p in path:  # 4
        if sn == 0:  # 4a
            return False
        if fn % 2 == 1 or fn == sn:  # 4b
            r = _sha256(b"\x01" + p + r)
            if fn % 2 == 0:
                while not (fn % 2 == 1 or fn == 0):
                    fn, sn = fn // 2, sn // 2
        else:
            r = _sha256(b"\x01" + r + p)
        fn, sn = fn // 2, sn // 2  # 4c
    return sn == 0 and r == root  # 5


def rfc_verify_consistency(
    first: int, second: int, first_hash: bytes, second_hash: bytes, path: list[bytes]
) -> bool:
    """§2.1.4.2, step by step (for 0 < first < second, as the RFC states it)."""
    assert 0 < first < second
    if not path:  # 1
        return False
    path = list(path)
    if first & (first - 1) == 0:  # 2: an exact power of 2
        path.insert(0, first_hash)
    fn, sn = first - 1, second - 1  # 3
    while fn % 2 == 1:  # 4
        fn, sn = fn // 2, sn // 2
    fr = sr = path[0]  # 5
    for c in path[1:]:  # 6
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            fr = _sha256(b"\x01" + c + fr)
            sr = _sha256(b"\x01" + c + sr)
            if fn % 2 == 0:
                while not (fn % 2 == 1 or fn == 0):
                    fn, sn = fn // 2, sn // 2
        else:
            sr = _sha256(b"\x01" + sr + c)
        fn, sn = fn // 2, sn // 2
    return fr == first_hash and sr == second_hash and sn == 0  # 7


# --- Storage stand-in -------------------------------------------------------------------------


class TileStore:
    """Tiles in a dict, as the database will keep them; counts reads, polices writes."""

    def __init__(self) -> None:
        self.tiles: dict[tuple[int, int], bytes] = {}
        self.size = 0
        self.calls: list[list[Tile]] = []

    def read(self, tiles):
        self.calls.append(list(tiles))
        return [self.tiles[tile.key] for tile in tiles]

    def append(self, entries: list[bytes]) -> merkle.Appended:
        hashes = [merkle.leaf_hash(entry) for entry in entries]
        done = merkle.append_leaves(size=self.size, leaf_hashes=hashes, read_tiles=self.read)
        for tile, data in done.tiles:
            old = self.tiles.get(tile.key, b"")
            assert len(old) < merkle.TILE_WIDTH * merkle.HASH_SIZE, f"{tile.path()} was full already"
            assert data.startswith(old) and len(data) == tile.width * merkle.HASH_SIZE
            self.tiles[tile.key] = data
        self.size = done.size
        return done

    def last_call(self) -> list[Tile]:
        """The tiles the last operation read: one call at most (none if it needed no tile)."""
        assert len(self.calls) <= 1, f"expected one read, got {len(self.calls)}"
        tiles = self.calls.pop() if self.calls else []
        assert len({t.key for t in tiles}) == len(tiles) and tiles == sorted(tiles)
        return tiles


def entries(count: int, start: int = 0) -> list[bytes]:
    return [b'{"seq":%d}' % i for i in range(start, start + count)]


def build(size: int, batch: int = 1000) -> tuple[TileStore, list[bytes]]:
    store, data = TileStore(), entries(size)
    for start in range(0, size, batch):
        store.append(data[start : start + batch])
    store.calls.clear()
    return store, data


def tile_levels(size: int) -> int:
    return len({t.level for t in merkle.tiles_for_size(size)})


def flip(value: bytes, bit: int) -> bytes:
    out = bytearray(value)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def _h(name: str) -> bytes:
    return bytes.fromhex(_H[name])


# --- Hashing and the published vectors ---------------------------------------------------------


def test_the_empty_tree_has_the_hash_of_the_empty_string():
    assert EMPTY_ROOT.hex() == CT_ROOTS[0]
    assert merkle.tree_root(size=0, read_tiles=TileStore().read) == EMPTY_ROOT


def test_leaf_and_node_hashes_carry_rfc6962_domain_prefixes():
    assert merkle.leaf_hash(b"") == _sha256(b"\x00")
    assert merkle.node_hash(b"L" * 32, b"R" * 32) == _sha256(b"\x01" + b"L" * 32 + b"R" * 32)


@pytest.mark.parametrize("batch", [1, 3, 8])
def test_appending_the_standard_leaves_gives_the_published_roots(batch):
    store = TileStore()
    for start in range(0, 8, batch):
        done = store.append(CT_LEAVES[start : start + batch])
        assert done.root.hex() == CT_ROOTS[done.size]
    for size in range(9):
        assert merkle.tree_root(size=size, read_tiles=store.read).hex() == CT_ROOTS[size]
        assert ref_mth(CT_LEAVES[:size]).hex() == CT_ROOTS[size]  # the reference agrees too


@pytest.mark.parametrize(("leaf", "size", "path"), CT_INCLUSION)
def test_inclusion_proofs_are_the_published_audit_paths(leaf, size, path):
    store = TileStore()
    store.append(CT_LEAVES)
    proof = merkle.inclusion_proof(index=leaf - 1, size=size, read_tiles=store.read)
    assert proof == [_h(name) for name in path]
    root, leaf_hash = bytes.fromhex(CT_ROOTS[size]), merkle.leaf_hash(CT_LEAVES[leaf - 1])
    assert rfc_verify_inclusion(leaf - 1, size, leaf_hash, proof, root)
    merkle.verify_inclusion(index=leaf - 1, size=size, leaf_hash=leaf_hash, proof=proof, root=root)


@pytest.mark.parametrize(("old", "new", "path"), CT_CONSISTENCY)
def test_consistency_proofs_are_the_published_paths(old, new, path):
    store = TileStore()
    store.append(CT_LEAVES)
    proof = merkle.consistency_proof(old_size=old, new_size=new, read_tiles=store.read)
    assert proof == [_h(name) for name in path]
    old_root, new_root = bytes.fromhex(CT_ROOTS[old]), bytes.fromhex(CT_ROOTS[new])
    if old < new:
        assert rfc_verify_consistency(old, new, old_root, new_root, proof)
    merkle.verify_consistency(old_size=old, new_size=new, old_root=old_root, new_root=new_root, proof=proof)


def test_the_tessera_test_log_has_the_same_roots_tiles_and_bundle():
    store = TileStore()
    assert merkle.tree_root(size=0, read_tiles=store.read) == base64.b64decode(TESSERA_ROOTS[0])
    for size, entry in enumerate(TESSERA_ENTRIES, start=1):
        assert store.append([entry]).root == base64.b64decode(TESSERA_ROOTS[size])
    assert Tile(0, 0, 15).path() == "tile/0/000.p/15"
    assert hashlib.sha256(store.tiles[(0, 0)]).hexdigest() == TESSERA_TILE_SHA256
    bundle = merkle.format_entry_bundle(TESSERA_ENTRIES)
    assert merkle.entry_bundle(0, 15).path() == "tile/entries/000.p/15"
    assert hashlib.sha256(bundle).hexdigest() == TESSERA_BUNDLE_SHA256
    assert merkle.parse_entry_bundle(bundle) == TESSERA_ENTRIES


# --- Verification edges (the JSON probes of transparency-dev/merkle, testdata/, in spirit) ------


def test_a_consistency_proof_from_the_empty_tree_is_empty_and_needs_the_empty_root():
    new_root = bytes.fromhex(CT_ROOTS[5])
    merkle.verify_consistency(old_size=0, new_size=5, old_root=EMPTY_ROOT, new_root=new_root, proof=[])
    merkle.verify_consistency(old_size=0, new_size=0, old_root=EMPTY_ROOT, new_root=EMPTY_ROOT, proof=[])
    with pytest.raises(ProofError, match="must be empty"):
        merkle.verify_consistency(
            old_size=0, new_size=5, old_root=EMPTY_ROOT, new_root=new_root, proof=[new_root]
        )
    with pytest.raises(ProofError, match="empty tree's root"):
        merkle.verify_consistency(old_size=0, new_size=5, old_root=new_root, new_root=new_root, proof=[])


def test_equal_sizes_need_equal_roots_and_no_proof():
    a, b = bytes.fromhex(CT_ROOTS[3]), bytes.fromhex(CT_ROOTS[4])
    merkle.verify_consistency(old_size=3, new_size=3, old_root=a, new_root=a, proof=[])
    with pytest.raises(ProofError, match="different roots"):
        merkle.verify_consistency(old_size=3, new_size=3, old_root=a, new_root=b, proof=[])
    with pytest.raises(ProofError, match="must be empty"):
        merkle.verify_consistency(old_size=3, new_size=3, old_root=a, new_root=a, proof=[a])


def test_it_rejects_sizes_out_of_order_and_an_empty_proof_between_different_sizes():
    a, b = bytes.fromhex(CT_ROOTS[2]), bytes.fromhex(CT_ROOTS[5])
    with pytest.raises(ProofError, match="not in order"):
        merkle.verify_consistency(old_size=5, new_size=2, old_root=b, new_root=a, proof=[])
    with pytest.raises(ProofError, match="empty"):
        merkle.verify_consistency(old_size=2, new_size=5, old_root=a, new_root=b, proof=[])


def test_inclusion_rejects_an_index_outside_the_tree_and_a_proof_of_the_wrong_length():
    root, leaf = bytes.fromhex(CT_ROOTS[8]), merkle.leaf_hash(CT_LEAVES[0])
    proof = [_h("0.1"), _h("1.1"), _h("2.1")]
    for index, size in [(8, 8), (0, 0)]:
        with pytest.raises(ProofError, match="not in a tree"):
            merkle.verify_inclusion(index=index, size=size, leaf_hash=leaf, proof=proof, root=root)
    with pytest.raises(ProofError, match="longer"):
        merkle.verify_inclusion(index=0, size=8, leaf_hash=leaf, proof=[*proof, root], root=root)
    with pytest.raises(ProofError, match="shorter"):
        merkle.verify_inclusion(index=0, size=8, leaf_hash=leaf, proof=proof[:2], root=root)
    with pytest.raises(MerkleError, match="32 bytes"):
        merkle.verify_inclusion(index=0, size=8, leaf_hash=leaf, proof=[b"short", *proof[1:]], root=root)


def test_consistency_rejects_a_proof_of_the_wrong_length():
    old_root, new_root = bytes.fromhex(CT_ROOTS[6]), bytes.fromhex(CT_ROOTS[8])
    proof = [_h("1.2"), _h("1.3"), _h("2.0")]
    with pytest.raises(ProofError, match="shorter"):
        merkle.verify_consistency(
            old_size=6, new_size=8, old_root=old_root, new_root=new_root, proof=proof[:2]
        )
    with pytest.raises(ProofError, match="longer"):
        merkle.verify_consistency(
            old_size=6, new_size=8, old_root=old_root, new_root=new_root, proof=[*proof, new_root]
        )


def test_a_single_leaf_tree_is_its_leaf_hash():
    leaf = merkle.leaf_hash(b"only")
    merkle.verify_inclusion(index=0, size=1, leaf_hash=leaf, proof=[], root=leaf)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index=0, size=1, leaf_hash=leaf, proof=[], root=EMPTY_ROOT)


# --- Properties: random trees, random batches ----------------------------------------------------

_PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_PROPERTY
@given(batches=st.lists(st.integers(min_value=0, max_value=700), min_size=1, max_size=8))
def test_appending_in_any_batches_gives_the_rfc_root_and_the_tlog_tiles(batches):
    store, data = TileStore(), entries(sum(batches))
    for count in batches:
        before = store.size
        done = store.append(data[before : before + count])
        # an append reads its partial tiles, nothing else, and nothing at all when there are none
        assert store.calls == ([merkle.right_edge(before)] if before else [])
        store.calls.clear()
        assert done.root == ref_mth(data[: done.size])
    widths = {t.key: t.width for t in merkle.tiles_for_size(store.size)}
    assert {key: len(value) // 32 for key, value in store.tiles.items()} == widths


def test_tiles_hold_the_hashes_tlog_tiles_defines():
    # MTH(D[(n·256 + i)·256**l : (n·256 + i + 1)·256**l]) for the i-th hash of tile n at level l
    store, data = build(70_000, batch=7_777)
    for (level, index), value in store.tiles.items():
        span = 256**level
        for i in (0, len(value) // 32 - 1):  # the first and last hash of each tile
            lo = (index * 256 + i) * span
            assert value[i * 32 : (i + 1) * 32] == ref_mth(data[lo : lo + span])


def test_the_spec_example_of_70000_entries_has_its_tiles():
    tiles = list(merkle.tiles_for_size(70_000))
    full0 = [t for t in tiles if t.level == 0 and t.is_full]
    assert len(full0) == 273
    assert [t for t in tiles if not (t.level == 0 and t.is_full)] == [
        Tile(0, 273, 112),
        Tile(1, 0),
        Tile(1, 1, 17),
        Tile(2, 0, 1),
    ]
    assert list(merkle.tiles_for_size(256)) == [Tile(0, 0), Tile(1, 0, 1)]
    assert merkle.right_edge(70_000) == [Tile(0, 273, 112), Tile(1, 1, 17), Tile(2, 0, 1)]


@st.composite
def tree_and_sizes(draw):
    size = draw(st.integers(min_value=1, max_value=3000))
    points = st.integers(min_value=1, max_value=size)
    return size, draw(st.lists(st.tuples(points, points), min_size=1, max_size=4))


@pytest.fixture(scope="module")
def tree_3000():
    return build(3000, batch=333)


@_PROPERTY
@given(case=tree_and_sizes(), bit=st.integers(min_value=0, max_value=255))
def test_every_inclusion_proof_is_the_rfc_path_and_a_flipped_bit_fails(tree_3000, case, bit):
    store, data = tree_3000
    size, pairs = case
    root = ref_mth(data[:size])
    for a, _ in pairs:
        index = a - 1
        store.calls.clear()
        proof = merkle.inclusion_proof(index=index, size=size, read_tiles=store.read)
        assert len(store.last_call()) <= 2 * tile_levels(size)
        assert proof == ref_path(index, data[:size])
        leaf = merkle.leaf_hash(data[index])
        assert rfc_verify_inclusion(index, size, leaf, proof, root)
        merkle.verify_inclusion(index=index, size=size, leaf_hash=leaf, proof=proof, root=root)
        for i in range(len(proof)):
            bad = [*proof[:i], flip(proof[i], bit), *proof[i + 1 :]]
            assert not rfc_verify_inclusion(index, size, leaf, bad, root)
            with pytest.raises(ProofError):
                merkle.verify_inclusion(index=index, size=size, leaf_hash=leaf, proof=bad, root=root)
        with pytest.raises(ProofError):
            merkle.verify_inclusion(index=index, size=size, leaf_hash=flip(leaf, bit), proof=proof, root=root)


@_PROPERTY
@given(case=tree_and_sizes(), bit=st.integers(min_value=0, max_value=255))
def test_every_consistency_proof_is_the_rfc_proof_and_a_flipped_bit_fails(tree_3000, case, bit):
    store, data = tree_3000
    _, pairs = case
    for a, b in pairs:
        old, new = min(a, b), max(a, b)
        old_root, new_root = ref_mth(data[:old]), ref_mth(data[:new])
        store.calls.clear()
        proof = merkle.consistency_proof(old_size=old, new_size=new, read_tiles=store.read)
        if old == new:
            assert proof == [] and store.calls == []
            continue
        assert len(store.last_call()) <= 3 * tile_levels(new)
        assert proof == ref_proof(old, data[:new])
        assert rfc_verify_consistency(old, new, old_root, new_root, proof)
        merkle.verify_consistency(
            old_size=old, new_size=new, old_root=old_root, new_root=new_root, proof=proof
        )
        for i in range(len(proof)):
            bad = [*proof[:i], flip(proof[i], bit), *proof[i + 1 :]]
            assert not rfc_verify_consistency(old, new, old_root, new_root, bad)
            with pytest.raises(ProofError):
                merkle.verify_consistency(
                    old_size=old, new_size=new, old_root=old_root, new_root=new_root, proof=bad
                )
        with pytest.raises(ProofError):
            merkle.verify_consistency(
                old_size=old, new_size=new, old_root=flip(old_root, bit), new_root=new_root, proof=proof
            )


@_PROPERTY
@given(size=st.integers(min_value=0, max_value=3000))
def test_the_root_of_any_smaller_size_comes_from_its_partial_tiles(tree_3000, size):
    store, data = tree_3000
    store.calls.clear()
    assert merkle.tree_root(size=size, read_tiles=store.read) == ref_mth(data[:size])
    if size:
        assert store.last_call() == merkle.right_edge(size)


# --- At a million leaves -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_tree():
    size = (1 << 20) + 12_345  # three tile levels, partial tiles on each
    store = TileStore()
    hashes = [_sha256(i.to_bytes(8, "big")) for i in range(size)]  # leaf hashes as given
    for start in range(0, size, 65_536):
        done = merkle.append_leaves(
            size=store.size, leaf_hashes=hashes[start : start + 65_536], read_tiles=store.read
        )
        store.tiles.update((tile.key, data) for tile, data in done.tiles)
        store.size = done.size
    store.calls.clear()
    return store, hashes, done.root


def test_a_million_leaf_tree_proves_with_one_read_of_a_few_tiles(big_tree):
    store, hashes, root = big_tree
    size = store.size
    assert tile_levels(size) == 3
    assert merkle.tree_root(size=size, read_tiles=store.read) == root
    assert len(store.last_call()) == 3
    rng = random.Random(6962)
    for index in [0, size - 1, 1 << 19, *rng.sample(range(size), 20)]:
        proof = merkle.inclusion_proof(index=index, size=size, read_tiles=store.read)
        tiles = store.last_call()
        assert len(tiles) <= 6 and sum(t.width for t in tiles) * 32 <= 6 * 8192
        assert rfc_verify_inclusion(index, size, hashes[index], proof, root)
    for old in [1, 256, 65_536, size - 1, *rng.sample(range(1, size), 20)]:
        proof = merkle.consistency_proof(old_size=old, new_size=size, read_tiles=store.read)
        assert len(store.last_call()) <= 9
        old_root = merkle.tree_root(size=old, read_tiles=store.read)
        store.calls.clear()
        assert rfc_verify_consistency(old, size, old_root, root, proof)


def test_appending_to_a_million_leaf_tree_reads_only_its_partial_tiles(big_tree):
    store, _, root = big_tree
    stored = dict(store.tiles)
    done = merkle.append_leaves(size=store.size, leaf_hashes=[_sha256(b"next")], read_tiles=store.read)
    assert store.last_call() == merkle.right_edge(store.size)
    assert [tile for tile, _ in done.tiles] == [Tile(0, store.size // 256, store.size % 256 + 1)]
    assert store.tiles == stored  # append_leaves writes nothing itself
    grown = TileStore()
    grown.tiles = {**stored, **{tile.key: data for tile, data in done.tiles}}
    proof = merkle.inclusion_proof(index=store.size, size=done.size, read_tiles=grown.read)
    assert rfc_verify_inclusion(store.size, done.size, _sha256(b"next"), proof, done.root)
    proof = merkle.consistency_proof(old_size=store.size, new_size=done.size, read_tiles=grown.read)
    assert rfc_verify_consistency(store.size, done.size, root, done.root, proof)


# --- Storage failures ------------------------------------------------------------------------------


def test_a_tile_storage_has_not_got_is_an_error_not_a_wrong_answer():
    store, _ = build(600)
    store.tiles[(0, 2)] = store.tiles[(0, 2)][:32]  # storage lost the tail of a partial tile
    with pytest.raises(MerkleError, match=r"tile/0/002\.p/88"):
        merkle.tree_root(size=600, read_tiles=store.read)
    assert merkle.tree_root(size=513, read_tiles=store.read) == ref_mth(entries(513))


def test_it_refuses_bad_sizes_indexes_and_leaf_hashes():
    store, _ = build(10)
    with pytest.raises(MerkleError, match="not in a tree"):
        merkle.inclusion_proof(index=10, size=10, read_tiles=store.read)
    with pytest.raises(MerkleError, match="past new size"):
        merkle.consistency_proof(old_size=5, new_size=4, read_tiles=store.read)
    with pytest.raises(MerkleError, match="non-negative"):
        merkle.tree_root(size=-1, read_tiles=store.read)
    with pytest.raises(MerkleError, match="32 bytes"):
        merkle.append_leaves(size=10, leaf_hashes=[b"not a hash"], read_tiles=store.read)


# --- Tile paths and entry bundles ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tile", "path"),
    [
        (Tile(0, 1234067), "tile/0/x001/x234/067"),  # c2sp.org/tlog-tiles
        (Tile(0, 234, 17), "tile/0/234.p/17"),
        (Tile(0, 0, 255), "tile/0/000.p/255"),  # trillian-tessera api/layout/paths_test.go
        (Tile(15, 455667), "tile/15/x455/667"),
        (Tile(15, 123456789, 41), "tile/15/x123/x456/789.p/41"),
        (Tile(merkle.ENTRIES, 123456789), "tile/entries/x123/x456/789"),
        (Tile(merkle.ENTRIES, 255, 253), "tile/entries/255.p/253"),
        (Tile(63, 1000), "tile/63/x001/000"),
    ],
)
def test_tile_paths_are_spelled_as_tlog_tiles_spells_them(tile, path):
    assert tile.path() == path
    assert merkle.parse_tile_path(path) == tile


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/1234",
        "tile/0/x001/x234",
        "tile/0/001/234",
        "tile/0/x000/234",  # a leading zero group
        "tile/0/234.p/256",
        "tile/0/234.p/0",
        "tile/0/234.p/017",
        "tile/0/234.p/",
        "tile/64/000",
        "tile/01/000",
        "tile/-1/000",
        "tile/data/000",
        "tiles/0/000",
        "tile/0/٠٠١",
        "tile/0/x001/x002/x003/x004/x005/x006/x007/008",
    ],
)
def test_it_refuses_tile_paths_that_are_not_canonical(path):
    with pytest.raises(MerkleError):
        merkle.parse_tile_path(path)


@given(
    level=st.integers(min_value=-1, max_value=63),
    index=st.integers(min_value=0, max_value=2**64),
    width=st.integers(1, 256),
)
def test_tile_paths_round_trip(level, index, width):
    tile = Tile(level, index, width)
    assert merkle.parse_tile_path(tile.path()) == tile


def test_entry_bundles_refuse_what_they_cannot_hold():
    with pytest.raises(MerkleError, match="does not fit"):
        merkle.format_entry_bundle([b"x" * 65_536])
    assert merkle.parse_entry_bundle(merkle.format_entry_bundle([b"x" * 65_535, b""])) == [b"x" * 65_535, b""]
    with pytest.raises(MerkleError, match="inside an entry"):
        merkle.parse_entry_bundle(b"\x00\x05abc")
    with pytest.raises(MerkleError, match="no entry bundle"):
        merkle.entry_bundle(1, 256)


# --- Checkpoints ---------------------------------------------------------------------------------


def test_a_checkpoint_body_is_the_go_tlog_tree_note():
    # golang.org/x/mod/sumdb/tlog, note_test.go TestFormatTree
    # (golang/mod at fe2ec04f7c3c3aa6fad97631aafcff6e49e2d1db)
    golden = "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n"
    checkpoint = Checkpoint("go.sum database tree", 123456789012, merkle.leaf_hash(b"hello world"))
    assert checkpoint.text() == golden
    assert Checkpoint.parse(golden) == checkpoint


def test_tesseras_signed_checkpoint_opens_and_our_signer_makes_it_byte_for_byte():
    verifier = signing.Verifier.parse(TESSERA_VKEY)
    checkpoint = Checkpoint.open(TESSERA_CHECKPOINT_15, verifier)
    assert checkpoint == Checkpoint("example.com/log/testdata", 15, base64.b64decode(TESSERA_ROOTS[15]))
    key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(TESSERA_SEED))
    assert checkpoint.sign(signing.Signer("example.com/log/testdata", key)) == TESSERA_CHECKPOINT_15


_LINE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2FFF), min_size=1, max_size=30)


@given(
    origin=_LINE,
    size=st.integers(min_value=0, max_value=2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(_LINE, max_size=3),
)
def test_checkpoints_round_trip(origin, size, root, extensions):
    checkpoint = Checkpoint(origin, size, root, tuple(extensions))
    assert Checkpoint.parse(checkpoint.text()) == checkpoint


@pytest.mark.parametrize(
    "text",
    [
        "log\n007\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n",  # leading zeroes
        "log\n+7\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n",
        "log\n٣\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n",  # an Arabic-Indic three
        "log\n18446744073709551616\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n",  # 2**64
        "log\n7\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb1=\n",  # non-canonical base64
        "log\n7\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40Hmuw\n",  # not 32 bytes
        "log\n7\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=",  # no final newline
        "log\n7\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n\n",  # an empty extension line
        "log\n7\n",
        "\n7\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n",  # no origin
        "log\t1\n7\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n",  # a control character
    ],
)
def test_it_refuses_checkpoints_that_are_not_canonical(text):
    with pytest.raises(NoteError):
        Checkpoint.parse(text)


# --- Cosignatures -----------------------------------------------------------------------------------

# c2sp.org/tlog-cosignature (C2SP/C2SP 5ba5ee830903e91240fc6f9f3a7a9293d49e69c9): its example
# checkpoint, its example cosignature line, and the signed message it shows for that time.
SPEC_CHECKPOINT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SPEC_COSIGNATURE = (
    "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2"
    "oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)
SPEC_MESSAGE = "cosignature/v1\ntime 1679315147\n" + SPEC_CHECKPOINT
# A witness's vkey, type 0x04: transparency-dev/formats note/note_cosigv1_test.go
# (0b850f1a7b4a5b70deeacac6535e4b8023809d21), TestCoSigV1NewVerifier.
REMORA_VKEY = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"


def _witness(name: str = "witness.test/w1", seed: int = 7) -> Cosigner:
    return Cosigner(name, Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32))


def test_the_signed_message_is_the_specs():
    assert merkle.cosignature_message(SPEC_CHECKPOINT, 1679315147) == SPEC_MESSAGE.encode()


def test_a_cosignature_line_is_laid_out_as_the_specs_example():
    # key id (4) ‖ big-endian timestamp (8) ‖ signature (64): the example's timestamp is its message's
    spec_blob = base64.b64decode(SPEC_COSIGNATURE.split()[-1])
    assert len(spec_blob) == 76 and int.from_bytes(spec_blob[4:12], "big") == 1679315147
    witness = _witness()
    line = witness.cosign(SPEC_CHECKPOINT, timestamp=1679315147)
    name, blob = line.removeprefix("— ").removesuffix("\n").split(" ")
    raw = base64.b64decode(blob)
    assert name == witness.name and len(raw) == 76
    assert raw[:4] == _sha256(witness.name.encode() + b"\n\x04" + witness.verifier.public_bytes)[:4]
    assert raw[4:12] == (1679315147).to_bytes(8, "big")
    witness.private_key.public_key().verify(raw[12:], SPEC_MESSAGE.encode())  # plain Ed25519


def test_a_known_witness_vkey_parses_and_its_key_id_is_derived_with_type_4():
    verifier = CosignatureVerifier.parse(REMORA_VKEY)
    assert verifier.name == "remora.n621.de" and verifier.key_id.hex() == "da77ade7"
    assert str(verifier) == REMORA_VKEY
    wrong_id = REMORA_VKEY.replace("da77ade7", "da77ade8")
    ed25519_type = "remora.n621.de+da77ade7+" + base64.b64encode(b"\x01" + verifier.public_bytes).decode()
    for vkey in (wrong_id, ed25519_type, "remora.n621.de+da77ade7+BOvN", "no-plus-signs"):
        with pytest.raises(NoteError):
            CosignatureVerifier.parse(vkey)


def test_a_cosigned_checkpoint_verifies_for_the_log_and_each_witness():
    log_key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(TESSERA_SEED))
    log = signing.Signer("example.com/log/testdata", log_key)
    checkpoint = Checkpoint("example.com/log/testdata", 15, base64.b64decode(TESSERA_ROOTS[15]))
    w1, w2 = _witness("witness.test/w1", 1), _witness("witness.test/w2", 2)
    lines = [w1.cosign(checkpoint.text(), timestamp=1_700_000_000), w2.cosign(checkpoint.text(), timestamp=5)]
    note = merkle.add_signature_lines(checkpoint.sign(log), lines)
    assert Checkpoint.open(note, log.verifier) == checkpoint
    assert w1.verifier.verify(note) == 1_700_000_000
    assert w2.verifier.verify(note) == 5
    with pytest.raises(NoteError, match="no cosignature"):
        _witness("witness.test/w3", 3).verifier.verify(note)


def test_a_cosignature_does_not_verify_for_another_time_text_or_key():
    witness, text = _witness(), SPEC_CHECKPOINT
    name, blob = witness.cosign(text, timestamp=100).removeprefix("— ").split(" ")
    raw = base64.b64decode(blob)
    other_time = raw[:4] + (101).to_bytes(8, "big") + raw[12:]
    other_text = text.replace("20852163", "20852164")
    cases = [
        f"{text}\n— {name} {base64.b64encode(other_time).decode()}\n",
        f"{other_text}\n— {name} {blob}",
    ]
    for note in cases:
        with pytest.raises(NoteError, match="does not verify"):
            witness.verifier.verify(note)
    impostor = CosignatureVerifier(witness.name, _witness(seed=8).verifier.public_bytes)
    with pytest.raises(NoteError, match="no cosignature"):  # another key has another key id
        impostor.verify(f"{text}\n— {name} {blob}")


def test_a_cosignature_is_not_an_ordinary_note_signature_by_the_same_key():
    witness = _witness()
    note = f"{SPEC_CHECKPOINT}\n{witness.cosign(SPEC_CHECKPOINT, timestamp=1)}"
    plain = signing.Verifier(witness.name, witness.verifier.public_bytes)
    with pytest.raises(NoteError, match="no signature"):
        plain.open(note)


def test_it_refuses_timestamps_outside_uint63_and_text_that_is_not_a_checkpoint():
    witness = _witness()
    for timestamp in (-1, 2**63, True):
        with pytest.raises(NoteError, match="timestamp"):
            witness.cosign(SPEC_CHECKPOINT, timestamp=timestamp)
    with pytest.raises(NoteError):
        witness.cosign("just some text\n", timestamp=1)


def test_it_refuses_a_cosignature_timestamped_past_2_to_the_63():
    witness, late = _witness(), 2**63
    message = f"cosignature/v1\ntime {late}\n{SPEC_CHECKPOINT}".encode()
    blob = witness.verifier.key_id + late.to_bytes(8, "big") + witness.private_key.sign(message)
    note = f"{SPEC_CHECKPOINT}\n— {witness.name} {base64.b64encode(blob).decode()}\n"
    with pytest.raises(NoteError, match="2\\*\\*63"):
        witness.verifier.verify(note)


def test_signature_lines_must_be_whole_lines():
    note = f"{SPEC_CHECKPOINT}\n{_witness().cosign(SPEC_CHECKPOINT, timestamp=1)}"
    line = _witness(seed=9).cosign(SPEC_CHECKPOINT, timestamp=2)
    assert merkle.add_signature_lines(note, [line]).endswith(line)
    for bad in (line[:-1], line + line, "\n", "— name not-base64!\n"):
        with pytest.raises(NoteError):
            merkle.add_signature_lines(note, [bad])


# --- Purity -----------------------------------------------------------------------------------------


def test_the_merkle_package_touches_no_orm_and_no_clock():
    package = Path(merkle.__file__).parent
    for source in package.glob("*.py"):
        text = source.read_text()
        for forbidden in ("django", "import time", "datetime", "random"):
            assert forbidden not in text, f"{source.name} mentions {forbidden}"
