"""The image as per-sector checks: each piece of the image inside one erase unit with its CRC32,
and the on-target CRCs to compare them with. The skip-unchanged test and `verify` compare
these; the plan and the programmer share them."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from qspi_gdb.flash.ranges import Range, image_ranges
from qspi_gdb.inputs.image import Image

# On-target CRC32 (zlib polynomial, as the loader computes it) of the current flash contents
# of each range, one value per range, in order.
CrcSource = Callable[[Sequence[Range]], Sequence[int]] | Mapping[Range, int]


@dataclass(frozen=True)
class Check:
    """A range and the CRC32 it must have."""

    range: Range
    crc32: int

    def to_json(self) -> dict:
        return {**self.range.to_json(), "crc32": f"0x{self.crc32:08X}"}


def image_bytes(image: Image, r: Range) -> bytes:
    """Image data of a range lying inside one segment."""
    for s in image.segments:
        if s.offset <= r.offset and r.end <= s.end:
            return s.data[r.offset - s.offset : r.end - s.offset]
    raise ValueError(f"{r} is not inside one image segment")


def image_checks(image: Image, sector_size: int = 4096) -> tuple[Check, ...]:
    """The image split at sector boundaries, each piece with its CRC32.

    These are the ranges the skip-unchanged test and `verify` compare on the target.
    """
    checks = []
    for r in image_ranges(image):
        pos = r.offset
        while pos < r.end:
            end = min(r.end, (pos // sector_size + 1) * sector_size)
            piece = Range(pos, end - pos)
            checks.append(Check(piece, zlib.crc32(image_bytes(image, piece))))
            pos = end
    return tuple(checks)


def query_crcs(source: CrcSource, ranges: Sequence[Range]) -> list[int]:
    if isinstance(source, Mapping):
        try:
            return [source[r] for r in ranges]
        except KeyError as e:
            raise ValueError(f"sector_crcs has no CRC for {e.args[0]}") from None
    values = list(source(list(ranges)))
    if len(values) != len(ranges):
        raise ValueError(f"sector_crcs returned {len(values)} CRCs for {len(ranges)} ranges")
    return values
