"""Every rule about where and how the flash may be touched, in one place: image ranges against
the chip (overlaps, past the end, 24-bit addressing, chips without 4-byte mode), read / erase
ranges, the erase unit and the erase steps of a range, when a chip erase pays and when it can
be verified.

Pure functions of a FlashConfig (completed by `inputs.detect.apply_chip`) that return data or
raise UsageError (nothing written). The plan, the programmer and the jobs call them; nothing
else words these refusals.
"""

from __future__ import annotations

from dataclasses import dataclass

from qspi_gdb.errors import UsageError
from qspi_gdb.flash.ranges import Range, image_ranges, merge
from qspi_gdb.inputs.flash_config import MIB16, FlashConfig
from qspi_gdb.inputs.image import Image, parse_int, to_flash_offset

BLOCK = 65536  # the 64 KiB erase block (0xD8)
SECTOR = 4096  # the 4 KiB erase sector (0x20)


@dataclass(frozen=True)
class EraseRun:
    """Erase [offset, offset+length) in units of `block` bytes (4096 or 65536)."""

    offset: int
    length: int
    block: int

    @property
    def units(self) -> int:
        return self.length // self.block


def size_text(n: int) -> str:
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n >> 10} KiB"
    return f"{n:,} B"


def chip_text(cfg: FlashConfig, size: int | None = None) -> str:
    """The flash as messages name it, saying whether it was detected or only assumed: 'IS25WP256
    (32 MiB, detected)', 'MX25R6435F (8 MiB, assumed from preset nrf5340dk, not detected)', or
    'the flash (8 MiB per ext.json, not detected)' when a config file states the size."""
    size = cfg.size if size is None else size
    size_part = size_text(size) if size else "size unknown"
    if cfg.detected in ("sfdp", "jedec-table"):
        return f"{cfg.part or 'the flash'} ({size_part}, detected)"
    size_source = cfg.sources.get("size", "")
    if cfg.detected == "assumed" or not size_source or size_source.startswith("preset "):
        board = cfg.sources.get("board", "the board preset")
        return f"{cfg.part or 'the flash'} ({size_part}, assumed from {board}, not detected)"
    return f"the flash ({size_part} per {size_source}, not detected)"


def erase_unit(cfg: FlashConfig) -> int:
    """The smallest erase the plan uses: 4 KiB, or 64 KiB when the configuration asks for it
    (nrfutil `page_size` 65536, `--page-size 65536`) or the chip has no 4 KiB erase."""
    return SECTOR if cfg.sector_size != BLOCK and cfg.erase_spec(SECTOR) else BLOCK


def _address_mode_source(cfg: FlashConfig) -> str:
    return cfg.sources.get("address_mode", "config")


def _where(image: Image, offset: int) -> str:
    """'flash offset 0x.. (XIP 0x..)' for messages."""
    if image.address_kind == "xip":
        return f"flash offset 0x{offset:08X} (XIP 0x{image.xip_base + offset:08X})"
    return f"flash offset 0x{offset:08X}"


def check_image(image: Image, cfg: FlashConfig) -> None:
    """Refuse an image the chip cannot take: overlapping ranges, data past the chip end, data at
    or above 16 MiB in 24-bit mode or on a chip that has no 4-byte addressing."""
    ordered = sorted(image_ranges(image))
    for a, b in zip(ordered, ordered[1:]):
        if b.offset < a.end:
            raise UsageError(f"{image.path}: image ranges overlap: {a} and {b}")
    chip = chip_text(cfg)
    for r in ordered:
        if r.offset < 0:
            raise UsageError(f"{image.path}: negative flash offset {r.offset}")
        if r.end > cfg.size:
            raise UsageError(
                f"{image.path}: image {r} ends at {_where(image, r.end - 1)}, past the end of "
                f"{chip} at 0x{cfg.size - 1:08X}"
            )
    top = ordered[-1]
    if top.end > MIB16:
        first = max(top.offset, MIB16)
        if cfg.address_mode != 32:
            raise UsageError(
                f"{image.path}: image data at {_where(image, first)} is at or above 16 MiB but "
                f"the address mode is MODE24BIT ({_address_mode_source(cfg)}); "
                "24-bit addresses reach only 0x00FFFFFF: use MODE32BIT"
            )
        if cfg.four_byte_entry is None:
            raise UsageError(
                f"{image.path}: image data at {_where(image, first)} is above 16 MiB but {chip} "
                "only has 3-byte addressing (no 4-byte entry method in SFDP DW16)"
            )


