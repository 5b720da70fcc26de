from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.contrib.admin import helpers
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from creditledger.ledger.models import LedgerEntry
from penalties.models import Evidence, Violation
from penalties.services import evidence_attach
from tests import factories

pytestmark = pytest.mark.django_db

VIOLATIONS = reverse("admin:penalties_violation_changelist")
VIOLATION_ADD = reverse("admin:penalties_violation_add")
EVIDENCE = reverse("admin:penalties_evidence_changelist")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def _change_url(violation: Violation) -> str:
    return reverse("admin:penalties_violation_change", args=[violation.pk])


def _queries(client, url: str) -> int:
    client.get(url)  # warm caches (content types, permissions) outside the measurement
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def _inline_management(response) -> dict:
    """What the browser posts back for the page's inline formsets."""
    data: dict = {}
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        data[f"{formset.prefix}-TOTAL_FORMS"] = formset.total_form_count()
        data[f"{formset.prefix}-INITIAL_FORMS"] = formset.initial_form_count()
        for index, form in enumerate(formset.initial_forms):
            data[f"{formset.prefix}-{index}-id"] = form.instance.pk
    return data


def _upload_prefix(response) -> str:
    return next(
        inline.formset.prefix
        for inline in response.context["inline_admin_formsets"]
        if "upload" in inline.formset.form.base_fields
    )


def _violations(count: int, platform) -> None:
    for n in range(count):
        trader = factories.TraderFactory()
        shop = factories.ShopFactory(trader=trader, platform=platform)
        factories.ViolationFactory(
            trader=trader,
            shop=shop,
            reporting_platform=platform,
            source=Violation.Source.PLATFORM_REPORT,
            recorded_by=factories.UserFactory(),
            type=factories.violation_type("counterfeit-goods" if n % 2 else "false-advertising"),
        )


def _evidence(count: int, officer) -> None:
    for n in range(count):
        violation = factories.ViolationFactory()
        Evidence.objects.create(
            violation=violation,
            file=f"evidence/00/{n}",
            original_name=f"照片{n}.jpg",
            sha256=hashlib.sha256(str(n).encode() + str(violation.pk).encode()).hexdigest(),
            size=100 + n,
            content_type="image/jpeg",
            uploaded_by=officer,
        )


# --- list pages ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?status__exact=pending",
        "?type__category__exact=counterfeit&type__severity__exact=serious",
        "?region_prefix=33",
        "?q=测试",
        "?reporting_platform__id__exact=1",
    ],
)
def test_the_violation_list_costs_the_same_queries_for_4_or_20_violations(client, officer, query):
    platform = factories.PlatformFactory(code="tmall", name="天猫")
    query = query.replace("__id__exact=1", f"__id__exact={platform.pk}")
    client.force_login(officer)
    _violations(4, platform)
    small = _queries(client, VIOLATIONS + query)
    _violations(16, platform)
    assert _queries(client, VIOLATIONS + query) == small


def test_the_evidence_list_costs_the_same_queries_for_4_or_20_files(client, officer):
    client.force_login(officer)
    _evidence(4, officer)
    small = _queries(client, EVIDENCE)
    _evidence(16, officer)
    assert _queries(client, EVIDENCE) == small


def test_the_violation_filters_select_by_category_severity_platform_and_region(client, officer):
    jd = factories.PlatformFactory(code="jd", name="京东")
    counterfeit = factories.ViolationFactory(
        trader=factories.TraderFactory(uscc=factories.make_uscc(1, "440305")),
        type=factories.violation_type("counterfeit-goods"),
        source=Violation.Source.PLATFORM_REPORT,
        reporting_platform=jd,
    )
    advertising = factories.ViolationFactory(
        trader=factories.TraderFactory(uscc=factories.make_uscc(2, "330106"))
    )
    client.force_login(officer)

    def found(**params) -> list:
        return list(client.get(VIOLATIONS, params).context["cl"].result_list)

    assert found(type__category__exact="counterfeit") == [counterfeit]
    assert found(type__severity__exact="general") == [advertising]
    assert found(reporting_platform__id__exact=jd.pk) == [counterfeit]
    assert found(region_prefix="44") == [counterfeit]
    assert found(q=advertising.trader.uscc) == [advertising]
    assert found(q=f"#{counterfeit.pk}") == [counterfeit]


# --- recording ---------------------------------------------------------------------------------


def _record_data(trader, **overrides) -> dict:
    data = {
        "trader": trader.pk,
        "shop": "",
        "type": factories.violation_type().pk,
        "occurred_on": (timezone.localdate() - dt.timedelta(days=3)).isoformat(),
        "source": "inspection",
        "reporting_platform": "",
        "description": "详情页宣称“纯棉”，抽检为涤纶",
        "goods_value": "1280.50",
        "evidence-TOTAL_FORMS": "2",
        "evidence-INITIAL_FORMS": "0",
    }
    data.update(overrides)
    return data


