"""The role × action matrix (issue #6): every staff page, form and admin action, tried by
anonymous, an officer, a supervisor and an auditor, against an expectation written down
by hand in MATRIX.

MATRIX is not derived from creditledger/roles.py or from the admins' has_*_permission
methods: those are what it checks. The cases are enumerated from the code, so a new view
cannot slip through unnoticed:

- every URL pattern of every ModelAdmin in admin.site._registry (changelist, add, change,
  delete, history, the bare-object redirect, and any custom URL such as the review queue),
  as GET, plus POST for add, change, delete and every custom URL;
- every admin action of every ModelAdmin, site-wide ones included (_get_base_actions()),
  POSTed to the changelist with `action`, `_selected_action` and the confirmation answers;
- the admin site's own pages and the other staff URLs (OTHER_CASES).

test_every_url_has_a_case fails for a URL pattern that no case covers, and
test_every_case_has_a_row_and_every_row_a_case for a case that MATRIX has no row for.

Adding a page (e.g. another branch's jurisdiction admin or two-factor pages):
- a new ModelAdmin, admin URL or action: its cases appear by themselves and the failure
  prints the lines to paste into MATRIX (fill in each role's outcome). Give the model a
  target object in _world() (`targets`, keyed app_label.model_name), and valid add data
  in ADD_DATA (change data in CHANGE_DATA) if some role may add (change).
- any other URL (e.g. /account/two-factor/): add one page("GET url-name", "group") line to
  OTHER_CASES and its row to MATRIX; the failure prints both.

Every cell also watches the database: "done" means the request wrote domain rows (not
just the admin's history), every other outcome that it wrote none at all (PostgreSQL's
per-transaction row counters); so a GET that writes, or a refused POST that changes
anything, ledger included, fails its cell. Each cell runs inside a savepoint that is
rolled back, so all cells of a group share one set of objects and start from the same
state.

Running it alongside other branches: a login-attempt or second-factor table (axes_*,
otp_*) is not watched, and client.force_login must give a fully signed-in session.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.forms.models import model_to_dict
from django.urls import URLResolver, get_resolver, reverse
from django.utils import timezone

from creditledger.api.models import WebhookDelivery
from creditledger.ledger.models import Checkpoint
from creditledger.ledger.services import ledger_append
from penalties.models import (
    Appeal,
    Evidence,
    Export,
    Objection,
    Policy,
    RepairApplication,
    Restriction,
    ViolationType,
)
from tests import factories
from traders.models import ApiKey, WebhookEndpoint

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "officer", "supervisor", "auditor")

# Outcomes:
#   ok       200
#   next     302 to somewhere other than the login page (the next step)
#   login    302 to the admin login page
#   403 404 405   that status
#   done     (POST) 200 or 302, and something was written
#   refused  (admin action) 200 or 302, and nothing was written: the admin offers the
#            role no such action, so Django answers "no action selected"
# Every outcome but "done" also asserts that nothing was written.
#
# case                                                    anonymous officer supervisor auditor
MATRIX = """
# --- the admin site's own pages ---------------------------------------------------------------
GET    admin:index                                             login    ok       ok       ok
GET    admin:login                                             ok       next     next     next
GET    admin:logout                                            next     405      405      405
POST   admin:logout                                            next     ok       ok       ok
GET    admin:password_change                                   login    ok       ok       ok
GET    admin:password_change_done                              login    ok       ok       ok
GET    admin:autocomplete                                      login    ok       ok       ok
GET    admin:jsi18n                                            login    ok       ok       ok
GET    admin:view_on_site                                      login    404      404      404
GET    admin:app_list#api                                      login    ok       ok       ok
GET    admin:app_list#auth                                     login    404      404      404
GET    admin:app_list#ledger                                   login    ok       ok       ok
GET    admin:app_list#penalties                                login    ok       ok       ok
GET    admin:app_list#traders                                  login    ok       ok       ok
GET    admin:catch_all                                         login    404      404      404

# --- users and groups: the superuser's, no role sees them -------------------------------------
GET    admin:auth_user_changelist                              login    403      403      403
GET    admin:auth_user_add                                     login    403      403      403
POST   admin:auth_user_add                                     login    403      403      403
GET    admin:auth_user_change                                  login    403      403      403
POST   admin:auth_user_change                                  login    403      403      403
GET    admin:auth_user_delete                                  login    403      403      403
POST   admin:auth_user_delete                                  login    403      403      403
GET    admin:auth_user_history                                 login    403      403      403
GET    admin/auth/user/<path:object_id>/                       login    next     next     next
GET    admin:auth_user_password_change                         login    403      403      403
POST   admin:auth_user_password_change                         login    403      403      403
ACTION auth.user:delete_selected                               login    403      403      403
GET    admin:auth_group_changelist                             login    403      403      403
GET    admin:auth_group_add                                    login    403      403      403
POST   admin:auth_group_add                                    login    403      403      403
GET    admin:auth_group_change                                 login    403      403      403
POST   admin:auth_group_change                                 login    403      403      403
GET    admin:auth_group_delete                                 login    403      403      403
POST   admin:auth_group_delete                                 login    403      403      403
GET    admin:auth_group_history                                login    403      403      403
GET    admin/auth/group/<path:object_id>/                      login    next     next     next
ACTION auth.group:delete_selected                              login    403      403      403

