"""The rules a Policy version holds, as plain data. Pure: no ORM, no clock.

A Policy row stores these rules as JSON; `PolicyRules.from_dict` validates them (naming
the field at fault) so an invalid policy can never be activated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

MEASURES = ("warning", "listing_restricted", "suspended", "blacklisted")
# Worst last: a trader's status is the worst measure in force.
MEASURE_RANK = {measure: rank for rank, measure in enumerate(MEASURES, start=1)}
GRADES = ("A", "B", "C", "D")
SEVERITIES = ("minor", "general", "serious", "grave")


class PolicyError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Escalation:
    """A rule that imposes a measure for a fixed period, whatever the score.

    kind "severity": any confirmed violation of `severity` triggers it.
    kind "repeat": `count` confirmed violations of `category` within `window_days`
    (inclusive of both ends) trigger it; the violation completing the count is the trigger.
    """

    code: str
    kind: str
    measure: str
    duration_days: int
    severity: str = ""
    category: str = ""
    count: int = 0
    window_days: int = 0

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "code": self.code,
            "kind": self.kind,
            "measure": self.measure,
            "duration_days": self.duration_days,
        }
        if self.kind == "severity":
            data["severity"] = self.severity
        else:
            data.update({"category": self.category, "count": self.count, "window_days": self.window_days})
        return data


@dataclass(frozen=True)
class PolicyRules:
    cutoffs: tuple[tuple[str, int], ...] = (("A", 900), ("B", 750), ("C", 600))
    grade_measures: Mapping[str, str | None] = field(
        default_factory=lambda: {"A": None, "B": "warning", "C": "listing_restricted", "D": "suspended"}
    )
    notice_days: Mapping[str, int] = field(
        default_factory=lambda: {"warning": 0, "listing_restricted": 3, "suspended": 5, "blacklisted": 5}
    )
    escalations: tuple[Escalation, ...] = (
        Escalation(
            code="grave-violation",
            kind="severity",
            severity="grave",
            measure="blacklisted",
            duration_days=3 * 365,
        ),
        Escalation(
            code="repeat-counterfeit",
            kind="repeat",
            category="counterfeit",
            count=3,
            window_days=365,
            measure="suspended",
            duration_days=90,
        ),
    )
    blacklist_min_days: int = 365  # earliest credit repair of a blacklisting
    appeal_window_days: int = 60
    appeal_decision_days: int = 60  # a supervisor decides an appeal within this many days
    points_overrides: Mapping[str, int] = field(default_factory=dict)  # violation type code → points

    def grade_for(self, score: int) -> str:
        for grade, floor in self.cutoffs:
            if score >= floor:
                return grade
        return "D"

    def as_dict(self) -> dict[str, Any]:
        return {
            "cutoffs": [[grade, floor] for grade, floor in self.cutoffs],
            "grade_measures": dict(self.grade_measures),
            "notice_days": dict(self.notice_days),
            "escalations": [rule.as_dict() for rule in self.escalations],
            "blacklist_min_days": self.blacklist_min_days,
            "appeal_window_days": self.appeal_window_days,
            "appeal_decision_days": self.appeal_decision_days,
            "points_overrides": dict(self.points_overrides),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PolicyRules:
        """Validate and build; raise PolicyError naming the field that is wrong."""
        if not isinstance(data, Mapping):
            raise PolicyError("rules", _("must be an object"))
        cutoffs = _cutoffs(data.get("cutoffs"))
        grade_measures = data.get("grade_measures")
        if not isinstance(grade_measures, Mapping) or set(grade_measures) != set(GRADES):
            raise PolicyError(
                "grade_measures",
                _("must name a measure (or null) for each of %(grades)s") % {"grades": ", ".join(GRADES)},
            )
        for grade, measure in grade_measures.items():
            if measure is not None and measure not in MEASURES:
                raise PolicyError(
                    f"grade_measures.{grade}", _("unknown measure %(measure)r") % {"measure": measure}
                )
        notice = data.get("notice_days")
        if not isinstance(notice, Mapping) or set(notice) != set(MEASURES):
            raise PolicyError(
                "notice_days",
                _("must give days for each of %(measures)s") % {"measures": ", ".join(MEASURES)},
            )
        for measure, days in notice.items():
            _non_negative_int(f"notice_days.{measure}", days)
        raw_escalations = data.get("escalations") or []
        if not isinstance(raw_escalations, (list, tuple)):
            raise PolicyError("escalations", _("must be a list of rules"))
        escalations = tuple(_escalation(i, rule) for i, rule in enumerate(raw_escalations))
        codes = [rule.code for rule in escalations]
        if len(codes) != len(set(codes)):
            raise PolicyError("escalations", _("rule codes must be unique"))
        overrides = data.get("points_overrides") or {}
        if not isinstance(overrides, Mapping):
            raise PolicyError("points_overrides", _("must map violation type codes to points"))
        for code, points in overrides.items():
            _non_negative_int(f"points_overrides.{code}", points)
        return cls(
            cutoffs=cutoffs,
            grade_measures=dict(grade_measures),
            notice_days={k: int(v) for k, v in notice.items()},
            escalations=escalations,
            blacklist_min_days=_non_negative_int("blacklist_min_days", data.get("blacklist_min_days", 365)),
            appeal_window_days=_non_negative_int("appeal_window_days", data.get("appeal_window_days", 60)),
            # Policies activated before this setting existed decide within the default.
            appeal_decision_days=_positive_int("appeal_decision_days", data.get("appeal_decision_days", 60)),
            points_overrides={str(k): int(v) for k, v in overrides.items()},
        )


def _non_negative_int(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise PolicyError(name, _("must be a whole number ≥ 0, got %(value)r") % {"value": value})
    return value


def _positive_int(name: str, value: Any) -> int:
    if _non_negative_int(name, value) == 0:
        raise PolicyError(name, _("must be at least 1"))
    return value


def _cutoffs(raw: Any) -> tuple[tuple[str, int], ...]:
    if not isinstance(raw, (list, tuple)) or len(raw) != 3:
        raise PolicyError("cutoffs", _("must list the lowest scores of A, B and C"))
    cutoffs = []
    for i, item in enumerate(raw):
        if not isinstance(item, (list, tuple)) or len(item) != 2 or item[0] != GRADES[i]:
            raise PolicyError(f"cutoffs.{i}", _("must be [%(grade)r, lowest score]") % {"grade": GRADES[i]})
        floor = _non_negative_int(f"cutoffs.{item[0]}", item[1])
        if floor > 1000:
            raise PolicyError(f"cutoffs.{item[0]}", _("must be at most 1000"))
        cutoffs.append((item[0], floor))
    if not cutoffs[0][1] > cutoffs[1][1] > cutoffs[2][1]:
        raise PolicyError("cutoffs", _("must fall strictly from A to C"))
    return tuple(cutoffs)


def _escalation(index: int, raw: Any) -> Escalation:
    where = f"escalations.{index}"
    if not isinstance(raw, Mapping):
        raise PolicyError(where, _("must be an object"))
    code = raw.get("code")
    if not isinstance(code, str) or not code:
        raise PolicyError(f"{where}.code", _("is required"))
    kind = raw.get("kind")
    measure = raw.get("measure")
    if measure not in MEASURES:
        raise PolicyError(f"{where}.measure", _("unknown measure %(measure)r") % {"measure": measure})
    duration = _non_negative_int(f"{where}.duration_days", raw.get("duration_days"))
    if duration == 0:
        raise PolicyError(f"{where}.duration_days", _("must be at least 1"))
    if kind == "severity":
        severity = raw.get("severity")
        if severity not in SEVERITIES:
            raise PolicyError(
                f"{where}.severity", _("unknown severity %(severity)r") % {"severity": severity}
            )
        return Escalation(code=code, kind=kind, measure=measure, duration_days=duration, severity=severity)
    if kind == "repeat":
        category = raw.get("category")
        if not isinstance(category, str) or not category:
            raise PolicyError(f"{where}.category", _("is required"))
        count = _non_negative_int(f"{where}.count", raw.get("count"))
        window = _non_negative_int(f"{where}.window_days", raw.get("window_days"))
        if count < 2 or window < 1:
            raise PolicyError(where, _("a repeat rule needs count ≥ 2 and window_days ≥ 1"))
        return Escalation(
            code=code,
            kind=kind,
            measure=measure,
            duration_days=duration,
            category=category,
            count=count,
            window_days=window,
        )
    raise PolicyError(f"{where}.kind", _("must be 'severity' or 'repeat', got %(kind)r") % {"kind": kind})
