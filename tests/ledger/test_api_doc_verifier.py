"""The verifying code docs/api.md gives platforms works: its two functions, taken from the
document as written, accept every proof the ledger gives and refuse a forged root."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from creditledger.ledger import merkle
from tests.ledger.test_merkle import build

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


@pytest.fixture(scope="module")
def doc():
    block = (
        DOC.read_text(encoding="utf-8").split("### Proving an entry")[1].split("```python")[1].split("```")[0]
    )
    namespace = {"hashlib": hashlib}
    exec(block.split("S, R = int(size)")[0], namespace)  # the function definitions only
    return namespace


def test_the_documented_checks_accept_the_ledgers_proofs_and_refuse_a_forged_root(doc):
    store, data = build(300)
    forged = hashlib.sha256(b"forged").digest()
    for size in (1, 2, 3, 7, 8, 255, 256, 257, 300):
        root = merkle.tree_root(size=size, read_tiles=store.read)
        for i in range(0, size, 3):
            path = merkle.inclusion_proof(index=i, size=size, read_tiles=store.read)
            assert doc["root_from_path"](i, size, merkle.leaf_hash(data[i]), path) == root
            assert doc["root_from_path"](i, size, forged, path) != root
        for m in range(1, size + 1, 5):
            old = merkle.tree_root(size=m, read_tiles=store.read)
            path = merkle.consistency_proof(old_size=m, new_size=size, read_tiles=store.read)
            doc["check_consistency"](m, size, old, root, path)
            if m < size:
                with pytest.raises(AssertionError):
                    doc["check_consistency"](m, size, forged, root, path)
