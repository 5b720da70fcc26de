"""Jurisdiction (issue 6): staff see and act on the traders of their region-code prefixes.

A Hangzhou officer (3301) sees Hangzhou's traders and everything about them, nothing of
Ningbo (3302) or Shenzhen (4403), by list, by guessed URL, by action, by service call, on
the dashboard and in exports; a Zhejiang supervisor (33) sees Hangzhou and Ningbo; a
national one sees all.
"""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.contrib.admin import helpers
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from creditledger import roles
from creditledger.exceptions import ApplicationError, PermissionDenied
from creditledger.ledger.actors import Actor
from creditledger.ledger.models import LedgerEntry
from penalties import dashboard
from penalties.exports import build, tasks
from penalties.exports.base import FilterError
from penalties.exports.services import export_request
from penalties.models import (
    Appeal,
    Export,
    Objection,
    RepairApplication,
    Restriction,
    Violation,
    ViolationType,
)
from penalties.services import (
    appeal_file,
    evidence_attach,
    objection_record,
    restriction_impose,
    violation_confirm,
    violation_record,
)
from tests import factories
from tests.conftest import _staff
from traders.jurisdiction import NATIONAL, NOWHERE, Scope, clean_prefixes, scope_of
from traders.models import Shop, StaffJurisdiction, Trader
from traders.services import jurisdiction_set, shop_register, trader_register

pytestmark = pytest.mark.django_db

NOW = timezone.now()
DAY = dt.timedelta(days=1)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
AREAS = {"hz": "330106", "nb": "330203", "sz": "440305"}  # Hangzhou, Ningbo, Shenzhen


def _area(trader_region: str, national_user) -> dict:
    """A trader of the region with one of everything: shop, pending and confirmed violation,
    evidence, a proposed and an active measure, an objection, an appeal, a repair application."""
    trader = factories.TraderFactory(in_region=trader_region)
    shop = factories.ShopFactory(trader=trader)
    pending = factories.ViolationFactory(trader=trader, shop=shop)
    confirmed = factories.ViolationFactory(
        trader=trader, status=Violation.Status.CONFIRMED, decided_at=NOW - DAY, decided_by=national_user
    )
    evidence = evidence_attach(
        actor=Actor.for_user(national_user),
        violation=pending,
        upload=io.BytesIO(PNG),
        name="现场照片.png",
        content_type="image/png",
    )
    common = {"trader": trader, "basis": Restriction.Basis.MANUAL, "reasons": {"basis": "manual"}}
    proposed = Restriction.objects.create(
        **common,
        measure=Restriction.Measure.LISTING_RESTRICTED,
        state=Restriction.State.PROPOSED,
        noticed_at=NOW - DAY,
        objection_deadline=NOW + 5 * DAY,
    )
    active = Restriction.objects.create(
        **common,
        measure=Restriction.Measure.WARNING,
        state=Restriction.State.ACTIVE,
        noticed_at=NOW - 10 * DAY,
        starts_at=NOW - 5 * DAY,
    )
    objection = Objection.objects.create(
        restriction=proposed, grounds="不服", recorded_by=national_user, recorded_at=NOW - DAY / 2
    )
    appeal = Appeal.objects.create(
        violation=confirmed,
        grounds="不服",
        filed_by=national_user,
        filed_at=NOW - DAY / 2,
        deadline=NOW + 9 * DAY,
    )
    repair = RepairApplication.objects.create(
        restriction=active, grounds="已整改", filed_by=national_user, filed_at=NOW - DAY / 2
    )
    return {
        "trader": trader,
        "shop": shop,
        "violation": pending,
        "confirmed": confirmed,
        "evidence": evidence,
        "restriction": proposed,
        "active": active,
        "objection": objection,
        "appeal": appeal,
        "repairapplication": repair,
    }


@pytest.fixture
def world(supervisor):
    return {name: _area(region, supervisor) for name, region in AREAS.items()}


