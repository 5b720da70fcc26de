"""Export jobs: request one, run it (claimed compare-and-swap, streamed to a temporary file,
then to storage with its manifest), sweep the stuck ones, expire old ones. Also the one
function the CLI and the job share to turn a report into a file and a manifest.

Exports read. The ledger records each export's life: `export.requested` (who asked for
which register, with which filters and over which jurisdiction), then, in the
transaction that finishes it, `export.completed` (the file's SHA-256 and size, the
manifest's own SHA-256, the ledger anchor the manifest cites: what verify_export checks
a file against) or `export.failed` (why) once it has failed for good. None of them is in
the platforms' change feed. The job also signs a checkpoint when the ledger head moved
since the last one (manifest.ledger_anchor).

Each time the job is handed to a worker is an attempt (Export.attempts): the request's
message, and each time the sweeper queues it again because its worker stopped writing
(EXPORT_STUCK_SECONDS) or no worker took it (EXPORT_REQUEUE_SECONDS). A run claims the
export under the current attempt and changes it only while that attempt stands, so a run
the sweeper gave up on, or a second delivery of one message, changes nothing.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import secrets
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from creditledger.exceptions import ApplicationError, require_perm
from creditledger.ledger.actors import Actor
from creditledger.ledger.services import ledger_append
from creditledger.tasks import TRANSIENT_ERRORS
from penalties import exports
from penalties.exports import formats, manifest
from penalties.exports.base import Exporter
from penalties.models import Export
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
    export_id: int | None = None,
) -> dict:
    """Write the report to `path` and return its manifest (naming `export_id`, the job's
    export, whose `export.completed` entry will record it)."""
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
        export_id=export_id,
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
    exporter = exports.build(report, file_format, dict(filters), scope=scope)
    with transaction.atomic():
        export = Export.objects.create(
            requested_by=actor.user,
            report=report,
            format=file_format,
            filters=exporter.filters_json(),
            scope=scope.as_json(),
            rows_total=None,
            language=export_language(language),
            attempts=1,
            progress_at=timezone.now(),
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


def enqueue_export(export_id: int, *, fail_if_unavailable: bool = True) -> bool:
    """Publish the job. If the broker cannot take a new request's job, say so on the export
    at once: the auditor sees a failed export and asks again, instead of waiting on a lost
    message. The sweeper's re-publication leaves the export requested: it tries again."""
    from penalties.exports.tasks import export_run  # tasks import services: import late

    try:
        export_run.apply_async(args=[export_id], retry_policy=PUBLISH_RETRY)
    except Exception:
        log.exception("export %s: could not queue the job", export_id)
        if fail_if_unavailable:
            export_fail(
                export_id,
                reason=_("The job queue is unavailable; request the export again."),
                state=State.REQUESTED,
            )
        return False
    return True


def _claim(export_id: int, now: dt.datetime) -> int | None:
    """requested → running under the export's current attempt, or take over, as a new
    attempt, a run whose worker died: a job runs at most its time limit, so one still
    "running" after that is dead. A compare-and-swap on (state, attempts, started_at): of
    two deliveries, one claims. Returns the attempt claimed; None if there is none to claim."""
    row = Export.objects.filter(pk=export_id).values("state", "attempts", "started_at").first()
    if row is None:
        return None
    stale = now - dt.timedelta(seconds=job_time_limit())
    if row["state"] == State.REQUESTED:
        attempt = row["attempts"]
    elif row["state"] == State.RUNNING and row["started_at"] and row["started_at"] < stale:
        attempt = row["attempts"] + 1
        if attempt > max_attempts():
            return None  # the sweeper fails it, saying why
    else:
        return None
    claimed = Export.objects.filter(pk=export_id, **row).update(
        state=State.RUNNING, attempts=attempt, started_at=now, progress_at=now, rows_done=0, error=""
    )
    return attempt if claimed else None


def max_attempts() -> int:
    return int(getattr(settings, "EXPORT_MAX_ATTEMPTS", 3))


