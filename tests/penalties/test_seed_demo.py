from __future__ import annotations

import datetime as dt
import io
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.db.models import Max, Min
from django.utils import timezone

from creditledger.ledger import canonical
from creditledger.ledger.models import LedgerEntry
from creditledger.ledger.verify import verify_ledger
from penalties import dashboard, demo
from penalties.demo import store
from penalties.models import HEAVY_SEVERITIES, Violation
from penalties.services import violation_payload
from tests import factories
from traders import uscc
from traders.models import Platform, Shop, Trader
from traders.services import shop_payload, trader_payload

pytestmark = pytest.mark.django_db

TRADERS, VIOLATIONS = 40, 240
PERMS = ("penalties.confirm_violation", "penalties.confirm_heavy_violation")


def seed_demo(traders: int = TRADERS, violations: int = VIOLATIONS, seed: int = 7) -> str:
    out = io.StringIO()
    call_command("seed_demo", traders=traders, violations=violations, seed=seed, stdout=out)
    return out.getvalue()


@pytest.fixture
def seeded() -> str:
    return seed_demo()


def snapshot() -> dict:
    """What a seed determines; ids and times taken from the clock are left out."""
    return {
        "traders": list(
            Trader.objects.order_by("uscc").values_list("uscc", "name", "legal_representative", "address")
        ),
        "shops": sorted(
            Shop.objects.values_list("platform__code", "platform_shop_id", "trader__uscc", "name")
        ),
        "violations": sorted(
            Violation.objects.values_list(
                "trader__uscc", "type__code", "occurred_on", "source", "status", "goods_value", "description"
            ),
            key=repr,
        ),
    }


def test_it_creates_the_numbers_asked_for_with_valid_codes(seeded):
    assert Trader.objects.count() == TRADERS
    assert Violation.objects.count() == VIOLATIONS
    assert f"{TRADERS} traders" in seeded and f"{VIOLATIONS} violations" in seeded
    for code, kind, region in Trader.objects.values_list("uscc", "kind", "region"):
        assert uscc.is_valid(code), code
        assert (kind, region) == (code[:2], code[2:8])
        assert kind in ("91", "92")


def test_it_covers_every_status_and_source(seeded):
    assert set(Violation.objects.values_list("status", flat=True)) == set(Violation.Status.values)
    assert set(Violation.objects.values_list("source", flat=True)) == set(Violation.Source.values)


def test_a_tiny_demo_still_shows_every_status_and_source():
    seed_demo(traders=1, violations=5)
    assert set(Violation.objects.values_list("status", flat=True)) == set(Violation.Status.values)
    assert set(Violation.objects.values_list("source", flat=True)) == set(Violation.Source.values)


def test_it_opens_one_to_three_shops_per_trader_unique_per_platform(seeded):
    assert set(Platform.objects.values_list("code", flat=True)) >= {
        "taobao",
        "tmall",
        "jd",
        "pinduoduo",
        "douyin",
    }
    per_trader = Counter(Shop.objects.values_list("trader_id", flat=True))
    assert len(per_trader) == TRADERS
    assert set(per_trader.values()) <= {1, 2, 3}
    keys = list(Shop.objects.values_list("platform_id", "platform_shop_id"))
    assert len(keys) == len(set(keys))
    assert all(url.startswith("https://") for url in Shop.objects.values_list("url", flat=True))


def test_decisions_follow_the_workflow_and_four_eyes(seeded):
    deciders = get_user_model().objects.filter(id__in=Violation.objects.values("decided_by_id"))
    may = {u.pk: {p for p in PERMS if u.has_perm(p)} for u in deciders}
    for v in Violation.objects.select_related("type", "shop"):
        if v.status == Violation.Status.PENDING:
            assert v.decided_by_id is None and v.decided_at is None
            continue
        assert v.decided_by_id and v.decided_at >= v.recorded_at
        assert v.occurred_on <= timezone.localtime(v.recorded_at).date()
        if v.type.severity in HEAVY_SEVERITIES:
            assert v.decided_by_id != v.recorded_by_id
            assert "penalties.confirm_heavy_violation" in may[v.decided_by_id]
        else:
            assert "penalties.confirm_violation" in may[v.decided_by_id]
        if v.source == Violation.Source.PLATFORM_REPORT:
            assert v.recorded_by_id is None and v.reporting_platform_id == v.shop.platform_id
        if v.shop_id:
            assert v.shop.trader_id == v.trader_id
    # The recorded_at override is switched back on for everyone else.
    assert Violation._meta.get_field("recorded_at").auto_now_add


def test_an_appeal_is_decided_by_someone_other_than_the_confirmer(seeded):
    confirmed_by = {
        e.payload["violation"]: e.payload["decided_by"]
        for e in LedgerEntry.objects.filter(action="violation.confirmed")
    }
    overturns = LedgerEntry.objects.filter(action="violation.overturned")
    assert overturns.exists()
    for entry in overturns:
        assert entry.payload["decided_by"] != confirmed_by[entry.payload["violation"]]