# --- the ledger: read-only for every role -------------------------------------------------------
GET    admin:ledger_ledgerentry_changelist                     login    ok       ok       ok
GET    admin:ledger_ledgerentry_add                            login    403      403      403
POST   admin:ledger_ledgerentry_add                            login    403      403      403
GET    admin:ledger_ledgerentry_change                         login    ok       ok       ok
POST   admin:ledger_ledgerentry_change                         login    403      403      403
GET    admin:ledger_ledgerentry_delete                         login    403      403      403
POST   admin:ledger_ledgerentry_delete                         login    403      403      403
GET    admin:ledger_ledgerentry_history                        login    ok       ok       ok
GET    admin/ledger/ledgerentry/<path:object_id>/              login    next     next     next
ACTION ledger.ledgerentry:delete_selected                      login    refused  refused  refused
GET    admin:ledger_checkpoint_changelist                      login    ok       ok       ok
GET    admin:ledger_checkpoint_add                             login    403      403      403
POST   admin:ledger_checkpoint_add                             login    403      403      403
GET    admin:ledger_checkpoint_change                          login    ok       ok       ok
POST   admin:ledger_checkpoint_change                          login    403      403      403
GET    admin:ledger_checkpoint_delete                          login    403      403      403
POST   admin:ledger_checkpoint_delete                          login    403      403      403
GET    admin:ledger_checkpoint_history                         login    ok       ok       ok
GET    admin/ledger/checkpoint/<path:object_id>/               login    next     next     next
ACTION ledger.checkpoint:delete_selected                       login    refused  refused  refused

# --- platform API keys: supervisors only, even to look ------------------------------------------
GET    admin:traders_apikey_changelist                         login    403      ok       403
GET    admin:traders_apikey_add                                login    403      ok       403
POST   admin:traders_apikey_add                                login    403      done     403
GET    admin:traders_apikey_change                             login    403      ok       403
POST   admin:traders_apikey_change                             login    403      403      403
GET    admin:traders_apikey_delete                             login    403      403      403
POST   admin:traders_apikey_delete                             login    403      403      403
GET    admin:traders_apikey_history                            login    403      ok       403
GET    admin/traders/apikey/<path:object_id>/                  login    next     next     next
ACTION traders.apikey:delete_selected                          login    403      refused  403
ACTION traders.apikey:revoke                                   login    403      done     403

# --- webhooks: everyone reads, supervisors configure and replay ---------------------------------
GET    admin:traders_webhookendpoint_changelist                login    ok       ok       ok
GET    admin:traders_webhookendpoint_add                       login    403      ok       403
POST   admin:traders_webhookendpoint_add                       login    403      done     403
GET    admin:traders_webhookendpoint_change                    login    ok       ok       ok
POST   admin:traders_webhookendpoint_change                    login    403      done     403
GET    admin:traders_webhookendpoint_delete                    login    403      403      403
POST   admin:traders_webhookendpoint_delete                    login    403      403      403
GET    admin:traders_webhookendpoint_history                   login    ok       ok       ok
GET    admin/traders/webhookendpoint/<path:object_id>/         login    next     next     next
ACTION traders.webhookendpoint:delete_selected                 login    refused  refused  refused
ACTION traders.webhookendpoint:rotate_secret                   login    refused  done     refused
ACTION traders.webhookendpoint:retire_previous_secret          login    refused  done     refused
GET    admin:api_webhookdelivery_changelist                    login    ok       ok       ok
GET    admin:api_webhookdelivery_add                           login    403      403      403
POST   admin:api_webhookdelivery_add                           login    403      403      403
GET    admin:api_webhookdelivery_change                        login    ok       ok       ok
POST   admin:api_webhookdelivery_change                        login    403      403      403
GET    admin:api_webhookdelivery_delete                        login    403      403      403
POST   admin:api_webhookdelivery_delete                        login    403      403      403
GET    admin:api_webhookdelivery_history                       login    ok       ok       ok
GET    admin/api/webhookdelivery/<path:object_id>/             login    next     next     next
ACTION api.webhookdelivery:delete_selected                     login    refused  refused  refused
ACTION api.webhookdelivery:replay                              login    refused  done     refused

# --- traders and shops: officers and supervisors register, nobody edits or deletes --------------
GET    admin:traders_trader_changelist                         login    ok       ok       ok
GET    admin:traders_trader_add                                login    ok       ok       403
POST   admin:traders_trader_add                                login    done     done     403
GET    admin:traders_trader_change                             login    ok       ok       ok
POST   admin:traders_trader_change                             login    403      403      403
GET    admin:traders_trader_delete                             login    403      403      403
POST   admin:traders_trader_delete                             login    403      403      403
GET    admin:traders_trader_history                            login    ok       ok       ok
GET    admin/traders/trader/<path:object_id>/                  login    next     next     next
ACTION traders.trader:delete_selected                          login    refused  refused  refused
GET    admin:traders_shop_changelist                           login    ok       ok       ok
GET    admin:traders_shop_add                                  login    ok       ok       403
POST   admin:traders_shop_add                                  login    done     done     403
GET    admin:traders_shop_change                               login    ok       ok       ok
POST   admin:traders_shop_change                               login    403      403      403
GET    admin:traders_shop_delete                               login    403      403      403
POST   admin:traders_shop_delete                               login    403      403      403
GET    admin:traders_shop_history                              login    ok       ok       ok
GET    admin/traders/shop/<path:object_id>/                    login    next     next     next
ACTION traders.shop:delete_selected                            login    refused  refused  refused

