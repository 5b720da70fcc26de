"""The admin's credit pages: the trader's credit record, measures and policy versions."""

from __future__ import annotations

import datetime as dt
import html
import json
import re

import pytest
from django.contrib.admin import helpers
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from creditledger.ledger.actors import Actor
from creditledger.ledger.models import LedgerEntry
from penalties.admin.display import score_chart
from penalties.forms import pretty_json
from penalties.models import Policy, Restriction, ScoreHistory, Violation, ViolationType
from penalties.services import (
    policy_activate,
    policy_create,
    restriction_impose,
    restriction_lift,
    trader_reassess,
    violation_confirm,
    violation_record,
)
from tests import factories
from traders.models import Trader

pytestmark = pytest.mark.django_db

DAY = dt.timedelta(days=1)
RESTRICTIONS = reverse("admin:penalties_restriction_changelist")
RESTRICTION_ADD = reverse("admin:penalties_restriction_add")
POLICIES = reverse("admin:penalties_policy_changelist")
POLICY_ADD = reverse("admin:penalties_policy_add")


@pytest.fixture
def trader():
    return factories.TraderFactory(name="杭州西湖商贸有限公司")


@pytest.fixture
def decide(supervisor, other_supervisor):
    """Record and confirm a violation, four eyes respected."""

    def _decide(trader, code: str, days_ago: int) -> Violation:
        violation = violation_record(
            actor=Actor.for_user(supervisor),
            trader=trader,
            type=ViolationType.objects.get(code=code),
            occurred_on=timezone.localdate() - days_ago * DAY,
            source=Violation.Source.INSPECTION,
            description="检查发现",
        )
        return violation_confirm(actor=Actor.for_user(other_supervisor), violation=violation)

    return _decide


def _trader_url(trader: Trader) -> str:
    return reverse("admin:traders_trader_change", args=[trader.pk])


def _restriction_url(restriction: Restriction) -> str:
    return reverse("admin:penalties_restriction_change", args=[restriction.pk])


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def _queries(client, url: str) -> int:
    client.get(url)  # warm caches (content types, permissions) outside the measurement
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def _breakdown_rows(body: str) -> dict[int, str]:
    """violation id → the deduction shown on its breakdown line."""
    rows = re.findall(r'<tr class="breakdown-line" data-violation="(\d+)">(.*?)</tr>', body, flags=re.DOTALL)
    return {
        int(vid): re.search(r'<td class="deduction"><strong>([\d.]+)</strong>', row).group(1)
        for vid, row in rows
    }


def _svg(body: str) -> str:
    match = re.search(r'<svg class="score-chart".*?</svg>', body, flags=re.DOTALL)
    assert match, "no score chart on the page"
    return match.group(0)


# --- the trader page ----------------------------------------------------------------------------


def test_the_trader_page_explains_the_score_line_by_line(client, officer, trader, decide):
    decaying = decide(trader, "false-advertising", 548)  # 60 points × (730-548)/365, k=1
    repeat = decide(trader, "false-advertising", 200)  # 60 points × 1, k=2 (348 days after)
    fresh = decide(trader, "substandard-goods", 10)  # 80 points × 1, k=1
    trader_reassess(trader=trader)
    trader.refresh_from_db()
    assert (trader.score, trader.grade) == (800, "B")  # 1000 − 199.92, rounded

    client.force_login(officer)
    body = client.get(_trader_url(trader)).content.decode()
    assert _breakdown_rows(body) == {decaying.pk: "29.92", repeat.pk: "90.00", fresh.pk: "80.00"}
    line = re.search(rf'data-violation="{decaying.pk}">(.*?)</tr>', body, flags=re.DOTALL).group(1)
    for shown in [
        "虚假或者引人误解的商业宣传",
        "548",
        "0.499",
        "1.0",
        (decaying.occurred_on + 730 * DAY).isoformat(),
    ]:
        assert shown in line
    repeat_line = re.search(rf'data-violation="{repeat.pk}">(.*?)</tr>', body, flags=re.DOTALL).group(1)
    assert "<td>2</td>" in repeat_line and "1.5" in repeat_line
    assert '<td class="total-deduction"><strong>199.92</strong>' in body
    assert "errornote" not in body  # the stored score is the live one


