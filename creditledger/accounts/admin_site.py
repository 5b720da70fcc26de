"""The admin site refuses a session whose second factor is not verified.

The gate middleware (accounts/middleware.py) already turns such sessions away from every
staff URL; this makes the admin refuse them too, so the protection does not rest on one
middleware being listed in settings.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest


def is_verified(user) -> bool:
    # OTPMiddleware installs user.is_verified(); a request that did not pass through it
    # (a bare RequestFactory request, a missing middleware) counts as unverified.
    check = getattr(user, "is_verified", None)
    return bool(check and check())


class StaffAdminSite(admin.AdminSite):
    def has_permission(self, request: HttpRequest) -> bool:
        if not super().has_permission(request):
            return False
        if is_verified(request.user):
            return True
        # Signing out needs only the password step; without this, admin_view would send an
        # unverified session from the logout URL back to the index, still signed in.
        match = getattr(request, "resolver_match", None)
        return bool(match and match.view_name == f"{self.name}:logout")
