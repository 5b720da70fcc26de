"""The staff workbench at scale: how long the pages officers and supervisors live in take.

On BENCH_TRADERS traders / BENCH_VIOLATIONS violations (seeded by seed_demo and assessed
by the nightly job, kept between runs like bench_scoring's), each page is rendered
BENCH_PAGE_ROUNDS times through Django's full stack in process (middleware, two-factor
gate, jurisdiction, admin, templates; no network), signed in as a national supervisor,
and as a supervisor whose jurisdiction is one province. Figures: median and p95 in ms.
Reference, same run, same stack: the violation-type changelist (about twenty rows), so
the ratio is what the data costs on top of the admin itself.
"""

from __future__ import annotations

import os
import statistics
import time

TRADERS = int(os.environ.get("BENCH_TRADERS", "100000"))
VIOLATIONS = int(os.environ.get("BENCH_VIOLATIONS", "500000"))
ROUNDS = int(os.environ.get("BENCH_PAGE_ROUNDS", "20"))
PROVINCE = "33"  # Zhejiang: one province's share of the seeded traders


def run():
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from penalties.tasks import reassess_due
    from traders.models import Trader

    have = Trader.objects.count()
    if have < TRADERS:
        started = time.perf_counter()
        call_command("seed_demo", traders=TRADERS - have, violations=VIOLATIONS, seed=7, verbosity=0)
        yield ("seed_demo (not timed below)", time.perf_counter() - started, "s")
    if (
        Trader.objects.filter(needs_reassessment=True).exists()
        or not Trader.objects.filter(assessed_at__isnull=False).exists()
    ):
        started = time.perf_counter()
        reassess_due(timezone.now())
        yield ("nightly reassessment (not timed below)", time.perf_counter() - started, "s")

    # Fresh planner statistics, as autovacuum keeps them in production: right after a bulk
    # seed, PostgreSQL would guess a province's traders at a few dozen and plan for that.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    national = _client(_supervisor("bench_national", national=True))
    provincial = _client(_supervisor("bench_province", regions=[PROVINCE]))
    reference = _time(national, "/admin/penalties/violationtype/")
    yield ("reference: violation-type list, median", reference[0], "ms")

    def lowest(traders) -> int:  # the lowest score: the most on its credit-file page
        return traders.order_by("score", "-pk").values_list("pk", flat=True).first()

    pages = [
        ("dashboard", "/admin/"),
        ("trader list", "/admin/traders/trader/"),
        ("trader search by code prefix", "/admin/traders/trader/?q=9133"),
        ("credit-file page (lowest score)", f"/admin/traders/trader/{lowest(Trader.objects)}/change/"),
        ("review queue", "/admin/penalties/violation/queue/"),
        ("violation list", "/admin/penalties/violation/"),
        ("measure list", "/admin/penalties/restriction/"),
        ("ledger entries", "/admin/ledger/ledgerentry/"),
    ]
    for label, path in pages:
        median, p95 = _time(national, path)
        yield (f"{label}: median", median, "ms", "violation-type list", reference[0])
        yield (f"{label}: p95", p95, "ms")
    in_area = Trader.objects.filter(region__startswith=PROVINCE)
    pages[3] = (pages[3][0], f"/admin/traders/trader/{lowest(in_area)}/change/")
    for label, path in pages[:5]:
        median, _p95 = _time(provincial, path)
        label = f"{label}, province {PROVINCE} only: median"
        yield (label, median, "ms", "violation-type list", reference[0])
    yield ("traders in the bench", Trader.objects.count(), "traders")
    yield (f"  of which in province {PROVINCE}", in_area.count(), "traders")


def _supervisor(username: str, *, national: bool = False, regions: list[str] | None = None):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from creditledger import roles
    from creditledger.ledger.actors import Actor
    from traders.jurisdiction import scope_of
    from traders.services import jurisdiction_set

    user, _created = get_user_model().objects.get_or_create(username=username, defaults={"is_staff": True})
    user.groups.set([Group.objects.get(name=roles.SUPERVISOR)])
    actor = Actor.system("bench")
    if national and not scope_of(user).national:
        jurisdiction_set(actor=actor, user=user, national=True)
    elif regions and list(scope_of(user).regions) != regions:
        jurisdiction_set(actor=actor, user=user, national=False, regions=regions)
    if not TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        TOTPDevice.objects.create(user=user, name="bench", confirmed=True)
    return user


def _client(user):
    """A test client signed in with both factors (the device is real; the code step is
    what the two-factor tests cover)."""
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = TOTPDevice.objects.get(user=user, confirmed=True).persistent_id
    session.save()
    return client


def _time(client, path: str) -> tuple[float, float]:
    response = client.get(path, secure=True)  # warm-up, and the page must really render
    if response.status_code != 200:
        raise SystemExit(f"{path} answered {response.status_code}")
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        client.get(path, secure=True)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[max(0, round(0.95 * len(samples)) - 1)]
