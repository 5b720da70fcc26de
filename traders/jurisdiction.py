"""Jurisdiction: which traders a staff member may see and act on, by region-code prefix.

The one place that turns a user into a trader filter. Admin querysets, the evidence
download, the dashboard, the audit exports and the services all ask `scope_of(user)` and
filter with `Scope.q(field)`, where `field` is the path to the trader's region
("region" on Trader, "trader__region" on a violation, ...).

Deny by default: staff with nothing assigned see no trader. Superusers are national.
API keys and background tasks are scoped elsewhere (a platform sees its own shops; tasks
act for the whole market), so only staff users are checked here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from creditledger.exceptions import ApplicationError, PermissionDenied
from traders.regions import DIVISIONS, PROVINCES, region_name

PREFIX_LENGTHS = (2, 4, 6)
# A scope is cached on the user object for the request (or the service call), so a page
# or an admin action over 500 rows asks the database once.
_CACHE_ATTR = "_creditledger_scope"
BAD_FORM = _("give 2, 4 or 6 digits of the administrative division code, e.g. 33 or 3301")


@dataclass(frozen=True)
class Scope:
    national: bool = False
    regions: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.national and not self.regions

    def covers(self, region: str) -> bool:
        return self.national or any((region or "").startswith(prefix) for prefix in self.regions)

    def q(self, field: str = "region") -> Q:
        """A filter on `field` (a path to a trader's region code) for this scope."""
        if self.national:
            return Q()
        if not self.regions:
            # An empty IN never reaches the database: the queryset is empty at no cost.
            return Q(**{f"{field}__in": []})
        q = Q()
        for prefix in self.regions:
            q |= Q(**{f"{field}__startswith": prefix})
        return q

    def uscc_q(self, field: str = "trader_uscc") -> Q:
        """A filter on a column holding a trader's code: characters 3-8 are its region."""
        if self.national:
            return Q()
        if not self.regions:
            return Q(**{f"{field}__in": []})
        alternatives = "|".join(self.regions)  # digits only: nothing to escape
        return Q(**{f"{field}__regex": rf"^.{{2}}({alternatives})"})

    def filter(self, queryset, field: str = "region"):
        return queryset if self.national else queryset.filter(self.q(field))

    def as_json(self) -> dict[str, Any]:
        return {"national": True} if self.national else {"national": False, "regions": list(self.regions)}

    def describe(self) -> str:
        if self.national:
            return str(_("national"))
        if not self.regions:
            return str(_("no region assigned"))
        return ", ".join(f"{prefix} {prefix_name(prefix)}" for prefix in self.regions)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Scope:
        """None (an export from the command line, or made before jurisdictions) is national."""
        if not data or data.get("national"):
            return NATIONAL
        return cls(national=False, regions=tuple(data.get("regions") or ()))


NATIONAL = Scope(national=True)
NOWHERE = Scope()


def scope_of(user: Any) -> Scope:
    """The user's jurisdiction (one query, then cached on the user object)."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return NOWHERE
    if user.is_superuser:
        return NATIONAL
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is not None:
        return cached
    from traders.models import StaffJurisdiction

    row = StaffJurisdiction.objects.filter(user_id=user.pk).values_list("national", "regions").first()
    if row is None:
        scope = NOWHERE
    else:
        national, regions = row
        scope = NATIONAL if national else Scope(regions=tuple(regions or ()))
    setattr(user, _CACHE_ATTR, scope)
    return scope


def forget_scope(user: Any) -> None:
    if user is not None and hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)


def jurisdiction_q(user: Any, field: str = "region") -> Q:
    return scope_of(user).q(field)


def actor_scope(actor: Any) -> Scope:
    """Staff users have their jurisdiction; keys and tasks are national here."""
    return scope_of(actor.user) if actor.kind == "user" else NATIONAL


def require_jurisdiction(actor: Any, region: str, *, field: str | None = None, what: str = "") -> None:
    """Raise PermissionDenied unless the actor's jurisdiction covers `region`."""
    if actor.kind != "user":
        return
    if scope_of(actor.user).covers(region):
        return
    message = _("This trader (region %(region)s) is outside your jurisdiction.") % {"region": region}
    if what:
        message = _("%(what)s: this trader (region %(region)s) is outside your jurisdiction.") % {
            "what": what,
            "region": region,
        }
    raise PermissionDenied(str(message), field=field, code="outside_jurisdiction")


def prefix_name(prefix: str) -> str:
    if len(prefix) == 2:
        return PROVINCES.get(prefix, prefix)
    return region_name(prefix.ljust(6, "0"))


def clean_prefixes(values: Iterable[str] | str) -> tuple[str, ...]:
    """Validated, sorted prefixes with those covered by a shorter one dropped.

    Accepts a list or a string separated by commas, semicolons or spaces. The province must
    exist; a district (6 digits) listed in traders.regions is accepted as is, and so is an
    unlisted one of a known province (the table there is not the full national one).
    """
    if isinstance(values, str):
        values = values.replace(",", " ").replace(";", " ").replace("，", " ").split()
    prefixes: set[str] = set()
    for raw in values:
        prefix = str(raw).strip()
        if not prefix:
            continue
        if not prefix.isdigit() or not prefix.isascii() or len(prefix) not in PREFIX_LENGTHS:
            raise _bad(
                prefix, _("give 2, 4 or 6 digits of the administrative division code, e.g. 33 or 3301")
            )
        if prefix[:2] not in PROVINCES:
            raise _bad(
                prefix, _("no province has the code %(code)s") % {"code": prefix[:2]}, "unknown_region"
            )
        if prefix[2:4] == "00" or (len(prefix) == 6 and prefix[4:] == "00" and prefix not in DIVISIONS):
            raise _bad(prefix, _("a city or district code does not end in 00; give the shorter prefix"))
        prefixes.add(prefix)
    kept = sorted(p for p in prefixes if not any(p != q and p.startswith(q) for q in prefixes))
    return tuple(kept)


def _bad(prefix: str, reason: Any, code: str = "invalid_region") -> ApplicationError:
    message = _("%(value)s: %(reason)s.") % {"value": prefix, "reason": reason}
    return ApplicationError(str(message), field="regions", code=code, value=prefix)
