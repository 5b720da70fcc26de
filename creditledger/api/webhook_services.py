"""Webhook writes: endpoints and their secrets, deliveries made from committed ledger
entries, one attempt at a time, and the staff's replay.

Delivery life: `pending` (next_attempt_at says when) → `delivered` on a 2xx, or `failed`
after WEBHOOK_MAX_ATTEMPTS or a 410. The durable row is the truth; task messages only
wake a worker, so a lost message delays a notice, never loses it.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from creditledger.api import webhooks
from creditledger.api.models import WebhookAttempt, WebhookCursor, WebhookDelivery
from creditledger.exceptions import ApplicationError, require_perm
from creditledger.ledger import merkle
from creditledger.ledger.actors import Actor
from creditledger.ledger.models import LedgerEntry
from creditledger.ledger.services import ledger_append
from traders.models import Platform, Shop, WebhookEndpoint

log = logging.getLogger(__name__)

State = WebhookDelivery.State

LEDGER_CURSOR = "ledger"
GENERATE_BATCH = 1000
DUE_BATCH = 1000
# The dispatcher leases a due delivery for this long when it queues it, so its next runs
# don't queue it again; a message lost on the way is queued again when the lease ends.
QUEUE_LEASE = dt.timedelta(minutes=5)
# An attempt in flight holds its delivery this much longer than the timeout; a worker
# that dies mid-send leaves it to be tried again after that.
SEND_LEASE_MARGIN = dt.timedelta(seconds=60)
# Publishing right after commit: give up fast, the dispatcher covers for a lost message.
PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}

GONE_REASON = "The receiver answered 410 Gone."


# --- endpoints ------------------------------------------------------------------------------


def guard(url: str) -> webhooks.Target:
    """The URL guard with this deployment's settings (raises webhooks.UnsafeURL)."""
    return webhooks.check_url(
        url,
        allow_loopback=settings.WEBHOOK_ALLOW_LOOPBACK,
        allow_private=settings.WEBHOOK_ALLOW_PRIVATE,
    )


def _clean_url(url: str) -> str:
    url = (url or "").strip()
    if not url:
        raise ApplicationError("Enter the receiver's URL.", field="url", code="required")
    if len(url) > WebhookEndpoint._meta.get_field("url").max_length:
        raise ApplicationError("The URL is too long.", field="url", code="max_length")
    try:
        guard(url)
    except webhooks.UnsafeURL as exc:
        raise ApplicationError(str(exc), field="url", code=exc.rule, value=url) from exc
    return url


def _clean_events(events) -> list[str]:
    events = list(dict.fromkeys(events or ()))
    unknown = [event for event in events if event not in webhooks.EVENTS]
    if unknown:
        raise ApplicationError(
            f"Unknown event {unknown[0]!r}; use {', '.join(webhooks.EVENTS)}.",
            field="events",
            code="invalid_choice",
            value=unknown[0],
        )
    return events


@transaction.atomic
def webhook_endpoint_create(
    *, actor: Actor, platform: Platform, url: str, events=(), is_active: bool = True
) -> WebhookEndpoint:
    """A new endpoint with a fresh signing secret (endpoint.secret: hand it to the platform).

    The URL is checked now, and again before every attempt, since DNS can change.
    """
    require_perm(actor, "traders.add_webhookendpoint", "You may not add webhook endpoints.")
    return WebhookEndpoint.objects.create(
        platform=platform,
        url=_clean_url(url),
        events=_clean_events(events),
        secret=webhooks.new_secret(),
        is_active=is_active,
        disabled_at=None if is_active else timezone.now(),
        disabled_reason="" if is_active else f"Created disabled by {actor}.",
    )


