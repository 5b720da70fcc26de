"""Platforms' reports of suspected violations: the violation and its evidence, all or nothing."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import IO

from django.conf import settings
from django.db import transaction

from creditledger.exceptions import ApplicationError
from creditledger.ledger.actors import Actor
from penalties import evidence_types
from penalties.models import Violation, ViolationType
from penalties.services.violations import CHUNK, _content_type, evidence_attach, violation_record
from traders.models import Shop, Trader


@transaction.atomic
def report_submit(
    *,
    actor: Actor,
    trader: Trader,
    type: ViolationType,
    occurred_on: dt.date,
    description: str,
    shop: Shop | None = None,
    goods_value=None,
    files: Sequence[IO[bytes]] = (),
) -> Violation:
    """Record a reported violation (pending review) with every evidence file, in one transaction.

    The files are checked (size, type, repeats) before anything is written, so a bad file
    leaves neither rows nor stored files behind; errors name the file as "files.N".
    """
    _check_files(files)
    violation = violation_record(
        actor=actor,
        trader=trader,
        type=type,
        occurred_on=occurred_on,
        source=Violation.Source.PLATFORM_REPORT,
        reporting_platform=actor.platform,
        description=description,
        shop=shop,
        goods_value=goods_value,
    )
    for index, upload in enumerate(files):
        try:
            evidence_attach(actor=actor, violation=violation, upload=upload)
        except ApplicationError as exc:
            raise _for_file(exc, index) from exc
    return violation


def _check_files(files: Sequence[IO[bytes]]) -> None:
    seen: dict[str, int] = {}
    for index, upload in enumerate(files):
        try:
            declared = _content_type(upload, None, getattr(upload, "name", "") or "evidence")
            digest = _digest(upload, settings.EVIDENCE_MAX_BYTES)
            evidence_types.check_content(upload.read(evidence_types.HEAD_BYTES), declared)
            upload.seek(0)
        except ApplicationError as exc:
            raise _for_file(exc, index) from exc
        if digest in seen:
            raise ApplicationError(
                f"The same file as files.{seen[digest]}.",
                field=f"files.{index}",
                code="duplicate",
                value=digest,
            )
        seen[digest] = index


def _digest(upload: IO[bytes], limit: int) -> str:
    """SHA-256 of the upload, stopping past `limit` bytes; the upload is rewound after."""
    digest, size = hashlib.sha256(), 0
    upload.seek(0)
    for chunk in iter(lambda: upload.read(CHUNK), b""):
        size += len(chunk)
        if size > limit:
            raise ApplicationError(
                f"The file is larger than the limit of {limit} bytes.", code="too_large", value=size
            )
        digest.update(chunk)
    upload.seek(0)
    if size == 0:
        raise ApplicationError("The file is empty.", code="empty")
    return digest.hexdigest()


def _for_file(exc: ApplicationError, index: int) -> ApplicationError:
    return ApplicationError(exc.message, field=f"files.{index}", code=exc.code, value=exc.value)
