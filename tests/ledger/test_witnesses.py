"""Witnesses: the ledger_witness command against a live server, the cosignature endpoint's
refusals, and verify_ledger holding the entries against stored cosignatures.

Cosignatures are checked here the way an outsider would: Ed25519 over the cosignature/v1
message written out from C2SP tlog-cosignature, not with the module under test.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction
from rest_framework.test import APIClient

from creditledger.exceptions import ApplicationError
from creditledger.ledger import merkle, sealer, witness_client
from creditledger.ledger.actors import Actor
from creditledger.ledger.models import Checkpoint, Cosignature, LedgerEntry, Witness
from creditledger.ledger.services import checkpoint_create, sign_tree
from creditledger.ledger.signing import Signer
from creditledger.ledger.verify import verify_ledger
from creditledger.ledger.witness_services import cosignature_record, witness_register
from tests.ledger.helpers import append, run_verify, tamper, trigger_disabled
from tests.ledger.test_verify import rewrite_tail
from tests.worker import ROOT

WITNESS = "auditor.example/witness"
URL = "/api/v1/ledger/cosignatures/"


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()  # the cache's Redis database, which also holds the per-address witness counts


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "witness.key"
    witness_client.generate_key(path, WITNESS)
    return path


@pytest.fixture
def cosigner(key_file):
    return witness_client.load_key(key_file)


@pytest.fixture
def registered(db, cosigner):
    return witness_register(actor=Actor.system("test"), vkey=str(cosigner.verifier), description="an auditor")


def independent_check(public: bytes, name: str, text: str, line: str) -> int:
    """Verify a cosignature/v1 line over checkpoint `text` from the spec; return its time."""
    prefix = "— " + name + " "
    assert line.startswith(prefix) and line.endswith("\n")
    blob = base64.b64decode(line[len(prefix) : -1])
    key_id = hashlib.sha256(name.encode() + b"\n\x04" + public).digest()[:4]
    assert blob[:4] == key_id and len(blob) == 4 + 8 + 64
    timestamp = int.from_bytes(blob[4:12], "big")
    message = b"cosignature/v1\ntime " + str(timestamp).encode() + b"\n" + text.encode()
    Ed25519PublicKey.from_public_bytes(public).verify(blob[12:], message)  # raises if bad
    return timestamp


def witness(live_server, key_file, api_key: str, *extra: str) -> str:
    out = io.StringIO()
    call_command(
        "ledger_witness",
        "--url",
        live_server.url,
        "--key",
        str(key_file),
        "--api-key",
        api_key,
        *extra,
        stdout=out,
    )
    return out.getvalue()


def resign(seq: int) -> None:
    """What the holder of the log's key can do: re-sign checkpoint `seq` over the tree now."""
    root = merkle.tree_root(size=seq, read_tiles=sealer.read_tiles)
    note, _ = sign_tree(seq, root)
    chain = LedgerEntry.objects.values_list("hash", flat=True).get(seq=seq)
    tamper(
        "UPDATE ledger_checkpoint SET note = %s, root = %s, hash = %s WHERE seq = %s",
        [note, root.hex(), chain, seq],
    )


def text_of(note: str) -> str:
    return note[: note.rindex("\n\n") + 1]


