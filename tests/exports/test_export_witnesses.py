"""The audit side of witnesses: verify_export and the audit page say who cosigned the
checkpoint an export carries."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.urls import reverse

from creditledger.ledger import witness_client
from creditledger.ledger.actors import Actor
from creditledger.ledger.models import Checkpoint
from creditledger.ledger.services import checkpoint_create
from creditledger.ledger.witness_services import cosignature_record, witness_register
from tests.exports.test_export_entries import downloaded, violations  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


@pytest.fixture
def cosigner(tmp_path):
    path = tmp_path / "witness.key"
    witness_client.generate_key(path, "auditor.example/witness")
    cosigner = witness_client.load_key(path)
    witness_register(actor=Actor.system("test"), vkey=str(cosigner.verifier))
    return cosigner


def cosign(cosigner, checkpoint: Checkpoint, timestamp: int = 1_700_000_000) -> None:
    text = checkpoint.note[: checkpoint.note.rindex("\n\n") + 1]
    cosignature_record(size=checkpoint.seq, line=cosigner.cosign(text, timestamp=timestamp))


def verify_export(path, manifest_path) -> str:
    out = io.StringIO()
    call_command("verify_export", str(path), str(manifest_path), stdout=out)
    return out.getvalue()


def test_verify_export_names_the_witnesses_of_the_manifests_checkpoint(cosigner, downloaded):  # noqa: F811
    export, path, manifest_path = downloaded
    seq = export.manifest["ledger"]["checkpoint"]["seq"]
    assert f"checkpoint {seq}: cosigned by no witness yet" in verify_export(path, manifest_path)
    cosign(cosigner, Checkpoint.objects.get(seq=seq))
    line = f"checkpoint {seq}: cosigned by {cosigner.verifier.name}+{cosigner.verifier.key_id.hex()}"
    assert f"{line} at 2023-11-14T22:13:20Z" in verify_export(path, manifest_path)


def test_the_audit_page_lists_the_latest_checkpoints_with_their_witnesses(cosigner, client, auditor):
    from tests.ledger.helpers import append

    append(2)
    cosign(cosigner, checkpoint_create())
    append(1, start=3)
    checkpoint_create()
    client.force_login(auditor)
    page = client.get(reverse("audit:index")).content.decode()
    table = page[page.index('id="checkpoints"') : page.index("</table>", page.index('id="checkpoints"'))]
    rows = table.split("<tr>")[2:]
    assert [row.split("<td>")[1].split("<")[0] for row in rows] == ["4", "3"]  # the registration is entry 1
    assert "no witness yet" in rows[0]
    assert f"{cosigner.verifier.name}+{cosigner.verifier.key_id.hex()}" in rows[1]
    assert "Nov. 15, 2023" in rows[1]  # 1_700_000_000 in the site's time zone (Asia/Shanghai)
