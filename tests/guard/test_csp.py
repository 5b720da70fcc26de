"""Content-Security-Policy: on every staff page, strict, and honoured by the pages themselves."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from creditledger.ledger.actors import Actor
from creditledger.ledger.models import LedgerEntry
from penalties.models import Policy, Violation, ViolationType
from penalties.services import restriction_impose, trader_reassess, violation_confirm, violation_record
from tests import factories

pytestmark = pytest.mark.django_db

INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*\bnonce=)[^>]*>", re.IGNORECASE)
INLINE_STYLE_BLOCK = re.compile(r"<style\b(?![^>]*\bnonce=)[^>]*>", re.IGNORECASE)
STYLE_ATTRIBUTE = re.compile(r"<[a-zA-Z][^>]*\sstyle\s*=", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[a-zA-Z][^>]*\son[a-z]+\s*=\s*[\"']", re.IGNORECASE)


def _directives(header: str) -> dict[str, list[str]]:
    out = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def _check(response) -> None:
    assert response.status_code == 200, response.status_code
    header = response.headers.get("Content-Security-Policy")
    assert header, "no Content-Security-Policy header"
    policy = _directives(header)
    assert policy["default-src"] == ["'self'"]
    assert "'unsafe-inline'" not in policy["script-src"]
    assert "'unsafe-eval'" not in policy["script-src"]
    assert "'unsafe-inline'" not in policy["style-src"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    assert policy["form-action"] == ["'self'"]
    assert set(policy["img-src"]) == {"'self'", "data:"}
    body = response.content.decode()
    assert not INLINE_SCRIPT.findall(body)
    assert not INLINE_STYLE_BLOCK.findall(body)
    assert not STYLE_ATTRIBUTE.findall(body), STYLE_ATTRIBUTE.findall(body)[:3]
    assert not EVENT_HANDLER.findall(body), EVENT_HANDLER.findall(body)[:3]


@pytest.fixture
def world(supervisor, other_supervisor):
    """A trader with confirmed violations, a score history and a measure: every part of the
    trader page and the dashboard has something to draw."""
    trader = factories.TraderFactory()
    for code, days in (("false-advertising", 200), ("substandard-goods", 10)):
        violation = violation_record(
            actor=Actor.for_user(supervisor),
            trader=trader,
            type=ViolationType.objects.get(code=code),
            occurred_on=timezone.localdate() - dt.timedelta(days=days),
            source=Violation.Source.INSPECTION,
            description="检查发现",
        )
        violation_confirm(actor=Actor.for_user(other_supervisor), violation=violation)
        trader_reassess(trader=trader)
    restriction = restriction_impose(
        actor=Actor.for_user(supervisor), trader=trader, measure="suspended", reason="责令限期改正"
    )
    pending = violation_record(
        actor=Actor.for_user(supervisor),
        trader=trader,
        type=ViolationType.objects.get(code="false-advertising"),
        occurred_on=timezone.localdate(),
        source=Violation.Source.COMPLAINT,
        description="投诉",
    )
    return {"trader": trader, "restriction": restriction, "violation": pending}


def test_every_main_staff_page_sends_a_strict_policy_and_keeps_to_it(client, supervisor, world):
    client.force_login(supervisor)
    entry = LedgerEntry.objects.order_by("-seq").first()
    policy = Policy.objects.order_by("-pk").first()
    urls = [
        reverse("admin:index"),
        reverse("admin:traders_trader_changelist"),
        reverse("admin:traders_trader_change", args=[world["trader"].pk]),
        reverse("admin:traders_trader_add"),
        reverse("admin:penalties_violation_changelist"),
        reverse("admin:penalties_violation_change", args=[world["violation"].pk]),
        reverse("admin:penalties_violation_add"),
        reverse("admin:penalties_restriction_changelist"),
        reverse("admin:penalties_restriction_change", args=[world["restriction"].pk]),
        reverse("admin:penalties_policy_changelist"),
        reverse("admin:penalties_policy_change", args=[policy.pk]),
        reverse("admin:penalties_policy_add"),
        reverse("admin:penalties_restriction_add"),
        reverse("admin:traders_platform_add"),
        reverse("admin:ledger_ledgerentry_changelist"),
        reverse("admin:ledger_ledgerentry_change", args=[entry.pk]),
        reverse("audit:index"),
    ]
    for url in urls:
        try:
            _check(client.get(url))
        except AssertionError as exc:
            raise AssertionError(f"{url}: {exc}") from exc


def test_the_sign_in_and_lockout_pages_keep_to_the_policy(db, settings):
    _check(Client().get(reverse("admin:login")))
    settings.AXES_FAILURE_LIMIT = 1
    response = Client().post(
        reverse("admin:login"), {"username": "nobody", "password": "x"}, REMOTE_ADDR="10.9.9.9"
    )
    assert response.status_code == 429
    response.status_code = 200  # _check wants a page; the lockout page is one
    _check(response)


def test_report_only_mode_sends_the_policy_without_enforcing_it(tmp_path):
    from tests.test_settings import _start

    result = _start(
        tmp_path,
        "-c",
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.CONTENT_SECURITY_POLICY is None, "
        "'frame-ancestors' in s.CONTENT_SECURITY_POLICY_REPORT_ONLY['DIRECTIVES'])",
        DEBUG="1",
        CSP_REPORT_ONLY="1",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]


def test_the_api_docs_page_carries_the_nonce_on_its_inline_code(db):
    response = Client().get("/api/docs/")
    assert response.status_code == 200
    policy = _directives(response.headers["Content-Security-Policy"])
    nonces = [word for word in policy["script-src"] if word.startswith("'nonce-")]
    assert len(nonces) == 1
    nonce = nonces[0][len("'nonce-") : -1]
    body = response.content.decode()
    assert f'<script nonce="{nonce}">' in body and f'<style nonce="{nonce}">' in body
    assert not INLINE_SCRIPT.findall(body) and not INLINE_STYLE_BLOCK.findall(body)


def test_every_admin_list_and_add_page_keeps_to_the_policy(client, world):
    from django.contrib import admin

    root = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    request = client.get(reverse("admin:index")).wsgi_request
    checked = 0
    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        urls = [reverse("admin:{}_{}_changelist".format(*info))]
        if model_admin.has_add_permission(request):
            urls.append(reverse("admin:{}_{}_add".format(*info)))
        obj = model._default_manager.first()
        if obj is not None:
            urls.append(reverse("admin:{}_{}_change".format(*info), args=[obj.pk]))
        for url in urls:
            try:
                _check(client.get(url))
            except AssertionError as exc:
                raise AssertionError(f"{url}: {exc}") from exc
            checked += 1
    assert checked > 30
