"""The manifest that travels with every export, and its verification.

A manifest states what was exported (report, filters, sections and row counts), when,
the file's SHA-256, and where the ledger stood: its head when the export finished (every
change in the file is recorded at or before that seq) and the latest signed checkpoint,
signed just then if the head had moved. verify() checks a file against its manifest: the
digest and the row count of the file itself, and the checkpoint's Ed25519 signature with
the ledger's public key — never a key the manifest names.

A manifest alone proves nothing about the file: anyone can edit both and recompute the
digest. An export made by the job (it names its `export_id`) is recorded in the ledger
when it finishes: the `export.completed` entry for that export holds the file's SHA-256
and size and the manifest's own SHA-256 (manifest_digest). verify() looks that entry up
by its subject (export_entry), never by a seq the manifest could claim, and checks the
three against it. A manifest written by `manage.py export_report` names no export and has
no entry; its ledger-entry check is skipped, and says so.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import iterparse

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from creditledger.ledger import canonical, merkle, sealer, signing
from creditledger.ledger.models import Checkpoint, LedgerEntry
from creditledger.ledger.selectors import latest_checkpoint
from creditledger.ledger.services import checkpoint_create
from penalties.exports.formats import ROWS_KEYWORD

VERSION = "creditledger-export/1"
READ_CHUNK = 1024 * 1024
SHEET_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"

SHA_MISMATCH = "sha256 mismatch"
SIZE_MISMATCH = "size mismatch"
ROWS_MISMATCH = "row count mismatch"
BAD_SIGNATURE = "bad checkpoint signature"
CHECKPOINT_MISMATCH = "checkpoint mismatch"
NO_CHECKPOINT = "no checkpoint"
LEDGER_MISMATCH = "ledger differs from checkpoint"
BAD_MANIFEST = "malformed manifest"
UNREADABLE = "unreadable file"
NO_ENTRY = "no ledger entry"
ENTRY_MISMATCH = "ledger entry mismatch"
NOT_INCLUDED = "ledger entry not in the signed tree"

# The ledger entry that records a finished export: subject ("export", its id).
COMPLETED = "export.completed"
SUBJECT_TYPE = "export"


def file_digest(path: str | Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while block := handle.read(READ_CHUNK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def ledger_anchor() -> dict:
    """Where the ledger stands now: its head and the latest signed checkpoint (signing the
    head first if it moved since the last checkpoint, so the checkpoint covers the export)."""
    checkpoint_create()
    head = LedgerEntry.objects.order_by("-seq").values_list("seq", "hash").first() or (0, "")
    checkpoint = latest_checkpoint()
    anchor = {"head_seq": head[0], "head_hash": head[1], "origin": settings.LEDGER_ORIGIN, "checkpoint": None}
    if checkpoint is not None:
        anchor["checkpoint"] = {
            "seq": checkpoint.seq,
            # What the note signs: the tree's root (the chain head for a pre-tree checkpoint).
            "hash": checkpoint.root or checkpoint.hash,
            "at": _utc(checkpoint.at),
            "key_id": checkpoint.key_id,
            "note": checkpoint.note,
        }
    return anchor


def _utc(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def build(
    *,
    report: str,
    title: str,
    file_format: str,
    filename: str,
    filters: dict,
    written: list,
    path: str | Path,
    generated_at: dt.datetime,
    generated_by: str,
    anchor: dict,
    scope: dict | None = None,
    export_id: int | None = None,
) -> dict:
    sha256, size = file_digest(path)
    return {
        "manifest": VERSION,
        # The export whose `export.completed` ledger entry records this file and this
        # manifest; null for `manage.py export_report`, which records none.
        "export_id": export_id,
        "report": report,
        "title": title,
        "format": file_format,
        "filename": filename,
        "filters": filters,
        # Whose traders the file covers: {"national": true}, or the region-code prefixes.
        "scope": scope or {"national": True},
        "row_count": sum(count for _, count in written),
        "sections": [
            {"key": section.key, "title": str(section.title), "rows": count} for section, count in written
        ],
        "generated_at": _utc(generated_at),
        "generated_by": generated_by,
        "time_zone": timezone.get_current_timezone_name(),
        "sha256": sha256,
        "size": size,
        "ledger": anchor,
    }


def manifest_digest(manifest: dict) -> str:
    """SHA-256 of the manifest's canonical JSON (sorted keys, no spaces, UTF-8): the same
    however the file was indented, and what the `export.completed` entry records."""
    return hashlib.sha256(canonical.dumps(manifest)).hexdigest()


# --- counting rows in a file ----------------------------------------------------------------


def count_rows(path: str | Path, file_format: str, sections: int) -> int:
    """Data rows in an export file, read from the file itself (headers not counted)."""
    if file_format == "csv":
        return _csv_rows(path, sections)
    if file_format == "xlsx":
        return _xlsx_rows(path)
    if file_format == "pdf":
        return _pdf_rows(path)
    raise ValueError(f"unknown format {file_format!r}")


def _csv_rows(path, sections: int) -> int:
    # One section: a header and rows. Several: per section a title row, a header, rows,
    # and a blank line before the next. Rows never read back as [] (csv quotes an empty field).
    with open(path, encoding="utf-8-sig", newline="") as handle:
        blocks, current = [], 0
        for row in csv.reader(handle):
            if row == [] and sections > 1:
                blocks.append(current)
                current = 0
            else:
                current += 1
        blocks.append(current)
    preamble = 1 if sections == 1 else 2
    return sum(max(0, size - preamble) for size in blocks)


def _xlsx_rows(path) -> int:
    total = 0
    with zipfile.ZipFile(path) as book:
        sheets = [n for n in book.namelist() if re.fullmatch(r"xl/worksheets/sheet\d+\.xml", n)]
        for name in sheets:
            with book.open(name) as sheet:
                rows = 0
                for _event, element in iterparse(sheet):
                    if element.tag == f"{SHEET_NS}row":
                        rows += 1
                    element.clear()
            total += max(0, rows - 1)
    return total


def _pdf_rows(path) -> int:
    # A PDF has no rows to count: its document keywords carry the count the writer saw,
    # and the SHA-256 binds the file to the manifest.
    found = re.search(re.escape(ROWS_KEYWORD.encode()) + rb"(\d+)", Path(path).read_bytes())
    if found is None:
        raise ValueError("the PDF carries no row count")
    return int(found.group(1))


# --- verification -------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


@dataclass(frozen=True)
class Verdict:
    """What verify_all found: the faults ([] when all holds), the `export.completed` entry
    checked, or why that check was skipped."""

    faults: list[Fault]
    entry: LedgerEntry | None = None
    entry_skipped: str = ""
    proof: str = ""  # how the entry was proved to be in the signed tree, or why it was not yet


def verify(
    path: str | Path, manifest: dict, *, verifier: signing.Verifier | None = None, check_ledger: bool = True
) -> list[Fault]:
    """Every way the file and manifest disagree, or the checkpoint or the ledger entry
    fails; [] when all holds."""
    return verify_all(path, manifest, verifier=verifier, check_ledger=check_ledger).faults


def verify_all(
    path: str | Path, manifest: dict, *, verifier: signing.Verifier | None = None, check_ledger: bool = True
) -> Verdict:
    """verify(), saying also which ledger entry vouched for the export, or why none was
    checked (offline, no database, a manifest that names no export)."""
    try:
        expected_sha, expected_rows = manifest["sha256"], int(manifest["row_count"])
        file_format, sections = manifest["format"], len(manifest["sections"])
        anchor = manifest["ledger"]
    except (KeyError, TypeError, ValueError) as exc:
        return Verdict([Fault(BAD_MANIFEST, f"missing or bad field {exc}")])
    faults = []
    try:
        sha256, size = file_digest(path)
    except OSError as exc:
        return Verdict([Fault(UNREADABLE, str(exc))])
    if sha256 != expected_sha:
        faults.append(
            Fault(SHA_MISMATCH, f"the file's SHA-256 is {sha256}, the manifest says {expected_sha}")
        )
    if "size" in manifest and size != manifest["size"]:
        faults.append(
            Fault(SIZE_MISMATCH, f"the file has {size} bytes, the manifest says {manifest['size']}")
        )
    try:
        rows = count_rows(path, file_format, sections)
    except Exception as exc:  # a damaged file fails to parse in many ways; each is this fault
        faults.append(Fault(ROWS_MISMATCH, f"cannot count the rows of the file: {exc}"))
    else:
        if rows != expected_rows:
            faults.append(
                Fault(ROWS_MISMATCH, f"the file holds {rows} rows, the manifest says {expected_rows}")
            )
    faults += verify_anchor(anchor, verifier=verifier, check_ledger=check_ledger)
    if not check_ledger:
        return Verdict(faults, entry_skipped="offline (--offline)")
    entry, entry_faults, skipped = verify_entry(manifest, sha256=sha256, size=size)
    proof = ""
    if entry is not None:
        proof_faults, proof = prove_entry(entry, verifier=verifier)
        entry_faults += proof_faults
    return Verdict(faults + entry_faults, entry=entry, entry_skipped=skipped, proof=proof)


def verify_anchor(anchor: dict, *, verifier=None, check_ledger: bool = True) -> list[Fault]:
    checkpoint = anchor.get("checkpoint") if isinstance(anchor, dict) else None
    if not checkpoint:
        if isinstance(anchor, dict) and anchor.get("head_seq") == 0:
            return []  # the ledger was empty: nothing to vouch for
        return [Fault(NO_CHECKPOINT, "the manifest carries no signed ledger checkpoint")]
    try:
        body = signing.open_checkpoint(checkpoint["note"], verifier)
    except (signing.NoteError, KeyError, TypeError) as exc:
        return [Fault(BAD_SIGNATURE, str(exc))]
    faults = []
    if body.origin != settings.LEDGER_ORIGIN:
        faults.append(Fault(CHECKPOINT_MISMATCH, f"the checkpoint is for log {body.origin!r}"))
    if (body.size, body.hash) != (checkpoint.get("seq"), checkpoint.get("hash")):
        faults.append(
            Fault(
                CHECKPOINT_MISMATCH,
                f"the signed note says seq {body.size} hash {body.hash}; the manifest says "
                f"seq {checkpoint.get('seq')} hash {checkpoint.get('hash')}",
            )
        )
    if check_ledger and not faults:
        faults += _against_ledger(body)
    return faults


def _against_ledger(body: signing.CheckpointBody) -> list[Fault]:
    """The ledger still holds what the checkpoint vouches for: its entries 1..size still
    hash to the signed root (or, for a checkpoint from before the tree, entry `size` still
    has the signed chain hash)."""
    try:
        stored = LedgerEntry.objects.filter(seq=body.size).values_list("hash", flat=True).first()
        root = None
        if stored is not None and stored != body.hash and sealer.tree_size() >= body.size:
            root = merkle.tree_root(size=body.size, read_tiles=sealer.read_tiles).hex()
    except DatabaseError:
        return []  # no database here: the signature alone has been checked
    if stored is None:
        return [Fault(LEDGER_MISMATCH, f"the ledger has no entry {body.size}")]
    if body.hash not in (stored, root):
        now = f"tree root {root}" if root else f"entry {body.size} has hash {stored}"
        return [
            Fault(LEDGER_MISMATCH, f"the first {body.size} entries now give {now}, signed as {body.hash}")
        ]
    return []


def export_entry(export_id: int | str) -> LedgerEntry | None:
    """The `export.completed` entry of an export, found by its subject; None if the ledger
    has none. Raises DatabaseError without a database.

    The one place verification finds the entry: an inclusion proof of it under a signed
    checkpoint belongs here when the ledger can give one."""
    return (
        LedgerEntry.objects.filter(action=COMPLETED, subject_type=SUBJECT_TYPE, subject_id=str(export_id))
        .order_by("seq")
        .first()
    )


def verify_entry(manifest: dict, *, sha256: str, size: int) -> tuple[LedgerEntry | None, list[Fault], str]:
    """The file's SHA-256 and size, and the manifest's own digest, against what the
    export's `export.completed` entry recorded: (entry, faults, why skipped)."""
    export_id = manifest.get("export_id")
    if export_id is None:
        return None, [], "the manifest names no export (manage.py export_report records none)"
    try:
        entry = export_entry(export_id)
    except DatabaseError:
        return None, [], "no database here"
    if entry is None:
        return None, [Fault(NO_ENTRY, f"the ledger has no {COMPLETED} entry for export {export_id}")], ""
    recorded = entry.payload if isinstance(entry.payload, dict) else {}
    named = f"export {export_id}, ledger entry {entry.seq} ({COMPLETED})"
    faults = []
    for what, actual, key in (
        ("the file's SHA-256", sha256, "sha256"),
        ("the file's size", size, "size"),
        ("the manifest's SHA-256", manifest_digest(manifest), "manifest_sha256"),
    ):
        if actual != recorded.get(key):
            detail = f"{named}: {what} is {actual}, the entry recorded {recorded.get(key)}"
            faults.append(Fault(ENTRY_MISMATCH, detail))
    return entry, faults, ""


