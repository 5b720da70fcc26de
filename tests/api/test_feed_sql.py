"""The change feed as PostgreSQL renders it equals what serializers_read.feed_entry_data
(and so FeedEntrySerializer, the documented contract) gives, entry by entry."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo

import pytest
from django.db import connection
from django.utils import timezone

from creditledger.api import feed_sql, selectors, serializers_read
from creditledger.ledger.actors import Actor
from creditledger.ledger.services import Entry, ledger_append_many
from tests import factories

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")
CODE = "91350100M000100Y43"


def _history(own: str, other: str) -> None:
    ledger_append_many(
        actor=SYSTEM,
        entries=[
            Entry("trader.registered", "trader", "1", CODE, {"uscc": CODE, "name": '示例\u2028"引号"\\'}),
            Entry("shop.registered", "shop", "1", CODE, {"platform": own, "platform_shop_id": "tb-1"}),
            Entry("shop.registered", "shop", "2", CODE, {"platform": other, "platform_shop_id": "jd-1"}),
            Entry("shop.registered", "shop", "3", CODE, {"platform_shop_id": "no-platform"}),  # fails closed
            Entry("violation.recorded", "violation", "9", CODE, {"violation": 9}),  # not a status entry
            Entry(
                "violation.confirmed",
                "violation",
                "9",
                CODE,
                {"violation": 9, "decided_by": 4, "note": "内部意见", "status": "confirmed"},
            ),
            Entry("score.changed", "trader", "1", CODE, {"score": 940, "recorded_by": 2, "version": 2}),
            Entry("restriction.applied", "restriction", "5", CODE, {"check_override": "x", "note": "kept"}),
            Entry("policy.activated", "policy", "3", "", {"version": 3, "goods_value": "12.50"}),
        ],
    )


def _format_times(values: list) -> list[str]:
    """The feed statement's time expression (AT_TEXT over LOCAL_TIME) over these datetimes."""
    at = feed_sql.LOCAL_TIME.format(at="v.at")
    sql = f"SELECT {feed_sql.AT_TEXT} FROM unnest(%(values)s::timestamptz[]) AS v(at) {at}"
    with connection.cursor() as cursor:
        cursor.execute(sql, {"values": values, "tz": timezone.get_current_timezone_name()})
        return [text for (text,) in cursor.fetchall()]


def _python_page(platform, after: int, limit: int) -> list[dict]:
    entries, _more = selectors.feed(after=after, limit=limit)
    return [serializers_read.feed_entry_data(entry, platform) for entry in entries]


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "UTC", "America/St_Johns"])
def test_each_entry_is_rendered_as_the_python_renderer_does(zone):
    taobao = factories.PlatformFactory(code="taobao")
    factories.PlatformFactory(code="jd")
    _history("taobao", "jd")
    with timezone.override(zoneinfo.ZoneInfo(zone)):
        seqs, texts, more = feed_sql.feed_page(db="default", after=0, limit=100, platform_code="taobao")
        expected = _python_page(taobao, after=0, limit=100)
    assert [json.loads(text) for text in texts] == expected
    assert seqs == [entry["seq"] for entry in expected] and more is False
    by_action = [(e["action"], e["payload_withheld"], e["payload_redacted"]) for e in expected]
    assert ("shop.registered", True, []) in by_action and ("shop.registered", False, []) in by_action
    assert ("violation.confirmed", False, ["decided_by", "note"]) in by_action
    assert ("restriction.applied", False, ["check_override"]) in by_action  # its note is not internal


def test_pages_and_has_more_match():
    taobao = factories.PlatformFactory(code="taobao")
    _history("taobao", "jd")
    after, seen = 0, []
    while True:
        seqs, texts, more = feed_sql.feed_page(db="default", after=after, limit=3, platform_code="taobao")
        assert [json.loads(t) for t in texts] == _python_page(taobao, after=after, limit=3)
        seen += seqs
        if not more:
            break
        after = seqs[-1]
    assert seen == [e["seq"] for e in _python_page(taobao, after=0, limit=100)]
    body = json.loads(feed_sql.page_bytes(texts, next_seq=seqs[-1], has_more=False))
    assert set(body) == {"entries", "next", "has_more"}


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "UTC", "America/St_Johns", "Asia/Kathmandu"])
def test_times_are_written_as_drf_writes_them(zone):
    values = [
        dt.datetime(2026, 11, 14, 2, 2, 11, 204881, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 14, 2, 2, 11, tzinfo=dt.UTC),  # no microseconds: none written
        dt.datetime(2026, 7, 1, 23, 59, 59, 1, tzinfo=dt.UTC),  # summer time where there is one
        dt.datetime(1999, 12, 31, 16, 0, tzinfo=dt.UTC),
    ]
    with timezone.override(zoneinfo.ZoneInfo(zone)):
        assert _format_times(values) == [serializers_read._when(v) for v in values]


def test_the_view_serves_the_sql_page(platform_client):
    _history(platform_client.platform.code, "jd")
    response = platform_client.get("/api/v1/changes/", {"limit": 4})
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    body = response.json()
    assert body["entries"] == _python_page(platform_client.platform, after=0, limit=4)
    assert body["has_more"] is True and body["next"] == body["entries"][-1]["seq"]
    assert "RateLimit" in response
