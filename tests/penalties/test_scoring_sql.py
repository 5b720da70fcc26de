"""The bulk SQL path gives exactly the reference's numbers (PostgreSQL)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from penalties.models import Violation, ViolationType
from penalties.scoring import ScoredViolation, ScoringRules, assess
from penalties.scoring_sql import bulk_assessments, bulk_scores, scored_violations, scores_sql
from tests.factories import TraderFactory
from traders.models import Trader

pytestmark = pytest.mark.django_db

BASE = date(2022, 1, 1)  # anchors ± 366 stay within a few years of it
NOON = datetime(2022, 1, 1, 12, tzinfo=UTC)
CATEGORIES = ("counterfeit", "substandard", "false_advertising")
# Small and odd validities make non-terminating weights (x/3, x/7, x/365) and exact halves.
VALIDITIES = (1, 3, 6, 7, 12, 365, 730, 731, 1095, 1095)
STATUSES = ("confirmed",) * 6 + ("pending", "rejected", "overturned")
_codes = itertools.count()


def make_type(category: str, points: int, validity: int, code: str | None = None) -> ViolationType:
    return ViolationType.objects.create(
        code=code or f"prop-{next(_codes)}",
        name="test type",
        category=category,
        severity="general",
        points=points,
        validity_days=validity,
        legal_basis="test",
    )


def make_violations(specs: list[tuple[Trader, ViolationType, date, datetime, str]]) -> list[Violation]:
    """Rows with the given recording times (auto_now_add would stamp them all 'now')."""
    rows = Violation.objects.bulk_create(
        Violation(
            trader=trader,
            type=vtype,
            occurred_on=occurred_on,
            status=status,
            source="inspection",
            description="test",
            decided_at=NOON,
        )
        for trader, vtype, occurred_on, _, status in specs
    )
    for row, (*_, recorded_at, _) in zip(rows, specs, strict=True):
        row.recorded_at = recorded_at
        Violation.objects.filter(pk=row.pk).update(recorded_at=recorded_at)
    return rows


def reference(rows: list[Violation], traders: list[Trader], as_of: date, rules: ScoringRules):
    """The pure assessment per trader, built from the Python side (not read back)."""
    confirmed = [row for row in rows if row.status == "confirmed"]
    return {
        trader.pk: assess(
            [
                ScoredViolation(
                    id=row.pk,
                    occurred_on=row.occurred_on,
                    recorded_at=row.recorded_at,
                    category=row.type.category,
                    points=row.type.points,
                    validity_days=row.type.validity_days,
                    type_code=row.type.code,
                )
                for row in confirmed
                if row.trader_id == trader.pk
            ],
            as_of,
            rules,
        )
        for trader in traders
    }


# Dates cluster around a few anchors so that, even in few examples, pairs sit exactly on the
# boundaries that matter: the same day (ties), 365 vs 366 days apart (repeat window), a day
# after as_of, and as_of shortly after the violations (so that most of them are still live).
DELTAS = (0, 0, 0, 1, -1, 365, 366, -365, -366)
AS_OF_DELTAS = (0, 1, 2, 5, 30, 200, 366, 700)


@st.composite
def scenarios(draw):
    anchors = draw(st.lists(st.integers(366, 800), min_size=1, max_size=3))
    day = st.one_of(
        st.builds(int.__add__, st.sampled_from(anchors), st.sampled_from(DELTAS)), st.integers(0, 1100)
    )
    types = draw(
        st.lists(
            st.tuples(st.sampled_from(CATEGORIES[:2]), st.integers(0, 400), st.sampled_from(VALIDITIES)),
            min_size=2,
            max_size=4,
        )
    )
    violations = draw(
        st.lists(
            st.tuples(
                st.integers(0, 1),  # trader (a third one stays clean)
                st.integers(0, len(types) - 1),  # type
                day,  # occurred_on
                st.integers(0, 3),  # recorded_at: few values, so same-day ties fall to the id
                st.sampled_from(STATUSES),
            ),
            min_size=6,
            max_size=30,
        )
    )
    as_of = draw(
        st.one_of(st.builds(int.__add__, st.sampled_from(anchors), st.sampled_from(AS_OF_DELTAS)), day).map(
            lambda d: BASE + timedelta(days=d)
        )
    )
    type_overrides = draw(st.dictionaries(st.integers(0, len(types) - 1), st.integers(0, 400), max_size=2))
    category_overrides = draw(st.dictionaries(st.sampled_from(CATEGORIES), st.integers(0, 400), max_size=2))
    listed = draw(st.booleans())
    return types, violations, as_of, type_overrides, category_overrides, listed


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_bulk_scores_equal_the_reference_for_every_trader(scenario):
    types, specs, as_of, type_overrides, category_overrides, listed = scenario
    # A savepoint per example, rolled back at the end: examples never see each other's rows.
    with transaction.atomic():
        traders = TraderFactory.create_batch(3)
        vtypes = [make_type(*spec) for spec in types]
        rows = make_violations(
            [
                (traders[t], vtypes[i], BASE + timedelta(days=d), NOON + timedelta(minutes=r), status)
                for t, i, d, r, status in specs
            ]
        )
        rules = ScoringRules(
            points_by_type={vtypes[i].code: points for i, points in type_overrides.items()},
            points_by_category=category_overrides,
        )
        expected = reference(rows, traders, as_of, rules)
        ids = [trader.pk for trader in traders]

        got = bulk_assessments(as_of, ids if listed else None, rules)

        for trader_id, assessment in expected.items():
            assert got[trader_id] == (assessment.score, assessment.grade, assessment.total_deduction)
        assert set(got) == set(ids) if listed else set(got) >= set(ids)
        transaction.set_rollback(True)


def test_a_trader_without_violations_scores_1000():
    clean = TraderFactory()
    assert bulk_scores(date(2025, 1, 1), [clean.pk]) == {clean.pk: (1000, "A")}
    sql, params = scores_sql(date(2025, 1, 1), [clean.pk], every_trader=False)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        assert cursor.fetchall() == []


def test_only_confirmed_violations_count():
    trader = TraderFactory()
    vtype = ViolationType.objects.get(code="counterfeit-goods")  # 150 points, 1095 days
    day = date(2025, 3, 1)
    make_violations(
        [(trader, vtype, day, NOON, status) for status in ("confirmed", "pending", "rejected", "overturned")]
    )
    assert bulk_scores(day, [trader.pk]) == {trader.pk: (850, "B")}


def test_a_worked_example_with_the_seeded_catalog():
    trader = TraderFactory()
    counterfeit = ViolationType.objects.get(code="counterfeit-goods")  # 150 points, 1095 days
    advertising = ViolationType.objects.get(code="false-advertising")  # 60 points, 730 days
    as_of = date(2025, 6, 30)
    make_violations(
        [
            (trader, counterfeit, as_of - timedelta(days=365), NOON, "confirmed"),  # k=1: 150
            (trader, counterfeit, as_of, NOON, "confirmed"),  # exactly 365 days later, k=2: 225
            (trader, advertising, as_of - timedelta(days=547), NOON, "confirmed"),  # 60·183/365
        ]
    )
    # 1000 − 150 − 225 − 30.082… = 594.92 → 595, grade D
    assert bulk_assessments(as_of, [trader.pk]) == {trader.pk: (595, "D", Decimal("405.08"))}
    assert assess(scored_violations([trader.pk])[trader.pk], as_of).score == 595


def test_the_boundaries_agree_with_the_reference_and_by_hand():
    trader = TraderFactory()
    as_of = date(2025, 6, 30)
    late = NOON + timedelta(hours=1)

    def on(code: str, age: int, recorded_at: datetime = NOON):
        return (
            trader,
            ViolationType.objects.get(code=code),
            as_of - timedelta(days=age),
            recorded_at,
            "confirmed",
        )

    make_violations(
        [
            # Live on its last day-but-one (weight 2/1825); a counterfeit exactly 365 days
            # before it is expired but still a repeat (k=2): 400 · 2/1825 · 1.5 = 48/73.
            # It is the oldest row that matters, right at the edge of the SQL's pre-filter.
            on("counterfeit-large-scale", 1824),
            on("counterfeit-goods", 1824 + 365),
            on("counterfeit-goods", 1824 + 366),
            # Same day: the lower id was recorded later, so it comes second: 20 + 60 · 1.5.
            on("false-advertising", 10, late),
            on("absolute-terms-advertising", 10),
            # 365 days apart is a repeat: 100 · 1.5 + 100; 366 apart is not: 80 + 80 · 364/365.
            on("unlicensed-operation", 0),
            on("unlicensed-operation", 365),
            on("substandard-goods", 0),
            on("substandard-goods", 366),
            # Six on one day: 30 · (1 + 1.5 + 2 + 2.5 + 3 + 3) = 390.
            *[on("refused-returns", 0) for _ in range(6)],
            # Tomorrow's does not exist yet.
            on("obstructing-inspection", -1),
        ]
    )
    # 48/73 + 110 + 250 + 80 + 29120/365 + 390 = 910.438…; 1000 − 910.438… = 89.56 → 90
    assert bulk_assessments(as_of, [trader.pk]) == {trader.pk: (90, "D", Decimal("910.44"))}
    reference = assess(scored_violations([trader.pk])[trader.pk], as_of)
    assert (reference.score, reference.total_deduction) == (90, Decimal("910.44"))


def test_sums_of_non_terminating_weights_round_half_up_exactly():
    # 2 · 1/3 + 5 · 1/6 = 3/2 exactly, though neither term has a finite decimal expansion.
    trader = TraderFactory()
    thirds = make_type("counterfeit", 2, 6)
    sixths = make_type("substandard", 5, 12)
    as_of = date(2025, 6, 30)
    make_violations(
        [
            (trader, thirds, as_of - timedelta(days=5), NOON, "confirmed"),
            (trader, sixths, as_of - timedelta(days=11), NOON, "confirmed"),
        ]
    )
    assert bulk_assessments(as_of, [trader.pk]) == {trader.pk: (999, "A", Decimal("1.50"))}


def test_rules_feed_cutoffs_and_overrides_into_the_sql():
    trader = TraderFactory()
    vtype = ViolationType.objects.get(code="false-advertising")
    make_violations([(trader, vtype, date(2025, 6, 30), NOON, "confirmed")])
    rules = ScoringRules(cutoffs=(("A", 950), ("B", 500)), lowest_grade="C", points_by_type={vtype.code: 300})
    assert bulk_scores(date(2025, 6, 30), [trader.pk], rules) == {trader.pk: (700, "B")}
    rules = ScoringRules(cutoffs=(), lowest_grade="X", points_by_category={"false_advertising": 0})
    assert bulk_scores(date(2025, 6, 30), [trader.pk], rules) == {trader.pk: (1000, "X")}


def test_the_sql_serves_as_the_source_of_an_update():
    hit, clean = TraderFactory(), TraderFactory(score=10, grade="D")
    vtype = ViolationType.objects.get(code="false-advertising")
    make_violations([(hit, vtype, date(2025, 6, 30), NOON, "confirmed")])
    sql, params = scores_sql(date(2025, 6, 30), [hit.pk, clean.pk])
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE traders_trader AS t SET score = s.score, grade = s.grade FROM ({sql}) AS s "
            "WHERE t.id = s.trader_id AND (t.score, t.grade) IS DISTINCT FROM (s.score, s.grade)",
            params,
        )
        assert cursor.rowcount == 2
    assert list(
        Trader.objects.filter(pk__in=[hit.pk, clean.pk]).order_by("pk").values_list("score", "grade")
    ) == [
        (940, "A"),
        (1000, "A"),
    ]


def test_scored_violations_reads_confirmed_rows_as_the_reference_takes_them():
    trader = TraderFactory()
    vtype = ViolationType.objects.get(code="false-advertising")
    confirmed, _ = make_violations(
        [
            (trader, vtype, date(2025, 1, 2), NOON, "confirmed"),
            (trader, vtype, date(2025, 1, 3), NOON, "pending"),
        ]
    )
    assert scored_violations([trader.pk]) == {
        trader.pk: [
            ScoredViolation(
                id=confirmed.pk,
                occurred_on=date(2025, 1, 2),
                recorded_at=NOON,
                category="false_advertising",
                points=60,
                validity_days=730,
                type_code="false-advertising",
            )
        ]
    }
