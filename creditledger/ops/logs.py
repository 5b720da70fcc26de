"""Log formatting: plain lines for `make run`, one JSON object per line in production.

Both carry the log context (request id, actor, trader, task) that the ContextFilter puts on
each record. Chosen by LOG_FORMAT; settings.LOGGING wires them up.
"""

from __future__ import annotations

import datetime as dt
import logging

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from creditledger.ops import log_context


class ContextFilter(logging.Filter):
    """Copy the current log context onto the record (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = log_context.current()
        for name in log_context.FIELDS:
            if not hasattr(record, name):
                setattr(record, name, fields.get(name))
        return True


class PlainFormatter(logging.Formatter):
    """`time level logger message [request_id=… actor=… trader=…]`, the context only when set."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(
            f"{name}={value}" for name in log_context.FIELDS if (value := getattr(record, name, None))
        )
        return f"{line} [{context}]" if context else line


class JsonFormatter(_JsonFormatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the context
    fields that are set, and whatever `extra=` a caller passed."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            timestamp=False,
            json_ensure_ascii=False,
        )

    def formatTime(self, record, datefmt=None):
        return dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds")

    def process_log_record(self, log_data: dict) -> dict:
        for name in log_context.FIELDS:
            if log_data.get(name) in (None, ""):
                log_data.pop(name, None)
        return log_data
