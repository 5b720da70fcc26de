"""What the API refuses in otherwise well-formed input: invisible controls in names and
descriptions, dates outside what can be penalised, times without an offset, evidence whose
content is not the type it claims, and a path's trailing slash either way."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from creditledger import text
from creditledger.api import errors, urls_read, urls_write
from creditledger.exceptions import ApplicationError
from creditledger.ledger.models import LedgerEntry
from penalties import evidence_types
from penalties.models import Evidence, Restriction, Violation
from penalties.services.violations import earliest_occurrence
from tests import factories
from traders.models import Shop

pytestmark = pytest.mark.django_db

# Smallest real files of each kind: the signatures filetype reads.
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489") + b"\0" * 64
PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\0" * 48 + b"PE\0\0" + b"\0" * 64
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\0" * 120


@pytest.fixture
def client(make_api_client):
    return make_api_client("taobao", ["reports:write", "shops:write", "status:read"])


@pytest.fixture
def shop(client) -> Shop:
    return factories.ShopFactory(platform=client.platform)


def _report(client, shop, key: str, files=(), **overrides):
    body = {
        "shop": shop.platform_shop_id,
        "type": "false-advertising",
        "occurred_on": (timezone.localdate() - dt.timedelta(days=1)).isoformat(),
        "description": "详情页宣称“治愈率100%”",
    } | overrides
    if files:
        return client.post(
            "/api/v1/reports/", {**body, "files": list(files)}, format="multipart", HTTP_IDEMPOTENCY_KEY=key
        )
    return client.post("/api/v1/reports/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def _refused(response, field: str, code: str) -> dict:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == code and field in body["fields"], body
    return body


def _counts() -> tuple[int, int, int]:
    return Violation.objects.count(), Evidence.objects.count(), LedgerEntry.objects.count()


# --- invisible characters ------------------------------------------------------------------


@pytest.mark.parametrize("char", ["\u202e", "\u2066", "\u200f", "\x07", "\x1b"])
def test_a_description_with_a_bidi_or_control_character_is_refused_naming_it(client, shop, char):
    before = _counts()
    body = _refused(
        _report(client, shop, "k1", description=f"假冒{char}商品"), "description", "control_character"
    )
    assert f"U+{ord(char):04X}" in body["message"] and "position 3" in body["message"]
    assert _counts() == before


def test_line_breaks_and_tabs_are_kept_in_a_description(client, shop):
    response = _report(client, shop, "k1", description="第一行\n第二行\t备注")
    assert response.status_code == 201, response.content
    assert Violation.objects.get().description == "第一行\n第二行\t备注"


def test_a_shop_name_with_a_right_to_left_override_is_refused(client, shop):
    item = {"platform_shop_id": "tb-9", "trader_uscc": shop.trader.uscc, "shop_name": "旗舰店\u202egpj.exe"}
    before = (Shop.objects.count(), LedgerEntry.objects.count())
    response = client.put("/api/v1/shops/", {"items": [item]}, format="json")
    assert response.status_code == 400, response.content
    assert "U+202E" in response.json()["fields"]["items.0.shop_name"][0]
    assert (Shop.objects.count(), LedgerEntry.objects.count()) == before


def test_a_name_is_one_line():
    with pytest.raises(ApplicationError) as caught:
        text.check_text("旗舰店\n第二行", field="name")
    assert (caught.value.field, caught.value.code, caught.value.value) == (
        "name",
        "control_character",
        "U+000A at 4",
    )
    assert text.check_text("旗舰店 ZWJ 👩‍👩‍👧", field="name")  # joiners in emoji are text, not controls


# --- dates and times -----------------------------------------------------------------------


def test_an_occurrence_older_than_can_be_penalised_is_refused(client, shop, settings):
    earliest = earliest_occurrence(timezone.localdate())
    assert earliest.year == timezone.localdate().year - settings.VIOLATION_MAX_AGE_YEARS
    before = _counts()
    for key, day in (("k1", "0001-01-01"), ("k2", (earliest - dt.timedelta(days=1)).isoformat())):
        body = _refused(_report(client, shop, key, occurred_on=day), "occurred_on", "too_old")
        assert earliest.isoformat() in body["message"]
    assert _counts() == before
    assert _report(client, shop, "k3", occurred_on=earliest.isoformat()).status_code == 201


def test_the_earliest_occurrence_on_29_february_falls_back_to_the_28th(settings):
    settings.VIOLATION_MAX_AGE_YEARS = 1
    assert earliest_occurrence(dt.date(2028, 2, 29)) == dt.date(2027, 2, 28)


def _measure(trader) -> Restriction:
    now = timezone.now()
    return Restriction.objects.create(
        trader=trader,
        state="active",
        measure="suspended",
        basis="rule",
        rule_code="counterfeit-3-in-365",
        reasons={"basis": "rule", "rule": "counterfeit-3-in-365", "violations": []},
        noticed_at=now - dt.timedelta(days=10),
        starts_at=now - dt.timedelta(days=3),
        duration_days=90,
    )


def test_enforced_at_without_an_offset_is_refused(client, shop):
    measure = _measure(shop.trader)
    when = (timezone.now() - dt.timedelta(days=2)).replace(microsecond=0)
    naive = when.astimezone(dt.UTC).replace(tzinfo=None).isoformat()
    response = client.post(f"/api/v1/restrictions/{measure.pk}/ack", {"enforced_at": naive}, format="json")
    body = _refused(response, "enforced_at", "offset_required")
    assert "offset" in body["fields"]["enforced_at"][0]
    assert not LedgerEntry.objects.filter(action="restriction.acknowledged").exists()
    response = client.post(
        f"/api/v1/restrictions/{measure.pk}/ack", {"enforced_at": naive + "Z"}, format="json"
    )
    assert response.status_code == 201, response.content


# --- evidence types from content -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "declared", "found"),
    [
        ("photo.png", HTML, "image/png", "text/plain"),
        ("invoice.pdf", EXE, "application/pdf", "application/x-msdownload"),
        ("scan.pdf", ELF, "application/pdf", "application/x-executable"),
        ("notes.txt", PNG, "text/plain", "image/png"),
    ],
)
def test_evidence_whose_content_is_not_its_type_is_refused(client, shop, name, content, declared, found):
    before = _counts()
    upload = SimpleUploadedFile(name, content, content_type=declared)
    body = _refused(_report(client, shop, "k1", files=[upload]), "files.0", "content_mismatch")
    assert declared in body["message"]
    assert _counts() == before
    with pytest.raises(ApplicationError) as caught:
        evidence_types.check_content(content, declared)
    assert caught.value.value == found


def test_evidence_of_its_declared_type_is_kept_with_that_type(client, shop):
    files = [
        SimpleUploadedFile("photo.png", PNG, content_type="image/png"),
        SimpleUploadedFile("invoice.pdf", PDF, content_type="application/pdf"),
        SimpleUploadedFile(
            "笔录.txt", "询问笔录：商家承认销售假冒商品。\n".encode("gb18030"), content_type="text/plain"
        ),
    ]
    response = _report(client, shop, "k1", files=files)
    assert response.status_code == 201, response.content
    assert sorted(Evidence.objects.values_list("content_type", flat=True)) == [
        "application/pdf",
        "image/png",
        "text/plain",
    ]


def test_a_text_cut_inside_a_character_at_the_head_is_still_text():
    head = ("证据" * 3000).encode("utf-8")[: evidence_types.HEAD_BYTES]
    assert len(head) == evidence_types.HEAD_BYTES and head[-1] >= 0x80
    assert evidence_types.sniff(head) == "text/plain"
    assert evidence_types.sniff(io.BytesIO(b"a\x00b").read()) is None


# --- trailing slashes ----------------------------------------------------------------------


def _api_routes() -> list[str]:
    """Every /api/v1/ path the URLconf serves, with sample arguments."""
    samples = {"<str:uscc>": "91350100M000100Y43", "<int:pk>": "1"}
    paths = []
    for module in (urls_read, urls_write):
        for pattern in module.urlpatterns:
            route = str(pattern.pattern)
            for placeholder, value in samples.items():
                route = route.replace(placeholder, value)
            assert "<" not in route, route
            paths.append(f"/api/v1/{route}")
    return paths


def test_every_path_answers_the_same_with_or_without_its_trailing_slash(client):
    routes = _api_routes()
    assert len(routes) >= 10
    for route in routes:
        other = route[:-1] if route.endswith("/") else route + "/"
        first, second = client.get(route), client.get(other)
        assert first.status_code == second.status_code, (route, first.content, second.content)
        assert first.json() == second.json(), route
        assert first.json().get("message") != errors._MESSAGES[404][1], route  # the endpoint exists


def test_a_post_reaches_its_endpoint_without_a_redirect_either_way(client, shop):
    for path in ("/api/v1/traders/lookup", "/api/v1/traders/lookup/"):
        response = client.post(path, {"codes": [shop.trader.uscc]}, format="json")
        assert response.status_code == 200, (path, response.content)
        assert response.json()["results"][0]["result"] == "found"
    body = {
        "shop": shop.platform_shop_id,
        "type": "false-advertising",
        "occurred_on": timezone.localdate().isoformat(),
        "description": "无照经营",
    }
    response = client.post("/api/v1/reports", body, format="json", HTTP_IDEMPOTENCY_KEY="k-slash")
    assert response.status_code == 201, response.content


def test_a_path_that_exists_in_neither_form_stays_a_404(client):
    assert client.get("/api/v1/nope").status_code == 404
    assert client.get("/api/v1/nope/").status_code == 404
