"""Reassessment: lock and load, plan (``penalties.reconcile``), apply — for one trader or
for a batch of thousands, with the same loaders, the same planner and the same writes.

One batch is one transaction: its trader rows are locked first (a blocking lock for the
per-trader task, ``SKIP LOCKED`` in the bulk path), their confirmed violations and their
measures are loaded with one query per kind, each trader is planned, and the plans are
written with one statement per table and one ``ledger_append_many``. A trader another
worker holds is skipped and flagged for the sweeper once that worker is done.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from creditledger import bulk
from creditledger.ledger.actors import Actor
from creditledger.ledger.services import Entry, ledger_append_many
from penalties import reconcile, scoring
from penalties.measures import Fact
from penalties.models import UNLIFTED_STATES, Restriction, ScoreHistory, Violation
from penalties.selectors import active_policy, reassessment_candidates, scoring_rules
from traders.jurisdiction import require_jurisdiction
from traders.models import Trader

log = logging.getLogger(__name__)

REASSESS = Actor.system("reassess")

_TRADER_COLUMNS = (
    "id",
    "uscc",
    "score",
    "grade",
    "status",
    "grade_since",
    "created_at",
    "version",
    "needs_reassessment",
)
_MEASURE_COLUMNS = (
    "id",
    "trader_id",
    "measure",
    "state",
    "basis",
    "rule_code",
    "trigger_key",
    "policy_version",
    "reasons",
    "noticed_at",
    "objection_deadline",
    "duration_days",
    "starts_at",
    "ends_at",
    "lifted_at",
    "lifted_reason",
    "lift_note",
)
_VIOLATION_COLUMNS = (
    "trader_id",
    "id",
    "occurred_on",
    "recorded_at",
    "confirmed_on",
    "type__code",
    "type__name",
    "type__category",
    "type__severity",
    "type__points",
    "type__validity_days",
)
# What reassessment changes on a held measure and on the trader.
_MEASURE_CHANGES = ("state", "starts_at", "ends_at", "lifted_at", "lifted_reason", "lift_note")
_TRADER_CHANGES = ("score", "grade", "status", "grade_since", "version", "assessed_at", "needs_reassessment")


@dataclass(frozen=True)
class Run:
    """What a batch needs besides its traders: loaded once per run."""

    now: dt.datetime
    today: dt.date  # now's date where the traders are assessed (the site's time zone)
    policy: reconcile.Policy
    scoring_rules: scoring.ScoringRules
    actor: Actor = REASSESS

    @classmethod
    def start(cls, now: dt.datetime | None = None, actor: Actor = REASSESS) -> Run:
        policy, rules = active_policy()
        now = now or timezone.now()
        return cls(
            now=now,
            today=timezone.localdate(now),
            policy=reconcile.Policy(policy.version, rules),
            scoring_rules=scoring_rules(rules),
            actor=actor,
        )


@dataclass
class Outcome:
    """What one trader's reassessment changed (``entries`` empty when nothing did)."""

    trader: Trader
    assessment: scoring.Assessment
    plan: reconcile.Plan
    entries: list[Entry] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.entries)


@dataclass
class Batch:
    """What one batch did: traders planned, traders changed, traders another worker held."""

    planned: int = 0
    changed: int = 0
    written: int = 0  # rows written, ledger entries included
    skipped: list[int] = field(default_factory=list)


# --- loading ------------------------------------------------------------------------------


def _states(rows: Iterable[tuple]) -> list[reconcile.TraderState]:
    return [
        reconcile.TraderState(
            id=pk,
            uscc=uscc,
            score=score,
            grade=grade,
            status=status,
            grade_since=grade_since or created_at,
            version=version,
            flagged=flagged,
        )
        for pk, uscc, score, grade, status, grade_since, created_at, version, flagged in rows
    ]


def _lock(ids: Sequence[int], *, skip_locked: bool) -> list[reconcile.TraderState]:
    rows = (
        Trader.objects.select_for_update(skip_locked=skip_locked)
        .filter(pk__in=list(ids))
        .order_by("pk")
        .values_list(*_TRADER_COLUMNS)
    )
    return _states(rows)


# The confirmation day is computed where the trader is assessed (the site's time zone).
_VIOLATIONS_SQL = """
SELECT v.trader_id, v.id, v.occurred_on, v.recorded_at, (v.decided_at AT TIME ZONE %s)::date,
       t.code, t.name, t.category, t.severity, t.points, t.validity_days
FROM penalties_violation AS v JOIN penalties_violationtype AS t ON t.id = v.type_id
WHERE v.trader_id = ANY(%s) AND v.status = %s
"""


