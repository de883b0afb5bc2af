"""The flash plan: a pure function of an Image and a FlashConfig (no processes, no I/O).

`plan()` decides, sector by sector, what the programmer will do:
  - refuse what the chip or the address mode cannot do (`qspi_gdb.flash.rules.check_image`:
    past the chip end, overlaps, 16 MiB and 24-bit mode, chips without 4-byte mode);
  - skip 4 KiB sectors whose on-target CRC32 of the image-covered bytes already matches
    (the rest of such a sector is kept anyway, so the whole sector is unchanged);
  - choose the erase unit (4 KiB or 64 KiB) from datasheet times, and a chip erase instead when
    the units it rewrites (image + the bytes read-modify-write keeps) cover the whole chip and
    the part's typical chip-erase time is lower (or when asked: then nothing is kept);
  - list, per erase unit, the bytes outside the image that must be read back first (fills) so
    that nothing outside the image changes (read-modify-write), and the program pages.

The programmer streams `Plan.operations`: for each SectorOp it reads `op.fills` from the
target, calls `plan.build(op, preserved)` (pure) to get the final unit contents and the page
runs worth programming, erases, programs, and checks the unit's CRC32.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

from qspi_gdb.errors import UsageError
from qspi_gdb.flash.checks import (
    Check,
    CrcSource,
    image_bytes,
    image_checks,
    query_crcs,
)
from qspi_gdb.flash.ranges import Range, clip, gaps, image_ranges, merge
from qspi_gdb.flash.rules import (
    BLOCK,
    check_chip_erase,
    check_image,
    chip_erase_pays,
    erase_unit,
)
from qspi_gdb.inputs.flash_config import FlashConfig
from qspi_gdb.inputs.image import Image, image_from_segments

ERASED = 0xFF


@dataclass(frozen=True)
class SectorOp:
    """One erase unit to rewrite. image + fills partition [offset, offset + size) exactly
    (except erase == "none" after an asked-for chip erase, where nothing is read back)."""

    offset: int
    size: int  # 4096 or 65536 (with chip erase: the sector size)
    erase: str  # "4KB" | "64KB" | "none" (erased by the chip erase)
    image: tuple[Range, ...]  # image bytes in this unit
    fills: tuple[Range, ...]  # bytes to read back before erasing and program again
    pages: tuple[Range, ...]  # program pages that hold image bytes

    @property
    def range(self) -> Range:
        return Range(self.offset, self.size)

    @property
    def fill_bytes(self) -> int:
        return sum(r.length for r in self.fills)

    def to_json(self) -> dict:
        return {
            "offset": self.offset,
            "size": self.size,
            "erase": self.erase,
            "image": [r.to_json() for r in self.image],
            "fills": [r.to_json() for r in self.fills],
            "pages": len(self.pages),
        }


@dataclass(frozen=True)
class SectorContent:
    """Final contents of one erase unit and what to program after erasing it."""

    offset: int
    data: bytes = field(repr=False)
    program: tuple[Range, ...]  # coalesced runs of pages that are not all 0xFF
    crc32: int

    @property
    def range(self) -> Range:
        return Range(self.offset, len(self.data))

    def chunk(self, r: Range) -> bytes:
        return self.data[r.offset - self.offset : r.end - self.offset]


@dataclass(frozen=True)
class Plan:
    image: Image = field(repr=False)
    flash_size: int
    address_mode: int
    xip_base: int
    part: str | None
    sector_size: int  # skip-check granularity (4 KiB unless the chip has only 64 KiB erase)
    page_size: int  # program page
    erase_mode: str  # "auto" | "4096" | "65536" | "chip"
    chip_erase: bool  # asked for, or chosen because it is cheaper (then chip_erase_chosen)
    operations: tuple[SectorOp, ...]
    unchanged: tuple[Range, ...]  # sectors left alone because their CRC already matched
    crc_checked: bool  # False: --force, chip erase, or no CRCs supplied
    checks: tuple[Check, ...]  # image bytes per sector with their CRC32 (skip test / verify)
    verify: tuple[Range, ...]  # merged ranges whose CRC is compared after writing
    estimate_typ_s: float  # typical erase + program time (fills of unknown content excluded)
    erase_typ_s: float
    program_typ_s: float
    pages_to_program: int = 0  # image pages holding a byte other than 0xFF (fills may add more)
    chip_erase_chosen: bool = False  # chip erase chosen by weight (bytes outside the image kept)

    # ---- counts for the report
    @property
    def sectors_erased(self) -> int:
        """Erase units erased (4 KiB sectors and 64 KiB blocks), chip erase not included."""
        return sum(1 for op in self.operations if op.erase != "none")

    @property
    def bytes_erased(self) -> int:
        if self.chip_erase:
            return self.flash_size
        return sum(op.size for op in self.operations if op.erase != "none")

    @property
    def sectors_written(self) -> int:
        """4 KiB sectors (sector_size units) that will be rewritten."""
        return sum(op.size // self.sector_size for op in self.operations)

    @property
    def sectors_unchanged(self) -> int:
        return len(self.unchanged)

    @property
    def image_pages(self) -> int:
        return sum(len(op.pages) for op in self.operations)

    @property
    def fill_bytes(self) -> int:
        return sum(op.fill_bytes for op in self.operations)

    @property
    def image_pages_blank(self) -> int:
        """Pages holding image bytes that are all 0xFF: never programmed (an erased page
        already reads 0xFF). Bytes kept around the image can only add more such pages."""
        return self.image_pages - self.pages_to_program

    @property
    def read_back(self) -> tuple[Range, ...]:
        """Every range the programmer reads from the target before erasing."""
        return tuple(r for op in self.operations for r in op.fills)

    @property
    def unchanged_checks(self) -> tuple[Check, ...]:
        """Image pieces in sectors left alone: verify compares these CRCs (already matched)."""
        skipped = {r.offset for r in self.unchanged}
        return tuple(
            c for c in self.checks if c.range.offset // self.sector_size * self.sector_size in skipped
        )

    @property
    def nothing_to_do(self) -> bool:
        return not self.operations and not self.chip_erase

    def build(self, op: SectorOp, preserved: Sequence[bytes] | None = None) -> SectorContent:
        """Final contents of `op`'s unit: preserved bytes (read back, one per op.fills) + image."""
        return build_sector(op, self.image, preserved, page_size=self.page_size)

    # ---- output
    def to_json(self, operations: bool = True) -> dict:
        out = {
            "image": self.image.to_json(),
            "flash_size": self.flash_size,
            "address_mode": self.address_mode,
            "part": self.part,
            "erase_mode": self.erase_mode,
            "chip_erase": self.chip_erase,
            "chip_erase_chosen": self.chip_erase_chosen,
            "sector_size": self.sector_size,
            "page_size": self.page_size,
            "sectors_erased": self.sectors_erased,
            "bytes_erased": self.bytes_erased,
            "sectors_written": self.sectors_written,
            "sectors_unchanged": self.sectors_unchanged,
            "crc_checked": self.crc_checked,
            "image_pages": self.image_pages,
            "pages_to_program": self.pages_to_program,
            "pages_skipped_blank": self.image_pages_blank,
            "fill_bytes": self.fill_bytes,
            "verify": [r.to_json() for r in self.verify],
            "estimate_typ_s": round(self.estimate_typ_s, 6),
        }
        if operations:
            out["operations"] = [op.to_json() for op in self.operations]
            out["unchanged"] = [r.to_json() for r in self.unchanged]
        return out