# --- the command against a live server ----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_witness_cosigns_the_newest_checkpoint_and_then_only_its_extensions(
    live_server, key_file, cosigner, registered, make_api_client
):
    api = make_api_client("jd", [])
    append(4)  # and the witness's registration
    checkpoint_create()
    out = witness(live_server, key_file, api.raw_key)
    assert "first run: pinning the log key" in out
    assert "trusting checkpoint 5" in out and "on first use" in out
    assert "the log recorded" in out

    append(4, start=6)
    checkpoint_create()
    out = witness(live_server, key_file, api.raw_key)
    assert "checkpoint 9 extends checkpoint 5 cosigned before" in out
    assert "first run" not in out

    public = cosigner.verifier.public_bytes
    stored = {c.checkpoint.seq: c for c in Cosignature.objects.select_related("checkpoint")}
    assert sorted(stored) == [5, 9]
    for seq, cosig in stored.items():
        independent_check(public, WITNESS, text_of(Checkpoint.objects.get(seq=seq).note), cosig.signature)

    page = api.get("/api/v1/ledger/checkpoints/").json()["checkpoints"]
    assert [c["seq"] for c in page] == [5, 9]
    for entry in page:
        (cosig,) = entry["cosignatures"]
        assert (cosig["witness"], cosig["key_id"]) == (WITNESS, registered.key_id)
        assert entry["cosigned_note"] == entry["note"] + cosig["signature"]
        line = entry["cosigned_note"].rstrip("\n").rsplit("\n", 1)[1] + "\n"
        assert independent_check(public, WITNESS, text_of(entry["note"]), line) == cosig["timestamp"]

    state = json.loads(key_file.with_name("witness.key.state").read_text())
    assert state["size"] == 9
    assert "cosigned" in run_verify("--witness-key", str(cosigner.verifier)).split("\n")[1]


@pytest.mark.django_db(transaction=True)
def test_the_witness_refuses_a_history_rewritten_after_what_it_cosigned(
    live_server, key_file, registered, make_api_client
):
    api = make_api_client("jd", [])
    append(9)
    checkpoint_create()
    witness(live_server, key_file, api.raw_key)
    rewrite_tail(keep=7, count=5)
    resign(10)
    checkpoint_create()  # 12, over the forged tail, signed with the log's own key
    assert verify_ledger().ok  # the log's key vouches for the forgery

    with pytest.raises(CommandError) as info:
        witness(live_server, key_file, api.raw_key)
    assert info.value.returncode == 1
    message = str(info.value)
    assert "refusing to cosign" in message
    assert "consistency proof from size 10 to size 12 does not verify" in message
    assert list(Cosignature.objects.values_list("checkpoint__seq", flat=True)) == [10]
    assert json.loads(key_file.with_name("witness.key.state").read_text())["size"] == 10


@pytest.mark.django_db(transaction=True)
def test_the_witness_refuses_a_checkpoint_of_the_same_size_with_another_root(
    live_server, key_file, registered, make_api_client
):
    api = make_api_client("jd", [])
    append(9)
    checkpoint_create()
    witness(live_server, key_file, api.raw_key)
    rewrite_tail(keep=7, count=3)
    resign(10)
    with pytest.raises(CommandError) as info:
        witness(live_server, key_file, api.raw_key)
    assert info.value.returncode == 1
    assert "checkpoint 10 now states root" in str(info.value)


# --- verify_ledger and the attack ---------------------------------------------------------


@pytest.mark.django_db
def test_a_tail_rewritten_and_resigned_with_the_logs_key_is_named_by_the_witness_key(cosigner, registered):
    for size in (5, 10):
        append(4 if size == 5 else 5, start=size - 4)  # entry 1: the registration
        checkpoint = checkpoint_create()
        cosignature_record(size=size, line=cosigner.cosign(text_of(checkpoint.note), timestamp=1_700_000_000))
    rewrite_tail(keep=7, count=5)
    resign(10)
    checkpoint_create()
    assert verify_ledger().ok  # chain, tiles, and every checkpoint's log signature hold

    with pytest.raises(CommandError) as info:
        run_verify("--witness-key", str(cosigner.verifier))
    assert info.value.returncode == 1
    message = str(info.value)
    assert "seq 6: rewritten after a witnessed checkpoint" in message
    assert f"checkpoint 10 as cosigned by {registered}" in message
    assert "the checkpoint was re-signed since" in message
    assert "rewritten within seq (5, 10], after witnessed checkpoint 5, which still holds" in message
    with pytest.raises(CommandError) as info:
        run_verify()  # the registered key, without --witness-key
    assert "within seq (5, 10]" in str(info.value)


