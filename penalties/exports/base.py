"""What every report is made of: columns, a filter schema and sections of rows.

An exporter declares its filters (typed, validated the same way for the audit page, the
CLI and the task) and its columns, and yields rows as plain tuples from a streaming
query: `.iterator(chunk_size)` on PostgreSQL is a server-side cursor, so a register of
any length holds one chunk in memory, and each chunk costs a fixed number of queries.
Formats (formats.py) turn the rows into a file; they never query.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from creditledger.exceptions import ApplicationError
from traders.jurisdiction import NATIONAL, Scope

CHUNK_SIZE = 2000  # rows per fetch from the server-side cursor


class FilterError(ApplicationError):
    """A filter value that does not parse or is not allowed; names the filter."""


# --- columns ------------------------------------------------------------------------------

TEXT, INT, DECIMAL, DATE, DATETIME = "text", "int", "decimal", "date", "datetime"


@dataclass(frozen=True)
class Column:
    key: str
    label: Any  # a lazy translation
    kind: str = TEXT
    width: int = 14  # in characters, a hint for XLSX and PDF

    @property
    def title(self) -> str:
        return str(self.label)


@dataclass
class Section:
    """A titled table. Most reports have one; the credit file has several."""

    title: Any
    columns: tuple[Column, ...]
    rows: Iterable[tuple]
    key: str = "rows"


# --- filters ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    """One filter: how it is named, asked for and parsed.

    kind: "date" (YYYY-MM-DD), "text" (optionally matching `pattern`), "choice" (one of
    `choices`, a callable so catalog-backed choices are read when asked), "int".
    """

    name: str
    label: Any
    kind: str = "text"
    choices: Callable[[], list[tuple[str, Any]]] | None = None
    required: bool = False
    help: Any = ""
    pattern: str = ""
    pattern_message: Any = ""
    minimum: int | None = None
    default: Any = None
    upper: bool = False  # codes are matched in upper case, whatever was typed

    def parse(self, raw: Any) -> Any:
        """The typed value of `raw` (a string from a form or the command line, or the
        typed value itself); None when empty. Raises FilterError naming the filter."""
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if self.required:
                raise FilterError(str(_("This filter is required.")), field=self.name, code="required")
            return self.default
        if self.kind == "date":
            return self._date(raw)
        if self.kind == "int":
            return self._int(raw)
        value = str(raw).strip()
        if self.upper:
            value = value.upper()
        if self.kind == "choice":
            allowed = [code for code, _label in self.choices()]
            if value not in allowed:
                message = _("Unknown value %(value)s; use one of: %(allowed)s.") % {
                    "value": value,
                    "allowed": ", ".join(allowed),
                }
                raise FilterError(str(message), field=self.name, code="invalid_choice", value=value)
        elif self.pattern and not re.fullmatch(self.pattern, value):
            raise FilterError(str(self.pattern_message), field=self.name, code="invalid", value=value)
        return value

    def _date(self, raw: Any) -> dt.date:
        if isinstance(raw, dt.date) and not isinstance(raw, dt.datetime):
            return raw
        try:
            return dt.date.fromisoformat(str(raw).strip())
        except ValueError as exc:
            raise FilterError(
                str(_("Enter a date as YYYY-MM-DD.")), field=self.name, code="invalid", value=str(raw)
            ) from exc

    def _int(self, raw: Any) -> int:
        try:
            value = int(str(raw).strip())
        except ValueError as exc:
            raise FilterError(
                str(_("Enter a whole number.")), field=self.name, code="invalid", value=str(raw)
            ) from exc
        if self.minimum is not None and value < self.minimum:
            message = _("The smallest allowed value is %(minimum)s.") % {"minimum": self.minimum}
            raise FilterError(str(message), field=self.name, code="min_value", value=value)
        return value

    def display(self, value: Any) -> str:
        """The value as a person reads it (choice labels, ISO dates)."""
        if self.kind == "choice" and self.choices:
            return str(dict(self.choices()).get(value, value))
        return value.isoformat() if isinstance(value, dt.date) else str(value)


def region_filter(name: str = "region") -> Filter:
    return Filter(
        name,
        _("region (code prefix)"),
        pattern=r"\d{2}(\d{2}){0,2}",
        pattern_message=_("Give 2, 4 or 6 digits of the administrative division code, e.g. 33 or 3301."),
        help=_("Province (2 digits), city (4) or district (6) of the trader's registration."),
    )


def period_filters(prefix: str, what: Any) -> tuple[Filter, Filter]:
    return (
        Filter(f"{prefix}_from", _("%(what)s from") % {"what": what}, kind="date", help=_("inclusive")),
        Filter(f"{prefix}_to", _("%(what)s to") % {"what": what}, kind="date", help=_("inclusive")),
    )


# --- the exporter -------------------------------------------------------------------------


@dataclass
class Exporter:
    """A report. Subclasses set the class attributes and implement rows() (or sections()).

    Build one with `Exporter(filters)` where filters are raw strings or typed values; they
    are validated at once (FilterError), so a bad request fails before any job runs.
    """

    name: ClassVar[str]
    title: ClassVar[Any]
    description: ClassVar[Any] = ""
    filters: ClassVar[tuple[Filter, ...]] = ()
    columns: ClassVar[tuple[Column, ...]] = ()
    formats: ClassVar[tuple[str, ...]] = ("csv", "xlsx")
    do_not_call_in_templates: ClassVar[bool] = True  # templates show the class's attributes

    raw_filters: Mapping[str, Any] = field(default_factory=dict)
    chunk_size: int = CHUNK_SIZE
    now: dt.datetime = field(default_factory=timezone.now)
    # Whose traders: the requesting user's jurisdiction (the audit pages), or national (the
    # command line). Every report filters its rows by it; the manifest states it.
    jurisdiction: Scope = NATIONAL
    values: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.values = self.clean(self.raw_filters)
        self.check_scope()

    def check_scope(self) -> None:
        """Refuse filters that name something outside the scope (FilterError)."""

    def scoped(self, queryset, region_field: str = "trader__region"):
        return self.jurisdiction.filter(queryset, region_field)

    @classmethod
    def clean(cls, raw: Mapping[str, Any]) -> dict[str, Any]:
        known = {f.name: f for f in cls.filters}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            message = _("Unknown filter %(name)s; this report takes: %(known)s.") % {
                "name": unknown[0],
                "known": ", ".join(known) or "-",
            }
            raise FilterError(str(message), field=unknown[0], code="unknown_filter")
        values = {name: spec.parse(raw.get(name)) for name, spec in known.items()}
        cls.check(values)
        return values

    @classmethod
    def check(cls, values: dict[str, Any]) -> None:
        """Rules across filters; by default: every X_from is not after its X_to."""
        for name, value in values.items():
            if name.endswith("_from") and value is not None:
                end = values.get(name[: -len("_from")] + "_to")
                if end is not None and end < value:
                    raise FilterError(
                        str(_("The end of the period comes before its start.")),
                        field=name[: -len("_from")] + "_to",
                        code="invalid_period",
                    )

    def filters_json(self) -> dict[str, Any]:
        """The filters that were set, as JSON-safe values (for the export record and manifest)."""
        out = {}
        for name, value in self.values.items():
            if value is None:
                continue
            out[name] = value.isoformat() if isinstance(value, dt.date) else value
        return out

    def filters_display(self) -> list[tuple[str, str]]:
        specs = {f.name: f for f in self.filters}
        shown = [
            (str(specs[name].label), specs[name].display(value))
            for name, value in self.values.items()
            if value is not None
        ]
        if not self.jurisdiction.national:
            shown.append((str(_("jurisdiction")), self.jurisdiction.describe()))
        return shown

    def count(self) -> int | None:
        """The number of rows, when it is cheap to know in advance (for progress)."""
        return None

    def rows(self) -> Iterator[tuple]:
        raise NotImplementedError

    def sections(self) -> list[Section]:
        return [Section(self.title, self.columns, self.rows())]
