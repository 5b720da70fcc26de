from __future__ import annotations

import base64
import hashlib
import os

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from creditledger.ledger import signing
from creditledger.ledger.services import checkpoint_create
from creditledger.ledger.verify import verify_ledger
from tests.ledger.conftest import TEST_ORIGIN
from tests.ledger.helpers import append, mth

# The reference vector of Go's golang.org/x/mod/sumdb/note, to prove the wire format.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfq"
    "dngotpRZb6KE6RyyBwJnAM=\n"
)


def go_signer() -> signing.Signer:
    seed = base64.b64decode(GO_SKEY.split("+", 4)[-1])[1:]
    return signing.Signer("PeterNeumann", signing.Ed25519PrivateKey.from_private_bytes(seed))


def test_it_signs_notes_exactly_as_the_go_reference_does():
    signer = go_signer()
    assert str(signer.verifier) == GO_VKEY
    assert signer.sign(GO_TEXT) == GO_NOTE


def test_it_opens_the_go_reference_note_with_its_verifier_key():
    assert signing.Verifier.parse(GO_VKEY).open(GO_NOTE) == GO_TEXT


def test_the_key_hash_follows_the_signed_note_spec():
    verifier = go_signer().verifier
    expected = hashlib.sha256(b"PeterNeumann\n\x01" + verifier.public_bytes).digest()[:4]
    assert verifier.key_hash == expected
    assert verifier.key_id == "c74f20a3"


@pytest.mark.parametrize(
    "vkey",
    [
        GO_VKEY.replace("c74f20a3", "c74f20a4"),  # hash does not match
        GO_VKEY.replace("+ARpc", "+AhRpc"),  # not base64 of 33 bytes
        GO_VKEY.replace("+ARpc", "+Apc"),  # another algorithm byte
        "PeterNeumann+c74f20a3",
    ],
)
def test_it_refuses_malformed_verifier_keys(vkey):
    with pytest.raises(signing.NoteError):
        signing.Verifier.parse(vkey)


@pytest.mark.django_db
def test_a_checkpoint_verifies_with_the_published_key_and_fails_after_any_one_byte_changes(client):
    entries = append(5)
    checkpoint_create()
    published = client.get(reverse("ledger:public-key")).json()
    response = client.get(reverse("ledger:checkpoint-latest"))
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    note = response.content

    verifier = signing.Verifier.parse(published["verifier_key"])
    body = signing.CheckpointBody.parse(verifier.open(note))
    root = mth([bytes(e.body) for e in entries]).hex()
    assert (body.origin, body.size, body.hash) == (TEST_ORIGIN, 5, root)

    for index in range(len(note)):
        changed = bytearray(note)
        changed[index] ^= 0x01
        with pytest.raises(signing.NoteError):
            verifier.open(bytes(changed))


@pytest.mark.django_db
def test_the_note_has_the_checkpoint_layout():
    entries = append(3)
    note = checkpoint_create().note
    root = base64.b64encode(mth([bytes(e.body) for e in entries])).decode()
    text, signature = note.split("\n\n")
    assert text == f"{TEST_ORIGIN}\n3\n{root}"
    name, blob = signature.removeprefix("— ").rstrip("\n").split(" ")
    raw = base64.b64decode(blob)
    assert name == TEST_ORIGIN
    assert raw[:4].hex() == signing.public_key_info()["key_id"]
    assert len(raw) == 4 + 64


def test_the_public_key_view_describes_the_key(client):
    data = client.get(reverse("ledger:public-key")).json()
    verifier = signing.get_signer().verifier
    assert data == {
        "algorithm": "Ed25519",
        "public_key": base64.b64encode(verifier.public_bytes).decode(),
        "verifier_key": str(verifier),
        "key_id": verifier.key_id,
        "origin": TEST_ORIGIN,
        "retired_verifier_keys": [],
    }
    assert data["verifier_key"].startswith(f"{TEST_ORIGIN}+{verifier.key_id}+")


@pytest.mark.django_db
def test_there_is_no_latest_checkpoint_before_the_first(client):
    assert client.get(reverse("ledger:checkpoint-latest")).status_code == 404


