"""The second sign-in step: verify a code, set up an authenticator app, renew backup codes.

Interfaces only: each page calls the services in creditledger/accounts/services.py. The
pages use the admin's look; they are outside the staff gate themselves (a user reaches
them exactly when the gate sends them here).
"""

from __future__ import annotations

from base64 import b32encode
from functools import wraps
from urllib.parse import urlencode

import django_otp
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from creditledger.accounts import services
from creditledger.accounts.admin_site import is_verified
from creditledger.accounts.forms import OTPTokenForm
from creditledger.accounts.qr import qr_svg
from creditledger.exceptions import ApplicationError
from creditledger.ledger.actors import Actor


def _next_url(request: HttpRequest) -> str:
    """The page to return to: only a path on this site, never another host (open redirect)."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse("admin:index")


def _with_next(name: str, next_url: str) -> str:
    return f"{reverse(name)}?{urlencode({'next': next_url})}"


def signed_in_page(view):
    """Password sign-in first (the admin's login page), then this page; no caching, no
    HTTP methods beyond GET, HEAD and POST, and the code kept out of error reports."""

    @require_http_methods(["GET", "HEAD", "POST"])
    @never_cache
    @sensitive_post_parameters("otp_token")
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated or not request.user.is_active:
            login = f"{reverse('admin:login')}?{urlencode({'next': request.get_full_path()})}"
            return HttpResponseRedirect(login)
        request.current_app = admin.site.name
        return view(request, *args, **kwargs)

    return wrapped


def _context(request: HttpRequest, title: str, **extra) -> dict:
    return {
        **admin.site.each_context(request),
        "title": title,
        # The sidebar would only list apps the unverified session may not open yet.
        "is_nav_sidebar_enabled": False,
        "next_url": _next_url(request),
        "codes_left": services.backup_codes_left(request.user),
        **extra,
    }


def _complete_sign_in(request: HttpRequest, device) -> None:
    django_otp.login(request, device)
    # The session just gained a privilege: give it a new key, as login() does.
    request.session.cycle_key()


def _codes_page(request: HttpRequest, codes: list[str], *, enrolled: bool) -> HttpResponse:
    title = _("Two-factor sign-in is set up") if enrolled else _("New backup codes")
    context = _context(request, title, codes=codes, enrolled=enrolled)
    return render(request, "account/two_factor_codes.html", context)


@signed_in_page
def verify(request: HttpRequest) -> HttpResponse:
    next_url = _next_url(request)
    if is_verified(request.user):
        return HttpResponseRedirect(next_url)
    if not services.has_second_factor(request.user):
        return HttpResponseRedirect(_with_next("otp-setup", next_url))
    form = OTPTokenForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            device = services.otp_verify(user=request.user, token=form.cleaned_data["otp_token"])
        except ApplicationError as exc:
            form.add_error("otp_token", exc.message)
        else:
            _complete_sign_in(request, device)
            return HttpResponseRedirect(next_url)
    context = _context(request, _("Two-factor sign-in"), form=form)
    return render(request, "account/two_factor_verify.html", context)


@signed_in_page
def setup(request: HttpRequest) -> HttpResponse:
    next_url = _next_url(request)
    if services.has_second_factor(request.user):
        if is_verified(request.user):
            return HttpResponseRedirect(next_url)
        return HttpResponseRedirect(_with_next("otp-verify", next_url))
    form = OTPTokenForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            device, codes = services.otp_enrol_confirm(
                user=request.user, token=form.cleaned_data["otp_token"]
            )
        except ApplicationError as exc:
            form.add_error("otp_token", exc.message)
        else:
            _complete_sign_in(request, device)
            return _codes_page(request, codes, enrolled=True)
    device = services.otp_enrol_start(user=request.user)
    uri = device.config_url
    context = _context(
        request,
        _("Set up two-factor sign-in"),
        form=form,
        secret=b32encode(device.bin_key).decode("ascii"),
        otpauth_uri=uri,
        qr=qr_svg(uri, title=_("QR code for your authenticator app")),
    )
    return render(request, "account/two_factor_setup.html", context)


@signed_in_page
def backup_codes(request: HttpRequest) -> HttpResponse:
    """New backup codes, after the user proves the authenticator app once more."""
    if not is_verified(request.user):
        return HttpResponseRedirect(_with_next("otp-verify", request.get_full_path()))
    form = OTPTokenForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            services.otp_verify(user=request.user, token=form.cleaned_data["otp_token"], allow_backup=False)
            codes = services.backup_codes_issue(actor=Actor.for_user(request.user), user=request.user)
        except ApplicationError as exc:
            form.add_error("otp_token", exc.message)
        else:
            return _codes_page(request, codes, enrolled=False)
    context = _context(request, _("Backup codes"), form=form)
    return render(request, "account/two_factor_backup_codes.html", context)
