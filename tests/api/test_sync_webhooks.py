"""docs/api.md followed literally by a webhook-driven platform: a real HTTP receiver that
verifies each notice, answers at once and does the work after; real `celery worker`
processes on the `webhooks` queue; a random history for 200 traders meanwhile.

The receiver misbehaves the way receivers do: some answers are 503 (try later: nothing was
done), some 500 after the work was done (the retry is a duplicate). Retries come after
their backoff; the test makes those due at once rather than wait minutes.

From the notices alone the platform must enforce every measure in force and hold every
trader's status and grade; after its scheduled read of the feed, everything the server
holds. A platform keeping the old rule ("ignore a notice whose data.version is at or below
the version you hold"), fed the same notices, misses measures.
"""

from __future__ import annotations

import random
import time

import pytest
from django.db.models import Count, F
from django.utils import timezone
from rest_framework.test import APIClient
from standardwebhooks import Webhook

from creditledger.api.models import WebhookCursor, WebhookDelivery
from creditledger.api.tasks import webhooks_dispatch
from creditledger.api.webhook_services import webhook_endpoint_create
from creditledger.ledger.actors import Actor
from creditledger.ledger.models import LedgerEntry
from penalties.models import Restriction, RestrictionAck
from tests import factories
from tests.api.docs_platform import DocsPlatform, HeldTrader, History, active_ids, held_state, server_state
from tests.api.webhook_receiver import Receiver, Step
from traders.models import ApiKey

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

TRADERS = 200
ROUNDS = 10
STEPS = 30
SEED = 14


@pytest.fixture(autouse=True)
def _loopback_allowed(settings):
    settings.WEBHOOK_ALLOW_LOOPBACK = True


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


class OldRulePlatform(DocsPlatform):
    """The rule docs/api.md used to give, for contrast; it acknowledges nothing."""

    def apply_notice(self, notice: dict) -> None:
        data = notice["data"]
        held = self.traders.setdefault(data["trader"], HeldTrader())
        if data["version"] <= max(held.status_version, held.grade_version):
            return
        super().apply_notice(notice)

    def _ack(self, restriction: int) -> None:
        pass


class Inbox:
    """The platform's side of the receiver: verify, dedupe by webhook-id, apply."""

    def __init__(self, receiver: Receiver, secret: str, platforms: list[DocsPlatform]) -> None:
        self.receiver, self.hook, self.platforms = receiver, Webhook(secret), platforms
        self.read = 0
        self.seen: set[str] = set()
        self.duplicates = 0

    def drain(self) -> None:
        with self.receiver._lock:
            batch = self.receiver.received[self.read :]
        self.read += len(batch)
        for request in batch:
            notice = self.hook.verify(request.body, request.headers)  # raises if not genuine
            if request.answered == 503:
                continue  # we said "try later" and did nothing
            if request.headers["webhook-id"] in self.seen:
                self.duplicates += 1
                continue
            self.seen.add(request.headers["webhook-id"])
            for platform in self.platforms:
                platform.apply_notice(notice)


def _answers(rng: random.Random, n: int) -> list[Step]:
    return [Step(rng.choices((200, 204, 503, 500), (70, 10, 12, 8))[0]) for _ in range(n)]


def _retries_due_now() -> None:
    """Time passes faster here: a delivery whose failed attempt is logged is due at once."""
    waiting = (
        WebhookDelivery.objects.filter(state="pending", attempts__gt=0)
        .annotate(logged=Count("attempt_log"))
        .filter(logged=F("attempts"))
        .values_list("pk", flat=True)
    )
    WebhookDelivery.objects.filter(pk__in=list(waiting)).update(next_attempt_at=timezone.now())


def _settle(inbox: Inbox, timeout: float = 180) -> None:
    """Dispatch until every ledger entry has been looked at and no notice is pending."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        webhooks_dispatch.delay()
        time.sleep(0.5)
        inbox.drain()
        head = LedgerEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
        cursor = WebhookCursor.objects.filter(name="ledger").values_list("seq", flat=True).first() or 0
        if cursor >= head and not WebhookDelivery.objects.filter(state="pending").exists():
            inbox.drain()
            return
        _retries_due_now()
    raise AssertionError("the notices did not settle")


def test_a_webhook_driven_platform_following_the_docs_enforces_every_measure_and_ends_equal(
    workers, receiver
):
    for name in ("hooks1", "hooks2"):  # two notices may be in flight at once
        workers(name, queues="webhooks", extra_env={"WEBHOOK_ALLOW_LOOPBACK": "1"})
    rng = random.Random(SEED)
    platform_row = factories.PlatformFactory(code="taobao", name="Taobao")
    _key, raw = ApiKey.objects.create_key(
        name="sync", platform=platform_row, scopes=["status:read", "shops:write", "reports:write"]
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    endpoint = webhook_endpoint_create(actor=Actor.system("test"), platform=platform_row, url=receiver.url)
    receiver.answer(*_answers(rng, 20000))

    codes = [factories.make_uscc(800000 + n, "350100") for n in range(TRADERS)]
    platform = DocsPlatform(client, "taobao")
    platform.declare_shops(codes)
    platform.bootstrap_by_lookup(codes)
    old = OldRulePlatform(client, "taobao")
    old.bootstrap_by_lookup(codes)
    inbox = Inbox(receiver, endpoint.secret, [platform, old])

    history = History(codes, SEED)
    for _ in range(ROUNDS):
        history.round(STEPS)
        webhooks_dispatch.delay()  # beat would, every 10 s
        inbox.drain()
    _settle(inbox)

    assert not WebhookDelivery.objects.filter(state="failed").exists()
    assert inbox.duplicates > 0 and len(receiver.received) > len(inbox.seen)

    # From the notices alone: every measure in force enforced (and acknowledged), and each
    # trader's status, grade and measures in force as the server has them.
    server, held = server_state(codes), held_state(platform, codes)
    active = active_ids(codes)
    assert platform.enforced == active and len(active) >= 20
    assert active <= set(
        RestrictionAck.objects.filter(platform=platform_row).values_list("restriction_id", flat=True)
    )
    withdrawn = set(Restriction.objects.filter(state="withdrawn").values_list("pk", flat=True))
    for code in codes:
        mine, theirs = held[code], server[code]
        assert (mine["status"], mine["grade"]) == (theirs["status"], theirs["grade"]), code
        in_force = {pk: m for pk, m in theirs["measures"].items() if m[1] == "active"}
        assert {pk: m for pk, m in mine["measures"].items() if m[1] == "active"} == in_force, code
        # Withdrawals are not pushed: a proposal withdrawn may linger until the feed is read.
        assert set(theirs["measures"]) <= set(mine["measures"]) <= set(theirs["measures"]) | withdrawn

    # The scheduled read of the feed brings the rest: equal in everything.
    platform.follow()
    assert held_state(platform, codes) == server_state(codes)
    assert platform.enforced == active_ids(codes)

    # The old rule, fed the very same notices, leaves measures in force unenforced.
    assert active - old.enforced
    print(
        f"\nsync_webhooks: {len(inbox.seen)} notices applied, {len(receiver.received)} requests, "
        f"{inbox.duplicates} duplicates, {len(active)} measures in force, "
        f"{len(active - old.enforced)} missed by the old rule; history {history.counts}"
    )
