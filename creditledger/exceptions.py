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
    """Map ApplicationError to a 400 with the same shape as serializer errors."""
    if isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied(exc.as_dict())
    elif isinstance(exc, ApplicationError):
        exc = drf_exceptions.ValidationError(exc.as_dict())
    return drf_exception_handler(exc, context)


class PermissionDenied(ApplicationError):
    """The actor may not do this. Interfaces answer 403."""

    def __init__(self, message: str, **kwargs: Any) -> None:
        kwargs.setdefault("code", "permission_denied")
        super().__init__(message, **kwargs)


def require_perm(actor: Any, perm: str, message: str) -> None:
    """Raise PermissionDenied unless the actor holds `perm` (see Actor.has_perm)."""
    if not actor.has_perm(perm):
        raise PermissionDenied(message)
