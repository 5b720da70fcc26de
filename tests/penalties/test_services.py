from __future__ import annotations

import datetime as dt
import hashlib
import io
from decimal import Decimal

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from creditledger.exceptions import ApplicationError, PermissionDenied
from creditledger.ledger.actors import Actor
from creditledger.ledger.models import LedgerEntry
from penalties.models import Evidence, Violation, ViolationType
from penalties.services import (
    evidence_attach,
    violation_confirm,
    violation_record,
    violation_reject,
)
from tests import factories

pytestmark = pytest.mark.django_db


def _record(actor, **overrides):
    arguments = {
        "trader": overrides.pop("trader", None) or factories.TraderFactory(),
        "type": ViolationType.objects.get(code="false-advertising"),
        "occurred_on": timezone.localdate() - dt.timedelta(days=3),
        "source": Violation.Source.INSPECTION,
        "description": "详情页宣称“治愈率100%”，无依据",
    }
    arguments.update(overrides)
    return violation_record(actor=actor, **arguments)


def _actions():
    return list(LedgerEntry.objects.values_list("action", flat=True))


# --- violation_record --------------------------------------------------------------------


def test_it_records_a_pending_violation_with_its_ledger_entry(as_officer, officer):
    violation = _record(as_officer, goods_value="1234.5")
    assert violation.status == Violation.Status.PENDING
    assert violation.recorded_by == officer
    assert violation.goods_value == Decimal("1234.50")
    entry = LedgerEntry.objects.get()
    assert entry.action == "violation.recorded"
    assert entry.subject_id == str(violation.pk)
    assert entry.payload["type"] == "false-advertising"
    assert entry.payload["goods_value"] == "1234.50"  # decimals as strings
    assert entry.payload["status"] == "pending"


def test_today_is_allowed_but_tomorrow_is_not(as_officer):
    _record(as_officer, occurred_on=timezone.localdate())
    with pytest.raises(ApplicationError) as info:
        _record(as_officer, occurred_on=timezone.localdate() + dt.timedelta(days=1))
    assert (info.value.field, info.value.code) == ("occurred_on", "future_date")
    assert Violation.objects.count() == 1
    assert _actions() == ["violation.recorded"]


def test_an_inactive_type_is_refused(as_officer):
    vtype = ViolationType.objects.get(code="refused-returns")
    vtype.is_active = False
    vtype.save()
    with pytest.raises(ApplicationError) as info:
        _record(as_officer, type=vtype)
    assert info.value.code == "inactive_type"
    assert not Violation.objects.exists() and not LedgerEntry.objects.exists()


def test_the_shop_must_belong_to_the_trader(as_officer):
    trader = factories.TraderFactory()
    other_shop = factories.ShopFactory()
    with pytest.raises(ApplicationError) as info:
        _record(as_officer, trader=trader, shop=other_shop)
    assert (info.value.field, info.value.code) == ("shop", "shop_mismatch")
    assert not Violation.objects.exists() and not LedgerEntry.objects.exists()
    own_shop = factories.ShopFactory(trader=trader)
    assert _record(as_officer, trader=trader, shop=own_shop).shop == own_shop


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"description": "   "}, "description", "required"),
        ({"source": "gossip"}, "source", "invalid_choice"),
        ({"source": "platform_report"}, "reporting_platform", "required"),
        ({"goods_value": "-1"}, "goods_value", "out_of_range"),
        ({"goods_value": "lots"}, "goods_value", "invalid"),
        ({"occurred_on": "2024-01-01"}, "occurred_on", "invalid"),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(as_officer, overrides, field, code):
    with pytest.raises(ApplicationError) as info:
        _record(as_officer, **overrides)
    assert (info.value.field, info.value.code) == (field, code)
    assert not Violation.objects.exists() and not LedgerEntry.objects.exists()


def test_an_auditor_cannot_record(auditor):
    with pytest.raises(PermissionDenied):
        _record(Actor.for_user(auditor))
    assert not Violation.objects.exists()


