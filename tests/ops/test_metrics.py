"""/metrics: access control, the process instruments and the gauges read at scrape time."""

from __future__ import annotations

import pytest
import redis
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from creditledger.celery import app
from creditledger.ledger.models import LedgerEntry
from creditledger.ledger.services import checkpoint_create, ledger_append
from creditledger.ops.celery_hooks import TICK_TASK
from creditledger.ops.tasks import beat_tick
from penalties.models import Restriction, RestrictionAck, Violation
from tests import factories

pytestmark = pytest.mark.django_db

TOKEN = "metrics-test-token-0123456789"
SERIES = (
    "creditledger_http_request_duration_seconds",
    "creditledger_celery_tasks",
    "creditledger_celery_task_failures",
    "creditledger_celery_task_duration_seconds",
    "creditledger_queue_length",
    "creditledger_pending_reviews",
    "creditledger_unacknowledged_measures",
    "creditledger_ledger_head_seq",
    "creditledger_ledger_checkpoint_age_seconds",
)


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_IPS = []
    return TOKEN


def scrape(client) -> dict[str, dict[tuple, float]]:
    """{family name: {sorted label items (plus the sample name's suffix): value}}."""
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    families = {}
    for family in text_string_to_metric_families(response.content.decode()):
        samples = families.setdefault(family.name, {})
        for sample in family.samples:
            suffix = sample.name.removeprefix(family.name)
            samples[(suffix, *sorted(sample.labels.items()))] = sample.value
    return families


# --- access ----------------------------------------------------------------------------------