def test_an_officer_records_a_violation_with_evidence_through_the_add_form(client, officer):
    trader = factories.TraderFactory()
    client.force_login(officer)
    assert client.get(VIOLATION_ADD, {"trader": trader.pk}).status_code == 200
    upload = SimpleUploadedFile("现场照片.png", PNG, content_type="image/png")
    response = client.post(VIOLATION_ADD, _record_data(trader, **{"evidence-0-upload": upload}))
    assert response.status_code == 302
    violation = Violation.objects.get()
    assert (violation.status, violation.recorded_by, str(violation.goods_value)) == (
        "pending",
        officer,
        "1280.50",
    )
    evidence = Evidence.objects.get()
    assert evidence.violation == violation
    assert evidence.sha256 == hashlib.sha256(PNG).hexdigest()
    assert (evidence.size, evidence.content_type, evidence.original_name) == (
        len(PNG),
        "image/png",
        "现场照片.png",
    )
    assert [e.action for e in LedgerEntry.objects.exclude(action="admin.logged").order_by("seq")] == [
        "violation.recorded",
        "evidence.attached",
    ]


def test_a_future_date_is_a_field_error_and_nothing_is_written(client, officer):
    trader = factories.TraderFactory()
    client.force_login(officer)
    tomorrow = (timezone.localdate() + dt.timedelta(days=1)).isoformat()
    response = client.post(VIOLATION_ADD, _record_data(trader, occurred_on=tomorrow))
    assert response.status_code == 200
    assert "future" in response.context["adminform"].form.errors["occurred_on"][0]
    assert not Violation.objects.exists()
    assert not LedgerEntry.objects.exists()


def test_a_shop_of_another_trader_is_a_field_error(client, officer):
    trader = factories.TraderFactory()
    someone_elses = factories.ShopFactory()
    client.force_login(officer)
    response = client.post(VIOLATION_ADD, _record_data(trader, shop=someone_elses.pk))
    assert "not operated by this trader" in response.context["adminform"].form.errors["shop"][0]
    assert not Violation.objects.exists()


def test_an_inactive_type_is_not_offered(client, officer):
    retired = factories.violation_type("refused-returns")
    retired.is_active = False
    retired.save()
    trader = factories.TraderFactory()
    client.force_login(officer)
    response = client.post(VIOLATION_ADD, _record_data(trader, type=retired.pk))
    assert response.context["adminform"].form.errors["type"]
    assert not Violation.objects.exists()


def test_a_refused_attachment_records_nothing_at_all(client, officer):
    trader = factories.TraderFactory()
    client.force_login(officer)
    script = SimpleUploadedFile("x.html", b"<script>alert(1)</script>", content_type="text/html")
    response = client.post(VIOLATION_ADD, _record_data(trader, **{"evidence-0-upload": script}))
    assert response.status_code == 200
    assert "not accepted" in str(response.context["inline_admin_formsets"][0].formset.errors)
    assert not Violation.objects.exists()
    assert not Evidence.objects.exists()
    assert not LedgerEntry.objects.exists()


def test_evidence_is_uploaded_on_a_pending_violations_page(client, officer):
    violation = factories.ViolationFactory()
    client.force_login(officer)
    page = client.get(_change_url(violation))
    data = _inline_management(page)
    data[f"{_upload_prefix(page)}-0-upload"] = SimpleUploadedFile(
        "检测报告.pdf", b"%PDF-1.4 report", content_type="application/octet-stream"
    )
    response = client.post(_change_url(violation), data)
    assert response.status_code == 302
    evidence = Evidence.objects.get()
    assert evidence.sha256 == hashlib.sha256(b"%PDF-1.4 report").hexdigest()
    assert evidence.content_type == "application/pdf"  # guessed from the name
    assert evidence.uploaded_by == officer
    violation.refresh_from_db()
    assert violation.description == "抽查发现商品详情页宣传与实际不符"  # the facts did not move


def test_existing_evidence_is_shown_read_only_with_a_download_link(client, officer, as_officer):
    violation = factories.ViolationFactory()
    evidence = evidence_attach(
        actor=as_officer,
        violation=violation,
        upload=SimpleUploadedFile("a.png", PNG, content_type="image/png"),
    )
    client.force_login(officer)
    page = client.get(_change_url(violation))
    body = page.content.decode()
    assert evidence.sha256 in body
    assert reverse("penalties:evidence-download", args=[evidence.pk]) in body
    # A second upload of the same file is reported, and nothing else changes.
    data = _inline_management(page)
    data[f"{_upload_prefix(page)}-0-upload"] = SimpleUploadedFile("b.png", PNG, content_type="image/png")
    response = client.post(_change_url(violation), data, follow=True)
    assert any("already attached" in m for m in _messages(response))
    assert Evidence.objects.count() == 1