def test_the_trader_page_says_when_the_stored_score_is_behind(client, officer, trader, decide):
    decide(trader, "substandard-goods", 10)  # confirmed, not yet reassessed
    client.force_login(officer)
    body = client.get(_trader_url(trader)).content.decode()
    assert "errornote" in body
    assert "1000" in body and "920" in body


def test_the_score_chart_has_one_point_per_history_row_and_the_cutoffs(client, officer, trader, decide):
    now = timezone.now()
    decide(trader, "false-advertising", 600)  # decaying from day 365 to day 730
    for days_ago in (200, 100, 0):
        trader_reassess(trader=trader, now=now - days_ago * DAY)
    rows = ScoreHistory.objects.filter(trader=trader).count()
    assert rows == 3

    client.force_login(officer)
    body = client.get(_trader_url(trader)).content.decode()
    svg = _svg(body)
    assert svg.count('class="score-point"') == rows
    assert f'data-points="{rows}"' in svg
    assert svg.count('class="cutoff"') == 3
    for label in ("A ≥ 900", "B ≥ 750", "C ≥ 600"):
        assert label in svg
    assert "<script" not in body.split("score-chart")[1].split("</svg>")[0]


def test_the_chart_draws_the_active_policys_cutoffs(client, officer, trader, supervisor, decide):
    rules = Policy.objects.get(is_active=True).rules | {"cutoffs": [["A", 950], ["B", 800], ["C", 650]]}
    actor = Actor.for_user(supervisor)
    policy_activate(actor=actor, policy=policy_create(actor=actor, name="更严", rules=rules))
    decide(trader, "false-advertising", 10)
    trader_reassess(trader=trader)
    client.force_login(officer)
    svg = _svg(client.get(_trader_url(trader)).content.decode())
    assert "A ≥ 950" in svg and "C ≥ 650" in svg and "A ≥ 900" not in svg


def test_a_trader_without_history_has_no_chart_but_says_so(client, officer, trader):
    client.force_login(officer)
    body = client.get(_trader_url(trader)).content.decode()
    assert 'class="score-chart"' not in body
    assert "score-chart-empty" in body


def test_the_trader_page_shows_measures_with_their_reasons_and_dates(
    client, officer, supervisor, trader, decide
):
    grave = decide(trader, "counterfeit-large-scale", 2)
    trader_reassess(trader=trader)
    manual = restriction_impose(
        actor=Actor.for_user(supervisor),
        trader=trader,
        measure="warning",
        reason="约谈后仍未整改，责令限期改正",
        duration_days=30,
    )
    restriction_lift(actor=Actor.for_user(supervisor), restriction=manual, note="已整改到位")
    blacklisting = Restriction.objects.get(trader=trader, measure="blacklisted")

    client.force_login(officer)
    body = client.get(_trader_url(trader)).content.decode()
    proposed = re.search(
        rf'data-restriction="{blacklisting.pk}".*?</table>\s*<div class="statement-of-reasons">.*?</div>',
        body,
        flags=re.DOTALL,
    ).group(0)
    assert "grave-violation" in proposed
    assert "大规模制售假冒商品" in proposed
    assert f"#{grave.pk}" in proposed
    assert "400.00" in proposed  # the violation's deduction in the statement
    assert "v1" in proposed
    assert "600" in proposed  # the score it was proposed at
    past = body.split(f'data-restriction="{manual.pk}"')[1]
    assert "约谈后仍未整改，责令限期改正" in past
    assert "已整改到位" in past
    assert reverse("admin:penalties_restriction_add") + f"?trader={trader.pk}" not in body  # officer


