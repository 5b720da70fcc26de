"""Every answer under /api/ is JSON in the one error shape, whatever went wrong and wherever.

DRF's exception handler (creditledger.exceptions) shapes what happens inside an API view.
Everything else would reach a platform as one of Django's HTML pages: a path no view
matches (404), a body too large or with too many files (Django's RequestDataTooBig and
friends, 400), an exception outside DRF's reach or in a middleware (500), the database
gone in the middle of a request. ApiErrorMiddleware turns those into JSON:

    {"code": "...", "message": "...", "fields": {}}

- a Content-Length over the limit is refused with 413 before a byte of the body is read
  (API_MAX_BODY_BYTES for JSON, API_MAX_UPLOAD_BYTES for multipart evidence);
- a request that failed because the database connection failed (OperationalError,
  InterfaceError: a restart, a failover) is a 503 with Retry-After, which a platform's
  client retries, rather than a 500 it would log as our bug;
- the per-key rate limit's RateLimit and RateLimit-Policy headers on every keyed answer;
- a path with or without its trailing slash reaches the same endpoint (no redirect);
- an HTML error page from anywhere below is replaced by its JSON form, same status,
  the other headers kept (the request id among them).
"""

from __future__ import annotations

import logging
import sys

from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.db import InterfaceError, OperationalError, connections
from django.http import HttpResponse, JsonResponse
from django.urls import Resolver404, resolve

log = logging.getLogger(__name__)

PREFIX = "/api/"
RETRY_AFTER_SECONDS = 5
_KEPT_HEADERS_SKIP = {"content-type", "content-length", "content-language"}
_MESSAGES = {
    400: ("bad_request", "The request could not be read."),
    403: ("permission_denied", "You do not have permission to perform this action."),
    404: ("not_found", "No API endpoint or object at this path."),
    405: ("method_not_allowed", "This method is not allowed on this path."),
    413: ("payload_too_large", "The request body is too large."),
    415: ("unsupported_media_type", "Unsupported media type in the request."),
    429: ("throttled", "Too many requests."),
    500: ("server_error", "The server failed to answer; X-Request-ID names the request in our logs."),
    503: ("unavailable", "The service is briefly unavailable; retry after the time in Retry-After."),
}


def error_response(status: int, code: str | None = None, message: str | None = None, **extra) -> HttpResponse:
    default_code, default_message = _MESSAGES.get(status, ("error", "The request failed."))
    body = {"code": code or default_code, "message": message or default_message, "fields": {}, **extra}
    return JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})


class ApiErrorMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        if not request.path_info.startswith(PREFIX):
            return self.get_response(request)
        refused = _refuse_by_length(request)
        if refused is not None:
            return refused
        _accept_either_slash(request)
        request._api_exception = None
        request.ratelimit = None
        _skip_health_checks()
        response = _as_json(request, self.get_response(request))
        if request.ratelimit is not None:
            for name, value in request.ratelimit.headers().items():
                response[name] = value
        return response

    def process_exception(self, request, exception):
        """Exceptions raised in a view outside DRF's handler (DRF views shape their own)."""
        if not request.path_info.startswith(PREFIX):
            return None
        return _for_exception(exception)


def _skip_health_checks() -> None:
    """No `SELECT 1` before an API request's first query (CONN_HEALTH_CHECKS).

    The officers' pages keep the check: a connection the database dropped is replaced before
    the page runs. Under /api/ it would be one more round trip on every status lookup; a
    dropped connection fails the request instead, as a JSON 503 with Retry-After (above),
    Django discards the connection at the end of that request, and the client's retry gets
    a new one.
    """
    for conn in connections.all(initialized_only=True):
        conn.health_check_done = True


def _accept_either_slash(request) -> None:
    """`changes` and `changes/`, `traders/lookup/` and `traders/lookup` are the same endpoint.

    The path is switched in place, not redirected: a client does not follow a redirect with
    its POST body, and a redirect costs a round trip on every poll. It is decided before
    the request goes down (one resolve, about 0.1 ms): after a 404 it would be too late,
    CommonMiddleware having turned it into APPEND_SLASH's redirect (or, for a POST under
    DEBUG, an error).
    """
    path = request.path_info
    if _resolves(path, request):
        return
    other = path[:-1] if path.endswith("/") else path + "/"
    if _resolves(other, request):
        request.path_info = other
        request.path = request.path[: len(request.path) - len(path)] + other


def _resolves(path: str, request) -> bool:
    try:
        resolve(path, getattr(request, "urlconf", None))
    except Resolver404:
        return False
    return True


def _refuse_by_length(request) -> HttpResponse | None:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return error_response(400, "bad_content_length", "Content-Length is not a number.")
    multipart = request.META.get("CONTENT_TYPE", "").lower().startswith("multipart/")
    limit = settings.API_MAX_UPLOAD_BYTES if multipart else settings.API_MAX_BODY_BYTES
    if length > limit:
        message = f"The request body is {length} bytes; at most {limit} are accepted here."
        return error_response(413, message=message, limit=limit)
    return None


def _for_exception(exception: BaseException) -> HttpResponse | None:
    if isinstance(exception, (OperationalError, InterfaceError)):
        response = error_response(503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    if isinstance(exception, RequestDataTooBig):
        return error_response(413)
    if isinstance(exception, (TooManyFilesSent, TooManyFieldsSent)):
        return error_response(413, "too_many_parts", str(exception) or "Too many files or fields.")
    return None


def _as_json(request, response: HttpResponse) -> HttpResponse:
    if response.status_code < 400 or response.get("Content-Type", "").startswith("application/json"):
        return response
    exception = getattr(request, "_api_exception", None)
    replacement = (_for_exception(exception) if exception is not None else None) or error_response(
        response.status_code
    )
    for name, value in response.items():
        if name.lower() not in _KEPT_HEADERS_SKIP and name not in replacement:
            replacement[name] = value
    return replacement


def _remember_exception(sender, request=None, **kwargs) -> None:
    # Django turns an exception raised in a middleware or a view into its HTML 500 (or
    # 400) page before ApiErrorMiddleware sees the response; it announces the exception
    # first, and this keeps it so the JSON answer can tell a lost database (503) apart.
    if request is not None and request.path_info.startswith(PREFIX):
        request._api_exception = sys.exc_info()[1]


signals.got_request_exception.connect(_remember_exception, dispatch_uid="api_errors_remember")
