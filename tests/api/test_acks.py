"""POST /api/v1/restrictions/{id}/ack: a platform declares it enforced a measure."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from creditledger.ledger.models import LedgerEntry
from penalties.models import Restriction, RestrictionAck
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(make_api_client):
    return make_api_client("taobao", ["reports:write"])


@pytest.fixture
def measure(client) -> Restriction:
    shop = factories.ShopFactory(platform=client.platform)
    return _measure(shop.trader)


def _measure(trader, state="active", **fields) -> Restriction:
    now = timezone.now()
    values = {
        "measure": "suspended",
        "basis": "rule",
        "rule_code": "counterfeit-3-in-365",
        "reasons": {"basis": "rule", "rule": "counterfeit-3-in-365", "violations": []},
        "noticed_at": now - dt.timedelta(days=10),
        "starts_at": now - dt.timedelta(days=3) if state == "active" else None,
        "duration_days": 90,
    }
    if state == "proposed":
        values["objection_deadline"] = now + dt.timedelta(days=5)
    values.update(fields)
    return Restriction.objects.create(trader=trader, state=state, **values)


def _ack(client, restriction_id, enforced_at=None, **body):
    enforced_at = enforced_at or (timezone.now() - dt.timedelta(days=2)).isoformat()
    return client.post(
        f"/api/v1/restrictions/{restriction_id}/ack", {"enforced_at": enforced_at, **body}, format="json"
    )


def _error(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) >= {"code", "message", "fields"}
    if field:
        assert field in body["fields"], body
    return body


def _nothing_written():
    assert not RestrictionAck.objects.exists()
    assert not LedgerEntry.objects.exists()


def test_it_records_the_acknowledgement(client, measure):
    enforced_at = (timezone.now() - dt.timedelta(days=2)).replace(microsecond=0)
    response = _ack(client, measure.pk, enforced_at.isoformat(), note="店铺已暂停营业")

    assert response.status_code == 201, response.content
    body = response.json()
    ack = RestrictionAck.objects.get()
    assert body["id"] == ack.pk
    assert (body["restriction"], body["trader"], body["measure"], body["platform"]) == (
        measure.pk,
        measure.trader.uscc,
        "suspended",
        "taobao",
    )
    assert (ack.enforced_at, ack.note) == (enforced_at, "店铺已暂停营业")
    entry = LedgerEntry.objects.get()
    assert (entry.action, entry.actor) == ("restriction.acknowledged", f"apikey:{client.api_key.prefix}")


def test_a_repeat_answers_200_with_the_same_ack(client, measure):
    enforced_at = (timezone.now() - dt.timedelta(days=1)).isoformat()
    first = _ack(client, measure.pk, enforced_at)
    again = _ack(client, measure.pk, enforced_at)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert LedgerEntry.objects.count() == 1


def test_another_enforcement_time_is_refused(client, measure):
    _ack(client, measure.pk)
    body = _error(
        _ack(client, measure.pk, (timezone.now() - dt.timedelta(hours=1)).isoformat()), 400, "enforced_at"
    )
    assert body["code"] == "already_acknowledged"
    assert RestrictionAck.objects.count() == LedgerEntry.objects.count() == 1


def test_a_platform_cannot_acknowledge_for_another_platforms_trader(client):
    theirs = factories.ShopFactory(platform=factories.PlatformFactory(code="jd"))
    body = _error(_ack(client, _measure(theirs.trader).pk), 403, "restriction")
    assert body["code"] == "permission_denied"
    _nothing_written()


def test_an_unknown_measure_is_a_404(client):
    _error(_ack(client, 987654), 404)


@pytest.mark.parametrize(
    ("enforced_at", "code"),
    [
        ((dt.timedelta(days=1)), "future"),
        ((-dt.timedelta(days=30)), "before_notice"),
    ],
)
def test_the_enforcement_time_must_be_plausible(client, measure, enforced_at, code):
    body = _error(_ack(client, measure.pk, (timezone.now() + enforced_at).isoformat()), 400, "enforced_at")
    assert body["code"] == code
    _nothing_written()


@pytest.mark.parametrize("body", [{"enforced_at": "yesterday"}, {"enforced_at": ""}, {}])
def test_a_missing_or_malformed_time_is_a_400(client, measure, body):
    response = client.post(f"/api/v1/restrictions/{measure.pk}/ack", body, format="json")
    _error(response, 400, "enforced_at")
    _nothing_written()


def test_a_proposed_measure_is_not_yet_acknowledged(client):
    shop = factories.ShopFactory(platform=client.platform)
    body = _error(_ack(client, _measure(shop.trader, "proposed").pk), 400, "restriction")
    assert body["code"] == "not_in_force"
    _nothing_written()


def test_malformed_json_and_wrong_content_type(client, measure):
    url = f"/api/v1/restrictions/{measure.pk}/ack"
    assert _error(client.post(url, "{", content_type="application/json"), 400)["code"] == "parse_error"
    _error(client.post(url, "enforced_at=now", content_type="application/x-www-form-urlencoded"), 415)
    _nothing_written()


@pytest.mark.parametrize("scopes", [["status:read"], ["shops:write"]])
def test_it_needs_the_reports_write_scope(make_api_client, scopes):
    other = make_api_client("taobao", scopes)
    shop = factories.ShopFactory(platform=other.platform)
    _error(_ack(other, _measure(shop.trader).pk), 403)
    _nothing_written()


def test_a_revoked_key_is_a_401(client, measure):
    client.api_key.revoked = True
    client.api_key.save()
    _error(_ack(client, measure.pk), 401)
    _nothing_written()


def test_an_id_beyond_the_integer_range_is_a_404(client):
    _error(_ack(client, 10**20), 404)
    _error(client.get(f"/api/v1/reports/{10**20}"), 404)
