"""Platform API keys: issued and revoked by supervisors, each change in the ledger.

Only the key's prefix is recorded (its id holds the hash): the ledger says who could call
the API and since when, never anything that helps to forge a key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from creditledger.exceptions import ApplicationError, require_perm
from creditledger.ledger.actors import Actor
from creditledger.ledger.services import Entry, ledger_append, ledger_append_many
from traders.models import ApiKey, Platform

ISSUE_PERM = "traders.add_apikey"
# The admin's revoke action needs the change permission; the service asks for the same.
REVOKE_PERM = "traders.change_apikey"


def _clean_scopes(scopes: Iterable[str]) -> list[str]:
    scopes = list(dict.fromkeys(scopes or ()))
    if not scopes:
        raise ApplicationError(_("Choose at least one scope."), field="scopes", code="required")
    unknown = [scope for scope in scopes if scope not in ApiKey.Scope.values]
    if unknown:
        raise ApplicationError(
            _("Unknown scope %(scope)s.") % {"scope": unknown[0]},
            field="scopes",
            code="invalid_choice",
            value=unknown[0],
        )
    return scopes


@transaction.atomic
def apikey_issue(
    *,
    actor: Actor,
    platform: Platform,
    name: str,
    scopes: Iterable[str],
    expiry_date: dt.datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new key for an active platform; returns the key and the full key text, which is
    shown once and never stored."""
    require_perm(actor, ISSUE_PERM, _("You may not issue API keys."))
    name = (name or "").strip()
    if not name:
        raise ApplicationError(_("Give the key a name."), field="name", code="required")
    if platform is None or not Platform.objects.filter(pk=platform.pk, is_active=True).exists():
        raise ApplicationError(_("Choose an active platform."), field="platform", code="invalid_choice")
    scopes = _clean_scopes(scopes)
    key, raw = ApiKey.objects.create_key(
        name=name,
        platform=platform,
        scopes=scopes,
        expiry_date=expiry_date,
        created_by=actor.user if actor.kind == "user" else None,
    )
    ledger_append(
        actor=actor,
        action="apikey.issued",
        subject_type="apikey",
        subject_id=key.prefix,
        payload={
            "prefix": key.prefix,
            "name": name,
            "platform": platform.code,
            "scopes": scopes,
            "expiry_date": expiry_date,
        },
    )
    return key, raw


def _forget_checked_keys() -> None:
    from creditledger.api.auth import forget_keys  # the API layer sits above the services

    forget_keys()


@transaction.atomic
def apikey_revoke(*, actor: Actor, keys: Iterable[ApiKey], now: dt.datetime | None = None) -> list[ApiKey]:
    """Revoke these keys; returns the ones this call revoked. A key already revoked keeps
    its first revocation time and gets no second entry. Revoking cannot be undone."""
    require_perm(actor, REVOKE_PERM, _("You may not revoke API keys."))
    now = now or timezone.now()
    pks = [key.pk for key in keys]
    revoked = list(
        ApiKey.objects.select_for_update(of=("self",))
        .select_related("platform")
        .filter(pk__in=pks)
        .filter(Q(revoked=False) | Q(revoked_at__isnull=True))
        .order_by("prefix")
    )
    for key in revoked:
        key.revoked = True
        key.revoked_at = key.revoked_at or now
    ApiKey.objects.bulk_update(revoked, ["revoked", "revoked_at"])
    # This process stops trusting them at commit; the others within API_KEY_CACHE_SECONDS.
    transaction.on_commit(_forget_checked_keys)
    ledger_append_many(
        actor=actor,
        entries=[
            Entry(
                "apikey.revoked",
                "apikey",
                key.prefix,
                "",
                {"prefix": key.prefix, "name": key.name, "platform": key.platform.code},
            )
            for key in revoked
        ],
    )
    return revoked