def test_the_views_answer_only_get(client):
    assert client.post(reverse("ledger:public-key")).status_code == 405


def test_a_development_key_is_generated_once_with_private_permissions(settings, tmp_path):
    settings.LEDGER_SIGNING_KEY = ""
    settings.LEDGER_SIGNING_KEY_FILE = tmp_path / "keys" / "ledger.key"
    first = signing.public_key_info()["public_key"]
    assert oct(os.stat(settings.LEDGER_SIGNING_KEY_FILE).st_mode & 0o777) == "0o600"
    signing._signer.cache_clear()
    assert signing.public_key_info()["public_key"] == first
    assert list((tmp_path / "keys").iterdir()) == [settings.LEDGER_SIGNING_KEY_FILE]


def test_a_key_file_others_can_read_is_refused(settings, tmp_path):
    path = tmp_path / "ledger.key"
    path.write_text(base64.b64encode(os.urandom(32)).decode())
    path.chmod(0o644)
    settings.LEDGER_SIGNING_KEY = ""
    settings.LEDGER_SIGNING_KEY_FILE = path
    with pytest.raises(ImproperlyConfigured, match="chmod 600"):
        signing.get_signer()


@pytest.mark.parametrize("value", ["not base64!", base64.b64encode(b"short").decode()])
def test_a_bad_key_in_the_environment_is_refused_by_name(settings, value):
    settings.LEDGER_SIGNING_KEY = value
    with pytest.raises(ImproperlyConfigured, match="LEDGER_SIGNING_KEY"):
        signing.get_signer()


def test_the_key_from_the_environment_signs(settings):
    seed = bytes(range(32))
    settings.LEDGER_SIGNING_KEY = base64.b64encode(seed).decode()
    expected = signing.Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    assert signing.get_signer().public_bytes == expected


# --- key rotation -------------------------------------------------------------------------


def _rotate(settings) -> str:
    """Switch to a new signing key; return the old key's verifier key string."""
    old = str(signing.get_signer().verifier)
    settings.LEDGER_SIGNING_KEY = base64.b64encode(os.urandom(32)).decode()
    return old


@pytest.mark.django_db
def test_after_a_rotation_old_checkpoints_verify_only_with_the_retired_key_listed(settings):
    append(3)
    old_checkpoint = checkpoint_create()
    retired = _rotate(settings)
    append(2)
    new_checkpoint = checkpoint_create()

    with pytest.raises(signing.NoteError, match="no signature by a known key"):
        signing.open_checkpoint(old_checkpoint.note)
    assert not verify_ledger().ok

    settings.LEDGER_RETIRED_VERIFIER_KEYS = [retired]
    assert signing.open_checkpoint(old_checkpoint.note).size == 3
    assert signing.open_checkpoint(new_checkpoint.note).size == 5
    result = verify_ledger()
    assert result.ok, result.summary
    assert new_checkpoint.key_id != old_checkpoint.key_id


@pytest.mark.django_db
def test_a_retired_key_does_not_excuse_a_forged_signature(settings):
    append(1)
    note = checkpoint_create().note
    settings.LEDGER_RETIRED_VERIFIER_KEYS = [_rotate(settings)]
    text, signature = note.split("\n\n")
    name, blob = signature.removeprefix("— ").rstrip("\n").split(" ")
    raw = bytearray(base64.b64decode(blob))
    raw[-1] ^= 1
    forged = f"{text}\n\n— {name} {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(signing.NoteError, match="does not verify"):
        signing.open_checkpoint(forged)


def test_the_public_key_view_lists_the_retired_keys(client, settings):
    retired = _rotate(settings)
    settings.LEDGER_RETIRED_VERIFIER_KEYS = [retired]
    data = client.get(reverse("ledger:public-key")).json()
    assert data["retired_verifier_keys"] == [retired]
    assert data["verifier_key"] != retired


def test_a_malformed_retired_key_names_the_variable(settings):
    settings.LEDGER_RETIRED_VERIFIER_KEYS = ["not-a-key"]
    with pytest.raises(ImproperlyConfigured, match="LEDGER_RETIRED_VERIFIER_KEYS"):
        signing.known_verifiers()