def test_a_supervisor_is_offered_to_impose_a_measure_from_the_trader_page(client, supervisor, trader):
    client.force_login(supervisor)
    body = client.get(_trader_url(trader)).content.decode()
    assert reverse("admin:penalties_restriction_add") + f"?trader={trader.pk}" in body


def _history(trader, count: int) -> None:
    start = timezone.now() - 400 * DAY
    for n in range(count):
        ScoreHistory.objects.create(
            trader=trader,
            at=start + n * DAY,
            as_of=(start + n * DAY).date(),
            score=1000 - n,
            grade="A",
            policy_version=1,
        )


def test_the_trader_page_costs_the_same_queries_for_few_or_many_rows(client, officer, trader, decide):
    client.force_login(officer)
    decide(trader, "false-advertising", 10)
    trader_reassess(trader=trader)
    _history(trader, 1)
    small = _queries(client, _trader_url(trader))
    for days in (20, 30, 40, 50):
        decide(trader, "substandard-goods", days)
    decide(trader, "counterfeit-large-scale", 5)
    trader_reassess(trader=trader)
    _history(trader, 10)
    assert Restriction.objects.filter(trader=trader).count() >= 2
    assert _queries(client, _trader_url(trader)) == small


# --- the restriction list -----------------------------------------------------------------------


def _restrictions(count: int, supervisor) -> None:
    now = timezone.now()
    for n in range(count):
        Restriction.objects.create(
            trader=factories.TraderFactory(),
            measure=["warning", "listing_restricted", "suspended"][n % 3],
            state="active",
            basis="manual",
            reasons={"basis": "manual", "statement": "x", "violations": []},
            noticed_at=now,
            starts_at=now,
            created_by=supervisor,
        )


@pytest.mark.parametrize(
    "query", ["", "?state__exact=active", "?measure__exact=warning&basis__exact=manual", "?q=测试"]
)
def test_the_restriction_list_costs_the_same_queries_for_3_or_15_rows(client, officer, supervisor, query):
    client.force_login(officer)
    _restrictions(3, supervisor)
    small = _queries(client, RESTRICTIONS + query)
    _restrictions(12, supervisor)
    assert _queries(client, RESTRICTIONS + query) == small


def test_the_restriction_list_filters_and_finds_by_trader(client, officer, supervisor):
    _restrictions(3, supervisor)
    wanted = Restriction.objects.order_by("pk").first()
    client.force_login(officer)

    def found(**params) -> list:
        return list(client.get(RESTRICTIONS, params).context["cl"].result_list)

    assert found(q=wanted.trader.uscc) == [wanted]
    assert found(q=wanted.trader.name) == [wanted]
    assert found(measure__exact=wanted.measure) == [wanted]
    assert len(found(state__exact="active")) == 3
    assert found(state__exact="proposed") == []
    assert found(trader__id__exact=wanted.trader_id) == [wanted]


def test_a_measure_page_is_read_only_with_its_statement_of_reasons(
    client, officer, supervisor, trader, decide
):
    grave = decide(trader, "counterfeit-large-scale", 2)
    trader_reassess(trader=trader)
    blacklisting = Restriction.objects.get(trader=trader, measure="blacklisted")
    client.force_login(officer)
    response = client.get(_restriction_url(blacklisting))
    body = response.content.decode()
    assert response.status_code == 200
    assert "grave-violation" in body and f"#{grave.pk}" in body and "400.00" in body
    assert 'name="measure"' not in body
    assert 'value="withdraw_selected"' not in body  # an officer gets no buttons
    assert client.post(_restriction_url(blacklisting), {"state": "lifted"}).status_code == 403
    blacklisting.refresh_from_db()
    assert blacklisting.state == "proposed"

    client.force_login(supervisor)
    body = client.get(_restriction_url(blacklisting)).content.decode()
    assert 'value="withdraw_selected"' in body and 'value="lift_selected"' in body


