"""Request middleware: the probe and metrics endpoints, the request id and log context, and
the request latency histogram. The three go first in MIDDLEWARE, in this order."""

from __future__ import annotations

import logging
import re
import time
import uuid

from django.conf import settings

from creditledger.ops import health, instruments, log_context
from creditledger.ops import metrics as metrics_views

access_log = logging.getLogger("creditledger.request")

REQUEST_ID_HEADER = "X-Request-ID"
# Accept a caller's id only when it is short and plain: it goes into every log line.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_CODE_CHARS = re.compile(r"[^0-9A-Z]")


class OpsEndpointsMiddleware:
    """Answer /healthz, /readyz and /metrics before anything else runs.

    Probes and Prometheus address a process by its IP, so their Host header is not in
    ALLOWED_HOSTS, and they speak plain HTTP inside the network, which SECURE_SSL_REDIRECT
    would bounce. None of these answers depends on the host or the scheme, so they are
    served ahead of SecurityMiddleware and CommonMiddleware. (/metrics checks its own
    token or address.)
    """

    ENDPOINTS = {"/healthz": health.healthz, "/readyz": health.readyz, "/metrics": metrics_views.metrics}

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        view = self.ENDPOINTS.get(request.path_info.rstrip("/") or "/")
        if view is not None and request.method in ("GET", "HEAD"):
            return view(request)
        return self.get_response(request)


class RequestContextMiddleware:
    """A request id (the caller's X-Request-ID, or a new one), echoed in the response; the
    log context for the request; one access line per request when LOG_REQUESTS is on."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        with log_context.scope(request_id=request_id, request=request):
            started = time.perf_counter()
            response = self.get_response(request)
            if settings.LOG_REQUESTS:
                match = getattr(request, "resolver_match", None)
                access_log.info(
                    "%s %s %s",
                    request.method,
                    request.path,
                    response.status_code,
                    extra={
                        "method": request.method,
                        "path": request.path,
                        "status": response.status_code,
                        "view": match.view_name if match else None,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    },
                )
        response[REQUEST_ID_HEADER] = request_id
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        # A trader's code in the URL (the API's traders/{uscc}) names the trader of the request.
        code = view_kwargs.get("uscc")
        if isinstance(code, str):
            log_context.bind(trader=_CODE_CHARS.sub("", code.upper())[:18])
        return None


class RequestMetricsMiddleware:
    """Request latency by resolved view name, method and status class."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        instruments.observe_request(
            view_label(request), request.method, response.status_code, time.perf_counter() - started
        )
        return response


def view_label(request) -> str:
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match.view_name or match._func_path
    if request.path_info.startswith("/" + settings.STATIC_URL.lstrip("/")):
        return "static"
    return "unresolved"  # 404s, and answers given before URL resolution (redirects)
