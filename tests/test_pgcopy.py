"""COPY's text format, value by value (the round trip through PostgreSQL is in
tests/ledger/test_copy_insert.py and tests/penalties/test_seed_demo.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from creditledger import pgcopy


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "\\N"),
        (True, "t"),
        (False, "f"),
        (0, "0"),
        (Decimal("1250.50"), "1250.50"),
        ("杭州", "杭州"),
        ("tab\there", "tab\\there"),
        ("line\nbreak\r", "line\\nbreak\\r"),
        ("back\\slash \\N", "back\\\\slash \\\\N"),
        (b"\x00\xff", "\\\\x00ff"),
        (dt.date(2026, 3, 4), "2026-03-04"),
        (dt.datetime(2026, 3, 4, 8, 30, tzinfo=dt.UTC), "2026-03-04T08:30:00+00:00"),
        ({"a": "b\\c", "n": [1]}, '{"a": "b\\\\\\\\c", "n": [1]}'),
    ],
)
def test_each_value_becomes_one_copy_column(value, text):
    assert pgcopy.value(value) == text
    assert "\t" not in pgcopy.value(value) and "\n" not in pgcopy.value(value)


def test_reading_hands_out_whole_lines_up_to_the_block_size():
    lines = [f"{n}\tx\n" for n in range(1000)]
    reader = pgcopy._Lines(lines)
    blocks = list(iter(lambda: reader.read(100), ""))
    assert "".join(blocks) == "".join(lines)
    assert all(block.endswith("\n") and len(block) < 100 + 8 for block in blocks)
