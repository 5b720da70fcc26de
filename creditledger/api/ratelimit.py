"""Per-key rate limits: a fixed window counted by one atomic Redis operation.

DRF's SimpleRateThrottle keeps a list of timestamps in the cache and reads it, trims it
and writes it back: two round trips, a value that grows with the rate (54 kB at 6000/min),
and between the read and the write a concurrent request's count is lost. Here a request
is one EVALSHA of a three-line script: INCR the key's counter, and on the window's first
request give it its expiry. Redis runs a script alone, so every request is counted exactly
once whatever the number of processes, in O(1) memory per key. The window starts at a
key's first request and is timed by Redis, so web hosts' clocks do not matter.

Every answer to a keyed request says where it stands, in the IETF httpapi draft's
structured fields (draft-ietf-httpapi-ratelimit-headers):

    RateLimit-Policy: "apikey";q=6000;w=60
    RateLimit: "apikey";r=5981;t=42

q requests per w seconds; r left in this window, which ends in t seconds. Past q: 429 with
Retry-After. Without a Redis URL (`make run`'s zero setup) the count is kept in the
process, exact for that process only.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

import redis
from django.conf import settings

log = logging.getLogger(__name__)

POLICY = "apikey"
_SCRIPT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}
"""
_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


@dataclass(frozen=True)
class Standing:
    limit: int
    window: int  # seconds
    count: int  # requests in this window, this one included
    reset: int  # seconds until the window ends
    policy: str = POLICY

    @property
    def allowed(self) -> bool:
        return self.count <= self.limit

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Policy": f'"{self.policy}";q={self.limit};w={self.window}',
            "RateLimit": f'"{self.policy}";r={self.remaining};t={self.reset}',
        }


def parse_rate(rate: str) -> tuple[int, int]:
    """ "6000/min" -> (6000, 60); also "10/s", "100/hour", "50/10s"."""
    count, _slash, period = rate.partition("/")
    digits = "".join(c for c in period if c.isdigit())
    unit = period[len(digits) :]
    if not count.isdigit() or int(count) < 1 or unit not in _PERIODS:
        raise ValueError(f"a rate is N/period (e.g. 6000/min), got {rate!r}")
    return int(count), int(digits or 1) * _PERIODS[unit]


class _RedisCounter:
    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.script = self.client.register_script(_SCRIPT)

    def hit(self, key: str, window: int) -> tuple[int, int]:
        count, pttl = self.script(keys=[key], args=[window * 1000])
        return int(count), max(1, math.ceil(int(pttl) / 1000))


class _LocalCounter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.windows: dict[str, tuple[float, int]] = {}  # key -> (window end, count)

    def hit(self, key: str, window: int) -> tuple[int, int]:
        now = time.monotonic()
        with self.lock:
            end, count = self.windows.get(key, (0.0, 0))
            if now >= end:
                end, count = now + window, 0
            self.windows[key] = (end, count + 1)
        return count + 1, max(1, math.ceil(end - now))


_counter: _RedisCounter | _LocalCounter | None = None
_counter_lock = threading.Lock()


def counter() -> _RedisCounter | _LocalCounter:
    global _counter
    if _counter is None:
        with _counter_lock:
            if _counter is None:
                url = settings.API_THROTTLE_REDIS_URL
                _counter = _RedisCounter(url) if url else _LocalCounter()
    return _counter


def reset_counter() -> None:
    """Forget the counter (tests that change API_THROTTLE_REDIS_URL)."""
    global _counter
    _counter = None


def hit(ident: str, rate: str, policy: str = POLICY) -> Standing | None:
    """Count one request of `ident` against `rate`; None when the count cannot be kept."""
    limit, window = parse_rate(rate)
    try:
        count, reset = counter().hit(f"ratelimit:{policy}:{ident}", window)
    except redis.RedisError as exc:
        # The limit protects capacity; an outage of its store must not take the API down.
        log.warning("rate limit not counted: %s", exc)
        return None
    return Standing(limit=limit, window=window, count=count, reset=reset, policy=policy)
