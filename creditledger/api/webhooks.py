"""Webhooks without the database: which ledger entries become which events, the payload,
the Standard Webhooks signature, the URL guard, one HTTP attempt and the retry schedule.

The services (webhook_services.py) decide when; this module decides what and how.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import ipaddress
import json
import random
import secrets
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from standardwebhooks import Webhook

from creditledger.ledger.canonical import format_time

# --- events ---------------------------------------------------------------------------------

RESTRICTION_PROPOSED = "restriction.proposed"
RESTRICTION_APPLIED = "restriction.applied"
RESTRICTION_LIFTED = "restriction.lifted"
GRADE_CHANGED = "grade.changed"
EVENTS = (RESTRICTION_PROPOSED, RESTRICTION_APPLIED, RESTRICTION_LIFTED, GRADE_CHANGED)

# A test notice sent on request (admin action, manage.py webhook_test): not an event one
# subscribes to, never made from the ledger, never retried.
PING = "ping"

# The ledger actions that can become an event: the dispatcher reads only these.
SOURCE_ACTIONS = (RESTRICTION_PROPOSED, RESTRICTION_APPLIED, RESTRICTION_LIFTED, "score.changed")

_RESTRICTION_FIELDS = (
    "restriction",
    "measure",
    "state",
    "basis",
    "rule_code",
    "noticed_at",
    "objection_deadline",
    "starts_at",
    "ends_at",
    "lifted_at",
    "lifted_reason",
)
_GRADE_FIELDS = ("grade", "previous_grade", "score", "previous_score", "as_of")


def event_for(action: str, payload: dict[str, Any]) -> str | None:
    """The event a ledger entry raises, or None.

    A score.changed raises grade.changed only when the grade moved: platforms act on
    grades and measures, and a score that decays by a point each night is not news.
    """
    if action in (RESTRICTION_PROPOSED, RESTRICTION_APPLIED, RESTRICTION_LIFTED):
        return action
    if action == "score.changed" and payload.get("grade") != payload.get("previous_grade"):
        return GRADE_CHANGED
    return None


def event_payload(
    *, event: str, seq: int, at: dt.datetime, trader_uscc: str, entry: dict, leaf_hash: bytes
) -> dict:
    """The Standard Webhooks payload: type, timestamp (when the ledger recorded it), data.

    `data.seq` is the ledger seq, one per notice: receivers dedupe and order a measure's
    notices by it, and fill gaps from the change feed (GET /api/v1/changes/?after=SEQ).
    `data.leaf_hash` is the entry's leaf in the ledger's Merkle tree (base64), to check its
    inclusion under a signed checkpoint. `data.version` is shared by every entry of one
    commit: it guards the trader's status and grade, never a notice as a whole.
    """
    fields = _GRADE_FIELDS if event == GRADE_CHANGED else _RESTRICTION_FIELDS
    data: dict[str, Any] = {"seq": seq, "trader": trader_uscc}
    data["leaf_hash"] = base64.b64encode(leaf_hash).decode("ascii")
    data.update({name: entry.get(name) for name in fields})
    # Where the trader stands after this entry's commit (all entries of a commit agree).
    data["status"] = entry.get("status")
    data["version"] = entry.get("version")
    return {"type": event, "timestamp": format_time(at), "data": data}


def ping_payload(*, endpoint_id: int, platform_code: str, at: dt.datetime) -> dict:
    """The body of a test notice: the same envelope as the events, nothing to apply."""
    return {
        "type": PING,
        "timestamp": format_time(at),
        "data": {
            "endpoint": endpoint_id,
            "platform": platform_code,
            "message": "A test notice from creditledger: verify the signature, answer 2xx, apply nothing.",
        },
    }


def wants(subscribed: Iterable[str], event: str) -> bool:
    """An endpoint with no events listed gets every event."""
    subscribed = list(subscribed or ())
    return not subscribed or event in subscribed


def body_bytes(payload: dict) -> bytes:
    """The bytes sent and signed: compact, sorted keys, so every retry sends the same body."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