def export_run(*, export_id: int) -> Export | None:
    """Run one export. Safe to call twice: a second call finds it claimed or done and
    returns None. Transient database errors hand the job back (requested) and re-raise,
    so the task's retry can claim it again; any other error marks it failed."""
    now = timezone.now()
    attempt = _claim(export_id, now)
    if attempt is None:
        log.info("export %s: already claimed or finished", export_id)
        return None
    export = Export.objects.select_related("requested_by").get(pk=export_id)
    try:
        with translation.override(export.language or settings.LANGUAGE_CODE):
            _run(export, attempt)
    except TRANSIENT_ERRORS:
        Export.objects.filter(pk=export_id, state=State.RUNNING, attempts=attempt).update(
            state=State.REQUESTED, progress_at=timezone.now()
        )
        raise
    except Exception as exc:
        log.exception("export %s failed", export_id)
        message = str(exc) if isinstance(exc, ApplicationError | formats.ExportTooLarge) else repr(exc)
        export_fail(export_id, reason=message, state=State.RUNNING, attempts=attempt)
    exports_expire(now=timezone.now())  # a cheap sweep: each run clears what has expired
    export.refresh_from_db()
    return export


def _run(export: Export, attempt: int) -> None:
    # Every write is of this attempt: once the sweeper has given the job to another, a
    # run it thought dead changes nothing.
    ours = Export.objects.filter(pk=export.pk, state=State.RUNNING, attempts=attempt)
    exporter = exports.build(
        export.report, export.format, export.filters, scope=Scope.from_json(export.scope)
    )
    total = exporter.count()
    ours.update(rows_total=total, progress_at=timezone.now())

    def progress(rows: int) -> None:  # every formats.PROGRESS_EVERY rows: the heartbeat
        ours.update(rows_done=rows, progress_at=timezone.now())

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
            export_id=export.pk,
        )
        ours.update(progress_at=timezone.now())  # written; storing it may take a while
        with open(path, "rb") as handle:
            stored = export.file.storage.save(
                export.file.field.generate_filename(
                    export, f"{export.pk}-{secrets.token_hex(8)}.{export.format}"
                ),
                File(handle),
            )
    finally:
        os.unlink(path)
    try:
        done = export_complete(export, attempt, stored=stored, filename=filename, data=data)
    except BaseException:
        export.file.storage.delete(stored)  # rolled back: the file belongs to no export
        raise
    if not done:  # taken over meanwhile (we were thought dead): theirs stands
        export.file.storage.delete(stored)


@transaction.atomic
def export_complete(export: Export, attempt: int, *, stored: str, filename: str, data: dict) -> bool:
    """Mark the export done with its file and manifest and record `export.completed`, in one
    transaction; False (nothing written) when this attempt no longer holds the export."""
    finished = timezone.now()
    done = Export.objects.filter(pk=export.pk, state=State.RUNNING, attempts=attempt).update(
        state=State.DONE,
        file=stored,
        filename=filename,
        row_count=data["row_count"],
        rows_done=data["row_count"],
        sha256=data["sha256"],
        manifest=data,
        progress_at=finished,
        finished_at=finished,
        expires_at=finished + dt.timedelta(days=keep_days()),
    )
    if done:
        ledger_append(
            actor=Actor.system("export_run"),
            action=manifest.COMPLETED,
            subject_type=manifest.SUBJECT_TYPE,
            subject_id=export.pk,
            payload=completed_payload(data, attempt=attempt),
        )
    return bool(done)


def completed_payload(data: dict, *, attempt: int) -> dict:
    """What `export.completed` records of a finished export: what verify_export checks the
    file and the manifest against, and what they say was exported."""
    anchor = data["ledger"]
    checkpoint = anchor.get("checkpoint")
    return {
        "report": data["report"],
        "format": data["format"],
        "filename": data["filename"],
        "filters": data["filters"],
        "scope": data["scope"],
        "row_count": data["row_count"],
        "sha256": data["sha256"],
        "size": data["size"],
        "manifest_sha256": manifest.manifest_digest(data),
        "ledger_anchor": {
            "head_seq": anchor["head_seq"],
            "head_hash": anchor["head_hash"],
            "checkpoint": {"seq": checkpoint["seq"], "hash": checkpoint["hash"]} if checkpoint else None,
        },
        "attempt": attempt,
    }


