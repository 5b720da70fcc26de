"""Webhooks end to end: a real `celery worker` on the `webhooks` queue, a private Redis,
PostgreSQL, and a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from creditledger.api.models import WebhookAttempt, WebhookDelivery
from creditledger.api.tasks import deliver, webhooks_dispatch
from creditledger.api.webhook_services import webhook_endpoint_create
from creditledger.ledger.actors import Actor
from penalties.models import Violation, ViolationType
from penalties.services import trader_reassess, violation_confirm, violation_record
from tests import factories
from tests.api.webhook_receiver import Receiver, Step
from tests.worker import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(autouse=True)
def _loopback_allowed(settings):
    settings.WEBHOOK_ALLOW_LOOPBACK = True


@pytest.fixture
def worker(workers):
    return workers("hooks", queues="webhooks", extra_env={"WEBHOOK_ALLOW_LOOPBACK": "1"})


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


def _trader_with_a_measure_on(platform_code: str, url: str, events=()):
    """A trader with a shop on the platform, whose grave violation has been reassessed."""
    trader = factories.TraderFactory()
    platform = factories.PlatformFactory(code=platform_code)
    factories.ShopFactory(trader=trader, platform=platform)
    endpoint = webhook_endpoint_create(actor=Actor.system("test"), platform=platform, url=url, events=events)
    recorder = factories.UserFactory(username="rec", is_staff=True, is_superuser=True)
    decider = factories.UserFactory(username="dec", is_staff=True, is_superuser=True)
    violation = violation_record(
        actor=Actor.for_user(recorder),
        trader=trader,
        type=ViolationType.objects.get(code="counterfeit-large-scale"),
        occurred_on=timezone.localdate(),
        source=Violation.Source.INSPECTION,
        description="仓库查获假冒商品",
    )
    violation_confirm(actor=Actor.for_user(decider), violation=violation)
    trader_reassess(trader=trader)
    return trader, endpoint


def test_the_worker_delivers_signed_notices_from_committed_ledger_entries(worker, receiver):
    trader, endpoint = _trader_with_a_measure_on("taobao", receiver.url)
    webhooks_dispatch.delay()
    wait_for(lambda: len(receiver.received) >= 3, what="three notices at the receiver")
    wait_for(
        lambda: not WebhookDelivery.objects.exclude(state="delivered").exists(),
        what="the deliveries to be marked delivered",
    )
    deliveries = {d.msg_id: d for d in WebhookDelivery.objects.filter(endpoint=endpoint)}
    assert len(deliveries) == 3 and len(receiver.received) == 3
    events = set()
    for sent in receiver.received:
        body = Webhook(endpoint.secret).verify(sent.body, sent.headers)
        delivery = deliveries[sent.headers["webhook-id"]]
        assert body["type"] == delivery.event and body["data"]["seq"] == delivery.ledger_seq
        assert body["data"]["trader"] == trader.uscc
        events.add(body["type"])
    assert events == {"grade.changed", "restriction.proposed"}
    assert WebhookAttempt.objects.filter(status_code=200).count() == 3


def test_the_worker_logs_a_failed_attempt_and_a_later_message_delivers_the_same_notice(worker, receiver):
    receiver.answer(default=Step(503, {"Retry-After": "120"}))
    _trader, endpoint = _trader_with_a_measure_on("jd", receiver.url, events=["grade.changed"])
    webhooks_dispatch.delay()
    wait_for(lambda: WebhookAttempt.objects.exists(), what="the first attempt")
    delivery = wait_for(
        lambda: (
            WebhookDelivery.objects.filter(endpoint=endpoint, attempts=1, next_attempt_at__isnull=False)
            .exclude(next_attempt_at__lte=timezone.now())
            .first()
        ),
        what="the retry to be scheduled",
    )
    assert delivery.state == "pending"
    wait = (delivery.next_attempt_at - WebhookAttempt.objects.get().at).total_seconds()
    assert wait == pytest.approx(120, abs=1)  # Retry-After beats the first backoff step
    assert WebhookAttempt.objects.get().status_code == 503

    receiver.answer(default=Step(200))
    deliver.delay(delivery.pk, 1)  # what the dispatcher sends once the time has come
    wait_for(
        lambda: WebhookDelivery.objects.filter(pk=delivery.pk, state="delivered").exists(),
        what="the retry to deliver",
    )
    assert [r.headers["webhook-id"] for r in receiver.received] == [delivery.msg_id] * 2
    assert list(WebhookAttempt.objects.values_list("status_code", flat=True)) == [503, 200]
