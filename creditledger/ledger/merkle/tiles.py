"""Tiles and entry bundles as C2SP tlog-tiles lays them out (height 8, SHA-256).

The n-th tile at level l holds, for i in 0..255, MTH(D[(n·256 + i)·256**l : (n·256 + i + 1)·256**l]):
level 0 holds leaf hashes, level l > 0 the roots of full tiles of level l - 1. A tree of size s
has, at level l, floor(s / 256**l) hashes, so its rightmost tile there is partial with
floor(s / 256**l) mod 256 of them (none when that is 0). Partial tiles are never hashed into
the level above. Paths: tile/<l>/<n>[.p/<w>], tile/entries/<n>[.p/<w>], n in 3-digit groups,
all but the last prefixed with x (1234067 → x001/x234/067).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from creditledger.ledger.merkle.hashing import HASH_SIZE, MerkleError

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT  # 256 hashes, 8,192 bytes when full
MAX_LEVEL = 63
ENTRIES = -1  # the level of an entry bundle, whose path says "entries"
MAX_ENTRY_BYTES = 0xFFFF  # bundles prefix each entry with a big-endian uint16 length

_GROUP = re.compile(r"x[0-9]{3}")  # [0-9], not \d, which takes any Unicode digit
_LAST = re.compile(r"[0-9]{3}")
_DECIMAL = re.compile(r"[1-9][0-9]*")


@dataclass(frozen=True, order=True)
class Tile:
    """Tile `index` of `level` at `width` hashes (entries, for level ENTRIES)."""

    level: int
    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        if not ENTRIES <= self.level <= MAX_LEVEL:
            raise MerkleError(f"tile level {self.level} is outside {ENTRIES}..{MAX_LEVEL}")
        if self.index < 0:
            raise MerkleError(f"tile index {self.index} is negative")
        if not 1 <= self.width <= TILE_WIDTH:
            raise MerkleError(f"tile width {self.width} is outside 1..{TILE_WIDTH}")

    @property
    def key(self) -> tuple[int, int]:
        """(level, index): a tile's identity in storage, whatever its width."""
        return self.level, self.index

    @property
    def is_full(self) -> bool:
        return self.width == TILE_WIDTH

    def path(self) -> str:
        level = "entries" if self.level == ENTRIES else str(self.level)
        partial = "" if self.is_full else f".p/{self.width}"
        return f"tile/{level}/{_encode_index(self.index)}{partial}"

    def hashes_of(self, data: bytes) -> bytes:
        """This tile's bytes out of stored data, which may be a wider (later) copy of it.

        Tiles only grow at the end, so the first `width` hashes of any later copy are this tile.
        """
        need = self.width * HASH_SIZE
        if len(data) < need:
            raise MerkleError(f"storage returned {len(data)} bytes for {self.path()}, which needs {need}")
        return data[:need]


def _encode_index(index: int) -> str:
    text = f"{index % 1000:03d}"
    index //= 1000
    while index:
        text = f"x{index % 1000:03d}/{text}"
        index //= 1000
    return text


def parse_tile_path(path: str) -> Tile:
    """The tile a tlog-tiles path names; MerkleError unless the path is spelled canonically."""
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "tile":
        raise MerkleError(f"not a tile path: {path!r}")
    level_text, *groups = parts[1:]
    width = TILE_WIDTH
    if len(groups) >= 2 and groups[-2].endswith(".p"):
        width_text = groups.pop()
        groups[-1] = groups[-1][: -len(".p")]
        if not _DECIMAL.fullmatch(width_text) or len(width_text) > 3:
            raise MerkleError(f"bad partial tile width in {path!r}")
        width = int(width_text)
    # Seven groups reach 10**21, past any uint64 index; the bound keeps int() on short strings.
    if not 1 <= len(groups) <= 7 or not all(_GROUP.fullmatch(g) for g in groups[:-1]):
        raise MerkleError(f"bad tile index in {path!r}")
    if not _LAST.fullmatch(groups[-1]):
        raise MerkleError(f"bad tile index in {path!r}")
    index = int("".join(g.lstrip("x") for g in groups))
    tile = Tile(_parse_level(level_text, path), index, width)
    if tile.path() != path:  # leading zero groups, a partial tile of width 256 …
        raise MerkleError(f"tile path {path!r} is not canonical (expected {tile.path()!r})")
    return tile


def _parse_level(text: str, path: str) -> int:
    if text == "entries":
        return ENTRIES
    if not (text == "0" or _DECIMAL.fullmatch(text)) or len(text) > 2 or int(text) > MAX_LEVEL:
        raise MerkleError(f"bad tile level in {path!r}")
    return int(text)


def level_size(size: int, level: int) -> int:
    """How many hashes level `level` holds for a tree of `size` leaves."""
    return size >> (TILE_HEIGHT * level)


def tile_width(size: int, level: int, index: int) -> int:
    """The width of tile (level, index) in a tree of `size` leaves; 0 if it has no hashes yet."""
    return max(0, min(TILE_WIDTH, level_size(size, level) - index * TILE_WIDTH))


def right_edge(size: int) -> list[Tile]:
    """The partial tiles of a tree of `size`, level 0 first: all an append needs to read."""
    edge = []
    level = 0
    while level_size(size, level):
        width = level_size(size, level) % TILE_WIDTH
        if width:
            edge.append(Tile(level, level_size(size, level) // TILE_WIDTH, width))
        level += 1
    return edge


def tiles_for_size(size: int) -> Iterator[Tile]:
    """Every tile a tree of `size` is made of, level by level, left to right."""
    level = 0
    while level_size(size, level):
        count = level_size(size, level)
        for index in range(-(-count // TILE_WIDTH)):
            yield Tile(level, index, tile_width(size, level, index))
        level += 1


def entry_bundle(index: int, size: int) -> Tile:
    """Entry bundle `index` as a tree of `size` leaves has it (the partial one has width < 256)."""
    width = tile_width(size, 0, index)
    if not width:
        raise MerkleError(f"a tree of {size} entries has no entry bundle {index}")
    return Tile(ENTRIES, index, width)


def format_entry_bundle(entries: Iterable[bytes]) -> bytes:
    """Entries as a bundle: each one prefixed with its length as a big-endian uint16."""
    out = bytearray()
    for entry in entries:
        if len(entry) > MAX_ENTRY_BYTES:
            raise MerkleError(f"an entry of {len(entry)} bytes does not fit a bundle (max {MAX_ENTRY_BYTES})")
        out += len(entry).to_bytes(2, "big") + entry
    return bytes(out)


def parse_entry_bundle(data: bytes) -> list[bytes]:
    entries, at = [], 0
    while at < len(data):
        if at + 2 > len(data):
            raise MerkleError("entry bundle ends inside a length prefix")
        length = int.from_bytes(data[at : at + 2], "big")
        if at + 2 + length > len(data):
            raise MerkleError("entry bundle ends inside an entry")
        entries.append(data[at + 2 : at + 2 + length])
        at += 2 + length
    if len(entries) > TILE_WIDTH:
        raise MerkleError(f"an entry bundle holds at most {TILE_WIDTH} entries, this one {len(entries)}")
    return entries