# app label, model name in the admin URL, the area's row of that model
PAGES = [
    ("traders", "trader", "trader"),
    ("traders", "shop", "shop"),
    ("penalties", "violation", "violation"),
    ("penalties", "evidence", "evidence"),
    ("penalties", "restriction", "restriction"),
    ("penalties", "objection", "objection"),
    ("penalties", "appeal", "appeal"),
    ("penalties", "repairapplication", "repairapplication"),
]
# Every row of the model in an area, for the lists.
ALL_ROWS = {"violation": ("violation", "confirmed"), "restriction": ("restriction", "active")}


def _listed(client, app: str, model: str) -> set[int]:
    response = client.get(reverse(f"admin:{app}_{model}_changelist"))
    assert response.status_code == 200
    return {obj.pk for obj in response.context["cl"].result_list}


def _ids(world, areas, key: str) -> set[int]:
    return {world[area][k].pk for area in areas for k in ALL_ROWS.get(key, (key,))}


# --- prefixes and scopes ----------------------------------------------------------------------


def test_prefixes_are_validated_sorted_and_reduced_to_the_shortest():
    assert clean_prefixes("3302, 3301 330106;33") == ("33",)
    assert clean_prefixes(["3302", "3301", "330106"]) == ("3301", "3302")
    assert clean_prefixes("441900") == ("441900",)  # 东莞市, a city without districts


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("99", "unknown_region"),
        ("331", "invalid_region"),
        ("33a1", "invalid_region"),
        ("3300", "invalid_region"),
    ],
)
def test_a_bad_prefix_is_refused_with_its_value_named(raw, code):
    with pytest.raises(ApplicationError) as caught:
        clean_prefixes(raw)
    assert (caught.value.code, caught.value.field) == (code, "regions")
    assert raw in caught.value.message


def test_a_scope_covers_its_prefixes_only():
    city, province = Scope(regions=("3301",)), Scope(regions=("33",))
    assert city.covers("330106") and not city.covers("330203")
    assert province.covers("330106") and province.covers("330203") and not province.covers("440305")
    assert NATIONAL.covers("440305") and not NOWHERE.covers("330106")


def test_staff_without_an_assignment_see_no_trader_and_superusers_see_all(client, world):
    unassigned = factories.UserFactory(username="new_officer", is_staff=True)
    unassigned.groups.add(Group.objects.get(name=roles.OFFICER))
    assert scope_of(unassigned) == NOWHERE
    client.force_login(unassigned)
    assert _listed(client, "traders", "trader") == set()
    root = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    assert scope_of(root) == NATIONAL
    client.force_login(root)
    assert _listed(client, "traders", "trader") == _ids(world, AREAS, "trader")


# --- assigning a jurisdiction -----------------------------------------------------------------


def test_a_superuser_assigns_a_jurisdiction_and_the_ledger_records_it():
    root = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    officer = _staff(roles.OFFICER, "someone", regions=())
    row = jurisdiction_set(actor=Actor.for_user(root), user=officer, regions="3302 3301")
    assert (row.national, row.regions, row.updated_by) == (False, ["3301", "3302"], root)
    entry = LedgerEntry.objects.get(action="jurisdiction.set")
    assert entry.actor == f"user:{root.pk}" and entry.subject_id == str(officer.pk)
    assert entry.payload["regions"] == ["3301", "3302"]
    assert entry.payload["previous"] == {"national": False, "regions": []}
    # The same again changes and records nothing.
    jurisdiction_set(actor=Actor.for_user(root), user=officer, regions=["3301", "3302"])
    assert LedgerEntry.objects.filter(action="jurisdiction.set").count() == 1
    assert scope_of(officer) == Scope(regions=("3301", "3302"))