def test_nothing_is_deletable_even_for_a_superuser(client, supervisor):
    _restrictions(1, supervisor)
    restriction = Restriction.objects.get()
    root = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    assert client.get(reverse("admin:penalties_restriction_delete", args=[restriction.pk])).status_code == 403
    policy = Policy.objects.get()
    assert client.get(reverse("admin:penalties_policy_delete", args=[policy.pk])).status_code == 403
    client.post(
        RESTRICTIONS,
        {"action": "delete_selected", helpers.ACTION_CHECKBOX_NAME: [restriction.pk], "index": 0},
    )
    assert Restriction.objects.filter(pk=restriction.pk).exists()


# --- imposing, withdrawing, lifting --------------------------------------------------------------


def test_a_supervisor_imposes_a_measure_through_the_add_page(client, supervisor, trader):
    client.force_login(supervisor)
    page = client.get(RESTRICTION_ADD, {"trader": trader.pk})
    assert page.status_code == 200
    assert page.context["adminform"].form.initial["trader"] == str(trader.pk)
    response = client.post(
        RESTRICTION_ADD,
        {"trader": trader.pk, "measure": "warning", "reason": "多次约谈拒不整改", "duration_days": "30"},
    )
    assert response.status_code == 302
    restriction = Restriction.objects.get()
    assert (restriction.trader, restriction.measure, restriction.state, restriction.basis) == (
        trader,
        "warning",
        "active",  # a warning has no notice period
        "manual",
    )
    assert restriction.reasons["statement"] == "多次约谈拒不整改"
    assert restriction.duration_days == 30 and restriction.created_by == supervisor
    entry = LedgerEntry.objects.exclude(action="admin.logged").get()
    assert (entry.action, entry.actor, entry.trader_uscc) == (
        "restriction.applied",
        f"user:{supervisor.pk}",
        trader.uscc,
    )
    trader.refresh_from_db()
    assert trader.status == "warning"


def test_an_imposed_heavy_measure_starts_proposed_with_a_deadline(client, supervisor, trader):
    client.force_login(supervisor)
    response = client.post(
        RESTRICTION_ADD,
        {"trader": trader.pk, "measure": "suspended", "reason": "严重违法", "duration_days": ""},
    )
    assert response.status_code == 302
    restriction = Restriction.objects.get()
    assert restriction.state == "proposed"
    assert restriction.objection_deadline == restriction.noticed_at + 5 * DAY
    assert restriction.duration_days is None
    assert LedgerEntry.objects.exclude(action="admin.logged").get().action == "restriction.proposed"


def test_imposing_a_measure_the_trader_already_holds_is_a_field_error(client, supervisor, trader):
    restriction_impose(actor=Actor.for_user(supervisor), trader=trader, measure="warning", reason="一")
    client.force_login(supervisor)
    response = client.post(RESTRICTION_ADD, {"trader": trader.pk, "measure": "warning", "reason": "二"})
    assert response.status_code == 200
    assert "already holds" in response.context["adminform"].form.errors["measure"][0]
    assert Restriction.objects.count() == 1
    assert LedgerEntry.objects.count() == 1


def test_a_measure_without_reasons_is_a_field_error_and_writes_nothing(client, supervisor, trader):
    client.force_login(supervisor)
    response = client.post(RESTRICTION_ADD, {"trader": trader.pk, "measure": "warning", "reason": "  "})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["reason"]
    assert not Restriction.objects.exists()
    assert not LedgerEntry.objects.exists()


def _act(client, action: str, restrictions, **extra):
    data = {"action": action, helpers.ACTION_CHECKBOX_NAME: [r.pk for r in restrictions], **extra}
    return client.post(RESTRICTIONS, data, follow=True)


