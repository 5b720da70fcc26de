"""Auditor reports: registers, summaries and credit files, exported as CSV, XLSX or PDF.

- base.py: Column, Filter, Section and the Exporter base class
- registers.py, summaries.py, creditfile.py, ledger.py: the reports
- formats.py: the file writers; manifest.py: the manifest and its verification
- services.py: export jobs (request, run, expire); tasks.py: the Celery task
- views.py, urls.py: the audit pages under /audit/
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from penalties.exports.base import Exporter, FilterError
from penalties.exports.creditfile import CreditFile
from penalties.exports.ledger import LedgerExtract
from penalties.exports.registers import MeasuresRegister, ViolationsRegister
from penalties.exports.summaries import GradeDistribution, PlatformCompliance
from traders.jurisdiction import NATIONAL, Scope

REPORTS: dict[str, type[Exporter]] = {
    cls.name: cls
    for cls in (
        ViolationsRegister,
        MeasuresRegister,
        PlatformCompliance,
        GradeDistribution,
        CreditFile,
        LedgerExtract,
    )
}


def get_report(name: str) -> type[Exporter]:
    try:
        return REPORTS[name]
    except KeyError:
        message = _("Unknown report %(name)s; there are: %(names)s.") % {
            "name": name,
            "names": ", ".join(REPORTS),
        }
        raise FilterError(message, field="report", code="unknown_report") from None


def build(name: str, file_format: str, filters: dict, scope: Scope = NATIONAL) -> Exporter:
    """The exporter for `name` with its filters validated, for a format it offers, over
    the traders of `scope` (national from the command line, the user's on the audit pages)."""
    cls = get_report(name)
    if file_format not in cls.formats:
        message = _("This report comes as %(formats)s.") % {"formats": ", ".join(cls.formats)}
        raise FilterError(message, field="format", code="invalid_choice", value=file_format)
    return cls(filters, jurisdiction=scope)


__all__ = ["REPORTS", "Exporter", "FilterError", "build", "get_report"]
