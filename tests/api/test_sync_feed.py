"""docs/api.md followed literally by a feed-driven platform: it declares its shops, replays
the feed from 0, then polls now and then while a random history unfolds for 200 traders.
At the end it holds what the server holds and enforces every measure in force."""

from __future__ import annotations

import random

import pytest

from creditledger.ledger.models import LedgerEntry
from penalties.models import RestrictionAck
from tests import factories
from tests.api.docs_platform import DocsPlatform, History, active_ids, held_state, server_state

pytestmark = pytest.mark.django_db

TRADERS = 200
ROUNDS = 10
STEPS = 30


def shared_version_commits() -> int:
    """restriction.applied entries whose version a score.changed of the same commit carries
    too: the case the old rule ("ignore at or below the version you hold") dropped."""
    versions: dict[tuple[str, int], set[str]] = {}
    for action, uscc, payload in LedgerEntry.objects.filter(
        action__in=("score.changed", "restriction.applied")
    ).values_list("action", "trader_uscc", "payload"):
        versions.setdefault((uscc, payload["version"]), set()).add(action)
    return sum(1 for actions in versions.values() if len(actions) == 2)


@pytest.mark.parametrize("seed", [14])
def test_a_feed_driven_platform_following_the_docs_ends_equal_to_the_server(make_api_client, seed):
    client = make_api_client("taobao")
    codes = [factories.make_uscc(700000 + n, "350100") for n in range(TRADERS)]
    platform = DocsPlatform(client, "taobao")
    platform.declare_shops(codes)  # registers the traders: trader.registered in the feed
    platform.bootstrap_by_replay()
    assert set(platform.traders) == set(codes)

    history = History(codes, seed)
    polls = random.Random(seed)
    for _ in range(ROUNDS):
        history.round(STEPS)
        if polls.random() < 0.7:  # "every few seconds to a minute": not after every change
            platform.follow()
    platform.follow()

    assert held_state(platform, codes) == server_state(codes)
    active = active_ids(codes)
    assert platform.enforced == active
    assert active <= set(
        RestrictionAck.objects.filter(platform=client.platform).values_list("restriction_id", flat=True)
    )
    # The history exercised what the rules are about.
    assert len(active) >= 20 and history.counts.get("withdrawn", 0) >= 3
    assert history.counts.get("lifted by hand", 0) >= 3 and history.counts.get("overturned", 0) >= 3
    assert shared_version_commits() >= 10
    print(
        f"\nsync_feed: {platform.applied} entries applied, {len(active)} measures in force, "
        f"{len(platform.acked)} acknowledged; history {history.counts}"
    )
