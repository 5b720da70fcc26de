"""The role × action matrix (issue #6); see tests/access/__init__.py."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.db import connection, transaction
from django.urls import URLResolver, get_resolver, reverse

from creditledger.ledger.models import LedgerEntry
from tests.access.cases import CASES, GROUPS, Case, label_of
from tests.access.matrix import EXEMPT_PREFIXES, EXPECTED, ROLES
from tests.access.world import build_world

pytestmark = pytest.mark.django_db

# --- running a cell ---------------------------------------------------------------------------------

# Rows that say nothing about the domain: the session a login writes, and (other branches)
# login-attempt and second-factor bookkeeping.
UNWATCHED_TABLES = ("django_session", "axes_", "otp_")
LEDGER = "ledger_ledgerentry"


def _writes() -> dict[str, int]:
    """Rows inserted, updated or deleted so far in this transaction, per watched table.

    PostgreSQL counts every row a statement touches, also in a savepoint rolled back
    later, so "no new writes" means the request did not even try to change anything.
    """
    unwatched = " AND ".join("relname NOT LIKE %s" for _ in UNWATCHED_TABLES)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_xact_user_tables "
            f"WHERE {unwatched}",
            [f"{prefix}%" for prefix in UNWATCHED_TABLES],
        )
        return {name: count for name, count in cursor.fetchall() if count}


def _written(before: dict[str, int], after: dict[str, int]) -> set[str]:
    return {name for name, count in after.items() if count != before.get(name, 0)}


def _outcome(response) -> str:
    if response.status_code in (301, 302):
        location = response["Location"]
        return "login" if location.startswith(reverse("admin:login")) else "next"
    if response.status_code == 200:
        return "ok"
    return str(response.status_code)


def _ledger_head() -> int:
    return LedgerEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def _holds(expected: str, got: str, tables: set[str], actions: list[str]) -> bool:
    if expected == "done":
        # Every change is in the ledger, admin actions included (issue #6); and the admin's
        # own history (django_admin_log, recorded as admin.logged) alone is not the change.
        changed = bool(tables - {"django_admin_log", LEDGER}) or any(a != "admin.logged" for a in actions)
        return got in ("ok", "next") and LEDGER in tables and bool(actions) and changed
    if expected == "refused":
        return got in ("ok", "next") and not tables
    return got == expected and not tables


def _run(client, case: Case, role: str, world) -> str | None:
    """None when the cell holds, else what happened instead."""
    user = world.users.get(role)
    sid = transaction.savepoint()
    try:
        client.cookies.clear()
        if user is not None:
            client.force_login(user)
        url = case.url(world, user)
        data = case.data(world)
        before, head = _writes(), _ledger_head()
        if case.method == "GET":
            response = client.get(url, data)
        else:
            response = client.post(url, data)
        tables = _written(before, _writes())
        actions = list(
            LedgerEntry.objects.filter(seq__gt=head).order_by("seq").values_list("action", flat=True)
        )
        got = _outcome(response)
    except Exception as exc:  # reported with the other cells, not one at a time
        return f"raised {exc!r}"
    finally:
        transaction.savepoint_rollback(sid)
    expected = EXPECTED[case.id][ROLES.index(role)]
    if _holds(expected, got, tables, actions):
        return None
    wrote = f" and wrote {', '.join(sorted(tables))}" if tables else ""
    recorded = f" (ledger: {', '.join(actions)})" if actions else ""
    return f"{got}{wrote}{recorded} ({response.status_code} {url})"


# --- the tests ------------------------------------------------------------------------------------


def _leaf_patterns(patterns, prefix: str = "", namespace: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            ns = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _leaf_patterns(pattern.url_patterns, prefix + str(pattern.pattern), ns)
        else:
            route = prefix + str(pattern.pattern)
            yield route, f"{namespace}{pattern.name}" if pattern.name else None


def test_every_url_has_a_case():
    covered = {case.covers for case in CASES.values()}
    uncovered = [
        name or route
        for route, name in _leaf_patterns(get_resolver().url_patterns)
        if not route.startswith(tuple(EXEMPT_PREFIXES)) and (name or route) not in covered
    ]
    suggestions = "\n".join(f'    page("GET {target}", "<group>"),' for target in uncovered)
    assert not uncovered, (
        f"URLs the access matrix has no case for: {uncovered}. Add to OTHER_CASES in "
        f"tests/access/cases.py:\n{suggestions}\nand a row to MATRIX in tests/access/matrix.py "
        "for each (or exempt the prefix, with the reason)."
    )


def test_every_case_has_a_row_and_every_row_a_case():
    missing = [case_id for case_id in CASES if case_id not in EXPECTED]
    template = "\n".join(f"{case_id:62} {'  '.join('?' * len(ROLES))}" for case_id in missing)
    assert not missing, (
        "cases without a row in MATRIX (tests/access/matrix.py); copy these lines into it "
        f"with each role's outcome ({' '.join(ROLES)}):\n{template}"
    )
    stale = [case_id for case_id in EXPECTED if case_id not in CASES]
    assert not stale, f"MATRIX rows for cases that no longer exist: {stale}"


def test_every_admin_model_has_a_target_object(officer, supervisor, auditor):
    world = build_world({"officer": officer, "supervisor": supervisor, "auditor": auditor})
    missing = {label_of(model) for model in admin.site._registry} - set(world.targets)
    assert not missing, (
        f"give these admin models a target object in tests/access/world.py (targets): {sorted(missing)}"
    )


@pytest.mark.parametrize("group", GROUPS)
def test_each_role_gets_what_the_matrix_says(client, officer, supervisor, auditor, group):
    world = build_world({"anonymous": None, "officer": officer, "supervisor": supervisor, "auditor": auditor})
    failures = []
    for case in (c for c in CASES.values() if c.group == group and c.id in EXPECTED):
        for role in ROLES:
            problem = _run(client, case, role, world)
            if problem is not None:
                expected = EXPECTED[case.id][ROLES.index(role)]
                failures.append(f"{case.id:55} {role:10} expected {expected:7} got {problem}")
    assert not failures, "access matrix mismatches:\n" + "\n".join(failures)