@pytest.fixture
def proposed_and_active(supervisor, trader):
    actor = Actor.for_user(supervisor)
    proposed = restriction_impose(actor=actor, trader=trader, measure="suspended", reason="拟暂停")
    active = restriction_impose(actor=actor, trader=trader, measure="warning", reason="警示")
    assert (proposed.state, active.state) == ("proposed", "active")
    return proposed, active


def test_a_supervisor_withdraws_a_proposed_measure_with_a_note(client, supervisor, proposed_and_active):
    proposed, _active = proposed_and_active
    before = LedgerEntry.objects.count()
    client.force_login(supervisor)
    response = _act(client, "withdraw_selected", [proposed], index=0)
    assert "admin/penalties/restriction/action_confirmation.html" in [t.name for t in response.templates]

    response = _act(client, "withdraw_selected", [proposed], post="yes", note="")
    assert response.context["form"].errors["note"]  # the page again: nothing changes
    proposed.refresh_from_db()
    assert proposed.state == "proposed"
    assert LedgerEntry.objects.count() == before

    response = _act(client, "withdraw_selected", [proposed], post="yes", note="异议成立，证据不足")
    assert any("Withdrew 1 measure" in m for m in _messages(response))
    proposed.refresh_from_db()
    assert (proposed.state, proposed.lift_note) == ("withdrawn", "异议成立，证据不足")
    entry = LedgerEntry.objects.order_by("-seq").first()
    assert (entry.action, entry.actor) == ("restriction.withdrawn", f"user:{supervisor.pk}")


def test_withdrawing_reports_each_row_that_cannot_be_withdrawn(client, supervisor, proposed_and_active):
    proposed, active = proposed_and_active
    client.force_login(supervisor)
    response = _act(client, "withdraw_selected", [proposed, active], post="yes", note="异议成立")
    assert response.status_code == 200
    messages = _messages(response)
    assert any(f"#{active.pk}" in m and "Only a proposed measure" in m for m in messages)
    assert any("Withdrew 1 measure" in m for m in messages)
    states = dict(Restriction.objects.values_list("pk", "state"))
    assert states == {proposed.pk: "withdrawn", active.pk: "active"}


def test_a_supervisor_lifts_an_active_measure_with_a_note(client, supervisor, trader, proposed_and_active):
    _proposed, active = proposed_and_active
    client.force_login(supervisor)
    response = _act(client, "lift_selected", [active], index=0)
    assert response.context["form"].fields["note"]
    before = LedgerEntry.objects.count()
    response = _act(client, "lift_selected", [active], post="yes", reason="manual", note="")
    assert response.context["form"].errors["note"]
    assert LedgerEntry.objects.count() == before

    response = _act(client, "lift_selected", [active], post="yes", reason="manual", note="已整改到位")
    assert any("Lifted 1 measure" in m for m in _messages(response))
    active.refresh_from_db()
    assert (active.state, active.lifted_reason, active.lift_note) == ("lifted", "manual", "已整改到位")
    assert LedgerEntry.objects.order_by("-seq").first().action == "restriction.lifted"
    trader.refresh_from_db()
    assert trader.status == "normal"
    # Lifting it again is reported on its row and changes nothing.
    response = _act(client, "lift_selected", [active], post="yes", reason="manual", note="再次")
    assert any(f"#{active.pk}" in m and "cannot be lifted" in m for m in _messages(response))
    assert LedgerEntry.objects.order_by("-seq").first().action == "restriction.lifted"


@pytest.mark.parametrize("role", ["officer", "auditor"])
def test_officers_and_auditors_cannot_impose_withdraw_or_lift(
    client, request, role, trader, proposed_and_active
):
    proposed, active = proposed_and_active
    before = LedgerEntry.objects.count()
    client.force_login(request.getfixturevalue(role))
    assert client.get(RESTRICTION_ADD).status_code == 403
    response = client.post(RESTRICTION_ADD, {"trader": trader.pk, "measure": "blacklisted", "reason": "x"})
    assert response.status_code == 403
    assert client.get(RESTRICTIONS).context["action_form"] is None  # no action offered
    for action in ("withdraw_selected", "lift_selected"):
        _act(client, action, [proposed, active], post="yes", reason="manual", note="伪造")
        _act(client, action, [proposed, active], index=0)
    assert dict(Restriction.objects.values_list("pk", "state")) == {
        proposed.pk: "proposed",
        active.pk: "active",
    }
    assert LedgerEntry.objects.count() == before