# --- platforms and the violation catalog: supervisors maintain them -----------------------------
GET    admin:traders_platform_changelist                       login    ok       ok       ok
GET    admin:traders_platform_add                              login    403      ok       403
POST   admin:traders_platform_add                              login    403      done     403
GET    admin:traders_platform_change                           login    ok       ok       ok
POST   admin:traders_platform_change                           login    403      done     403
GET    admin:traders_platform_delete                           login    403      403      403
POST   admin:traders_platform_delete                           login    403      403      403
GET    admin:traders_platform_history                          login    ok       ok       ok
GET    admin/traders/platform/<path:object_id>/                login    next     next     next
ACTION traders.platform:delete_selected                        login    refused  refused  refused
GET    admin:penalties_violationtype_changelist                login    ok       ok       ok
GET    admin:penalties_violationtype_add                       login    403      ok       403
POST   admin:penalties_violationtype_add                       login    403      done     403
GET    admin:penalties_violationtype_change                    login    ok       ok       ok
POST   admin:penalties_violationtype_change                    login    403      done     403
GET    admin:penalties_violationtype_delete                    login    403      403      403
POST   admin:penalties_violationtype_delete                    login    403      403      403
GET    admin:penalties_violationtype_history                   login    ok       ok       ok
GET    admin/penalties/violationtype/<path:object_id>/         login    next     next     next
ACTION penalties.violationtype:delete_selected                 login    refused  refused  refused

# --- violations and evidence: officers record, attach and decide; auditors read -----------------
GET    admin:penalties_violation_changelist                    login    ok       ok       ok
GET    admin:penalties_violation_queue                         login    ok       ok       ok
POST   admin:penalties_violation_queue                         login    ok       ok       ok
GET    admin:penalties_violation_add                           login    ok       ok       403
POST   admin:penalties_violation_add                           login    done     done     403
GET    admin:penalties_violation_change                        login    ok       ok       ok
POST   admin:penalties_violation_change                        login    done     done     403
GET    admin:penalties_violation_delete                        login    403      403      403
POST   admin:penalties_violation_delete                        login    403      403      403
GET    admin:penalties_violation_history                       login    ok       ok       ok
GET    admin/penalties/violation/<path:object_id>/             login    next     next     next
ACTION penalties.violation:delete_selected                     login    refused  refused  refused
ACTION penalties.violation:confirm_selected                    login    done     done     refused
ACTION penalties.violation:reject_selected                     login    done     done     refused
POST   admin:penalties_violation_queue#confirm_selected        login    done     done     refused
POST   admin:penalties_violation_queue#reject_selected         login    done     done     refused
POST   admin:penalties_violation_changelist#grave              login    refused  done     refused
POST   admin:penalties_violation_change#decided                login    403      403      403
GET    admin:penalties_evidence_changelist                     login    ok       ok       ok
GET    admin:penalties_evidence_add                            login    403      403      403
POST   admin:penalties_evidence_add                            login    403      403      403
GET    admin:penalties_evidence_change                         login    ok       ok       ok
POST   admin:penalties_evidence_change                         login    403      403      403
GET    admin:penalties_evidence_delete                         login    403      403      403
POST   admin:penalties_evidence_delete                         login    403      403      403
GET    admin:penalties_evidence_history                        login    ok       ok       ok
GET    admin/penalties/evidence/<path:object_id>/              login    next     next     next
ACTION penalties.evidence:delete_selected                      login    refused  refused  refused
GET    penalties:evidence-download                             login    ok       ok       ok
POST   penalties:evidence-download                             405      405      405      405

