"""Set-based writes: many rows in one statement, without model instances on PostgreSQL.

Rows are dicts of field name → Python value; each value goes through its field's
``get_db_prep_save``, so JSON, decimals and times are stored exactly as the ORM would store
them. On another database (SQLite for ``make run``) the same calls fall back to the ORM's
bulk_create and bulk_update.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import orjson
from django.db import connection
from django.db.models import JSONField, Model
from psycopg2.extras import execute_values

from creditledger import pgcopy

PAGE = 1000


def _prep(model: type[Model], names: Sequence[str], rows: Sequence[dict[str, Any]]) -> list[tuple]:
    # psycopg2 adapts numbers, text, dates, times and None itself; only JSON needs the
    # field's own preparation (the cost of a field call per value shows at scale).
    prepared = [
        (name, model._meta.get_field(name))
        for name in names
        if isinstance(model._meta.get_field(name), JSONField)
    ]
    if not prepared:
        return [tuple(row[name] for name in names) for row in rows]
    out = []
    for row in rows:
        row = dict(row)
        for name, f in prepared:
            row[name] = f.get_db_prep_save(row[name], connection)
        out.append(tuple(row[name] for name in names))
    return out


def _casts(model: type[Model], names: Sequence[str]) -> str:
    fields = [model._meta.get_field(name) for name in names]
    return "(" + ", ".join(f"%s::{f.cast_db_type(connection)}" for f in fields) + ")"


def allocate_ids(model: type[Model], count: int) -> list[int]:
    """``count`` fresh primary keys from the table's sequence, in one statement.

    Ids taken and then rolled back are never reused: sequences do not roll back.
    """
    if count == 0:
        return []
    table, pk = model._meta.db_table, model._meta.pk.column
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)", [table, pk, count]
        )
        return [row[0] for row in cursor.fetchall()]


def insert(model: type[Model], rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert the rows (with COPY on PostgreSQL); return their primary keys in row order.

    A row may carry its own ``id``; on PostgreSQL the others get theirs from the sequence.
    """
    if not rows:
        return []
    pk = model._meta.pk.name
    if connection.vendor != "postgresql":
        objs = model.objects.bulk_create([model(**row) for row in rows], batch_size=PAGE)
        return [obj.pk for obj in objs]
    missing = [i for i, row in enumerate(rows) if row.get(pk) is None]
    rows = [dict(row) for row in rows]
    for i, new_id in zip(missing, allocate_ids(model, len(missing)), strict=True):
        rows[i][pk] = new_id
    names = [pk, *(name for name in rows[0] if name != pk)]
    fields = [model._meta.get_field(n) for n in names]
    json_columns = {i for i, f in enumerate(fields) if isinstance(f, JSONField)}
    value = pgcopy.value

    def lines():
        for row in rows:
            cells = [row[n] for n in names]
            for i in json_columns:
                cells[i] = None if cells[i] is None else _json(cells[i])
            yield "\t".join(map(value, cells)) + "\n"

    pgcopy.copy_lines(model._meta.db_table, [f.column for f in fields], lines())
    return [row[pk] for row in rows]


def _json(data: Any) -> str:
    # The server parses it into jsonb: any valid JSON text stores the same value.
    try:
        return orjson.dumps(data).decode()
    except TypeError:  # integers past 64 bits, which json writes
        return json.dumps(data, ensure_ascii=False)


def update(model: type[Model], rows: Sequence[dict[str, Any]], fields: Sequence[str]) -> None:
    """Set ``fields`` of each row, matched on the primary key (every row has it)."""
    if not rows:
        return
    pk = model._meta.pk.name
    if connection.vendor != "postgresql":
        objs = [model(**{pk: row[pk], **{f: row[f] for f in fields}}) for row in rows]
        model.objects.bulk_update(objs, list(fields), batch_size=PAGE)
        return
    names = [pk, *fields]
    quote = connection.ops.quote_name
    column = {n: quote(model._meta.get_field(n).column) for n in names}
    assignments = ", ".join(f"{column[f]} = v.{column[f]}" for f in fields)
    sql = (
        f"UPDATE {quote(model._meta.db_table)} AS t SET {assignments} "
        f"FROM (VALUES %s) AS v({', '.join(column[n] for n in names)}) "
        f"WHERE t.{column[pk]} = v.{column[pk]}"
    )
    with connection.cursor() as cursor:
        execute_values(
            cursor.cursor, sql, _prep(model, names, rows), template=_casts(model, names), page_size=PAGE
        )