def test_only_a_superuser_assigns_and_a_bad_prefix_writes_nothing(supervisor, city_officer):
    with pytest.raises(PermissionDenied):
        jurisdiction_set(actor=Actor.for_user(supervisor), user=city_officer, national=True)
    root = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    with pytest.raises(ApplicationError):
        jurisdiction_set(actor=Actor.for_user(root), user=city_officer, regions="3301 12345")
    assert StaffJurisdiction.objects.get(user=city_officer).regions == ["3301"]
    assert not LedgerEntry.objects.filter(action="jurisdiction.set").exists()


def test_the_jurisdiction_admin_is_for_superusers_and_saves_through_the_service(
    client, city_officer, supervisor
):
    client.force_login(supervisor)
    assert client.get(reverse("admin:traders_staffjurisdiction_changelist")).status_code == 403
    root = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    url = reverse("admin:traders_staffjurisdiction_change", args=[city_officer.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"regions": "3301, 3302"})
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert StaffJurisdiction.objects.get(user=city_officer).regions == ["3301", "3302"]
    assert LedgerEntry.objects.get(action="jurisdiction.set").payload["regions"] == ["3301", "3302"]
    response = client.post(url, {"regions": "3399 x"})
    assert response.status_code == 200
    assert "x: give 2, 4 or 6 digits" in response.context["adminform"].form.errors["regions"][0]
    assert StaffJurisdiction.objects.get(user=city_officer).regions == ["3301", "3302"]


# --- lists, pages, downloads ------------------------------------------------------------------


@pytest.mark.parametrize(("app", "model", "key"), PAGES)
def test_a_city_officer_lists_only_their_citys_rows(client, world, city_officer, app, model, key):
    client.force_login(city_officer)
    assert _listed(client, app, model) == _ids(world, ["hz"], key)


@pytest.mark.parametrize(("app", "model", "key"), PAGES)
def test_a_provincial_supervisor_lists_both_cities_and_a_national_one_all(
    client, world, province_supervisor, supervisor, app, model, key
):
    client.force_login(province_supervisor)
    assert _listed(client, app, model) == _ids(world, ["hz", "nb"], key)
    client.force_login(supervisor)
    assert _listed(client, app, model) == _ids(world, AREAS, key)


@pytest.mark.parametrize(("app", "model", "key"), PAGES)
def test_another_citys_pages_are_404_to_a_guessed_url(client, world, city_officer, app, model, key):
    client.force_login(city_officer)
    own, other = world["hz"][key].pk, world["nb"][key].pk
    assert client.get(reverse(f"admin:{app}_{model}_change", args=[own])).status_code == 200
    assert client.get(reverse(f"admin:{app}_{model}_change", args=[other])).status_code == 404
    assert client.get(reverse(f"admin:{app}_{model}_history", args=[other])).status_code == 404
    # Nothing may be deleted at all; another area's row answers no differently.
    delete = reverse(f"admin:{app}_{model}_delete", args=[other])
    assert (
        client.get(delete).status_code
        == client.get(reverse(f"admin:{app}_{model}_delete", args=[own])).status_code
    )


def test_another_citys_evidence_cannot_be_downloaded(client, world, city_officer):
    client.force_login(city_officer)
    own = client.get(reverse("penalties:evidence-download", args=[world["hz"]["evidence"].pk]))
    assert own.status_code == 200 and b"".join(own.streaming_content) == PNG
    other = client.get(reverse("penalties:evidence-download", args=[world["nb"]["evidence"].pk]))
    assert other.status_code == 404


def test_the_trader_autocomplete_offers_only_the_citys_traders(client, world, city_officer):
    client.force_login(city_officer)
    response = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "penalties", "model_name": "violation", "field_name": "trader", "term": ""},
    )
    assert response.status_code == 200
    assert {int(r["id"]) for r in response.json()["results"]} == {world["hz"]["trader"].pk}


# --- actions and add forms --------------------------------------------------------------------


def _act(client, model: str, action: str, rows, **extra):
    data = {"action": action, helpers.ACTION_CHECKBOX_NAME: [r.pk for r in rows], "index": 0, **extra}
    return client.post(reverse(f"admin:penalties_{model}_changelist"), data, follow=True)


