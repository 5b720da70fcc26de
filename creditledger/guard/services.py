"""The security audit trail: sign-ins, failures, lockouts, sign-outs and admin log entries.

Each function is one transaction and writes one ledger entry (admin_log_record: one per
admin log entry not yet recorded). Signals and middleware (receivers.py, middleware.py)
only call these.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth import get_user_model
from django.db import transaction

from creditledger.ledger.actors import Actor
from creditledger.ledger.models import LedgerEntry, PendingEntry
from creditledger.ledger.services import Entry, ledger_append, ledger_append_many
from creditledger.locks import advisory_xact_lock

# What a client typed goes into an append-only record: keep it bounded and storable.
USERNAME_MAX = 150
_ADMIN_ACTIONS = {ADDITION: "added", CHANGE: "changed", DELETION: "deleted"}


def clean_typed(value: Any, limit: int = USERNAME_MAX) -> str:
    """A client-supplied string made safe for the ledger: text, no NUL, at most `limit` chars.

    Canonical JSON refuses NUL and lone surrogates; a sign-in must not fail because the
    username box held either.
    """
    text = value if isinstance(value, str) else ("" if value is None else str(value))
    text = text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\N{REPLACEMENT CHARACTER}")
    return text[:limit]


def _user_subject(username: str) -> str:
    """The id of the account a username names, or "unknown": failures for real accounts
    are then found with the account's other entries."""
    User = get_user_model()
    pk = User._default_manager.filter(**{User.USERNAME_FIELD: username}).values_list("pk", flat=True).first()
    return str(pk) if pk is not None else "unknown"


@transaction.atomic
def staff_signed_in(*, user: Any, address: str) -> LedgerEntry:
    return _session_event("staff.signed_in", user, address)


@transaction.atomic
def staff_signed_out(*, user: Any, address: str) -> LedgerEntry:
    return _session_event("staff.signed_out", user, address)


def _session_event(action: str, user: Any, address: str) -> LedgerEntry:
    return ledger_append(
        actor=Actor.for_user(user),
        action=action,
        subject_type="user",
        subject_id=user.pk,
        payload={"username": user.get_username(), "address": address},
    )


@transaction.atomic
def staff_sign_in_failed(
    *, username: Any, address: str, failures: int | None = None, locked: bool = False
) -> LedgerEntry:
    """A failed sign-in: the username as typed and the address, never the password.

    `failures` is the count for this (username, address) pair so far; `locked` says the
    attempt was refused because the pair was already locked (no password was checked).
    """
    typed = clean_typed(username)
    return ledger_append(
        actor=Actor.client(clean_typed(address, 64)),
        action="staff.sign_in_failed",
        subject_type="user",
        subject_id=_user_subject(typed),
        payload={
            "username": typed,
            "address": clean_typed(address, 64),
            "failures": failures,
            "locked": locked,
        },
    )


@transaction.atomic
def staff_locked_out(
    *, username: Any, address: str, failures: int | None, cool_off_minutes: int
) -> LedgerEntry:
    """The pair (username, address) reached the failure limit and is locked."""
    typed = clean_typed(username)
    return ledger_append(
        actor=Actor.client(clean_typed(address, 64)),
        action="staff.locked_out",
        subject_type="user",
        subject_id=_user_subject(typed),
        payload={
            "username": typed,
            "address": clean_typed(address, 64),
            "failures": failures,
            "cool_off_minutes": cool_off_minutes,
        },
    )


def _admin_entry(log: LogEntry) -> Entry:
    content_type = log.content_type
    return Entry(
        action="admin.logged",
        subject_type="admin_log",
        subject_id=log.pk,
        payload={
            "log_entry": log.pk,
            "action": _ADMIN_ACTIONS.get(log.action_flag, str(log.action_flag)),
            "object": {
                "type": f"{content_type.app_label}.{content_type.model}" if content_type else "",
                "id": clean_typed(log.object_id, 255),
                "repr": clean_typed(log.object_repr, 200),
            },
            # The admin's own record: a JSON list of what changed (field names, not values).
            "change_message": clean_typed(log.change_message, 4000),
            "at": log.action_time,
        },
    )


ADMIN_LOG_LOCK = "ledger_admin_log"


@transaction.atomic
def admin_log_record(*, log_entries: Iterable[LogEntry]) -> list[LedgerEntry]:
    """Record admin log entries in the ledger, each once.

    Called for every LogEntry the admin saves, and again after each admin request for the
    ones it bulk-created (several deletions at once send no post_save). An entry already
    in the ledger (or queued for it) is skipped, under a lock of its own, so the two paths never double up.
    """
    logs = sorted({log.pk: log for log in log_entries}.values(), key=lambda log: log.pk)
    if not logs:
        return []
    advisory_xact_lock(ADMIN_LOG_LOCK)
    ids = [str(log.pk) for log in logs]
    # Queued for the sealer, or sealed: the queue first, so one the sealer moves between
    # the two reads is seen in one of them.
    queued = PendingEntry.objects.filter(subject_type="admin_log", subject_id__in=ids)
    sealed = LedgerEntry.objects.filter(subject_type="admin_log", subject_id__in=ids)
    done = {*queued.values_list("subject_id", flat=True), *sealed.values_list("subject_id", flat=True)}
    written: list[LedgerEntry] = []
    by_user: dict[int, list[LogEntry]] = {}
    for log in logs:
        if str(log.pk) not in done:
            by_user.setdefault(log.user_id, []).append(log)
    for user_id, group in by_user.items():
        actor = f"user:{user_id}"
        written += ledger_append_many(actor=actor, entries=[_admin_entry(log) for log in group])
    return written


def recent_lockout_addresses(*, username: str, since) -> list[str]:
    """The addresses this username was locked from since `since`, from the ledger (the
    cache handler keeps only hashed keys, so the ledger is where the pairs can be found)."""
    addresses = LedgerEntry.objects.filter(
        action="staff.locked_out", at__gte=since, payload__username=clean_typed(username)
    ).values_list("payload__address", flat=True)
    return sorted({address for address in addresses if address})


@transaction.atomic
def staff_unlock(*, actor: Actor, username: str, addresses: list[str]) -> LedgerEntry:
    """Lift the lockout of `username` from each of `addresses` (all its attempts when the
    list is empty and the handler can find them by username alone: the database handler).

    The counters are reset at once (they live outside the database); the ledger entry says
    who unlocked what.
    """
    from axes.handlers.proxy import AxesProxyHandler

    typed = clean_typed(username)
    removed = 0
    if addresses:
        for address in addresses:
            removed += AxesProxyHandler.reset_attempts(username=typed, ip_address=address) or 0
    else:
        removed += AxesProxyHandler.reset_attempts(username=typed) or 0
    return ledger_append(
        actor=actor,
        action="staff.unlocked",
        subject_type="user",
        subject_id=_user_subject(typed),
        payload={"username": typed, "addresses": list(addresses), "counters_removed": removed},
    )
