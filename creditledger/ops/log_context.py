"""What a log line is about: the request id, the actor, the trader, the Celery task.

One context variable holds a small dict, so every thread and task sees its own. The
request middleware opens a scope per request and the Celery hooks one per task; any other
code adds what it knows with `bind`, e.g. `log_context.bind(trader=trader.uscc)` where
the trader is resolved. The log filter (creditledger.ops.logs) copies the fields onto
each record.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.utils.functional import empty

FIELDS = ("request_id", "actor", "trader", "task_name", "task_id")

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("log_context", default=None)


def _fields() -> dict[str, Any]:
    return _context.get() or {}


def bind(**fields: Any) -> None:
    """Add fields to the current scope (a request, a task); they last until it ends."""
    unknown = set(fields) - {*FIELDS, "request"}
    if unknown:
        raise TypeError(f"unknown log context field(s): {', '.join(sorted(unknown))}")
    _context.set({**_fields(), **fields})


@contextmanager
def scope(**fields: Any) -> Iterator[None]:
    """A fresh context for one request or task: nothing leaks into the next one."""
    token = _context.set(dict(fields))
    try:
        yield
    finally:
        _context.reset(token)


def open_scope(**fields: Any) -> contextvars.Token:
    """`scope` for callers that open and close in two places (Celery's prerun/postrun)."""
    return _context.set(dict(fields))


def close_scope(token: contextvars.Token) -> None:
    _context.reset(token)


def current() -> dict[str, Any]:
    """The fields of the current scope, with the actor worked out from the request if unbound."""
    fields = dict(_fields())
    request = fields.pop("request", None)
    if "actor" not in fields and request is not None:
        actor = actor_of(request)
        if actor:
            fields["actor"] = actor
    return fields


def actor_of(request) -> str | None:
    """`apikey:PREFIX` or `user:ID` once the request has been authenticated, else None.

    Never authenticates by itself: a log line must not cost a session lookup. DRF copies
    its `auth` onto the Django request when it authenticates, so API views' lines carry
    the key from then on.
    """
    prefix = getattr(getattr(request, "auth", None), "prefix", None)
    if prefix:
        return f"apikey:{prefix}"
    user = request.__dict__.get("user")
    if user is None or getattr(user, "_wrapped", None) is empty:
        return None
    if getattr(user, "is_authenticated", False):
        return f"user:{user.pk}"
    return None
