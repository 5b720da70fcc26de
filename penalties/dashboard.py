"""What the staff landing page shows: selectors for the dashboard.

Each selector is one query (an aggregate or a short, LIMITed list), so the page costs the
same number of queries however many traders, violations and measures there are. Counts
are exact; what grows with the data is only the work inside those few queries, and each
runs on an index or a GROUP BY over one table.

Each selector takes the viewer's jurisdiction (`scope`, traders.jurisdiction.scope_of)
and counts only the traders it covers; the filter rides inside the same query. The
default is national: the caller passes the user's scope (the dashboard template tag does).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Count, Exists, Min, OuterRef, Q, Window
from django.db.models.functions import TruncWeek
from django.utils import timezone

from penalties.models import (
    Appeal,
    Category,
    Objection,
    RepairApplication,
    Restriction,
    RestrictionAck,
    Violation,
)
from traders.jurisdiction import NATIONAL, Scope
from traders.models import Platform, Shop, Trader

State = Restriction.State

# A proposed measure whose objection deadline falls within this many days is "near".
DEADLINE_DAYS = 3
# A measure in force this many days without a platform's acknowledgement is overdue.
UNACKED_OVERDUE_DAYS = 3
# How many weeks the category chart covers (the current week included).
WEEKS = 12
# The longest list a dashboard panel shows; a link leads to the full list.
LIST_LIMIT = 10


@dataclass(frozen=True)
class QueueSizes:
    pending: int
    platform_reports: int
    oldest_recorded_at: dt.datetime | None
    now: dt.datetime

    @property
    def officer_records(self) -> int:
        return self.pending - self.platform_reports

    @property
    def oldest_age(self) -> dt.timedelta | None:
        return self.now - self.oldest_recorded_at if self.oldest_recorded_at else None


def queue_sizes(now: dt.datetime | None = None, *, scope: Scope = NATIONAL) -> QueueSizes:
    """Pending violations, of which platform reports, and when the oldest was recorded.

    One aggregate on the (status, recorded_at) index."""
    pending = scope.filter(Violation.objects.filter(status=Violation.Status.PENDING), "trader__region")
    row = pending.aggregate(
        pending=Count("pk"),
        reports=Count("pk", filter=Q(source=Violation.Source.PLATFORM_REPORT)),
        oldest=Min("recorded_at"),
    )
    return QueueSizes(row["pending"], row["reports"], row["oldest"], now or timezone.now())


@dataclass(frozen=True)
class Deadlines:
    """Proposed measures whose objection window closes soon, soonest first; each row carries
    `objection_pending` (an objection awaits a supervisor's decision)."""

    total: int
    measures: list[Restriction]
    days: int = DEADLINE_DAYS


def objection_deadlines(
    now: dt.datetime | None = None, days: int = DEADLINE_DAYS, *, scope: Scope = NATIONAL
) -> Deadlines:
    """Proposed measures whose objection deadline lies between now and `days` from now."""
    now = now or timezone.now()
    pending = Objection.objects.filter(restriction=OuterRef("pk"), status=Objection.Status.PENDING)
    rows = list(
        scope.filter(Restriction.objects.all(), "trader__region")
        .filter(
            state=State.PROPOSED,
            objection_deadline__gte=now,
            objection_deadline__lte=now + dt.timedelta(days=days),
        )
        .select_related("trader")
        .annotate(objection_pending=Exists(pending))
        # The total rides along on each row: one query for the list and its count.
        .annotate(total=Window(Count("pk")))
        .order_by("objection_deadline", "pk")[:LIST_LIMIT]
    )
    return Deadlines(total=rows[0].total if rows else 0, measures=rows, days=days)


@dataclass(frozen=True)
class AppealDeadlines:
    """Pending appeals due for a decision within `days` or already overdue, soonest first."""

    total: int
    appeals: list[Appeal]
    days: int = DEADLINE_DAYS


def appeal_deadlines(
    now: dt.datetime | None = None, days: int = DEADLINE_DAYS, *, scope: Scope = NATIONAL
) -> AppealDeadlines:
    now = now or timezone.now()
    rows = list(
        scope.filter(Appeal.objects.all(), "violation__trader__region")
        .filter(status=Appeal.Status.PENDING, deadline__lte=now + dt.timedelta(days=days))
        .select_related("violation__trader", "violation__type")
        .annotate(total=Window(Count("pk")))
        .order_by("deadline", "pk")[:LIST_LIMIT]
    )
    return AppealDeadlines(total=rows[0].total if rows else 0, appeals=rows, days=days)


@dataclass(frozen=True)
class PendingRemedies:
    objections: int
    appeals: int
    repairs: int


def _region_sql(scope: Scope, column: str) -> tuple[str, list[str]]:
    """An SQL condition (" AND ...") on a trader region column for the scope, and its params."""
    if scope.national:
        return "", []
    if not scope.regions:
        return " AND 1 = 0", []
    like = " OR ".join(f"{column} LIKE %s" for _prefix in scope.regions)
    return f" AND ({like})", [f"{prefix}%" for prefix in scope.regions]


def pending_remedies(*, scope: Scope = NATIONAL) -> PendingRemedies:
    """Objections, appeals and repair applications awaiting a decision: one statement."""
    o, a, r = (model._meta.db_table for model in (Objection, Appeal, RepairApplication))
    m, v, t = Restriction._meta.db_table, Violation._meta.db_table, Trader._meta.db_table
    cond, params = _region_sql(scope, "t.region")
    if scope.national:
        via_measure = via_violation = ""
    else:
        via_measure = f" JOIN {m} m ON m.id = x.restriction_id JOIN {t} t ON t.id = m.trader_id"
        via_violation = f" JOIN {v} v ON v.id = x.violation_id JOIN {t} t ON t.id = v.trader_id"
    sql = f"""
        SELECT (SELECT COUNT(*) FROM {o} x{via_measure} WHERE x.status = %s{cond}),
               (SELECT COUNT(*) FROM {a} x{via_violation} WHERE x.status = %s{cond}),
               (SELECT COUNT(*) FROM {r} x{via_measure} WHERE x.status = %s{cond})
    """
    statuses = (Objection.Status.PENDING, Appeal.Status.PENDING, RepairApplication.Status.PENDING)
    with connection.cursor() as cursor:
        cursor.execute(sql, [value for status in statuses for value in (status, *params)])
        objections, appeals, repairs = cursor.fetchone()
    return PendingRemedies(int(objections), int(appeals), int(repairs))


def week_start(now: dt.datetime | None = None) -> dt.datetime:
    """Monday 00:00 of the current week, in the site's time zone."""
    local = timezone.localtime(now or timezone.now())
    monday = local.date() - dt.timedelta(days=local.weekday())
    return dt.datetime.combine(monday, dt.time.min, tzinfo=local.tzinfo)


@dataclass(frozen=True)
class WeekMeasures:
    since: dt.datetime
    proposed: int
    applied: int
    lifted: int
    withdrawn: int


def measures_this_week(now: dt.datetime | None = None, *, scope: Scope = NATIONAL) -> WeekMeasures:
    """Measures proposed, applied, lifted and withdrawn since Monday, from their timestamps.

    proposed: noticed this week with an objection window (a measure applied at once has
    none); applied: took effect this week (starts_at), whether still in force or lifted
    since; lifted: lifted_at this week (a withdrawn proposal also has lifted_at, so it
    is counted apart)."""
    now = now or timezone.now()
    since = week_start(now)
    row = scope.filter(Restriction.objects.all(), "trader__region").aggregate(
        proposed=Count(
            "pk",
            filter=Q(objection_deadline__isnull=False, noticed_at__gte=since, noticed_at__lte=now),
        ),
        applied=Count(
            "pk",
            filter=Q(state__in=[State.ACTIVE, State.LIFTED], starts_at__gte=since, starts_at__lte=now),
        ),
        lifted=Count("pk", filter=Q(state=State.LIFTED, lifted_at__gte=since, lifted_at__lte=now)),
        withdrawn=Count("pk", filter=Q(state=State.WITHDRAWN, lifted_at__gte=since, lifted_at__lte=now)),
    )
    return WeekMeasures(since=since, **row)


@dataclass(frozen=True)
class PlatformUnacked:
    platform: str
    unacked: int
    overdue: int


@dataclass(frozen=True)
class UnackedMeasure:
    restriction_id: int
    measure: str
    starts_at: dt.datetime
    trader_id: int
    trader_name: str
    trader_uscc: str
    platform: str
    overdue: bool

    @property
    def measure_label(self) -> str:
        return Restriction.Measure(self.measure).label


@dataclass(frozen=True)
class Unacknowledged:
    by_platform: list[PlatformUnacked]
    oldest: list[UnackedMeasure] = field(default_factory=list)
    overdue_days: int = UNACKED_OVERDUE_DAYS

    @property
    def total(self) -> int:
        return sum(row.unacked for row in self.by_platform)

    @property
    def overdue(self) -> int:
        return sum(row.overdue for row in self.by_platform)


# (active measure, platform) pairs where the trader has a shop on the platform and the
# platform has not acknowledged: the rule restriction_acknowledge applies (and the one
# creditledger.ops.metrics counts). A trader with two shops on a platform is one pair.
_PAIRS = """
    SELECT DISTINCT r.id AS restriction_id, r.measure, r.starts_at, r.trader_id, s.platform_id
    FROM {r} r JOIN {s} s ON s.trader_id = r.trader_id{join}
    WHERE r.state = %s AND NOT EXISTS (
        SELECT 1 FROM {a} a WHERE a.restriction_id = r.id AND a.platform_id = s.platform_id
    ){cond}
"""


def _pairs_sql(scope: Scope) -> tuple[str, list[str]]:
    """The pairs' SQL and the params that follow its state param."""
    cond, params = _region_sql(scope, "rt.region")
    join = "" if scope.national else f" JOIN {Trader._meta.db_table} rt ON rt.id = r.trader_id"
    sql = _PAIRS.format(
        r=Restriction._meta.db_table,
        s=Shop._meta.db_table,
        a=RestrictionAck._meta.db_table,
        join=join,
        cond=cond,
    )
    return sql, params


def unacknowledged(
    now: dt.datetime | None = None, overdue_days: int = UNACKED_OVERDUE_DAYS, *, scope: Scope = NATIONAL
) -> Unacknowledged:
    """Measures in force that platforms have not acknowledged: per platform, and the oldest
    few pairs to chase. One query: the pairs are found once (a materialised CTE) and feed
    both the counts and the list, told apart by the first column."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=overdue_days)
    p, t = Platform._meta.db_table, Trader._meta.db_table
    pairs_sql, pairs_params = _pairs_sql(scope)
    materialized = "MATERIALIZED" if connection.vendor == "postgresql" else ""
    sql = f"""
        WITH pairs AS {materialized} (
            SELECT pr.*, p.name AS platform_name
            FROM ({pairs_sql}) pr JOIN {p} p ON p.id = pr.platform_id
            WHERE p.is_active
        )
        SELECT * FROM (
            SELECT 0 AS part, platform_name, COUNT(*) AS n,
                   SUM(CASE WHEN starts_at < %s THEN 1 ELSE 0 END) AS late,
                   CAST(NULL AS BIGINT) AS restriction_id, CAST(NULL AS VARCHAR(32)) AS measure,
                   CAST(NULL AS TIMESTAMP WITH TIME ZONE) AS starts_at, CAST(NULL AS BIGINT) AS trader_id,
                   CAST(NULL AS VARCHAR(200)) AS trader_name, CAST(NULL AS VARCHAR(18)) AS trader_uscc
            FROM pairs GROUP BY platform_name
        ) counts
        UNION ALL
        SELECT * FROM (
            SELECT 1, pairs.platform_name, CAST(NULL AS BIGINT), CAST(NULL AS BIGINT),
                   pairs.restriction_id, pairs.measure,
                   pairs.starts_at, t.id, t.name, t.uscc
            FROM pairs JOIN {t} t ON t.id = pairs.trader_id
            ORDER BY pairs.starts_at, pairs.restriction_id, pairs.platform_name
            LIMIT %s
        ) oldest
        ORDER BY 1, 2
    """
    by_platform: list[PlatformUnacked] = []
    rows: list[tuple] = []
    with connection.cursor() as cursor:
        cursor.execute(sql, [State.ACTIVE, *pairs_params, cutoff, LIST_LIMIT])
        for part, pname, n, late, rid, measure, starts_at, tid, tname, tuscc in cursor.fetchall():
            if part == 0:
                by_platform.append(PlatformUnacked(pname, int(n), int(late or 0)))
            else:
                rows.append((rid, measure, starts_at, tid, tname, tuscc, pname))
    oldest: list[UnackedMeasure] = []
    for rid, measure, starts_at, tid, tname, tuscc, pname in sorted(rows, key=lambda r: (r[2], r[0], r[6])):
        if isinstance(starts_at, str):  # SQLite: a NULL-typed column hands back text
            starts_at = dt.datetime.fromisoformat(starts_at)
        if timezone.is_naive(starts_at):  # SQLite hands back naive UTC
            starts_at = timezone.make_aware(starts_at, dt.UTC)
        oldest.append(UnackedMeasure(rid, measure, starts_at, tid, tname, tuscc, pname, starts_at < cutoff))
    return Unacknowledged(by_platform=by_platform, oldest=oldest, overdue_days=overdue_days)


def grade_distribution(*, scope: Scope = NATIONAL) -> list[tuple[str, int]]:
    """(grade, traders) for every grade A–D, zeros included: one GROUP BY."""
    counts = dict(scope.filter(Trader.objects.all()).order_by().values_list("grade").annotate(n=Count("pk")))
    return [(grade, counts.get(grade, 0)) for grade in Trader.Grade.values]


@dataclass(frozen=True)
class WeeklyCategories:
    """Violations per category per week, by the week they were recorded (recorded_at).

    Recorded, not occurred: the chart shows the work arriving, the weeks are complete as
    soon as they end, and (status, recorded_at) is indexed. Confirmed and pending
    violations count; rejected and overturned ones do not."""

    weeks: list[dt.date]
    categories: list[tuple[str, str]]  # (value, label), in Category order
    counts: dict[tuple[dt.date, str], int]

    def series(self, category: str) -> list[int]:
        return [self.counts.get((week, category), 0) for week in self.weeks]

    def week_total(self, week: dt.date) -> int:
        return sum(self.counts.get((week, value), 0) for value, _label in self.categories)


def weekly_categories(
    now: dt.datetime | None = None, weeks: int = WEEKS, *, scope: Scope = NATIONAL
) -> WeeklyCategories:
    first = week_start(now) - dt.timedelta(weeks=weeks - 1)
    mondays = [(first + dt.timedelta(weeks=i)).date() for i in range(weeks)]
    tz = timezone.get_current_timezone()
    rows = (
        scope.filter(Violation.objects.all(), "trader__region")
        .filter(status__in=[Violation.Status.CONFIRMED, Violation.Status.PENDING], recorded_at__gte=first)
        .annotate(week=TruncWeek("recorded_at", tzinfo=tz))
        .order_by()
        .values_list("week", "type__category")
        .annotate(n=Count("pk"))
    )
    counts: dict[tuple[dt.date, str], int] = {}
    for week, category, n in rows:
        day = timezone.localtime(week, tz).date() if isinstance(week, dt.datetime) else week
        counts[(day, category)] = counts.get((day, category), 0) + n
    return WeeklyCategories(weeks=mondays, categories=list(Category.choices), counts=counts)