# --- policies ------------------------------------------------------------------------------------


def test_the_draft_form_starts_from_the_active_rules_pretty_printed(client, supervisor):
    active = Policy.objects.get(is_active=True)
    client.force_login(supervisor)
    response = client.get(POLICY_ADD)
    assert response.status_code == 200
    body = response.content.decode()
    textarea = re.search(r'<textarea name="rules"[^>]*>(.*?)</textarea>', body, flags=re.DOTALL).group(1)
    assert "\n  " in textarea  # indented
    assert json.loads(html.unescape(textarea)) == active.rules


def test_a_supervisor_drafts_and_activates_a_policy(client, supervisor):
    old = Policy.objects.get(is_active=True)
    rules = old.rules | {"cutoffs": [["A", 920], ["B", 780], ["C", 620]]}
    client.force_login(supervisor)
    response = client.post(POLICY_ADD, {"name": "2025 修订", "rules": json.dumps(rules, ensure_ascii=False)})
    assert response.status_code == 302
    draft = Policy.objects.get(version=old.version + 1)
    assert (draft.name, draft.is_active, draft.activated_at, draft.created_by) == (
        "2025 修订",
        False,
        None,
        supervisor,
    )
    assert draft.rules["cutoffs"] == [["A", 920], ["B", 780], ["C", 620]]
    assert not LedgerEntry.objects.exclude(action="admin.logged").exists()  # a draft decides nothing

    # Its page offers activation; the action shows what changes before doing it.
    page = client.get(reverse("admin:penalties_policy_change", args=[draft.pk])).content.decode()
    assert 'value="activate_selected"' in page
    response = client.post(
        POLICIES, {"action": "activate_selected", helpers.ACTION_CHECKBOX_NAME: [draft.pk]}
    )
    assert "admin/penalties/policy/activate_confirmation.html" in [t.name for t in response.templates]
    assert "920" in response.context["diff"] and "900" in response.context["diff"]
    assert not Policy.objects.get(pk=draft.pk).is_active

    response = client.post(
        POLICIES,
        {"action": "activate_selected", helpers.ACTION_CHECKBOX_NAME: [draft.pk], "post": "yes"},
        follow=True,
    )
    assert any(f"Version {draft.version} is active" in m for m in _messages(response))
    draft.refresh_from_db()
    old.refresh_from_db()
    assert draft.is_active and draft.activated_by == supervisor
    assert not old.is_active
    entry = LedgerEntry.objects.exclude(action="admin.logged").get()
    assert (entry.action, entry.actor, entry.payload["version"]) == (
        "policy.activated",
        f"user:{supervisor.pk}",
        draft.version,
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("{not json", "JSON"),
        ("[1, 2, 3]", "JSON object"),
        # The service's rule, on the field: cut-offs must fall from A to C.
        ({"cutoffs": [["A", 700], ["B", 750], ["C", 600]]}, "cutoffs"),
        # A shape the validator cannot read is a field error too, not a server error.
        ({"escalations": 5}, "escalations"),
    ],
)
def test_invalid_rules_are_a_field_error_and_write_nothing(client, supervisor, change, message):
    rules = change
    if isinstance(change, dict):
        rules = json.dumps(Policy.objects.get(is_active=True).rules | change)
    client.force_login(supervisor)
    response = client.post(POLICY_ADD, {"name": "坏的", "rules": rules})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["rules"]
    assert message in errors["rules"][0]
    assert Policy.objects.count() == 1
    assert not LedgerEntry.objects.exists()