def _violation_rows(ids: Sequence[int]) -> Iterable[tuple]:
    if connection.vendor == "postgresql":
        # A plain cursor: at national scale the ORM's per-row work is what a batch costs.
        with connection.cursor() as cursor:
            cursor.execute(
                _VIOLATIONS_SQL, [timezone.get_current_timezone_name(), list(ids), Violation.Status.CONFIRMED]
            )
            return cursor.fetchall()
    return (
        Violation.objects.filter(trader_id__in=list(ids), status=Violation.Status.CONFIRMED)
        .annotate(confirmed_on=TruncDate("decided_at", tzinfo=timezone.get_current_timezone()))
        .order_by()
        .values_list(*_VIOLATION_COLUMNS)
    )


def _violations(ids: Sequence[int]) -> dict[int, tuple[list[scoring.ScoredViolation], list[Fact]]]:
    found: dict[int, tuple[list, list]] = defaultdict(lambda: ([], []))
    for (
        trader_id,
        vid,
        occurred,
        recorded,
        confirmed,
        code,
        name,
        category,
        severity,
        points,
        validity,
    ) in _violation_rows(ids):
        scored, facts = found[trader_id]
        scored.append(scoring.ScoredViolation(vid, occurred, recorded, category, points, validity, code))
        facts.append(Fact(vid, code, category, severity, occurred, confirmed, name))
    return found


# One probe of the trader index per trader (LATERAL): the plan cannot drift to a scan of
# every unlifted measure when statistics lag behind a big run (seen after a cold run at
# 1M traders: 0.3 s a batch). Reasons are read only for the measures still held.
_HELD = "r.state IN ('proposed', 'active')"
_SELECTED = ", ".join(
    f"CASE WHEN {_HELD} THEN r.{c} END" if c == "reasons" else f"r.{c}" for c in _MEASURE_COLUMNS
)
_MEASURES_SQL = f"""
SELECT {_SELECTED}, {_HELD}
FROM unnest(%s::bigint[]) AS t(id)
CROSS JOIN LATERAL (
    SELECT * FROM penalties_restriction AS r
    WHERE r.trader_id = t.id AND ({_HELD} OR r.trigger_key <> '')
) AS r
"""
_REASONS = _MEASURE_COLUMNS.index("reasons")


def _measure_rows(ids: Sequence[int]) -> Iterable[tuple]:
    """(measure columns..., held) for the batch's measures held or with a trigger key."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_MEASURES_SQL, [list(ids)])
            rows = cursor.fetchall()
        return [(*row[:_REASONS], _json(row[_REASONS]), *row[_REASONS + 1 :]) for row in rows]
    rows = Restriction.objects.filter(trader_id__in=list(ids)).filter(
        Q(state__in=UNLIFTED_STATES) | ~Q(trigger_key="")
    )
    return [(*row, row[3] in UNLIFTED_STATES) for row in rows.order_by().values_list(*_MEASURE_COLUMNS)]


def _json(value):
    # Django leaves jsonb undecoded for its fields to decode; so do we, faster.
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _measures(ids: Sequence[int]) -> tuple[dict[int, list[reconcile.Measure]], dict[int, set[str]]]:
    held: dict[int, list[reconcile.Measure]] = defaultdict(list)
    used: dict[int, set[str]] = defaultdict(set)
    for *row, is_held in _measure_rows(ids):
        pk, trader_id, *rest = row
        if is_held:
            held[trader_id].append(reconcile.Measure(pk, *rest))
        key = rest[4]  # trigger_key
        if key:
            used[trader_id].add(key)
    return held, used


def load_cases(traders: Sequence[reconcile.TraderState], run: Run) -> list[reconcile.Case]:
    """The planner's input for each trader: three queries for the whole batch."""
    ids = [t.id for t in traders]
    violations = _violations(ids)
    held, used = _measures(ids)
    today = run.today
    cases = []
    for trader in traders:
        scored, facts = violations.get(trader.id, ((), ()))
        cases.append(
            reconcile.Case(
                trader=trader,
                assessment=scoring.assess(scored, today, run.scoring_rules),
                facts=tuple(facts),
                held=tuple(held.get(trader.id, ())),
                used_keys=frozenset(used.get(trader.id, ())),
            )
        )
    return cases


# --- applying -----------------------------------------------------------------------------


def _measure_row(trader_id: int, m: reconcile.Measure, created_at: dt.datetime) -> dict:
    return {
        "trader_id": trader_id,
        "measure": m.measure,
        "state": m.state,
        "basis": m.basis,
        "rule_code": m.rule_code,
        "trigger_key": m.trigger_key,
        "policy_version": m.policy_version,
        "reasons": m.reasons,
        "noticed_at": m.noticed_at,
        "objection_deadline": m.objection_deadline,
        "duration_days": m.duration_days,
        "starts_at": m.starts_at,
        "ends_at": m.ends_at,
        "lifted_at": m.lifted_at,
        "lifted_reason": m.lifted_reason,
        "lift_note": m.lift_note,
        "created_by_id": None,
        "created_at": created_at,
    }


