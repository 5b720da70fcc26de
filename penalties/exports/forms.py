"""The request form of a report, built from its filter schema."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from penalties.exports.base import Exporter, Filter

FORMAT_LABELS = {"csv": "CSV (UTF-8)", "xlsx": "Excel (XLSX)", "pdf": "PDF"}


def _field(spec: Filter) -> forms.Field:
    common = {"label": spec.label, "required": spec.required, "help_text": spec.help}
    if spec.kind == "date":
        return forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), **common)
    if spec.kind == "int":
        return forms.IntegerField(min_value=spec.minimum, **common)
    if spec.kind == "choice":
        choices = list(spec.choices())
        if not spec.default:
            choices.insert(0, ("", "---------"))
        return forms.ChoiceField(choices=choices, initial=spec.default, **common)
    return forms.CharField(max_length=64, **common)


class ExportRequestForm(forms.Form):
    def __init__(self, exporter: type[Exporter], *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.exporter = exporter
        for spec in exporter.filters:
            self.fields[spec.name] = _field(spec)
        self.fields["format"] = forms.ChoiceField(
            label=_("format"),
            choices=[(f, FORMAT_LABELS[f]) for f in exporter.formats],
            initial=exporter.formats[0],
            widget=forms.RadioSelect,
        )

    def filters(self) -> dict:
        """The filters as the exporter parses them (it validates them again)."""
        return {spec.name: self.cleaned_data.get(spec.name) for spec in self.exporter.filters}
