"""Manifests verify, and stop verifying when one byte changes; the two commands."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from creditledger.ledger import signing
from creditledger.ledger.models import Checkpoint
from penalties import exports
from penalties.exports import manifest
from penalties.exports.services import export_to_file

pytestmark = pytest.mark.django_db


@pytest.fixture
def exported(seeded, tmp_path):
    def make(name="violations", fmt="csv", **filters):
        path = tmp_path / f"{name}.{fmt}"
        data = export_to_file(exports.build(name, fmt, filters), fmt, str(path), generated_by="test")
        manifest_path = tmp_path / f"{name}.{fmt}.manifest.json"
        manifest_path.write_bytes(manifest.dumps(data))
        return path, manifest_path, data

    return make


def _flip_one_byte(path, at: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    at = len(data) // 2 if at is None else at
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("name", "fmt"), [("violations", "csv"), ("measures", "xlsx"), ("platform_compliance", "pdf")]
)
def test_the_manifest_states_what_was_exported_and_verifies(exported, name, fmt):
    path, _manifest_path, data = exported(name, fmt)
    assert data["report"] == name and data["format"] == fmt
    assert data["row_count"] == manifest.count_rows(path, fmt, len(data["sections"])) > 0
    assert data["sha256"] == manifest.file_digest(path)[0]
    checkpoint = data["ledger"]["checkpoint"]
    assert checkpoint["seq"] == data["ledger"]["head_seq"]  # signed at export time
    assert Checkpoint.objects.filter(seq=checkpoint["seq"], note=checkpoint["note"]).exists()
    assert "generated_at" in data and data["filters"] == {}
    assert manifest.verify(path, data) == []


@pytest.mark.parametrize(("name", "fmt"), [("violations", "csv"), ("violations", "xlsx"), ("grades", "pdf")])
def test_one_changed_byte_fails_verification(exported, name, fmt):
    path, _manifest_path, data = exported(name, fmt)
    _flip_one_byte(path)
    faults = manifest.verify(path, data)
    assert manifest.SHA_MISMATCH in {f.kind for f in faults}


def test_a_manifest_that_lies_about_the_row_count_fails(exported):
    path, _manifest_path, data = exported()
    data["row_count"] += 1
    assert [f.kind for f in manifest.verify(path, data)] == [manifest.ROWS_MISMATCH]


def test_a_tampered_checkpoint_note_fails_its_signature(exported):
    path, _manifest_path, data = exported()
    note = data["ledger"]["checkpoint"]["note"]
    lines = note.split("\n")
    lines[1] = str(int(lines[1]) - 1)  # claim a shorter ledger
    data["ledger"]["checkpoint"]["note"] = "\n".join(lines)
    assert [f.kind for f in manifest.verify(path, data)] == [manifest.BAD_SIGNATURE]


def test_a_checkpoint_signed_by_another_key_fails(exported):
    path, _manifest_path, data = exported()
    other = signing.Signer("creditledger.example/ledger", signing.Ed25519PrivateKey.generate())
    assert [f.kind for f in manifest.verify(path, data, verifier=other.verifier)] == [manifest.BAD_SIGNATURE]


def test_verify_export_passes_a_good_pair(exported, capsys):
    path, manifest_path, data = exported("violations", "xlsx")
    call_command("verify_export", str(path), str(manifest_path))
    out = capsys.readouterr().out
    assert "ok" in out and data["sha256"] in out


def test_verify_export_exits_non_zero_naming_the_fault(exported):
    path, manifest_path, _data = exported()
    _flip_one_byte(path, at=-3)
    with pytest.raises(CommandError) as caught:
        call_command("verify_export", str(path), str(manifest_path))
    assert caught.value.returncode == 1
    assert "sha256 mismatch" in str(caught.value)


def test_verify_export_checks_the_signature_with_a_given_public_key(exported):
    path, manifest_path, _data = exported()
    own = str(signing.get_signer().verifier)
    call_command("verify_export", str(path), str(manifest_path), "--public-key", own, "--offline")
    stranger = signing.Signer("creditledger.example/ledger", signing.Ed25519PrivateKey.generate())
    with pytest.raises(CommandError) as caught:
        call_command("verify_export", str(path), str(manifest_path), "--public-key", str(stranger.verifier))
    assert caught.value.returncode == 1 and "bad checkpoint signature" in str(caught.value)


def test_verify_export_refuses_a_file_that_is_not_a_manifest(exported, tmp_path):
    path, _manifest_path, _data = exported()
    bogus = tmp_path / "bogus.json"
    bogus.write_text(json.dumps({"hello": 1}))
    with pytest.raises(CommandError) as caught:
        call_command("verify_export", str(path), str(bogus))
    assert caught.value.returncode == 2


def test_export_report_writes_the_file_and_its_manifest(seeded, tmp_path, capsys):
    target = tmp_path / "out" / "violations.xlsx"
    target.parent.mkdir()
    call_command(
        "export_report", "violations", "--format", "xlsx", "--filter", "region=33", "-o", str(target)
    )
    data = manifest.loads((tmp_path / "out" / "violations.xlsx.manifest.json").read_bytes())
    assert data["filters"] == {"region": "33"} and data["row_count"] > 0
    assert sorted(p.name for p in target.parent.iterdir()) == [
        "violations.xlsx",
        "violations.xlsx.manifest.json",
    ]
    assert "rows, sha256" in capsys.readouterr().out
    call_command("verify_export", str(target), str(target) + ".manifest.json")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--filter", "region=3"], "region"),
        (["--filter", "colour=red"], "colour"),
        (["--filter", "region"], "key=value"),
        (["--format", "pdf"], "format"),
    ],
)
def test_export_report_names_a_bad_argument(db, tmp_path, args, message):
    with pytest.raises(CommandError) as caught:
        call_command("export_report", "violations", *args, "-o", str(tmp_path / "x.csv"))
    assert caught.value.returncode == 2 and message in str(caught.value)
    assert not list(tmp_path.iterdir())
