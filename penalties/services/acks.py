"""Platforms' acknowledgements: proof that a platform enforced a measure on its shops."""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction
from django.utils import timezone

from creditledger.exceptions import ApplicationError, PermissionDenied
from creditledger.ledger.actors import Actor
from creditledger.ledger.services import ledger_append
from creditledger.text import check_text
from penalties.models import Restriction, RestrictionAck
from traders.models import Shop

State = Restriction.State


def ack_payload(ack: RestrictionAck, restriction: Restriction) -> dict:
    return {
        "ack": ack.pk,
        "restriction": restriction.pk,
        "trader": restriction.trader.uscc,
        "platform": ack.platform.code,
        "measure": restriction.measure,
        "state": restriction.state,
        "starts_at": restriction.starts_at,
        "enforced_at": ack.enforced_at,
        "acknowledged_at": ack.acknowledged_at,
        "note": ack.note,
    }


@transaction.atomic
def restriction_acknowledge(
    *,
    actor: Actor,
    restriction: Restriction,
    enforced_at: dt.datetime,
    note: str = "",
    now: dt.datetime | None = None,
) -> tuple[RestrictionAck, bool]:
    """A platform declares when it enforced a measure on its shops of the trader.

    Only for a trader with a shop on that platform, and only for a measure that has been in
    force (active, or lifted after being active): a proposed measure may still be withdrawn.
    `enforced_at` lies between the notice and now (and not after the lift). Once per
    platform: a repeat with the same `enforced_at` returns the existing ack (created=False)
    and writes nothing; another `enforced_at` is refused.
    """
    if actor.kind != "apikey" or actor.platform is None:
        raise PermissionDenied("Only a platform acknowledges a measure.")
    platform = actor.platform
    now = now or timezone.now()
    note = (note or "").strip()
    if len(note) > 500:
        raise ApplicationError(f"At most 500 characters (got {len(note)}).", field="note", code="max_length")
    check_text(note, field="note", multiline=True)
    r = Restriction.objects.select_for_update(of=("self",)).select_related("trader").get(pk=restriction.pk)
    if not Shop.objects.filter(trader_id=r.trader_id, platform=platform).exists():
        raise PermissionDenied("This trader has no shop on your platform.", field="restriction")
    existing = RestrictionAck.objects.filter(restriction=r, platform=platform).first()
    if existing is not None:
        return _repeat(existing, enforced_at), False
    _check_enforced_at(r, enforced_at, now)
    ack = RestrictionAck(
        restriction=r, platform=platform, acknowledged_at=now, enforced_at=enforced_at, note=note
    )
    try:
        with transaction.atomic():
            ack.save()
    except IntegrityError:  # unreachable while the restriction row is locked; be exact anyway
        return _repeat(RestrictionAck.objects.get(restriction=r, platform=platform), enforced_at), False
    ledger_append(
        actor=actor,
        action="restriction.acknowledged",
        subject_type="restriction",
        subject_id=r.pk,
        trader_uscc=r.trader.uscc,
        payload=ack_payload(ack, r),
    )
    return ack, True


def _repeat(existing: RestrictionAck, enforced_at: dt.datetime) -> RestrictionAck:
    if existing.enforced_at != enforced_at:
        raise ApplicationError(
            f"Your platform already acknowledged this measure, enforced at "
            f"{existing.enforced_at.isoformat()}.",
            field="enforced_at",
            code="already_acknowledged",
            value=existing.enforced_at.isoformat(),
        )
    return existing


def _check_enforced_at(r: Restriction, enforced_at: dt.datetime, now: dt.datetime) -> None:
    if r.state == State.PROPOSED:
        raise ApplicationError(
            "This measure is proposed, not in force: the trader may still object. "
            "Acknowledge it once it is active.",
            field="restriction",
            code="not_in_force",
            value=r.state,
        )
    if r.state == State.WITHDRAWN or (r.state == State.LIFTED and r.starts_at is None):
        raise ApplicationError(
            f"This measure was {r.state} without taking effect; there is nothing to enforce.",
            field="restriction",
            code="not_in_force",
            value=r.state,
        )
    if not isinstance(enforced_at, dt.datetime) or timezone.is_naive(enforced_at):
        raise ApplicationError(
            "Enter a date and time with a UTC offset.", field="enforced_at", code="invalid"
        )
    bounds = [
        (enforced_at > now, f"cannot be in the future (now is {now.isoformat()})", "future"),
        (
            enforced_at < r.noticed_at,
            f"cannot be before the measure was noticed ({r.noticed_at.isoformat()})",
            "before_notice",
        ),
        (
            r.lifted_at is not None and enforced_at > r.lifted_at,
            f"cannot be after the measure was lifted ({r.lifted_at and r.lifted_at.isoformat()})",
            "after_lift",
        ),
    ]
    for broken, message, code in bounds:
        if broken:
            raise ApplicationError(
                f"The enforcement time {message}.",
                field="enforced_at",
                code=code,
                value=enforced_at.isoformat(),
            )
