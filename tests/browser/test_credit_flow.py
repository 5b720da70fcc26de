"""The whole path of a case in a real browser: an officer records a violation with evidence,
a supervisor confirms it, a real Celery worker reassesses the trader, the trader page shows
the new grade and the proposed measure with its reasons, and the trader's objection is
recorded and upheld, withdrawing the measure."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time

import pytest
from django.utils import timezone

from creditledger.ledger.actors import Actor
from penalties.models import Objection, Restriction, Violation, ViolationType
from penalties.services import trader_reassess, violation_confirm, violation_record
from tests import factories
from tests.browser.conftest import assert_success, sign_in, sign_out
from traders.models import Trader

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

# The smallest valid PNG: one transparent pixel.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)
WORKER_TIMEOUT_S = 30


def _trader_at_grade_b(recorder, decider) -> Trader:
    """A trader with one confirmed 'unsafe goods' violation (200 points): score 800, grade B,
    a warning in force. Counterfeit goods (150 points, another category, so no repeat
    factor) then takes it to 650: grade C, whose measure (a listing restriction) is
    proposed with 3 days' notice under the default policy."""
    trader = factories.TraderFactory()
    first = violation_record(
        actor=Actor.for_user(recorder),
        trader=trader,
        type=ViolationType.objects.get(code="unsafe-goods"),
        occurred_on=timezone.localdate() - dt.timedelta(days=10),
        source="sampling",
        description="抽检发现儿童玩具邻苯二甲酸酯超标",
    )
    violation_confirm(actor=Actor.for_user(decider), violation=first)
    trader_reassess(trader=trader)
    trader.refresh_from_db()
    assert (trader.score, trader.grade) == (800, "B")
    return trader


def _field(page, name: str) -> str:
    return page.locator(f".form-row.field-{name} .readonly").first.inner_text().strip()


def _wait_for_reassessment(page, url: str) -> None:
    """Reload the trader page until the worker's result shows, within WORKER_TIMEOUT_S."""
    deadline = time.monotonic() + WORKER_TIMEOUT_S
    while True:
        page.goto(url)
        if _field(page, "grade") == "C" and page.locator(".measure.measure-proposed").count():
            return
        if time.monotonic() > deadline:
            grade = _field(page, "grade")
            raise AssertionError(f"after {WORKER_TIMEOUT_S}s the trader page still shows grade {grade}")
        time.sleep(0.5)


