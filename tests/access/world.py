"""The objects every cell may aim at: one of each admin model, in the state its
actions start from."""

from __future__ import annotations

import datetime as dt
import hashlib
from types import SimpleNamespace

from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from creditledger.api.models import WebhookDelivery
from creditledger.ledger.models import Checkpoint, Cosignature, Witness
from creditledger.ledger.services import ledger_append
from penalties.models import (
    Appeal,
    Evidence,
    Export,
    Objection,
    Policy,
    RepairApplication,
    Restriction,
    ViolationType,
)
from tests import factories
from traders.models import ApiKey, StaffJurisdiction, WebhookEndpoint

# --- the objects every cell may aim at ------------------------------------------------------------


def make_export(owner) -> Export:
    now = timezone.now()
    body = b"seq,action\n1,trader.registered\n"
    export = Export.objects.create(
        requested_by=owner,
        report="ledger",
        format="csv",
        state=Export.State.DONE,
        filename="ledger.csv",
        row_count=1,
        sha256=hashlib.sha256(body).hexdigest(),
        manifest={"manifest": 1, "rows": 1},
        finished_at=now,
        expires_at=now + dt.timedelta(days=1),
    )
    export.file.save("ledger.csv", ContentFile(body))  # its path needs created_at
    return export


def _restriction(state: str, **extra) -> Restriction:
    # One unlifted measure of a kind per trader: each measure gets its own trader.
    now = timezone.now()
    return Restriction.objects.create(
        trader=factories.TraderFactory(),
        measure="warning",
        state=state,
        basis="manual",
        reasons={"basis": "manual", "statement": "多次约谈仍未整改", "violations": []},
        noticed_at=now,
        **extra,
    )


def build_world(users: dict) -> SimpleNamespace:
    """One object of each model, in the state its actions start from. Rows are made
    directly (cheap); the ledger gets one entry and a checkpoint over it."""
    now = timezone.now()
    clerk = factories.UserFactory(username="matrix-clerk", is_staff=True)
    platform = factories.PlatformFactory(code="matrix", name="矩阵平台")
    trader = factories.TraderFactory()
    shop = factories.ShopFactory(trader=trader, platform=platform)
    pending = factories.ViolationFactory(trader=trader, shop=shop)
    confirmed, appealed = (
        factories.ViolationFactory(trader=trader, status="confirmed", decided_by=clerk, decided_at=now)
        for _ in range(2)
    )
    grave = factories.ViolationFactory(
        trader=trader, type=factories.violation_type("counterfeit-large-scale"), recorded_by=clerk
    )
    body = b"\x89PNG\r\n\x1a\nevidence"
    evidence = Evidence.objects.create(
        violation=pending,
        file=ContentFile(body, name="photo.png"),
        original_name="现场照片.png",
        sha256=hashlib.sha256(body).hexdigest(),
        size=len(body),
        content_type="image/png",
        uploaded_by=clerk,
    )
    soon = now + dt.timedelta(days=5)
    proposed = _restriction("proposed", objection_deadline=soon)
    objected = _restriction("proposed", objection_deadline=soon)
    active = _restriction("active", starts_at=now)
    repairing = _restriction("active", starts_at=now)
    objection = Objection.objects.create(
        restriction=objected, grounds="货源合法", recorded_by=clerk, recorded_at=now, status="pending"
    )
    appeal = Appeal.objects.create(
        violation=appealed,
        grounds="检测机构资质存疑",
        filed_by=clerk,
        filed_at=now,
        deadline=now + dt.timedelta(days=30),
        status="pending",
    )
    repair = RepairApplication.objects.create(
        restriction=repairing, grounds="已整改", filed_by=clerk, filed_at=now, status="pending"
    )
    current = Policy.objects.get(is_active=True)
    draft = Policy.objects.create(version=current.version + 1, name="草案", rules=current.rules)
    entry = ledger_append(
        actor="system:matrix",
        action="trader.registered",
        subject_type="trader",
        subject_id=trader.pk,
        trader_uscc=trader.uscc,
    )
    checkpoint = Checkpoint.objects.create(
        seq=entry.seq,
        hash=entry.hash,
        at=now,
        origin="creditledger.test/matrix",
        key_id="0a1b2c3d",
        note="note\n",
    )
    witness = Witness.objects.create(
        name="auditor.example/witness",
        key_id="0a0b0c0d",
        vkey="auditor.example/witness+0a0b0c0d+BA==",
        created_at=now,
    )
    cosignature = Cosignature.objects.create(
        checkpoint=checkpoint,
        witness=witness,
        timestamp=int(now.timestamp()),
        signature="— auditor.example/witness DQ==\n",
        note=checkpoint.note,
        received_at=now,
    )
    api_key, _raw = ApiKey.objects.create_key(name="matrix", platform=platform, scopes=["status:read"])
    endpoint = WebhookEndpoint.objects.create(
        platform=platform,
        url="https://93.184.216.34/hooks",
        secret="whsec_" + "a" * 43,
        previous_secret="whsec_" + "b" * 43,
    )
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        msg_id="msg_matrix",
        event="restriction.applied",
        ledger_seq=entry.seq,
        payload={"type": "restriction.applied"},
        state=WebhookDelivery.State.FAILED,
        attempts=5,
    )
    device = TOTPDevice.objects.create(user=clerk, name="clerk's phone", confirmed=True)
    jurisdiction = StaffJurisdiction.objects.create(user=clerk, regions=["3301"])
    targets = {
        "auth.user": clerk,
        "otp_totp.totpdevice": device,
        "traders.staffjurisdiction": jurisdiction,
        "auth.group": Group.objects.get(name="Officer"),
        "ledger.ledgerentry": entry,
        "ledger.checkpoint": checkpoint,
        "ledger.witness": witness,
        "ledger.cosignature": cosignature,
        "traders.apikey": api_key,
        "traders.webhookendpoint": endpoint,
        "api.webhookdelivery": delivery,
        "traders.trader": trader,
        "traders.shop": shop,
        "traders.platform": platform,
        "penalties.violationtype": ViolationType.objects.get(code="false-advertising"),
        "penalties.violation": pending,
        "penalties.evidence": evidence,
        "penalties.objection": objection,
        "penalties.appeal": appeal,
        "penalties.repairapplication": repair,
        "penalties.policy": draft,
        "penalties.restriction": proposed,
    }
    return SimpleNamespace(
        targets=targets,
        users=users,
        exporter=clerk,
        platform=platform,
        trader=trader,
        proposed=proposed,
        active=active,
        confirmed=confirmed,
        grave=grave,
    )
