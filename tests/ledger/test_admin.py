from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from creditledger.ledger.admin import EstimatedCountPaginator
from creditledger.ledger.models import Checkpoint, LedgerEntry
from creditledger.ledger.services import Entry, ledger_append_many
from tests import factories

pytestmark = pytest.mark.django_db

ENTRIES = reverse("admin:ledger_ledgerentry_changelist")
TRADER_A = factories.make_uscc(1, "330106")
TRADER_B = factories.make_uscc(2, "440305")


def _append(
    count: int, *, actor: str = "system:test", action: str = "violation.recorded", uscc: str = TRADER_A
):
    entries = [
        Entry(action, "violation", n, uscc, {"violation": n, "note": "商品详情页宣传与实际不符"})
        for n in range(count)
    ]
    with transaction.atomic():
        return ledger_append_many(actor=actor, entries=entries)


def _queries(client, url: str) -> int:
    client.get(url)  # warm caches (content types, permissions) outside the measurement
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def _found(client, **params) -> list[int]:
    return [entry.seq for entry in client.get(ENTRIES, params).context["cl"].result_list]


@pytest.mark.parametrize(
    "query",
    ["", "?action=violation.recorded", "?actor_kind=system", f"?q={TRADER_A}", f"?trader_uscc={TRADER_A}"],
)
def test_the_ledger_list_costs_the_same_queries_for_30_or_150_entries(client, auditor, query):
    client.force_login(auditor)
    _append(30)
    small = _queries(client, ENTRIES + query)
    _append(120)
    assert _queries(client, ENTRIES + query) == small


def test_the_list_is_newest_first_and_filterable_by_trader_action_actor_and_time(client, auditor, officer):
    _append(2, actor=f"user:{officer.pk}", uscc=TRADER_A)  # seq 1, 2
    _append(1, actor="apikey:tb_1a2b", action="shop.registered", uscc=TRADER_B)  # seq 3
    _append(1, actor="system:reassess_trader", action="score.changed", uscc=TRADER_A)  # seq 4
    client.force_login(auditor)
    assert _found(client) == [4, 3, 2, 1]
    assert _found(client, trader_uscc=TRADER_A) == [4, 2, 1]
    assert _found(client, q=TRADER_B.lower()) == [3]
    assert _found(client, q=f"user:{officer.pk}") == [2, 1]
    assert _found(client, q="3") == [3]
    assert _found(client, action="shop.registered") == [3]
    assert _found(client, action="violation.") == [2, 1]
    assert _found(client, actor_kind="apikey") == [3]
    assert _found(client, actor_kind="system") == [4]
    # What DateFieldListFilter's "today" link sends: local midnights, with their offset.
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    tomorrow = today + dt.timedelta(days=1)
    assert _found(client, at__gte=str(today), at__lt=str(tomorrow)) == [4, 3, 2, 1]
    assert _found(client, at__gte=str(tomorrow)) == []


def test_an_entry_shows_its_hashed_body_and_its_links(client, auditor):
    first, second = _append(2)
    client.force_login(auditor)
    response = client.get(reverse("admin:ledger_ledgerentry_change", args=[second.seq]))
    assert response.status_code == 200
    body = response.content.decode()
    assert second.hash in body and second.prev_hash == first.hash and first.hash in body
    assert "商品详情页宣传与实际不符" in body  # pretty-printed without \u escapes
    assert '"action": "violation.recorded"' in body.replace("&quot;", '"')


def test_nobody_adds_changes_or_deletes_an_entry(client):
    root = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    (entry,) = _append(1)
    client.force_login(root)
    assert client.get(reverse("admin:ledger_ledgerentry_add")).status_code == 403
    change = reverse("admin:ledger_ledgerentry_change", args=[entry.seq])
    assert client.post(change, {"action": "trader.registered"}).status_code == 403
    assert client.get(reverse("admin:ledger_ledgerentry_delete", args=[entry.seq])).status_code == 403
    assert LedgerEntry.objects.get().action == "violation.recorded"


def test_checkpoints_are_read_only(client, auditor):
    checkpoint = Checkpoint.objects.create(
        seq=1, hash="ab" * 32, at=timezone.now(), origin="ledger.test", key_id="deadbeef", note="note\n"
    )
    client.force_login(auditor)
    assert client.get(reverse("admin:ledger_checkpoint_changelist")).status_code == 200
    assert client.get(reverse("admin:ledger_checkpoint_change", args=[checkpoint.pk])).status_code == 200
    assert client.get(reverse("admin:ledger_checkpoint_add")).status_code == 403


# --- the paginator ---------------------------------------------------------------------------


def test_the_paginator_counts_exactly_below_its_cap():
    _append(7)
    paginator = EstimatedCountPaginator(LedgerEntry.objects.filter(trader_uscc=TRADER_A), 5)
    assert (paginator.count, paginator.estimated, paginator.num_pages) == (7, False, 2)


def test_past_its_cap_the_paginator_estimates_without_counting_the_table(monkeypatch):
    _append(30)
    monkeypatch.setattr(EstimatedCountPaginator, "exact_limit", 10)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE ledger_ledgerentry")
    with CaptureQueriesContext(connection) as ctx:
        paginator = EstimatedCountPaginator(LedgerEntry.objects.all(), 5)
        assert paginator.count == 30  # from the table statistics ANALYZE just took
    assert paginator.estimated
    assert not any("COUNT(" in q["sql"].upper() for q in ctx.captured_queries)

    filtered = EstimatedCountPaginator(LedgerEntry.objects.filter(action="violation.recorded"), 5)
    assert filtered.count >= 11 and filtered.estimated


def test_an_estimated_count_says_so_on_the_page(client, auditor, monkeypatch):
    _append(30)
    monkeypatch.setattr(EstimatedCountPaginator, "exact_limit", 10)
    client.force_login(auditor)
    response = client.get(ENTRIES)
    assert response.context["cl"].paginator.estimated
    assert "about" in response.content.decode() or "约" in response.content.decode()
