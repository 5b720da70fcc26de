"""The ledger's verification endpoints, checked the way a platform would check them: with
the RFC 9162 verifiers written out in tests/ledger/test_merkle.py (not the module under
test), against checkpoints opened with the published key."""

from __future__ import annotations

import base64
import hashlib
import itertools

import pytest

from creditledger.ledger import signing
from creditledger.ledger.models import LedgerEntry
from creditledger.ledger.services import checkpoint_create
from tests.ledger.helpers import append
from tests.ledger.test_merkle import rfc_verify_consistency, rfc_verify_inclusion

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(make_api_client):
    return make_api_client("jd", [])  # the ledger's endpoints need a key, no scope


def _signed_root(api, note: str) -> tuple[int, bytes]:
    verifier = signing.Verifier.parse(api.get("/api/v1/ledger/public-key").json()["verifier_key"])
    body = signing.CheckpointBody.parse(verifier.open(note))
    return body.size, bytes.fromhex(body.hash)


def _b64(values) -> list[bytes]:
    return [base64.b64decode(v) for v in values]


def test_every_entry_is_proved_included_under_a_signed_checkpoint(api):
    append(37)
    checkpoint_create()
    note = api.get("/api/v1/ledger/checkpoints/latest").json()["note"]
    size, root = _signed_root(api, note)
    assert size == 37
    for entry in LedgerEntry.objects.order_by("seq"):
        body = api.get(f"/api/v1/ledger/proofs/inclusion?seq={entry.seq}&size={size}").json()
        leaf = base64.b64decode(body["leaf_hash"])
        assert leaf == hashlib.sha256(b"\x00" + bytes(entry.body)).digest()
        assert (body["leaf_index"], body["tree_size"]) == (entry.seq - 1, size)
        assert rfc_verify_inclusion(entry.seq - 1, size, leaf, _b64(body["proof"]), root)
        # the proof is for this leaf only
        assert not rfc_verify_inclusion(
            entry.seq - 1, size, hashlib.sha256(b"x").digest(), _b64(body["proof"]), root
        )


def test_each_checkpoint_is_proved_to_extend_the_one_before(api):
    sizes = []
    for count in (1, 5, 250, 10, 300):
        append(count)
        sizes.append(checkpoint_create().seq)
    page = api.get("/api/v1/ledger/checkpoints/?after=0&limit=3").json()
    assert [c["seq"] for c in page["checkpoints"]] == sizes[:3] and page["has_more"]
    rest = api.get(f"/api/v1/ledger/checkpoints/?after={page['next']}").json()
    assert [c["seq"] for c in rest["checkpoints"]] == sizes[3:] and not rest["has_more"]
    heads = [_signed_root(api, c["note"]) for c in page["checkpoints"] + rest["checkpoints"]]
    for (old, old_root), (new, new_root) in itertools.pairwise(heads):
        body = api.get(f"/api/v1/ledger/proofs/consistency?old={old}&new={new}").json()
        assert rfc_verify_consistency(old, new, old_root, new_root, _b64(body["proof"]))
        assert not rfc_verify_consistency(
            old, new, hashlib.sha256(b"forged").digest(), new_root, _b64(body["proof"])
        )


def test_feed_entries_carry_their_leaf_hash(make_api_client):
    from creditledger.ledger.actors import Actor
    from traders.services import trader_register

    client = make_api_client("jd", ["status:read"])
    trader_register(actor=Actor.system("test"), uscc="91350100M000100Y43", name="示例")
    entries = client.get("/api/v1/changes/?after=0").json()["entries"]
    assert entries
    for item in entries:
        body = bytes(LedgerEntry.objects.get(seq=item["seq"]).body)
        assert base64.b64decode(item["leaf_hash"]) == hashlib.sha256(b"\x00" + body).digest()


@pytest.mark.parametrize(
    ("query", "field", "status"),
    [
        ("seq=0&size=3", "seq", 400),
        ("seq=4&size=3", "size", 400),
        ("seq=1&size=99", "size", 409),  # well formed, a size the tree has not reached
        ("seq=x&size=3", "seq", 400),
        ("size=3", "seq", 400),
    ],
)
def test_an_inclusion_query_outside_the_tree_is_refused_naming_the_field(api, query, field, status):
    append(3)
    response = api.get(f"/api/v1/ledger/proofs/inclusion?{query}")
    assert response.status_code == status
    assert field in response.json()["fields"]
    if status == 409:
        assert response.json()["code"] == "beyond_tree" and response.json()["tree_size"] == 3


def test_a_consistency_query_outside_the_tree_is_refused(api):
    append(3)
    assert api.get("/api/v1/ledger/proofs/consistency?old=3&new=2").status_code == 400
    assert api.get("/api/v1/ledger/proofs/consistency?old=1&new=4").status_code == 409
    assert api.get("/api/v1/ledger/proofs/consistency?old=3&new=3").json()["proof"] == []


def test_proofs_across_tiles_take_one_query_once_the_size_was_seen(api, django_assert_num_queries):
    """The leaf hash comes out of the proof's own tile read, and a size this process has seen
    needs no tree-size query: a proof is one SELECT of tiles (the key is cached)."""
    append(600)  # three level-0 tiles and a level-1 tile
    checkpoint_create()
    size, root = _signed_root(api, api.get("/api/v1/ledger/checkpoints/latest").json()["note"])
    api.get(f"/api/v1/ledger/proofs/inclusion?seq=1&size={size}")  # the size is now seen
    for seq in (1, 256, 257, 513, 600):
        entry = LedgerEntry.objects.get(seq=seq)
        with django_assert_num_queries(1):
            body = api.get(f"/api/v1/ledger/proofs/inclusion?seq={seq}&size={size}").json()
        leaf = base64.b64decode(body["leaf_hash"])
        assert leaf == hashlib.sha256(b"\x00" + bytes(entry.body)).digest()
        assert rfc_verify_inclusion(seq - 1, size, leaf, _b64(body["proof"]), root)


def test_a_tree_smaller_than_the_process_remembers_answers_409_not_500(api):
    """A ledger restored from a backup is smaller than the tree a running process saw: the
    short tiles send it back to the database, and a size past the tree is the usual 409."""
    from creditledger.ledger import selectors

    append(5)
    selectors.tree_size_reaching(5)
    selectors._seen_size = 10_000  # what this process saw before the restore
    for url, field in (
        ("/api/v1/ledger/proofs/inclusion?seq=2&size=700", "size"),
        ("/api/v1/ledger/proofs/consistency?old=2&new=700", "new"),
    ):
        response = api.get(url)
        assert response.status_code == 409, response.content
        assert response.json()["tree_size"] == 5 and field in response.json()["fields"]
        selectors._seen_size = 10_000
    assert api.get("/api/v1/ledger/proofs/inclusion?seq=2&size=5").status_code == 200
