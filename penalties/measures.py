"""Which measures the policy wants for a trader now. Pure: no ORM, no clock.

Two kinds of grounds:
- the grade: the policy maps each grade to a measure (or none), open-ended while the
  grade lasts;
- escalation rules: a trigger (a grave violation; the violation completing N of a
  category within a window) imposes a measure for a fixed period, once per trigger.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, replace

from penalties.policy import MEASURE_RANK, Escalation, PolicyRules


@dataclass(frozen=True)
class Fact:
    """A confirmed violation as the escalation rules see it."""

    id: int
    type_code: str
    category: str
    severity: str
    occurred_on: dt.date
    confirmed_on: dt.date
    name: str = ""  # the type's name, for statements of reasons


@dataclass(frozen=True)
class Wanted:
    measure: str
    basis: str  # "score" | "rule"
    rule_code: str
    trigger_key: str
    duration_days: int | None
    violation_ids: tuple[int, ...]

    @property
    def rank(self) -> int:
        return MEASURE_RANK[self.measure]


def grade_measure(rules: PolicyRules, grade: str) -> str | None:
    return rules.grade_measures.get(grade)


def rule_triggers(facts: Iterable[Fact], rules: PolicyRules, today: dt.date) -> list[Wanted]:
    """Escalation triggers whose period could still be running today, oldest first."""
    facts = sorted(facts, key=lambda f: (f.occurred_on, f.id))
    wanted: list[Wanted] = []
    for rule in rules.escalations:
        for trigger, grounds in _triggers(rule, facts):
            # A trigger older than the measure's own period has nothing left to impose.
            if today >= trigger.confirmed_on + dt.timedelta(days=rule.duration_days):
                continue
            wanted.append(
                Wanted(
                    measure=rule.measure,
                    basis="rule",
                    rule_code=rule.code,
                    trigger_key=f"{rule.code}:{trigger.id}",
                    duration_days=rule.duration_days,
                    violation_ids=tuple(f.id for f in grounds),
                )
            )
    return wanted


def _triggers(rule: Escalation, facts: list[Fact]):
    if rule.kind == "severity":
        for fact in facts:
            if fact.severity == rule.severity:
                yield fact, [fact]
        return
    in_category = [f for f in facts if f.category == rule.category]
    for i, fact in enumerate(in_category):
        since = fact.occurred_on - dt.timedelta(days=rule.window_days)
        window = [f for f in in_category[: i + 1] if f.occurred_on >= since]
        if len(window) >= rule.count:
            # The trigger confirms when the last of its grounds was confirmed.
            confirmed = max(f.confirmed_on for f in window)
            yield replace(fact, confirmed_on=confirmed), window