def test_actions_on_another_citys_rows_change_nothing(client, world, city_supervisor):
    client.force_login(city_supervisor)
    seq = LedgerEntry.objects.order_by("-seq").values_list("seq", flat=True).first()
    _act(client, "violation", "confirm_selected", [world["nb"]["violation"]])
    _act(client, "restriction", "withdraw_selected", [world["nb"]["restriction"]], post="yes", note="撤销")
    _act(
        client, "restriction", "lift_selected", [world["nb"]["active"]], post="yes", note="x", reason="manual"
    )
    _act(client, "objection", "withdraw_selected", [world["nb"]["objection"]], post="yes", note="成立")
    _act(client, "appeal", "grant_selected", [world["nb"]["appeal"]], post="yes", note="成立")
    _act(
        client,
        "repairapplication",
        "approve_selected",
        [world["nb"]["repairapplication"]],
        post="yes",
        note="x",
    )
    assert LedgerEntry.objects.order_by("-seq").values_list("seq", flat=True).first() == seq
    nb = world["nb"]
    assert Violation.objects.get(pk=nb["violation"].pk).status == "pending"
    assert Restriction.objects.get(pk=nb["restriction"].pk).state == "proposed"
    assert Restriction.objects.get(pk=nb["active"].pk).state == "active"
    assert Objection.objects.get(pk=nb["objection"].pk).status == "pending"
    assert Appeal.objects.get(pk=nb["appeal"].pk).status == "pending"
    assert RepairApplication.objects.get(pk=nb["repairapplication"].pk).status == "pending"
    # The same action on the city's own violation works.
    _act(client, "violation", "confirm_selected", [world["hz"]["violation"]])
    assert Violation.objects.get(pk=world["hz"]["violation"].pk).status == "confirmed"


def _record_data(trader, **overrides) -> dict:
    data = {
        "trader": trader.pk,
        "shop": "",
        "type": factories.violation_type().pk,
        "occurred_on": (timezone.localdate() - dt.timedelta(days=3)).isoformat(),
        "source": "inspection",
        "reporting_platform": "",
        "description": "详情页宣称“纯棉”，抽检为涤纶",
        "goods_value": "",
        "evidence-TOTAL_FORMS": "2",
        "evidence-INITIAL_FORMS": "0",
    }
    data.update(overrides)
    return data


def test_a_city_officer_cannot_record_a_violation_or_objection_against_another_city(
    client, world, city_officer
):
    client.force_login(city_officer)
    before = (Violation.objects.count(), Objection.objects.count(), LedgerEntry.objects.count())
    response = client.post(reverse("admin:penalties_violation_add"), _record_data(world["nb"]["trader"]))
    assert response.status_code == 200
    assert "trader" in response.context["adminform"].form.errors
    response = client.post(
        reverse("admin:penalties_objection_add"),
        {"restriction": world["nb"]["restriction"].pk, "grounds": "不服"},
    )
    assert response.status_code == 200
    assert "restriction" in response.context["adminform"].form.errors
    assert (Violation.objects.count(), Objection.objects.count(), LedgerEntry.objects.count()) == before
    response = client.post(reverse("admin:penalties_violation_add"), _record_data(world["hz"]["trader"]))
    assert response.status_code == 302
    assert Violation.objects.count() == before[0] + 1


def test_registering_a_trader_outside_the_area_is_refused(client, city_officer):
    client.force_login(city_officer)
    add = reverse("admin:traders_trader_add")
    response = client.post(add, {"uscc": factories.make_uscc(901, "330203"), "name": "宁波商贸"})
    assert response.status_code == 200
    assert "outside your jurisdiction" in response.context["adminform"].form.errors["uscc"][0]
    assert not Trader.objects.exists() and not LedgerEntry.objects.exists()
    response = client.post(add, {"uscc": factories.make_uscc(902, "330108"), "name": "杭州商贸"})
    assert response.status_code == 302
    assert Trader.objects.get().region == "330108"


