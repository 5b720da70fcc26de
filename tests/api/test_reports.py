"""POST /api/v1/reports/ and GET /api/v1/reports/{id}: a platform's reports of suspected
violations, with evidence, and what became of them."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from creditledger.ledger.actors import Actor
from creditledger.ledger.models import LedgerEntry
from penalties.models import Evidence, Violation
from penalties.services import violation_confirm, violation_reject
from tests import factories

pytestmark = pytest.mark.django_db

URL = "/api/v1/reports/"
PDF = b"%PDF-1.4 test purchase record " * 100
JPEG = b"\xff\xd8\xff\xe0 photo of the goods " * 100


@pytest.fixture
def client(make_api_client):
    return make_api_client("taobao", ["reports:write"])


@pytest.fixture
def shop(client):
    return factories.ShopFactory(platform=client.platform, platform_shop_id="tb-1001")


def _body(of, **overrides) -> dict:
    body = {
        "trader": of.trader.uscc,
        "type": "counterfeit-goods",
        "occurred_on": (timezone.localdate() - dt.timedelta(days=2)).isoformat(),
        "description": "消费者投诉：商品与正品比对，商标、防伪标识不符",
        "goods_value": "1280.50",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def _post(client, data, *, key: str | None = "auto", fmt: str = "json", **extra):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": uuid.uuid4().hex if key == "auto" else key}
    return client.post(URL, data, format=fmt, **headers, **extra)


def _files(*pairs):
    return [SimpleUploadedFile(name, data, content_type=ctype) for name, data, ctype in pairs]


def _nothing_written():
    assert not Violation.objects.exists()
    assert not Evidence.objects.exists()
    assert not LedgerEntry.objects.exists()


def _error(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) >= {"code", "message", "fields"}
    if field is not None:
        assert field in body["fields"], body
    return body


# --- success --------------------------------------------------------------------------------


def test_a_json_report_enters_the_review_queue_as_pending(client, shop):
    response = _post(client, _body(shop))

    assert response.status_code == 201, response.content
    body = response.json()
    violation = Violation.objects.get()
    assert body["id"] == violation.pk
    assert (body["status"], body["trader"], body["type"], body["shop"]) == (
        "pending",
        shop.trader.uscc,
        "counterfeit-goods",
        None,
    )
    assert body["goods_value"] == "1280.50"
    assert body["links"] == {"self": f"/api/v1/reports/{violation.pk}"}
    assert response["Location"] == f"/api/v1/reports/{violation.pk}"
    assert (violation.source, violation.reporting_platform, violation.recorded_by) == (
        "platform_report",
        client.platform,
        None,
    )
    entry = LedgerEntry.objects.get()
    assert (entry.action, entry.actor) == ("violation.recorded", f"apikey:{client.api_key.prefix}")


def test_a_multipart_report_by_shop_id_carries_its_evidence(client, shop):
    data = _body(shop, trader=None, shop="tb-1001")
    data["files"] = _files(("购买记录.pdf", PDF, "application/pdf"), ("实物.jpg", JPEG, "image/jpeg"))
    response = _post(client, data, fmt="multipart")

    assert response.status_code == 201, response.content
    body = response.json()
    violation = Violation.objects.get()
    assert (violation.trader, violation.shop) == (shop.trader, shop)
    assert body["shop"] == "tb-1001"
    assert [(e["name"], e["sha256"], e["size"]) for e in body["evidence"]] == [
        ("购买记录.pdf", hashlib.sha256(PDF).hexdigest(), len(PDF)),
        ("实物.jpg", hashlib.sha256(JPEG).hexdigest(), len(JPEG)),
    ]
    assert all(e.uploaded_via == client.platform for e in Evidence.objects.all())
    assert list(LedgerEntry.objects.order_by("seq").values_list("action", flat=True)) == [
        "violation.recorded",
        "evidence.attached",
        "evidence.attached",
    ]


def test_trader_and_shop_together_must_agree(client, shop):
    response = _post(client, _body(shop, shop="tb-1001"))
    assert response.status_code == 201
    other = factories.ShopFactory(platform=client.platform, platform_shop_id="tb-2")
    response = _post(client, _body(shop, shop=other.platform_shop_id))
    _error(response, 400, "shop")
    assert Violation.objects.count() == 1


def test_a_platform_reads_what_became_of_its_report(client, shop, officer):
    report_id = _post(client, _body(shop, type="false-advertising")).json()["id"]
    assert client.get(f"{URL}{report_id}").json()["status"] == "pending"

    violation_confirm(actor=Actor.for_user(officer), violation=Violation.objects.get(), note="经核实属实")
    body = client.get(f"{URL}{report_id}").json()
    assert (body["status"], body["decision_note"]) == ("confirmed", "经核实属实")
    assert body["decided_at"] is not None


def test_a_rejected_report_says_why(client, shop, officer):
    report_id = _post(client, _body(shop, type="false-advertising")).json()["id"]
    violation_reject(actor=Actor.for_user(officer), violation=Violation.objects.get(), note="证据不足")
    body = client.get(f"{URL}{report_id}").json()
    assert (body["status"], body["decision_note"]) == ("rejected", "证据不足")


def test_a_platform_sees_only_its_own_reports(client, shop, make_api_client, as_officer):
    report_id = _post(client, _body(shop)).json()["id"]
    jd = make_api_client("jd", ["reports:write"])
    _error(jd.get(f"{URL}{report_id}"), 404)
    officers = factories.ViolationFactory(trader=shop.trader)  # not a report at all
    _error(client.get(f"{URL}{officers.pk}"), 404)
    _error(client.get(f"{URL}999999"), 404)


# --- bad input: the right status, a field message, nothing written --------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"trader": "91350100I000100Y43"}, "trader"),  # I is not allowed
        ({"trader": "91350100M000100Y43"}, "trader"),  # valid, not registered
        ({"trader": None}, "trader"),  # neither trader nor shop
        ({"trader": None, "shop": "no-such-shop"}, "shop"),
        ({"type": "no-such-type"}, "type"),
        ({"occurred_on": "2024-02-30"}, "occurred_on"),
        ({"description": ""}, "description"),
        ({"goods_value": "-1"}, "goods_value"),
        ({"goods_value": "12.345"}, "goods_value"),
    ],
)
def test_bad_input_is_refused_with_a_field_message(client, shop, overrides, field):
    _error(_post(client, _body(shop, **overrides)), 400, field)
    _nothing_written()


def test_a_future_date_is_refused(client, shop):
    tomorrow = (timezone.localdate() + dt.timedelta(days=1)).isoformat()
    body = _error(_post(client, _body(shop, occurred_on=tomorrow)), 400, "occurred_on")
    assert body["code"] == "future_date"
    _nothing_written()


def test_another_platforms_shop_is_unknown(client, shop):
    theirs = factories.ShopFactory(platform=factories.PlatformFactory(code="jd"), platform_shop_id="jd-1")
    _error(_post(client, _body(shop, trader=None, shop=theirs.platform_shop_id)), 400, "shop")
    _nothing_written()


def test_malformed_json_is_a_400(client):
    response = client.post(URL, data='{"trader": ', content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")
    body = _error(response, 400)
    assert body["code"] == "parse_error"
    _nothing_written()


def test_a_wrong_content_type_is_a_415(client):
    response = client.post(URL, data="trader=x", content_type="text/plain", HTTP_IDEMPOTENCY_KEY="k")
    assert _error(response, 415)["code"] == "unsupported_media_type"
    _nothing_written()


def test_oversized_evidence_records_nothing_at_all(client, shop, settings):
    settings.EVIDENCE_MAX_BYTES = 1000
    data = _body(shop)
    data["files"] = _files(
        ("a.pdf", b"%PDF small", "application/pdf"), ("b.pdf", b"x" * 1001, "application/pdf")
    )
    body = _error(_post(client, data, fmt="multipart"), 400, "files.1")
    assert body["code"] == "too_large"
    _nothing_written()
    assert not default_storage.exists("evidence")  # not even the good file


@pytest.mark.parametrize(
    ("name", "data", "ctype", "code"),
    [
        ("tool.exe", b"MZ\x90\x00", "application/x-msdownload", "content_type"),
        ("empty.pdf", b"", "application/pdf", "empty"),
    ],
)
def test_bad_evidence_records_nothing(client, shop, name, data, ctype, code):
    body = _body(shop)
    body["files"] = _files(("ok.pdf", PDF, "application/pdf"), (name, data, ctype))
    assert _error(_post(client, body, fmt="multipart"), 400, "files.1")["code"] == code
    _nothing_written()


def test_the_same_file_twice_is_refused(client, shop):
    body = _body(shop)
    body["files"] = _files(("a.pdf", PDF, "application/pdf"), ("b.pdf", PDF, "application/pdf"))
    assert _error(_post(client, body, fmt="multipart"), 400, "files.1")["code"] == "duplicate"
    _nothing_written()


def test_evidence_in_an_unknown_field_is_refused_not_dropped(client, shop):
    body = _body(shop)
    body["evidence"] = _files(("a.pdf", PDF, "application/pdf"))[0]
    _error(_post(client, body, fmt="multipart"), 400, "evidence")
    _nothing_written()


def test_the_idempotency_key_is_required(client, shop):
    body = _error(_post(client, _body(shop), key=None), 400, "Idempotency-Key")
    assert body["code"] == "required"
    _nothing_written()


# --- keys and scopes ----------------------------------------------------------------------


def test_a_revoked_key_is_a_401(client, shop):
    client.api_key.revoked = True
    client.api_key.save()
    _error(_post(client, _body(shop)), 401)
    _nothing_written()


def test_no_key_is_a_401(shop):
    from rest_framework.test import APIClient

    _error(_post(APIClient(), _body(shop)), 401)
    _nothing_written()


def test_a_key_without_the_scope_is_a_403(make_api_client):
    reader = make_api_client("taobao", ["status:read", "shops:write"])
    shop = factories.ShopFactory(platform=reader.platform)
    body = _error(_post(reader, _body(shop)), 403)
    assert "reports:write" in body["message"]
    _nothing_written()
    report = factories.ViolationFactory(source="platform_report", reporting_platform=reader.platform)
    _error(reader.get(f"{URL}{report.pk}"), 403)