@pytest.mark.django_db
def test_an_intact_ledger_reports_who_cosigned_what(cosigner, registered):
    append(2)  # and the witness's registration
    checkpoint = checkpoint_create()
    cosignature_record(size=3, line=cosigner.cosign(text_of(checkpoint.note), timestamp=1_700_000_000))
    other = merkle.CosignatureVerifier("platform.example/witness", bytes(32))
    out = run_verify("--witness-key", str(cosigner.verifier), "--witness-key", str(other))
    lines = out.split("\n")
    assert lines[0].startswith("ledger ok: entries 1..3")
    assert f"witness {registered}: cosigned checkpoints 3; newest 3" in lines
    assert f"witness {other.name}+{other.key_id.hex()}: no cosignature stored" in lines
    assert f"checkpoint 3: cosigned by {registered}" not in lines
    assert f"checkpoint 3: cosigned by {registered}" in run_verify("-v", "2").split("\n")


@pytest.mark.django_db
def test_a_cosignature_that_does_not_verify_under_the_given_key_is_a_fault(cosigner, registered, settings):
    append(2)  # and the witness's registration
    checkpoint = checkpoint_create()
    cosignature_record(size=3, line=cosigner.cosign(text_of(checkpoint.note), timestamp=1_700_000_000))
    impostor = merkle.Cosigner(WITNESS, Ed25519PrivateKey.generate()).verifier
    assert "not checked (no key given for it)" in run_verify("--witness-key", str(impostor))
    settings.LEDGER_WITNESS_KEYS = [str(impostor)]  # the configured keys, without --witness-key
    assert "not checked (no key given for it)" in run_verify()
    settings.LEDGER_WITNESS_KEYS = ["not a key"]
    with pytest.raises(CommandError, match="Environment variable LEDGER_WITNESS_KEYS"):
        run_verify()
    settings.LEDGER_WITNESS_KEYS = []
    # The note kept with the cosignature edited to claim another size: the witness never signed that.
    tamper("UPDATE ledger_cosignature SET note = replace(note, '\n3\n', '\n4\n')")
    with pytest.raises(CommandError) as info:
        run_verify("--witness-key", str(cosigner.verifier))
    assert "seq 3: bad cosignature" in str(info.value)


# --- the endpoint's refusals --------------------------------------------------------------


@pytest.fixture
def anon():
    return APIClient()  # witnesses post without an API key