def check_range(cfg: FlashConfig, r: Range, what: str = "range", xip: str = "") -> None:
    """Refuse a read/erase range the chip cannot serve: empty, past the end, at or above 16 MiB
    in 24-bit mode or without 4-byte addressing. xip: ' (XIP 0x...)' for the message."""
    _check_length(r, what)
    _check_end(cfg, cfg.size, r, what, xip)
    _check_24_bit(cfg, cfg.address_mode, r, what, xip)
    if r.end > MIB16 and cfg.four_byte_entry is None:
        raise UsageError(f"{what} {r}{xip} is above 16 MiB but the flash has only 3-byte addressing")


def check_stated_range(cfg: FlashConfig, r: Range, what: str = "range", *,
                       erase: bool = False) -> None:
    """Before connecting, with the configuration as stated (the chip not yet detected): refuse
    what no chip can make right: an empty range, an erase that is not whole 4 KiB sectors, a
    range past a size or at 16 MiB with a 24-bit address mode that a config file or the command
    line states. A board preset's usual part is no statement: the chip present decides that."""
    _check_length(r, what)
    if erase:
        _check_whole_units(r, SECTOR)
    stated_size = not cfg.sources.get("size", "preset ").startswith("preset ")
    _check_end(cfg, cfg.size if stated_size else None, r, what)
    _check_24_bit(cfg, cfg.address_mode, r, what)


def _check_length(r: Range, what: str) -> None:
    if r.length <= 0:
        raise UsageError(f"{what} length {r.length} must be positive")


def _check_whole_units(r: Range, unit: int) -> None:
    if r.offset % unit or r.length % unit:
        raise UsageError(f"erase range 0x{r.offset:08X}+0x{r.length:X} must be whole "
                         f"{unit // 1024} KiB sectors (offset and length multiples of "
                         f"0x{unit:X})")


def _check_end(cfg: FlashConfig, size: int | None, r: Range, what: str, xip: str = "") -> None:
    if size is not None and r.end > size:
        raise UsageError(
            f"{what} {r}{xip} runs past the end of {chip_text(cfg, size)} at 0x{size - 1:08X}")


def _check_24_bit(cfg: FlashConfig, mode: int | None, r: Range, what: str, xip: str = "") -> None:
    """mode None: not known yet (the chip decides), nothing to refuse."""
    if r.end > MIB16 and mode is not None and mode != 32:
        raise UsageError(
            f"{what} {r}{xip} reaches 16 MiB or more but the address mode is MODE24BIT "
            f"({_address_mode_source(cfg)}); use MODE32BIT"
        )


def resolve_range(
    cfg: FlashConfig, address: int | str, length: int | str, *, raw: bool = False, what: str = "range"
) -> tuple[Range, str]:
    """ADDR LEN of `read` / `erase` -> (flash Range, "xip" | "offset"), refused by check_range.

    address: XIP address or flash offset (raw=True: always a flash offset).
    """
    addr = parse_int(address, "address")
    n = parse_int(length, "length")
    offset, kind = to_flash_offset(addr, xip_base=cfg.xip_base, raw=raw)
    r = Range(offset, n)
    check_range(cfg, r, what, f" (XIP 0x{cfg.xip_base + offset:08X})" if kind == "xip" else "")
    return r, kind


