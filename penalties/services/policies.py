"""Policy versions: drafts are editable, an activated policy never changes."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from creditledger.exceptions import ApplicationError, require_perm
from creditledger.ledger.actors import Actor
from creditledger.ledger.services import ledger_append
from penalties.models import Policy
from penalties.policy import PolicyError, PolicyRules
from penalties.selectors import active_policy  # noqa: F401  (re-exported)
from traders.models import Trader


def _validated(rules: dict) -> dict:
    try:
        return PolicyRules.from_dict(rules).as_dict()
    except PolicyError as exc:
        raise ApplicationError(exc.message, field=f"rules.{exc.field}", code="invalid_policy") from exc


@transaction.atomic
def policy_create(*, actor: Actor, name: str, rules: dict) -> Policy:
    """A new draft version (not active). Changing a policy means a new version."""
    require_perm(actor, "penalties.add_policy", _("You may not draft policies."))
    name = (name or "").strip()
    if not name:
        raise ApplicationError(_("This field is required."), field="name", code="required")
    version = (Policy.objects.select_for_update().aggregate(v=Max("version"))["v"] or 0) + 1
    return Policy.objects.create(
        version=version,
        name=name,
        rules=_validated(rules),
        created_by=actor.user if actor.kind == "user" else None,
    )


@transaction.atomic
def policy_activate(*, actor: Actor, policy: Policy) -> Policy:
    """Make `policy` the one active version; it is frozen from now on. Every trader is
    then due for reassessment under it (the nightly job, or the sweeper via the flag)."""
    require_perm(actor, "penalties.activate_policy", _("You may not activate policies."))
    policy = Policy.objects.select_for_update().get(pk=policy.pk)
    if policy.is_frozen:
        raise ApplicationError(
            _("This version was activated before; make a new version."),
            field="policy",
            code="frozen",
            value=policy.version,
        )
    rules = _validated(policy.rules)
    now = timezone.now()
    Policy.objects.filter(is_active=True).update(is_active=False)
    policy.is_active = True
    policy.activated_at = now
    policy.activated_by = actor.user if actor.kind == "user" else None
    policy.save(update_fields=["is_active", "activated_at", "activated_by"])
    Trader.objects.filter(needs_reassessment=False).update(needs_reassessment=True)
    ledger_append(
        actor=actor,
        action="policy.activated",
        subject_type="policy",
        subject_id=policy.pk,
        payload={"version": policy.version, "name": policy.name, "rules": rules},
    )
    return policy
