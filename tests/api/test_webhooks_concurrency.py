"""Webhook attempts racing each other in real threads, each with its own database connection
(transactional tests: every transaction really commits, locks are really taken)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.utils import timezone

from creditledger.api.models import WebhookAttempt, WebhookDelivery
from creditledger.api.webhook_services import (
    Outcome,
    deliveries_enqueue_from_ledger,
    delivery_attempt,
    webhook_endpoint_create,
)
from creditledger.ledger.actors import Actor
from penalties.models import Violation, ViolationType
from penalties.services import trader_reassess, violation_confirm, violation_record
from tests import factories
from tests.api.webhook_receiver import Receiver, Step
from traders.models import WebhookEndpoint

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

IN_FLIGHT = 3


@pytest.fixture(autouse=True)
def _loopback_allowed(settings):
    settings.WEBHOOK_ALLOW_LOOPBACK = True
    settings.WEBHOOK_TIMEOUT_SECONDS = 10.0


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


def _pending_deliveries(url: str, traders: int) -> tuple[WebhookEndpoint, list[WebhookDelivery]]:
    """An endpoint with three notices per trader waiting for it (grade.changed, two proposals)."""
    platform = factories.PlatformFactory(code="taobao")
    endpoint = webhook_endpoint_create(actor=Actor.system("test"), platform=platform, url=url)
    recorder = factories.UserFactory(username="rec", is_staff=True, is_superuser=True)
    decider = factories.UserFactory(username="dec", is_staff=True, is_superuser=True)
    for _ in range(traders):
        trader = factories.TraderFactory()
        factories.ShopFactory(trader=trader, platform=platform)
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
    deliveries_enqueue_from_ledger(after_seq=0)
    return endpoint, list(WebhookDelivery.objects.filter(endpoint=endpoint).order_by("id"))


def _attempt_in_threads(delivery_ids: list[int]) -> tuple[list[str], list[BaseException]]:
    outcomes: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(delivery_ids))

    def run(delivery_id: int) -> None:
        try:
            start.wait()
            outcomes.append(delivery_attempt(delivery_id=delivery_id))
        except BaseException as exc:  # a deadlock surfaces here as OperationalError
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(pk,)) for pk in delivery_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes, errors


def test_three_410s_at_once_disable_the_endpoint_without_a_deadlock_and_log_every_attempt(receiver):
    endpoint, deliveries = _pending_deliveries(receiver.url, traders=3)
    assert len(deliveries) == 9
    # The receiver answers all three at the same moment, so the three recordings overlap
    # while six more notices are still pending for the endpoint.
    receiver.answer(default=Step(410, together=IN_FLIGHT))
    outcomes, errors = _attempt_in_threads([d.pk for d in deliveries[:IN_FLIGHT]])

    assert errors == []
    assert len(receiver.received) == IN_FLIGHT
    assert Outcome.GONE in outcomes and set(outcomes) <= {Outcome.GONE, Outcome.SUPERSEDED}
    attempts = WebhookAttempt.objects.filter(delivery__endpoint=endpoint)
    assert sorted(attempts.values_list("delivery_id", flat=True)) == [d.pk for d in deliveries[:IN_FLIGHT]]
    assert set(attempts.values_list("status_code", flat=True)) == {410}
    endpoint.refresh_from_db()
    assert not endpoint.is_active and "410" in endpoint.disabled_reason
    assert set(WebhookDelivery.objects.filter(endpoint=endpoint).values_list("state", flat=True)) == {
        "failed"
    }


def test_a_410_racing_successful_and_failing_attempts_leaves_each_one_logged_and_nothing_pending(
    receiver,
):
    endpoint, deliveries = _pending_deliveries(receiver.url, traders=2)
    receiver.answer(
        Step(410, together=IN_FLIGHT),
        Step(200, together=IN_FLIGHT),
        Step(503, together=IN_FLIGHT),
    )
    outcomes, errors = _attempt_in_threads([d.pk for d in deliveries[:IN_FLIGHT]])

    assert errors == []
    assert Outcome.GONE in outcomes
    assert WebhookAttempt.objects.filter(delivery__endpoint=endpoint).count() == IN_FLIGHT
    endpoint.refresh_from_db()
    assert not endpoint.is_active
    states = dict(WebhookDelivery.objects.filter(endpoint=endpoint).values_list("id", "state"))
    # The 200 may be recorded before or after the 410 disabled the endpoint; either way no
    # notice is left pending for an endpoint that is gone.
    assert "pending" not in states.values()
    assert list(states.values()).count("delivered") <= 1