def test_metrics_do_not_exist_until_a_token_or_addresses_are_configured(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = []
    assert client.get("/metrics").status_code == 404


def test_metrics_refuse_a_request_without_the_token(client, token):
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Api-Key {TOKEN}").status_code == 403


def test_metrics_answer_with_the_token_and_carry_every_named_series(client, token):
    families = scrape(client)
    for name in SERIES:
        assert name in families, name


def test_metrics_answer_an_allowed_address_and_refuse_others(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = ["127.0.0.0/8", "::1"]

    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.20.30.40").status_code == 403
    # A forwarded-for header is the client's to write: it opens nothing.
    forged = client.get("/metrics", REMOTE_ADDR="10.20.30.40", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert forged.status_code == 403


# --- process instruments -------------------------------------------------------------------


def test_a_request_is_timed_under_its_view_name(client, token, platform_client):
    trader = factories.ShopFactory(platform=platform_client.platform).trader
    labels = {"view": "api:trader-detail", "method": "GET", "status": "2xx"}
    before = REGISTRY.get_sample_value("creditledger_http_request_duration_seconds_count", labels) or 0

    assert platform_client.get(f"/api/v1/traders/{trader.uscc}").status_code == 200

    families = scrape(client)
    count = families["creditledger_http_request_duration_seconds"][("_count", *sorted(labels.items()))]
    assert count == before + 1


def test_an_unknown_url_is_timed_as_unresolved(client, token):
    client.get("/no-such-page/")
    families = scrape(client)
    key = ("_count", ("method", "GET"), ("status", "4xx"), ("view", "unresolved"))
    assert families["creditledger_http_request_duration_seconds"][key] >= 1


def test_tasks_are_counted_and_timed_by_queue(client, token):
    labels = {"queue": "eager", "task": TICK_TASK, "state": "SUCCESS"}
    before = REGISTRY.get_sample_value("creditledger_celery_tasks_total", labels) or 0

    beat_tick.apply(kwargs={"queue": "scoring"})

    families = scrape(client)
    assert families["creditledger_celery_tasks"][("_total", *sorted(labels.items()))] == before + 1
    timed = ("_count", ("queue", "eager"), ("task", TICK_TASK))
    assert families["creditledger_celery_task_duration_seconds"][timed] >= 1


def test_a_task_from_a_queue_is_labelled_with_that_queue(client, token):
    beat_tick.push_request(delivery_info={"routing_key": "webhooks"}, id="t-1", is_eager=False)
    try:
        from creditledger.ops import celery_hooks

        assert celery_hooks.queue_of(beat_tick) == "webhooks"
    finally:
        beat_tick.pop_request()


def test_a_failing_task_is_counted_as_a_failure(client, token):
    @app.task(name="tests.ops.always_fails", shared=False)
    def always_fails():
        raise RuntimeError("boom")

    labels = {"queue": "eager", "task": "tests.ops.always_fails"}
    before = REGISTRY.get_sample_value("creditledger_celery_task_failures_total", labels) or 0

    always_fails.apply()

    families = scrape(client)
    assert families["creditledger_celery_task_failures"][("_total", *sorted(labels.items()))] == before + 1
    failed = ("_total", *sorted({**labels, "state": "FAILURE"}.items()))
    assert families["creditledger_celery_tasks"][failed] >= 1


# --- gauges read at scrape time --------------------------------------------------------------


def test_pending_reviews_count_the_violations_waiting_for_a_decision(client, token):
    factories.ViolationFactory.create_batch(3)
    factories.ViolationFactory(status=Violation.Status.REJECTED, decided_at=timezone.now())

    assert scrape(client)["creditledger_pending_reviews"][("",)] == 3


def _active_measure(trader) -> Restriction:
    now = timezone.now()
    return Restriction.objects.create(
        trader=trader,
        measure=Restriction.Measure.LISTING_RESTRICTED,
        state=Restriction.State.ACTIVE,
        basis=Restriction.Basis.MANUAL,
        reasons={"note": "test"},
        noticed_at=now,
        starts_at=now,
    )


def test_unacknowledged_measures_count_per_platform_until_the_platform_acknowledges(client, token):
    taobao = factories.PlatformFactory(code="taobao")
    jd = factories.PlatformFactory(code="jd")
    trader = factories.ShopFactory(platform=taobao).trader
    factories.ShopFactory(platform=taobao, trader=trader)  # two shops, still one measure to enforce
    factories.ShopFactory(platform=jd, trader=trader)
    measure = _active_measure(trader)
    _active_measure(factories.TraderFactory())  # no shop anywhere: nobody to acknowledge
    proposed = _active_measure(factories.ShopFactory(platform=jd).trader)
    Restriction.objects.filter(pk=proposed.pk).update(state=Restriction.State.PROPOSED)

    unacked = scrape(client)["creditledger_unacknowledged_measures"]
    assert unacked == {("", ("platform", "jd")): 1, ("", ("platform", "taobao")): 1}

    now = timezone.now()
    RestrictionAck.objects.create(restriction=measure, platform=taobao, acknowledged_at=now, enforced_at=now)
    unacked = scrape(client)["creditledger_unacknowledged_measures"]
    assert unacked == {("", ("platform", "jd")): 1}


def test_the_ledger_head_and_the_checkpoint_age(client, token):
    families = scrape(client)
    assert families["creditledger_ledger_head_seq"][("",)] == 0
    assert families.get("creditledger_ledger_checkpoint_age_seconds", {}) == {}

    from django.db import transaction

    with transaction.atomic():
        for n in range(3):
            ledger_append(actor="system:test", action="test.entry", subject_type="test", subject_id=n)
    checkpoint_create()

    families = scrape(client)
    assert families["creditledger_ledger_head_seq"][("",)] == LedgerEntry.objects.count() == 3
    assert 0 <= families["creditledger_ledger_checkpoint_age_seconds"][("",)] < 60
    assert families["creditledger_ledger_checkpoint_seq"][("",)] == 3


def test_queue_lengths_are_read_from_redis(client, token, settings):
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    marker = b"ops-test-message"
    broker.lpush("exports", marker)
    try:
        lengths = scrape(client)["creditledger_queue_length"]
    finally:
        broker.lrem("exports", 0, marker)

    assert set(lengths) == {("", ("queue", q)) for q in ("celery", "scoring", "webhooks", "exports")}
    assert lengths[("", ("queue", "exports"))] >= 1
    assert scrape(client)["creditledger_scrape_source_up"] == {
        ("", ("source", "broker")): 1,
        ("", ("source", "database")): 1,
    }


def test_a_broker_that_is_down_marks_its_source_down_and_the_rest_still_answers(client, token, settings):
    from tests.ops.conftest import closed_port

    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"

    families = scrape(client)

    assert families["creditledger_scrape_source_up"][("", ("source", "broker"))] == 0
    assert "creditledger_queue_length" not in families
    assert families["creditledger_pending_reviews"][("",)] == 0
