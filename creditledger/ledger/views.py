"""Public ledger endpoints: what an auditor needs to check checkpoints outside the system."""

from __future__ import annotations

from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from creditledger.ledger import selectors, signing


@require_GET
def public_key(request):
    return JsonResponse(signing.public_key_info())


@require_GET
@never_cache
def latest_checkpoint(request):
    checkpoint = selectors.latest_checkpoint()
    if checkpoint is None:
        return HttpResponse("no checkpoint yet\n", status=404, content_type="text/plain; charset=utf-8")
    return HttpResponse(checkpoint.note, content_type="text/plain; charset=utf-8")