def export_fail(export_id: int, *, reason: str, state: str, **match) -> bool:
    """Fail an export still in `state` (and `match`, e.g. its attempt) for good: the reason
    on the export, and `export.failed` in the same transaction. False if it was not."""
    reason = reason.replace("\x00", "")[:2000]
    with transaction.atomic():
        failed = Export.objects.filter(pk=export_id, state=state, **match).update(
            state=State.FAILED, error=reason, finished_at=timezone.now()
        )
        if failed:
            export = Export.objects.values("report", "format", "attempts").get(pk=export_id)
            ledger_append(
                actor=Actor.system("export_run"),
                action="export.failed",
                subject_type=manifest.SUBJECT_TYPE,
                subject_id=export_id,
                payload={**export, "was": state, "reason": reason},
            )
    return bool(failed)


# --- the sweeper --------------------------------------------------------------------------

SWEEP_BATCH = 200


@dataclass
class Sweep:
    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def exports_sweep(*, now: dt.datetime) -> Sweep:
    """Queue again the exports whose job has stalled: running with no progress for
    EXPORT_STUCK_SECONDS (its worker was killed, or hangs), or requested and not taken for
    EXPORT_REQUEUE_SECONDS (its message was lost). Each goes back to requested as a new
    attempt and is published once this commits; one out of attempts (EXPORT_MAX_ATTEMPTS)
    fails, saying why, with `export.failed`.

    The stale rows are locked FOR UPDATE SKIP LOCKED: a second sweep at the same time
    passes over the rows the first holds, and once it commits they are no longer stale, so
    no export is queued twice. A run the sweeper gave up on finds, if it wakes, that its
    attempt no longer holds the export (_run)."""
    stuck = now - dt.timedelta(seconds=settings.EXPORT_STUCK_SECONDS)
    unclaimed = now - dt.timedelta(seconds=settings.EXPORT_REQUEUE_SECONDS)
    stale = (
        Q(state=State.RUNNING, progress_at__lt=stuck)
        | Q(state=State.REQUESTED, progress_at__lt=unclaimed)
        | Q(state__in=[State.REQUESTED, State.RUNNING], progress_at__isnull=True)
    )
    sweep = Sweep()
    with transaction.atomic():
        due = Export.objects.select_for_update(skip_locked=True).filter(stale).order_by("progress_at", "pk")
        for export in list(due.only("pk", "state", "attempts", "language")[:SWEEP_BATCH]):
            if export.attempts >= max_attempts():
                with translation.override(export.language or settings.LANGUAGE_CODE):
                    reason = _give_up_reason(export)
                export_fail(export.pk, reason=reason, state=export.state, attempts=export.attempts)
                sweep.failed.append(export.pk)
                continue
            Export.objects.filter(pk=export.pk).update(
                state=State.REQUESTED, attempts=F("attempts") + 1, progress_at=now, rows_done=0
            )
            sweep.requeued.append(export.pk)
            log.warning(
                "export %s: %s with no progress; queued again (attempt %s of %s)",
                export.pk,
                export.state,
                export.attempts + 1,
                max_attempts(),
            )
        if sweep.requeued:
            transaction.on_commit(functools.partial(_publish, list(sweep.requeued)))
    return sweep


def _publish(export_ids: list[int]) -> None:
    for export_id in export_ids:
        enqueue_export(export_id, fail_if_unavailable=False)


def _give_up_reason(export: Export) -> str:
    if export.state == State.RUNNING:
        return _(
            "The export stopped making progress %(attempts)s times (its worker stopped or hung); "
            "request the export again."
        ) % {"attempts": export.attempts}
    return _(
        "No worker took the export in %(attempts)s attempts (the job queue lost it); "
        "request the export again."
    ) % {"attempts": export.attempts}


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
