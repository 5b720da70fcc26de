"""Writes the sign-in records a request collected, after its view, outside its transaction."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.admin.models import LogEntry
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from creditledger.guard import receivers, services


class SignInRecordMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        setattr(request, receivers.QUEUE_ATTR, [])
        started = timezone.now()
        response = self.get_response(request)
        for func, kwargs in getattr(request, receivers.QUEUE_ATTR):
            receivers.write(func, kwargs)
        lockout = getattr(request, "_guard_lockout", None)
        if lockout is not None:
            receivers.write(services.staff_locked_out, lockout)
        if (
            request.method == "POST"
            and getattr(request, "user", None) is not None
            and request.user.is_authenticated
        ):
            self._catch_up_admin_log(request, started)
        return response

    @staticmethod
    def _catch_up_admin_log(request: HttpRequest, started) -> None:
        # Deleting several objects at once bulk-creates the admin's log entries, which
        # sends no post_save: record this user's entries from this request that are not
        # in the ledger yet (the service skips those that are).
        logs = list(
            LogEntry.objects.filter(user_id=request.user.pk, action_time__gte=started).select_related(
                "content_type"
            )
        )
        if logs:
            receivers.write(services.admin_log_record, {"log_entries": logs})
