"""Assigning a staff member's jurisdiction (region-code prefixes, or national)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils.translation import gettext as _

from creditledger.exceptions import ApplicationError, require_perm
from creditledger.ledger.actors import Actor
from creditledger.ledger.services import ledger_append
from traders.jurisdiction import clean_prefixes, forget_scope
from traders.models import StaffJurisdiction

# No role holds it: superusers (who hold every permission) assign jurisdictions.
ASSIGN_PERM = "traders.change_staffjurisdiction"


@transaction.atomic
def jurisdiction_set(
    *, actor: Actor, user, national: bool = False, regions: Iterable[str] | str = ()
) -> StaffJurisdiction:
    """Set what `user` may see: national, or these prefixes (validated, deduplicated).

    Writes nothing and no entry when nothing changes. Neither national nor any prefix is
    allowed: it takes every trader away from the user (deny by default)."""
    require_perm(actor, ASSIGN_PERM, _("Only a superuser may assign jurisdictions."))
    if user is None or not getattr(user, "pk", None):
        raise ApplicationError(_("Choose a staff member."), field="user", code="required")
    cleaned = () if national else clean_prefixes(regions)
    row = StaffJurisdiction.objects.select_for_update().filter(user=user).first()
    before = {"national": row.national, "regions": list(row.regions)} if row else None
    after = {"national": bool(national), "regions": list(cleaned)}
    if before == after:
        return row
    if row is None:
        row = StaffJurisdiction(user=user)
    row.national, row.regions = after["national"], after["regions"]
    row.updated_by = actor.user if actor.kind == "user" else None
    row.save()
    forget_scope(user)
    ledger_append(
        actor=actor,
        action="jurisdiction.set",
        subject_type="user",
        subject_id=user.pk,
        payload={"user": user.get_username(), **after, "previous": before},
    )
    return row