# --- signing --------------------------------------------------------------------------------

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    """A signing secret in the "whsec_<base64>" form the standardwebhooks libraries take."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def new_msg_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def sign_headers(*, msg_id: str, body: bytes, secrets_: Iterable[str], at: dt.datetime) -> dict[str, str]:
    """webhook-id, webhook-timestamp and one "v1,<base64>" signature per secret.

    During a rotation both the new and the previous secret sign, space-separated, so a
    receiver that still holds the old secret keeps verifying.
    """
    at = at.astimezone(dt.UTC)  # Webhook.sign replaces tzinfo rather than converting
    text = body.decode("utf-8")
    signatures = [Webhook(secret).sign(msg_id, at, text) for secret in secrets_ if secret]
    if not signatures:
        raise ValueError("an endpoint needs a signing secret")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


# --- the URL guard --------------------------------------------------------------------------


class UnsafeURL(ValueError):
    """The URL may not receive webhooks; the message says why, `rule` names the rule."""

    rule = "unsafe_url"


class InsecureURL(UnsafeURL):
    """An http:// URL where only https:// will do."""

    rule = "https_required"


# Private ranges proper (RFC 1918, carrier-grade NAT, unique local): allowed by a setting.
PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True)
class Target:
    """A checked URL: connect to one of `addresses` (never resolve `host` again)."""

    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


Resolver = Callable[[str, int], Iterable[str]]


def resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def _unwrap(addr: ipaddress.IPv4Address | ipaddress.IPv6Address):
    """The IPv4 address inside an IPv6 one that reaches it (mapped, 6to4, NAT64)."""
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped:
            return addr.ipv4_mapped
        if addr.sixtofour:
            return addr.sixtofour
        if addr in NAT64:
            return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return addr


def address_refusal(ip: str, *, allow_loopback: bool, allow_private: bool) -> str | None:
    """Why webhooks may not go to `ip`, or None when they may."""
    addr = _unwrap(ipaddress.ip_address(ip))
    if addr.is_loopback:
        return None if allow_loopback else "a loopback address"
    if addr.is_link_local:
        return "a link-local address"
    if addr.is_multicast:
        return "a multicast address"
    if addr.is_unspecified:
        return "an unspecified address"
    if addr.is_reserved:
        return "a reserved address"
    if any(addr in net for net in PRIVATE_NETWORKS if net.version == addr.version):
        return None if allow_private else "a private address"
    if not addr.is_global:
        return "an address that is not public"
    return None


def check_url(
    url: str, *, allow_loopback: bool, allow_private: bool, resolver: Resolver | None = None
) -> Target:
    """Parse and resolve `url`; raise UnsafeURL unless every address it resolves to is allowed.

    Every address counts: a host with one public and one private address could be made to
    reach the private one.

    Notices go over HTTPS only: they name traders and measures, and the signature proves
    who sent them, not that nobody read them on the way. The one exception is a receiver
    on this machine (tests, a developer's laptop): http:// is accepted when loopback is
    allowed and every address the host resolves to is a loopback one.
    """
    parts = urlsplit((url or "").strip())
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL("Use an https:// URL.")
    if parts.scheme == "http" and not allow_loopback:
        raise InsecureURL("Use an https:// URL: webhooks are sent over HTTPS only.")
    if parts.username or parts.password:
        raise UnsafeURL("Put no credentials in the URL; receivers verify the signature instead.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeURL("The port is not valid.") from exc
    if not parts.hostname:
        raise UnsafeURL("The URL has no host.")
    try:
        host = parts.hostname.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise UnsafeURL("The host name is not valid.") from exc
    try:
        addresses = tuple((resolver or resolve)(host, port))
    except (OSError, UnicodeError) as exc:
        raise UnsafeURL(f"The host {host} does not resolve.") from exc
    if not addresses:
        raise UnsafeURL(f"The host {host} does not resolve.")
    for ip in addresses:
        why = address_refusal(ip, allow_loopback=allow_loopback, allow_private=allow_private)
        if why:
            raise UnsafeURL(f"The host {host} resolves to {ip}, {why}; webhooks may not go there.")
    if parts.scheme == "http" and not all(_unwrap(ipaddress.ip_address(ip)).is_loopback for ip in addresses):
        raise InsecureURL(
            "Use an https:// URL: webhooks are sent over HTTPS only "
            "(http:// only to a loopback address, where loopback is allowed)."
        )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port, path, addresses)


