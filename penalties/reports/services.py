"""Export jobs: request one, run it (claimed compare-and-swap, streamed to a temporary file,
then to storage with its manifest), expire old ones. Also the one function the CLI and
the job share to turn a report into a file and a manifest.

Exports read. The request is recorded in the ledger (`export.requested`: who asked for
which register, with which filters and over which jurisdiction); the job writes no entry,
only a signed checkpoint when the ledger head moved since the last one
(manifest.ledger_anchor).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import tempfile
from collections.abc import Callable, Mapping

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from creditledger.exceptions import ApplicationError, require_perm
from creditledger.ledger.actors import Actor
from creditledger.ledger.services import ledger_append
from creditledger.tasks import TRANSIENT_ERRORS
from penalties import reports
from penalties.models import Export
from penalties.reports import formats, manifest
from penalties.reports.base import Exporter
from traders.jurisdiction import Scope, actor_scope

log = logging.getLogger(__name__)

State = Export.State
PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


def job_time_limit() -> int:
    """Seconds an export job may run: as long as the broker lets a task run before it hands
    the message to another worker (a 500k-row XLSX takes minutes), and never less than the
    project's task time limit."""
    broker_allows = settings.CELERY_VISIBILITY_TIMEOUT - settings.CELERY_RETRY_BACKOFF_MAX - 60
    return max(settings.CELERY_TASK_TIME_LIMIT, broker_allows)


def keep_days() -> int:
    """How long a finished export's file is kept before it expires."""
    return int(getattr(settings, "EXPORTS_KEEP_DAYS", 7))


def export_filename(report: str, file_format: str, at: dt.datetime) -> str:
    return f"{report}-{timezone.localtime(at):%Y%m%d-%H%M%S}.{file_format}"


