"""The replica: the API's lookups and feed read from it when one is configured; everything
else, and every write, stays on the primary."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from creditledger.ledger.models import LedgerEntry
from creditledger.routers import PrimaryReplicaRouter, read_db
from penalties.models import Violation
from tests import factories

ROOT = Path(__file__).resolve().parents[2]
WRITES = ("INSERT", "UPDATE", "DELETE")


def _sql(queries) -> list[str]:
    return [query["sql"] for query in queries]


def _touching(queries, table: str) -> list[str]:
    return [sql for sql in _sql(queries) if f'"{table}"' in sql]


@pytest.fixture
def api(make_api_client):
    return make_api_client("taobao")


def test_reads_use_the_primary_when_no_replica_is_configured(settings):
    settings.API_READ_DATABASE = "default"
    assert read_db() == "default"


def test_the_router_migrates_only_the_primary_and_relates_both():
    router = PrimaryReplicaRouter()
    assert router.allow_migrate("default", "traders") is True
    assert router.allow_migrate("replica", "traders") is False
    assert router.db_for_write(Violation) == "default"


@pytest.mark.django_db(transaction=True, databases=["default", "replica"])
def test_api_lookups_and_the_feed_read_from_the_replica(replica, api):
    shop = factories.ShopFactory(platform=api.platform, platform_shop_id="tb-1")
    trader = shop.trader
    with CaptureQueriesContext(connections["replica"]) as on_replica:
        with CaptureQueriesContext(connections["default"]) as on_default:
            assert api.get(f"/api/v1/traders/{trader.uscc}").status_code == 200
            assert api.get("/api/v1/traders/", {"shop": "tb-1"}).status_code == 200
            lookup = api.post(
                "/api/v1/traders/lookup", {"codes": [trader.uscc], "shop_ids": ["tb-1"]}, format="json"
            )
            assert lookup.status_code == 200 and lookup.json()["found"] == 2
            assert api.get("/api/v1/changes/", {"after": 0}).status_code == 200

    # The trader rows, their measures and the caller's shops, and the ledger: all from the replica.
    assert len(_touching(on_replica, "traders_trader")) >= 3
    assert _touching(on_replica, "penalties_restriction")
    assert _touching(on_replica, "traders_shop")
    assert _touching(on_replica, "ledger_ledgerentry")
    assert not [sql for sql in _sql(on_replica) if sql.lstrip().upper().startswith(WRITES)]
    # The primary only authenticated the key.
    for table in ("traders_trader", "penalties_restriction", "traders_shop", "ledger_ledgerentry"):
        assert not _touching(on_default, table), table


@pytest.mark.django_db(transaction=True, databases=["default", "replica"])
def test_a_report_is_written_to_the_primary_and_nothing_to_the_replica(replica, make_api_client):
    client = make_api_client("taobao", ["reports:write"])
    shop = factories.ShopFactory(platform=client.platform)
    body = {
        "trader": shop.trader.uscc,
        "type": "counterfeit-goods",
        "occurred_on": timezone.localdate().isoformat(),
        "description": "消费者投诉：商标不符",
    }
    with CaptureQueriesContext(connections["replica"]) as on_replica:
        with CaptureQueriesContext(connections["default"]) as on_default:
            response = client.post(
                "/api/v1/reports/", body, format="json", HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex
            )

    assert response.status_code == 201, response.content
    assert not [sql for sql in _sql(on_replica) if sql.lstrip().upper().startswith(WRITES)]
    assert [sql for sql in _touching(on_default, "penalties_violation") if sql.startswith("INSERT")]
    assert Violation.objects.using("default").filter(pk=response.json()["id"]).exists()
    assert LedgerEntry.objects.using("default").exists()


def _settings_in_a_new_process(tmp_path, **env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}}
    base.update({"DJANGO_SETTINGS_MODULE": "creditledger.settings", "VAR_DIR": str(tmp_path), "DEBUG": "1"})
    base.update(env)
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "r = s.DATABASES['replica']; print(s.API_READ_DATABASE, r['HOST'], r['TEST']['MIRROR'])"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=base, capture_output=True, text=True, timeout=60
    )


def test_database_replica_url_adds_a_replica_that_tests_mirror(tmp_path):
    result = _settings_in_a_new_process(
        tmp_path,
        DATABASE_URL="postgres://app@primary.internal:5432/creditledger",
        DATABASE_REPLICA_URL="postgres://app@replica.internal:5432/creditledger",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["replica", "replica.internal", "default"]


def test_a_replica_on_another_engine_stops_start_up(tmp_path):
    result = _settings_in_a_new_process(
        tmp_path,
        DATABASE_URL="postgres://app@primary.internal:5432/creditledger",
        DATABASE_REPLICA_URL="sqlite:///replica.sqlite3",
    )
    assert result.returncode != 0
    assert "DATABASE_REPLICA_URL" in result.stderr
