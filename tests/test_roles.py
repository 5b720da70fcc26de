"""The role matrix, through the admin pages each role works in."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.admin import helpers
from django.urls import reverse
from django.utils import timezone

from creditledger.ledger.models import LedgerEntry
from penalties.models import Policy, Restriction, Violation
from tests import factories
from traders.models import Trader

pytestmark = pytest.mark.django_db

VIOLATIONS = reverse("admin:penalties_violation_changelist")

LISTS = [
    "admin:traders_trader_changelist",
    "admin:traders_shop_changelist",
    "admin:traders_platform_changelist",
    "admin:penalties_violation_changelist",
    "admin:penalties_violationtype_changelist",
    "admin:penalties_evidence_changelist",
    "admin:penalties_restriction_changelist",
    "admin:penalties_policy_changelist",
    "admin:ledger_ledgerentry_changelist",
    "admin:ledger_checkpoint_changelist",
]
ADD_PAGES = [
    "admin:traders_trader_add",
    "admin:traders_shop_add",
    "admin:traders_platform_add",
    "admin:penalties_violation_add",
    "admin:penalties_violationtype_add",
    "admin:penalties_restriction_add",
    "admin:penalties_policy_add",
]
# Measures and policies are the supervisor's: an officer only reads them.
SUPERVISOR_ADD_PAGES = [
    "admin:penalties_restriction_add",
    "admin:penalties_policy_add",
    "admin:penalties_violationtype_add",
    "admin:traders_platform_add",
]


@pytest.fixture
def some_rows():
    shop = factories.ShopFactory()
    factories.ViolationFactory(trader=shop.trader, shop=shop)
    now = timezone.now()
    Restriction.objects.create(
        trader=shop.trader,
        measure="warning",
        state="active",
        basis="manual",
        reasons={"basis": "manual", "statement": "警示", "violations": []},
        noticed_at=now,
        starts_at=now,
    )


def _confirm(client, *violations, action: str = "confirm_selected", **extra):
    data = {"action": action, helpers.ACTION_CHECKBOX_NAME: [v.pk for v in violations], "index": 0, **extra}
    return client.post(VIOLATIONS, data, follow=True)


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def _status(violation: Violation) -> str:
    violation.refresh_from_db()
    return violation.status


@pytest.mark.parametrize("role", ["officer", "supervisor", "auditor"])
@pytest.mark.parametrize("url_name", LISTS)
def test_every_role_views_every_list(client, request, some_rows, role, url_name):
    client.force_login(request.getfixturevalue(role))
    assert client.get(reverse(url_name)).status_code == 200


@pytest.mark.parametrize("role", ["officer", "supervisor", "auditor"])
def test_every_role_views_a_trader_a_measure_and_a_policy(client, request, some_rows, role):
    client.force_login(request.getfixturevalue(role))
    pages = [
        reverse("admin:traders_trader_change", args=[Trader.objects.get().pk]),
        reverse("admin:penalties_restriction_change", args=[Restriction.objects.get().pk]),
        reverse("admin:penalties_policy_change", args=[Policy.objects.get().pk]),
    ]
    for url in pages:
        assert client.get(url).status_code == 200


@pytest.mark.parametrize("url_name", SUPERVISOR_ADD_PAGES)
def test_an_officer_gets_403_on_the_supervisors_add_pages(client, officer, url_name):
    client.force_login(officer)
    assert client.get(reverse(url_name)).status_code == 403
    assert client.post(reverse(url_name), {}).status_code == 403


@pytest.mark.parametrize("url_name", SUPERVISOR_ADD_PAGES)
def test_a_supervisor_opens_every_add_page(client, supervisor, url_name):
    client.force_login(supervisor)
    assert client.get(reverse(url_name)).status_code == 200


@pytest.mark.parametrize(
    ("role", "url_name"),
    [
        ("officer", "admin:penalties_restriction_changelist"),
        ("auditor", "admin:penalties_restriction_changelist"),
        ("officer", "admin:penalties_policy_changelist"),
        ("auditor", "admin:penalties_policy_changelist"),
    ],
)
def test_officers_and_auditors_are_offered_no_measure_or_policy_action(
    client, request, some_rows, role, url_name
):
    client.force_login(request.getfixturevalue(role))
    assert client.get(reverse(url_name)).context["action_form"] is None


@pytest.mark.parametrize("url_name", [*LISTS, *ADD_PAGES])
def test_anonymous_is_sent_to_the_login_page(client, url_name):
    response = client.get(reverse(url_name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize("url_name", ADD_PAGES)
def test_an_auditor_gets_403_on_every_add_page(client, auditor, url_name):
    client.force_login(auditor)
    assert client.get(reverse(url_name)).status_code == 403
    assert client.post(reverse(url_name), {}).status_code == 403


def test_an_auditor_cannot_register_a_trader(client, auditor):
    client.force_login(auditor)
    response = client.post(
        reverse("admin:traders_trader_add"), {"uscc": factories.make_uscc(1), "name": "公司"}
    )
    assert response.status_code == 403
    assert not Trader.objects.exists()


@pytest.mark.parametrize("action", ["confirm_selected", "reject_selected"])
def test_an_auditor_cannot_confirm_or_reject(client, auditor, action):
    violation = factories.ViolationFactory()
    client.force_login(auditor)
    page = client.get(VIOLATIONS)
    assert page.context["action_form"] is None  # no action is offered at all
    _confirm(client, violation, action=action)
    client.post(
        VIOLATIONS,
        {"action": action, helpers.ACTION_CHECKBOX_NAME: [violation.pk], "post": "yes", "note": "不成立"},
    )
    assert _status(violation) == "pending"
    assert not LedgerEntry.objects.exists()


def test_an_auditor_cannot_attach_evidence(client, auditor):
    violation = factories.ViolationFactory()
    client.force_login(auditor)
    url = reverse("admin:penalties_violation_change", args=[violation.pk])
    assert client.get(url).status_code == 200
    assert client.post(url, {}).status_code == 403


def test_an_officer_adds_a_trader_and_a_violation(client, officer):
    client.force_login(officer)
    code = factories.make_uscc(8, "440305")
    response = client.post(
        reverse("admin:traders_trader_add"), {"uscc": code, "name": "深圳南山电子有限公司"}
    )
    assert response.status_code == 302
    trader = Trader.objects.get(uscc=code)
    response = client.post(
        reverse("admin:penalties_violation_add"),
        {
            "trader": trader.pk,
            "type": factories.violation_type("substandard-goods").pk,
            "occurred_on": (timezone.localdate() - dt.timedelta(days=1)).isoformat(),
            "source": "sampling",
            "description": "抽检不合格",
            "evidence-TOTAL_FORMS": "0",
            "evidence-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302
    assert Violation.objects.get().trader == trader
    assert list(LedgerEntry.objects.exclude(action="admin.logged").values_list("action", flat=True)) == [
        "trader.registered",
        "violation.recorded",
    ]


def test_an_officer_confirms_a_general_violation(client, officer, other_officer):
    general = factories.ViolationFactory(recorded_by=other_officer)
    client.force_login(officer)
    response = _confirm(client, general)
    assert any("Confirmed 1 violation" in m for m in _messages(response))
    assert _status(general) == "confirmed"


def test_an_officer_may_confirm_a_general_violation_he_recorded(client, officer):
    # Four eyes applies to serious and grave violations only.
    own = factories.ViolationFactory(recorded_by=officer)
    client.force_login(officer)
    _confirm(client, own)
    assert _status(own) == "confirmed"


def test_an_officer_cannot_confirm_a_grave_violation(client, officer, other_officer):
    grave = factories.ViolationFactory(
        type=factories.violation_type("counterfeit-large-scale"), recorded_by=other_officer
    )
    client.force_login(officer)
    response = _confirm(client, grave)
    assert response.status_code == 200
    assert any(str(grave) in m and "may not decide" in m for m in _messages(response))
    assert _status(grave) == "pending"
    assert not LedgerEntry.objects.exists()


def test_a_supervisor_confirms_a_grave_violation_someone_else_recorded(client, supervisor, officer):
    grave = factories.ViolationFactory(
        type=factories.violation_type("counterfeit-large-scale"), recorded_by=officer
    )
    client.force_login(supervisor)
    _confirm(client, grave)
    assert _status(grave) == "confirmed"
    entry = LedgerEntry.objects.get()
    assert (entry.action, entry.actor) == ("violation.confirmed", f"user:{supervisor.pk}")


def test_a_supervisor_cannot_confirm_a_grave_violation_he_recorded(client, supervisor, other_supervisor):
    own = factories.ViolationFactory(
        type=factories.violation_type("counterfeit-large-scale"), recorded_by=supervisor
    )
    client.force_login(supervisor)
    response = _confirm(client, own)
    assert any(str(own) in m and "Four eyes" in m for m in _messages(response))
    assert _status(own) == "pending"
    client.force_login(other_supervisor)
    _confirm(client, own)
    assert _status(own) == "confirmed"


def test_an_officer_cannot_edit_the_catalog_or_the_platforms(client, officer):
    client.force_login(officer)
    assert client.get(reverse("admin:penalties_violationtype_add")).status_code == 403
    assert client.get(reverse("admin:traders_platform_add")).status_code == 403


def test_a_supervisor_adds_a_violation_type(client, supervisor):
    client.force_login(supervisor)
    response = client.post(
        reverse("admin:penalties_violationtype_add"),
        {
            "code": "fake-reviews",
            "name": "组织虚假交易、刷单炒信",
            "category": "false_advertising",
            "severity": "serious",
            "points": 120,
            "validity_days": 1095,
            "legal_basis": "《中华人民共和国电子商务法》第十七条",
            "is_active": "on",
        },
    )
    assert response.status_code == 302