def apply_plans(plans: Sequence[reconcile.Plan], run: Run) -> list[list[Entry]]:
    """Write the plans: one statement per table, one ledger append, in the caller's
    transaction (which holds the traders' row locks). Returns each plan's entries."""
    changed = [p for p in plans if p.changed]
    cleared = [p.trader.id for p in plans if not p.changed and p.before.flagged]
    if cleared:
        Trader.objects.filter(pk__in=cleared).update(needs_reassessment=False)
    created_at = timezone.now()
    # Lifts first: a measure continued in the same run (an expiry and its successor of the
    # same kind) would otherwise meet one-unlifted-per-kind with its predecessor.
    bulk.update(
        Restriction,
        [{"id": m.id, **{f: getattr(m, f) for f in _MEASURE_CHANGES}} for p in changed for m in p.updated],
        _MEASURE_CHANGES,
    )
    new_rows = [_measure_row(p.trader.id, m, created_at) for p in changed for m in p.created]
    new_ids = iter(bulk.insert(Restriction, new_rows) if new_rows else ())
    bulk.update(
        Trader,
        [
            {
                "id": p.trader.id,
                "score": p.trader.score,
                "grade": p.trader.grade,
                "status": p.trader.status,
                "grade_since": p.trader.grade_since,
                "version": p.trader.version,
                "assessed_at": run.now,
                "needs_reassessment": False,
            }
            for p in changed
        ],
        _TRADER_CHANGES,
    )
    bulk.insert(
        ScoreHistory,
        [
            {
                "trader_id": p.trader.id,
                "at": run.now,
                "as_of": p.history.as_of,
                "score": p.history.score,
                "grade": p.history.grade,
                "policy_version": p.history.policy_version,
            }
            for p in changed
            if p.history is not None
        ],
    )
    entries: list[list[Entry]] = []
    for p in plans:
        ids = [next(new_ids) for _ in p.created] if p.changed else []
        entries.append(
            [Entry(r.action, r.subject_type, r.subject_id, p.trader.uscc, r.payload) for r in p.records(ids)]
        )
    ledger_append_many(actor=run.actor, entries=[e for group in entries for e in group], at=run.now)
    return entries


# --- the two ways in ----------------------------------------------------------------------


def _plan_batch(
    traders: Sequence[reconcile.TraderState], run: Run
) -> list[tuple[reconcile.Case, reconcile.Plan]]:
    return [(case, reconcile.plan(case, run.policy, run.now, run.today)) for case in load_cases(traders, run)]


@transaction.atomic
def trader_reassess(
    *, trader: Trader | int, now: dt.datetime | None = None, actor: Actor = REASSESS
) -> Outcome:
    """Recompute score, grade and measures as of `now`, reconcile, and record the changes.

    Waits for the trader's row lock. Idempotent: a second call with the same inputs finds
    nothing to change and writes nothing. Manual measures are never touched before their end.
    """
    pk = trader.pk if isinstance(trader, Trader) else trader
    locked = Trader.objects.select_for_update().get(pk=pk)
    require_jurisdiction(actor, locked.region)
    run = Run.start(now, actor)
    ((case, result),) = _plan_batch(_states([[getattr(locked, c) for c in _TRADER_COLUMNS]]), run)
    (entries,) = apply_plans([result], run)
    after = result.trader
    locked.score, locked.grade, locked.status = after.score, after.grade, after.status
    locked.version, locked.needs_reassessment = after.version, False
    if result.changed:
        locked.grade_since, locked.assessed_at = after.grade_since, run.now
    return Outcome(trader=locked, assessment=case.assessment, plan=result, entries=entries)


@transaction.atomic
def traders_reassess(*, ids: Sequence[int], run: Run) -> Batch:
    """Reassess a batch of traders in one transaction; those another worker holds are
    skipped (returned in ``skipped``), never waited for."""
    traders = _lock(ids, skip_locked=True)
    locked = {t.id for t in traders}
    batch = Batch(skipped=[i for i in ids if i not in locked])
    planned = _plan_batch(traders, run)
    entries = apply_plans([p for _, p in planned], run)
    batch.planned = len(planned)
    batch.changed = sum(1 for _, p in planned if p.changed)
    # Rows written: the trader, its new and changed measures, its history row, its entries.
    batch.written = sum(len(e) for e in entries) + sum(
        1 + len(p.created) + len(p.updated) + (p.history is not None) for _, p in planned if p.changed
    )
    return batch


