from __future__ import annotations

from django.http import JsonResponse


def public_key(request):
    from creditledger.ledger.signing import public_key_info

    return JsonResponse(public_key_info())
