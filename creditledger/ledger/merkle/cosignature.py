"""Witness cosignatures per C2SP tlog-cosignature: the timestamped Ed25519 type, cosignature/v1.

A cosignature is one more signature line on a checkpoint note,

    — <cosigner name> base64(key id ‖ u64 big-endian timestamp ‖ Ed25519 signature)

key id = SHA-256(name ‖ "\\n" ‖ 0x04 ‖ 32-byte public key)[:4], and the signature covers

    cosignature/v1
    time <timestamp, decimal>
    <the checkpoint text, extension lines and final newline included>

It states that, at that time (POSIX seconds), this was the largest tree the cosigner had
seen for the origin and it was consistent with everything before. The message does not
commit to the cosigner's name, so one key serves exactly one cosigner. The timestamp is
passed in: these functions read no clock.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from creditledger.ledger.merkle.checkpoint import Checkpoint
from creditledger.ledger.signing import SIG_PREFIX, NoteError, split_note

ALG_COSIGNATURE_V1 = b"\x04"  # signed-note signature type: timestamped Ed25519 cosignature
MAX_TIMESTAMP = (1 << 63) - 1
_HEADER = "cosignature/v1\n"
_SIGNED_BYTES = 8 + 64  # after the key id: the timestamp, then the Ed25519 signature


def cosignature_key_id(name: str, public_bytes: bytes) -> bytes:
    return hashlib.sha256(name.encode("utf-8") + b"\n" + ALG_COSIGNATURE_V1 + public_bytes).digest()[:4]


def cosignature_message(text: str, timestamp: int) -> bytes:
    """The bytes an Ed25519 cosigner signs for checkpoint `text` at `timestamp`."""
    _check_timestamp(timestamp)
    Checkpoint.parse(text)  # a cosignature speaks of a checkpoint: refuse any other text
    return f"{_HEADER}time {timestamp}\n{text}".encode()


@dataclass(frozen=True)
class CosignatureVerifier:
    """A cosigner's name and public key: what a log or a client pins to trust a witness."""

    name: str
    public_bytes: bytes

    def __post_init__(self) -> None:
        if not self.name or any(ch.isspace() or ch == "+" for ch in self.name):
            raise NoteError(f"bad cosigner name {self.name!r}")
        if len(self.public_bytes) != 32:
            raise NoteError("an Ed25519 public key is 32 bytes")

    @functools.cached_property
    def key_id(self) -> bytes:
        return cosignature_key_id(self.name, self.public_bytes)

    @functools.cached_property
    def _public_key(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self.public_bytes)

    def __str__(self) -> str:
        """The vkey: <name>+<hex key id>+<base64(0x04 ‖ public key)>."""
        encoded = base64.b64encode(ALG_COSIGNATURE_V1 + self.public_bytes).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def parse(cls, vkey: str) -> CosignatureVerifier:
        name, _, rest = vkey.strip().partition("+")
        key_id, _, encoded = rest.partition("+")
        raw = _strict_b64(encoded, "cosigner key")
        if raw[:1] != ALG_COSIGNATURE_V1 or len(raw) != 33:
            raise NoteError(f"not a cosignature/v1 verifier key: {vkey!r}")
        verifier = cls(name, raw[1:])
        if verifier.key_id.hex() != key_id:
            raise NoteError("cosigner key id does not match its name and key")
        return verifier

    def verify(self, note: str | bytes) -> int:
        """The time this cosigner vouches for the checkpoint in `note`; NoteError if it does not.

        Signature lines of other keys are ignored (signed-note says verifiers must); every
        line of this key must verify. With several, the latest time is returned.
        """
        text, lines = split_note(note)
        Checkpoint.parse(text)
        mine = [blob for name, key_id, blob in lines if name == self.name and key_id == self.key_id]
        if not mine:
            raise NoteError(f"note carries no cosignature by {self.name}+{self.key_id.hex()}")
        return max(self._verify_one(text, blob) for blob in mine)

    def _verify_one(self, text: str, blob: bytes) -> int:
        if len(blob) != _SIGNED_BYTES:
            raise NoteError(f"cosignature by {self.name} is not a cosignature/v1")
        timestamp = int.from_bytes(blob[:8], "big")  # past 2**63 - 1, the message refuses it
        try:
            self._public_key.verify(blob[8:], cosignature_message(text, timestamp))
        except InvalidSignature as exc:
            raise NoteError(f"cosignature by {self.name}+{self.key_id.hex()} does not verify") from exc
        return timestamp


@dataclass(frozen=True)
class Cosigner:
    """A witness's private side: cosigns checkpoints it has checked for consistency."""

    name: str
    private_key: Ed25519PrivateKey

    @functools.cached_property
    def verifier(self) -> CosignatureVerifier:
        public = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return CosignatureVerifier(self.name, public)

    def cosign(self, text: str, *, timestamp: int) -> str:
        """The signature line (newline included) to add to the checkpoint note of `text`."""
        signature = self.private_key.sign(cosignature_message(text, timestamp))
        blob = self.verifier.key_id + timestamp.to_bytes(8, "big") + signature
        return f"{SIG_PREFIX}{self.name} {base64.b64encode(blob).decode('ascii')}\n"


def add_signature_lines(note: str, lines: list[str]) -> str:
    """`note` with more signature lines (a witness's cosignatures, as cosign returns them)."""
    if any(not line.endswith("\n") or "\n" in line[:-1] for line in lines):
        raise NoteError("signature lines must be single lines, each ending in a newline")
    text, _ = split_note(note)
    out = note + "".join(lines)
    if split_note(out)[0] != text:  # also checks each new line is a well-formed signature line
        raise NoteError("signature lines changed the note text")
    return out


def _check_timestamp(timestamp: int) -> None:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or not 0 <= timestamp <= MAX_TIMESTAMP:
        raise NoteError(f"cosignature timestamp {timestamp!r} is not in 0..2**63 - 1")


def _strict_b64(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise NoteError(f"{what} is not base64") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise NoteError(f"{what} is not canonical base64")
    return raw
