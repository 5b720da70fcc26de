from __future__ import annotations

import pytest
from django.db import transaction

from creditledger.ledger import selectors
from creditledger.ledger.services import Entry, checkpoint_create, ledger_append_many

pytestmark = pytest.mark.django_db

ACTIONS = [
    "trader.registered",  # 1
    "violation.recorded",  # 2
    "evidence.attached",  # 3
    "violation.confirmed",  # 4
    "score.changed",  # 5
    "appeal.filed",  # 6
    "restriction.proposed",  # 7
    "restriction.applied",  # 8
    "violation.rejected",  # 9
    "restriction.acknowledged",  # 10
    "policy.activated",  # 11
]


@pytest.fixture
def entries():
    rows = [
        Entry(action, "trader", n, trader_uscc="91330106MA2K000001" if n % 2 else "91110105MA0000000X")
        for n, action in enumerate(ACTIONS, start=1)
    ]
    with transaction.atomic():
        return ledger_append_many(actor="system:test", entries=rows)


def test_changes_after_returns_only_status_actions_in_seq_order(entries):
    rows = list(selectors.changes_after(0, 100))
    assert [row.seq for row in rows] == [1, 4, 5, 7, 8, 10, 11]
    assert all(row.action in selectors.STATUS_ACTIONS for row in rows)


def test_changes_after_resumes_after_the_seq_given_and_respects_the_limit(entries):
    assert [row.seq for row in selectors.changes_after(0, 2)] == [1, 4]
    assert [row.seq for row in selectors.changes_after(4, 3)] == [5, 7, 8]
    assert [row.seq for row in selectors.changes_after(11, 10)] == []


def test_changes_after_refuses_a_limit_below_one():
    with pytest.raises(ValueError, match="limit"):
        selectors.changes_after(0, 0)


def test_trader_trail_lists_a_traders_entries_newest_first(entries):
    assert [row.seq for row in selectors.trader_trail("91330106MA2K000001", 3)] == [11, 9, 7]


def test_latest_checkpoint(entries):
    assert selectors.latest_checkpoint() is None
    checkpoint_create()
    assert selectors.latest_checkpoint().seq == 11
