"""Idempotency-Key on the platform API's POSTs: a retry gets the stored answer, never a
second write; the same key on another request is refused."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from creditledger.api import idempotency, views_write
from creditledger.api.models import IdempotencyRecord
from creditledger.ledger.models import LedgerEntry
from penalties.models import Evidence, Restriction, RestrictionAck, Violation
from tests import factories

URL = "/api/v1/reports/"


@pytest.fixture
def client(make_api_client):
    return make_api_client("taobao", ["reports:write"])


@pytest.fixture
def trader(client):
    return factories.ShopFactory(platform=client.platform).trader


def _body(trader, **overrides) -> dict:
    body = {
        "trader": trader.uscc,
        "type": "false-advertising",
        "occurred_on": (timezone.localdate() - dt.timedelta(days=1)).isoformat(),
        "description": "详情页宣称“治愈率100%”",
    }
    body.update(overrides)
    return body


def _post(client, body, key, fmt="json"):
    return client.post(URL, body, format=fmt, HTTP_IDEMPOTENCY_KEY=key)


def _written() -> tuple[int, int, int, int]:
    return (
        Violation.objects.count(),
        Evidence.objects.count(),
        LedgerEntry.objects.count(),
        IdempotencyRecord.objects.count(),
    )


@pytest.mark.django_db
def test_a_retry_gets_the_stored_response_and_writes_nothing(client, trader):
    first = _post(client, _body(trader), "order-42-report")
    assert first.status_code == 201
    written = _written()
    assert written == (1, 0, 1, 1)

    again = _post(client, _body(trader), "order-42-report")

    assert again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert again["Location"] == first["Location"]
    assert "Idempotent-Replayed" not in first
    assert _written() == written


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_a_422(client, trader):
    _post(client, _body(trader), "k1")
    written = _written()
    response = _post(client, _body(trader, description="另一件事"), "k1")
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "idempotency_key_reused"
    assert "Idempotency-Key" in body["fields"]
    assert _written() == written


@pytest.mark.django_db
def test_the_same_key_on_another_endpoint_is_a_422(client, trader):
    _post(client, _body(trader), "k1")
    r = Restriction.objects.create(
        trader=trader,
        measure="warning",
        state="active",
        basis="manual",
        reasons={},
        noticed_at=timezone.now() - dt.timedelta(days=2),
        starts_at=timezone.now() - dt.timedelta(days=1),
    )
    response = client.post(
        f"/api/v1/restrictions/{r.pk}/ack",
        {"enforced_at": timezone.now().isoformat()},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k1",
    )
    assert response.status_code == 422
    assert not RestrictionAck.objects.exists()


@pytest.mark.django_db
def test_key_order_and_whitespace_do_not_make_another_request(client, trader):
    body = _body(trader)
    compact = json.dumps(body, separators=(",", ":"))
    spaced = json.dumps(dict(reversed(list(body.items()))), indent=4, ensure_ascii=False)
    first = client.post(URL, compact, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")
    again = client.post(URL, spaced, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true"
    assert Violation.objects.count() == 1


@pytest.mark.django_db
def test_files_count_by_their_content(client, trader):
    def multipart(data: bytes) -> dict:
        return {**_body(trader), "files": [SimpleUploadedFile("a.pdf", data, content_type="application/pdf")]}

    assert _post(client, multipart(b"%PDF one"), "k", fmt="multipart").status_code == 201
    replay = _post(client, multipart(b"%PDF one"), "k", fmt="multipart")
    assert (replay.status_code, replay["Idempotent-Replayed"]) == (201, "true")
    assert _post(client, multipart(b"%PDF two"), "k", fmt="multipart").status_code == 422
    assert _written() == (1, 1, 2, 1)


@pytest.mark.django_db
def test_a_refused_request_stores_nothing_so_a_corrected_retry_goes_through(client, trader):
    tomorrow = (timezone.localdate() + dt.timedelta(days=1)).isoformat()
    assert _post(client, _body(trader, occurred_on=tomorrow), "k").status_code == 400
    assert _written() == (0, 0, 0, 0)
    assert _post(client, _body(trader), "k").status_code == 201
    assert _written() == (1, 0, 1, 1)


@pytest.mark.django_db
def test_keys_are_per_platform(client, trader, make_api_client):
    jd = make_api_client("jd", ["reports:write"])
    assert _post(client, _body(trader), "shared-key").status_code == 201
    response = _post(jd, _body(trader), "shared-key")
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert Violation.objects.filter(reporting_platform=jd.platform).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["x" * 201, "clé-non-ascii"])
def test_an_unusable_key_is_refused(client, trader, key):
    response = client.post(
        URL, _body(trader), format="json", HTTP_IDEMPOTENCY_KEY=key.encode().decode("latin-1")
    )
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["fields"]
    assert _written() == (0, 0, 0, 0)


@pytest.mark.django_db
def test_the_loser_of_a_race_answers_with_the_winners_response(client, trader, monkeypatch):
    first = _post(client, _body(trader), "k")
    # As if the winner committed between the loser's look-up and its claim.
    monkeypatch.setattr(idempotency, "_stored", lambda platform, key: None)
    again = _post(client, _body(trader), "k")
    assert (again.status_code, again.json()) == (201, first.json())
    assert again["Idempotent-Replayed"] == "true"
    assert _post(client, _body(trader, description="别的"), "k").status_code == 422
    assert _written() == (1, 0, 1, 1)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_duplicates_write_once(make_api_client, monkeypatch):
    client = make_api_client("taobao", ["reports:write"])
    trader = factories.ShopFactory(platform=client.platform).trader
    body = _body(trader)
    start = threading.Barrier(4)
    responses = []
    slow_submit = views_write.report_submit

    def submit(**kwargs):
        time.sleep(0.3)  # every request is past its look-up before the first one commits
        return slow_submit(**kwargs)

    monkeypatch.setattr(views_write, "report_submit", submit)

    def send():
        try:
            start.wait()
            responses.append(_post(client, body, "same-key"))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [r.status_code for r in responses] == [201] * 4
    assert len({json.dumps(r.json(), sort_keys=True) for r in responses}) == 1
    assert sum(r.has_header("Idempotent-Replayed") for r in responses) == 3
    assert _written() == (1, 0, 1, 1)


@pytest.mark.django_db
def test_an_acknowledgement_may_carry_a_key(make_api_client):
    client = make_api_client("taobao", ["reports:write"])
    trader = factories.ShopFactory(platform=client.platform).trader
    r = Restriction.objects.create(
        trader=trader,
        measure="warning",
        state="active",
        basis="manual",
        reasons={},
        noticed_at=timezone.now() - dt.timedelta(days=2),
        starts_at=timezone.now() - dt.timedelta(days=1),
    )
    url = f"/api/v1/restrictions/{r.pk}/ack"
    enforced = (timezone.now() - dt.timedelta(hours=1)).isoformat()
    first = client.post(url, {"enforced_at": enforced}, format="json", HTTP_IDEMPOTENCY_KEY="ack-1")
    again = client.post(url, {"enforced_at": enforced}, format="json", HTTP_IDEMPOTENCY_KEY="ack-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true"
    # Without a key the repeat is answered from the ack itself.
    plain = client.post(url, {"enforced_at": enforced}, format="json")
    assert (plain.status_code, plain.json()["id"]) == (200, first.json()["id"])
    assert LedgerEntry.objects.count() == 1


def test_old_stored_answers_are_purged(platform_client, settings):
    from creditledger.api.tasks import idempotency_purge

    settings.IDEMPOTENCY_KEEP_DAYS = 7
    common = {
        "platform": platform_client.platform,
        "method": "POST",
        "path": "/api/v1/reports/",
        "request_hash": "0" * 64,
        "status_code": 201,
        "response_body": {},
    }
    old = IdempotencyRecord.objects.create(key="old", **common)
    fresh = IdempotencyRecord.objects.create(key="fresh", **common)
    IdempotencyRecord.objects.filter(pk=old.pk).update(created_at=timezone.now() - timezone.timedelta(days=8))
    assert idempotency_purge() == 1
    assert list(IdempotencyRecord.objects.values_list("pk", flat=True)) == [fresh.pk]
