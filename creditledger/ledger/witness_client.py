"""The witness's side (manage.py ledger_witness), run by an auditor or a platform on its own
machine with its own key. No database: it speaks to the log over its API only.

One run: fetch the newest checkpoint; verify the log's signature (the log's key is pinned
in the state file on the first run, trust on first use); if a checkpoint was cosigned
before, fetch and verify a consistency proof from it (a smaller size, or a different root
at the same size, is refused outright); save the new checkpoint in the state file; cosign
it (C2SP tlog-cosignature, cosignature/v1) and POST the signature line to the log.

The state is saved before the cosignature leaves the machine: a witness must never sign a
tree it could later be talked out of. The key file holds

    PRIVATE+KEY+<name>+<key id hex>+<base64(0x04 ‖ 32-byte Ed25519 seed)>

(the layout of Go's note package keys, with the cosignature/v1 type), readable by its owner
only; the state file (JSON) sits beside it.

Two front doors, the same options: `manage.py ledger_witness`, and, on a machine with the
code but no settings for it (no SECRET_KEY, no database), `python -m
creditledger.ledger.witness_client`. Nothing here imports Django's settings.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import fcntl
import json
import os
import stat
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from creditledger.ledger import merkle, signing
from creditledger.ledger.merkle.cosignature import ALG_COSIGNATURE_V1

KEY_PREFIX = "PRIVATE+KEY+"
TIMEOUT = 30  # seconds per request
MAX_RESPONSE = 1 << 20  # a checkpoint or a proof is a few kilobytes


class WitnessError(Exception):
    """The run could not complete (usage, network, the server's answer): exit 2."""

    returncode = 2


class Refused(WitnessError):
    """The log showed a checkpoint the witness must not cosign: exit 1."""

    returncode = 1


# --- keys and state -----------------------------------------------------------------------


def generate_key(path: Path, name: str) -> merkle.Cosigner:
    """Write a new key file (mode 600; never over an existing one) and return its cosigner."""
    cosigner = merkle.Cosigner(name, Ed25519PrivateKey.generate())
    merkle.CosignatureVerifier(name, cosigner.verifier.public_bytes)  # checks the name
    seed = cosigner.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    encoded = base64.b64encode(ALG_COSIGNATURE_V1 + seed).decode("ascii")
    text = f"{KEY_PREFIX}{name}+{cosigner.verifier.key_id.hex()}+{encoded}\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise WitnessError(f"{path} exists: refusing to overwrite a witness key") from exc
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    return cosigner


def load_key(path: Path) -> merkle.Cosigner:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text("ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise WitnessError(f"cannot read the witness key {path}: {exc}") from exc
    if mode & 0o077:
        raise WitnessError(f"witness key {path} is readable by others (mode {mode:04o}): chmod 600 it")
    name, _, rest = text.removeprefix(KEY_PREFIX).partition("+")
    key_id, _, encoded = rest.partition("+")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raw = b""
    if not text.startswith(KEY_PREFIX) or raw[:1] != ALG_COSIGNATURE_V1 or len(raw) != 33:
        raise WitnessError(f"{path} is not a cosignature/v1 witness key ({KEY_PREFIX}<name>+<id>+<key>)")
    try:
        cosigner = merkle.Cosigner(name, Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if cosigner.verifier.key_id.hex() != key_id:
            raise WitnessError(f"{path}: the key id does not match the name and key")
    except signing.NoteError as exc:
        raise WitnessError(f"{path}: {exc}") from exc
    return cosigner


@dataclass(frozen=True)
class State:
    """The last checkpoint this witness cosigned, and the log key it trusts."""

    origin: str
    log_vkey: str
    size: int
    root: bytes
    note: str

    def dumps(self) -> str:
        doc = {
            "origin": self.origin,
            "log_vkey": self.log_vkey,
            "size": self.size,
            "root": base64.b64encode(self.root).decode("ascii"),
            "note": self.note,
        }
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def load_state(path: Path) -> State | None:
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text("utf-8"))
        return State(
            doc["origin"], doc["log_vkey"], int(doc["size"]), base64.b64decode(doc["root"]), doc["note"]
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WitnessError(f"cannot read the witness state {path}: {exc}") from exc


def save_state(path: Path, state: State) -> None:
    """Replace the state file atomically and durably: written, synced, renamed, dir synced."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(state.dumps())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# --- HTTP -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Api:
    base: str  # the site's root URL, e.g. https://credit.example.gov.cn
    api_key: str = ""

    def get(self, path: str, **query) -> dict:
        url = self._url(path) + (f"?{urllib.parse.urlencode(query)}" if query else "")
        return self._send(urllib.request.Request(url, headers=self._headers()))[1]

    def post(self, path: str, doc: dict) -> tuple[int, dict]:
        headers = {**self._headers(), "Content-Type": "application/json"}
        data = json.dumps(doc).encode("utf-8")
        return self._send(urllib.request.Request(self._url(path), data=data, headers=headers, method="POST"))

    def _url(self, path: str) -> str:
        return self.base.rstrip("/") + "/api/v1/" + path

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "creditledger-witness"}
        if self.api_key:
            headers["Authorization"] = f"Api-Key {self.api_key}"
        return headers

    def _send(self, request: urllib.request.Request) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                return response.status, _json(response.read(MAX_RESPONSE + 1), request.full_url)
        except urllib.error.HTTPError as exc:
            body = exc.read(MAX_RESPONSE + 1).decode("utf-8", "replace")[:500]
            raise WitnessError(f"{request.get_method()} {request.full_url}: HTTP {exc.code}: {body}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise WitnessError(f"{request.get_method()} {request.full_url}: {exc}") from exc


def _json(data: bytes, url: str) -> dict:
    if len(data) > MAX_RESPONSE:
        raise WitnessError(f"{url}: the answer is larger than {MAX_RESPONSE} bytes")
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise WitnessError(f"{url}: the answer is not JSON") from exc
    if not isinstance(doc, dict):
        raise WitnessError(f"{url}: the answer is not a JSON object")
    return doc


# --- one run ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    size: int
    messages: list[str]


@contextlib.contextmanager
def _exclusive(state_path: Path):
    """One run at a time per state file: two overlapping runs (a slow one and the next cron
    tick) could otherwise save an older tree over a newer one, and a witness that forgets a
    tree it cosigned can be shown a fork of it (tlog-witness: check and persist atomically)."""
    lock = state_path.with_name(state_path.name + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise WitnessError(f"another run holds {lock}; try again when it is done") from exc
        yield
    finally:
        os.close(fd)  # releases the lock


def run(*, api: Api, cosigner: merkle.Cosigner, state_path: Path, now: int, log_vkey: str = "") -> Outcome:
    """Check the log's newest checkpoint against the last one cosigned, cosign it, post it."""
    with _exclusive(state_path):
        return _run(api=api, cosigner=cosigner, state_path=state_path, now=now, log_vkey=log_vkey)


def _run(*, api: Api, cosigner: merkle.Cosigner, state_path: Path, now: int, log_vkey: str) -> Outcome:
    messages: list[str] = []
    state = load_state(state_path)
    log_key = _log_key(api, state, log_vkey, messages)
    note = api.get("ledger/checkpoints/latest").get("note")
    if not isinstance(note, str):
        raise WitnessError("the log's latest checkpoint has no note")
    try:
        checkpoint = merkle.Checkpoint.open(note, log_key)
    except signing.NoteError as exc:
        raise Refused(f"the log's newest checkpoint does not verify under {log_key}: {exc}") from exc
    if checkpoint.origin != log_key.name:
        raise Refused(f"the checkpoint is for origin {checkpoint.origin!r}, the log key for {log_key.name!r}")
    if state is None:
        messages.append(
            f"first run: no state at {state_path}; trusting checkpoint {checkpoint.size} "
            f"(root {checkpoint.root_hash.hex()}) on first use"
        )
    else:
        messages.append(_check_consistency(api, state, checkpoint))
    save_state(
        state_path, State(checkpoint.origin, str(log_key), checkpoint.size, checkpoint.root_hash, note)
    )
    line = cosigner.cosign(checkpoint.text(), timestamp=now)
    status, answer = api.post("ledger/cosignatures/", {"size": checkpoint.size, "cosignature": line})
    recorded = "recorded" if status == 201 else "already held it"
    messages.append(
        f"cosigned checkpoint {checkpoint.size} of {checkpoint.origin} as {cosigner.verifier} at {now}; "
        f"the log {recorded} ({answer.get('witness', '?')})"
    )
    return Outcome(checkpoint.size, messages)


def _log_key(api: Api, state: State | None, given: str, messages: list[str]) -> signing.Verifier:
    try:
        if given:
            key = signing.Verifier.parse(given)
            if state is not None and str(key) != state.log_vkey:
                messages.append(f"log key {key} given replaces the pinned {state.log_vkey}")
            return key
        if state is not None:
            return signing.Verifier.parse(state.log_vkey)
        fetched = api.get("ledger/public-key").get("verifier_key", "")
        key = signing.Verifier.parse(fetched)
    except signing.NoteError as exc:
        raise WitnessError(f"log key: {exc}") from exc
    messages.append(f"first run: pinning the log key {key} fetched from the log (trust on first use)")
    return key


def _check_consistency(api: Api, state: State, checkpoint: merkle.Checkpoint) -> str:
    if checkpoint.origin != state.origin:
        raise Refused(f"the log's origin is now {checkpoint.origin!r}; this witness follows {state.origin!r}")
    old, new = state.size, checkpoint.size
    if new < old:
        raise Refused(
            f"refusing to cosign: the log's newest checkpoint has {new} entries, fewer than the "
            f"{old} this witness cosigned (sizes {old} -> {new}): the log was rolled back"
        )
    if new == old:
        if checkpoint.root_hash != state.root:
            raise Refused(
                f"refusing to cosign: checkpoint {new} now states root {checkpoint.root_hash.hex()}, "
                f"not the {state.root.hex()} this witness cosigned: the log's history was rewritten"
            )
        return f"checkpoint {new} is the one cosigned last time"
    proof = api.get("ledger/proofs/consistency", old=old, new=new).get("proof")
    try:
        hashes = [base64.b64decode(h, validate=True) for h in proof]
        merkle.verify_consistency(
            old_size=old, new_size=new, old_root=state.root, new_root=checkpoint.root_hash, proof=hashes
        )
    except (TypeError, binascii.Error, merkle.MerkleError) as exc:
        raise Refused(
            f"refusing to cosign: the consistency proof from size {old} to size {new} does not verify "
            f"({exc}): the tree of {new} entries does not extend the one of {old} this witness "
            "cosigned, so the log's history was rewritten"
        ) from exc
    return f"checkpoint {new} extends checkpoint {old} cosigned before ({len(hashes)}-hash consistency proof)"


# --- the command line -------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="The log's site, e.g. https://credit.example.gov.cn")
    parser.add_argument("--key", required=True, type=Path, help="The witness's private key file.")
    parser.add_argument(
        "--state", type=Path, help="Where the last cosigned checkpoint is kept (default: KEY.state)."
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("LEDGER_WITNESS_API_KEY", ""),
        help="An API key to read the log's checkpoints and proofs (default: $LEDGER_WITNESS_API_KEY).",
    )
    parser.add_argument(
        "--log-key", default="", metavar="VKEY", help="Pin this log verifier key instead of the one kept."
    )
    parser.add_argument(
        "--generate",
        metavar="NAME",
        help="Create a new key file at --key for witness NAME and print its vkey.",
    )


def execute(
    *, url, key: Path, state: Path | None, api_key: str, log_key: str, generate: str | None
) -> list[str]:
    """One invocation: the lines to print; WitnessError (with its returncode) on failure."""
    if generate:
        return [str(generate_key(key, generate).verifier)]
    if not url or not url.startswith(("http://", "https://")):
        raise WitnessError("--url must be the log's http(s) address")
    outcome = run(
        api=Api(url, api_key),
        cosigner=load_key(key),
        state_path=state or key.with_name(key.name + ".state"),
        now=int(time.time()),
        log_vkey=log_key,
    )
    return outcome.messages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m creditledger.ledger.witness_client", description=__doc__)
    add_arguments(parser)
    options = vars(parser.parse_args(argv))
    try:
        lines = execute(**options)
    except WitnessError as exc:
        print(f"witness: {exc}", file=sys.stderr)
        return exc.returncode
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