def erase_runs(cfg: FlashConfig, r: Range) -> list[EraseRun]:
    """A range of whole erase units -> 4 KiB head, 64 KiB middle (when the chip has the block
    erase and it is faster than 16 sector erases), 4 KiB tail."""
    small = erase_unit(cfg)
    if r.length <= 0:
        _check_length(r, "erase")
    _check_whole_units(r, small)
    check_range(cfg, r, "erase")
    e4, e64 = cfg.erase_spec(SECTOR), cfg.erase_spec(BLOCK)
    use_big = e64 is not None and (e4 is None or e64.time.typ_s < 16 * e4.time.typ_s)
    runs = []
    pos = r.offset
    while pos < r.end:
        if use_big and pos % BLOCK == 0 and r.end - pos >= BLOCK:
            n = (r.end - pos) // BLOCK * BLOCK
            runs.append(EraseRun(pos, n, BLOCK))
        else:
            stop = min(r.end, (pos // BLOCK + 1) * BLOCK) if use_big else r.end
            runs.append(EraseRun(pos, stop - pos, small))
            n = stop - pos
        pos += n
    return runs


def check_chip_erase(cfg: FlashConfig, *, whole_chip_verified: bool) -> None:
    """A chip erase needs a known erase time (its deadline); when the whole chip is verified
    afterwards (`erase --all`) it must be readable: in 24-bit mode the part of a chip above
    16 MiB cannot be read back, so that is refused before anything is erased."""
    if cfg.chip_erase is None:
        raise UsageError("chip erase time unknown for this flash")
    if whole_chip_verified:
        check_stated_chip_erase(cfg, cfg.address_mode)


def check_stated_chip_erase(cfg: FlashConfig, mode: int | None = None) -> None:
    """`erase --all` before connecting, with the configuration as stated: a chip above 16 MiB
    cannot be read back (verified) in 24-bit mode. mode None: the address mode as stated, and
    nothing to refuse while the size is only a preset's assumption."""
    if mode is None:
        if cfg.sources.get("size", "preset ").startswith("preset "):
            return
        mode = cfg.address_mode
    if cfg.size and cfg.size > MIB16 and mode is not None and mode != 32:
        raise UsageError(f"erase --all: the {cfg.size >> 20} MiB chip cannot be verified above "
                         f"16 MiB in 24-bit address mode ({_address_mode_source(cfg)}); use "
                         "MODE32BIT")


def pipelined_write_s(erase_s: float, program_s: float, link_s: float, *,
                      chip_erase: bool = False, prefill_s: float = 0.0) -> float:
    """Erase + program with the link's transfer beside them (loader/pipeline.py). Unit erases
    go out one step ahead of the programs, so the transfer overlaps all the flash work:
    max(erase + program, link). A chip erase must end before the first page is programmed,
    and the transfer overlaps it only by what the loader's RAM buffers hold (prefill_s):
    chip + max(program, link - prefill). The plan's chip-erase choice and the dry run's
    estimate weigh this one model."""
    if chip_erase:
        return erase_s + max(program_s, link_s - min(prefill_s, link_s))
    return max(erase_s + program_s, link_s)


def chip_erase_pays(cfg: FlashConfig, units: list[Range], units_erase_s: float, *,
                    program_s: float = 0.0, transfer_s: float = 0.0,
                    prefill_s: float = 0.0) -> bool:
    """A chip erase instead of erasing `units` (typical time units_erase_s) when those units,
    i.e. the image and the bytes read-modify-write keeps, cover the whole chip, so it destroys
    nothing the plan does not write back, and it ends the job sooner.

    Both ways are timed by `pipelined_write_s`. With the link free (transfer_s 0) this is the
    erase times alone (MX25R6435F: 52 s against 128 x 0.48 s for 8 MiB); through a J-Link OB
    the same 8 MiB take ~79 s of link, which the block erases hide and the chip erase does
    not."""
    if cfg.chip_erase is None or not units:
        return False
    chip_s = pipelined_write_s(cfg.chip_erase.typ_s, program_s, transfer_s, chip_erase=True,
                               prefill_s=prefill_s)
    if chip_s >= pipelined_write_s(units_erase_s, program_s, transfer_s):
        return False
    return merge(units) == [Range(0, cfg.size)]
