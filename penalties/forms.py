"""Admin forms for violations and evidence. They validate input; the services write."""

from __future__ import annotations

import mimetypes
from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from creditledger.ledger.actors import Actor
from creditledger.ledger.admin import ServiceForm
from penalties import services
from penalties.models import Evidence, Violation


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


class RejectForm(forms.Form):
    note = forms.CharField(
        label=_("reason for rejecting"),
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        max_length=2000,
    )