# --- remedies: officers enter them, supervisors decide ------------------------------------------
GET    admin:penalties_objection_changelist                    login    ok       ok       ok
GET    admin:penalties_objection_add                           login    ok       ok       403
POST   admin:penalties_objection_add                           login    done     done     403
GET    admin:penalties_objection_change                        login    ok       ok       ok
POST   admin:penalties_objection_change                        login    403      403      403
GET    admin:penalties_objection_delete                        login    403      403      403
POST   admin:penalties_objection_delete                        login    403      403      403
GET    admin:penalties_objection_history                       login    ok       ok       ok
GET    admin/penalties/objection/<path:object_id>/             login    next     next     next
ACTION penalties.objection:delete_selected                     login    refused  refused  refused
ACTION penalties.objection:maintain_selected                   login    refused  done     refused
ACTION penalties.objection:withdraw_selected                   login    refused  done     refused
GET    admin:penalties_appeal_changelist                       login    ok       ok       ok
GET    admin:penalties_appeal_add                              login    ok       ok       403
POST   admin:penalties_appeal_add                              login    done     done     403
GET    admin:penalties_appeal_change                           login    ok       ok       ok
POST   admin:penalties_appeal_change                           login    403      403      403
GET    admin:penalties_appeal_delete                           login    403      403      403
POST   admin:penalties_appeal_delete                           login    403      403      403
GET    admin:penalties_appeal_history                          login    ok       ok       ok
GET    admin/penalties/appeal/<path:object_id>/                login    next     next     next
ACTION penalties.appeal:delete_selected                        login    refused  refused  refused
ACTION penalties.appeal:grant_selected                         login    refused  done     refused
ACTION penalties.appeal:refuse_selected                        login    refused  done     refused
GET    admin:penalties_repairapplication_changelist            login    ok       ok       ok
GET    admin:penalties_repairapplication_add                   login    ok       ok       403
POST   admin:penalties_repairapplication_add                   login    done     done     403
GET    admin:penalties_repairapplication_change                login    ok       ok       ok
POST   admin:penalties_repairapplication_change                login    403      403      403
GET    admin:penalties_repairapplication_delete                login    403      403      403
POST   admin:penalties_repairapplication_delete                login    403      403      403
GET    admin:penalties_repairapplication_history               login    ok       ok       ok
GET    admin/penalties/repairapplication/<path:object_id>/     login    next     next     next
ACTION penalties.repairapplication:delete_selected             login    refused  refused  refused
ACTION penalties.repairapplication:approve_selected            login    refused  done     refused
ACTION penalties.repairapplication:reject_selected             login    refused  done     refused

# --- policies and measures: supervisors only ----------------------------------------------------
GET    admin:penalties_policy_changelist                       login    ok       ok       ok
GET    admin:penalties_policy_add                              login    403      ok       403
POST   admin:penalties_policy_add                              login    403      done     403
GET    admin:penalties_policy_change                           login    ok       ok       ok
POST   admin:penalties_policy_change                           login    403      403      403
GET    admin:penalties_policy_delete                           login    403      403      403
POST   admin:penalties_policy_delete                           login    403      403      403
GET    admin:penalties_policy_history                          login    ok       ok       ok
GET    admin/penalties/policy/<path:object_id>/                login    next     next     next
ACTION penalties.policy:delete_selected                        login    refused  refused  refused
ACTION penalties.policy:activate_selected                      login    refused  done     refused
GET    admin:penalties_restriction_changelist                  login    ok       ok       ok
GET    admin:penalties_restriction_add                         login    403      ok       403
POST   admin:penalties_restriction_add                         login    403      done     403
GET    admin:penalties_restriction_change                      login    ok       ok       ok
POST   admin:penalties_restriction_change                      login    403      403      403
GET    admin:penalties_restriction_delete                      login    403      403      403
POST   admin:penalties_restriction_delete                      login    403      403      403
GET    admin:penalties_restriction_history                     login    ok       ok       ok
GET    admin/penalties/restriction/<path:object_id>/           login    next     next     next
ACTION penalties.restriction:delete_selected                   login    refused  refused  refused
ACTION penalties.restriction:withdraw_selected                 login    refused  done     refused
ACTION penalties.restriction:lift_selected                     login    refused  done     refused

# --- audit exports: auditors and supervisors; an export is its requester's alone ---------------
GET    audit:index                                             login    403      ok       ok
GET    audit:request                                           login    403      ok       ok
POST   audit:request                                           login    403      done     done
GET    audit:download                                          login    403      ok       ok
GET    audit:download#other                                    login    403      404      404
GET    audit:manifest                                          login    403      ok       ok
GET    audit:manifest#other                                    login    403      404      404

# --- public by design: the entry redirect, the language switch, checkpoint verification ---------
GET    /                                                       next     next     next     next
POST   set_language                                            next     next     next     next
GET    ledger:public-key                                       ok       ok       ok       ok
GET    ledger:checkpoint-latest                                ok       ok       ok       ok
"""

# URL prefixes outside the matrix, and why. Everything else must have a case.
EXEMPT_PREFIXES = {
    "api/": "the platform REST API: API keys and scopes, not staff sessions (tests/api)",
    "healthz": "probe for the load balancer, public by design (tests/ops)",
    "readyz": "probe for the load balancer, public by design (tests/ops)",
    "metrics": "Prometheus scrape: token or address, not staff sessions (tests/ops)",
}

OUTCOMES = {"ok", "next", "login", "403", "404", "405", "done", "refused"}


def _parse(text: str) -> dict[str, tuple[str, ...]]:
    table: dict[str, tuple[str, ...]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        cells = line.split()
        assert len(cells) == 2 + len(ROLES), (
            f"MATRIX line {number}: want method, case and {len(ROLES)} outcomes"
        )
        case_id, outcomes = f"{cells[0]} {cells[1]}", tuple(cells[2:])
        assert case_id not in table, f"MATRIX line {number}: {case_id} twice"
        assert set(outcomes) <= OUTCOMES, f"MATRIX line {number}: unknown outcome in {outcomes}"
        table[case_id] = outcomes
    return table


EXPECTED = _parse(MATRIX)


# --- cases ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    group: str  # the cases of one group share a test and its objects
    method: str  # GET or POST (an ACTION is a POST to the changelist)
    url: Callable[[Any, Any], str]  # (world, user or None) -> URL
    covers: str  # the URL name, or for an unnamed pattern its full route
    data: Callable[[Any], dict] = field(default=lambda world: {})


def _fill(route: str, pk: Any) -> str:
    """The URL of an admin route whose only parameter is the object's id."""
    return "/" + re.sub(r"<(?:\w+:)?\w+>", str(pk), route)