@transaction.atomic
def webhook_endpoint_update(
    *, actor: Actor, endpoint: WebhookEndpoint, url: str, events, is_active: bool
) -> WebhookEndpoint:
    """Change where and what an endpoint receives, or switch it off and on.

    Switching on again clears the reason it was disabled for (a 410, say); its failed
    deliveries stay failed until replayed.
    """
    require_perm(actor, "traders.change_webhookendpoint", "You may not change webhook endpoints.")
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    url = (url or "").strip()
    # Check a new URL, or an old one coming back to life; switching off needs no DNS.
    if url != endpoint.url or (is_active and not endpoint.is_active):
        url = _clean_url(url)
    endpoint.url = url
    endpoint.events = _clean_events(events)
    if is_active and not endpoint.is_active:
        endpoint.disabled_at, endpoint.disabled_reason = None, ""
    elif not is_active and endpoint.is_active:
        endpoint.disabled_at, endpoint.disabled_reason = timezone.now(), f"Disabled by {actor}."
    endpoint.is_active = is_active
    endpoint.save(update_fields=["url", "events", "is_active", "disabled_at", "disabled_reason"])
    return endpoint


@transaction.atomic
def webhook_secret_rotate(*, actor: Actor, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """A new secret; the current one becomes the previous one and keeps signing too, so the
    receiver can switch at its own pace. A second rotation drops the oldest."""
    require_perm(actor, "traders.change_webhookendpoint", "You may not change webhook endpoints.")
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    endpoint.previous_secret = endpoint.secret
    endpoint.secret = webhooks.new_secret()
    endpoint.save(update_fields=["secret", "previous_secret"])
    _record_endpoint(actor, "webhook.secret_rotated", endpoint)
    return endpoint


@transaction.atomic
def webhook_secret_retire(*, actor: Actor, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """End a rotation: the previous secret stops signing."""
    require_perm(actor, "traders.change_webhookendpoint", "You may not change webhook endpoints.")
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    if not endpoint.previous_secret:
        return endpoint  # no rotation under way: nothing changes, nothing to record
    endpoint.previous_secret = ""
    endpoint.save(update_fields=["previous_secret"])
    _record_endpoint(actor, "webhook.secret_retired", endpoint)
    return endpoint


def _record_endpoint(actor: Actor, action: str, endpoint: WebhookEndpoint) -> None:
    # Which endpoint and when, never a secret nor a hint of one.
    ledger_append(
        actor=actor,
        action=action,
        subject_type="webhookendpoint",
        subject_id=endpoint.pk,
        payload={"platform": endpoint.platform.code, "url": endpoint.url},
    )


@dataclass(frozen=True)
class Ping:
    msg_id: str
    url: str
    response: webhooks.Response


def webhook_ping(*, actor: Actor, endpoint: WebhookEndpoint, now: dt.datetime | None = None) -> Ping:
    """Send a signed `ping` to the endpoint now, from this process, and return its answer.

    It writes nothing and holds no transaction while the request is out: no delivery, no
    attempt log row (those are the notices' record), no ledger entry (no state changes),
    and a 410 to a ping switches nothing off. A disabled endpoint is pinged too: that is how
    a platform shows its mended receiver before the staff switch it on again. The URL guard
    applies as to every notice.
    """
    require_perm(actor, "traders.change_webhookendpoint", "You may not test webhook endpoints.")
    now = now or timezone.now()
    endpoint = WebhookEndpoint.objects.select_related("platform").get(pk=endpoint.pk)
    try:
        target = guard(endpoint.url)
    except webhooks.UnsafeURL as exc:
        raise ApplicationError(str(exc), field="url", code=exc.rule, value=endpoint.url) from exc
    msg_id = webhooks.new_msg_id()
    body = webhooks.body_bytes(
        webhooks.ping_payload(endpoint_id=endpoint.pk, platform_code=endpoint.platform.code, at=now)
    )
    headers = webhooks.sign_headers(
        msg_id=msg_id, body=body, secrets_=[endpoint.secret, endpoint.previous_secret], at=timezone.now()
    )
    response = webhooks.post(target, body, headers, settings.WEBHOOK_TIMEOUT_SECONDS)
    log.info(
        "webhook ping %s to endpoint %s by %s: %s in %s ms",
        msg_id,
        endpoint.pk,
        actor,
        response.status or response.error,
        response.latency_ms,
    )
    return Ping(msg_id, endpoint.url, response)


def describe(ping: Ping) -> str:
    """One line for the admin and the shell."""
    answer = ping.response
    if answer.ok:
        return f"HTTP {answer.status} in {answer.latency_ms} ms"
    return f"failed after {answer.latency_ms} ms: {answer.error or f'HTTP {answer.status}'}"


# --- deliveries from the ledger -------------------------------------------------------------


@dataclass(frozen=True)
class Generated:
    deliveries: int  # rows offered; a repeat of an entry is skipped by the unique constraint
    last_seq: int  # every entry up to here has been looked at
    caught_up: bool


@transaction.atomic
def deliveries_enqueue_from_ledger(
    *, after_seq: int, limit: int = GENERATE_BATCH, now: dt.datetime | None = None
) -> Generated:
    """Turn the committed ledger entries after `after_seq` into pending deliveries, one per
    event for every active endpoint of every platform with a shop of the entry's trader.

    Idempotent: (endpoint, ledger_seq, event) is unique and repeats are skipped. Only
    sealed entries are seen, and none can appear later below the head read here: the
    sealer gives seqs in the order its transactions commit (ledger/sealer.py).
    """
    now = now or timezone.now()
    head = LedgerEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    entries = list(
        LedgerEntry.objects.filter(seq__gt=after_seq, seq__lte=head, action__in=webhooks.SOURCE_ACTIONS)
        .order_by("seq")
        .only("seq", "at", "action", "trader_uscc", "payload", "body")[:limit]
    )
    caught_up = len(entries) < limit
    last_seq = max(after_seq, head) if caught_up else entries[-1].seq
    events = [
        (entry, event)
        for entry in entries
        if entry.trader_uscc and (event := webhooks.event_for(entry.action, entry.payload))
    ]
    if not events:
        return Generated(0, last_seq, caught_up)
    platforms_of: dict[str, set[int]] = {}
    for uscc, platform_id in (
        Shop.objects.filter(trader__uscc__in={entry.trader_uscc for entry, _ in events})
        .values_list("trader__uscc", "platform_id")
        .distinct()
    ):
        platforms_of.setdefault(uscc, set()).add(platform_id)
    endpoints_of: dict[int, list[WebhookEndpoint]] = {}
    for endpoint in WebhookEndpoint.objects.filter(
        platform_id__in=set().union(*platforms_of.values()) if platforms_of else (),
        is_active=True,
        platform__is_active=True,
    ):
        endpoints_of.setdefault(endpoint.platform_id, []).append(endpoint)
    rows = [
        WebhookDelivery(
            endpoint=endpoint,
            msg_id=webhooks.new_msg_id(),
            event=event,
            ledger_seq=entry.seq,
            payload=webhooks.event_payload(
                event=event,
                seq=entry.seq,
                at=entry.at,
                trader_uscc=entry.trader_uscc,
                entry=entry.payload,
                leaf_hash=merkle.leaf_hash(bytes(entry.body)),
            ),
            next_attempt_at=now,
        )
        for entry, event in events
        for platform_id in sorted(platforms_of.get(entry.trader_uscc, ()))
        for endpoint in endpoints_of.get(platform_id, ())
        if webhooks.wants(endpoint.events, event)
    ]
    WebhookDelivery.objects.bulk_create(rows, batch_size=GENERATE_BATCH, ignore_conflicts=True)
    return Generated(len(rows), last_seq, caught_up)


@transaction.atomic
def deliveries_generate(*, limit: int = GENERATE_BATCH, now: dt.datetime | None = None) -> Generated:
    """One batch after the stored cursor; the cursor moves in the same transaction as the
    rows it accounts for."""
    cursor, _ = WebhookCursor.objects.select_for_update().get_or_create(name=LEDGER_CURSOR)
    generated = deliveries_enqueue_from_ledger(after_seq=cursor.seq, limit=limit, now=now)
    if generated.last_seq != cursor.seq:
        cursor.seq = generated.last_seq
        cursor.save(update_fields=["seq", "updated_at"])
    return generated


@transaction.atomic
def deliveries_lease_due(*, now: dt.datetime | None = None, limit: int = DUE_BATCH) -> list[tuple[int, int]]:
    """The (id, attempts) of pending deliveries whose time has come, oldest first, leased
    for QUEUE_LEASE so they are queued once. A delivery another run holds is skipped."""
    now = now or timezone.now()
    due = list(
        WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(state=State.PENDING, next_attempt_at__lte=now, endpoint__is_active=True)
        .order_by("next_attempt_at", "id")
        .values_list("id", "attempts")[:limit]
    )
    if due:
        WebhookDelivery.objects.filter(pk__in=[pk for pk, _ in due]).update(next_attempt_at=now + QUEUE_LEASE)
    return due


def enqueue_delivery(delivery_id: int, attempts: int | None) -> None:
    from creditledger.api.tasks import deliver  # tasks import services: import late

    deliver.apply_async(args=[delivery_id, attempts], retry_policy=PUBLISH_RETRY)


# --- one attempt ----------------------------------------------------------------------------


class Outcome:
    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"
    GONE = "gone"
    SKIPPED = "skipped"  # not ours to send now: done, not due, or another worker has it
    SUPERSEDED = "superseded"  # replayed or re-claimed while we were sending


@transaction.atomic
def _claim(delivery_id: int, attempts: int | None, now: dt.datetime) -> WebhookDelivery | None:
    delivery = (
        WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("endpoint")
        .filter(pk=delivery_id, state=State.PENDING)
        .first()
    )
    if delivery is None or not delivery.endpoint.is_active:
        return None
    # A queued message names the attempt it was queued for: a duplicate finds it taken.
    if attempts is not None and delivery.attempts != attempts:
        return None
    if attempts is None and delivery.next_attempt_at and delivery.next_attempt_at > now:
        return None
    delivery.attempts += 1
    lease = dt.timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS) + SEND_LEASE_MARGIN
    delivery.next_attempt_at = now + lease
    delivery.save(update_fields=["attempts", "next_attempt_at"])
    return delivery


def _send(delivery: WebhookDelivery) -> webhooks.Response:
    endpoint = delivery.endpoint
    try:
        target = guard(endpoint.url)  # again: the name may point somewhere else by now
    except webhooks.UnsafeURL as exc:
        return webhooks.Response(None, 0, f"refused: {exc}"[:500])
    body = webhooks.body_bytes(delivery.payload)
    # The signature's clock is the wall clock: receivers reject timestamps off by minutes.
    headers = webhooks.sign_headers(
        msg_id=delivery.msg_id,
        body=body,
        secrets_=[endpoint.secret, endpoint.previous_secret],
        at=timezone.now(),
    )
    return webhooks.post(target, body, headers, settings.WEBHOOK_TIMEOUT_SECONDS)


@transaction.atomic
def _record(claimed: WebhookDelivery, response: webhooks.Response, now: dt.datetime) -> str:
    """Log the attempt and settle this delivery. Locks this delivery's row and no other: a
    410's consequences for the rest of the endpoint are `_endpoint_gone`'s, afterwards."""
    WebhookAttempt.objects.create(
        delivery_id=claimed.pk,
        at=now,
        status_code=response.status,
        latency_ms=response.latency_ms,
        error=response.error,
    )
    delivery = WebhookDelivery.objects.select_for_update().get(pk=claimed.pk)
    if delivery.state != State.PENDING or delivery.attempts != claimed.attempts:
        return Outcome.SUPERSEDED
    fields = ["state", "next_attempt_at"]
    if response.ok:
        delivery.state, delivery.next_attempt_at, delivery.delivered_at = State.DELIVERED, None, now
        delivery.save(update_fields=[*fields, "delivered_at"])
        return Outcome.DELIVERED
    if response.status == 410:
        delivery.state, delivery.next_attempt_at = State.FAILED, None
        delivery.save(update_fields=fields)
        return Outcome.GONE
    if delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        delivery.state, delivery.next_attempt_at = State.FAILED, None
        delivery.save(update_fields=fields)
        log.warning("webhook delivery %s failed after %s attempts", delivery.pk, delivery.attempts)
        return Outcome.FAILED
    wait = webhooks.retry_delay(delivery.attempts, webhooks.parse_retry_after(response.retry_after, now))
    delivery.next_attempt_at = now + dt.timedelta(seconds=wait)
    delivery.save(update_fields=["next_attempt_at"])
    return Outcome.RETRY


@transaction.atomic
def _endpoint_gone(endpoint_id: int, now: dt.datetime) -> None:
    """410: the receiver says the endpoint is gone for good. Stop, and fail what waits for it.

    Its own transaction, after the attempt is recorded, and in one lock order: the endpoint
    row first, then its pending deliveries in id order. Holding no delivery when it starts,
    it only ever waits for transactions that hold one delivery and want nothing else
    (a recording, a claim, a replay), so several 410s at once queue up instead of
    deadlocking; and the attempts they log were committed before, so none is lost. A worker
    that dies between the two leaves the endpoint on: its next 410 switches it off.
    """
    # FOR NO KEY UPDATE, like the rows below: the dispatcher's inserts of new deliveries
    # (a key share on the endpoint) need not wait for it.
    endpoint = WebhookEndpoint.objects.select_for_update(no_key=True).filter(pk=endpoint_id).first()
    if endpoint is None:
        return
    if endpoint.is_active:
        endpoint.is_active, endpoint.disabled_at, endpoint.disabled_reason = False, now, GONE_REASON
        endpoint.save(update_fields=["is_active", "disabled_at", "disabled_reason"])
        log.warning("webhook endpoint %s answered 410: disabled", endpoint_id)
    waiting = list(
        WebhookDelivery.objects.select_for_update(no_key=True)
        .filter(endpoint_id=endpoint_id, state=State.PENDING)
        .order_by("id")
        .values_list("id", flat=True)
    )
    if waiting:
        WebhookDelivery.objects.filter(pk__in=waiting).update(state=State.FAILED, next_attempt_at=None)


def delivery_attempt(*, delivery_id: int, attempts: int | None = None, now: dt.datetime | None = None) -> str:
    """Claim the delivery, send it once, log the attempt and decide what follows.

    No transaction is held while the request is out: the claim commits first (attempts+1,
    leased until the timeout has passed), the result is recorded after. `attempts` is the
    count the message was queued for (None: any, if due). Returns an Outcome value.
    """
    now = now or timezone.now()
    claimed = _claim(delivery_id, attempts, now)
    if claimed is None:
        return Outcome.SKIPPED
    response = _send(claimed)
    outcome = _record(claimed, response, now)
    if response.status == 410:
        # Also after SUPERSEDED: whoever answered 410 speaks for the whole endpoint.
        _endpoint_gone(claimed.endpoint_id, now)
    return outcome


@transaction.atomic
def delivery_replay(
    *, actor: Actor, delivery: WebhookDelivery, now: dt.datetime | None = None
) -> WebhookDelivery:
    """Send a delivered or failed notice again, same webhook-id (receivers dedupe by it),
    with a fresh round of attempts; the attempt log keeps the earlier ones."""
    require_perm(actor, "api.change_webhookdelivery", "You may not replay webhook deliveries.")
    now = now or timezone.now()
    delivery = (
        WebhookDelivery.objects.select_for_update(of=("self",)).select_related("endpoint").get(pk=delivery.pk)
    )
    if delivery.state == State.PENDING:
        raise ApplicationError(
            "This delivery is still being sent.",
            field="state",
            code="invalid_transition",
            value=delivery.state,
        )
    if not delivery.endpoint.is_active:
        raise ApplicationError(
            "The endpoint is disabled; enable it before replaying.",
            field="endpoint",
            code="endpoint_disabled",
        )
    before = {"state": delivery.state, "attempts": delivery.attempts}
    delivery.state, delivery.attempts, delivery.next_attempt_at = State.PENDING, 0, now
    delivery.delivered_at = None
    delivery.save(update_fields=["state", "attempts", "next_attempt_at", "delivered_at"])
    ledger_append(
        actor=actor,
        action="webhook.delivery_replayed",
        subject_type="webhookdelivery",
        subject_id=delivery.pk,
        payload={
            "msg_id": delivery.msg_id,
            "event": delivery.event,
            "ledger_seq": delivery.ledger_seq,
            "endpoint": delivery.endpoint_id,
            "previous": before,
        },
    )
    delivery_id = delivery.pk
    transaction.on_commit(lambda: enqueue_delivery(delivery_id, 0), robust=True)
    log.info("webhook delivery %s replayed by %s", delivery_id, actor)
    return delivery