def test_a_platform_report_is_always_pending_and_attributed_to_the_reporting_platform():
    platform = factories.PlatformFactory(code="jd")
    violation = _record(Actor.for_apikey("k1", platform=platform), source=Violation.Source.INSPECTION)
    assert violation.source == Violation.Source.PLATFORM_REPORT
    assert violation.reporting_platform == platform
    assert violation.recorded_by is None
    assert LedgerEntry.objects.get().actor == "apikey:k1"


# --- confirm / reject and four eyes -------------------------------------------------------


def test_an_officer_confirms_a_general_violation_and_flags_the_trader(as_officer, other_officer, officer):
    violation = _record(as_officer)
    confirmed = violation_confirm(actor=Actor.for_user(other_officer), violation=violation, note="证据确凿")
    assert confirmed.status == Violation.Status.CONFIRMED
    assert confirmed.confirmed_by == other_officer
    assert confirmed.confirmed_at is not None
    assert confirmed.trader.__class__.objects.get(pk=confirmed.trader_id).needs_reassessment
    assert _actions() == ["violation.recorded", "violation.confirmed"]
    entry = LedgerEntry.objects.get(action="violation.confirmed")
    assert entry.payload["decided_by"] == other_officer.pk
    assert entry.payload["note"] == "证据确凿"


def test_the_recorder_may_confirm_a_general_violation_himself(as_officer):
    violation = _record(as_officer)
    assert violation_confirm(actor=as_officer, violation=violation).status == Violation.Status.CONFIRMED


def test_an_officer_cannot_confirm_a_grave_violation(as_officer, other_officer):
    violation = _record(as_officer, type=ViolationType.objects.get(code="counterfeit-large-scale"))
    with pytest.raises(PermissionDenied):
        violation_confirm(actor=Actor.for_user(other_officer), violation=violation)
    violation.refresh_from_db()
    assert violation.status == Violation.Status.PENDING
    assert _actions() == ["violation.recorded"]


def test_four_eyes_a_supervisor_cannot_confirm_a_serious_violation_he_recorded(
    as_supervisor, other_supervisor
):
    violation = _record(as_supervisor, type=ViolationType.objects.get(code="counterfeit-goods"))
    with pytest.raises(PermissionDenied) as info:
        violation_confirm(actor=as_supervisor, violation=violation)
    assert info.value.code == "four_eyes"
    with pytest.raises(PermissionDenied):
        violation_reject(actor=as_supervisor, violation=violation, note="撤回")
    violation.refresh_from_db()
    assert violation.status == Violation.Status.PENDING
    violation_confirm(actor=Actor.for_user(other_supervisor), violation=violation)
    violation.refresh_from_db()
    assert violation.status == Violation.Status.CONFIRMED


def test_it_rejects_with_a_note_and_does_not_flag_the_trader(as_officer):
    violation = _record(as_officer)
    with pytest.raises(ApplicationError) as info:
        violation_reject(actor=as_officer, violation=violation, note=" ")
    assert info.value.field == "note"
    rejected = violation_reject(actor=as_officer, violation=violation, note="经核实为同行恶意投诉")
    assert rejected.status == Violation.Status.REJECTED
    assert not rejected.trader.__class__.objects.get(pk=rejected.trader_id).needs_reassessment
    assert _actions() == ["violation.recorded", "violation.rejected"]


@pytest.mark.parametrize("first", ["confirm", "reject"])
def test_status_moves_only_along_the_workflow(as_officer, first):
    violation = _record(as_officer)
    decide = {"confirm": violation_confirm, "reject": violation_reject}
    decide[first](actor=as_officer, violation=violation, note="n")
    for action in ("confirm", "reject"):
        with pytest.raises(ApplicationError) as info:
            decide[action](actor=as_officer, violation=violation, note="n")
        assert info.value.code == "invalid_transition"
    assert len(_actions()) == 2


def test_a_task_cannot_decide_a_violation(as_officer):
    violation = _record(as_officer)
    with pytest.raises(PermissionDenied):
        violation_confirm(actor=Actor.system("sweeper"), violation=violation)


# --- evidence ------------------------------------------------------------------------------