# --- one attempt ----------------------------------------------------------------------------

SNIPPET_BYTES = 200  # of a refusing receiver's body, for the attempt log
USER_AGENT = "creditledger-webhooks/1"


@dataclass(frozen=True)
class Response:
    status: int | None
    latency_ms: int
    error: str = ""
    retry_after: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _connect_any(addresses: tuple[str, ...], port: int, timeout: float) -> socket.socket:
    error: OSError | None = None
    for ip in addresses:
        try:
            return socket.create_connection((ip, port), timeout=timeout)
        except OSError as exc:
            error = exc
    raise error or OSError("no address to connect to")


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the checked address, not to whatever the name resolves to by now."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._addresses = target.addresses

    def connect(self) -> None:
        self.sock = _connect_any(self._addresses, self.port, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self._addresses = target.addresses

    def connect(self) -> None:
        sock = _connect_any(self._addresses, self.port, self.timeout)
        # The certificate is checked against the host name, as if we had dialled the name.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(target: Target, body: bytes, headers: dict[str, str], timeout: float) -> Response:
    """POST once. Redirects are not followed (a 3xx is a failed attempt), proxies from the
    environment are not used, and `timeout` bounds the whole exchange, not only each read:
    a receiver that trickles bytes is cut off."""
    cls = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    conn = cls(target, timeout)
    expired = threading.Event()

    def cut_off() -> None:
        expired.set()
        if conn.sock is not None:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    timer = threading.Timer(timeout, cut_off)
    timer.daemon = True
    started = time.monotonic()
    timer.start()
    try:
        conn.request(
            "POST",
            target.path,
            body=body,
            headers={**headers, "content-type": "application/json", "user-agent": USER_AGENT},
        )
        response = conn.getresponse()
        latency = _ms_since(started)
        error = ""
        if not 200 <= response.status < 300:
            error = _refusal_text(response)
        return Response(response.status, latency, error, response.getheader("Retry-After"))
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set() or isinstance(exc, TimeoutError):
            error = f"timed out after {timeout:g} s"
        else:
            error = f"{type(exc).__name__}: {exc}"
        return Response(None, _ms_since(started), error[:500])
    finally:
        timer.cancel()
        conn.close()


def _ms_since(started: float) -> int:
    return max(0, round((time.monotonic() - started) * 1000))


def _refusal_text(response: http.client.HTTPResponse) -> str:
    text = f"HTTP {response.status}"
    if 300 <= response.status < 400:
        return f"{text}: redirect to {response.getheader('Location', '?')} not followed"[:500]
    snippet = response.read(SNIPPET_BYTES).decode("utf-8", "replace").strip()
    return f"{text}: {snippet}"[:500] if snippet else text


# --- when to try again ----------------------------------------------------------------------

BACKOFF_BASE_SECONDS = 30.0
BACKOFF_FACTOR = 3.0
BACKOFF_MAX_SECONDS = 6 * 3600.0  # also the most a Retry-After can ask for
# Downward jitter only: each delay stays above the one before (factor × 0.8 > 1) until the cap.
JITTER = 0.2


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())


def retry_delay(attempts: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
    """Seconds before the next try after `attempts` failed ones: exponential with jitter,
    capped, and never sooner than the receiver's Retry-After (itself capped)."""
    rng = rng or random
    base = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * BACKOFF_FACTOR ** max(0, attempts - 1))
    delay = base * (1 - JITTER * rng.random())
    if retry_after is not None:
        delay = max(delay, min(retry_after, BACKOFF_MAX_SECONDS))
    return delay
