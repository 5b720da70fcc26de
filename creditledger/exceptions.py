"""The one domain error that services raise, and its mapping to the API's error shape."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions as drf_exceptions
from rest_framework.views import exception_handler as drf_exception_handler


class ApplicationError(Exception):
    """A rule was broken; nothing was written.

    `field` names the input at fault (None for the object as a whole), `code` is a stable
    machine-readable rule name, `value` the offending value where it helps.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        code: str = "invalid",
        value: Any = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code
        self.value = value
        self.extra = extra or {}

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            data["fields"] = {self.field: [self.message]}
        if self.extra:
            data.update(self.extra)
        return data

    def __str__(self) -> str:
        if self.field:
            return f"{self.field}: {self.message}"
        return self.message


def api_exception_handler(exc: Exception, context: dict) -> Any:
    """Every 4xx in one shape: {"code", "message", "fields": {path: [messages]}}."""
    if isinstance(exc, PermissionDenied):
        data = exc.as_dict()
        exc = drf_exceptions.PermissionDenied()
    elif isinstance(exc, ApplicationError):
        data = exc.as_dict()
        exc = drf_exceptions.ValidationError()
    else:
        data = None
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if data is None:
        data = _shape(exc, response.data)
    data.setdefault("fields", {})
    response.data = data
    return response


def _shape(exc: Exception, detail: Any) -> dict[str, Any]:
    if isinstance(exc, drf_exceptions.ValidationError):
        fields: dict[str, list[str]] = {}
        _flatten(detail, "", fields)
        first = next(iter(fields.items()), ("", ["Invalid input."]))
        message = f"{first[0]}: {first[1][0]}" if first[0] else first[1][0]
        # The first message's rule (DRF's ErrorDetail.code: "required", "max_length",
        # "offset_required"...), so a program can tell them apart; "invalid" otherwise.
        code = getattr(first[1][0], "code", None) or "invalid"
        return {"code": str(code), "message": message, "fields": fields}
    code = getattr(getattr(exc, "detail", None), "code", None) or getattr(exc, "default_code", "error")
    message = detail.get("detail", detail) if isinstance(detail, dict) else detail
    return {"code": str(code), "message": str(message)}


def _flatten(detail: Any, prefix: str, out: dict[str, list[str]]) -> None:
    """Nested serializer errors to dotted paths: {"items.3.uscc": [...]}."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "" if key == "non_field_errors" else str(key)
            _flatten(value, f"{prefix}.{name}" if prefix and name else prefix or name, out)
    elif isinstance(detail, list) and detail and not all(isinstance(item, str) for item in detail):
        for index, value in enumerate(detail):
            if value:
                _flatten(value, f"{prefix}.{index}" if prefix else str(index), out)
    else:
        messages = detail if isinstance(detail, list) else [detail]
        # ErrorDetail is a str that keeps its code: kept as is for _shape, a str in the JSON.
        out.setdefault(prefix or "non_field_errors", []).extend(
            m if isinstance(m, drf_exceptions.ErrorDetail) else str(m) for m in messages
        )


class PermissionDenied(ApplicationError):
    """The actor may not do this. Interfaces answer 403."""

    def __init__(self, message: str, **kwargs: Any) -> None:
        kwargs.setdefault("code", "permission_denied")
        super().__init__(message, **kwargs)


def require_perm(actor: Any, perm: str, message: str) -> None:
    """Raise PermissionDenied unless the actor holds `perm` (see Actor.has_perm)."""
    if not actor.has_perm(perm):
        raise PermissionDenied(message)
