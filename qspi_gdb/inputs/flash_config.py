"""Flash configuration: board presets, nrfutil / nrfjprog config files, CLI overrides, detection.

Layers, lowest first (README "Configuration formats"):
  1. built-in defaults, 2. the board preset (chip, pins, usual part), 3. a config file (nrfutil
  ext-mem JSON, nrfjprog QspiDefault.ini or its TOML form), 4. CLI overrides, and finally
  5. the flash actually detected at connect (JEDEC ID + SFDP), which wins for everything the
  chip knows about itself (size, page, erase types and times, 4-byte entry, quad enable).
A value given explicitly (file or CLI) that contradicts the detected chip is an error naming
both values; a preset's "usual part" is only an assumption and is replaced silently.

Everything here is pure: `build_config` and `apply_chip` take data and return a FlashConfig.
The file and command-line parsers (ConfigLayer producers) live in `config_files` and are
re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping

from qspi_gdb.inputs.config_files import (
    NOT_CONNECTED,
    PIN_NAMES,
    READ_OPCODES,
    WRITE_OPCODES,
    ConfigLayer,
    CustomInstruction,
    _err,
    cli_layer,
    load_config_file,
    parse_jedec_id,
    parse_nrfjprog_ini,
    parse_nrfjprog_toml,
    parse_nrfutil_json,
)
from qspi_gdb.errors import TargetError, UsageError
from qspi_gdb.log import get_logger
from qspi_gdb.inputs.parts import Part, by_jedec, by_name
from qspi_gdb.inputs.sfdp import Sfdp

log = get_logger(__name__)

MIB16 = 1 << 24
# nRF ERASE.LEN can only send these: 0x20 for 4 KiB, 0xD8 for 64 KiB, 0xC7 for the chip.
NRF_ERASE_OPCODES = {4096: 0x20, 65536: 0xD8}
# The SFDP fast-read mode each nRF READOC needs (FASTREAD is 1-1-1, always there).
READOC_SFDP_MODE = {"READ2O": "1-1-2", "READ2IO": "1-2-2", "READ4O": "1-1-4", "READ4IO": "1-4-4"}
# nRF modes, fastest first, and the data lines each drives (quad ones need QE on most parts).
READOC_BY_SPEED = ("READ4IO", "READ4O", "READ2IO", "READ2O", "FASTREAD")
WRITEOC_BY_SPEED = ("PP4IO", "PP4O", "PP2O", "PP")
MODE_LINES = {
    "READ4IO": 4, "READ4O": 4, "READ2IO": 2, "READ2O": 2, "FASTREAD": 1,
    "PP4IO": 4, "PP4O": 4, "PP2O": 2, "PP": 1,
}  # fmt: skip


@dataclass(frozen=True)
class Chip:
    name: str
    xip_base: int
    max_sck_hz: int
    fixed_pins: Mapping[str, int] | None = None  # nRF5340: QSPI only on dedicated pins


CHIPS = {
    "nrf52840": Chip("nrf52840", 0x12000000, 32_000_000),
    "nrf5340": Chip(
        "nrf5340",
        0x10000000,
        96_000_000,
        {"sck": 17, "csn": 18, "io0": 13, "io1": 14, "io2": 15, "io3": 16},
    ),
}


@dataclass(frozen=True)
class Pins:
    """GPIO numbers (port * 32 + pin); io2/io3 None when not connected."""

    sck: int
    csn: int
    io0: int
    io1: int
    io2: int | None
    io3: int | None

    def to_json(self) -> dict:
        return {name: getattr(self, name) for name in PIN_NAMES}

    def describe(self) -> str:
        def name(n):
            return "-" if n is None else f"P{n // 32}.{n % 32:02d}"

        return " ".join(f"{p}={name(getattr(self, p))}" for p in PIN_NAMES)


@dataclass(frozen=True)
class Board:
    name: str
    chip: str  # key of CHIPS
    pins: Pins
    part: str  # the flash part the board usually carries (parts.PARTS name)
    virtual: bool
    description: str

    @property
    def xip_base(self) -> int:
        return CHIPS[self.chip].xip_base


_DK52 = Pins(sck=19, csn=17, io0=20, io1=21, io2=22, io3=23)
_DK53 = Pins(sck=17, csn=18, io0=13, io1=14, io2=15, io3=16)

BOARDS: dict[str, Board] = {
    b.name: b
    for b in (
        Board(
            "nrf52840dk", "nrf52840", _DK52, "MX25R6435F", False, "nRF52840 DK (PCA10056), 8 MiB MX25R6435F"
        ),
        Board("nrf5340dk", "nrf5340", _DK53, "MX25R6435F", False, "nRF5340 DK (PCA10095), 8 MiB MX25R6435F"),
        Board(
            "sim-nrf52840dk", "nrf52840", _DK52, "MX25R6435F", True, "virtual nRF52840 DK, 8 MiB MX25R6435F"
        ),
        Board("sim-nrf5340dk", "nrf5340", _DK53, "MX25R6435F", True, "virtual nRF5340 DK, 8 MiB MX25R6435F"),
        Board(
            "sim-nrf5340-32mb",
            "nrf5340",
            _DK53,
            "IS25WP256",
            True,
            "virtual nRF5340 DK pins, 32 MiB IS25WP256",
        ),
        Board(
            "sim-nrf52840-32mb",
            "nrf52840",
            _DK52,
            "MT25QU256A",
            True,
            "virtual nRF52840 DK pins, 32 MiB MT25QU256A",
        ),
    )
}


@dataclass(frozen=True)
class ConfigWarning:
    """A configured value the chip cannot honour, replaced by one it can (not an error: e.g. a
    slower program mode writes the same data). `str()` is the one-line message."""

    setting: str  # "readoc" | "writeoc"
    configured: str
    used: str
    reason: str  # e.g. "not supported by IS25WP256 (38h is 1-1-4 on ISSI parts)"
    source: str  # where the configured value came from (file name, "command line", ...)

    def __str__(self) -> str:
        return f"{self.setting} {self.configured} is {self.reason}; using {self.used}"

    def to_json(self) -> dict:
        return {
            "setting": self.setting,
            "configured": self.configured,
            "used": self.used,
            "reason": self.reason,
            "source": self.source,
            "message": str(self),
        }


@dataclass(frozen=True)
class Timing:
    typ_s: float
    max_s: float

    def to_json(self) -> dict:
        return {"typ_s": self.typ_s, "max_s": self.max_s}


@dataclass(frozen=True)
class EraseSpec:
    """An erase the nRF can issue on this chip: 4 KiB (0x20) or 64 KiB (0xD8)."""

    size: int
    opcode: int
    time: Timing

    def to_json(self) -> dict:
        return {"size": self.size, "opcode": f"0x{self.opcode:02X}", **self.time.to_json()}


# Used only when neither the chip's SFDP nor the part table gives a time (old JESD216 chips).
GENERIC_TIMES = {
    4096: Timing(0.05, 0.4),
    65536: Timing(0.5, 4.0),
    "page": Timing(0.001, 0.006),
    "chip": Timing(100.0, 600.0),
}


@dataclass(frozen=True)
class FlashConfig:
    """Everything the loader and the plan need. After `apply_chip` every chip field is set."""

    board: str
    chip: str  # "nrf52840" | "nrf5340"
    xip_base: int
    virtual: bool
    pins: Pins
    sck_frequency: int = 8_000_000  # Hz
    address_mode: int | None = None  # 24 | 32 (None until the chip is known: chosen by size)
    readoc: str = "READ4IO"
    writeoc: str = "PP4IO"
    pp_size: int = 256  # IFCONFIG0.PPSIZE: 256 | 512
    sck_delay: int = 0x80  # IFCONFIG1.SCKDELAY
    rx_delay: int | None = None  # IFTIMING.RXDELAY (None: leave the chip's reset/errata value)
    spi_mode: int = 0  # 0 | 3
    size: int | None = None  # bytes
    sector_size: int = 4096  # smallest erase the plan uses (nrfutil "page_size")
    program_page_size: int = 256  # the chip's program page (SFDP DW11)
    erase: tuple[EraseSpec, ...] = ()
    chip_erase: Timing | None = None
    page_program: Timing | None = None
    four_byte_entry: str | None = None  # sfdp.NRF_USABLE_4B_ENTRY member or None
    # sfdp.NRF_USABLE_4B_EXIT member, or the part's own exit opcode after B7h ("29": ISSI EX4B;
    # "WREN+29" after WREN+B7h), or None
    four_byte_exit: str | None = None
    quad_enable: str | None = None  # sfdp.QER_NAMES value ("S1B6", "none", ...) or None (unknown)
    init_instructions: tuple[CustomInstruction, ...] = ()
    custom_io2_level: bool = False  # IO2 level during custom instructions
    custom_io3_level: bool = True  # IO3 (HOLD#/RESET#) high during custom instructions
    wip_index: int = 0
    expected_jedec_id: bytes | None = None
    jedec_id: bytes | None = None  # as detected
    part: str | None = None
    detected: str | None = None  # "sfdp" | "jedec-table" | "assumed" | None (not applied yet)
    sfdp: Sfdp | None = field(default=None, repr=False, compare=False)
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    # Settings apply_chip replaced because the chip cannot do them (for the CLI to log).
    warnings: tuple[ConfigWarning, ...] = field(default=(), compare=False)

    @property
    def erase_sizes(self) -> tuple[int, ...]:
        return tuple(sorted(e.size for e in self.erase))

    def erase_spec(self, size: int) -> EraseSpec | None:
        return next((e for e in self.erase if e.size == size), None)

    @property
    def quad(self) -> bool:
        return self.readoc in ("READ4O", "READ4IO") or self.writeoc in ("PP4O", "PP4IO")

    @property
    def addrmode_name(self) -> str:
        return {24: "MODE24BIT", 32: "MODE32BIT", None: "auto"}[self.address_mode]

    def to_json(self) -> dict:
        return {
            "board": self.board,
            "chip": self.chip,
            "virtual": self.virtual,
            "xip_base": self.xip_base,
            "pins": self.pins.to_json(),
            "sck_frequency": self.sck_frequency,
            "address_mode": self.address_mode,
            "readoc": self.readoc,
            "writeoc": self.writeoc,
            "pp_size": self.pp_size,
            "sck_delay": self.sck_delay,
            "rx_delay": self.rx_delay,
            "spi_mode": self.spi_mode,
            "size": self.size,
            "sector_size": self.sector_size,
            "program_page_size": self.program_page_size,
            "erase": [e.to_json() for e in self.erase],
            "chip_erase": self.chip_erase.to_json() if self.chip_erase else None,
            "page_program": self.page_program.to_json() if self.page_program else None,
            "four_byte_entry": self.four_byte_entry,
            "four_byte_exit": self.four_byte_exit,
            "quad_enable": self.quad_enable,
            "init_instructions": [i.to_json() for i in self.init_instructions],
            "custom_io2_level": self.custom_io2_level,
            "custom_io3_level": self.custom_io3_level,
            "wip_index": self.wip_index,
            "expected_jedec_id": _hex_id(self.expected_jedec_id),
            "jedec_id": _hex_id(self.jedec_id),
            "part": self.part,
            "detected": self.detected,
            "sources": dict(self.sources),
            "warnings": [w.to_json() for w in self.warnings],
        }

    def describe(self) -> list[str]:
        """Lines for `info` / `--dry-run`: each value with the layer it came from."""

        def src(name):
            return f"  [{self.sources.get(name, 'default')}]"

        size = f"{self.size} bytes ({self.size / (1 << 20):g} MiB)" if self.size else "unknown"
        lines = [
            f"board {self.board} ({self.chip}, XIP base 0x{self.xip_base:08X})" + src("board"),
            f"flash {self.part or 'unknown part'}, JEDEC ID {_hex_id(self.jedec_id) or 'not read'}"
            + src("part"),
            f"size {size}" + src("size"),
            f"pins {self.pins.describe()}" + src("pins"),
            f"address mode {self.addrmode_name}" + src("address_mode"),
            f"4-byte entry {self.four_byte_entry or 'none'}{src('four_byte_entry')}, "
            f"exit {self.four_byte_exit or 'none'}{src('four_byte_exit')}",
            f"read {self.readoc}{src('readoc')}, write {self.writeoc}{src('writeoc')}, pp_size {self.pp_size}",
            f"quad enable {self.quad_enable if self.quad_enable is not None else 'unknown'}"
            + src("quad_enable"),
            f"SCK {self.sck_frequency / 1e6:g} MHz, sck_delay {self.sck_delay}, rx_delay "
            f"{'reset value' if self.rx_delay is None else self.rx_delay}, SPI mode {self.spi_mode}"
            + src("sck_frequency"),
            "erase "
            + ", ".join(
                f"{e.size // 1024} KiB 0x{e.opcode:02X} typ {e.time.typ_s * 1e3:g} ms" for e in self.erase
            )
            + src("erase"),
        ]
        if self.init_instructions:
            lines.append(
                "init instructions "
                + "; ".join(f"0x{i.opcode:02X} {i.data.hex(' ')}".rstrip() for i in self.init_instructions)
                + src("init_instructions")
            )
        return lines


def _hex_id(b: bytes | None) -> str | None:
    return None if b is None else b.hex().upper()


# --------------------------------------------------------------------------- merging


def board_preset(name: str) -> Board:
    try:
        return BOARDS[name]
    except KeyError:
        raise UsageError(f"unknown board {name!r} (known: {', '.join(BOARDS)})") from None


def build_config(board: str | None, layers: Iterable[ConfigLayer] = ()) -> FlashConfig:
    """Preset + config layers (later wins) -> FlashConfig, before the chip is detected."""
    layers = list(layers)
    if board is None:
        named = [(layer.board, layer.source) for layer in layers if layer.board]
        if not named:
            raise UsageError('--board is required (or a config file with a "board" entry)')
        board = named[-1][0]
    preset = board_preset(board)
    chip = CHIPS[preset.chip]
    part = by_name(preset.part)
    origin = f"preset {preset.name}"
    sources: dict[str, str] = {"board": origin, "pins": origin, "part": origin, "size": origin}
    cfg = FlashConfig(
        board=preset.name,
        chip=chip.name,
        xip_base=chip.xip_base,
        virtual=preset.virtual,
        pins=preset.pins,
        part=preset.part,
        size=part.size if part else None,
    )
    for layer in layers:
        updates = dict(layer.values)
        if "pins" in updates:
            merged = {p: getattr(cfg.pins, p) for p in PIN_NAMES} | dict(updates.pop("pins"))
            if chip.fixed_pins and merged != dict(chip.fixed_pins):
                diff = ", ".join(
                    f"{p} {merged[p]} (must be {chip.fixed_pins[p]})"
                    for p in PIN_NAMES
                    if merged[p] != chip.fixed_pins[p]
                )
                if layer.pins_binding:
                    raise _err(layer.source, f"{chip.name} QSPI uses fixed pins; config gives {diff}")
                log.warning(
                    "ignoring pins: nrfjprog ignores them on nRF5340 too", source=layer.source, pins=diff
                )
            else:
                updates["pins"] = Pins(**merged)
        unknown = set(updates) - {f for f in FlashConfig.__dataclass_fields__}
        if unknown:
            raise _err(layer.source, f"unknown setting(s) {', '.join(sorted(unknown))}")
        cfg = replace(cfg, **updates)
        for key in updates:
            sources[key] = layer.source
    cfg = replace(cfg, sources=sources)
    _check_interface(cfg, chip)
    return cfg


def _check_interface(cfg: FlashConfig, chip: Chip) -> None:
    def where(key):
        return cfg.sources.get(key, "default")

    if cfg.quad and (cfg.pins.io2 is None or cfg.pins.io3 is None):
        raise UsageError(
            f"{where('readoc')}: {cfg.readoc}/{cfg.writeoc} use four data lines but io2/io3 are not connected"
        )
    if cfg.sck_frequency > chip.max_sck_hz:
        raise UsageError(
            f"{where('sck_frequency')}: sck_frequency {cfg.sck_frequency} Hz is above the "
            f"{chip.name} QSPI maximum {chip.max_sck_hz} Hz"
        )
    if cfg.size is not None and (cfg.size & (cfg.size - 1) or cfg.size < 4096):
        raise UsageError(f"{where('size')}: flash size {cfg.size} is not a power of two of at least 4096")
    if cfg.sector_size not in NRF_ERASE_OPCODES:
        raise UsageError(
            f"{where('sector_size')}: erase page size {cfg.sector_size} is not one the nRF QSPI can erase "
            f"(4096 or 65536)"
        )


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
        sfdp = part.sfdp
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
            f"is not in the part table; give flash_size in a config file or --size"
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


__all__ = [
    "GENERIC_TIMES",
    "MIB16",
    "NRF_ERASE_OPCODES",
    "READOC_SFDP_MODE",
    "NOT_CONNECTED",
    "PIN_NAMES",
    "READ_OPCODES",
    "WRITE_OPCODES",
    "READOC_BY_SPEED",
    "WRITEOC_BY_SPEED",
    "MODE_LINES",
    "BOARDS",
    "CHIPS",
    "Board",
    "Chip",
    "ConfigLayer",
    "ConfigWarning",
    "CustomInstruction",
    "EraseSpec",
    "FlashConfig",
    "Pins",
    "Timing",
    "apply_chip",
    "board_preset",
    "build_config",
    "cli_layer",
    "load_config_file",
    "parse_jedec_id",
    "parse_nrfjprog_ini",
    "parse_nrfjprog_toml",
    "parse_nrfutil_json",
]
