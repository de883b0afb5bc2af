"""Image inputs -> sorted, non-overlapping segments of flash offsets + data.

Accepts `.bin` with an address (`FILE@ADDR` or a separate address), Intel `.hex` (any number of
segments, via intelhex) and `.elf` (PT_LOAD segments with file data, placed at p_paddr, via
pyelftools). Addresses in .hex/.elf are XIP addresses (nRF52840 0x12000000, nRF5340 0x10000000)
unless `raw_offsets`; a .bin address may be an XIP address or a raw flash offset. What the user
gave is kept next to the flash offset so the report can echo it.

Nothing here knows the chip size: "past the chip end" is the plan's refusal.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from qspi_gdb.errors import UsageError
from qspi_gdb.log import get_logger

XIP_WINDOW = 128 * 1024 * 1024  # both chips map 128 MiB of external flash

log = get_logger(__name__)

HEX_SUFFIXES = {".hex", ".ihex", ".ihx"}
ELF_SUFFIXES = {".elf", ".axf", ".out"}
BIN_SUFFIXES = {".bin", ".img", ".raw"}


@dataclass(frozen=True)
class Segment:
    """Contiguous image data at a flash offset; `address` is where the input put it."""

    offset: int  # flash offset (0 = first byte of the external flash)
    data: bytes = field(repr=False)
    address: int  # the address as given (XIP address, or the raw offset itself)

    @property
    def end(self) -> int:
        return self.offset + len(self.data)

    def to_json(self) -> dict:
        return {"offset": self.offset, "length": len(self.data), "address": self.address}


@dataclass(frozen=True)
class Image:
    """An image ready for planning: segments sorted by offset, none overlapping or touching."""

    path: str
    kind: str  # "bin" | "hex" | "elf"
    segments: tuple[Segment, ...]
    xip_base: int
    given_address: int | None = None  # .bin: the address the user gave
    address_kind: str = "xip"  # "xip" | "offset": how addresses were read
    skipped: tuple[tuple[int, int], ...] = ()  # (address, length) outside the XIP window (only_qspi)
    files: tuple["Image", ...] = ()  # the images merged into this one (several image files)

    @property
    def size(self) -> int:
        return sum(len(s.data) for s in self.segments)

    @property
    def start(self) -> int:
        return self.segments[0].offset

    @property
    def end(self) -> int:
        return self.segments[-1].end

    def to_json(self) -> dict:
        data = {
            "path": self.path,
            "kind": self.kind,
            "bytes": self.size,
            "address_kind": self.address_kind,
            "given_address": self.given_address,
            "xip_base": self.xip_base,
            "segments": [s.to_json() for s in self.segments],
            "skipped": [{"address": a, "length": n} for a, n in self.skipped],
        }
        if self.files:
            data["files"] = [f.to_json() for f in self.files]
        return data

    def describe(self) -> str:
        """'app.bin: 512,583 bytes at XIP address 0x11E98000 (flash offset 0x01E98000)'."""
        if self.files:
            return f"{len(self.files)} files, {self.size:,} bytes: " + "; ".join(
                f.describe() for f in self.files)
        if self.given_address is not None:
            if self.address_kind == "xip":
                return (f"{self.path}: {self.size:,} bytes at XIP address "
                        f"0x{self.given_address:08X} (flash offset 0x{self.start:08X})")
            return f"{self.path}: {self.size:,} bytes at flash offset 0x{self.start:08X}"
        count = len(self.segments)
        return (
            f"{self.path}: {self.size:,} bytes in {count} segment{'' if count == 1 else 's'}, "
            f"flash offsets 0x{self.start:08X}..0x{self.end - 1:08X}"
        )


def parse_int(text: str | int, what: str = "number") -> int:
    """Parse 0x../0b../0o../decimal, with optional K/M suffix (KiB/MiB) and '_' separators."""
    if isinstance(text, int):
        return text
    t = text.strip().replace("_", "")
    m = re.fullmatch(r"(0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|\d+)\s*([kKmM](?:i?B)?)?", t)
    if not m:
        raise UsageError(f"{what} {text!r} is not a number (use e.g. 0x11E98000, 4096 or 32M)")
    if re.fullmatch(r"0+[1-9]\d*", m.group(1)):  # int(x, 0) refuses "01": octal in C or decimal?
        raise UsageError(f"{what} {text!r} has a leading zero (octal or decimal?): write it "
                         "without, or as 0o.. / 0x..")
    value = int(m.group(1), 0)
    suffix = (m.group(2) or "")[:1].upper()
    return value * {"": 1, "K": 1 << 10, "M": 1 << 20}[suffix]


def split_spec(spec: str) -> tuple[str, int | None]:
    """'image.bin@0x11E98000' -> ('image.bin', 0x11E98000); no '@ADDR' -> (spec, None).

    Only a trailing '@<number>' counts, so paths with '@' in them still work.
    """
    head, sep, tail = spec.rpartition("@")
    if sep and head and re.fullmatch(r"\s*(0[xX][0-9a-fA-F_]+|\d[\d_]*)\s*[kKmM]?", tail):
        return head, parse_int(tail, "address")
    return spec, None


def to_flash_offset(address: int, *, xip_base: int, raw: bool = False) -> tuple[int, str]:
    """Map a user address to (flash offset, "xip"|"offset"). Raises UsageError if neither."""
    if raw:
        if not 0 <= address < XIP_WINDOW:
            raise UsageError(f"flash offset 0x{address:X} is beyond the 128 MiB QSPI address space")
        return address, "offset"
    if xip_base <= address < xip_base + XIP_WINDOW:
        return address - xip_base, "xip"
    if 0 <= address < min(xip_base, XIP_WINDOW):
        return address, "offset"
    raise UsageError(
        f"address 0x{address:X} is neither a flash offset (< 0x{XIP_WINDOW:X}) nor in the XIP "
        f"window 0x{xip_base:08X}..0x{xip_base + XIP_WINDOW - 1:08X}"
    )


def _kind_of(path: Path, kind: str | None) -> str:
    if kind:
        if kind not in ("bin", "hex", "elf"):
            raise UsageError(f"{path}: unknown image type {kind!r} (bin, hex or elf)")
        return kind
    suffix = path.suffix.lower()
    if suffix in HEX_SUFFIXES:
        return "hex"
    if suffix in ELF_SUFFIXES:
        return "elf"
    if suffix in BIN_SUFFIXES:
        return "bin"
    with path.open("rb") as f:
        head = f.read(4)
    if head == b"\x7fELF":
        return "elf"
    if head[:1] == b":":
        return "hex"
    return "bin"


def load_image(
    spec: str | os.PathLike,
    *,
    xip_base: int,
    addr: int | str | None = None,
    raw_offsets: bool = False,
    only_qspi: bool = False,
    kind: str | None = None,
) -> Image:
    """Read an image file and return its segments as flash offsets.

    spec: a path, or 'PATH@ADDR' for a .bin. addr: the .bin address (XIP or flash offset) when
    not in spec. raw_offsets: read .hex/.elf addresses (and a .bin address) as flash offsets.
    only_qspi: skip segments outside the XIP window with a warning instead of refusing.
    """
    spec = os.fspath(spec)
    path_text, spec_addr = split_spec(spec)
    path = Path(path_text)
    if spec_addr is not None and not path.exists() and Path(spec).exists():
        path, spec_addr = Path(spec), None  # a file really named 'x@0x100'
    elif spec_addr is None:
        path = Path(spec)
    if not path.exists():
        head, sep, tail = spec.rpartition("@")
        if sep and head and Path(head).is_file():  # 'image.bin@0xZZ': the file is there
            raise UsageError(f"{head}: bad address after '@': {tail!r} is not a number "
                             "(use e.g. image.bin@0x11E98000)")
        raise UsageError(f"{path}: no such file")
    if path.is_dir():
        raise UsageError(f"{path}: is a directory (name an image file)")
    if not path.is_file():
        raise UsageError(f"{path}: not a regular file")
    try:
        kind = _kind_of(path, kind)
    except OSError as exc:  # e.g. no read permission: bad input, not a bug
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if spec_addr is not None and addr is not None and parse_int(addr, "address") != spec_addr:
        raise UsageError(
            f"{path}: address given twice: @0x{spec_addr:X} and --addr 0x{parse_int(addr, 'address'):X}"
        )
    address = spec_addr if spec_addr is not None else (None if addr is None else parse_int(addr, "address"))

    if kind == "bin":
        if address is None:
            raise UsageError(f"{path}: a .bin image needs an address (FILE@ADDR or --addr ADDR)")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
        if not data:
            raise UsageError(f"{path}: file is empty")
        offset, address_kind = to_flash_offset(address, xip_base=xip_base, raw=raw_offsets)
        seg = Segment(offset=offset, data=data, address=address)
        return Image(
            path=str(path),
            kind="bin",
            segments=(seg,),
            xip_base=xip_base,
            given_address=address,
            address_kind=address_kind,
        )

    if address is not None:
        raise UsageError(
            f"{path}: a .{kind} file carries its own addresses; drop the address "
            f"0x{address:X} (use --raw-offsets to read them as flash offsets)"
        )
    chunks = _read_hex(path) if kind == "hex" else _read_elf(path)
    if not chunks:
        raise UsageError(f"{path}: contains no data")
    _check_overlaps(path, chunks)

    base = 0 if raw_offsets else xip_base
    inside: list[tuple[int, bytes]] = []
    outside: list[tuple[int, int]] = []
    for address, data in chunks:
        if base <= address and address + len(data) <= base + XIP_WINDOW:
            inside.append((address, data))
        else:
            outside.append((address, len(data)))
    if outside:
        listing = ", ".join(f"0x{a:08X}..0x{a + n - 1:08X}" for a, n in outside)
        window = f"0x{base:08X}..0x{base + XIP_WINDOW - 1:08X}"
        what = "flash offsets" if raw_offsets else "the QSPI XIP window"
        if not only_qspi:
            raise UsageError(
                f"{path}: segment(s) outside {what} {window}: {listing} " f"(--only-qspi skips them)"
            )
        log.warning(
            "skipping segments outside the QSPI window", path=str(path), window=window, segments=listing
        )
    if not inside:
        raise UsageError(
            f"{path}: no data inside {'flash offsets' if raw_offsets else 'the QSPI XIP window'}"
        )

    segments = tuple(Segment(offset=a - base, data=d, address=a) for a, d in _merge_touching(inside))
    return Image(
        path=str(path),
        kind=kind,
        segments=segments,
        xip_base=xip_base,
        address_kind="offset" if raw_offsets else "xip",
        skipped=tuple(outside),
    )


class _HexLines:
    """A HEX file's lines for intelhex's loadhex (it iterates any object that has `read`),
    counting how many it took: intelhex stops at the end-of-file record, and at the end of the
    text, without saying which."""

    def __init__(self, text: str):
        self.lines = text.splitlines(keepends=True)
        self.taken = 0

    def read(self) -> str:  # what makes it a file to intelhex, which only iterates it
        return "".join(self.lines)

    def __iter__(self):
        for line in self.lines:
            self.taken += 1
            yield line


def _check_hex_end(path: Path, lines: _HexLines) -> None:
    """A HEX file ends with its end-of-file record: without one it was cut short (e.g. at a
    line boundary, which every record check passes); records after it would be ignored."""
    last = lines.lines[lines.taken - 1].strip() if lines.taken else ""
    if not (last[:1] == ":" and last[7:9] == "01"):
        raise UsageError(f"{path}: no end-of-file record (:00000001FF): the file is truncated")
    after = [n for n, line in enumerate(lines.lines[lines.taken:], lines.taken + 1)
             if line.strip()]
    if after:
        raise UsageError(f"{path}: line {after[0]}: records after the end-of-file record "
                         f"(line {lines.taken})")


def _read_hex(path: Path) -> list[tuple[int, bytes]]:
    from intelhex import AddressOverlapError, IntelHex, IntelHexError

    ih = IntelHex()
    try:
        with path.open() as f:
            text = f.read()
        lines = _HexLines(text)
        ih.loadhex(lines)
        _check_hex_end(path, lines)
    except AddressOverlapError as e:
        addr = getattr(e, "address", None)
        line = getattr(e, "line", None)
        earlier = next(((s, t) for s, t in ih.segments() if addr is not None and s <= addr < t), None)
        rec = _hex_record_range(path, line, ih)
        before = f"0x{earlier[0]:08X}..0x{earlier[1] - 1:08X}" if earlier else "earlier data"
        here = f"0x{rec[0]:08X}..0x{rec[1] - 1:08X}" if rec else f"0x{addr:08X}"
        raise UsageError(f"{path}: line {line}: record {here} overlaps {before}") from None
    except IntelHexError as e:
        raise UsageError(f"{path}: bad Intel HEX: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: cannot read: {e}") from None
    return [(start, ih.tobinstr(start=start, end=end - 1)) for start, end in ih.segments()]


def _hex_record_range(path: Path, line: int | None, ih) -> tuple[int, int] | None:
    """Address range of the data record on `line` (1-based), for the overlap message."""
    if not line:
        return None
    try:
        text = path.read_text(errors="replace").splitlines()[line - 1].strip()
        raw = bytes.fromhex(text[1:])
        length, offset = raw[0], raw[1] << 8 | raw[2]
    except (IndexError, ValueError):
        return None
    # The upper address comes from the last extended-address record seen; intelhex keeps it
    # only internally, so take it from the address the error named when available.
    start_hi = 0
    for prev in reversed(path.read_text(errors="replace").splitlines()[: line - 1]):
        p = prev.strip()
        if len(p) >= 15 and p[7:9] in ("02", "04"):
            value = int(p[9:13], 16)
            start_hi = value << 16 if p[7:9] == "04" else value << 4
            break
    start = start_hi + offset
    return start, start + length


def _read_elf(path: Path) -> list[tuple[int, bytes]]:
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    chunks: list[tuple[int, bytes]] = []
    try:
        with path.open("rb") as f:
            elf = ELFFile(f)
            for seg in elf.iter_segments():
                if seg["p_type"] != "PT_LOAD" or seg["p_filesz"] == 0:
                    continue
                data = seg.data()[: seg["p_filesz"]]
                if len(data) != seg["p_filesz"]:
                    raise UsageError(
                        f"{path}: PT_LOAD at 0x{seg['p_paddr']:08X} is truncated "
                        f"({len(data)} of {seg['p_filesz']} bytes)"
                    )
                chunks.append((seg["p_paddr"], data))
    except ELFError as e:
        raise UsageError(f"{path}: bad ELF: {e}") from None
    except (OSError, ValueError, KeyError) as e:
        raise UsageError(f"{path}: cannot read ELF: {e}") from None
    return chunks


def _check_overlaps(path: Path, chunks: list[tuple[int, bytes]]) -> None:
    ordered = sorted(chunks, key=lambda c: c[0])
    for (a0, d0), (a1, d1) in zip(ordered, ordered[1:]):
        if a1 < a0 + len(d0):
            raise UsageError(
                f"{path}: segments overlap: 0x{a0:08X}..0x{a0 + len(d0) - 1:08X} "
                f"and 0x{a1:08X}..0x{a1 + len(d1) - 1:08X}"
            )


def _merge_touching(chunks: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    merged: list[tuple[int, bytearray]] = []
    for addr, data in sorted(chunks, key=lambda c: c[0]):
        if merged and merged[-1][0] + len(merged[-1][1]) == addr:
            merged[-1][1].extend(data)
        else:
            merged.append((addr, bytearray(data)))
    return [(a, bytes(d)) for a, d in merged]


def merge_images(images: list[Image] | tuple[Image, ...]) -> Image:
    """Several image files as one Image (one plan, one connection); data of two files that
    overlaps is refused naming both files and their ranges. One image is returned as it is."""
    if len(images) == 1:
        return images[0]
    if not images:
        raise UsageError("no image given")
    placed = sorted(((s.offset, s.end, img.path) for img in images for s in img.segments))
    reach = placed[0]
    for here in placed[1:]:
        if here[0] < reach[1]:
            first, second = (reach, here) if reach[2] != here[2] else (here, reach)
            raise UsageError(
                f"{first[2]} (flash offsets 0x{first[0]:08X}..0x{first[1] - 1:08X}) and "
                f"{second[2]} (0x{second[0]:08X}..0x{second[1] - 1:08X}) overlap at flash "
                f"offset 0x{here[0]:08X}")
        if here[1] > reach[1]:
            reach = here
    kinds = {img.kind for img in images}
    address_kinds = {img.address_kind for img in images}
    chunks = [(s.offset, s.data) for img in images for s in img.segments]
    return Image(
        path=" + ".join(img.path for img in images),
        kind=kinds.pop() if len(kinds) == 1 else "mixed",
        segments=tuple(Segment(offset=o, data=d, address=o + (images[0].xip_base if
                                                              address_kinds == {"xip"} else 0))
                       for o, d in _merge_touching(chunks)),
        xip_base=images[0].xip_base,
        address_kind="xip" if address_kinds == {"xip"} else "offset",
        skipped=tuple(x for img in images for x in img.skipped),
        files=tuple(images),
    )


def image_from_segments(
    segments: list[tuple[int, bytes]], *, xip_base: int = 0, path: str = "<memory>"
) -> Image:
    """Build an Image from (flash offset, data) pairs (tests, `erase`, generated content)."""
    chunks = [(o, bytes(d)) for o, d in segments if len(d)]
    if not chunks:
        raise UsageError(f"{path}: contains no data")
    _check_overlaps(Path(path), chunks)
    return Image(
        path=path,
        kind="bin",
        segments=tuple(Segment(offset=o, data=d, address=o) for o, d in _merge_touching(chunks)),
        xip_base=xip_base,
        address_kind="offset",
    )
