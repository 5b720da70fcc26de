from __future__ import annotations

import base64

import pytest
from django.db import connection

# A fixed seed, so the tests never touch a key file under var/.
TEST_SEED = base64.b64encode(bytes(range(32))).decode("ascii")
TEST_ORIGIN = "ledger.test/creditledger"


@pytest.fixture(autouse=True)
def signing_key(settings):
    settings.LEDGER_SIGNING_KEY = TEST_SEED
    settings.LEDGER_ORIGIN = TEST_ORIGIN
    return TEST_SEED


@pytest.fixture(autouse=True)
def _trigger_off_before_flush(request):
    """Let a test marked django_db(transaction=True) end with Django's flush (a TRUNCATE).

    tests/conftest.py's _ledger_trigger switches the trigger off only for tests that name
    the transactional_db fixture, and the marker does not add that name. This fixture is
    set up after the marker's database fixture, so it is torn down before the flush.
    """
    yield
    marker = request.node.get_closest_marker("django_db")
    if marker is not None and marker.kwargs.get("transaction") and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE ledger_ledgerentry DISABLE TRIGGER USER")
