"""Canonical JSON and the chain hash. Pure: no ORM, no clock.

canonical = sorted keys, no spaces, UTF-8 (no \\u escapes for non-ASCII), UTC ISO-8601
times with six fraction digits and a Z, dates as ISO dates, decimals as strings, no floats.
hash = sha256(VERSION_TAG || prev_hash || canonical), hex.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

VERSION_TAG = b"creditledger-ledger/v1\n"
GENESIS_HASH = "0" * 64


class CanonicalError(TypeError):
    pass


def normalise(value: Any) -> Any:
    """Turn a payload into plain JSON types following the canonical rules."""
    # The exact built-in types first, and plain values of a dict or list without a call of
    # their own: payloads are mostly these, and bulk appends make this walk a cost.
    # Anything else (subclasses such as text choices, decimals, times) takes the general path.
    kind = type(value)
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str and not isinstance(key, str):
                raise CanonicalError(f"ledger keys must be strings, got {key!r}")
            out[key] = _leaf(item) if type(item) in _LEAVES else normalise(item)
        return out
    if kind is list or kind is tuple:
        return [_leaf(item) if type(item) in _LEAVES else normalise(item) for item in value]
    if kind in _LEAVES:
        return _leaf(value)
    return _normalise_other(value)


_LEAVES = frozenset({str, int, bool, type(None)})


def _leaf(value: Any) -> Any:
    if type(value) is str and (not value.isascii() or "\x00" in value):
        _check_text(value)
    return value


def _check_text(value: str) -> None:
    # jsonb refuses NUL, and UTF-8 cannot encode a lone surrogate: refuse both here.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CanonicalError("ledger strings must be valid Unicode text") from exc
    if "\x00" in value:
        raise CanonicalError("ledger strings cannot hold NUL characters")


def _normalise_other(value: Any) -> Any:
    if isinstance(value, str):
        _check_text(value)
        return value
    if isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        raise CanonicalError("floats are not allowed in ledger entries; use Decimal or str")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return format_time(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return normalise(dict(value))
    if isinstance(value, (list, tuple)):
        return normalise(list(value))
    raise CanonicalError(f"cannot put {type(value).__name__} into a ledger entry")


def format_time(value: dt.datetime) -> str:
    if value.tzinfo is None:
        raise CanonicalError("ledger times must be timezone-aware")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)


def dumps(value: Any) -> bytes:
    return _encode(normalise(value))


def _encode(normalised: Any) -> bytes:
    # orjson writes exactly what the reference below writes for normalised values (a test
    # holds them equal), several times faster; it refuses integers past 64 bits, which the
    # reference still writes.
    try:
        return orjson.dumps(normalised, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return _reference_encode(normalised)


def _reference_encode(normalised: Any) -> bytes:
    return json.dumps(normalised, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def entry_body(
    *,
    seq: int,
    at: dt.datetime,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    trader_uscc: str,
    payload: dict,
) -> bytes:
    """The canonical bytes of one entry: everything an auditor sees, in one document."""
    return dumps(
        {
            "seq": seq,
            "at": at,
            "actor": actor,
            "action": action,
            "subject": {"type": subject_type, "id": subject_id, "trader": trader_uscc},
            "payload": payload,
        }
    )


@dataclass(frozen=True)
class BodyParts:
    """An entry's canonical bytes on either side of its seq, built before the append lock
    is taken: under the lock only the seq is spliced in and the hash computed.

    The top-level keys sort as action < actor < at < payload < seq < subject, so
    before_seq + seq + after_seq is byte for byte what entry_body gives (a test says so).
    """

    before_seq: bytes
    after_seq: bytes
    payload: Any  # normalised
    payload_json: str

    def body(self, seq: int) -> bytes:
        return self.before_seq + str(int(seq)).encode("ascii") + self.after_seq


def entry_parts(
    *,
    at: dt.datetime,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    trader_uscc: str,
    payload: dict,
) -> BodyParts:
    payload = normalise(payload)
    payload_bytes = _encode(payload)
    head = _head(action, actor, at)
    subject = _encode(normalise({"type": subject_type, "id": subject_id, "trader": trader_uscc}))
    return BodyParts(
        before_seq=head[:-1] + b',"payload":' + payload_bytes + b',"seq":',
        after_seq=b',"subject":' + subject + b"}",
        payload=payload,
        payload_json=payload_bytes.decode("utf-8"),
    )


@functools.lru_cache(maxsize=256)
def _head(action: str, actor: str, at: dt.datetime) -> bytes:
    # A batch's entries share their actor and time, and a handful of actions.
    return _encode(normalise({"action": action, "actor": actor, "at": at}))


def chain_hash(prev_hash: str, body: bytes) -> str:
    return hashlib.sha256(VERSION_TAG + prev_hash.encode("ascii") + b"\n" + body).hexdigest()