def _label(model) -> str:
    return f"{model._meta.app_label}.{model._meta.model_name}"


def _target(world, label: str):
    try:
        return world.targets[label]
    except KeyError:
        raise AssertionError(f"give {label} a target object in _world() (targets)") from None


def _admin_cases() -> list[Case]:
    cases = []
    for model, model_admin in admin.site._registry.items():
        label = _label(model)
        prefix = f"admin/{model._meta.app_label}/{model._meta.model_name}/"
        info = f"{model._meta.app_label}_{model._meta.model_name}_"
        for pattern in model_admin.get_urls():
            route = prefix + str(pattern.pattern)
            view = pattern.name.removeprefix(info) if pattern.name else None
            target = f"admin:{pattern.name}" if pattern.name else route

            def url(world, user, route=route, label=label):
                return _fill(route, _target(world, label).pk)

            methods = ["GET"]
            # POST to add, change, delete and every custom URL; not to the bare-object
            # redirect (view None), the history, or the changelist (its POSTs are the actions).
            if view not in (None, "changelist", "history"):
                methods.append("POST")
            for method in methods:
                data = _form_data(label, view) if method == "POST" else (lambda world: {})
                cases.append(Case(f"{method} {target}", label, method, url, target, data))
        for _func, name, _description in model_admin._get_base_actions():
            changelist = f"admin:{info}changelist"
            cases.append(
                Case(
                    f"ACTION {label}:{name}",
                    label,
                    "POST",
                    lambda world, user, changelist=changelist: reverse(changelist),
                    changelist,
                    lambda world, label=label, name=name: _action_data(world, label, name),
                )
            )
    return cases


def _action_data(world, label: str, name: str, target: Any = None) -> dict:
    # Every confirmation page answered at once: the action runs if the role may run it.
    return {
        "action": name,
        helpers.ACTION_CHECKBOX_NAME: [(target or _target(world, label)).pk],
        "index": 0,
        "post": "yes",
        "note": "经复核，依法处理",
        "reason": "manual",
    }


def _form_data(label: str, view: str) -> Callable[[Any], dict]:
    if view == "add" and label in ADD_DATA:
        return ADD_DATA[label]
    if view == "change" and label in CHANGE_DATA:
        return CHANGE_DATA[label]
    if view == "delete":
        return lambda world: {"post": "yes"}
    return lambda world: {}


def _export_url(name: str, *, own: bool) -> Callable[[Any, Any], str]:
    def url(world, user) -> str:
        owner = user if own and user is not None else world.exporter
        return reverse(name, args=[_export(owner).pk])

    return url


def _static(name: str, *args, query: str = "") -> Callable[[Any, Any], str]:
    return lambda world, user: reverse(name, args=args) + query


def page(
    case_id: str, group: str, *args: Any, query: str = "", data: Callable | None = None, url=None
) -> Case:
    """A case for a named URL: case_id is "GET name" or "POST name", with an optional
    "#variant"; args and query complete the URL, or url(world, user) builds it."""
    method, target = case_id.split(" ", 1)
    name = target.split("#")[0]
    return Case(
        case_id, group, method, url or _static(name, *args, query=query), name, data or (lambda world: {})
    )


def _view_on_site(world, user) -> str:
    content_type = ContentType.objects.get_for_model(world.trader)
    return reverse("admin:view_on_site", args=[content_type.pk, world.trader.pk])


def _evidence_download(world, user) -> str:
    return reverse("penalties:evidence-download", args=[world.targets["penalties.evidence"].pk])


def _decided_change(world, user) -> str:
    return reverse("admin:penalties_violation_change", args=[world.confirmed.pk])


def _late_evidence(world) -> dict:
    return {
        "evidence-TOTAL_FORMS": "0",
        "evidence-INITIAL_FORMS": "0",
        "evidence-2-TOTAL_FORMS": "1",
        "evidence-2-INITIAL_FORMS": "0",
        "evidence-2-0-upload": SimpleUploadedFile("补充照片.png", b"\x89PNG\r\n\x1a\nlate", "image/png"),
    }


AUTOCOMPLETE = "?app_label=penalties&model_name=violation&field_name=trader&term=9"

