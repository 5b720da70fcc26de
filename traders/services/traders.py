"""Registering traders: the USCC rules, the pilot-code override, the ledger entry."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from creditledger.exceptions import ApplicationError, PermissionDenied, require_perm
from creditledger.ledger.actors import Actor
from creditledger.ledger.services import ledger_append
from creditledger.text import check_text
from traders import uscc as uscc_rules
from traders.jurisdiction import require_jurisdiction
from traders.models import Platform, Trader

OVERRIDE_PERM = "traders.override_uscc_check"


def required_text(value: str, *, field: str, max_length: int) -> str:
    value = (value or "").strip()
    if not value:
        raise ApplicationError(_("This field is required."), field=field, code="required")
    if len(value) > max_length:
        raise ApplicationError(
            _("At most %(max)d characters (got %(n)d).") % {"max": max_length, "n": len(value)},
            field=field,
            code="max_length",
        )
    return check_text(value, field=field)


def parse_uscc(raw: str, *, override_reason: str = "", actor: Actor | None = None) -> uscc_rules.USCC:
    """Validate a code for registration; a failing check character needs a supervisor's override."""
    try:
        parsed = uscc_rules.parse(raw, allow_bad_check=bool(override_reason.strip()))
    except uscc_rules.USCCError as exc:
        message = exc.message
        if exc.rule == "check":
            message = _(
                "%(message)s; a supervisor may register an early pilot code with an override reason"
            ) % {"message": message}
        raise ApplicationError(message, field="uscc", code=f"uscc_{exc.rule}", value=raw) from exc
    if override_reason.strip():
        if parsed.check_ok:
            raise ApplicationError(
                _("The code passes the check; no override is needed."),
                field="check_override_reason",
                code="override_not_needed",
            )
        if actor is None or not actor.has_perm(OVERRIDE_PERM):
            raise PermissionDenied(
                _("Only a supervisor may register a code that fails the check character."),
                field="check_override_reason",
            )
    return parsed


@transaction.atomic
def trader_register(
    *,
    actor: Actor,
    uscc: str,
    name: str,
    legal_representative: str = "",
    address: str = "",
    check_override_reason: str = "",
    source: str = Trader.Source.OFFICER,
    source_platform: Platform | None = None,
) -> Trader:
    if actor.kind == "user":
        require_perm(actor, "traders.add_trader", _("You may not register traders."))
    parsed = parse_uscc(uscc, override_reason=check_override_reason, actor=actor)
    require_jurisdiction(actor, parsed.region, field="uscc")
    name = required_text(name, field="name", max_length=200)
    if Trader.objects.filter(uscc=parsed.code).exists():
        raise ApplicationError(
            _("A trader with this code is already registered."),
            field="uscc",
            code="duplicate",
            value=parsed.code,
        )
    trader = Trader(
        uscc=parsed.code,
        name=name,
        kind=parsed.kind,
        region=parsed.region,
        legal_representative=(legal_representative or "").strip()[:100],
        address=(address or "").strip()[:300],
        source=source,
        source_platform=source_platform,
        registered_by=actor.user if actor.kind == "user" else None,
    )
    if not parsed.check_ok:
        trader.check_override_reason = check_override_reason.strip()
        trader.check_override_by = actor.user
    try:
        with transaction.atomic():
            trader.save()
    except IntegrityError as exc:  # a concurrent registration won the race
        raise ApplicationError(
            _("A trader with this code is already registered."),
            field="uscc",
            code="duplicate",
            value=parsed.code,
        ) from exc
    ledger_append(
        actor=actor,
        action="trader.registered",
        subject_type="trader",
        subject_id=trader.pk,
        trader_uscc=trader.uscc,
        payload=trader_payload(trader),
    )
    return trader


def trader_payload(trader: Trader) -> dict:
    return {
        "uscc": trader.uscc,
        "name": trader.name,
        "kind": trader.kind,
        "region": trader.region,
        "legal_representative": trader.legal_representative,
        "address": trader.address,
        "source": trader.source,
        "source_platform": trader.source_platform.code if trader.source_platform_id else None,
        "check_override": (
            {"reason": trader.check_override_reason, "by": trader.check_override_by_id}
            if trader.check_override_reason
            else None
        ),
    }