def test_a_decided_violation_is_read_only(client, officer):
    violation = factories.ViolationFactory(
        status=Violation.Status.CONFIRMED, decided_by=officer, decided_at=timezone.now()
    )
    client.force_login(officer)
    page = client.get(_change_url(violation))
    assert page.status_code == 200
    assert not any("upload" in i.formset.form.base_fields for i in page.context["inline_admin_formsets"])
    assert 'type="submit" value="Save"' not in page.content.decode()
    assert client.post(_change_url(violation), {}).status_code == 403


def test_recorded_facts_are_read_only_on_a_pending_violation(client, officer):
    violation = factories.ViolationFactory()
    client.force_login(officer)
    page = client.get(_change_url(violation))
    assert 'type="submit" value="Save"' in page.content.decode()  # saving attaches evidence
    assert 'name="description"' not in page.content.decode()
    data = _inline_management(page) | {"description": "改过的描述", "occurred_on": "2020-01-01"}
    assert client.post(_change_url(violation), data).status_code == 302
    violation.refresh_from_db()
    assert violation.description == "抽查发现商品详情页宣传与实际不符"
    assert not LedgerEntry.objects.exclude(action="admin.logged").exists()


def test_violations_and_evidence_cannot_be_deleted_even_by_a_superuser(client, officer):
    admin_user = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    violation = factories.ViolationFactory()
    _evidence(1, officer)
    client.force_login(admin_user)
    assert client.get(reverse("admin:penalties_violation_delete", args=[violation.pk])).status_code == 403
    evidence = Evidence.objects.get()
    assert client.get(reverse("admin:penalties_evidence_delete", args=[evidence.pk])).status_code == 403
    assert client.get(reverse("admin:penalties_evidence_add")).status_code == 403
    response = client.post(
        VIOLATIONS, {"action": "delete_selected", helpers.ACTION_CHECKBOX_NAME: [violation.pk], "index": 0}
    )
    assert response.status_code == 302
    assert Violation.objects.filter(pk=violation.pk).exists()


# --- decisions -----------------------------------------------------------------------------------


def _act(client, action: str, violations, **extra):
    data = {"action": action, helpers.ACTION_CHECKBOX_NAME: [v.pk for v in violations], "index": 0, **extra}
    return client.post(VIOLATIONS, data, follow=True)


def test_confirm_reports_each_failure_by_name_and_counts_the_successes(client, officer):
    general = factories.ViolationFactory()
    grave = factories.ViolationFactory(type=factories.violation_type("counterfeit-large-scale"))
    rejected = factories.ViolationFactory(
        status=Violation.Status.REJECTED,
        decided_by=officer,
        decided_at=timezone.now(),
        decision_note="不成立",
    )
    client.force_login(officer)
    response = _act(client, "confirm_selected", [general, grave, rejected])
    assert response.status_code == 200
    messages = _messages(response)
    assert any(str(grave) in m and "grave" in m for m in messages)
    assert any(str(rejected) in m and "cannot become" in m for m in messages)
    assert any("Confirmed 1 violation" in m for m in messages)
    statuses = dict(Violation.objects.values_list("pk", "status"))
    assert statuses == {general.pk: "confirmed", grave.pk: "pending", rejected.pk: "rejected"}
    assert [e.action for e in LedgerEntry.objects.all()] == ["violation.confirmed"]


def test_the_action_bar_carries_the_confirmation_note_into_the_decision(client, officer):
    violation = factories.ViolationFactory()
    client.force_login(officer)
    page = client.get(VIOLATIONS).content.decode()
    assert 'name="note"' in page  # beside the action select
    _act(client, "confirm_selected", [violation], note="  证据确凿，予以确认  ")
    violation.refresh_from_db()
    assert violation.status == "confirmed" and violation.decision_note == "证据确凿，予以确认"
    entry = LedgerEntry.objects.get(action="violation.confirmed")
    assert entry.payload["note"] == "证据确凿，予以确认"


def test_a_note_in_the_action_bar_starts_the_rejection_reason_and_rejects_nothing_yet(client, officer):
    violation = factories.ViolationFactory()
    client.force_login(officer)
    response = _act(client, "reject_selected", [violation], note="重复举报")
    assert response.context["form"].initial == {"note": "重复举报"}
    assert Violation.objects.get(pk=violation.pk).status == "pending"
    assert not LedgerEntry.objects.filter(action="violation.rejected").exists()


