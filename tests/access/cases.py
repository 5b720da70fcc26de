"""The cases: every admin URL and action (enumerated from admin.site), and the other
staff URLs (OTHER_CASES), with the form data a permitted POST needs."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.forms.models import model_to_dict
from django.urls import reverse
from django.utils import timezone

from penalties.models import (
    Policy,
)
from tests import factories
from tests.access.world import make_export

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


def label_of(model) -> str:
    return f"{model._meta.app_label}.{model._meta.model_name}"


def _target(world, label: str):
    try:
        return world.targets[label]
    except KeyError:
        raise AssertionError(f"give {label} a target object in tests/access/world.py (targets)") from None


def _admin_cases() -> list[Case]:
    cases = []
    for model, model_admin in admin.site._registry.items():
        label = label_of(model)
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
        return reverse(name, args=[make_export(owner).pk])

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
    # The second sign-in step. force_login gives a verified session with a confirmed
    # device, so set-up and verification send staff on; a POST without a code renews nothing.
    page("GET otp-verify", "account"),
    page("POST otp-verify", "account"),
    page("GET otp-setup", "account"),
    page("POST otp-setup", "account"),
    page("GET otp-backup-codes", "account"),
    page("POST otp-backup-codes", "account"),
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
