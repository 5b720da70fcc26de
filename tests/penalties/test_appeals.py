"""Objections, appeals and credit repair: the services, and the admin pages that call them."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.contrib.admin import helpers
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from creditledger.exceptions import ApplicationError, PermissionDenied
from creditledger.ledger.actors import Actor
from creditledger.ledger.models import LedgerEntry
from penalties.models import Appeal, Objection, RepairApplication, Restriction, Violation, ViolationType
from penalties.policy import PolicyError, PolicyRules
from penalties.services import (
    appeal_decide,
    appeal_file,
    objection_decide,
    objection_record,
    repair_apply,
    repair_decide,
    restriction_impose,
    trader_reassess,
    violation_confirm,
    violation_overturn,
    violation_record,
)
from tests import factories
from traders.models import Trader

pytestmark = pytest.mark.django_db

DAY = dt.timedelta(days=1)


@pytest.fixture
def trader():
    return factories.TraderFactory()


@pytest.fixture
def decide(supervisor, other_supervisor):
    """Record (supervisor) and confirm (other_supervisor) a violation, four eyes respected."""

    def _decide(trader, code="counterfeit-large-scale", occurred_on=None):
        violation = violation_record(
            actor=Actor.for_user(supervisor),
            trader=trader,
            type=ViolationType.objects.get(code=code),
            occurred_on=occurred_on or timezone.localdate(),
            source=Violation.Source.INSPECTION,
            description="检查发现",
        )
        return violation_confirm(actor=Actor.for_user(other_supervisor), violation=violation)

    return _decide


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def proposal(trader, decide, now):
    """A proposed blacklisting (grave violation, 5 days' notice) of the trader."""
    decide(trader)
    trader_reassess(trader=trader, now=now)
    return Restriction.objects.get(trader=trader, measure="blacklisted", state="proposed")


@pytest.fixture
def warning(trader, supervisor, now):
    """An active warning (no notice period), imposed by hand."""
    return restriction_impose(
        actor=Actor.for_user(supervisor), trader=trader, measure="warning", reason="约谈后仍未整改", now=now
    )


def _snapshot():
    """What a refused call must leave as it was."""
    return (
        LedgerEntry.objects.count(),
        list(Objection.objects.values_list("pk", "status").order_by("pk")),
        list(Appeal.objects.values_list("pk", "status").order_by("pk")),
        list(RepairApplication.objects.values_list("pk", "status").order_by("pk")),
        list(Restriction.objects.values_list("pk", "state", "lifted_reason").order_by("pk")),
        list(Violation.objects.values_list("pk", "status").order_by("pk")),
    )


def _refused(call, code: str, exc_type=ApplicationError):
    before = _snapshot()
    with pytest.raises(exc_type) as info:
        call()
    assert info.value.code == code
    assert _snapshot() == before
    return info.value


def _actions(*, after: int = 0) -> list[str]:
    return list(LedgerEntry.objects.filter(seq__gt=after).order_by("seq").values_list("action", flat=True))


def _head() -> int:
    return LedgerEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


# --- objections ------------------------------------------------------------------------------


def test_an_officer_records_an_objection_during_the_notice_period(proposal, officer, now):
    head = _head()
    objection = objection_record(
        actor=Actor.for_user(officer), restriction=proposal, grounds="货源合法，有进货凭证", now=now + DAY
    )
    assert (objection.status, objection.recorded_by, objection.recorded_at) == ("pending", officer, now + DAY)
    assert _actions(after=head) == ["objection.recorded"]
    entry = LedgerEntry.objects.get(action="objection.recorded")
    assert entry.payload["restriction"] == proposal.pk
    assert entry.trader_uscc == proposal.trader.uscc


def test_no_objection_is_recorded_once_the_deadline_has_passed(proposal, officer):
    _refused(
        lambda: objection_record(
            actor=Actor.for_user(officer),
            restriction=proposal,
            grounds="逾期提出",
            now=proposal.objection_deadline,
        ),
        "objection_period_over",
    )


def test_no_objection_is_recorded_against_a_measure_in_force(warning, officer):
    _refused(
        lambda: objection_record(actor=Actor.for_user(officer), restriction=warning, grounds="不服"),
        "not_proposed",
    )


def test_a_measure_has_one_pending_objection_at_a_time(proposal, officer, other_officer):
    objection_record(actor=Actor.for_user(officer), restriction=proposal, grounds="第一次")
    _refused(
        lambda: objection_record(actor=Actor.for_user(other_officer), restriction=proposal, grounds="第二次"),
        "duplicate",
    )


def test_an_objection_needs_grounds(proposal, officer):
    _refused(
        lambda: objection_record(actor=Actor.for_user(officer), restriction=proposal, grounds="  "),
        "required",
    )


def test_an_auditor_cannot_record_an_objection(proposal, auditor):
    _refused(
        lambda: objection_record(actor=Actor.for_user(auditor), restriction=proposal, grounds="不服"),
        "permission_denied",
        PermissionDenied,
    )


def test_an_officer_cannot_decide_an_objection(proposal, officer):
    objection = objection_record(actor=Actor.for_user(officer), restriction=proposal, grounds="不服")
    _refused(
        lambda: objection_decide(
            actor=Actor.for_user(officer), objection=objection, decision="withdrawn", note="自己决定"
        ),
        "permission_denied",
        PermissionDenied,
    )


def test_an_upheld_objection_withdraws_the_measure_and_it_is_never_proposed_again(
    trader, proposal, officer, supervisor, now
):
    objection = objection_record(actor=Actor.for_user(officer), restriction=proposal, grounds="证据不足")
    head = _head()
    decided = objection_decide(
        actor=Actor.for_user(supervisor),
        objection=objection,
        decision="withdrawn",
        note="异议成立",
        now=now + DAY,
    )
    assert (decided.status, decided.decided_by, decided.note) == ("withdrawn", supervisor, "异议成立")
    proposal.refresh_from_db()
    assert proposal.state == "withdrawn"
    assert _actions(after=head) == ["restriction.withdrawn", "objection.decided"]
    trader_reassess(trader=trader, now=now + 10 * DAY)
    assert Restriction.objects.filter(trader=trader, measure="blacklisted").count() == 1
    assert Trader.objects.get(pk=trader.pk).status != "blacklisted"


def test_a_maintained_measure_takes_effect_at_its_deadline(trader, proposal, officer, supervisor, now):
    objection = objection_record(actor=Actor.for_user(officer), restriction=proposal, grounds="不服")
    objection_decide(
        actor=Actor.for_user(supervisor), objection=objection, decision="maintained", note="异议不成立"
    )
    proposal.refresh_from_db()
    assert proposal.state == "proposed"
    trader_reassess(trader=trader, now=now + 6 * DAY)
    proposal.refresh_from_db()
    assert (proposal.state, proposal.starts_at) == ("active", proposal.objection_deadline)
    assert Trader.objects.get(pk=trader.pk).status == "blacklisted"


def test_a_decided_objection_is_not_decided_again(proposal, officer, supervisor):
    objection = objection_record(actor=Actor.for_user(officer), restriction=proposal, grounds="不服")
    objection_decide(
        actor=Actor.for_user(supervisor), objection=objection, decision="maintained", note="维持"
    )
    _refused(
        lambda: objection_decide(
            actor=Actor.for_user(supervisor), objection=objection, decision="withdrawn", note="改判"
        ),
        "already_decided",
    )


def test_withdrawing_a_measure_that_took_effect_is_refused_and_writes_nothing(
    trader, proposal, officer, supervisor, now
):
    objection = objection_record(actor=Actor.for_user(officer), restriction=proposal, grounds="不服")
    trader_reassess(trader=trader, now=now + 6 * DAY)  # the deadline passed undecided
    error = _refused(
        lambda: objection_decide(
            actor=Actor.for_user(supervisor), objection=objection, decision="withdrawn", note="异议成立"
        ),
        "invalid_transition",
    )
    assert "proposed" in error.message


def test_an_objection_decision_needs_reasons_and_a_known_decision(proposal, officer, supervisor):
    objection = objection_record(actor=Actor.for_user(officer), restriction=proposal, grounds="不服")
    actor = Actor.for_user(supervisor)
    _refused(
        lambda: objection_decide(actor=actor, objection=objection, decision="withdrawn", note=""), "required"
    )
    _refused(
        lambda: objection_decide(actor=actor, objection=objection, decision="upheld", note="x"),
        "invalid_choice",
    )


# --- appeals ---------------------------------------------------------------------------------


def test_an_officer_files_an_appeal_with_the_policys_deadline(trader, decide, officer, now):
    violation = decide(trader)
    head = _head()
    appeal = appeal_file(actor=Actor.for_user(officer), violation=violation, grounds="处罚依据不足", now=now)
    assert (appeal.status, appeal.filed_by, appeal.deadline) == ("pending", officer, now + 60 * DAY)
    assert _actions(after=head) == ["appeal.filed"]
    violation.refresh_from_db()
    assert violation.status == "confirmed"  # a pending appeal does not suspend the violation


def test_a_pending_appeal_does_not_suspend_the_violation(trader, decide, officer, now):
    violation = decide(trader)
    appeal_file(actor=Actor.for_user(officer), violation=violation, grounds="不服", now=now)
    trader_reassess(trader=trader, now=now)
    assert Trader.objects.get(pk=trader.pk).score == 600
    assert Restriction.objects.filter(trader=trader, measure="blacklisted", state="proposed").exists()


def test_no_appeal_after_the_appeal_window(trader, decide, officer):
    violation = decide(trader)
    error = _refused(
        lambda: appeal_file(
            actor=Actor.for_user(officer),
            violation=violation,
            grounds="逾期上诉",
            now=violation.decided_at + 60 * DAY + dt.timedelta(seconds=1),
        ),
        "appeal_period_over",
    )
    assert "60 days" in error.message
    appeal_file(  # the last moment of the window still counts
        actor=Actor.for_user(officer),
        violation=violation,
        grounds="最后一天",
        now=violation.decided_at + 60 * DAY,
    )


def test_only_a_confirmed_violation_is_appealed(trader, officer):
    pending = factories.ViolationFactory(trader=trader)
    _refused(
        lambda: appeal_file(actor=Actor.for_user(officer), violation=pending, grounds="不服"), "not_confirmed"
    )


def test_a_violation_has_one_pending_appeal_at_a_time(trader, decide, officer):
    violation = decide(trader)
    appeal_file(actor=Actor.for_user(officer), violation=violation, grounds="第一次")
    _refused(
        lambda: appeal_file(actor=Actor.for_user(officer), violation=violation, grounds="第二次"), "duplicate"
    )


def test_the_supervisor_who_confirmed_the_violation_does_not_decide_its_appeal(
    trader, decide, officer, other_supervisor
):
    violation = decide(trader)  # confirmed by other_supervisor
    appeal = appeal_file(actor=Actor.for_user(officer), violation=violation, grounds="不服")
    _refused(
        lambda: appeal_decide(
            actor=Actor.for_user(other_supervisor), appeal=appeal, decision="granted", note="撤销"
        ),
        "four_eyes",
        PermissionDenied,
    )


def test_an_officer_cannot_decide_an_appeal(trader, decide, officer):
    appeal = appeal_file(actor=Actor.for_user(officer), violation=decide(trader), grounds="不服")
    _refused(
        lambda: appeal_decide(actor=Actor.for_user(officer), appeal=appeal, decision="granted", note="撤销"),
        "permission_denied",
        PermissionDenied,
    )


def test_a_granted_appeal_overturns_the_violation_and_reassessment_lifts_the_blacklisting(
    trader, decide, officer, supervisor, now, django_capture_on_commit_callbacks
):
    violation = decide(trader)
    trader_reassess(trader=trader, now=now)
    trader_reassess(trader=trader, now=now + 6 * DAY)  # the blacklisting is in force
    assert Trader.objects.get(pk=trader.pk).status == "blacklisted"
    appeal = appeal_file(
        actor=Actor.for_user(officer), violation=violation, grounds="鉴定有误", now=now + 7 * DAY
    )
    head = _head()
    with django_capture_on_commit_callbacks() as callbacks:
        decided = appeal_decide(
            actor=Actor.for_user(supervisor),
            appeal=appeal,
            decision="granted",
            note="鉴定结论有误",
            now=now + 8 * DAY,
        )
    assert len(callbacks) == 1  # the reassessment is enqueued once the decision commits
    assert (decided.status, decided.decided_by) == ("granted", supervisor)
    violation.refresh_from_db()
    assert violation.status == "overturned"
    assert violation.confirmed_by is not None  # the confirmation stays on the row
    assert _actions(after=head) == ["violation.overturned", "appeal.decided"]
    assert Trader.objects.get(pk=trader.pk).needs_reassessment

    trader_reassess(trader=trader, now=now + 8 * DAY)
    blacklisting = Restriction.objects.get(trader=trader, measure="blacklisted")
    assert (blacklisting.state, blacklisting.lifted_reason) == ("lifted", "overturned")
    trader = Trader.objects.get(pk=trader.pk)
    assert (trader.score, trader.grade, trader.status) == (1000, "A", "normal")


def test_a_refused_appeal_leaves_the_violation_standing(trader, decide, officer, supervisor):
    violation = decide(trader)
    appeal = appeal_file(actor=Actor.for_user(officer), violation=violation, grounds="不服")
    decided = appeal_decide(
        actor=Actor.for_user(supervisor), appeal=appeal, decision="refused", note="理由不成立"
    )
    assert decided.status == "refused"
    violation.refresh_from_db()
    assert violation.status == "confirmed"
    assert LedgerEntry.objects.filter(action="violation.overturned").count() == 0


def test_only_a_confirmed_violation_is_overturned(trader, supervisor):
    pending = factories.ViolationFactory(trader=trader)
    _refused(
        lambda: violation_overturn(actor=Actor.for_user(supervisor), violation=pending, note="撤销"),
        "invalid_transition",
    )


def test_the_appeal_decision_period_is_a_policy_setting_old_policies_default():
    rules = PolicyRules().as_dict()
    assert rules["appeal_decision_days"] == 60
    assert PolicyRules.from_dict({**rules, "appeal_decision_days": 30}).appeal_decision_days == 30
    del rules["appeal_decision_days"]
    assert PolicyRules.from_dict(rules).appeal_decision_days == 60
    for bad in (0, -1, "30", None):
        with pytest.raises(PolicyError) as info:
            PolicyRules.from_dict({**rules, "appeal_decision_days": bad})
        assert info.value.field == "appeal_decision_days"


# --- credit repair ---------------------------------------------------------------------------


def test_an_officer_applies_for_repair_of_a_measure_in_force(warning, officer):
    head = _head()
    application = repair_apply(
        actor=Actor.for_user(officer), restriction=warning, grounds="已完成整改并提交报告"
    )
    assert (application.status, application.filed_by) == ("pending", officer)
    assert _actions(after=head) == ["repair.applied"]


def test_no_repair_of_a_measure_not_in_force(proposal, officer):
    _refused(
        lambda: repair_apply(actor=Actor.for_user(officer), restriction=proposal, grounds="已整改"),
        "not_active",
    )


def test_a_measure_has_one_pending_repair_application_at_a_time(warning, officer):
    repair_apply(actor=Actor.for_user(officer), restriction=warning, grounds="已整改")
    _refused(
        lambda: repair_apply(actor=Actor.for_user(officer), restriction=warning, grounds="再次"), "duplicate"
    )


def test_an_officer_cannot_decide_a_repair(warning, officer):
    application = repair_apply(actor=Actor.for_user(officer), restriction=warning, grounds="已整改")
    _refused(
        lambda: repair_decide(
            actor=Actor.for_user(officer), application=application, decision="approved", note="同意"
        ),
        "permission_denied",
        PermissionDenied,
    )


def test_an_approved_repair_lifts_the_measure_as_repaired(trader, warning, officer, supervisor):
    application = repair_apply(actor=Actor.for_user(officer), restriction=warning, grounds="已整改")
    head = _head()
    decided = repair_decide(
        actor=Actor.for_user(supervisor), application=application, decision="approved", note="整改到位"
    )
    assert decided.status == "approved"
    warning.refresh_from_db()
    assert (warning.state, warning.lifted_reason, warning.lift_note) == ("lifted", "repaired", "整改到位")
    assert Trader.objects.get(pk=trader.pk).status == "normal"
    assert _actions(after=head) == ["restriction.lifted", "repair.decided"]


def test_a_rejected_repair_leaves_the_measure_in_force(warning, officer, supervisor):
    application = repair_apply(actor=Actor.for_user(officer), restriction=warning, grounds="已整改")
    repair_decide(
        actor=Actor.for_user(supervisor), application=application, decision="rejected", note="整改不足"
    )
    warning.refresh_from_db()
    assert warning.state == "active"


def test_a_blacklisting_is_repaired_only_after_the_policys_minimum(trader, officer, supervisor, now):
    blacklisting = restriction_impose(
        actor=Actor.for_user(supervisor),
        trader=trader,
        measure="blacklisted",
        reason="严重失信",
        duration_days=1095,
        now=now,
    )
    trader_reassess(trader=trader, now=now + 6 * DAY)
    application = repair_apply(
        actor=Actor.for_user(officer), restriction=blacklisting, grounds="已整改", now=now + 100 * DAY
    )
    error = _refused(
        lambda: repair_decide(
            actor=Actor.for_user(supervisor),
            application=application,
            decision="approved",
            note="整改到位",
            now=now + 100 * DAY,
        ),
        "too_early_for_repair",
    )
    assert "365 days after it took effect" in error.message
    repair_decide(
        actor=Actor.for_user(supervisor),
        application=application,
        decision="approved",
        note="整改到位",
        now=now + 400 * DAY,
    )
    blacklisting.refresh_from_db()
    assert (blacklisting.state, blacklisting.lifted_reason) == ("lifted", "repaired")


# --- races ---------------------------------------------------------------------------------


def _race(call, n: int = 4) -> tuple[int, list[str]]:
    """Run `call` in n threads at once: (successes, the codes of the refusals)."""
    start, done, refused = threading.Barrier(n), [], []

    def run():
        try:
            start.wait()
            call()
            done.append(1)
        except ApplicationError as exc:
            refused.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(done), refused


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_objections_to_one_measure_record_one(proposal, officer):
    wins, refused = _race(
        lambda: objection_record(actor=Actor.for_user(officer), restriction=proposal, grounds="同时提出")
    )
    assert (wins, refused) == (1, ["duplicate"] * 3)
    assert Objection.objects.count() == 1
    assert LedgerEntry.objects.filter(action="objection.recorded").count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_decisions_on_one_appeal_decide_it_once(trader, decide, officer, supervisor):
    appeal = appeal_file(actor=Actor.for_user(officer), violation=decide(trader), grounds="不服")
    wins, refused = _race(
        lambda: appeal_decide(
            actor=Actor.for_user(supervisor), appeal=appeal, decision="granted", note="撤销"
        )
    )
    assert (wins, refused) == (1, ["already_decided"] * 3)
    assert LedgerEntry.objects.filter(action="violation.overturned").count() == 1
    assert LedgerEntry.objects.filter(action="appeal.decided").count() == 1


# --- admin pages -----------------------------------------------------------------------------

ADD_PAGES = {
    "objection": "admin:penalties_objection_add",
    "appeal": "admin:penalties_appeal_add",
    "repair": "admin:penalties_repairapplication_add",
}
LISTS = {
    "objection": "admin:penalties_objection_changelist",
    "appeal": "admin:penalties_appeal_changelist",
    "repair": "admin:penalties_repairapplication_changelist",
}


def _act(client, list_name: str, action: str, rows, **extra):
    data = {"action": action, helpers.ACTION_CHECKBOX_NAME: [r.pk for r in rows], "index": 0, **extra}
    return client.post(reverse(list_name), data, follow=True)


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


@pytest.mark.parametrize("page", ADD_PAGES.values())
def test_an_auditor_gets_403_on_the_add_pages(client, auditor, page):
    client.force_login(auditor)
    assert client.get(reverse(page)).status_code == 403
    assert client.post(reverse(page), {"grounds": "x"}).status_code == 403


@pytest.mark.parametrize("role", ["officer", "supervisor", "auditor"])
def test_every_role_views_the_queues_and_an_item(client, request, role, trader, proposal, warning, officer):
    objection = objection_record(actor=Actor.for_user(officer), restriction=proposal, grounds="不服")
    repair = repair_apply(actor=Actor.for_user(officer), restriction=warning, grounds="已整改")
    violation = Violation.objects.get(trader=trader, status="confirmed")
    appeal = appeal_file(actor=Actor.for_user(officer), violation=violation, grounds="不服")
    client.force_login(request.getfixturevalue(role))
    for name in LISTS.values():
        assert client.get(reverse(name)).status_code == 200
    # Each page shows what is decided on: the measure's reasons, the violation.
    pages = [
        ("admin:penalties_objection_change", objection, proposal.reasons["rule"]),
        ("admin:penalties_appeal_change", appeal, violation.type.name),
        ("admin:penalties_repairapplication_change", repair, "约谈后仍未整改"),
    ]
    for name, row, shows in pages:
        response = client.get(reverse(name, args=[row.pk]))
        assert response.status_code == 200
        assert shows in response.content.decode()


def test_the_objection_queue_shows_the_deadline_and_days_left(client, proposal, officer, supervisor):
    objection_record(actor=Actor.for_user(officer), restriction=proposal, grounds="不服")
    client.force_login(supervisor)
    response = client.get(reverse(LISTS["objection"]))
    assert response.status_code == 200
    assert "4 days" in response.content.decode()  # 5 days' notice, minus the seconds since


def test_an_officer_records_an_objection_on_the_add_page(client, proposal, officer):
    client.force_login(officer)
    response = client.post(
        reverse(ADD_PAGES["objection"]), {"restriction": proposal.pk, "grounds": "货源合法"}
    )
    assert response.status_code == 302
    objection = Objection.objects.get()
    assert (objection.restriction, objection.recorded_by) == (proposal, officer)
    assert LedgerEntry.objects.filter(action="objection.recorded").count() == 1


def test_a_refused_objection_shows_the_services_message_and_writes_nothing(client, warning, officer):
    client.force_login(officer)
    before = _snapshot()
    response = client.post(reverse(ADD_PAGES["objection"]), {"restriction": warning.pk, "grounds": "不服"})
    assert response.status_code == 200
    assert "only against a proposed measure" in response.content.decode()
    assert _snapshot() == before


def test_an_officer_files_an_appeal_on_the_add_page(client, trader, decide, officer):
    violation = decide(trader)
    client.force_login(officer)
    response = client.post(reverse(ADD_PAGES["appeal"]), {"violation": violation.pk, "grounds": "不服"})
    assert response.status_code == 302
    assert Appeal.objects.get().violation == violation


def test_an_officer_applies_for_repair_on_the_add_page(client, warning, officer):
    client.force_login(officer)
    response = client.post(reverse(ADD_PAGES["repair"]), {"restriction": warning.pk, "grounds": "已整改"})
    assert response.status_code == 302
    assert RepairApplication.objects.get().restriction == warning


def test_a_supervisor_withdraws_a_measure_through_the_objection_action(client, proposal, officer, supervisor):
    objection = objection_record(actor=Actor.for_user(officer), restriction=proposal, grounds="不服")
    client.force_login(supervisor)
    page = _act(client, LISTS["objection"], "withdraw_selected", [objection])
    assert page.status_code == 200
    assert 'name="note"' in page.content.decode()  # asks for the reasons first
    objection.refresh_from_db()
    assert objection.status == "pending"
    response = _act(client, LISTS["objection"], "withdraw_selected", [objection], post="yes", note="异议成立")
    assert response.status_code == 200
    objection.refresh_from_db()
    proposal.refresh_from_db()
    assert (objection.status, proposal.state) == ("withdrawn", "withdrawn")
    assert any("Decided 1 objection" in m for m in _messages(response))


def test_a_supervisor_grants_an_appeal_through_the_action(client, trader, decide, officer, supervisor):
    violation = decide(trader)
    appeal = appeal_file(actor=Actor.for_user(officer), violation=violation, grounds="不服")
    client.force_login(supervisor)
    _act(client, LISTS["appeal"], "grant_selected", [appeal], post="yes", note="撤销处罚")
    appeal.refresh_from_db()
    violation.refresh_from_db()
    assert (appeal.status, violation.status) == ("granted", "overturned")


def test_a_supervisor_approves_a_repair_through_the_action(client, warning, officer, supervisor):
    application = repair_apply(actor=Actor.for_user(officer), restriction=warning, grounds="已整改")
    client.force_login(supervisor)
    _act(client, LISTS["repair"], "approve_selected", [application], post="yes", note="整改到位")
    warning.refresh_from_db()
    assert (warning.state, warning.lifted_reason) == ("lifted", "repaired")


def test_a_refused_row_is_reported_by_name_and_the_others_are_decided(
    client, decide, officer, supervisor, other_supervisor
):
    own = decide(factories.TraderFactory())  # confirmed by other_supervisor
    theirs = violation_confirm(
        actor=Actor.for_user(supervisor),
        violation=factories.ViolationFactory(trader=factories.TraderFactory(), recorded_by=officer),
    )
    appeals = [appeal_file(actor=Actor.for_user(officer), violation=v, grounds="不服") for v in (own, theirs)]
    client.force_login(other_supervisor)
    response = _act(client, LISTS["appeal"], "refuse_selected", appeals, post="yes", note="理由不成立")
    assert response.status_code == 200
    statuses = {a.pk: a.status for a in Appeal.objects.all()}
    assert statuses == {appeals[0].pk: "pending", appeals[1].pk: "refused"}
    text = " ".join(_messages(response))
    assert f"{appeals[0].pk}: Four eyes" in text
    assert "Decided 1 appeal" in text


def test_an_officer_is_offered_no_decision_and_cannot_post_one(client, warning, officer):
    application = repair_apply(actor=Actor.for_user(officer), restriction=warning, grounds="已整改")
    client.force_login(officer)
    page = client.get(reverse(LISTS["repair"]))
    assert "approve_selected" not in page.content.decode()
    _act(client, LISTS["repair"], "approve_selected", [application], post="yes", note="自己批准")
    application.refresh_from_db()
    warning.refresh_from_db()
    assert (application.status, warning.state) == ("pending", "active")


def test_nothing_is_deletable_or_editable(client, proposal, officer, supervisor):
    objection = objection_record(actor=Actor.for_user(officer), restriction=proposal, grounds="不服")
    client.force_login(supervisor)
    assert client.get(reverse("admin:penalties_objection_delete", args=[objection.pk])).status_code == 403
    response = client.post(
        reverse("admin:penalties_objection_change", args=[objection.pk]),
        {"grounds": "改过的", "status": "withdrawn"},
    )
    assert response.status_code == 403
    objection.refresh_from_db()
    assert (objection.grounds, objection.status) == ("不服", "pending")


def test_a_pending_items_page_offers_the_supervisor_its_decisions(client, proposal, officer, supervisor):
    objection = objection_record(actor=Actor.for_user(officer), restriction=proposal, grounds="不服")
    url = reverse("admin:penalties_objection_change", args=[objection.pk])
    client.force_login(officer)
    assert 'value="withdraw_selected"' not in client.get(url).content.decode()
    client.force_login(supervisor)
    page = client.get(url).content.decode()
    assert 'value="maintain_selected"' in page and 'value="withdraw_selected"' in page
    objection_decide(
        actor=Actor.for_user(supervisor), objection=objection, decision="maintained", note="维持"
    )
    assert 'value="withdraw_selected"' not in client.get(url).content.decode()


def test_the_add_page_is_prefilled_from_the_measure(client, proposal, officer):
    client.force_login(officer)
    page = client.get(reverse(ADD_PAGES["objection"]), {"restriction": proposal.pk}).content.decode()
    assert f'<option value="{proposal.pk}" selected>' in page


def test_the_appeal_queue_filters_overdue_and_soon_due_appeals(
    client, trader, decide, officer, supervisor, now
):
    late = appeal_file(
        actor=Actor.for_user(officer), violation=decide(trader), grounds="不服", now=now - 60 * DAY - DAY / 2
    )
    soon = appeal_file(
        actor=Actor.for_user(officer),
        violation=decide(trader, "false-advertising"),
        grounds="不服",
        now=now - 55 * DAY,
    )
    later = appeal_file(
        actor=Actor.for_user(officer),
        violation=decide(trader, "obstructing-inspection"),
        grounds="不服",
        now=now,
    )
    client.force_login(supervisor)

    def listed(**params) -> set[int]:
        response = client.get(reverse(LISTS["appeal"]), params)
        return {row.pk for row in response.context["cl"].result_list}

    assert listed() == {late.pk, soon.pk, later.pk}
    assert listed(due="overdue") == {late.pk}
    assert listed(due="soon") == {soon.pk}
    page = client.get(reverse(LISTS["appeal"])).content.decode()
    assert "overdue by 1 day" in page
