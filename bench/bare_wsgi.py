"""A bench-only WSGI app: the project's settings and middleware, and one bare Django view.

`GET /bare/traders/<uscc>` returns the same trader row as the API's `GET traders/{uscc}`,
with none of the API (no key, no throttle, no DRF, no serializers, no measures or shops):
the reference that bench_api.py measures the API against. Served by gunicorn from bench/
only; it is not, and must never be, in the project's URLs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creditledger.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402

from traders.models import Trader  # noqa: E402

FIELDS = ("uscc", "name", "kind", "region", "score", "grade", "status", "version", "assessed_at")


def trader(request, uscc: str):
    row = Trader.objects.filter(uscc=uscc).values(*FIELDS).first()
    if row is None:
        return JsonResponse({"detail": "not found"}, status=404)
    return JsonResponse(row)


urlpatterns = [path("bare/traders/<str:uscc>", trader)]
settings.ROOT_URLCONF = __name__
application = get_wsgi_application()
