"""Byte ranges of the flash and the small algebra the plan needs on them (clip, gaps, merge)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from qspi_gdb.inputs.image import Image


@dataclass(frozen=True, order=True)
class Range:
    offset: int
    length: int

    @property
    def end(self) -> int:
        return self.offset + self.length

    def to_json(self) -> dict:
        return {"offset": self.offset, "length": self.length}

    def __str__(self) -> str:
        return f"0x{self.offset:08X}..0x{self.end - 1:08X}"


def image_ranges(image: Image) -> list[Range]:
    return [Range(s.offset, len(s.data)) for s in image.segments]


def clip(ranges: Sequence[Range], lo: int, hi: int) -> list[Range]:
    out = []
    for r in ranges:
        a, b = max(r.offset, lo), min(r.end, hi)
        if a < b:
            out.append(Range(a, b - a))
    return out


def gaps(covered: Sequence[Range], lo: int, hi: int) -> list[Range]:
    out, pos = [], lo
    for r in covered:
        if r.offset > pos:
            out.append(Range(pos, r.offset - pos))
        pos = max(pos, r.end)
    if pos < hi:
        out.append(Range(pos, hi - pos))
    return out


def merge(ranges: Sequence[Range]) -> list[Range]:
    out: list[Range] = []
    for r in sorted(ranges):
        if out and r.offset <= out[-1].end:
            last = out[-1]
            out[-1] = Range(last.offset, max(last.end, r.end) - last.offset)
        else:
            out.append(r)
    return out