# Every URL that is not one of a ModelAdmin's. One line each; the row goes in MATRIX.
OTHER_CASES = [
    page("GET admin:index", "site"),
    page("GET admin:login", "site"),
    page("GET admin:logout", "site"),
    page("POST admin:logout", "site"),
    page("GET admin:password_change", "site"),
    page("GET admin:password_change_done", "site"),
    page("GET admin:autocomplete", "site", query=AUTOCOMPLETE),
    page("GET admin:jsi18n", "site"),
    page("GET admin:view_on_site", "site", url=_view_on_site),
    *[
        page(f"GET admin:app_list#{app_label}", "site", app_label)
        for app_label in sorted({model._meta.app_label for model in admin.site._registry})
    ],
    Case(
        "GET admin:catch_all", "site", "GET", lambda world, user: "/admin/no-such-page/", "admin/(?P<url>.*)$"
    ),
    # Object state and the services' own rules behind the same URLs: a decided violation
    # takes no evidence, an officer may not decide a grave one; the review queue's actions.
    page(
        "POST admin:penalties_violation_change#decided",
        "penalties.violation",
        url=_decided_change,
        data=_late_evidence,
    ),
    page(
        "POST admin:penalties_violation_changelist#grave",
        "penalties.violation",
        data=lambda world: _action_data(world, "", "confirm_selected", world.grave),
    ),
    *[
        page(
            f"POST admin:penalties_violation_queue#{name}",
            "penalties.violation",
            data=lambda world, name=name: _action_data(world, "penalties.violation", name),
        )
        for name in ("confirm_selected", "reject_selected")
    ],
    page("GET penalties:evidence-download", "penalties.evidence", url=_evidence_download),
    page("POST penalties:evidence-download", "penalties.evidence", url=_evidence_download),
    page("GET audit:index", "audit"),
    page("GET audit:request", "audit", "ledger"),
    page("POST audit:request", "audit", "ledger", data=lambda world: {"format": "csv"}),
    page("GET audit:download", "audit", url=_export_url("audit:download", own=True)),
    page("GET audit:download#other", "audit", url=_export_url("audit:download", own=False)),
    page("GET audit:manifest", "audit", url=_export_url("audit:manifest", own=True)),
    page("GET audit:manifest#other", "audit", url=_export_url("audit:manifest", own=False)),
    Case("GET /", "public", "GET", lambda world, user: "/", ""),
    page("POST set_language", "public", data=lambda world: {"language": "zh-hans", "next": "/admin/"}),
    page("GET ledger:public-key", "public"),
    page("GET ledger:checkpoint-latest", "public"),
]


# --- form data for the POSTs some role may make -----------------------------------------------------


def _active_rules() -> dict:
    return Policy.objects.get(is_active=True).rules


ADD_DATA: dict[str, Callable[[Any], dict]] = {
    "traders.trader": lambda world: {"uscc": factories.make_uscc(990001), "name": "杭州新登记商贸有限公司"},
    "traders.shop": lambda world: {
        "trader": world.trader.pk,
        "platform": world.platform.pk,
        "platform_shop_id": "matrix-new-shop",
        "name": "新开旗舰店",
    },
    "traders.platform": lambda world: {"code": "matrix-new", "name": "新平台", "is_active": "on"},
    "penalties.violationtype": lambda world: {
        "code": "matrix-new-type",
        "name": "组织虚假交易",
        "category": "false_advertising",
        "severity": "serious",
        "points": 120,
        "validity_days": 1095,
        "legal_basis": "《中华人民共和国电子商务法》第十七条",
        "is_active": "on",
    },
    "penalties.violation": lambda world: {
        "trader": world.trader.pk,
        "type": factories.violation_type("substandard-goods").pk,
        "occurred_on": (timezone.localdate() - dt.timedelta(days=1)).isoformat(),
        "source": "sampling",
        "description": "抽检不合格",
        "evidence-TOTAL_FORMS": "0",
        "evidence-INITIAL_FORMS": "0",
    },
    "penalties.objection": lambda world: {
        "restriction": world.proposed.pk,
        "grounds": "货源合法，有进货凭证",
    },
    "penalties.appeal": lambda world: {"violation": world.confirmed.pk, "grounds": "检测机构资质存疑"},
    "penalties.repairapplication": lambda world: {
        "restriction": world.active.pk,
        "grounds": "已下架全部涉事商品",
    },
    "penalties.policy": lambda world: {"name": "2026 修订草案", "rules": json.dumps(_active_rules())},
    "penalties.restriction": lambda world: {
        "trader": world.trader.pk,
        "measure": "warning",
        "duration_days": "30",
        "reason": "多次约谈仍未整改",
    },
    "traders.apikey": lambda world: {
        "name": "matrix key",
        "platform": world.platform.pk,
        "scopes": ["status:read"],
        "expiry_date": "",
    },
    "traders.webhookendpoint": lambda world: {
        "platform": world.platform.pk,
        "url": "https://93.184.216.34/hooks/new",
        "is_active": "on",
    },
}


def _violation_attach(world) -> dict:
    """The change page of a pending violation: attach one file (the officer's "change")."""
    violation = world.targets["penalties.violation"]
    return {
        "evidence-TOTAL_FORMS": "1",
        "evidence-INITIAL_FORMS": "1",
        "evidence-0-id": str(world.targets["penalties.evidence"].pk),
        "evidence-0-violation": str(violation.pk),
        "evidence-2-TOTAL_FORMS": "1",
        "evidence-2-INITIAL_FORMS": "0",
        "evidence-2-0-upload": SimpleUploadedFile("现场照片.png", b"\x89PNG\r\n\x1a\nmatrix", "image/png"),
    }


def _changed_type(world) -> dict:
    data = model_to_dict(world.targets["penalties.violationtype"], exclude=["id", "code"])
    data["name"] += "（修订）"
    data["is_active"] = "on" if data["is_active"] else ""
    return data


CHANGE_DATA: dict[str, Callable[[Any], dict]] = {
    "penalties.violation": _violation_attach,
    "penalties.violationtype": _changed_type,
    "traders.platform": lambda world: {"name": "改名平台", "is_active": "on"},
    "traders.webhookendpoint": lambda world: {
        "url": "https://93.184.216.34/hooks/changed",
        "is_active": "on",
    },
}