def prove_entry(entry: LedgerEntry, *, verifier: signing.Verifier | None = None) -> tuple[list[Fault], str]:
    """Prove that `entry`, as stored now, is the leaf the signed tree holds: its leaf hash
    (SHA-256(0x00 ‖ body)) and the inclusion proof read from the tiles lead to the root of
    the newest tree checkpoint, whose signature is checked with `verifier` (default: this
    installation's key). (faults, what was proved or why not yet).

    The entry is written after the manifest it records, so the manifest's own checkpoint
    never covers it; the next checkpoint (signed every few minutes, and by the next export)
    does. Until one does, its recorded values have been checked but not its inclusion, and
    the answer says so rather than failing. An entry whose row was edited (body and hash
    rewritten to match a recomputed manifest) no longer leads to the signed root."""
    try:
        newest = (
            Checkpoint.objects.filter(kind=Checkpoint.Kind.TREE, seq__gte=entry.seq)
            .order_by("-seq")
            .only("seq", "note")
            .first()
        )
        if newest is None:
            return [], f"inclusion not proved yet: no signed checkpoint covers entry {entry.seq} so far"
        try:
            signed = signing.open_checkpoint(newest.note, verifier)
        except signing.NoteError as exc:
            return [Fault(BAD_SIGNATURE, f"checkpoint {newest.seq}: {exc}")], ""
        if (signed.origin, signed.size) != (settings.LEDGER_ORIGIN, newest.seq):
            detail = f"checkpoint {newest.seq} signs size {signed.size} of log {signed.origin!r}"
            return [Fault(CHECKPOINT_MISMATCH, detail)], ""
        proof = merkle.inclusion_proof(index=entry.seq - 1, size=signed.size, read_tiles=sealer.read_tiles)
    except DatabaseError:
        return [], "inclusion not checked: no database here"
    except merkle.MerkleError as exc:
        return [Fault(NOT_INCLUDED, f"entry {entry.seq}: no inclusion proof in tree {newest.seq}: {exc}")], ""
    try:
        merkle.verify_inclusion(
            index=entry.seq - 1,
            size=signed.size,
            leaf_hash=merkle.leaf_hash(bytes(entry.body)),
            proof=proof,
            root=bytes.fromhex(signed.hash),
        )
    except merkle.ProofError as exc:
        detail = f"entry {entry.seq} as stored is not the leaf signed in checkpoint {signed.size}: {exc}"
        return [Fault(NOT_INCLUDED, detail)], ""
    return [], (
        f"entry {entry.seq} proved in signed checkpoint {signed.size} "
        f"(root {signed.hash}, {len(proof)}-hash inclusion proof)"
    )


def dumps(manifest: dict) -> bytes:
    return (json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")


def loads(data: bytes | str) -> dict:
    if isinstance(data, bytes):
        data = data.decode("utf-8")
    manifest = json.loads(data)
    if not isinstance(manifest, dict) or manifest.get("manifest") != VERSION:
        raise ValueError(f"not a {VERSION} manifest")
    return manifest
