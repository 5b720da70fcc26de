"""The checkpoint body per C2SP tlog-checkpoint, signed and opened through signing.py.

    <origin>
    <tree size, decimal, no leading zeroes>
    <base64 of the 32-byte root hash>
    [<extension line> …]

each line ending in a newline. signing.Signer signs this text as a signed note and
signing.Verifier opens one; this module only formats and parses what they sign.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from creditledger.ledger.merkle.hashing import HASH_SIZE
from creditledger.ledger.signing import NoteError, Signer, Verifier

MAX_TREE_SIZE = (1 << 64) - 1  # sizes are uint64 in tlog-cosignature's signed subtree message
_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")  # ASCII only: str.isdigit() would take "²" and "٣"


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: origin, size, root. Meant to take over from signing.CheckpointBody (the
    chain head) once the tree replaces the chain: the same text when there are no
    extension lines, but the root kept as bytes and extension lines kept, not dropped."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise NoteError("a checkpoint origin is one non-empty line")
        if type(self.size) is not int or not 0 <= self.size <= MAX_TREE_SIZE:
            raise NoteError(f"checkpoint size {self.size!r} is not a uint64")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != HASH_SIZE:
            raise NoteError(f"a checkpoint root hash is {HASH_SIZE} bytes")
        if any(not line or "\n" in line for line in self.extensions):
            raise NoteError("checkpoint extension lines must be single non-empty lines")
        lines = (self.origin, *self.extensions)
        if any(ord(ch) < 0x20 for line in lines for ch in line):
            raise NoteError("a note holds no control characters but newlines")

    def text(self) -> str:
        """The note text to sign, final newline included."""
        root = base64.b64encode(self.root_hash).decode("ascii")
        return "".join(f"{line}\n" for line in (self.origin, str(self.size), root, *self.extensions))

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse note text (as Verifier.open returns it). NoteError unless it is exactly one
        canonical spelling of a checkpoint, so two different texts never state the same tree."""
        if not text.endswith("\n"):
            raise NoteError("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError("a checkpoint needs an origin, a size and a root hash")
        origin, size, root, *extensions = lines
        if not _SIZE.fullmatch(size):
            raise NoteError(f"checkpoint size {size!r} is not a decimal number without leading zeroes")
        return cls(origin=origin, size=int(size), root_hash=_root_hash(root), extensions=tuple(extensions))

    def sign(self, signer: Signer) -> str:
        """The signed note of this checkpoint by the log's key."""
        return signer.sign(self.text())

    @classmethod
    def open(cls, note: str | bytes, verifier: Verifier) -> Checkpoint:
        """Verify the log's signature on `note` and parse what it states."""
        return cls.parse(verifier.open(note))


def _root_hash(line: str) -> bytes:
    try:
        raw = base64.b64decode(line, validate=True)
    except ValueError as exc:  # binascii.Error, or a character outside ASCII
        raise NoteError("checkpoint root hash is not base64") from exc
    if len(raw) != HASH_SIZE or base64.b64encode(raw).decode("ascii") != line:
        raise NoteError(f"checkpoint root hash is not the canonical base64 of {HASH_SIZE} bytes")
    return raw
