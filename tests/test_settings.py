"""Start-up configuration: every value from the environment, loud on a bad one."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _start(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}}
    base.update({"DJANGO_SETTINGS_MODULE": "creditledger.settings", "VAR_DIR": str(tmp_path)})
    base.update(env)
    command = args or ("-c", "import django; django.setup(); print('ok')")
    return subprocess.run(
        [sys.executable, *command], cwd=ROOT, env=base, capture_output=True, text=True, timeout=60
    )


def test_defaults_start_on_a_bare_machine_in_debug(tmp_path):
    result = _start(tmp_path, "-c", _PRINT, DEBUG="1")
    assert result.returncode == 0, result.stderr
    engine, broker, zone, language = result.stdout.split()
    assert engine == "django.db.backends.sqlite3"
    assert broker == "filesystem://"
    assert (zone, language) == ("Asia/Shanghai", "zh-hans")


_PRINT = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.TIME_ZONE, s.LANGUAGE_CODE)"
)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("EVIDENCE_MAX_BYTES", "twenty megabytes"),
        ("EVIDENCE_MAX_BYTES", "0"),
        ("DEBUG", "perhaps"),
        ("DATABASE_URL", "nosuchdb://x"),
        ("TIME_ZONE", "Mars/Olympus"),
        ("LANGUAGE_CODE", "tlh"),
        ("CELERY_BROKER_URL", "carrier-pigeon://loft"),
        ("CONN_MAX_AGE", "forever"),
        ("LEDGER_SIGNER", "yubikey"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(tmp_path, variable, value):
    env = {"DEBUG": "1", variable: value}
    result = _start(tmp_path, **env)
    assert result.returncode != 0
    assert variable in result.stderr


def test_without_debug_a_secret_key_is_required(tmp_path):
    result = _start(tmp_path, DEBUG="0", ALLOWED_HOSTS="example.org")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_check_deploy_passes_with_a_production_like_environment(tmp_path):
    result = _start(
        tmp_path,
        "manage.py",
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SECRET_KEY=base64.b64encode(os.urandom(48)).decode(),
        ALLOWED_HOSTS="creditledger.example.gov.cn",
        DATABASE_URL="postgres://creditledger@127.0.0.1:5432/creditledger",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
        LEDGER_SIGNING_KEY=base64.b64encode(os.urandom(32)).decode(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
