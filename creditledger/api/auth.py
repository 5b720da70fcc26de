"""Platform API keys: authentication, scopes and per-key throttling.

Keys are checked with the library's SHA-512 hasher (a key is 32 random characters, so a
slow password hasher would add cost without adding safety).
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions, permissions, throttling

from creditledger.ledger.actors import Actor
from traders.models import ApiKey

KEYWORD = "Api-Key"
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)  # one write a minute per key, not one per request


class PlatformKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Api-Key <key>`; request.auth becomes the ApiKey."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0] != KEYWORD:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(_("Send 'Authorization: Api-Key <key>'."))
        # The manager's get_from_key() cannot select_related; this is the same check in one query.
        prefix, _dot, _secret = header[1].partition(".")
        key = ApiKey.objects.select_related("platform").filter(prefix=prefix).first()
        if key is None or not key.is_valid(header[1]):
            raise exceptions.AuthenticationFailed(_("Unknown API key."))
        if key.revoked or key.revoked_at is not None or key.has_expired:
            raise exceptions.AuthenticationFailed(_("This API key was revoked or has expired."))
        if not key.platform.is_active:
            raise exceptions.AuthenticationFailed(_("This platform is not active."))
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return (None, key)

    def authenticate_header(self, request) -> str:
        return KEYWORD


def actor_for(request) -> Actor:
    key: ApiKey = request.auth
    return Actor.for_apikey(key.prefix, platform=key.platform)


def platform_of(request):
    return request.auth.platform


class IsPlatform(permissions.BasePermission):
    """A valid platform key, holding the scope the view names in `required_scope`."""

    message = _("This API key lacks the scope this call needs.")

    def has_permission(self, request, view) -> bool:
        if not isinstance(request.auth, ApiKey):
            raise exceptions.NotAuthenticated(_("Send 'Authorization: Api-Key <key>'."))
        scope = getattr(view, "required_scope", None)
        if scope is None:
            return True
        if not request.auth.has_scope(scope):
            self.message = _("This API key lacks the %(scope)s scope.") % {"scope": scope}
            return False
        return True


class PerKeyThrottle(throttling.SimpleRateThrottle):
    """A rate per API key, counted in the shared cache so every web process agrees."""

    scope = "apikey"

    def get_cache_key(self, request, view):
        if not isinstance(request.auth, ApiKey):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.prefix}


class WitnessThrottle(throttling.SimpleRateThrottle):
    """Witnesses post without a key (the cosignature is their credential): a rate per client
    address, so a flood of bad signatures costs the flooder, not the log. The address is
    REMOTE_ADDR: DRF's default ident would take X-Forwarded-For as the client sends it, and
    a flooder would name a new address with every request."""

    scope = "witness"

    def get_cache_key(self, request, view):
        ident = request.META.get("REMOTE_ADDR") or "unknown"
        return self.cache_format % {"scope": self.scope, "ident": ident}
