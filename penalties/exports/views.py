"""The audit pages: the reports, a form to request one, the caller's exports and their
downloads. For staff with penalties.export_report (auditors and supervisors); an export
is downloaded only by the user who requested it — anyone else gets a 404, so export ids
reveal nothing."""

from __future__ import annotations

import functools

from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_safe

from creditledger.exceptions import ApplicationError
from creditledger.ledger import selectors as ledger_selectors
from creditledger.ledger.actors import Actor
from creditledger.ledger.witnesses import checkpoint_witnesses
from penalties.exports import REPORTS, formats, get_report, manifest
from penalties.exports.base import FilterError
from penalties.exports.forms import FORMAT_LABELS, ExportRequestForm
from penalties.exports.services import export_request
from penalties.models import Export
from traders.jurisdiction import scope_of

PERMISSION = "penalties.export_report"
RECENT = 50  # exports listed on the page
RECENT_CHECKPOINTS = 5  # with the witnesses that cosigned each


def auditor_required(view):
    @staff_member_required
    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs):
        if not request.user.has_perm(PERMISSION):
            raise PermissionDenied
        request.current_app = admin.site.name
        return view(request, *args, **kwargs)

    return wrapped


def _context(request: HttpRequest, title: str, **extra) -> dict:
    return {**admin.site.each_context(request), "title": title, **extra}


@require_safe
@auditor_required
def index(request: HttpRequest) -> HttpResponse:
    exports = list(Export.objects.filter(requested_by=request.user).order_by("-created_at", "-id")[:RECENT])
    now = timezone.now()
    for export in exports:
        export.is_available = export.state == Export.State.DONE and export.expires_at > now
        export.report_title = REPORTS[export.report].title if export.report in REPORTS else export.report
    reports = [
        {"name": cls.name, "title": cls.title, "description": cls.description, "formats": cls.formats}
        for cls in REPORTS.values()
    ]
    busy = any(e.state in (Export.State.REQUESTED, Export.State.RUNNING) for e in exports)
    checkpoints = [
        {"checkpoint": c, "witnesses": checkpoint_witnesses(c)}
        for c in ledger_selectors.recent_checkpoints(RECENT_CHECKPOINTS)
    ]
    context = _context(
        request,
        _("Audit exports"),
        reports=reports,
        exports=exports,
        busy=busy,
        format_labels=FORMAT_LABELS,
        checkpoints=checkpoints,
    )
    return render(request, "audit/index.html", context)


@require_http_methods(["GET", "HEAD", "POST"])
@auditor_required
def request_export(request: HttpRequest, name: str) -> HttpResponse:
    if name not in REPORTS:
        raise Http404
    exporter = get_report(name)
    form = ExportRequestForm(exporter, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            export = export_request(
                actor=Actor.for_user(request.user),
                report=name,
                file_format=form.cleaned_data["format"],
                filters=form.filters(),
                language=request.LANGUAGE_CODE,
            )
        except FilterError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("Export #%(id)s is queued.") % {"id": export.pk})
            return redirect("audit:index")
    context = _context(request, exporter.title, exporter=exporter, form=form, scope=scope_of(request.user))
    return render(request, "audit/request.html", context)


def _own_export(request: HttpRequest, pk: int) -> Export:
    return get_object_or_404(Export, pk=pk, requested_by=request.user)


@require_safe
@auditor_required
def download(request: HttpRequest, pk: int) -> FileResponse:
    export = _own_export(request, pk)
    if export.state != Export.State.DONE or not export.file or export.expires_at <= timezone.now():
        raise Http404(_("This export has no file to download."))
    try:
        handle = export.file.storage.open(export.file.name, "rb")
    except FileNotFoundError as exc:
        raise Http404(_("The export file is missing from storage.")) from exc
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=export.filename,
        content_type=formats.CONTENT_TYPES[export.format],
    )
    response["ETag"] = f'"{export.sha256}"'
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_safe
@auditor_required
def download_manifest(request: HttpRequest, pk: int) -> HttpResponse:
    export = _own_export(request, pk)
    if export.state not in (Export.State.DONE, Export.State.EXPIRED) or not export.manifest:
        raise Http404(_("This export has no manifest yet."))
    response = HttpResponse(manifest.dumps(export.manifest), content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{export.filename}.manifest.json"'
    response["Cache-Control"] = "private, no-store"
    return response
