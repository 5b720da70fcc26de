"""Staff two-factor devices: enrolment, verification, backup codes, reset.

The devices are django-otp's: one confirmed TOTPDevice (an authenticator app) and one
StaticDevice holding single-use backup codes per staff user. Every change writes a ledger
entry about the user (subject "user"); no secret or code ever goes into the ledger.

A failed code must leave its mark: django-otp's throttling counts failures on the device
row, and an exception inside the transaction would roll that count back. So the checks
run in a transaction that returns its verdict, and the public functions raise the
ApplicationError after it has committed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import transaction
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django_otp.models import Device, VerifyNotAllowed
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from creditledger.exceptions import ApplicationError, PermissionDenied, require_perm
from creditledger.ledger.actors import Actor
from creditledger.ledger.services import ledger_append

BACKUP_CODE_COUNT = 10
TOTP_DEVICE_NAME = "Authenticator app"
STATIC_DEVICE_NAME = "Backup codes"
RESET_PERMISSION = "otp_totp.delete_totpdevice"

_SEPARATORS = re.compile(r"[\s-]+")


@dataclass(frozen=True)
class _Verdict:
    device: Device | None
    error: str = ""
    code: str = ""


def _record(actor: Actor | str, action: str, user, **payload) -> None:
    ledger_append(
        actor=actor,
        action=action,
        subject_type="user",
        subject_id=user.pk,
        payload={"username": user.get_username(), **payload},
    )


def confirmed_totp(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


def has_second_factor(user) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def backup_codes_left(user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def _normalise(token: str) -> str:
    # Authenticator apps show "123 456"; backup codes are printed lower case.
    return _SEPARATORS.sub("", token or "").lower()


def _check_allowed(device: Device) -> _Verdict | None:
    allowed, extra = device.verify_is_allowed()
    if allowed:
        return None
    extra = extra or {}
    if extra.get("reason") == VerifyNotAllowed.N_FAILED_ATTEMPTS:
        until = timezone.localtime(extra["locked_until"])
        message = _("Too many wrong codes (%(count)d in a row). Try again after %(time)s.") % {
            "count": extra["failure_count"],
            "time": formats.time_format(until, "H:i:s"),
        }
    else:
        message = _("Verification with this device is disabled at the moment.")
    return _Verdict(None, message, "throttled")


def _try(device: Device | None, token: str) -> _Verdict:
    if device is None:
        return _Verdict(None, _("The code is not valid. Check it and try again."), "invalid_token")
    refused = _check_allowed(device)
    if refused:
        return refused
    if device.verify_token(token):  # counts a failure (throttling) or consumes the code
        return _Verdict(device)
    return _Verdict(None, _("The code is not valid. Check it and try again."), "invalid_token")


def _raise_unless_verified(verdict: _Verdict) -> Device:
    if verdict.device is None:
        raise ApplicationError(verdict.error, field="otp_token", code=verdict.code)
    return verdict.device


# --- verification ---------------------------------------------------------------------------


@transaction.atomic
def _verify(user, token: str, allow_backup: bool) -> _Verdict:
    token = _normalise(token)
    if not token:
        return _Verdict(None, _("Enter the code from your authenticator app or a backup code."), "required")
    totp = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).order_by("pk").first()
    if totp is None:
        return _Verdict(None, _("This account has no second factor yet: set one up first."), "not_enrolled")
    # One device per attempt, chosen by the code's shape (six digits or a backup code), so
    # a typo never counts as a failure against the device the user did not mean.
    if token.isdigit() and len(token) == totp.digits:
        device, method = totp, "totp"
    elif allow_backup:
        device = StaticDevice.objects.select_for_update().filter(user=user, confirmed=True).first()
        method = "backup_code"
    else:
        return _Verdict(None, _("Enter the current code from your authenticator app."), "invalid_token")
    verdict = _try(device, token)
    if verdict.device is not None:
        payload = {"method": method, "device": device.persistent_id}
        if method == "backup_code":
            payload["backup_codes_left"] = device.token_set.count()
        _record(Actor.for_user(user), "staff.otp_verified", user, **payload)
    elif verdict.code == "invalid_token" and device is not None:
        _record(
            Actor.for_user(user),
            "staff.otp_failed",
            user,
            method=method,
            device=device.persistent_id,
            failures=device.throttling_failure_count,
        )
    return verdict


def otp_verify(*, user, token: str, allow_backup: bool = True) -> Device:
    """Check a TOTP code (or, when allowed, a backup code, which is then used up) for
    `user` and return the device that accepted it. Raises ApplicationError(field="otp_token")
    when the code is wrong, the device is throttled or the user has no second factor."""
    return _raise_unless_verified(_verify(user, token, allow_backup))


# --- enrolment ------------------------------------------------------------------------------


@transaction.atomic
def otp_enrol_start(*, user) -> TOTPDevice:
    """The unconfirmed TOTP device the user is setting up (created on first call, reused
    after, so reloading the page shows the same secret). Refused once enrolled."""
    if has_second_factor(user):
        raise ApplicationError(_("This account already has a second factor."), code="already_enrolled")
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)
        _record(Actor.for_user(user), "staff.otp_enrolment_started", user, device=device.persistent_id)
    return device


@transaction.atomic
def _confirm(user, token: str) -> tuple[_Verdict, list[str]]:
    if TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).exists():
        return _Verdict(None, _("This account already has a second factor."), "already_enrolled"), []
    device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).order_by("-pk").first()
    if device is None:
        return _Verdict(
            None, _("Start the set-up again: no device is waiting for confirmation."), "no_device"
        ), []
    token = _normalise(token)
    if not (token.isdigit() and len(token) == device.digits):
        message = _("Enter the %(digits)d-digit code your authenticator app shows.") % {
            "digits": device.digits
        }
        return _Verdict(None, message, "invalid_token"), []
    verdict = _try(device, token)
    if verdict.device is None:
        return verdict, []
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    _record(Actor.for_user(user), "staff.otp_enrolled", user, device=device.persistent_id)
    codes = _issue_codes(Actor.for_user(user), user)
    return verdict, codes


def otp_enrol_confirm(*, user, token: str) -> tuple[TOTPDevice, list[str]]:
    """Confirm the device being set up with a code it produced; issue the backup codes.

    Returns (device, backup codes); the codes are shown once and stored nowhere else in
    clear. Raises ApplicationError(field="otp_token") on a wrong or throttled code.
    """
    verdict, codes = _confirm(user, token)
    return _raise_unless_verified(verdict), codes


@transaction.atomic
def otp_enrol_for_demo(*, actor: Actor, user) -> tuple[TOTPDevice, list[str]]:
    """Enrol an authenticator for `user` without a code from it, and issue backup codes.

    Only for `manage.py demo_setup` (a system actor, DEBUG or --force), so the demo logins
    it prints work from the first sign-in; staff enrol themselves on the set-up page.
    """
    if actor.kind != "system":
        raise PermissionDenied(_("Staff set up their own second factor."))
    if has_second_factor(user):
        raise ApplicationError(_("This account already has a second factor."), code="already_enrolled")
    TOTPDevice.objects.filter(user=user).delete()
    device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=True)
    _record(actor, "staff.otp_enrolled", user, device=device.persistent_id)
    return device, _issue_codes(actor, user)


# --- backup codes and reset ------------------------------------------------------------------


def _issue_codes(actor: Actor | str, user) -> list[str]:
    device, _created = StaticDevice.objects.select_for_update().get_or_create(
        user=user, name=STATIC_DEVICE_NAME, defaults={"confirmed": True}
    )
    StaticDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    device.token_set.all().delete()
    codes: list[str] = []
    while len(codes) < BACKUP_CODE_COUNT:
        code = StaticToken.random_token()
        if code not in codes:
            codes.append(code)
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    device.confirmed = True
    device.throttle_reset(commit=False)
    device.save()
    _record(actor, "staff.backup_codes_issued", user, device=device.persistent_id, count=len(codes))
    return codes


@transaction.atomic
def backup_codes_issue(*, actor: Actor | str, user) -> list[str]:
    """Replace the user's backup codes with BACKUP_CODE_COUNT new ones and return them.

    Only for an enrolled user: backup codes stand in for the authenticator, never alone.
    The caller has made the user prove the authenticator first (or is the demo setup).
    """
    if not has_second_factor(user):
        raise ApplicationError(_("Set up an authenticator app before backup codes."), code="not_enrolled")
    return _issue_codes(actor, user)


@transaction.atomic
def otp_reset(*, actor: Actor, user, reason: str = "") -> int:
    """Remove all of a user's second-factor devices (a lost phone). The user enrols again
    at the next sign-in; sessions verified with the removed devices stop being verified.
    Returns the number of devices removed."""
    require_perm(actor, RESET_PERMISSION, _("Only a superuser resets a second factor."))
    reason = (reason or "").strip()
    if len(reason) > 500:
        raise ApplicationError(_("At most 500 characters."), field="reason", code="max_length")
    removed = 0
    for model in (TOTPDevice, StaticDevice):
        _total, by_model = model.objects.filter(user=user).delete()
        removed += by_model.get(model._meta.label, 0)
    _record(actor, "staff.otp_reset", user, devices_removed=removed, reason=reason)
    return removed