def export_to_file(
    exporter: Exporter,
    file_format: str,
    path: str,
    *,
    generated_by: str,
    filename: str = "",
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Write the report to `path` and return its manifest."""
    generated_at = timezone.now()
    heading = formats.Heading(str(exporter.title), exporter.filters_display(), generated_at)
    written = formats.write(file_format, exporter, path, heading, progress)
    return manifest.build(
        report=exporter.name,
        title=str(exporter.title),
        file_format=file_format,
        filename=filename or export_filename(exporter.name, file_format, generated_at),
        filters=exporter.filters_json(),
        written=written,
        path=path,
        generated_at=generated_at,
        generated_by=generated_by,
        anchor=manifest.ledger_anchor(),
        scope=exporter.jurisdiction.as_json(),
    )


# --- jobs ---------------------------------------------------------------------------------


def export_request(
    *,
    actor: Actor,
    report: str,
    file_format: str,
    filters: Mapping[str, object],
    language: str | None = None,
) -> Export:
    """Record the request and queue the job once it commits. Filters are validated now, so
    a bad request fails here with the filter named, never in the worker. The export covers
    the requester's jurisdiction, recorded with it so the job exports that and no more. The
    file is written in `language` (default: the active one), so a Chinese auditor's register
    has Chinese headers and labels; codes, USCCs and ISO dates are the same in every language."""
    require_perm(actor, "penalties.export_report", _("You may not export reports."))
    scope = actor_scope(actor)
    exporter = reports.build(report, file_format, dict(filters), scope=scope)
    with transaction.atomic():
        export = Export.objects.create(
            requested_by=actor.user,
            report=report,
            format=file_format,
            filters=exporter.filters_json(),
            scope=scope.as_json(),
            rows_total=None,
            language=export_language(language),
        )
        ledger_append(
            actor=actor,
            action="export.requested",
            subject_type="export",
            subject_id=export.pk,
            payload={
                "kind": report,
                "format": file_format,
                "filters": export.filters,
                "scope": export.scope,
                "language": export.language,
            },
        )
        export_id = export.pk
        transaction.on_commit(lambda: enqueue_export(export_id))
    return export


def export_language(language: str | None) -> str:
    """One of LANGUAGES: the one asked for, else the active language, else the site's."""
    for candidate in (language, translation.get_language()):
        if candidate:
            try:
                return translation.get_supported_language_variant(candidate)
            except LookupError:
                continue
    return settings.LANGUAGE_CODE


def enqueue_export(export_id: int) -> None:
    """Publish the job. If the broker cannot take it, say so on the export at once: the
    auditor sees a failed export and asks again, instead of waiting on a lost message."""
    from penalties.reports.tasks import export_run  # tasks import services: import late

    try:
        export_run.apply_async(args=[export_id], retry_policy=PUBLISH_RETRY)
    except Exception:
        log.exception("export %s: could not queue the job", export_id)
        Export.objects.filter(pk=export_id, state=State.REQUESTED).update(
            state=State.FAILED,
            error=_("The job queue is unavailable; request the export again."),
            finished_at=timezone.now(),
        )


def _claim(export_id: int, now: dt.datetime) -> bool:
    """requested → running, or take over a run whose worker died: a job runs at most its
    time limit, so one still "running" after that is dead."""
    stale = now - dt.timedelta(seconds=job_time_limit())
    claimable = Q(state=State.REQUESTED) | Q(state=State.RUNNING, started_at__lt=stale)
    return bool(
        Export.objects.filter(claimable, pk=export_id).update(
            state=State.RUNNING, started_at=now, rows_done=0, error=""
        )
    )


def export_run(*, export_id: int) -> Export | None:
    """Run one export. Safe to call twice: a second call finds it claimed or done and
    returns None. Transient database errors hand the job back (requested) and re-raise,
    so the task's retry can claim it again; any other error marks it failed."""
    now = timezone.now()
    if not _claim(export_id, now):
        log.info("export %s: already claimed or finished", export_id)
        return None
    export = Export.objects.select_related("requested_by").get(pk=export_id)
    try:
        with translation.override(export.language or settings.LANGUAGE_CODE):
            _run(export)
    except TRANSIENT_ERRORS:
        Export.objects.filter(pk=export_id, state=State.RUNNING).update(state=State.REQUESTED)
        raise
    except Exception as exc:
        log.exception("export %s failed", export_id)
        message = str(exc) if isinstance(exc, ApplicationError | formats.ExportTooLarge) else repr(exc)
        Export.objects.filter(pk=export_id, state=State.RUNNING).update(
            state=State.FAILED, error=message[:2000], finished_at=timezone.now()
        )
    exports_expire(now=timezone.now())  # a cheap sweep: each run clears what has expired
    export.refresh_from_db()
    return export


def _run(export: Export) -> None:
    exporter = reports.build(
        export.report, export.format, export.filters, scope=Scope.from_json(export.scope)
    )
    total = exporter.count()
    if total is not None:
        Export.objects.filter(pk=export.pk).update(rows_total=total)

    def progress(rows: int) -> None:
        Export.objects.filter(pk=export.pk, state=State.RUNNING).update(rows_done=rows)

    filename = export_filename(export.report, export.format, export.started_at)
    fd, path = tempfile.mkstemp(prefix=f"export-{export.pk}-", suffix=f".{export.format}")
    os.close(fd)
    try:
        data = export_to_file(
            exporter,
            export.format,
            path,
            generated_by=str(Actor.for_user(export.requested_by)),
            filename=filename,
            progress=progress,
        )
        with open(path, "rb") as handle:
            stored = export.file.storage.save(
                export.file.field.generate_filename(
                    export, f"{export.pk}-{secrets.token_hex(8)}.{export.format}"
                ),
                File(handle),
            )
    finally:
        os.unlink(path)
    finished = timezone.now()
    done = Export.objects.filter(pk=export.pk, state=State.RUNNING).update(
        state=State.DONE,
        file=stored,
        filename=filename,
        row_count=data["row_count"],
        rows_done=data["row_count"],
        sha256=data["sha256"],
        manifest=data,
        finished_at=finished,
        expires_at=finished + dt.timedelta(days=keep_days()),
    )
    if not done:  # taken over meanwhile (we were thought dead): theirs stands
        export.file.storage.delete(stored)


def exports_expire(*, now: dt.datetime) -> int:
    """Delete the files of finished exports past their expiry; they become `expired`."""
    expired = 0
    due = Export.objects.filter(state=State.DONE, expires_at__lte=now).values_list("pk", "file")
    for pk, name in list(due[:500]):
        if Export.objects.filter(pk=pk, state=State.DONE).update(state=State.EXPIRED, file=""):
            if name:
                Export.file.field.storage.delete(name)
            expired += 1
    return expired