def test_reject_asks_for_a_reason_before_rejecting(client, officer):
    first, second = factories.ViolationFactory(), factories.ViolationFactory()
    client.force_login(officer)
    response = _act(client, "reject_selected", [first, second])
    assert response.status_code == 200
    assert "admin/penalties/violation/reject_selected_confirmation.html" in [
        t.name for t in response.templates
    ]
    assert set(Violation.objects.values_list("status", flat=True)) == {"pending"}

    # The confirmation page posts without "index", like Django's delete confirmation.
    confirm = {
        "action": "reject_selected",
        helpers.ACTION_CHECKBOX_NAME: [first.pk, second.pk],
        "post": "yes",
        "note": "",
    }
    response = client.post(VIOLATIONS, confirm)
    assert response.status_code == 200  # the page again: a reason is required
    assert response.context["form"].errors["note"]
    assert set(Violation.objects.values_list("status", flat=True)) == {"pending"}

    response = client.post(VIOLATIONS, confirm | {"note": "证据不足，无法认定"}, follow=True)
    assert any("Rejected 2 violations" in m for m in _messages(response))
    assert set(Violation.objects.values_list("status", "decision_note")) == {
        ("rejected", "证据不足，无法认定")
    }
    assert LedgerEntry.objects.filter(action="violation.rejected").count() == 2


def test_reject_reports_a_four_eyes_failure(client, supervisor):
    own = factories.ViolationFactory(type=factories.violation_type("unsafe-goods"), recorded_by=supervisor)
    client.force_login(supervisor)
    response = client.post(
        VIOLATIONS,
        {
            "action": "reject_selected",
            helpers.ACTION_CHECKBOX_NAME: [own.pk],
            "post": "yes",
            "note": "不成立",
        },
        follow=True,
    )
    assert any(str(own) in m and "Four eyes" in m for m in _messages(response))
    own.refresh_from_db()
    assert own.status == "pending"


def test_an_action_over_too_many_rows_changes_nothing(client, officer, monkeypatch):
    from penalties.admin import rowactions

    monkeypatch.setattr(rowactions, "ACTION_LIMIT", 1)
    violations = [factories.ViolationFactory(), factories.ViolationFactory()]
    client.force_login(officer)
    response = _act(client, "confirm_selected", violations)
    assert any("at most 1" in m for m in _messages(response))
    assert set(Violation.objects.values_list("status", flat=True)) == {"pending"}


# --- evidence download ---------------------------------------------------------------------------


def _attached(as_officer, name: str = "现场照片.png") -> Evidence:
    violation = factories.ViolationFactory()
    return evidence_attach(
        actor=as_officer, violation=violation, upload=SimpleUploadedFile(name, PNG, content_type="image/png")
    )


def test_an_officer_downloads_the_stored_bytes(client, officer, as_officer):
    evidence = _attached(as_officer)
    client.force_login(officer)
    response = client.get(reverse("penalties:evidence-download", args=[evidence.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PNG
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"].startswith("attachment;")
    assert "filename*=utf-8''%E7%8E%B0" in response["Content-Disposition"]
    assert response["ETag"] == f'"{evidence.sha256}"'


def test_anonymous_is_sent_to_the_login_page(client, as_officer):
    evidence = _attached(as_officer)
    response = client.get(reverse("penalties:evidence-download", args=[evidence.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_staff_without_the_evidence_permission_gets_403(client, as_officer):
    evidence = _attached(as_officer)
    client.force_login(factories.UserFactory(username="intern", is_staff=True))
    assert client.get(reverse("penalties:evidence-download", args=[evidence.pk])).status_code == 403


def test_an_unknown_evidence_id_is_404(client, officer):
    client.force_login(officer)
    assert client.get(reverse("penalties:evidence-download", args=[999999])).status_code == 404


# --- the catalog -------------------------------------------------------------------------------


def test_a_supervisor_edits_a_violation_type_and_an_officer_only_views_it(client, officer, supervisor):
    vtype = factories.violation_type("false-advertising")
    url = reverse("admin:penalties_violationtype_change", args=[vtype.pk])
    data = {
        "name": vtype.name,
        "category": vtype.category,
        "severity": vtype.severity,
        "points": 70,
        "validity_days": vtype.validity_days,
        "legal_basis": vtype.legal_basis,
        "is_active": "on",
    }
    client.force_login(officer)
    assert client.get(url).status_code == 200
    assert client.post(url, data).status_code == 403
    client.force_login(supervisor)
    assert client.post(url, data | {"code": "renamed"}).status_code == 302
    vtype.refresh_from_db()
    assert (vtype.code, vtype.points) == ("false-advertising", 70)
    assert client.get(reverse("admin:penalties_violationtype_delete", args=[vtype.pk])).status_code == 403