@dataclass
class Report:
    """What a bulk run did."""

    candidates: int = 0
    planned: int = 0
    changed: int = 0
    written: int = 0
    skipped: int = 0  # held by another worker: flagged for the sweeper
    failed: list[int] = field(default_factory=list)
    finished: bool = True

    def add(self, batch: Batch) -> None:
        self.planned += batch.planned
        self.changed += batch.changed
        self.written += batch.written
        self.skipped += len(batch.skipped)


def reassess_ids(ids: Sequence[int], run: Run, report: Report) -> list[int]:
    """One batch; if it fails, each of its traders alone, so one trader's fault (logged,
    left as it was) does not hold back the others. Returns the ids another worker held."""
    try:
        batch = traders_reassess(ids=ids, run=run)
    except Exception:
        log.exception("reassessment: a batch of %s traders failed; retrying them one by one", len(ids))
        skipped = []
        for trader_id in ids:
            try:
                batch = traders_reassess(ids=[trader_id], run=run)
            except Exception:
                log.exception("reassessment: trader %s failed", trader_id)
                report.failed.append(trader_id)
                continue
            report.add(batch)
            skipped += batch.skipped
        return skipped
    report.add(batch)
    return batch.skipped


def reassess_all(
    *,
    now: dt.datetime | None = None,
    actor: Actor = REASSESS,
    batch_size: int | None = None,
    progress=None,
    stop_at: float | None = None,
) -> Report:
    """Reassess every trader as of `now`, set-based (``reassess --all``, the nightly job).

    Not one transaction but one per batch: a run killed at any point has committed whole
    batches only, and a rerun finds just the traders still to do (the candidates statement
    recomputes them), so nothing is done twice. Traders whose stored score, grade and
    measures already stand cost nothing beyond the statement. `progress(n, total)` is
    called after each batch with the number of traders it covered and the number of
    candidates. Past `stop_at` (a ``time.monotonic()`` value) the run stops between two
    batches and says so in ``Report.finished``: a task cut short by its time limit loses
    nothing.
    """
    run = Run.start(now, actor)
    candidates = reassessment_candidates(run.now, run.today, run.scoring_rules)
    report = Report(candidates=candidates.total)
    skipped: list[int] = []
    statistics = _Statistics()
    for ids in candidates.batches(batch_size or settings.REASSESS_BATCH):
        if stop_at is not None and time.monotonic() >= stop_at:
            report.finished = False
            break
        skipped += reassess_ids(ids, run, report)
        statistics.after()
        if progress:
            progress(len(ids), candidates.total)
    traders_flag(skipped)
    return report


class _Statistics:
    """Keeps the planner's statistics of the measures table up with a run that writes a
    large share of it, by autovacuum's own rule (20% of the rows changed since the last
    ANALYZE), checked after every batch: autovacuum may be off, or come too late for a run
    that fills the table from nothing. With an empty table's estimates each batch's lookup
    of held measures became a scan of all of them (seen after a cold run at 1M traders)."""

    SHARE, AT_LEAST = 0.2, 10_000
    _STALE = """
        SELECT s.n_mod_since_analyze >= greatest(%s, %s * c.reltuples)
        FROM pg_stat_user_tables AS s JOIN pg_class AS c ON c.oid = s.relid
        WHERE s.relid = %s::regclass
    """

    def __init__(self) -> None:
        self.enabled = connection.vendor == "postgresql"
        self.after()

    def after(self) -> None:
        if not self.enabled:
            return
        table = Restriction._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(self._STALE, [self.AT_LEAST, self.SHARE, table])
            row = cursor.fetchone()
            if row and row[0]:
                cursor.execute(f"ANALYZE {table}")


def traders_flag(ids: Iterable[int]) -> int:
    """Flag traders for the sweeper (those a batch had to skip): waits for their locks."""
    ids = list(ids)
    if not ids:
        return 0
    return Trader.objects.filter(pk__in=ids, needs_reassessment=False).update(needs_reassessment=True)


@transaction.atomic
def trader_reassess_if_free(
    *, trader_id: int, now: dt.datetime | None = None, wait: bool = False, actor: Actor = REASSESS
) -> Outcome | None:
    """Reassess unless another worker holds the trader (then that one's result stands and
    None is returned). With wait=True, queue behind the other worker instead."""
    rows = Trader.objects.select_for_update(skip_locked=not wait).filter(pk=trader_id)
    if not rows.exists():
        return None
    return trader_reassess(trader=trader_id, now=now, actor=actor)