@pytest.mark.django_db
def test_a_cosignature_by_an_unknown_witness_is_refused_and_nothing_is_stored(anon):
    append(3)
    checkpoint = checkpoint_create()
    stranger = merkle.Cosigner("stranger.example/w", Ed25519PrivateKey.generate())
    line = stranger.cosign(text_of(checkpoint.note), timestamp=1_700_000_000)
    response = anon.post(URL, {"size": 3, "cosignature": line}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "unknown_witness"
    assert (
        f"unknown witness stranger.example/w+{stranger.verifier.key_id.hex()}"
        in body["fields"]["cosignature"][0]
    )
    assert not Cosignature.objects.exists()


@pytest.mark.django_db
def test_a_bad_signature_is_refused_and_nothing_is_stored(anon, cosigner, registered):
    append(2)  # and the witness's registration
    checkpoint = checkpoint_create()
    line = cosigner.cosign(text_of(checkpoint.note), timestamp=1_700_000_000)
    raw = bytearray(base64.b64decode(line.split(" ")[2]))
    raw[-1] ^= 1
    forged = f"— {WITNESS} {base64.b64encode(bytes(raw)).decode()}\n"
    response = anon.post(URL, {"size": 3, "cosignature": forged}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "bad_signature"
    assert "does not verify" in response.json()["fields"]["cosignature"][0]
    append(2, start=4)
    checkpoint_create()
    response = anon.post(URL, {"size": 5, "cosignature": line}, format="json")  # signed for size 3
    assert (response.status_code, response.json()["code"]) == (400, "bad_signature")
    assert not Cosignature.objects.exists()


@pytest.mark.django_db
def test_a_cosignature_of_no_checkpoint_or_a_malformed_line_is_refused(anon, cosigner, registered):
    append(2)  # and the witness's registration
    checkpoint = checkpoint_create()
    line = cosigner.cosign(text_of(checkpoint.note), timestamp=1_700_000_000)
    response = anon.post(URL, {"size": 4, "cosignature": line}, format="json")
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["fields"]["size"]) == (
        "unknown_checkpoint",
        ["no checkpoint of size 4"],
    )
    response = anon.post(URL, {"size": 3, "cosignature": "- not a signature line"}, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "malformed")
    response = anon.post(URL, {"size": 3, "cosignature": line, "pad": "x" * 3000}, format="json")
    assert response.status_code == 413
    assert not Cosignature.objects.exists()


@pytest.mark.django_db
def test_a_timestamp_far_in_the_future_is_refused(cosigner, registered):
    append(2)  # and the witness's registration
    checkpoint = checkpoint_create()
    line = cosigner.cosign(text_of(checkpoint.note), timestamp=2_000_000_000)
    with pytest.raises(ApplicationError) as info:
        cosignature_record(size=3, line=line, now=1_700_000_000)
    assert (info.value.field, info.value.code, info.value.value) == (
        "cosignature",
        "future_timestamp",
        2_000_000_000,
    )


@pytest.mark.django_db
def test_a_repeat_answers_with_the_first_cosignature(anon, cosigner, registered):
    append(2)  # and the witness's registration
    checkpoint = checkpoint_create()
    first = cosigner.cosign(text_of(checkpoint.note), timestamp=1_700_000_000)
    assert anon.post(URL, {"size": 3, "cosignature": first}, format="json").status_code == 201
    again = cosigner.cosign(text_of(checkpoint.note), timestamp=1_700_000_100)
    response = anon.post(URL, {"size": 3, "cosignature": again}, format="json")
    assert (response.status_code, response.json()["timestamp"]) == (200, 1_700_000_000)
    assert Cosignature.objects.get().signature == first


@pytest.mark.django_db
def test_posts_are_rate_limited_per_address(anon, settings):
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "witness": "2/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    for _ in range(2):
        assert anon.post(URL, {"size": 1, "cosignature": "x"}, format="json").status_code == 400
    assert anon.post(URL, {"size": 1, "cosignature": "x"}, format="json").status_code == 429
    spoofed = anon.post(URL, {"size": 1, "cosignature": "x"}, format="json", HTTP_X_FORWARDED_FOR="10.9.8.7")
    assert spoofed.status_code == 429  # a forwarded-for header the client wrote is no new address


@pytest.mark.django_db
def test_registering_a_witness_checks_its_key_and_records_it(cosigner):
    with pytest.raises(ApplicationError) as info:
        witness_register(actor=Actor.system("test"), vkey="auditor+00000000+AAAA")
    assert (info.value.field, info.value.code) == ("vkey", "invalid_vkey")
    witness = witness_register(actor=Actor.system("test"), vkey=str(cosigner.verifier))
    entry = LedgerEntry.objects.get(action="witness.registered")
    assert entry.payload["vkey"] == witness.vkey == str(cosigner.verifier)
    with pytest.raises(ApplicationError) as info:
        witness_register(actor=Actor.system("test"), vkey=str(cosigner.verifier))
    assert info.value.code == "already_registered"


def test_a_key_file_readable_by_others_is_refused(key_file):
    key_file.chmod(0o644)
    with pytest.raises(witness_client.WitnessError, match="readable by others"):
        witness_client.load_key(key_file)


def test_an_existing_key_file_is_never_overwritten(key_file):
    before = key_file.read_text()
    with pytest.raises(witness_client.WitnessError, match="refusing to overwrite"):
        witness_client.generate_key(key_file, WITNESS)
    assert key_file.read_text() == before


# --- the admin ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_admin_registers_a_witness_through_the_service_and_sees_who_cosigned(admin_client, cosigner):
    response = admin_client.post(
        "/admin/ledger/witness/add/", {"vkey": str(cosigner.verifier), "description": "Zhejiang audit office"}
    )
    assert response.status_code == 302
    witness = Witness.objects.get()
    assert (witness.name, witness.description) == (WITNESS, "Zhejiang audit office")
    assert LedgerEntry.objects.filter(action="witness.registered", actor__startswith="user:").count() == 1
    bad = admin_client.post("/admin/ledger/witness/add/", {"vkey": "nonsense", "description": ""})
    assert bad.status_code == 200 and "is not a cosignature/v1 verifier key" in bad.content.decode()
    assert Witness.objects.count() == 1

    append(2)
    checkpoint = checkpoint_create()
    cosignature_record(
        size=checkpoint.seq, line=cosigner.cosign(text_of(checkpoint.note), timestamp=1_700_000_000)
    )
    listing = admin_client.get("/admin/ledger/checkpoint/").content.decode()
    assert str(witness) in listing
    admin_client.post("/admin/ledger/witness/", {"action": "retire", "_selected_action": [witness.pk]})
    witness.refresh_from_db()
    assert not witness.is_active
    assert LedgerEntry.objects.filter(action="witness.retired").count() == 1


@pytest.mark.django_db
def test_a_cosigned_checkpoint_cannot_be_deleted_before_its_cosignatures(cosigner, registered):
    append(2)
    checkpoint = checkpoint_create()
    cosignature_record(
        size=checkpoint.seq, line=cosigner.cosign(text_of(checkpoint.note), timestamp=1_700_000_000)
    )
    with (
        trigger_disabled(),
        pytest.raises(IntegrityError),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM ledger_checkpoint")
    assert Checkpoint.objects.count() == 1


def test_the_documented_client_check_reads_a_cosigned_note(cosigner):
    """docs/api.md's cosigned_at(), as written, accepts the witness's line and refuses a forged one."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text(encoding="utf-8")
    block = doc.split("### Reading cosignatures")[1].split("```python")[1].split("```")[0]
    namespace = {"base64": base64, "hashlib": hashlib, "Ed25519PublicKey": Ed25519PublicKey}
    exec(block, namespace)
    checkpoint = merkle.Checkpoint(origin="log.example/x", size=3, root_hash=bytes(32))
    note = checkpoint.sign(Signer("log.example/x", Ed25519PrivateKey.generate()))
    cosigned = merkle.add_signature_lines(note, [cosigner.cosign(checkpoint.text(), timestamp=1_700_000_123)])
    public = cosigner.verifier.public_bytes
    assert namespace["cosigned_at"](cosigned, WITNESS, public) == 1_700_000_123
    other = merkle.Checkpoint(origin="log.example/x", size=4, root_hash=bytes(32))
    moved = cosigned.replace(checkpoint.text(), other.text())
    with pytest.raises(InvalidSignature):
        namespace["cosigned_at"](moved, WITNESS, public)


@pytest.mark.django_db
def test_a_deleted_entry_under_a_witnessed_checkpoint_is_a_fault_there(cosigner, registered, monkeypatch):
    from creditledger.ledger import witnesses

    monkeypatch.setattr(witnesses, "BATCH_SIZE", 3)  # windows with and without the hole
    append(7)
    checkpoint = checkpoint_create()
    cosignature_record(
        size=checkpoint.seq, line=cosigner.cosign(text_of(checkpoint.note), timestamp=1_700_000_000)
    )
    report = witnesses.check_cosignatures(keys=[cosigner.verifier])
    assert report.fault is None and report.last_good == 8
    tamper("DELETE FROM ledger_ledgerentry WHERE seq = 5")
    report = witnesses.check_cosignatures(keys=[cosigner.verifier])
    assert report.fault.seq == 1
    assert "entries 1..8 are not all there (a seq is missing)" in report.fault.detail
    assert "within seq (0, 8], no earlier witnessed checkpoint holds" in report.fault.detail


@pytest.mark.django_db(transaction=True)
def test_the_witness_runs_without_django_settings_on_the_auditors_machine(
    live_server, key_file, cosigner, registered, make_api_client
):
    """`python -m creditledger.ledger.witness_client`: no SECRET_KEY, no database, the code only."""
    api = make_api_client("jd", [])
    append(2)
    checkpoint_create()
    witness(live_server, key_file, api.raw_key)
    append(3, start=3)
    checkpoint_create()
    env = {"PATH": os.environ["PATH"], "HOME": str(key_file.parent), "LEDGER_WITNESS_API_KEY": api.raw_key}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "creditledger.ledger.witness_client",
            "--url",
            live_server.url,
            "--key",
            str(key_file),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "checkpoint 6 extends checkpoint 3 cosigned before" in done.stdout
    assert sorted(Cosignature.objects.values_list("checkpoint__seq", flat=True)) == [3, 6]


def test_a_second_run_while_one_holds_the_state_is_refused(tmp_path, key_file, cosigner):
    """Two overlapping runs could save an older tree over a newer one: the second one stops."""
    state = tmp_path / "witness.key.state"
    with open(tmp_path / "witness.key.state.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(witness_client.WitnessError, match="another run holds"):
            witness_client.run(
                api=witness_client.Api("http://127.0.0.1:9"), cosigner=cosigner, state_path=state, now=1
            )
    assert not state.exists()


@pytest.mark.django_db
def test_a_cosignature_without_a_time_is_refused(cosigner, registered):
    append(2)
    checkpoint = checkpoint_create()
    with pytest.raises(ApplicationError) as info:
        cosignature_record(size=checkpoint.seq, line=cosigner.cosign(text_of(checkpoint.note), timestamp=0))
    assert (info.value.field, info.value.code) == ("cosignature", "zero_timestamp")
    assert not Cosignature.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_witness_follows_a_new_log_key_only_when_told_and_says_why_the_log_refused(
    live_server, key_file, cosigner, make_api_client, settings, tmp_path
):
    api = make_api_client("jd", [])
    append(2)
    checkpoint_create()
    with pytest.raises(CommandError) as info:  # not registered yet: the log refuses the line
        witness(live_server, key_file, api.raw_key)
    assert info.value.returncode == 2
    assert "HTTP 400" in str(info.value) and "unknown_witness" in str(info.value)
    witness_register(actor=Actor.system("test"), vkey=str(cosigner.verifier))
    assert "checkpoint 2 is the one cosigned last time" in witness(live_server, key_file, api.raw_key)

    settings.LEDGER_SIGNING_KEY = base64.b64encode(bytes(range(1, 33))).decode()  # a key rotation
    append(1, start=3)
    checkpoint_create()
    with pytest.raises(CommandError) as info:
        witness(live_server, key_file, api.raw_key)
    assert info.value.returncode == 1
    assert "the log's newest checkpoint does not verify under ledger.test/creditledger+" in str(info.value)
    new_key = api.get("/api/v1/ledger/public-key").json()["verifier_key"]
    out = witness(live_server, key_file, api.raw_key, "--log-key", new_key)
    assert f"log key {new_key} given replaces the pinned" in out
    assert "checkpoint 4 extends checkpoint 2 cosigned before" in out


def test_manage_py_check_names_a_bad_configured_witness_key(settings, cosigner):
    from creditledger.ledger.checks import witness_keys_check

    settings.LEDGER_WITNESS_KEYS = [str(cosigner.verifier)]
    assert witness_keys_check(None) == []
    settings.LEDGER_WITNESS_KEYS = [str(cosigner.verifier), "auditor+00000000+AAAA"]
    (error,) = witness_keys_check(None)
    assert (error.id, error.msg.split(":")[0]) == ("ledger.E003", "Environment variable LEDGER_WITNESS_KEYS")