# --- services ---------------------------------------------------------------------------------


def test_the_services_refuse_another_citys_trader_whatever_the_interface(
    world, city_officer, city_supervisor
):
    officer, supervisor = Actor.for_user(city_officer), Actor.for_user(city_supervisor)
    nb = world["nb"]
    calls = [
        lambda: violation_record(
            actor=officer,
            trader=nb["trader"],
            type=ViolationType.objects.get(code="false-advertising"),
            occurred_on=timezone.localdate(),
            source="inspection",
            description="x",
        ),
        lambda: violation_confirm(actor=supervisor, violation=nb["violation"]),
        lambda: evidence_attach(
            actor=officer, violation=nb["violation"], upload=io.BytesIO(b"x"), name="a.txt"
        ),
        lambda: restriction_impose(actor=supervisor, trader=nb["trader"], measure="suspended", reason="x"),
        lambda: objection_record(actor=officer, restriction=nb["restriction"], grounds="x"),
        lambda: appeal_file(actor=officer, violation=nb["confirmed"], grounds="x"),
        lambda: trader_register(actor=officer, uscc=factories.make_uscc(903, "440305"), name="深圳"),
        lambda: shop_register(
            actor=officer,
            trader=nb["trader"],
            platform=nb["shop"].platform,
            platform_shop_id="s-9",
            name="店",
        ),
    ]
    before = LedgerEntry.objects.count()
    for call in calls:
        with pytest.raises(PermissionDenied) as caught:
            call()
        assert caught.value.code == "outside_jurisdiction"
        assert "outside your jurisdiction" in caught.value.message
    assert LedgerEntry.objects.count() == before
    assert not Shop.objects.filter(platform_shop_id="s-9").exists()


def test_a_provincial_supervisor_acts_in_both_cities(world, province_supervisor):
    actor = Actor.for_user(province_supervisor)
    for area in ("hz", "nb"):
        restriction_impose(actor=actor, trader=world[area]["trader"], measure="suspended", reason="约谈未改")
    with pytest.raises(PermissionDenied):
        restriction_impose(actor=actor, trader=world["sz"]["trader"], measure="suspended", reason="x")


# --- dashboard and exports --------------------------------------------------------------------


def test_the_dashboard_counts_only_the_area(client, world, city_officer):
    city = scope_of(city_officer)
    assert dashboard.queue_sizes(scope=city).pending == 1
    assert dashboard.queue_sizes().pending == 3
    assert dashboard.pending_remedies(scope=city) == dashboard.PendingRemedies(1, 1, 1)
    assert dashboard.pending_remedies() == dashboard.PendingRemedies(3, 3, 3)
    assert dashboard.pending_remedies(scope=NOWHERE) == dashboard.PendingRemedies(0, 0, 0)
    assert dashboard.objection_deadlines(days=10, scope=city).total == 1
    assert dashboard.appeal_deadlines(days=10, scope=city).total == 1
    assert sum(n for _grade, n in dashboard.grade_distribution(scope=city)) == 1
    assert dashboard.measures_this_week(scope=city).applied <= dashboard.measures_this_week().applied
    # Active warnings without acknowledgement: one per trader's shop platform.
    assert dashboard.unacknowledged(scope=city).total == 1
    assert dashboard.unacknowledged().total == 3
    client.force_login(city_officer)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert response.context["queue"].pending == 1
    assert "3301" in response.content.decode()


def _export(user, report: str, filters: dict | None = None) -> Export:
    export = export_request(
        actor=Actor.for_user(user), report=report, file_format="csv", filters=filters or {}
    )
    tasks.export_run(export.pk)
    export.refresh_from_db()
    assert export.state == Export.State.DONE, export.error
    return export


