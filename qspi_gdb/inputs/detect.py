"""Detection: fold the flash actually present (JEDEC ID + SFDP, or the part table) into a
FlashConfig. The chip wins for everything it knows about itself; an explicit setting (file or
command line) that contradicts it is an error naming both values; a read or program mode the
chip cannot execute is replaced by the fastest one it can (a ConfigWarning when it was explicit).
Pure: data in, FlashConfig out.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from qspi_gdb.errors import TargetError, UsageError
from qspi_gdb.inputs.flash_config import (
    GENERIC_TIMES,
    MIB16,
    MODE_LINES,
    NRF_ERASE_OPCODES,
    READOC_BY_SPEED,
    READOC_SFDP_MODE,
    WRITEOC_BY_SPEED,
    ConfigWarning,
    EraseSpec,
    FlashConfig,
    Timing,
)
from qspi_gdb.inputs.parts import Part, by_jedec, by_name
from qspi_gdb.inputs.sfdp import Sfdp
from qspi_gdb.inputs.sfdp_decode import parse_sfdp


def _chip_text(part: Part | None, jedec_id: bytes | None) -> str:
    name = part.name if part else "the chip"
    return f"{name} (JEDEC ID {jedec_id.hex().upper()})" if jedec_id else name


def _size_text(n: int) -> str:
    return f"{n} ({n / (1 << 20):g} MiB)" if n >= 1 << 20 else str(n)


def _fit_modes(
    cfg: FlashConfig,
    part: Part | None,
    sfdp_fast_modes: set[str] | None,
    sfdp_source: str,
    chip_text: str,
    sources: dict[str, str],
    explicit: set[str],
) -> FlashConfig:
    """Replace a readoc/writeoc the chip cannot execute by the fastest one it can.

    What the chip can do: the part table's modes (known parts only) and, for reads, the fast
    reads its SFDP announces. An unknown part without SFDP keeps whatever was configured. The
    replacement never uses more data lines than the configured mode, so it never needs a quad
    enable (or io2/io3) that the configured mode did not already need. A replaced value that
    was given explicitly (file or CLI) becomes a ConfigWarning; a replaced default only a source.
    """

    def missing_read(mode: str) -> str | None:
        if part is not None and part.read_modes is not None and mode not in part.read_modes:
            why = part.why_not(mode)
            return f"not supported by {part.name}" + (f" ({why})" if why else "")
        need = READOC_SFDP_MODE.get(mode)
        if sfdp_fast_modes is not None and need and need not in sfdp_fast_modes:
            return f"not supported by {chip_text} ({sfdp_source} announces no {need} fast read)"
        return None

    def missing_write(mode: str) -> str | None:
        if part is not None and part.write_modes is not None and mode not in part.write_modes:
            why = part.why_not(mode)
            return f"not supported by {part.name}" + (f" ({why})" if why else "")
        return None

    updates: dict[str, str] = {}
    warnings = list(cfg.warnings)
    for setting, by_speed, missing in (
        ("readoc", READOC_BY_SPEED, missing_read),
        ("writeoc", WRITEOC_BY_SPEED, missing_write),
    ):
        configured = getattr(cfg, setting)
        reason = missing(configured)
        if reason is None:
            continue
        lines = MODE_LINES[configured]
        usable = [m for m in by_speed if MODE_LINES[m] <= lines and missing(m) is None]
        used = usable[0] if usable else by_speed[-1]  # FASTREAD / PP: every serial NOR has them
        origin = sources.get(setting, "default")
        if setting in explicit:
            warnings.append(ConfigWarning(setting, configured, used, reason, origin))
        updates[setting] = used
        sources[setting] = f"chip ({configured} {reason})"
    if not updates:
        return cfg
    return replace(cfg, **updates, warnings=tuple(warnings))


def apply_chip(cfg: FlashConfig, *, jedec_id: bytes | None = None, sfdp: Sfdp | None = None) -> FlashConfig:
    """Fold in the flash actually present; it wins. With nothing detected, assume the preset part.

    Raises UsageError when an explicit setting (file/CLI) contradicts the chip, naming both
    values, and TargetError when RDID shows no chip at all. A read or program mode the chip
    cannot execute is not an error: it is replaced by the fastest one it can, and an explicit
    one is reported in the result's `warnings` (ConfigWarning) for the caller to log.
    """
    sources = dict(cfg.sources)
    explicit = {k for k, v in sources.items() if not v.startswith("preset ")}
    part: Part | None = None
    detected = "assumed"

    if jedec_id is not None:
        jedec_id = bytes(jedec_id[:3])
        if jedec_id in (b"\xff\xff\xff", b"\x00\x00\x00"):
            raise TargetError(
                f"no flash answers RDID (JEDEC ID {jedec_id.hex().upper()}): check the board, pins and power"
            )
        if cfg.expected_jedec_id is not None and cfg.expected_jedec_id != jedec_id:
            known = by_jedec(jedec_id)
            raise UsageError(
                f"JEDEC ID mismatch: expected {cfg.expected_jedec_id.hex().upper()} "
                f"({sources.get('expected_jedec_id', 'config')}), chip answers {jedec_id.hex().upper()}"
                + (f" ({known.name})" if known else "")
            )
        part = by_jedec(jedec_id)
        detected = "sfdp" if sfdp is not None else "jedec-table"
        part_source = f"JEDEC ID {jedec_id.hex().upper()}"
    else:
        part = by_name(cfg.part) if cfg.part else None
        part_source = f"assumed from {sources.get('part', 'preset')}"
        if sfdp is not None:
            detected = "sfdp"
    if sfdp is None and part is not None:
        sfdp = parse_sfdp(part.sfdp_bytes) if part.sfdp_bytes else None
        sfdp_source = f"part table ({part.name})"
    else:
        sfdp_source = "SFDP"

    updates: dict[str, Any] = {"jedec_id": jedec_id, "detected": detected}
    updates["part"] = part.name if part else None
    sources["part"] = part_source

    # Size: SFDP density, else the part table, else an explicit value.
    chip_size = sfdp.size if sfdp else (part.size if part else None)
    chip_size_source = sfdp_source if sfdp else (part_source if part else None)
    if chip_size is not None:
        if "size" in explicit and cfg.size != chip_size:
            hint = " (that is the size in bits)" if cfg.size == 8 * chip_size else ""
            raise UsageError(
                f"{sources['size']}: flash size {_size_text(cfg.size)}{hint} contradicts the chip: "
                f"{_chip_text(part, jedec_id)} has {_size_text(chip_size)} per {chip_size_source}"
            )
        updates["size"] = chip_size
        sources["size"] = chip_size_source
    elif cfg.size is None or "size" not in explicit:
        raise UsageError(
            f"cannot tell the flash size: chip {jedec_id.hex().upper() if jedec_id else '?'} has no SFDP and "
            f"is not in the part table; give flash_size in a config file or --flash-size"
        )

    # Erase types the nRF can issue, with times.
    if sfdp is not None:
        b = sfdp.bfpt
        erase = []
        for size, opcode in NRF_ERASE_OPCODES.items():
            et = sfdp.erase_type(size)
            if et is None or et.opcode != opcode:
                continue
            t = Timing(et.typ_ms / 1e3, et.max_ms / 1e3) if et.typ_ms else GENERIC_TIMES[size]
            erase.append(EraseSpec(size, opcode, t))
        if not erase:
            raise UsageError(
                f"{sfdp_source}: the chip has no 4 KiB (0x20) or 64 KiB (0xD8) erase, "
                "the only ones nRF QSPI can issue"
            )
        updates["erase"] = tuple(erase)
        updates["program_page_size"] = b.page_size or 256
        updates["page_program"] = (
            Timing(b.page_program_typ_us / 1e6, b.page_program_max_us / 1e6)
            if b.page_program_typ_us
            else GENERIC_TIMES["page"]
        )
        updates["chip_erase"] = (
            Timing(b.chip_erase_typ_ms / 1e3, b.chip_erase_max_ms / 1e3)
            if b.chip_erase_typ_ms
            else GENERIC_TIMES["chip"]
        )
        updates["four_byte_entry"] = sfdp.four_byte_entry
        updates["four_byte_exit"] = sfdp.four_byte_exit
        updates["quad_enable"] = b.qer_name
        for key in (
            "erase",
            "program_page_size",
            "page_program",
            "chip_erase",
            "four_byte_entry",
            "four_byte_exit",
            "quad_enable",
        ):
            sources[key] = sfdp_source
        sfdp_fast_modes: set[str] | None = {fr.mode for fr in b.fast_reads}
        four_capable = sfdp.four_byte_capable
    else:
        # No SFDP anywhere: only generic assumptions (a chip beyond 16 MiB then needs a config).
        updates["erase"] = tuple(EraseSpec(s, op, GENERIC_TIMES[s]) for s, op in NRF_ERASE_OPCODES.items())
        updates["page_program"] = GENERIC_TIMES["page"]
        updates["chip_erase"] = GENERIC_TIMES["chip"]
        updates["four_byte_entry"] = "B7" if cfg.address_mode == 32 else None
        updates["four_byte_exit"] = "E9" if cfg.address_mode == 32 else None
        four_capable = cfg.address_mode == 32
        sfdp_fast_modes = None
        for key in ("erase", "page_program", "chip_erase", "four_byte_entry", "four_byte_exit"):
            sources[key] = "default (no SFDP)"

    merged = replace(cfg, **updates)
    merged = _fit_modes(merged, part, sfdp_fast_modes, sfdp_source, _chip_text(part, jedec_id), sources, explicit)
    if part is not None and part.ex4b_opcode is not None and merged.four_byte_entry in ("B7", "WREN+B7"):
        # The loader leaves 4-byte mode with the opcode matching its entry (mailbox exit_4b_op);
        # SFDP DW16 has no bit for a vendor exit opcode such as ISSI's 29h.
        wren = "WREN+" if merged.four_byte_entry == "WREN+B7" else ""
        merged = replace(merged, four_byte_exit=f"{wren}{part.ex4b_opcode:02X}")
        sources["four_byte_exit"] = f"part table ({part.name}: EX4B is {part.ex4b_opcode:02X}h)"

    if merged.pp_size > merged.program_page_size:
        raise UsageError(
            f"{sources.get('pp_size', 'default')}: pp_size {merged.pp_size} exceeds the chip's "
            f"{merged.program_page_size}-byte program page ({sources.get('program_page_size', 'chip')})"
        )
    if merged.erase_spec(merged.sector_size) is None:
        raise UsageError(
            f"{sources.get('sector_size', 'default')}: erase page size {merged.sector_size} is not an erase "
            f"this chip offers to nRF QSPI (it has {', '.join(str(s) for s in merged.erase_sizes)})"
        )

    # Address mode: explicit wins if the chip can do it; otherwise chosen by size.
    if cfg.address_mode == 32 and merged.four_byte_entry is None:
        why = (
            "DW1 3-byte only, DW16 lists no B7h/bank-register/always-4-byte entry"
            if four_capable is False
            else "it offers only dedicated 4-byte opcodes, which nRF QSPI cannot issue"
        )
        raise UsageError(
            f"{sources.get('address_mode', 'config')}: address mode MODE32BIT, but "
            f"{_chip_text(part, jedec_id)} cannot enter 4-byte address mode ({sfdp_source}: {why})"
        )
    if cfg.address_mode == 24 and merged.four_byte_entry == "always-4byte":
        raise UsageError(
            f"{sources.get('address_mode', 'config')}: address mode MODE24BIT, but "
            f"{_chip_text(part, jedec_id)} always uses 4-byte addresses ({sfdp_source} DW16)"
        )
    if cfg.address_mode is None:
        big = merged.size > MIB16
        four = (big and merged.four_byte_entry) or merged.four_byte_entry == "always-4byte"
        merged = replace(merged, address_mode=32 if four else 24)
        sources["address_mode"] = f"chosen by size ({_size_text(merged.size)})"
    return replace(merged, sfdp=sfdp, sources=sources)