def test_it_flags_traders_with_confirmed_violations_for_reassessment(seeded):
    with_confirmed = set(Violation.objects.filter(status="confirmed").values_list("trader_id", flat=True))
    flagged = set(Trader.objects.filter(needs_reassessment=True).values_list("id", flat=True))
    assert with_confirmed and flagged == with_confirmed


def test_the_same_seed_gives_the_same_data():
    point = transaction.savepoint()
    seed_demo(traders=15, violations=60, seed=11)
    first = snapshot()
    transaction.savepoint_rollback(point)
    assert not Trader.objects.exists()
    seed_demo(traders=15, violations=60, seed=11)
    assert snapshot() == first
    transaction.savepoint_rollback(point)
    seed_demo(traders=15, violations=60, seed=12)
    assert snapshot()["traders"] != first["traders"]


def test_a_second_run_adds_traders_without_colliding(seeded):
    out = seed_demo(traders=10, violations=30)  # the same seed again
    assert Trader.objects.count() == TRADERS + 10
    assert Violation.objects.count() == VIOLATIONS + 30
    assert "10 traders" in out
    assert LedgerEntry.objects.filter(action="trader.registered").count() == TRADERS + 10


def test_it_refuses_violations_without_traders():
    with pytest.raises(CommandError, match="at least one trader"):
        seed_demo(traders=0, violations=3)
    assert not Violation.objects.exists()


def test_the_ledger_has_one_entry_per_created_row(seeded):
    def subjects(action: str) -> Counter:
        return Counter(LedgerEntry.objects.filter(action=action).values_list("subject_id", flat=True))

    def ids(rows) -> Counter:
        return Counter(str(pk) for pk in rows.values_list("id", flat=True))

    decided = Violation.objects.exclude(status="pending")
    assert subjects("trader.registered") == ids(Trader.objects.all())
    assert subjects("shop.registered") == ids(Shop.objects.all())
    assert subjects("violation.recorded") == ids(Violation.objects.all())
    assert subjects("violation.confirmed") == ids(decided.filter(status__in=["confirmed", "overturned"]))
    assert subjects("violation.rejected") == ids(decided.filter(status="rejected"))
    assert subjects("violation.overturned") == ids(decided.filter(status="overturned"))
    assert set(LedgerEntry.objects.values_list("actor", flat=True)) == {"system:seed_demo"}


def test_ledger_payloads_are_what_the_services_write(seeded):
    entries = {(e.action, e.subject_id): e for e in LedgerEntry.objects.all()}
    for trader in Trader.objects.select_related("source_platform")[:10]:
        entry = entries["trader.registered", str(trader.pk)]
        assert entry.payload == canonical.normalise(trader_payload(trader))
        assert entry.trader_uscc == trader.uscc
    for shop in Shop.objects.select_related("platform", "trader")[:10]:
        assert entries["shop.registered", str(shop.pk)].payload == canonical.normalise(shop_payload(shop))
    related = ("type", "trader", "shop__platform", "reporting_platform")
    for violation in Violation.objects.select_related(*related)[:30]:
        expected = canonical.normalise(violation_payload(violation)) | {"status": "pending"}
        assert entries["violation.recorded", str(violation.pk)].payload == expected
        if violation.status in ("confirmed", "rejected"):
            decision = entries[f"violation.{violation.status}", str(violation.pk)].payload
            assert decision["decided_by"] == violation.decided_by_id
            assert decision["decided_at"] == canonical.format_time(violation.decided_at)
            assert decision["note"] == violation.decision_note


def test_the_ledger_chain_verifies(seeded):
    seqs, prev = [], canonical.GENESIS_HASH
    for entry in LedgerEntry.objects.order_by("seq"):
        body = bytes(entry.body)
        seqs.append(entry.seq)
        assert entry.prev_hash == prev, entry.seq
        assert entry.hash == canonical.chain_hash(prev, body), entry.seq
        assert body == canonical.entry_body(
            seq=entry.seq,
            at=entry.at,
            actor=entry.actor,
            action=entry.action,
            subject_type=entry.subject_type,
            subject_id=entry.subject_id,
            trader_uscc=entry.trader_uscc,
            payload=entry.payload,
        )
        prev = entry.hash
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(seqs) > TRADERS + VIOLATIONS


def test_verify_ledger_accepts_a_demo_database(seeded):
    result = verify_ledger()
    assert result.ok, result.summary()
    assert result.last == LedgerEntry.objects.count()


# --- dates ------------------------------------------------------------------------------------


def local_monday(moment) -> dt.date:
    day = timezone.localtime(moment).date()
    return day - dt.timedelta(days=day.weekday())