CASES = {case.id: case for case in _admin_cases() + OTHER_CASES}
GROUPS = sorted({case.group for case in CASES.values()})


# --- the objects every cell may aim at ------------------------------------------------------------


def _export(owner) -> Export:
    now = timezone.now()
    body = b"seq,action\n1,trader.registered\n"
    export = Export.objects.create(
        requested_by=owner,
        report="ledger",
        format="csv",
        state=Export.State.DONE,
        filename="ledger.csv",
        row_count=1,
        sha256=hashlib.sha256(body).hexdigest(),
        manifest={"manifest": 1, "rows": 1},
        finished_at=now,
        expires_at=now + dt.timedelta(days=1),
    )
    export.file.save("ledger.csv", ContentFile(body))  # its path needs created_at
    return export


def _restriction(state: str, **extra) -> Restriction:
    # One unlifted measure of a kind per trader: each measure gets its own trader.
    now = timezone.now()
    return Restriction.objects.create(
        trader=factories.TraderFactory(),
        measure="warning",
        state=state,
        basis="manual",
        reasons={"basis": "manual", "statement": "多次约谈仍未整改", "violations": []},
        noticed_at=now,
        **extra,
    )


def _world(users: dict) -> SimpleNamespace:
    """One object of each model, in the state its actions start from. Rows are made
    directly (cheap); the ledger gets one entry and a checkpoint over it."""
    now = timezone.now()
    clerk = factories.UserFactory(username="matrix-clerk", is_staff=True)
    platform = factories.PlatformFactory(code="matrix", name="矩阵平台")
    trader = factories.TraderFactory()
    shop = factories.ShopFactory(trader=trader, platform=platform)
    pending = factories.ViolationFactory(trader=trader, shop=shop)
    confirmed, appealed = (
        factories.ViolationFactory(trader=trader, status="confirmed", decided_by=clerk, decided_at=now)
        for _ in range(2)
    )
    grave = factories.ViolationFactory(
        trader=trader, type=factories.violation_type("counterfeit-large-scale"), recorded_by=clerk
    )
    body = b"\x89PNG\r\n\x1a\nevidence"
    evidence = Evidence.objects.create(
        violation=pending,
        file=ContentFile(body, name="photo.png"),
        original_name="现场照片.png",
        sha256=hashlib.sha256(body).hexdigest(),
        size=len(body),
        content_type="image/png",
        uploaded_by=clerk,
    )
    soon = now + dt.timedelta(days=5)
    proposed = _restriction("proposed", objection_deadline=soon)
    objected = _restriction("proposed", objection_deadline=soon)
    active = _restriction("active", starts_at=now)
    repairing = _restriction("active", starts_at=now)
    objection = Objection.objects.create(
        restriction=objected, grounds="货源合法", recorded_by=clerk, recorded_at=now, status="pending"
    )
    appeal = Appeal.objects.create(
        violation=appealed,
        grounds="检测机构资质存疑",
        filed_by=clerk,
        filed_at=now,
        deadline=now + dt.timedelta(days=30),
        status="pending",
    )
    repair = RepairApplication.objects.create(
        restriction=repairing, grounds="已整改", filed_by=clerk, filed_at=now, status="pending"
    )
    current = Policy.objects.get(is_active=True)
    draft = Policy.objects.create(version=current.version + 1, name="草案", rules=current.rules)
    entry = ledger_append(
        actor="system:matrix",
        action="trader.registered",
        subject_type="trader",
        subject_id=trader.pk,
        trader_uscc=trader.uscc,
    )
    checkpoint = Checkpoint.objects.create(
        seq=entry.seq,
        hash=entry.hash,
        at=now,
        origin="creditledger.test/matrix",
        key_id="0a1b2c3d",
        note="note\n",
    )
    api_key, _raw = ApiKey.objects.create_key(name="matrix", platform=platform, scopes=["status:read"])
    endpoint = WebhookEndpoint.objects.create(
        platform=platform,
        url="https://93.184.216.34/hooks",
        secret="whsec_" + "a" * 43,
        previous_secret="whsec_" + "b" * 43,
    )
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        msg_id="msg_matrix",
        event="restriction.applied",
        ledger_seq=entry.seq,
        payload={"type": "restriction.applied"},
        state=WebhookDelivery.State.FAILED,
        attempts=5,
    )
    targets = {
        "auth.user": clerk,
        "auth.group": Group.objects.get(name="Officer"),
        "ledger.ledgerentry": entry,
        "ledger.checkpoint": checkpoint,
        "traders.apikey": api_key,
        "traders.webhookendpoint": endpoint,
        "api.webhookdelivery": delivery,
        "traders.trader": trader,
        "traders.shop": shop,
        "traders.platform": platform,
        "penalties.violationtype": ViolationType.objects.get(code="false-advertising"),
        "penalties.violation": pending,
        "penalties.evidence": evidence,
        "penalties.objection": objection,
        "penalties.appeal": appeal,
        "penalties.repairapplication": repair,
        "penalties.policy": draft,
        "penalties.restriction": proposed,
    }
    return SimpleNamespace(
        targets=targets,
        users=users,
        exporter=clerk,
        platform=platform,
        trader=trader,
        proposed=proposed,
        active=active,
        confirmed=confirmed,
        grave=grave,
    )