def test_evidence_is_stored_content_addressed_with_its_digest(as_officer):
    violation = _record(as_officer)
    data = b"%PDF-1.4 inspection report " * 1000
    upload = SimpleUploadedFile("检查笔录.pdf", data, content_type="application/pdf")
    evidence = evidence_attach(actor=as_officer, violation=violation, upload=upload)
    digest = hashlib.sha256(data).hexdigest()
    assert (evidence.sha256, evidence.size, evidence.content_type) == (digest, len(data), "application/pdf")
    assert evidence.original_name == "检查笔录.pdf"
    assert evidence.file.name == f"evidence/{digest[:2]}/{digest}"
    with default_storage.open(evidence.file.name) as stored:
        assert stored.read() == data
    entry = LedgerEntry.objects.get(action="evidence.attached")
    assert entry.payload["sha256"] == digest


def test_the_content_type_is_guessed_from_the_name_when_not_declared(as_officer):
    violation = _record(as_officer)
    evidence = evidence_attach(
        actor=as_officer, violation=violation, upload=io.BytesIO(b"\x89PNG..."), name="photo.png"
    )
    assert evidence.content_type == "image/png"


def test_oversized_evidence_is_refused_while_streaming(as_officer, settings):
    settings.EVIDENCE_MAX_BYTES = 1000
    violation = _record(as_officer)
    with pytest.raises(ApplicationError) as info:
        evidence_attach(actor=as_officer, violation=violation, upload=io.BytesIO(b"x" * 1001), name="a.txt")
    assert (info.value.field, info.value.code) == ("file", "too_large")
    assert not Evidence.objects.exists()
    assert _actions() == ["violation.recorded"]
    assert not default_storage.exists("evidence")


@pytest.mark.parametrize(
    ("data", "name", "ctype", "code"),
    [
        (b"", "a.txt", "text/plain", "empty"),
        (b"MZ...", "tool.exe", "application/x-msdownload", "content_type"),
    ],
)
def test_bad_evidence_is_refused(as_officer, data, name, ctype, code):
    violation = _record(as_officer)
    with pytest.raises(ApplicationError) as info:
        evidence_attach(
            actor=as_officer, violation=violation, upload=io.BytesIO(data), name=name, content_type=ctype
        )
    assert info.value.code == code
    assert not Evidence.objects.exists()


def test_the_same_file_is_attached_once_per_violation(as_officer):
    first, second = _record(as_officer), _record(as_officer)
    evidence_attach(actor=as_officer, violation=first, upload=io.BytesIO(b"same bytes"), name="a.txt")
    with pytest.raises(ApplicationError) as info:
        evidence_attach(actor=as_officer, violation=first, upload=io.BytesIO(b"same bytes"), name="b.txt")
    assert info.value.code == "duplicate"
    evidence_attach(actor=as_officer, violation=second, upload=io.BytesIO(b"same bytes"), name="c.txt")
    assert Evidence.objects.count() == 2
    assert _actions().count("evidence.attached") == 2


def test_no_evidence_on_a_rejected_violation(as_officer):
    violation = violation_reject(actor=as_officer, violation=_record(as_officer), note="不成立")
    with pytest.raises(ApplicationError) as info:
        evidence_attach(actor=as_officer, violation=violation, upload=io.BytesIO(b"x"), name="a.txt")
    assert info.value.code == "closed"


def test_a_platform_attaches_evidence_only_to_its_own_reports():
    jd, taobao = factories.PlatformFactory(code="jd"), factories.PlatformFactory(code="taobao")
    report = _record(Actor.for_apikey("k1", platform=jd))
    with pytest.raises(PermissionDenied):
        evidence_attach(
            actor=Actor.for_apikey("k2", platform=taobao),
            violation=report,
            upload=io.BytesIO(b"x"),
            name="a.txt",
        )
    evidence = evidence_attach(
        actor=Actor.for_apikey("k1", platform=jd), violation=report, upload=io.BytesIO(b"x"), name="a.txt"
    )
    assert evidence.uploaded_via == jd