def test_violations_are_recorded_week_after_week_over_two_years():
    before = timezone.now()
    seed_demo(traders=200, violations=3000, seed=3)
    recorded = list(Violation.objects.values_list("recorded_at", flat=True))
    weeks = Counter(local_monday(at) for at in recorded)
    first, last = min(weeks), max(weeks)
    assert (last - first).days >= 100 * 7  # two years, give or take the first weeks' few
    assert last == local_monday(before)
    assert len(weeks) >= 95  # of about 105
    assert max(weeks.values()) < 0.03 * len(recorded)  # no week holds the bulk
    # The last days get their share, not the records of the whole fortnight before them.
    ages = Counter((timezone.localdate() - timezone.localtime(at).date()).days for at in recorded)
    last_days, month = sum(ages[d] for d in range(3)), sum(ages[d] for d in range(28))
    assert last_days < 1.6 * month * 3 / 28
    # Nothing dated after the seed ran, and no pile-up on the moment it ran (times are drawn
    # to the second, so two may meet by chance).
    decided = [at for at in Violation.objects.values_list("decided_at", flat=True) if at]
    for times in (recorded, decided):
        assert max(times) <= timezone.now()
        assert Counter(times).most_common(1)[0][1] <= 2
    occurred = Violation.objects.aggregate(first=Min("occurred_on"), last=Max("occurred_on"))
    assert (timezone.localdate() - occurred["first"]).days <= 730 and occurred["last"] <= timezone.localdate()


def test_the_dashboards_weekly_chart_has_work_in_every_week():
    seed_demo(traders=200, violations=3000, seed=3)
    data = dashboard.weekly_categories()
    totals = [data.week_total(week) for week in data.weeks[:-1]]  # the current week has just begun
    # Recent weeks carry a little more (recent violations are commoner, and more of them are
    # still pending), but every week has work and none dwarfs the others.
    assert min(totals) > 0
    assert max(totals) < 2.5 * min(totals)


# --- the database -----------------------------------------------------------------------------


def test_it_leaves_fresh_planner_statistics_for_the_seeded_tables(seeded):
    """ANALYZE ran: the row estimates are the counts, which only it (in this transaction)
    could have seen; autovacuum cannot see uncommitted rows."""
    counts = {m._meta.db_table: m.objects.count() for m in (Trader, Shop, Violation, LedgerEntry)}
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, reltuples FROM pg_class WHERE relname = ANY(%s)", [list(counts)])
        estimates = dict(cursor.fetchall())
    assert estimates == {table: float(count) for table, count in counts.items()}


def test_rows_created_after_a_seed_get_ids_of_their_own(seeded):
    """The seed takes its ids from the tables' sequences, so the next row does too."""
    trader = factories.TraderFactory()
    shop = factories.ShopFactory(trader=trader)
    violation = factories.ViolationFactory(trader=trader, shop=shop)
    for row, model in ((trader, Trader), (shop, Shop), (violation, Violation)):
        assert row.pk > model.objects.exclude(pk=row.pk).aggregate(Max("pk"))["pk__max"]


class _Vendor:
    """The default connection, but claiming another vendor: the SQLite code path on PostgreSQL."""

    def __init__(self, vendor: str) -> None:
        self.vendor = vendor

    def __getattr__(self, name):
        return getattr(connection, name)


def test_the_bulk_create_path_for_sqlite_writes_what_copy_writes(monkeypatch):
    point = transaction.savepoint()
    seed_demo(traders=15, violations=60, seed=11)
    copied = snapshot()
    transaction.savepoint_rollback(point)
    monkeypatch.setattr(store, "connection", _Vendor("sqlite"))
    seed_demo(traders=15, violations=60, seed=11)
    assert snapshot() == copied
    assert verify_ledger().ok
    assert Violation._meta.get_field("recorded_at").auto_now_add  # switched back on


# --- outside a transaction: a writer thread -------------------------------------------------


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(demo, "CHUNK", 10)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_outside_a_transaction_a_writer_thread_writes_the_chunks_in_order(small_chunks, monkeypatch):
    submitted = []

    class Spy(store.Writer):
        def submit(self, prepared):
            submitted.append(len(prepared.entries))
            super().submit(prepared)

    monkeypatch.setattr(store, "Writer", Spy)
    out = seed_demo(traders=35, violations=150, seed=7)
    assert len(submitted) == 4
    assert (Trader.objects.count(), Violation.objects.count()) == (35, 150)
    assert LedgerEntry.objects.count() == sum(submitted)
    assert "35 traders" in out
    # Chunk after chunk: the ledger registers the traders in the order their ids were drawn.
    registered = LedgerEntry.objects.filter(action="trader.registered").order_by("seq")
    ids = [int(pk) for pk in registered.values_list("subject_id", flat=True)]
    assert ids == sorted(ids)
    assert verify_ledger().ok


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_failed_write_stops_the_seed_and_keeps_the_chunks_written_before(small_chunks, monkeypatch):
    calls = []

    def write(prepared, turn):
        calls.append(prepared)
        if len(calls) == 3:
            raise DatabaseError("could not extend file: No space left on device")
        return real_write(prepared, turn)

    real_write = store.write
    monkeypatch.setattr(store, "write", write)
    with pytest.raises(DatabaseError, match="No space left"):
        seed_demo(traders=100, violations=300)
    # Two whole chunks; nothing of the third, nor of the one written beside it.
    assert len(calls) >= 4
    assert Trader.objects.count() == 20
    assert LedgerEntry.objects.filter(action="trader.registered").count() == 20
    assert verify_ledger().ok