def test_a_city_auditors_export_holds_only_the_area_and_says_so(world, supervisor):
    city_auditor = _staff(roles.AUDITOR, "hz_auditor", regions=("3301",))
    export = _export(city_auditor, "violations")
    assert export.scope == {"national": False, "regions": ["3301"]}
    assert export.manifest["scope"] == {"national": False, "regions": ["3301"]}
    assert export.row_count == Violation.objects.filter(trader__region__startswith="3301").count() == 2
    national = _export(supervisor, "violations")
    assert national.manifest["scope"] == {"national": True}
    assert national.row_count == Violation.objects.count()
    measures = _export(city_auditor, "measures")
    assert measures.row_count == Restriction.objects.filter(trader__region__startswith="3301").count()
    grades = _export(city_auditor, "grades", {"level": "city"})
    assert grades.row_count == 1  # the one city


def test_the_ledger_extract_of_a_city_auditor_holds_the_citys_entries_only(world):
    city = Scope(regions=("3301",))
    exporter = build("ledger", "csv", {}, scope=city)
    codes = {row[6] for row in exporter.rows()}
    assert codes == {world["hz"]["trader"].uscc}
    assert build("ledger", "csv", {}, scope=NOWHERE).count() == 0


def test_another_citys_credit_file_is_refused_like_an_unknown_code(world):
    city = Scope(regions=("3301",))
    build("credit_file", "csv", {"uscc": world["hz"]["trader"].uscc}, scope=city)
    messages = []
    for code in (world["nb"]["trader"].uscc, factories.make_uscc(999, "330203")):
        with pytest.raises(FilterError) as caught:
            build("credit_file", "csv", {"uscc": code}, scope=city)
        messages.append(caught.value.message)
    assert messages[0] == messages[1] and "jurisdiction" in messages[0]


def test_the_command_line_export_stays_national(world):
    exporter = build("violations", "csv", {})
    assert exporter.jurisdiction == NATIONAL
    assert len(list(exporter.rows())) == Violation.objects.count()


# --- the credit-file page ---------------------------------------------------------------------


