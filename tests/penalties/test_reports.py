from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from creditledger.exceptions import ApplicationError
from creditledger.ledger.actors import Actor
from creditledger.ledger.models import LedgerEntry
from penalties.models import Evidence, Violation, ViolationType
from penalties.services import report_submit
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_jd():
    return Actor.for_apikey("jd1", platform=factories.PlatformFactory(code="jd"))


def _submit(actor, files=(), **overrides):
    arguments = {
        "trader": factories.TraderFactory(),
        "type": ViolationType.objects.get(code="substandard-goods"),
        "occurred_on": timezone.localdate() - dt.timedelta(days=1),
        "description": "抽检不合格",
    }
    arguments.update(overrides)
    return report_submit(actor=actor, files=list(files), **arguments)


def _pdf(name: str, data: bytes):
    return SimpleUploadedFile(name, data, content_type="application/pdf")


def test_a_report_and_its_evidence_are_recorded_together(as_jd):
    violation = _submit(as_jd, [_pdf("a.pdf", b"%PDF one"), _pdf("b.pdf", b"%PDF two")])
    assert (violation.status, violation.source, violation.reporting_platform.code) == (
        "pending",
        "platform_report",
        "jd",
    )
    assert sorted(violation.evidence.values_list("original_name", flat=True)) == ["a.pdf", "b.pdf"]
    assert LedgerEntry.objects.count() == 3


@pytest.mark.parametrize(
    ("second", "code"),
    [
        (_pdf("big.pdf", b"x" * 101), "too_large"),
        (_pdf("empty.pdf", b""), "empty"),
        (io.BytesIO(b"MZ"), "content_type"),  # no name, no type: application/octet-stream
        (_pdf("again.pdf", b"%PDF one"), "duplicate"),
    ],
)
def test_one_bad_file_records_nothing_at_all(as_jd, settings, second, code):
    settings.EVIDENCE_MAX_BYTES = 100
    with pytest.raises(ApplicationError) as info:
        _submit(as_jd, [_pdf("a.pdf", b"%PDF one"), second])
    assert (info.value.field, info.value.code) == ("files.1", code)
    assert not Violation.objects.exists()
    assert not Evidence.objects.exists()
    assert not LedgerEntry.objects.exists()
    assert not default_storage.exists("evidence")


def test_a_report_needs_a_reporting_platform(as_officer):
    with pytest.raises(ApplicationError) as info:
        _submit(as_officer)
    assert info.value.field == "reporting_platform"
    assert not Violation.objects.exists()
