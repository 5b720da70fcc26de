"""Structured logs: each line carries the request id, the actor and the trader where known;
Celery task lines carry the task name and id."""

from __future__ import annotations

import io
import json
import logging

import pytest

from creditledger.ops import log_context
from creditledger.ops.logs import ContextFilter, JsonFormatter, PlainFormatter
from creditledger.ops.tasks import beat_tick
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def json_lines(settings):
    """What the production handler (JSON formatter, context filter) writes, line by line."""
    settings.LOG_REQUESTS = True
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def _access_line(lines: list[dict]) -> dict:
    (line,) = [line for line in lines if line["logger"] == "creditledger.request"]
    return line


def test_an_api_request_logs_its_request_id_key_and_trader_as_json(platform_client, json_lines):
    trader = factories.ShopFactory(platform=platform_client.platform).trader

    response = platform_client.get(f"/api/v1/traders/{trader.uscc.lower()}", HTTP_X_REQUEST_ID="req-42.abc")

    assert response.status_code == 200
    assert response["X-Request-ID"] == "req-42.abc"
    line = _access_line(json_lines())
    assert line["request_id"] == "req-42.abc"
    assert line["actor"] == f"apikey:{platform_client.api_key.prefix}"
    assert line["trader"] == trader.uscc
    assert line["status"] == 200
    assert line["view"] == "api:trader-detail"
    assert line["level"] == "INFO"
    assert line["time"].endswith("+00:00")
    assert "Authorization" not in json.dumps(line) and platform_client.raw_key not in json.dumps(line)


def test_the_trader_found_by_shop_id_is_logged(platform_client, json_lines):
    shop = factories.ShopFactory(platform=platform_client.platform, platform_shop_id="tb-77")

    assert platform_client.get("/api/v1/traders/", {"shop": "tb-77"}).status_code == 200

    assert _access_line(json_lines())["trader"] == shop.trader.uscc


def test_a_request_without_an_id_gets_a_new_one_and_a_bad_one_is_replaced(client, json_lines):
    first = client.get("/no-such-page/")
    second = client.get("/no-such-page/", HTTP_X_REQUEST_ID="bad id\nwith a newline")

    ids = [first["X-Request-ID"], second["X-Request-ID"]]
    assert all(len(i) == 32 for i in ids) and ids[0] != ids[1]
    assert [line["request_id"] for line in json_lines() if line["logger"] == "creditledger.request"] == ids


def test_a_staff_request_logs_the_user(client, officer, json_lines):
    client.force_login(officer)

    assert client.get("/admin/").status_code == 200

    line = _access_line(json_lines())
    assert line["actor"] == f"user:{officer.pk}"
    assert "trader" not in line


def test_lines_logged_inside_a_view_carry_the_context_and_none_leaks_after(json_lines):
    log = logging.getLogger("creditledger.test")
    with log_context.scope(request_id="r-1"):
        log_context.bind(actor="system:test", trader="91350100M000100Y43")
        log.info("inside")
    log.info("outside")

    inside, outside = json_lines()
    assert (inside["request_id"], inside["actor"], inside["trader"]) == (
        "r-1",
        "system:test",
        "91350100M000100Y43",
    )
    assert not {"request_id", "actor", "trader"} & set(outside)


def test_a_task_logs_its_name_and_id(json_lines, monkeypatch):
    from creditledger.ops import heartbeats

    monkeypatch.setattr(heartbeats, "stamp", lambda name: logging.getLogger("creditledger.test").info(name))

    result = beat_tick.apply(kwargs={"queue": "scoring"}, task_id="task-123")

    assert result.successful()
    (line,) = [line for line in json_lines() if line["logger"] == "creditledger.test"]
    assert (line["task_name"], line["task_id"], line["message"]) == (
        "creditledger.ops.tasks.beat_tick",
        "task-123",
        "worker:scoring",
    )


def test_bind_refuses_a_field_nobody_reads():
    with pytest.raises(TypeError):
        log_context.bind(tradr="x")


def test_the_plain_format_appends_the_context_when_there_is_one():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    with log_context.scope(request_id="r-9"):
        ContextFilter().filter(record)
    assert PlainFormatter().format(record).endswith("x hello [request_id=r-9]")
