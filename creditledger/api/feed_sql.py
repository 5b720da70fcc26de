"""The change feed rendered by PostgreSQL: one statement returns each entry's JSON text.

Replaying the feed is the API's bulk path (a platform that rebuilds its state reads every
status entry, 100 million of them at national scale). Built in Python, each entry cost a
datetime formatted through DRF with a time-zone lookup, its payload decoded from the row
and encoded again, and a leaf hash: 15k entries/s where COPY of the same rows runs at
235k/s. Here the database renders the entry exactly as serializers_read.feed_entry_data
does (tests/api/test_feed_sql.py holds the two equal, field by field):

- `at` in the current time zone, as Python's isoformat (microseconds only when non-zero)
  with DRF's "Z" for UTC;
- the payload withheld (`{}`) when it is another platform's shop declaration or
  acknowledgement, otherwise the stored jsonb minus the regulator's internal keys, which
  are named, sorted, in `payload_redacted`;
- `leaf_hash`: base64 of SHA-256(0x00 ‖ body), the entry's RFC 6962 leaf.

The page is the entries' texts joined: Python touches each row once, as a str.
"""

from __future__ import annotations

from django.db import connections
from django.utils import timezone

from creditledger.api.serializers_read import INTERNAL_NOTE_ACTIONS, PLATFORM_PRIVATE_ACTIONS, STAFF_KEYS
from creditledger.ledger.models import STATUS_ACTIONS

# A timestamptz as DRF's DateTimeField writes it: in the current zone, Python's isoformat
# (microseconds only when there are some), "Z" for UTC. t.local: the wall-clock time there;
# t.off: the zone's offset at that instant.
AT_TEXT = """replace(to_char(t.local, 'YYYY-MM-DD"T"HH24:MI:SS.US'), '.000000', '')
    || CASE WHEN t.off = interval '0' THEN 'Z'
            WHEN t.off < interval '0' THEN '-' || to_char(-t.off, 'HH24:MI')
            ELSE '+' || to_char(t.off, 'HH24:MI') END"""
LOCAL_TIME = """CROSS JOIN LATERAL (
    SELECT {at} AT TIME ZONE %(tz)s AS local, ({at} AT TIME ZONE %(tz)s) - ({at} AT TIME ZONE 'UTC') AS off
) AS t"""

# `action IN (...)` spelled as the partial index ledger_feed_idx states it, so the planner
# proves the index applies and reads the page from it in seq order.
_SQL = """
SELECT e.seq,
       '{"seq":' || e.seq
    || ',"at":"' || {at_text}
    || '","action":' || to_json(e.action)::text
    || ',"trader":' || coalesce(to_json(nullif(e.trader_uscc, ''))::text, 'null')
    || ',"subject":{"type":' || to_json(e.subject_type)::text || ',"id":' || to_json(e.subject_id)::text
    || '},"payload":' || CASE WHEN w.withheld THEN '{}' ELSE (e.payload - w.hidden)::text END
    || ',"payload_withheld":' || CASE WHEN w.withheld THEN 'true' ELSE 'false' END
    || ',"payload_redacted":' || CASE WHEN w.withheld THEN '[]' ELSE {redacted} END
    || ',"leaf_hash":"' || encode(sha256('\\x00'::bytea || e.body), 'base64') || '"}'
FROM "ledger_ledgerentry" AS e
{local_time}
CROSS JOIN LATERAL (
    SELECT (e.action IN %(private)s AND (e.payload ->> 'platform') IS DISTINCT FROM %(platform)s) AS withheld,
           CASE WHEN e.action IN %(note_actions)s THEN %(hidden_note)s ELSE %(hidden)s END::text[] AS hidden
) AS w
WHERE e.seq > %(after)s AND e.action IN %(actions)s
ORDER BY e.seq
LIMIT %(limit)s
"""


def _redacted_sql() -> str:
    """The hidden keys the payload holds, sorted, as a JSON array: one CASE per key (they
    are few and fixed), which costs a third of a subquery over jsonb_object_keys."""
    note_actions = ", ".join(f"'{action}'" for action in sorted(INTERNAL_NOTE_ACTIONS))
    cases = []
    for key in sorted(STAFF_KEYS | {"note"}):  # the code's constants: plain identifiers
        condition = f"e.payload ? '{key}'"
        if key == "note":
            condition = f"e.action IN ({note_actions}) AND {condition}"
        cases.append(f"CASE WHEN {condition} THEN '{key}' END")
    return f"to_json(array_remove(ARRAY[{', '.join(cases)}]::text[], NULL))::text"


_SQL = (
    _SQL.replace("{at_text}", AT_TEXT)
    .replace("{local_time}", LOCAL_TIME.format(at='e."at"'))
    .replace("{redacted}", _redacted_sql())
)


def available(db: str) -> bool:
    return connections[db].vendor == "postgresql"


def feed_page(*, db: str, after: int, limit: int, platform_code: str) -> tuple[list[int], list[str], bool]:
    """(seqs, entry JSON texts, has_more) of the status entries after `after`."""
    params = {
        "tz": timezone.get_current_timezone_name(),
        "private": tuple(sorted(PLATFORM_PRIVATE_ACTIONS)),
        "platform": platform_code,
        "note_actions": tuple(sorted(INTERNAL_NOTE_ACTIONS)),
        "hidden": sorted(STAFF_KEYS),
        "hidden_note": sorted(STAFF_KEYS | {"note"}),
        "after": after,
        "actions": STATUS_ACTIONS,
        "limit": limit + 1,
    }
    with connections[db].cursor() as cursor:
        cursor.execute(_SQL, params)
        rows = cursor.fetchall()
    has_more = len(rows) > limit
    rows = rows[:limit]
    return [seq for seq, _text in rows], [text for _seq, text in rows], has_more


def page_bytes(texts: list[str], *, next_seq: int, has_more: bool) -> bytes:
    """The FeedSerializer shape, {"entries": [...], "next": n, "has_more": b}, as UTF-8."""
    more = "true" if has_more else "false"
    return ('{"entries":[' + ",".join(texts) + f'],"next":{next_seq},"has_more":{more}}}').encode()
