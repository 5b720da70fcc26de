from __future__ import annotations

import base64

import pytest

# A fixed seed, so the tests never touch a key file under var/.
TEST_SEED = base64.b64encode(bytes(range(32))).decode("ascii")
TEST_ORIGIN = "ledger.test/creditledger"


@pytest.fixture(autouse=True)
def signing_key(settings):
    settings.LEDGER_SIGNER = "file"  # test_hsm.py switches to its softhsm2 token itself
    settings.LEDGER_SIGNING_KEY = TEST_SEED
    settings.LEDGER_ORIGIN = TEST_ORIGIN
    return TEST_SEED
