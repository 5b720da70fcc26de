"""Signals in, service calls out. Sign-in events are queued on the request and written by
SignInRecordMiddleware once the view has returned, each in its own transaction: a view
whose transaction rolls back (ATOMIC_REQUESTS, an atomic block around authenticate())
cannot take the record of a failed sign-in or a lockout with it.

Outside a web request (no middleware queue: a shell, Django's test client login() and
force_login()) a failed sign-in or a lockout is written at once; a sign-in or sign-out
there has no client and is not a staff session, so it is not recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from axes.helpers import get_failure_limit
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_save

from creditledger.guard import services
from creditledger.guard.addresses import client_address

log = logging.getLogger(__name__)

QUEUE_ATTR = "_guard_records"


def write(func: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    """Write one record. A record that cannot be written is logged loudly, but never turns
    the sign-in page into an error: the client would learn nothing and the staff could not
    sign in."""
    try:
        func(**kwargs)
    except Exception:
        log.exception("could not record %s in the ledger", func.__name__)


def _record(request: Any, func: Callable[..., Any], **kwargs: Any) -> None:
    queue = getattr(request, QUEUE_ATTR, None) if request is not None else None
    if queue is None:
        write(func, kwargs)
        return
    if (func, kwargs) not in queue:  # the same event signalled twice is recorded once
        queue.append((func, kwargs))


def _address(request: Any) -> str:
    if request is None:
        return ""
    return getattr(request, "axes_ip_address", None) or client_address(request)


def _in_web_request(request: Any) -> bool:
    return request is not None and getattr(request, QUEUE_ATTR, None) is not None


def on_logged_in(sender, request=None, user=None, **kwargs) -> None:
    if user is not None and user.pk and _in_web_request(request):
        _record(request, services.staff_signed_in, user=user, address=_address(request))


def on_logged_out(sender, request=None, user=None, **kwargs) -> None:
    if user is not None and user.pk and _in_web_request(request):
        _record(request, services.staff_signed_out, user=user, address=_address(request))


def on_login_failed(sender, credentials=None, request=None, **kwargs) -> None:
    # Django has already replaced the password in `credentials` with stars; only the
    # username is taken from it.
    credentials = credentials or {}
    username = credentials.get(settings.AXES_USERNAME_FORM_FIELD, credentials.get("username", ""))
    failures = getattr(request, "axes_failures_since_start", None) if request is not None else None
    locked = False
    if request is not None and failures is not None:
        # axes counted this attempt before us; past the limit it refused without a
        # password check.
        locked = failures > get_failure_limit(request, credentials)
    _record(
        request,
        services.staff_sign_in_failed,
        username=username,
        address=_address(request),
        failures=failures,
        locked=locked,
    )


def on_locked_out(sender, request=None, username=None, ip_address=None, **kwargs) -> None:
    failures = getattr(request, "axes_failures_since_start", None) if request is not None else None
    credentials = getattr(request, "axes_credentials", None)
    if request is not None and failures is not None and failures > get_failure_limit(request, credentials):
        # axes signals again on every refused attempt while locked; the lockout began
        # when the limit was reached, and the refusals are recorded as failed sign-ins.
        return
    kwargs = {
        "username": username,
        "address": ip_address or _address(request),
        "failures": failures,
        "cool_off_minutes": settings.AXES_COOLOFF,
    }
    queue = getattr(request, QUEUE_ATTR, None) if request is not None else None
    if queue is None:
        write(services.staff_locked_out, kwargs)
    else:
        # axes signals the lockout before our failure receiver runs: keep the ledger's
        # order failure -> lockout.
        request._guard_lockout = kwargs


def on_log_entry_saved(
    sender, instance: LogEntry, created: bool = False, raw: bool = False, **kwargs
) -> None:
    if created and not raw:
        # In the admin's own transaction: the record stands or falls with the change.
        services.admin_log_record(log_entries=[instance])


def connect() -> None:
    user_logged_in.connect(on_logged_in, dispatch_uid="guard.logged_in")
    user_logged_out.connect(on_logged_out, dispatch_uid="guard.logged_out")
    user_login_failed.connect(on_login_failed, dispatch_uid="guard.login_failed")
    user_locked_out.connect(on_locked_out, dispatch_uid="guard.locked_out")
    post_save.connect(on_log_entry_saved, sender=LogEntry, dispatch_uid="guard.admin_log")
