"""Idempotent writes: a platform's retry of a POST gets the stored answer, not a second write.

The first request with a key claims it by inserting its IdempotencyRecord at the start of
the write transaction, and fills in the response at the end: the record and the writes
commit together or not at all. A concurrent duplicate blocks on the unique constraint
until the first one ends; if that one committed, the duplicate answers with its stored
response, and if it failed (a 4xx writes nothing, the claim included), the duplicate goes
ahead on its own. Only successful responses are stored, so a corrected retry is welcome.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from typing import Any

from django.db import IntegrityError, transaction
from django.http import QueryDict
from django.utils.translation import gettext as _
from rest_framework import status
from rest_framework.response import Response

from creditledger.api.auth import platform_of
from creditledger.api.models import IdempotencyRecord
from creditledger.exceptions import ApplicationError

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 200

# perform() runs inside the transaction and returns (status code, JSON body).
Perform = Callable[[], tuple[int, dict[str, Any]]]


class _Claimed(Exception):
    """Another request committed this key between our look-up and our claim."""


def idempotency_key(request, *, required: bool) -> str | None:
    key = request.headers.get(HEADER, "").strip()
    if not key:
        if required:
            raise ApplicationError(
                _("Send an %(header)s header: a unique value per report, reused only for retries.")
                % {"header": HEADER},
                field=HEADER,
                code="required",
            )
        return None
    if len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise ApplicationError(
            _("At most %(n)d printable ASCII characters.") % {"n": MAX_KEY_LENGTH},
            field=HEADER,
            code="invalid",
        )
    return key


def request_fingerprint(request, *, files: Iterable[tuple[str, str, str]] = ()) -> str:
    """SHA-256 of the request in canonical form: method, path, parsed fields, file digests.

    `files` are (field, name, sha256) triples. Key order and JSON whitespace do not count.
    """
    data = request.data
    if isinstance(data, QueryDict):
        fields: Any = {name: data.getlist(name) for name in data if name not in request.FILES}
    else:
        fields = data
    document = {
        "method": request.method,
        "path": request.path,
        "fields": fields,
        "files": sorted(files),
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def file_digest(upload) -> str:
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


def run_once(request, *, key: str | None, fingerprint: str, perform: Perform) -> Response:
    """Run `perform` in one transaction with the key's record; answer a repeat from the record."""
    if key is None:
        with transaction.atomic():
            code, body = perform()
        return Response(body, status=code)
    platform = platform_of(request)
    stored = _stored(platform, key)
    if stored is not None:
        return _replay(stored, fingerprint)
    try:
        with transaction.atomic():
            record = _claim(request, platform, key, fingerprint)
            code, body = perform()
            record.status_code, record.response_body = code, body
            record.save(update_fields=["status_code", "response_body"])
    except _Claimed:
        return _replay(IdempotencyRecord.objects.get(platform=platform, key=key), fingerprint)
    return Response(body, status=code)


def _stored(platform, key: str) -> IdempotencyRecord | None:
    return IdempotencyRecord.objects.filter(platform=platform, key=key).first()


def _claim(request, platform, key: str, fingerprint: str) -> IdempotencyRecord:
    record = IdempotencyRecord(
        platform=platform,
        key=key,
        method=request.method,
        path=request.path[:300],
        request_hash=fingerprint,
        status_code=0,  # filled in before commit; nobody sees the claim before then
        response_body={},
        api_key=request.auth,
    )
    try:
        with transaction.atomic():
            record.save()
    except IntegrityError as exc:
        raise _Claimed from exc
    return record


def _replay(record: IdempotencyRecord, fingerprint: str) -> Response:
    if record.request_hash != fingerprint:
        message = _(
            "This Idempotency-Key was already used for a different request; use a new key for a new request."
        )
        return Response(
            {"code": "idempotency_key_reused", "message": message, "fields": {HEADER: [message]}},
            status=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    return Response(record.response_body, status=record.status_code, headers={REPLAYED_HEADER: "true"})
