"""Turn a signed-in but not second-factor-verified session away from every staff URL.

Staff URLs are everything under STAFF_PATH_PREFIXES (the admin, the audit pages, evidence
downloads) except the admin's own sign-in and sign-out pages. A GET goes to the two-factor
page (or to the set-up page for a user without a second factor yet) and comes back to the
URL it asked for; anything else is refused with 403, so no form post slips through. The
platform API (/api/, API keys), health probes, the public ledger pages, static files, the
language switch and the two-factor pages themselves are outside the gate.

Must come after django_otp.middleware.OTPMiddleware (which installs user.is_verified()).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, HttpResponseRedirect
from django.urls import Resolver404, resolve, reverse
from django.utils.translation import gettext as _

from creditledger.accounts.admin_site import is_verified
from creditledger.accounts.services import has_second_factor

SAFE_METHODS = frozenset({"GET", "HEAD"})
# The first sign-in step and signing out stay reachable under /admin/.
OPEN_VIEWS = frozenset({"admin:login", "admin:logout"})


def is_staff_path(path: str) -> bool:
    if not path.startswith(tuple(settings.STAFF_PATH_PREFIXES)):
        return False
    try:
        match = resolve(path)
    except Resolver404:
        return True  # an unknown staff URL answers 404 only after the second factor
    return match.view_name not in OPEN_VIEWS


def second_step_url(request: HttpRequest, next_url: str) -> str:
    name = "otp-verify" if has_second_factor(request.user) else "otp-setup"
    return f"{reverse(name)}?{urlencode({'next': next_url})}"


class StaffTwoFactorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated and is_staff_path(request.path_info) and not is_verified(user):
            if request.method in SAFE_METHODS:
                return HttpResponseRedirect(second_step_url(request, request.get_full_path()))
            return HttpResponseForbidden(
                _("Sign-in is not complete: verify your second factor first."), content_type="text/plain"
            )
        return self.get_response(request)
