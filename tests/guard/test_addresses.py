"""The client address the lockout and the ledger use: REMOTE_ADDR unless a trusted proxy."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from creditledger.guard.addresses import client_address


def _request(remote: str, forwarded: str | None = None):
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return RequestFactory().get("/", REMOTE_ADDR=remote, **extra)


def test_without_trusted_proxies_the_header_is_ignored(settings):
    settings.TRUSTED_PROXIES = []
    assert client_address(_request("203.0.113.9", "198.51.100.1")) == "203.0.113.9"


@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [
        ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
        # The client wrote the left part itself; the proxies appended the right part.
        ("10.0.0.2", "1.2.3.4, 198.51.100.1, 10.0.0.3", "198.51.100.1"),
        ("10.0.0.2", "2001:db8::7", "2001:db8::7"),
        # A broken chain or nothing but proxies: the proxy's own address.
        ("10.0.0.2", "198.51.100.1, not-an-address", "10.0.0.2"),
        ("10.0.0.2", "10.0.0.3", "10.0.0.2"),
        ("10.0.0.2", "", "10.0.0.2"),
        # A request that did not come through a trusted proxy keeps its own address.
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),
    ],
)
def test_behind_a_trusted_proxy_the_first_untrusted_hop_from_the_right_is_the_client(
    settings, remote, forwarded, expected
):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert client_address(_request(remote, forwarded)) == expected