def test_an_activated_policy_cannot_be_edited_or_activated_again(client, supervisor):
    active = Policy.objects.get(is_active=True)
    url = reverse("admin:penalties_policy_change", args=[active.pk])
    client.force_login(supervisor)
    page = client.get(url)
    body = page.content.decode()
    assert page.status_code == 200
    assert 'name="rules"' not in body and 'name="name"' not in body
    assert 'class="policy-rules"' in body
    assert 'value="activate_selected"' not in body
    assert reverse("admin:penalties_policy_add") + f"?from={active.pk}" in body
    assert client.post(url, {"name": "改名", "rules": "{}"}).status_code == 403
    response = client.post(
        POLICIES,
        {"action": "activate_selected", helpers.ACTION_CHECKBOX_NAME: [active.pk], "post": "yes"},
        follow=True,
    )
    assert any("activated before" in m for m in _messages(response))
    active.refresh_from_db()
    assert active.name != "改名" and active.is_active
    assert not LedgerEntry.objects.exists()


def test_activation_takes_exactly_one_version(client, supervisor):
    actor = Actor.for_user(supervisor)
    rules = Policy.objects.get(is_active=True).rules
    drafts = [policy_create(actor=actor, name=f"草案{n}", rules=rules) for n in range(2)]
    client.force_login(supervisor)
    response = client.post(
        POLICIES,
        {"action": "activate_selected", helpers.ACTION_CHECKBOX_NAME: [d.pk for d in drafts], "post": "yes"},
        follow=True,
    )
    assert any("exactly one" in m for m in _messages(response))
    assert Policy.objects.filter(is_active=True).get().version == 1


@pytest.mark.parametrize("role", ["officer", "auditor"])
def test_only_a_supervisor_drafts_or_activates_policies(client, request, role, supervisor):
    draft = policy_create(
        actor=Actor.for_user(supervisor), name="草案", rules=Policy.objects.get(is_active=True).rules
    )
    client.force_login(request.getfixturevalue(role))
    assert client.get(POLICIES).status_code == 200
    assert client.get(POLICIES).context["action_form"] is None
    assert client.get(POLICY_ADD).status_code == 403
    assert client.post(POLICY_ADD, {"name": "x", "rules": "{}"}).status_code == 403
    body = client.get(reverse("admin:penalties_policy_change", args=[draft.pk])).content.decode()
    assert 'value="activate_selected"' not in body
    client.post(
        POLICIES, {"action": "activate_selected", helpers.ACTION_CHECKBOX_NAME: [draft.pk], "post": "yes"}
    )
    draft.refresh_from_db()
    assert not draft.is_active
    assert not LedgerEntry.objects.exists()


# --- the drawing helpers -------------------------------------------------------------------------


def test_the_chart_scale_starts_a_round_hundred_below_the_lowest_score_or_cutoff():
    now = timezone.now()
    rows = [
        ScoreHistory(at=now - 30 * DAY, score=960, grade="A"),
        ScoreHistory(at=now - 10 * DAY, score=420, grade="D"),
    ]
    svg = str(score_chart(rows, (("A", 900), ("B", 750), ("C", 600)), now))
    assert ">300</text>" in svg  # 420 − 50, down to the hundred
    assert svg.count('class="score-point"') == 2
    # A step line: flat until the next change, then on to now at the right edge.
    assert re.search(r'd="M44\.0,[\d.]+ H[\d.]+V[\d.]+ H648\.0"', svg)
    assert "score-chart-empty" in str(score_chart([], (("A", 900),), now))


def test_rules_are_laid_out_for_people_and_read_back_unchanged():
    rules = Policy(rules={"cutoffs": [["A", 900]], "grade_measures": {"B": "warning", "A": None}}).rules
    text = pretty_json(rules)
    assert '\n    ["A", 900]\n' in text
    assert text.index('"A": null') < text.index('"B": "warning"')  # keys sorted
    assert json.loads(text) == rules
