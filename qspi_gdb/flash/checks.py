"""The image as per-sector checks: each piece of the image inside one erase unit with its CRC32,
and the on-target CRCs to compare them with (`read_crcs`). The skip-unchanged test and `verify`
compare these; the plan and the programmer share them."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from qspi_gdb.flash.ranges import Range, image_ranges
from qspi_gdb.inputs.image import Image
from qspi_gdb.loader import mailbox as mb

if TYPE_CHECKING:  # the plan holds checks; these helpers read it
    from qspi_gdb.flash.plan import Plan
    from qspi_gdb.loader.client import LoaderClient

# The skip-unchanged read checks each sector's first bytes before the rest (a page: a sector
# changed near its start is proven changed by a sixteenth of a 4 KiB read)
PREFIX_BYTES = 256

# On-target CRC32 (zlib polynomial, as the loader computes it) of the current flash contents
# of each range, one value per range, in order; None for a range known to differ from the image
# without its CRC (its first bytes differ).
CrcSource = Callable[[Sequence[Range]], Sequence[int | None]] | Mapping[Range, int | None]


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


def query_crcs(source: CrcSource, ranges: Sequence[Range]) -> list[int | None]:
    if isinstance(source, Mapping):
        try:
            return [source[r] for r in ranges]
        except KeyError as e:
            raise ValueError(f"sector_crcs has no CRC for {e.args[0]}") from None
    values = list(source(list(ranges)))
    if len(values) != len(ranges):
        raise ValueError(f"sector_crcs returned {len(values)} CRCs for {len(ranges)} ranges")
    return values


def file_crc(r: Range, want: int, got: int, good: list[dict], bad: list[dict]) -> None:
    """File a range under verified (with its CRC) or mismatched (expected and actual)."""
    entry = {"offset": r.offset, "length": r.length}
    if got == want:
        good.append({**entry, "crc32": f"0x{got:08X}"})
    else:
        bad.append({**entry, "expected": f"0x{want:08X}", "actual": f"0x{got:08X}"})


def proven_unchanged(the_plan: Plan, pre_read: Mapping[Range, int | None]
                     ) -> Callable[[Range], bool]:
    """A verify range is proven when it overlaps no unit the plan writes and every image check
    inside it had a pre-read CRC equal to the image's (so the target holds exactly the image
    there: the skip-unchanged read already was the CRC32 verification on target)."""
    written = [op.range for op in the_plan.operations]
    if the_plan.chip_erase:
        return lambda r: False

    def proven(r: Range) -> bool:
        if any(w.offset < r.end and r.offset < w.end for w in written):
            return False
        inside = [c for c in the_plan.checks if r.offset <= c.range.offset and c.range.end <= r.end]
        return bool(inside) and sum(c.range.length for c in inside) == r.length and all(
            pre_read.get(c.range) is not None and pre_read[c.range] & 0xFFFFFFFF == c.crc32
            for c in inside)

    return proven


def sector_sized(r: Range, sector: int) -> bool:
    """One whole sector: `read_crcs` reads such ranges (and runs of them) with CRC_LIST."""
    return r.offset % sector == 0 and r.length == sector


def read_crcs(client: LoaderClient, sector: int, ranges: Sequence[Range],
              progress: Callable[[int], None] | None = None,
              image: Image | None = None) -> list[int | None]:
    """On-target CRC32 of each range: runs of whole sectors with CRC_LIST, the rest with CRC32
    commands queued several per call. image: the ranges are the image's, and a whole sector
    whose first PREFIX_BYTES differ from it is not read further (None: it differs)."""
    out: dict[int, int | None] = {}
    singles: list[int] = []
    i = 0
    while i < len(ranges):
        r = ranges[i]
        if not sector_sized(r, sector):
            singles.append(i)
            i += 1
            continue
        j = i
        while (j + 1 < len(ranges) and ranges[j + 1].length == sector
               and ranges[j + 1].offset == ranges[j].offset + sector):
            j += 1
        values: list[int | None]
        if image is not None and sector > PREFIX_BYTES:
            values = client.crc_list_prefixed(
                r.offset, sector, PREFIX_BYTES,
                [zlib.crc32(image_bytes(image, Range(s.offset, PREFIX_BYTES)))
                 for s in ranges[i:j + 1]])
        else:
            values = list(client.crc_list(r.offset, sector, j - i + 1))
        out.update(zip(range(i, j + 1), values))
        if progress:
            progress((j - i + 1) * sector)
        i = j + 1
    per_call = client.greeting.max_cmds if client.greeting else 16
    for start in range(0, len(singles), per_call):
        batch = singles[start:start + per_call]
        cmds = [mb.Command(mb.OP_CRC32, addr=ranges[k].offset, len=ranges[k].length)
                for k in batch]
        for k, cmd in zip(batch, client.run(cmds)):
            out[k] = cmd.result0
            if progress:
                progress(ranges[k].length)
    return [out[k] for k in range(len(ranges))]
