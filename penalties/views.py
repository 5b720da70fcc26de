"""Evidence download for staff. Evidence files are not served from MEDIA_URL."""

from __future__ import annotations

import base64

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from penalties.models import Evidence
from traders.jurisdiction import scope_of


@require_safe
@staff_member_required
def evidence_download(request: HttpRequest, pk: int) -> FileResponse:
    """Stream one evidence file as an attachment, named as it was uploaded."""
    if not request.user.has_perm("penalties.view_evidence"):
        raise PermissionDenied
    # Another area's evidence is a 404, like a missing one: ids reveal nothing.
    in_scope = scope_of(request.user).filter(Evidence.objects.all(), "violation__trader__region")
    evidence = get_object_or_404(in_scope, pk=pk)
    storage = evidence.file.storage
    try:
        handle = storage.open(evidence.file.name, "rb")
    except FileNotFoundError as exc:
        raise Http404(_("The evidence file is missing from storage.")) from exc
    # Always an attachment: a browser must never render an uploaded file in our origin.
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=evidence.original_name,
        content_type=evidence.content_type,
    )
    # The digest recorded at upload (and in the ledger), so a download can be checked.
    digest = base64.b64encode(bytes.fromhex(evidence.sha256)).decode("ascii")
    response["Repr-Digest"] = f"sha-256=:{digest}:"
    response["ETag"] = f'"{evidence.sha256}"'
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