def test_a_violation_goes_from_record_to_measure_to_withdrawal(
    browser, page, broker, workers, officer, supervisor, other_officer, other_supervisor
):
    trader = _trader_at_grade_b(other_officer, other_supervisor)
    workers("scoring")
    counterfeit = ViolationType.objects.get(code="counterfeit-goods")

    # 1. The officer finds the trader by its code and records a violation with evidence.
    sign_in(page, browser.base, officer)
    page.goto(browser.url(f"/admin/traders/trader/?q={trader.uscc}"))
    page.get_by_role("link", name=trader.uscc).first.click()
    assert _field(page, "grade") == "B"
    browser.shot(page, "officer-trader-page")
    page.get_by_role("link", name="record a violation").click()
    assert page.locator("#id_trader option:checked").inner_text().strip(), "the trader is not preselected"
    page.select_option("#id_type", str(counterfeit.pk))
    page.fill("#id_occurred_on", timezone.localdate().isoformat())
    page.select_option("#id_source", "inspection")
    page.fill("#id_description", "现场检查查获假冒注册商标的运动鞋 12 双")
    page.locator("input[type=file]").first.set_input_files(
        {"name": "seized-goods.png", "mimeType": "image/png", "buffer": PNG}
    )
    browser.shot(page, "officer-add-form")
    page.locator("input[name=_save]").click()
    page.wait_for_load_state()
    assert_success(page)
    browser.shot(page, "officer-recorded")
    violation = Violation.objects.get(trader=trader, type=counterfeit)
    assert violation.status == Violation.Status.PENDING
    assert violation.recorded_by == officer
    evidence = violation.evidence.get()
    assert (evidence.sha256, evidence.size, evidence.content_type) == (
        hashlib.sha256(PNG).hexdigest(),
        len(PNG),
        "image/png",
    )
    sign_out(page)
    browser.shot(page, "officer-signed-out")

    # 2. A supervisor (four eyes: not the recorder) confirms it from the review queue.
    sign_in(page, browser.base, supervisor)
    page.goto(browser.url("/admin/penalties/violation/queue/"))
    row = page.locator("#result_list tbody tr", has=page.locator(f"input[value='{violation.pk}']"))
    assert row.locator("img.evidence-thumb").count() == 1, "the queue shows no preview of the evidence"
    browser.shot(page, "supervisor-queue")
    row.locator("input[name=_selected_action]").check()
    page.select_option("select[name=action]", "confirm_selected")
    page.fill("div.actions input[name=note]", "证据确凿，予以确认")
    page.locator("button[name=index]").click()
    page.wait_for_load_state()
    assert_success(page)
    browser.shot(page, "supervisor-confirmed")
    violation.refresh_from_db()
    assert (violation.status, violation.decided_by) == (Violation.Status.CONFIRMED, supervisor)
    assert violation.decision_note == "证据确凿，予以确认"

    # 3. The worker reassesses: grade C, a listing restriction proposed with its reasons.
    trader_url = browser.url(f"/admin/traders/trader/{trader.pk}/change/")
    _wait_for_reassessment(page, trader_url)
    assert _field(page, "score") == "650"
    proposed = page.locator(".measure.measure-proposed")
    assert proposed.count() == 1
    reasons = proposed.locator(".statement-of-reasons")
    assert "650" in reasons.inner_text() and "C" in reasons.inner_text()
    listed = reasons.locator(".reasons-violations tbody tr").all_inner_texts()
    assert any(f"#{violation.pk}" in line for line in listed), listed
    browser.shot(page, "trader-measure-proposed")
    measure = Restriction.objects.get(trader=trader, state=Restriction.State.PROPOSED)
    assert measure.measure == Restriction.Measure.LISTING_RESTRICTED
    sign_out(page)

    # 4. An officer records the trader's objection to the proposed measure.
    sign_in(page, browser.base, officer)
    page.goto(browser.url("/admin/penalties/objection/add/"))
    page.locator(".field-restriction .select2-selection").click()
    page.locator(".select2-search__field").fill(trader.uscc)
    page.locator(".select2-results__option", has_text=re.compile("proposed", re.I)).first.click()
    page.fill("#id_grounds", "涉案商品系正品，附品牌方授权书")
    browser.shot(page, "officer-objection-form")
    page.locator("input[name=_save]").click()
    page.wait_for_load_state()
    assert_success(page)
    browser.shot(page, "officer-objection-recorded")
    objection = Objection.objects.get(restriction=measure)
    assert objection.status == "pending"
    sign_out(page)

    # 5. A supervisor upholds the objection: the measure is withdrawn.
    sign_in(page, browser.base, supervisor)
    page.goto(browser.url(f"/admin/penalties/objection/{objection.pk}/change/"))
    browser.shot(page, "supervisor-objection-page")
    page.locator(".object-tools button", has_text=re.compile("withdraw", re.I)).click()
    page.wait_for_load_state()
    page.fill("#id_note", "授权书经核实有效，撤回拟采取的措施")
    browser.shot(page, "supervisor-withdraw-confirmation")
    page.locator(".submit-row input[type=submit]").click()
    page.wait_for_load_state()
    assert_success(page)
    objection.refresh_from_db()
    measure.refresh_from_db()
    assert (objection.status, objection.decided_by) == ("withdrawn", supervisor)
    assert measure.state == Restriction.State.WITHDRAWN
    page.goto(trader_url)
    assert page.locator(f".measure.measure-withdrawn[data-restriction='{measure.pk}']").count() == 1
    assert not page.locator(".measure.measure-proposed").count()
    browser.shot(page, "trader-measure-withdrawn")
    browser.assert_no_errors()
