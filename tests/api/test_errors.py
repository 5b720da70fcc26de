"""Every answer under /api/ is JSON in the one error shape: paths no view matches, bodies too
large or with too many files, malformed JSON, a cursor past the head, and a database that
went away mid-request."""

from __future__ import annotations

import datetime as dt
import json

import psycopg2
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from creditledger.api import parsers
from creditledger.ledger.models import LedgerEntry
from penalties.models import Violation
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def reporter(make_api_client):
    return make_api_client("taobao", ["reports:write", "status:read"])


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code and body["message"] and isinstance(body["fields"], dict)
    return body


def _post_json(client, path: str, body, **extra):
    return client.post(path, body, content_type="application/json", **extra)


def _report(trader, **overrides) -> dict:
    body = {
        "trader": trader.uscc,
        "type": "false-advertising",
        "occurred_on": (timezone.localdate() - dt.timedelta(days=1)).isoformat(),
        "description": "详情页宣称“治愈率100%”",
    }
    return body | overrides


@pytest.mark.parametrize("path", ["/api/v1/nope/", "/api/v1/traders/91350100M000100Y43/nope", "/api/v2/"])
def test_a_path_no_view_matches_is_a_json_404(reporter, path):
    _error(reporter.get(path), 404, "not_found")


def test_a_json_404_keeps_the_request_id(reporter):
    response = reporter.get("/api/v1/nope/", HTTP_X_REQUEST_ID="abcdef0123456789")
    _error(response, 404, "not_found")
    assert response["X-Request-ID"] == "abcdef0123456789"


def test_deeply_nested_json_is_a_400_not_a_recursion_error(reporter):
    deep = b'{"codes": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = reporter.post("/api/v1/traders/lookup", deep, content_type="application/json")
    body = _error(response, 400, "parse_error")
    assert "depth" in body["message"] or "nested" in body["message"]


def test_nesting_beyond_the_parsers_bound_is_refused_naming_it(reporter):
    at_bound = "[" * (parsers.MAX_DEPTH - 1) + "]" * (parsers.MAX_DEPTH - 1)  # with the object: MAX_DEPTH
    response = _post_json(reporter, "/api/v1/traders/lookup", f'{{"codes": {at_bound}}}')
    assert "nested deeper" not in response.content.decode()  # parsed; the serializer judges it
    nested = "[" * (parsers.MAX_DEPTH + 1) + "]" * (parsers.MAX_DEPTH + 1)
    response = _post_json(reporter, "/api/v1/traders/lookup", f'{{"codes": {nested}}}')
    assert f"nested deeper than {parsers.MAX_DEPTH} levels" in _error(response, 400, "parse_error")["message"]


def test_a_lone_surrogate_with_an_idempotency_key_is_a_400_and_writes_nothing(reporter):
    trader = factories.ShopFactory(platform=reporter.platform).trader
    raw = json.dumps(_report(trader, description="\ud800 fake")).encode("ascii")  # json.dumps escapes it
    assert b"\\ud800" in raw
    before = (Violation.objects.count(), LedgerEntry.objects.count())
    response = _post_json(reporter, "/api/v1/reports/", raw, HTTP_IDEMPOTENCY_KEY="k-1")
    assert "surrogate" in _error(response, 400, "parse_error")["message"]
    assert (Violation.objects.count(), LedgerEntry.objects.count()) == before


def test_a_body_over_the_limit_is_refused_from_its_content_length_before_it_is_read(reporter, settings):
    # The test client's payload holds 2 bytes: reading the 2 GB it claims would fail, so a
    # 413 shows the body was never read.
    response = reporter.post(
        "/api/v1/traders/lookup", b"{}", content_type="application/json", CONTENT_LENGTH=str(2 * 1024**3)
    )
    body = _error(response, 413, "payload_too_large")
    assert body["limit"] == settings.API_MAX_BODY_BYTES
    response = reporter.post(
        "/api/v1/reports/",
        b"--x--",
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(2 * 1024**3),
    )
    assert _error(response, 413, "payload_too_large")["limit"] == settings.API_MAX_UPLOAD_BYTES


def test_a_body_under_the_limit_still_passes(reporter):
    response = reporter.post("/api/v1/traders/lookup", {"codes": ["91350100M000100Y43"]}, format="json")
    assert response.status_code == 200


@override_settings(DATA_UPLOAD_MAX_NUMBER_FILES=2)
def test_too_many_files_is_a_json_413_and_writes_nothing(reporter):
    trader = factories.ShopFactory(platform=reporter.platform).trader
    files = [SimpleUploadedFile(f"e{n}.txt", b"evidence", content_type="text/plain") for n in range(3)]
    before = (Violation.objects.count(), LedgerEntry.objects.count())
    response = reporter.post(
        "/api/v1/reports/",
        {**_report(trader), "files": files},
        format="multipart",
        HTTP_IDEMPOTENCY_KEY="k-2",
    )
    _error(response, 413, "too_many_parts")
    assert (Violation.objects.count(), LedgerEntry.objects.count()) == before


def test_a_method_the_path_does_not_take_is_a_json_405(reporter):
    _error(reporter.delete("/api/v1/changes/"), 405, "method_not_allowed")


def test_a_cursor_beyond_the_head_is_a_409_naming_the_head(reporter):
    head = LedgerEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    body = _error(reporter.get("/api/v1/changes/", {"after": head + 1000}), 409, "cursor_beyond_head")
    assert body["head"] == head and "after" in body["fields"]
    assert reporter.get("/api/v1/changes/", {"after": head}).status_code == 200  # at the head: empty page


@pytest.mark.django_db(transaction=True)
def test_a_request_whose_database_connection_died_is_a_json_503_with_retry_after(make_api_client):
    client = make_api_client("taobao", ["status:read"])
    connection.ensure_connection()
    pid = connection.connection.get_backend_pid()
    params = connection.get_connection_params()
    wanted = {"dbname", "user", "host", "port", "password"}
    killer = psycopg2.connect(**{k: v for k, v in params.items() if k in wanted})
    try:
        with killer.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        killer.close()
    try:
        response = client.get("/api/v1/traders/91350100M000100Y43")
    finally:
        connection.close()  # the dead connection: the next query opens a new one
    _error(response, 503, "unavailable")
    assert int(response["Retry-After"]) > 0
