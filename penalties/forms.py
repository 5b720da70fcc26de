"""Admin forms for violations, evidence, measures and policies. They validate input; the
services write."""

from __future__ import annotations

import json
import mimetypes
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.admin.helpers import ActionForm
from django.utils.translation import gettext_lazy as _

from creditledger.exceptions import ApplicationError
from creditledger.ledger.actors import Actor
from creditledger.ledger.admin import ServiceForm
from penalties import services
from penalties.models import Evidence, LiftedReason, Policy, Restriction, Violation
from penalties.policy import PolicyError, PolicyRules


class ViolationRecordForm(ServiceForm):
    class Meta:
        model = Violation
        fields = (
            "trader",
            "shop",
            "type",
            "occurred_on",
            "source",
            "reporting_platform",
            "description",
            "goods_value",
        )
        help_texts = {
            "shop": _("Optional; it must be operated by the trader."),
            "reporting_platform": _("Only for a platform report."),
        }

    def call_service(self, actor: Actor, data: dict[str, Any]) -> Violation:
        return services.violation_record(
            actor=actor,
            trader=data["trader"],
            shop=data.get("shop"),
            type=data["type"],
            occurred_on=data["occurred_on"],
            source=data["source"],
            reporting_platform=data.get("reporting_platform"),
            description=data["description"],
            goods_value=data.get("goods_value"),
        )


class EvidenceUploadForm(forms.ModelForm):
    """One new evidence file. Attached by evidence_attach once the whole page validates."""

    upload = forms.FileField(label=_("file"))

    class Meta:
        model = Evidence
        fields = ("upload",)
        # The inline's column header reads the label from here on pages where the row is
        # read-only, and would otherwise show the bare field name.
        labels = {"upload": _("file")}

    def clean_upload(self):
        upload = self.cleaned_data["upload"]
        # The service is the authority and checks both again while it streams (same
        # settings); checking here too keeps a violation from being recorded while its
        # attachment is refused.
        if upload.size > settings.EVIDENCE_MAX_BYTES:
            raise forms.ValidationError(
                _("The file is larger than the limit of %(limit)s bytes."),
                params={"limit": settings.EVIDENCE_MAX_BYTES},
                code="too_large",
            )
        declared = (upload.content_type or "").split(";")[0].strip().lower()
        if not declared or declared == "application/octet-stream":
            declared = (mimetypes.guess_type(upload.name)[0] or "application/octet-stream").lower()
        if declared not in settings.EVIDENCE_CONTENT_TYPES:
            raise forms.ValidationError(
                _("Files of type %(type)s are not accepted as evidence (accepted: %(accepted)s)."),
                params={"type": declared, "accepted": ", ".join(settings.EVIDENCE_CONTENT_TYPES)},
                code="content_type",
            )
        return upload

    def _post_clean(self) -> None:
        # Nothing of the model is on this form; evidence_attach fills and validates the row.
        pass


class DecisionActionForm(ActionForm):
    """The violation lists' action bar, with the decision's note beside the action: the
    note goes with a confirmation; a rejection asks for its reason on the next page (this
    note fills it in)."""

    note = forms.CharField(label=_("note"), required=False, max_length=2000)


class RejectForm(forms.Form):
    note = forms.CharField(
        label=_("reason for rejecting"),
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        max_length=2000,
    )


# --- measures ------------------------------------------------------------------------------


class RestrictionImposeForm(ServiceForm):
    """A supervisor's measure: restriction_impose decides the notice period and the state."""

    reason = forms.CharField(
        label=_("statement of reasons"),
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80}),
        max_length=4000,
        help_text=_("What the trader is told: the facts and the grounds for the measure."),
    )
    duration_days = forms.IntegerField(
        label=_("duration (days)"),
        required=False,
        min_value=1,
        help_text=_("Leave empty for a measure that lasts until it is lifted by hand."),
    )

    class Meta:
        model = Restriction
        fields = ("trader", "measure", "duration_days", "reason")
        help_texts = {
            "measure": _(
                "A measure with notice days in the active policy starts as proposed: the trader "
                "may object until the deadline, and it takes effect by itself after it."
            ),
        }

    def call_service(self, actor: Actor, data: dict[str, Any]) -> Restriction:
        return services.restriction_impose(
            actor=actor,
            trader=data["trader"],
            measure=data["measure"],
            reason=data["reason"],
            duration_days=data.get("duration_days"),
        )


class WithdrawForm(forms.Form):
    note = forms.CharField(
        label=_("reason for withdrawing"),
        help_text=_("The objection that was upheld, and why."),
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        max_length=2000,
    )


class LiftForm(forms.Form):
    reason = forms.ChoiceField(
        label=_("lifted because"),
        choices=[
            (LiftedReason.MANUAL.value, LiftedReason.MANUAL.label),
            (LiftedReason.REPAIRED.value, LiftedReason.REPAIRED.label),
        ],
        initial=LiftedReason.MANUAL.value,
    )
    note = forms.CharField(
        label=_("reason for lifting"),
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        max_length=2000,
    )


# --- policies ------------------------------------------------------------------------------


def pretty_json(value: Any, indent: int = 0) -> str:
    """Indented JSON with sorted keys, short lists of plain values kept on one line
    (["A", 900] rather than four lines): the way a person reads and edits policy rules."""
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(value, dict) and value:
        items = [
            f"{inner}{json.dumps(str(k), ensure_ascii=False)}: {pretty_json(v, indent + 2)}"
            for k, v in sorted(value.items())
        ]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        items = [f"{inner}{pretty_json(v, indent + 2)}" for v in value]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return json.dumps(value, ensure_ascii=False)


class PrettyJSONField(forms.JSONField):
    """JSON in a textarea, laid out so a person can read and edit it."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return pretty_json(value)


class PolicyDraftForm(ServiceForm):
    rules = PrettyJSONField(
        label=_("rules"),
        widget=forms.Textarea(attrs={"rows": 36, "cols": 90, "class": "monospace"}),
        help_text=_(
            "Grade cut-offs, the measure per grade, notice days per measure, escalation rules, "
            "points overrides. Checked when you save; activation is a separate step."
        ),
    )

    class Meta:
        model = Policy
        fields = ("name", "rules")

    def clean_rules(self) -> dict:
        rules = self.cleaned_data["rules"]
        if not isinstance(rules, dict):
            raise forms.ValidationError(_("The rules must be one JSON object {…}."), code="invalid_policy")
        # The service validates and names the rule at fault (shown on this field). Only
        # input its validator cannot even read (e.g. a number where a list belongs) is
        # caught here, so that it is a field error rather than a server error.
        try:
            PolicyRules.from_dict(rules)
        except PolicyError:
            pass
        except (TypeError, AttributeError, ValueError) as exc:
            raise forms.ValidationError(
                _("The rules do not have the expected shape: %(error)s"),
                params={"error": exc},
                code="invalid_policy",
            ) from exc
        return rules

    def call_service(self, actor: Actor, data: dict[str, Any]) -> Policy:
        try:
            return services.policy_create(actor=actor, name=data["name"], rules=data["rules"])
        except ApplicationError as exc:
            if exc.field and exc.field.startswith("rules."):
                where = exc.field.removeprefix("rules.")
                raise ApplicationError(
                    f"{where}: {exc.message}", field="rules", code=exc.code, value=exc.value
                ) from exc
            raise