def _trader_page(client, trader: Trader) -> str:
    response = client.get(reverse("admin:traders_trader_change", args=[trader.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_credit_file_page_lists_objections_appeals_and_repairs(client, world, supervisor, city_officer):
    hz = world["hz"]
    Objection.objects.filter(pk=hz["objection"].pk).update(
        status="maintained", decided_by=supervisor, decided_at=NOW, note="理由不成立"
    )
    client.force_login(city_officer)
    page = _trader_page(client, hz["trader"])
    for url_name, row in (
        ("admin:penalties_objection_change", hz["objection"]),
        ("admin:penalties_appeal_change", hz["appeal"]),
        ("admin:penalties_repairapplication_change", hz["repairapplication"]),
    ):
        assert f'href="{reverse(url_name, args=[row.pk])}"' in page
    objection_row = page.split(f'data-objection="{hz["objection"].pk}"')[1].split("</tr>")[0]
    assert "理由不成立" in objection_row and str(supervisor) in objection_row
    assert reverse("admin:penalties_restriction_change", args=[hz["restriction"].pk]) in objection_row
    appeal_row = page.split(f'data-appeal="{hz["appeal"].pk}"')[1].split("</tr>")[0]
    assert reverse("admin:penalties_violation_change", args=[hz["confirmed"].pk]) in appeal_row
    assert f'data-repair="{hz["repairapplication"].pk}"' in page
    # Nothing of another trader.
    for url_name, key in (
        ("admin:penalties_objection_change", "objection"),
        ("admin:penalties_appeal_change", "appeal"),
        ("admin:penalties_repairapplication_change", "repairapplication"),
    ):
        assert f'href="{reverse(url_name, args=[world["nb"][key].pk])}"' not in page


def test_the_credit_file_page_costs_the_same_queries_for_one_or_many_remedies(client, world, supervisor):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    hz = world["hz"]
    client.force_login(supervisor)

    def queries() -> int:
        _trader_page(client, hz["trader"])
        with CaptureQueriesContext(connection) as ctx:
            _trader_page(client, hz["trader"])
        return len(ctx.captured_queries)

    few = queries()
    for n in range(4):
        violation = factories.ViolationFactory(
            trader=hz["trader"], status=Violation.Status.CONFIRMED, decided_at=NOW, decided_by=supervisor
        )
        Appeal.objects.create(
            violation=violation, grounds=f"不服{n}", filed_by=supervisor, filed_at=NOW, deadline=NOW + DAY
        )
        Objection.objects.create(
            restriction=hz["restriction"],
            grounds="再议",
            recorded_by=supervisor,
            recorded_at=NOW,
            status="maintained",
            decided_by=supervisor,
            decided_at=NOW,
        )
        RepairApplication.objects.create(
            restriction=hz["active"],
            grounds="整改",
            filed_by=supervisor,
            filed_at=NOW,
            status="rejected",
            decided_by=supervisor,
            decided_at=NOW,
        )
    assert queries() == few


def test_the_ledger_pages_show_the_citys_entries_and_those_about_no_trader(client, world, city_officer):
    root = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    jurisdiction_set(actor=Actor.for_user(root), user=_staff(roles.OFFICER, "x", regions=()), regions="44")
    client.force_login(city_officer)
    response = client.get(reverse("admin:ledger_ledgerentry_changelist"))
    assert response.status_code == 200
    shown = {entry.trader_uscc for entry in response.context["cl"].result_list}
    assert shown == {world["hz"]["trader"].uscc, ""}
    other = LedgerEntry.objects.filter(trader_uscc=world["nb"]["trader"].uscc).first()
    own = LedgerEntry.objects.filter(trader_uscc=world["hz"]["trader"].uscc).first()
    assert client.get(reverse("admin:ledger_ledgerentry_change", args=[own.seq])).status_code == 200
    assert client.get(reverse("admin:ledger_ledgerentry_change", args=[other.seq])).status_code == 404


def test_the_command_assigns_named_and_unassigned_staff_and_refuses_a_bad_prefix(city_officer):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    newcomer = factories.UserFactory(username="newcomer", is_staff=True)
    with pytest.raises(CommandError, match="12345"):
        call_command("assign_jurisdiction", "hz_officer", "--regions", "3301", "12345", stdout=io.StringIO())
    assert not LedgerEntry.objects.exists()
    out = io.StringIO()
    call_command("assign_jurisdiction", "hz_officer", "--regions", "3302", "3301", stdout=out)
    assert StaffJurisdiction.objects.get(user=city_officer).regions == ["3301", "3302"]
    call_command("assign_jurisdiction", "--unassigned", "--national", stdout=out)
    assert StaffJurisdiction.objects.get(user=newcomer).national
    assert [e.actor for e in LedgerEntry.objects.all()] == ["system:assign_jurisdiction"] * 2


def test_the_review_queue_holds_only_the_citys_pending_violations(client, world, city_officer):
    client.force_login(city_officer)
    response = client.get(reverse("admin:penalties_violation_queue"))
    assert response.status_code == 200
    assert {v.pk for v in response.context["cl"].result_list} == {world["hz"]["violation"].pk}


def test_a_superuser_adds_a_jurisdiction_on_the_add_page(client):
    newcomer = factories.UserFactory(username="newcomer", is_staff=True)
    root = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    add = reverse("admin:traders_staffjurisdiction_add")
    assert client.get(add).status_code == 200
    response = client.post(add, {"user": newcomer.pk, "national": "on", "regions": ""})
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert scope_of(newcomer) == NATIONAL
    assert LedgerEntry.objects.get(action="jurisdiction.set").payload["user"] == "newcomer"
    listing = client.get(reverse("admin:traders_staffjurisdiction_changelist"))
    assert "newcomer" in listing.content.decode()
