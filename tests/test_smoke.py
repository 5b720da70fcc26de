from __future__ import annotations

from django.conf import settings


def test_it_runs_on_postgresql():
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