# --- running a cell ---------------------------------------------------------------------------------

# Rows that say nothing about the domain: the session a login writes, and (other branches)
# login-attempt and second-factor bookkeeping.
UNWATCHED_TABLES = ("django_session", "axes_", "otp_")


def _writes() -> dict[str, int]:
    """Rows inserted, updated or deleted so far in this transaction, per watched table.

    PostgreSQL counts every row a statement touches, also in a savepoint rolled back
    later, so "no new writes" means the request did not even try to change anything.
    """
    unwatched = " AND ".join("relname NOT LIKE %s" for _ in UNWATCHED_TABLES)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_xact_user_tables "
            f"WHERE {unwatched}",
            [f"{prefix}%" for prefix in UNWATCHED_TABLES],
        )
        return {name: count for name, count in cursor.fetchall() if count}


def _written(before: dict[str, int], after: dict[str, int]) -> set[str]:
    return {name for name, count in after.items() if count != before.get(name, 0)}


def _outcome(response) -> str:
    if response.status_code in (301, 302):
        location = response["Location"]
        return "login" if location.startswith(reverse("admin:login")) else "next"
    if response.status_code == 200:
        return "ok"
    return str(response.status_code)


def _holds(expected: str, got: str, tables: set[str]) -> bool:
    if expected == "done":
        # The admin's own history (django_admin_log) alone is not the change itself.
        return got in ("ok", "next") and bool(tables - {"django_admin_log"})
    if expected == "refused":
        return got in ("ok", "next") and not tables
    return got == expected and not tables


def _run(client, case: Case, role: str, world) -> str | None:
    """None when the cell holds, else what happened instead."""
    user = world.users.get(role)
    sid = transaction.savepoint()
    try:
        client.cookies.clear()
        if user is not None:
            client.force_login(user)
        url = case.url(world, user)
        data = case.data(world)
        before = _writes()
        if case.method == "GET":
            response = client.get(url, data)
        else:
            response = client.post(url, data)
        tables = _written(before, _writes())
        got = _outcome(response)
    except Exception as exc:  # reported with the other cells, not one at a time
        return f"raised {exc!r}"
    finally:
        transaction.savepoint_rollback(sid)
    expected = EXPECTED[case.id][ROLES.index(role)]
    if _holds(expected, got, tables):
        return None
    wrote = f" and wrote {', '.join(sorted(tables))}" if tables else ""
    return f"{got}{wrote} ({response.status_code} {url})"


# --- the tests ------------------------------------------------------------------------------------


def _leaf_patterns(patterns, prefix: str = "", namespace: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            ns = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _leaf_patterns(pattern.url_patterns, prefix + str(pattern.pattern), ns)
        else:
            route = prefix + str(pattern.pattern)
            yield route, f"{namespace}{pattern.name}" if pattern.name else None


def test_every_url_has_a_case():
    covered = {case.covers for case in CASES.values()}
    uncovered = [
        name or route
        for route, name in _leaf_patterns(get_resolver().url_patterns)
        if not route.startswith(tuple(EXEMPT_PREFIXES)) and (name or route) not in covered
    ]
    suggestions = "\n".join(f'    page("GET {target}", "<group>"),' for target in uncovered)
    assert not uncovered, (
        f"URLs the access matrix has no case for: {uncovered}. Add to OTHER_CASES in {__file__}:\n"
        f"{suggestions}\nand a row to MATRIX for each (or exempt the prefix, with the reason)."
    )


def test_every_case_has_a_row_and_every_row_a_case():
    missing = [case_id for case_id in CASES if case_id not in EXPECTED]
    template = "\n".join(f"{case_id:62} {'  '.join('?' * len(ROLES))}" for case_id in missing)
    assert not missing, (
        f"cases without a row in MATRIX; copy these lines into it with each role's outcome "
        f"({' '.join(ROLES)}):\n{template}"
    )
    stale = [case_id for case_id in EXPECTED if case_id not in CASES]
    assert not stale, f"MATRIX rows for cases that no longer exist: {stale}"


def test_every_admin_model_has_a_target_object(officer, supervisor, auditor):
    world = _world({"officer": officer, "supervisor": supervisor, "auditor": auditor})
    missing = {_label(model) for model in admin.site._registry} - set(world.targets)
    assert not missing, f"give these admin models a target object in _world() (targets): {sorted(missing)}"


@pytest.mark.parametrize("group", GROUPS)
def test_each_role_gets_what_the_matrix_says(client, officer, supervisor, auditor, group):
    world = _world({"anonymous": None, "officer": officer, "supervisor": supervisor, "auditor": auditor})
    failures = []
    for case in (c for c in CASES.values() if c.group == group and c.id in EXPECTED):
        for role in ROLES:
            problem = _run(client, case, role, world)
            if problem is not None:
                expected = EXPECTED[case.id][ROLES.index(role)]
                failures.append(f"{case.id:55} {role:10} expected {expected:7} got {problem}")
    assert not failures, "access matrix mismatches:\n" + "\n".join(failures)
