"""The page a locked-out client sees (settings.AXES_LOCKOUT_CALLABLE)."""

from __future__ import annotations

import math
from typing import Any

from axes.helpers import get_client_username, get_cool_off
from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone


def lockout(
    request: HttpRequest, original_response: Any = None, credentials: dict | None = None
) -> HttpResponse:
    """429 in the admin's look, saying when to try again.

    Every attempt while locked restarts the wait (AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT),
    so the lock ends one cool-off after this attempt.
    """
    cool_off = get_cool_off(request)
    seconds = int(cool_off.total_seconds()) if cool_off else 0
    context = {
        **admin.site.each_context(request),
        "title": "",
        "username": get_client_username(request, credentials) or "",
        "retry_at": timezone.now() + cool_off if cool_off else None,
        "minutes": math.ceil(seconds / 60),
        "failure_limit": settings.AXES_FAILURE_LIMIT,
    }
    response = TemplateResponse(
        request, "admin/lockout.html", context, status=settings.AXES_HTTP_RESPONSE_CODE
    ).render()
    if seconds:
        response["Retry-After"] = str(seconds)
    return response
