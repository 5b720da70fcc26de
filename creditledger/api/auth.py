"""Platform API keys: authentication, scopes and per-key throttling.

Keys are checked with the library's SHA-512 hasher (a key is 32 random characters, so a
slow password hasher would add cost without adding safety).

A key, once checked, is kept in the process for API_KEY_CACHE_SECONDS (5): the status
lookups a platform makes by the thousand then cost no query to authenticate. That is the
bound on revocation: a key revoked (or its platform deactivated) is refused by every
process at most that many seconds later. Expiry is checked on every request.

The throttle is one atomic Redis operation per request (creditledger/api/ratelimit.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions, permissions, throttling

from creditledger.api import ratelimit
from creditledger.ledger.actors import Actor
from traders.models import ApiKey

KEYWORD = "Api-Key"
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)  # one write a minute per key, not one per request
_CACHE_MAX = 10_000  # keys held per process; past it the cache starts again
# sha256 of the presented key -> (checked at, monotonic seconds; the ApiKey with its platform)
_checked: dict[str, tuple[float, ApiKey]] = {}


def forget_keys() -> None:
    """Empty this process's cache of checked keys (tests; a revocation waits out the bound)."""
    _checked.clear()


def _checked_key(raw: str) -> ApiKey:
    digest = hashlib.sha256(raw.encode("latin-1")).hexdigest()
    now = time.monotonic()
    held = _checked.get(digest)
    if held is not None and now - held[0] < settings.API_KEY_CACHE_SECONDS:
        return held[1]
    # The manager's get_from_key() cannot select_related; this is the same check in one query.
    prefix, _dot, _secret = raw.partition(".")
    key = ApiKey.objects.select_related("platform").filter(prefix=prefix).first()
    if key is None or not key.is_valid(raw):
        _checked.pop(digest, None)
        raise exceptions.AuthenticationFailed(_("Unknown API key."))
    if len(_checked) >= _CACHE_MAX:
        _checked.clear()
    _checked[digest] = (now, key)
    return key


class PlatformKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Api-Key <key>`; request.auth becomes the ApiKey."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0] != KEYWORD:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(_("Send 'Authorization: Api-Key <key>'."))
        key = _checked_key(header[1])
        if key.revoked or key.revoked_at is not None or key.has_expired:
            raise exceptions.AuthenticationFailed(_("This API key was revoked or has expired."))
        if not key.platform.is_active:
            raise exceptions.AuthenticationFailed(_("This platform is not active."))
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now  # the cached copy too: one write a minute per process
        return (None, key)

    def authenticate_header(self, request) -> str:
        return KEYWORD


def actor_for(request) -> Actor:
    key: ApiKey = request.auth
    return Actor.for_apikey(key.prefix, platform=key.platform)


def platform_of(request):
    return request.auth.platform


def _only_known_query_parameters(request, view) -> None:
    """A query parameter the endpoint does not take is a 400, not ignored: `?afer=5000` (a
    typo) would otherwise replay the feed from 0, and `?shop_id=` answer for no shop.
    The names an endpoint takes are its `query_serializer`'s fields (none without one)."""
    serializer = getattr(view, "query_serializer", None)
    known = set(serializer().fields) if serializer is not None else set()
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        takes = ", ".join(sorted(known)) or _("no query parameters")
        message = _("Unknown query parameter; this endpoint takes %(takes)s.") % {"takes": takes}
        raise exceptions.ValidationError({name: [message] for name in unknown}, code="unknown_parameter")


class IsPlatform(permissions.BasePermission):
    """A valid platform key, holding the scope the view names in `required_scope`."""

    message = _("This API key lacks the scope this call needs.")

    def has_permission(self, request, view) -> bool:
        if not isinstance(request.auth, ApiKey):
            raise exceptions.NotAuthenticated(_("Send 'Authorization: Api-Key <key>'."))
        _only_known_query_parameters(request, view)
        scope = getattr(view, "required_scope", None)
        if scope is None:
            return True
        if not request.auth.has_scope(scope):
            self.message = _("This API key lacks the %(scope)s scope.") % {"scope": scope}
            return False
        return True


class KeyOptional(permissions.BasePermission):
    """The ledger's public reads (its key, checkpoints, proofs): anyone may check the ledger,
    an auditor or a witness without a platform key included. A key sent is still checked
    (an unknown or revoked one is a 401) and counts the call against that key."""

    def has_permission(self, request, view) -> bool:
        _only_known_query_parameters(request, view)
        return True


def _client_address(request) -> str:
    """REMOTE_ADDR: DRF's default ident would take X-Forwarded-For as the client sends it,
    and a flooder would name a new address with every request."""
    return request.META.get("REMOTE_ADDR") or "unknown"


class _CountedThrottle(throttling.BaseThrottle):
    """A throttle counted by ratelimit.py (one atomic Redis call); a count that could not be
    kept lets the request through."""

    standing: ratelimit.Standing | None = None

    def _allow(self, standing: ratelimit.Standing | None) -> bool:
        self.standing = standing
        return standing is None or standing.allowed

    def wait(self) -> float | None:
        return None if self.standing is None or self.standing.allowed else self.standing.reset


# Mixin of the ledger's public reads: a key is optional (KeyOptional), and a call without one
# is counted per client address (PerKeyThrottle); the schema says so
# (openapi.state_cross_field_rules). No docstring: drf-spectacular would print it on each view.
class PublicRead:
    permission_classes = [KeyOptional]


class PerKeyThrottle(_CountedThrottle):
    """A rate per API key (API_THROTTLE_RATE), counted exactly across every web process; a
    public read without a key, per client address (API_PUBLIC_THROTTLE_RATE)."""

    def allow_request(self, request, view) -> bool:
        rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
        if isinstance(request.auth, ApiKey):
            standing = ratelimit.hit(request.auth.prefix, rates["apikey"])
        elif isinstance(view, PublicRead):
            standing = ratelimit.hit(_client_address(request), rates["public"], policy="public")
        else:
            return True
        if standing is not None:
            request._request.ratelimit = standing  # ApiErrorMiddleware sends the headers
        return self._allow(standing)


class WitnessThrottle(_CountedThrottle):
    """Witnesses post without a key (the cosignature is their credential): a rate per client
    address (WITNESS_THROTTLE_RATE), so a flood of bad signatures costs the flooder, not the
    log."""

    def allow_request(self, request, view) -> bool:
        rate = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["witness"]
        return self._allow(ratelimit.hit(f"witness:{_client_address(request)}", rate))