# --------------------------------------------------------------------------- the plan


def plan(
    image: Image,
    config: FlashConfig,
    *,
    sector_crcs: CrcSource | None = None,
    force: bool = False,
    chip_erase: bool | None = False,
    erase_size: str | int = "auto",
    link_s_per_byte: float | None = None,
    prefill_bytes: int = 0,
) -> Plan:
    """Compute what to erase, read back, program and verify. Pure; raises UsageError on refusal.

    sector_crcs: the on-target CRC32s of the current flash contents, as a callable taking the
    list of ranges (`image_checks(image, sector_size)` ranges of the sectors concerned) and
    returning one CRC per range, or a mapping Range -> CRC. None: nothing is known, every
    touched sector is rewritten. force: rewrite even sectors whose CRC matches.
    erase_size: "auto" (4 KiB unless a whole 64 KiB block is rewritten and 64 KiB erase is
    faster), 4096 or 65536. chip_erase: True erases the whole chip first (bytes outside the
    image become 0xFF; nothing is read back); None lets the plan choose a chip erase by weight
    (`rules.chip_erase_pays`: it keeps every byte outside the image); False never erases the chip.
    link_s_per_byte: what the probe link costs per programmed byte (`ProbeProfile.word_s() / 4`),
    prefill_bytes: what the loader's RAM buffers hold (sent while a chip erase runs); the choice
    by weight counts the transfer with them. None: the link is not known and not counted (the
    erase and program times alone decide).
    """
    cfg = config
    if cfg.size is None or cfg.address_mode is None or not cfg.erase:
        raise ValueError("plan() needs a FlashConfig completed by config.apply_chip()")
    check_image(image, cfg)

    mode = str(erase_size).lower()
    if mode in ("sector", "4k"):
        mode = "4096"
    if mode in ("block", "64k"):
        mode = "65536"
    if mode not in ("auto", "4096", "65536"):
        raise UsageError(f"erase size {erase_size!r} is not auto, 4096 or 65536")
    e4, e64 = cfg.erase_spec(4096), cfg.erase_spec(BLOCK)
    if mode == "4096" and e4 is None:
        raise UsageError(f"{cfg.part or 'the flash'} has no 4 KiB erase the nRF can issue (0x20)")
    if mode == "65536" and e64 is None:
        raise UsageError(f"{cfg.part or 'the flash'} has no 64 KiB erase the nRF can issue (0xD8)")
    if chip_erase:
        check_chip_erase(cfg, whole_chip_verified=False)
    asked_chip = chip_erase is True

    sector = erase_unit(cfg)
    checks = image_checks(image, sector)
    by_sector: dict[int, list[Check]] = {}
    for c in checks:
        by_sector.setdefault(c.range.offset // sector * sector, []).append(c)

    crc_checked = sector_crcs is not None and not force and not asked_chip
    changed = set(by_sector)
    if crc_checked:
        on_target = query_crcs(sector_crcs, [c.range for c in checks])
        same = {}
        for c, crc in zip(checks, on_target):
            base = c.range.offset // sector * sector
            holds = crc is not None and (crc & 0xFFFFFFFF) == c.crc32
            same[base] = same.get(base, True) and holds
        changed = {s for s, ok in same.items() if not ok}

    ranges = image_ranges(image)
    units: list[tuple[int, int, str]] = []  # (offset, size, erase name)
    if asked_chip:
        units = [(s, sector, "none") for s in sorted(by_sector)]
    elif sector == BLOCK or mode == "65536":
        for b in sorted({s // BLOCK * BLOCK for s in changed}):
            units.append((b, BLOCK, "64KB"))
    else:
        use_blocks = set()
        if mode == "auto" and e64 is not None:
            counts: dict[int, int] = {}
            for s in changed:
                counts[s // BLOCK * BLOCK] = counts.get(s // BLOCK * BLOCK, 0) + 1
            page_s = cfg.page_program.typ_s if cfg.page_program else 0.0
            # A 64 KiB erase where it is faster than the sector erases it replaces, counting the
            # pages it makes us program again in the block's unchanged sectors (allowed only
            # where the image covers them whole, so nothing has to be read back).
            for b, n in counts.items():
                again = _pages_to_redo(b, changed, by_sector, image, sector, cfg.program_page_size)
                if again is not None and e64.time.typ_s + again * page_s < n * e4.time.typ_s:
                    use_blocks.add(b)
        for s in sorted(changed):
            b = s // BLOCK * BLOCK
            if b not in use_blocks:
                units.append((s, sector, "4KB"))
            elif not units or units[-1] != (b, BLOCK, "64KB"):
                units.append((b, BLOCK, "64KB"))

    ops = []
    page = cfg.program_page_size
    for offset, size, erase in units:
        inside = clip(ranges, offset, offset + size)
        fills = () if erase == "none" else tuple(gaps(inside, offset, offset + size))
        pages = sorted({p for r in inside for p in range(r.offset // page * page, r.end, page)})
        ops.append(
            SectorOp(
                offset=offset,
                size=size,
                erase=erase,
                image=tuple(inside),
                fills=fills,
                pages=tuple(Range(p, page) for p in pages),
            )
        )

    # Sectors whose CRC matched but that lie in a rewritten 64 KiB block are rewritten too.
    rewritten = {s for offset, size, _ in units for s in range(offset, offset + size, sector)}
    unchanged = tuple(Range(s, sector) for s in sorted(set(by_sector) - rewritten))

    verify = merge([op.range for op in ops] + [c.range for c in checks])

    erase_s = 0.0
    if asked_chip:
        erase_s = cfg.chip_erase.typ_s
    else:
        for op in ops:
            erase_s += (e4 if op.size == 4096 else e64).time.typ_s
    blank_page = bytes([ERASED]) * page
    to_program = 0
    for op in ops:
        for pg in op.pages:
            in_page = clip(op.image, pg.offset, pg.end)
            if any(image_bytes(image, r) != blank_page[: r.length] for r in in_page):
                to_program += 1
    page_s = cfg.page_program.typ_s if cfg.page_program else 0.0
    program_s = page_s * to_program
    per_byte = link_s_per_byte or 0.0
    chosen = chip_erase is None and chip_erase_pays(
        cfg, [op.range for op in ops], erase_s, program_s=program_s,
        transfer_s=to_program * page * per_byte, prefill_s=prefill_bytes * per_byte)
    if chosen:
        # Same units, same fills (read-modify-write keeps every byte), one chip erase.
        ops = [replace(op, erase="none") for op in ops]
        erase_s = cfg.chip_erase.typ_s

    return Plan(
        image=image,
        flash_size=cfg.size,
        address_mode=cfg.address_mode,
        xip_base=cfg.xip_base,
        part=cfg.part,
        sector_size=sector,
        page_size=page,
        erase_mode="chip" if asked_chip or chosen else mode,
        chip_erase=asked_chip or chosen,
        chip_erase_chosen=chosen,
        operations=tuple(ops),
        unchanged=unchanged,
        crc_checked=crc_checked,
        checks=checks,
        verify=tuple(verify),
        estimate_typ_s=erase_s + program_s,
        pages_to_program=to_program,
        erase_typ_s=erase_s,
        program_typ_s=program_s,
    )


def _pages_to_redo(block: int, changed: set[int], by_sector: Mapping[int, Sequence[Check]],
                   image: Image, sector: int, page: int) -> int | None:
    """Pages a 64 KiB erase of `block` would make us program again in its unchanged sectors
    (the non-blank pages of the image there); None when one of them is not wholly image data."""
    pages = 0
    for s in range(block, block + BLOCK, sector):
        if s in changed:
            continue
        checks = by_sector.get(s, ())
        if sum(c.range.length for c in checks) != sector:
            return None
        data = b"".join(image_bytes(image, c.range) for c in sorted(checks, key=lambda c: c.range))
        pages += sum(1 for p in range(0, sector, page) if data[p:p + page] != b"\xff" * page)
    return pages


def build_sector(
    op: SectorOp,
    image: Image,
    preserved: Sequence[bytes] | None = None,
    *,
    page_size: int = 256,
    erased_value: int = ERASED,
) -> SectorContent:
    """Second pure step: the unit's final bytes and the page runs to program after erasing.

    preserved: the bytes read back from the target, one entry per op.fills range, in order.
    Pages that end up all-erased are not programmed (programming 0xFF changes nothing).
    """
    fills = op.fills
    preserved = list(preserved or [])
    if len(preserved) != len(fills):
        raise ValueError(f"{op.range}: {len(fills)} fill range(s) need read-back data, got {len(preserved)}")
    data = bytearray([erased_value]) * op.size
    for r, chunk in zip(fills, preserved):
        if len(chunk) != r.length:
            raise ValueError(f"read-back of {r} is {len(chunk)} bytes, expected {r.length}")
        data[r.offset - op.offset : r.end - op.offset] = chunk
    for r in op.image:
        data[r.offset - op.offset : r.end - op.offset] = image_bytes(image, r)
    blank = bytes([erased_value]) * page_size
    runs: list[Range] = []
    for p in range(0, op.size, page_size):
        if data[p : p + page_size] == blank:
            continue
        if runs and runs[-1].end == op.offset + p:
            runs[-1] = Range(runs[-1].offset, runs[-1].length + page_size)
        else:
            runs.append(Range(op.offset + p, page_size))
    return SectorContent(offset=op.offset, data=bytes(data), program=tuple(runs), crc32=zlib.crc32(data))


def erase_plan(
    config: FlashConfig,
    offset: int,
    length: int,
    *,
    sector_crcs: CrcSource | None = None,
    force: bool = False,
    erase_size: str | int = "auto",
) -> Plan:
    """`erase OFFSET LEN` as a plan: write 0xFF over the range with the usual rules.

    Sectors entirely inside the range are erased and nothing is programmed into them; bytes of
    partially covered sectors outside the range are read back and kept; sectors already blank
    (CRC match) are skipped. offset is a flash offset (see image.to_flash_offset).
    """
    if length <= 0:
        raise UsageError(f"erase length {length} must be positive")
    image = image_from_segments([(offset, b"\xff" * length)], xip_base=config.xip_base, path="erase range")
    return plan(image, config, sector_crcs=sector_crcs, force=force, erase_size=erase_size)
