"""Ed25519 signing of ledger checkpoints as C2SP signed notes (tlog-checkpoint format).

A checkpoint note reads

    <origin>
    <size>
    <base64 of the 32-byte head hash>

    — <key name> <base64(4-byte key hash || 64-byte Ed25519 signature)>

The signature covers the text above the blank line, final newline included. The key hash
is the first 4 bytes of sha256(key name || "\\n" || 0x01 || public key), so a verifier can
pick its key by name and hash; a note may carry other signatures, which we ignore.

The private key never touches the database. settings.LEDGER_SIGNER chooses where it is:
"file", a seed the process holds (settings.LEDGER_SIGNING_KEY, a base64 32-byte seed, or in
development a file generated once under var/), or "pkcs11", a key pair on an HSM that signs
and never lets the private key out (hsm.py). Both give the same kind of Ed25519 signature,
so notes, verifier keys and verification do not depend on where the key is.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from creditledger.ledger import hsm

log = logging.getLogger(__name__)

ALGORITHM = "Ed25519"
ALG_ED25519 = b"\x01"  # signed-note signature type for Ed25519
SIG_PREFIX = "— "  # em dash and a space start every signature line
MAX_NOTE_BYTES = 16 * 1024  # notes are a few hundred bytes; refuse anything absurd


class NoteError(ValueError):
    """A note that does not parse, or whose signature does not verify."""


class NoteSigner:
    """Signs notes with an Ed25519 key named `name`; subclasses hold the key and sign bytes."""

    name: str
    public_bytes: bytes

    def sign_bytes(self, data: bytes) -> bytes:
        raise NotImplementedError

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, self.public_bytes)

    def sign(self, text: str) -> str:
        """Return the signed note: text, a blank line, our signature line."""
        _check_text(text)
        signature = self.sign_bytes(text.encode("utf-8"))
        blob = base64.b64encode(self.verifier.key_hash + signature).decode("ascii")
        return f"{text}\n{SIG_PREFIX}{self.name} {blob}\n"


@dataclass(frozen=True)
class Signer(NoteSigner):
    """A key the process holds (LEDGER_SIGNER=file)."""

    name: str
    private_key: Ed25519PrivateKey

    @functools.cached_property
    def public_bytes(self) -> bytes:
        return self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def sign_bytes(self, data: bytes) -> bytes:
        return self.private_key.sign(data)


@dataclass(frozen=True)
class Pkcs11Signer(NoteSigner):
    """A key pair on a PKCS#11 token (LEDGER_SIGNER=pkcs11): the private key stays on it.

    Every signature the token returns is checked with the public key before it goes into a
    note: a faulty device must fail the checkpoint, not publish a note that never verifies.
    """

    name: str
    key: hsm.TokenKey

    @property
    def public_bytes(self) -> bytes:
        return self.key.public_bytes

    def sign_bytes(self, data: bytes) -> bytes:
        signature = self.key.sign(data)
        try:
            Ed25519PublicKey.from_public_bytes(self.public_bytes).verify(signature, data)
        except InvalidSignature as exc:
            raise hsm.HsmError(f"{self.key!r} returned a signature that does not verify") from exc
        return signature


@dataclass(frozen=True)
class Verifier:
    name: str
    public_bytes: bytes

    @property
    def key_hash(self) -> bytes:
        return key_hash(self.name, self.public_bytes)

    @property
    def key_id(self) -> str:
        return self.key_hash.hex()

    def __str__(self) -> str:
        """The verifier key string: <name>+<hex key hash>+<base64(0x01 || public key)>."""
        encoded = base64.b64encode(ALG_ED25519 + self.public_bytes).decode("ascii")
        return f"{self.name}+{self.key_id}+{encoded}"

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        try:
            name, hash_hex, encoded = vkey.strip().split("+", 2)
            raw = _b64decode(encoded)
            claimed = bytes.fromhex(hash_hex)
        except (ValueError, binascii.Error) as exc:
            raise NoteError(f"malformed verifier key {vkey!r}") from exc
        if not _valid_key_name(name) or raw[:1] != ALG_ED25519 or len(raw) != 33:
            raise NoteError(f"not an Ed25519 verifier key: {vkey!r}")
        verifier = cls(name, raw[1:])
        if verifier.key_hash != claimed:
            raise NoteError("verifier key hash does not match its name and key")
        return verifier

    def open(self, note: str | bytes) -> str:
        """Verify `note` and return its signed text. Raise NoteError unless our key signed it."""
        text, lines = split_note(note)
        public_key = Ed25519PublicKey.from_public_bytes(self.public_bytes)
        mine = [(h, sig) for name, h, sig in lines if name == self.name and h == self.key_hash]
        if not mine:
            raise NoteError(f"note carries no signature by key {self.name}+{self.key_id}")
        for _, signature in mine:
            try:
                public_key.verify(signature, text.encode("utf-8"))
            except InvalidSignature as exc:
                raise NoteError(f"signature by {self.name}+{self.key_id} does not verify") from exc
        return text


def _b64decode(text: str) -> bytes:
    """Strict base64: one spelling per byte string, so no byte of a note can change unnoticed."""
    raw = base64.b64decode(text, validate=True)
    if base64.b64encode(raw).decode("ascii") != text:
        raise binascii.Error("non-canonical base64")
    return raw


def key_hash(name: str, public_bytes: bytes) -> bytes:
    return hashlib.sha256(name.encode("utf-8") + b"\n" + ALG_ED25519 + public_bytes).digest()[:4]


def _valid_key_name(name: str) -> bool:
    return bool(name) and not any(ch.isspace() or ch == "+" for ch in name)


def _check_text(text: str) -> None:
    if not text.endswith("\n") or "\n\n" in text or text.startswith("\n"):
        raise NoteError("note text must be non-empty lines, each ending in a newline")
    if any(ord(ch) < 0x20 and ch != "\n" for ch in text):
        raise NoteError("note text holds control characters")


def split_note(note: str | bytes) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    """Split a note into its text and (name, key hash, signature) per signature line."""
    if isinstance(note, bytes):
        if len(note) > MAX_NOTE_BYTES:
            raise NoteError("note is too large")
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError("note is not UTF-8") from exc
    elif len(note) > MAX_NOTE_BYTES:
        raise NoteError("note is too large")
    cut = note.rfind("\n\n")
    if cut < 0 or not note.endswith("\n"):
        raise NoteError("note has no signature block")
    text, block = note[: cut + 1], note[cut + 2 :]
    _check_text(text)
    lines = []
    for line in block[:-1].split("\n"):
        if not line.startswith(SIG_PREFIX):
            raise NoteError(f"malformed signature line {line!r}")
        name, _, blob = line[len(SIG_PREFIX) :].partition(" ")
        try:
            raw = _b64decode(blob)
        except binascii.Error as exc:
            raise NoteError(f"signature line for {name} is not base64") from exc
        if not _valid_key_name(name) or len(raw) < 5:
            raise NoteError(f"malformed signature line {line!r}")
        lines.append((name, raw[:4], raw[4:]))
    return text, lines


# --- Checkpoints ------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointBody:
    origin: str
    size: int
    hash: str  # hex, as in LedgerEntry.hash

    def text(self) -> str:
        root = base64.b64encode(bytes.fromhex(self.hash)).decode("ascii")
        return f"{self.origin}\n{self.size}\n{root}\n"

    @classmethod
    def parse(cls, text: str) -> CheckpointBody:
        lines = text.split("\n")
        if len(lines) < 4:  # origin, size, root hash, and the empty string after the last \n
            raise NoteError("a checkpoint needs an origin, a size and a root hash")
        origin, size, root = lines[:3]  # later lines are extensions, which we do not use
        if not size.isdigit() or (size.startswith("0") and size != "0"):
            raise NoteError(f"checkpoint size {size!r} is not a decimal number")
        try:
            raw = _b64decode(root)
        except binascii.Error as exc:
            raise NoteError("checkpoint root hash is not base64") from exc
        if len(raw) != 32:
            raise NoteError("checkpoint root hash is not 32 bytes")
        return cls(origin=origin, size=int(size), hash=raw.hex())


def sign_checkpoint(*, size: int, head_hash: str) -> tuple[str, str]:
    """Return (signed note, key id) for the chain head at `size` entries."""
    signer = get_signer()
    body = CheckpointBody(origin=settings.LEDGER_ORIGIN, size=size, hash=head_hash)
    return signer.sign(body.text()), signer.verifier.key_id


def open_checkpoint(note: str | bytes, verifier: Verifier | None = None) -> CheckpointBody:
    """Verify a checkpoint note and return what it states.

    With no `verifier`, the note must be signed by our current key or by one of the keys
    retired by a rotation (settings.LEDGER_RETIRED_VERIFIER_KEYS).
    """
    if verifier is not None:
        return CheckpointBody.parse(verifier.open(note))
    known = known_verifiers()
    _, lines = split_note(note)
    signed_by = {(name, key_hash) for name, key_hash, _ in lines}
    for candidate in known:
        if (candidate.name, candidate.key_hash) in signed_by:
            return CheckpointBody.parse(candidate.open(note))
    keys = ", ".join(f"{v.name}+{v.key_id}" for v in known)
    raise NoteError(f"note carries no signature by a known key ({keys})")


def known_verifiers() -> list[Verifier]:
    """Our current verifier key first, then the retired ones still trusted for old checkpoints."""
    return [get_signer().verifier, *_retired_verifiers(tuple(settings.LEDGER_RETIRED_VERIFIER_KEYS))]


@functools.lru_cache(maxsize=4)
def _retired_verifiers(vkeys: tuple[str, ...]) -> tuple[Verifier, ...]:
    verifiers = []
    for vkey in vkeys:
        try:
            verifiers.append(Verifier.parse(vkey))
        except NoteError as exc:
            raise ImproperlyConfigured(f"Environment variable LEDGER_RETIRED_VERIFIER_KEYS: {exc}") from exc
    return tuple(verifiers)


def public_key_info() -> dict:
    current, *retired = known_verifiers()
    return {
        "algorithm": ALGORITHM,
        "public_key": base64.b64encode(current.public_bytes).decode("ascii"),
        "verifier_key": str(current),
        "key_id": current.key_id,
        "origin": settings.LEDGER_ORIGIN,
        "retired_verifier_keys": [str(verifier) for verifier in retired],
    }


# --- Key loading ------------------------------------------------------------------------


def get_signer() -> NoteSigner:
    """The key that signs checkpoints, as settings.LEDGER_SIGNER chooses; loaded once per process.

    A configuration error raises ImproperlyConfigured naming the setting, at first use and
    in `manage.py check` (checks.py).
    """
    if settings.LEDGER_SIGNER == "pkcs11":
        return _pkcs11_signer(
            settings.LEDGER_ORIGIN,
            settings.LEDGER_PKCS11_MODULE,
            settings.LEDGER_PKCS11_TOKEN,
            settings.LEDGER_PKCS11_PIN,
            settings.LEDGER_PKCS11_PIN_FILE,
            settings.LEDGER_PKCS11_KEY_LABEL,
        )
    return _signer(settings.LEDGER_ORIGIN, settings.LEDGER_SIGNING_KEY, str(settings.LEDGER_SIGNING_KEY_FILE))


def check_key_name(name: str) -> None:
    if not _valid_key_name(name):
        raise ImproperlyConfigured(
            f"Environment variable LEDGER_ORIGIN: {name!r} must be non-empty, without spaces or '+'"
        )


@functools.lru_cache(maxsize=4)
def _pkcs11_signer(
    name: str, module: str, token: str, pin: str, pin_file: str, key_label: str
) -> Pkcs11Signer:
    check_key_name(name)
    return Pkcs11Signer(name, hsm.TokenKey(hsm.token_config(module, token, pin, pin_file, key_label)))


@functools.lru_cache(maxsize=4)
def _signer(name: str, seed_b64: str, key_file: str) -> Signer:
    check_key_name(name)
    if seed_b64:
        seed = _decode_seed(seed_b64, "Environment variable LEDGER_SIGNING_KEY")
    else:
        seed = _load_or_create_seed(Path(key_file))
    return Signer(name, Ed25519PrivateKey.from_private_bytes(seed))


def _decode_seed(value: str, where: str) -> bytes:
    try:
        seed = base64.b64decode(value.strip(), validate=True)
    except binascii.Error as exc:
        raise ImproperlyConfigured(f"{where}: not base64") from exc
    if len(seed) != 32:
        raise ImproperlyConfigured(f"{where}: an Ed25519 seed is 32 bytes, got {len(seed)}")
    return seed


def _load_or_create_seed(path: Path) -> bytes:
    if not path.exists():
        _create_seed_file(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ImproperlyConfigured(
            f"Ledger signing key file {path} is readable by others (mode {mode:04o}); chmod 600 it"
        )
    return _decode_seed(path.read_text(), f"Ledger signing key file {path}")


def _create_seed_file(path: Path) -> None:
    """Write a new seed atomically: several processes may start at once, one key must win."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    seed = base64.b64encode(os.urandom(32)).decode("ascii") + "\n"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(seed)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)  # fails if another process got there first; then we use theirs
        log.warning("Generated a development ledger signing key at %s", path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
