"""Verifying inclusion and consistency proofs: RFC 9162 §2.1.3.2 and §2.1.4.2, step by step.

Nothing but hashes and sizes: a platform, an auditor or a witness checks a proof against a
root it trusts (from a checkpoint whose signature it verified) without any tile or storage.
Failures raise ProofError, saying which check failed.
"""

from __future__ import annotations

from collections.abc import Sequence

from creditledger.ledger.merkle.hashing import EMPTY_ROOT, MerkleError, check_hash, node_hash


class ProofError(MerkleError):
    """A proof that does not verify against the sizes and roots given."""


def root_from_inclusion_proof(*, index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that `proof` implies for leaf `index` with `leaf_hash` in a tree of `size`."""
    check_hash(leaf_hash, "leaf hash")
    if not 0 <= index < size:  # step 1
        raise ProofError(f"leaf {index} is not in a tree of {size}")
    fn, sn, r = index, size - 1, leaf_hash  # steps 2 and 3
    for p in proof:  # step 4
        check_hash(p, "proof hash")
        if sn == 0:
            raise ProofError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                fn, sn = _shift_while_even(fn, sn)
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:  # step 5
        raise ProofError("inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(*, index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Raise ProofError unless `proof` shows leaf `index` of the tree with `root` is `leaf_hash`."""
    check_hash(root, "root")
    if root_from_inclusion_proof(index=index, size=size, leaf_hash=leaf_hash, proof=proof) != root:
        raise ProofError(f"inclusion proof for leaf {index} does not lead to the root of tree {size}")


def verify_consistency(
    *, old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise ProofError unless `proof` shows the tree (old_size, old_root) is a prefix of
    (new_size, new_root).

    RFC 9162 covers 0 < old_size < new_size. The edges follow C2SP tlog-witness: from size 0
    the proof must be empty and the old root the empty tree's (anything extends the empty
    tree); between equal sizes the proof must be empty and the roots equal.
    """
    check_hash(old_root, "old root")
    check_hash(new_root, "new root")
    for p in proof:
        check_hash(p, "proof hash")
    if not 0 <= old_size <= new_size:
        raise ProofError(f"old size {old_size} and new size {new_size} are not in order")
    if old_size == 0 or old_size == new_size:
        _check_trivial(old_size, new_size, old_root, new_root, proof)
        return
    fr, sr = _run_consistency(old_size, new_size, old_root, list(proof))
    if fr != old_root:  # step 7
        raise ProofError(f"consistency proof does not lead to the root of tree {old_size}")
    if sr != new_root:
        raise ProofError(f"consistency proof does not lead to the root of tree {new_size}")


def _check_trivial(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    if proof:
        raise ProofError(f"a consistency proof from {old_size} to {new_size} must be empty")
    if old_size == 0 and old_root != EMPTY_ROOT:
        raise ProofError("a tree of size 0 must have the empty tree's root")
    if old_size == new_size and old_root != new_root:
        raise ProofError(f"two trees of size {new_size} with different roots")


def _run_consistency(old_size: int, new_size: int, old_root: bytes, path: list[bytes]) -> tuple[bytes, bytes]:
    """Steps 1 to 6: the old and new roots the proof implies, after checking its length."""
    if not path:  # step 1
        raise ProofError("consistency proof is empty")
    if old_size & (old_size - 1) == 0:  # step 2: a power of two is a complete subtree, left out
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1  # step 3
    while fn & 1:  # step 4
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:
            raise ProofError("consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                fn, sn = _shift_while_even(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:  # step 7, the size part
        raise ProofError("consistency proof is shorter than the tree is deep")
    return fr, sr


def _shift_while_even(fn: int, sn: int) -> tuple[int, int]:
    """Right-shift both until fn's lowest bit is set or fn is 0."""
    while fn and not fn & 1:
        fn, sn = fn >> 1, sn >> 1
    return fn, sn
