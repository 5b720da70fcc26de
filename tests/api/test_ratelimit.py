"""The per-key rate limit: exact under concurrency, O(1) per key, and said on every answer."""

from __future__ import annotations

import random
import re
import subprocess
import sys
import uuid

import pytest
import redis
from django.conf import settings as django_settings

from creditledger.api import ratelimit

pytestmark = pytest.mark.django_db

REDIS_URL = django_settings.API_THROTTLE_REDIS_URL
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="the rate limit is counted in Redis (CACHE_URL)")


@pytest.fixture
def rate(settings):
    def set_rate(value: str) -> None:
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"apikey": value}}

    return set_rate


def _standing(response) -> tuple[int, int, int, int]:
    policy = re.fullmatch(r'"apikey";q=(\d+);w=(\d+)', response["RateLimit-Policy"])
    now = re.fullmatch(r'"apikey";r=(\d+);t=(\d+)', response["RateLimit"])
    assert policy and now, (response["RateLimit-Policy"], response["RateLimit"])
    return int(policy[1]), int(policy[2]), int(now[1]), int(now[2])


def test_every_keyed_answer_says_the_policy_and_what_is_left(make_api_client, rate):
    rate("5/min")
    client = make_api_client("taobao", ["status:read"])
    bad = client.get("/api/v1/changes/", {"limit": 0})  # a 400 of a keyed call is counted and says so
    assert bad.status_code == 400
    seen = [_standing(bad)]
    for _ in range(4):
        response = client.get("/api/v1/changes/")
        assert response.status_code == 200
        seen.append(_standing(response))
    assert [s[2] for s in seen] == [4, 3, 2, 1, 0]
    assert all(s[:2] == (5, 60) and 0 < s[3] <= 60 for s in seen)
    refused = client.get("/api/v1/changes/")
    assert refused.status_code == 429 and refused.json()["code"] == "throttled"
    limit, window, left, reset = _standing(refused)
    assert (limit, window, left) == (5, 60, 0) and int(refused["Retry-After"]) == reset


def test_a_call_without_a_key_has_no_rate_limit_headers(client):
    response = client.get("/api/v1/changes/")
    assert response.status_code == 401 and "RateLimit" not in response


@needs_redis
def test_a_key_costs_one_small_redis_value_whatever_the_rate(make_api_client, rate):
    rate("100000/min")
    client = make_api_client("taobao", ["status:read"])
    for _ in range(50):
        client.get("/api/v1/ledger/public-key")
    store = redis.Redis.from_url(REDIS_URL)
    key = f"ratelimit:apikey:{client.api_key.prefix}"
    assert int(store.get(key)) == 50
    assert store.memory_usage(key) < 100  # bytes: a counter, not a list of timestamps
    assert 0 < store.ttl(key) <= 60


@needs_redis
def test_the_count_is_exact_under_2_processes_of_8_threads():
    """1,600 hits from 16 threads in 2 processes on a limit of 1000: the counter ends at
    exactly 1,600 and exactly 1000 were allowed (DRF's read-modify-write lost 6%)."""
    ident = f"test-{uuid.uuid4().hex[:12]}"
    hits = 100  # per thread
    command = [sys.executable, "-m", "tests.api.ratelimit_worker", REDIS_URL, ident, "1000/hour", str(hits)]
    workers = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    allowed = []
    for worker in workers:
        out, _err = worker.communicate(timeout=120)
        assert worker.returncode == 0
        allowed.append(int(out))
    store = redis.Redis.from_url(REDIS_URL)
    assert int(store.get(f"ratelimit:apikey:{ident}")) == 2 * 8 * hits
    assert sum(allowed) == 1000


def test_without_redis_the_count_is_kept_in_the_process(make_api_client, rate, settings):
    settings.API_THROTTLE_REDIS_URL = ""
    ratelimit.reset_counter()
    try:
        rate("2/min")
        client = make_api_client("taobao", ["status:read"])
        assert [client.get("/api/v1/changes/").status_code for _ in range(3)] == [200, 200, 429]
    finally:
        ratelimit.reset_counter()


def test_an_unreachable_store_lets_requests_through_and_says_nothing(make_api_client, settings, caplog):
    settings.API_THROTTLE_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    ratelimit.reset_counter()
    try:
        client = make_api_client("taobao", ["status:read"])
        response = client.get("/api/v1/changes/")
        assert response.status_code == 200 and "RateLimit" not in response
        assert "rate limit not counted" in caplog.text
    finally:
        ratelimit.reset_counter()


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("6000/min", (6000, 60)), ("10/s", (10, 1)), ("100/hour", (100, 3600)), ("5/10s", (5, 10))],
)
def test_rates_are_read_as_count_per_period(text, parsed):
    assert ratelimit.parse_rate(text) == parsed


@pytest.mark.parametrize("text", ["", "6000", "0/min", "x/min", "10/fortnight"])
def test_a_malformed_rate_is_refused_naming_it(text):
    with pytest.raises(ValueError, match="N/period"):
        ratelimit.parse_rate(text)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/ledger/public-key",
        "/api/v1/ledger/checkpoints/",
        "/api/v1/ledger/checkpoints/latest",
    ],
)
def test_the_ledger_reads_are_public_and_limited_per_address(client, settings, path):
    """Anyone may check the ledger (an auditor, a witness) without a platform key; such calls
    count per client address, and a key sent is still checked."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "public": "2/min"},
    }
    address, other = (f"198.51.100.{n}" for n in random.Random().sample(range(1, 255), 2))
    first = client.get(path, REMOTE_ADDR=address)
    assert first.status_code in (200, 404)  # 404: no checkpoint signed yet (latest)
    assert first["RateLimit-Policy"] == '"public";q=2;w=60'
    assert client.get(path, REMOTE_ADDR=address).status_code in (200, 404)
    refused = client.get(path, REMOTE_ADDR=address)
    assert refused.status_code == 429 and refused.json()["code"] == "throttled"
    assert client.get(path, REMOTE_ADDR=other, HTTP_X_FORWARDED_FOR=address).status_code != 429
    bad_key = client.get(path, REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Api-Key nosuch.key")
    assert bad_key.status_code == 401
