"""The flash configuration (FlashConfig) and its layers before the chip is detected.

Layers, lowest first (README "Configuration formats"):
  1. built-in defaults, 2. the board preset (chip, pins, usual part), 3. a config file (nrfutil
  ext-mem JSON, nrfjprog QspiDefault.ini or its TOML form), 4. CLI overrides, and finally
  5. the flash actually detected at connect (JEDEC ID + SFDP), which wins for everything the
  chip knows about itself (size, page, erase types and times, 4-byte entry, quad enable).
A value given explicitly (file or CLI) that contradicts the detected chip is an error naming
both values; a preset's "usual part" is only an assumption and is replaced silently.

Everything here is pure: `build_config` takes data and returns a FlashConfig. The layers come
from `config_files` (files) and `config_values.cli_layer` (command line); the detected chip is
folded in by `detect.apply_chip`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping

from qspi_gdb.errors import UsageError, did_you_mean
from qspi_gdb.inputs.boards import BOARDS, CHIPS, PIN_NAMES, Board, Chip, Pins
from qspi_gdb.inputs.config_values import ConfigLayer, CustomInstruction, setting_error
from qspi_gdb.inputs.parts import by_name
from qspi_gdb.inputs.sfdp import Sfdp
from qspi_gdb.log import get_logger

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
        """Lines for `info`: each value with the layer it came from ("default", "preset
        NAME", a config file, "command line", the chip: "SFDP", "JEDEC ID ...")."""

        def src(name):
            return f"  [{self.sources.get(name, 'default')}]"

        size = f"{self.size} bytes ({self.size / (1 << 20):g} MiB)" if self.size else "unknown"
        how = {"sfdp": "detected (SFDP)", "jedec-table": "detected (JEDEC ID, part table)",
               "assumed": "assumed, not detected"}.get(self.detected or "", "not detected yet")
        lines = [
            f"board {self.board} ({self.chip}, XIP base 0x{self.xip_base:08X})" + src("board"),
            f"flash {self.part or 'unknown part'}, JEDEC ID {_hex_id(self.jedec_id) or 'not read'}"
            f", {how}" + src("part"),
            f"size {size}" + src("size"),
            f"pins {self.pins.describe()}" + src("pins"),
            f"address mode {self.addrmode_name}" + src("address_mode"),
            f"4-byte entry {self.four_byte_entry or 'none'}{src('four_byte_entry')}, "
            f"exit {self.four_byte_exit or 'none'}{src('four_byte_exit')}",
            f"read {self.readoc}" + src("readoc"),
            f"write {self.writeoc}" + src("writeoc"),
            f"pp_size {self.pp_size}" + src("pp_size"),
            f"page_size (erase unit) {self.sector_size}" + src("sector_size"),
            f"quad enable {self.quad_enable if self.quad_enable is not None else 'unknown'}"
            + src("quad_enable"),
            f"sck_frequency {self.sck_frequency / 1e6:g} MHz" + src("sck_frequency"),
            f"sck_delay {self.sck_delay}" + src("sck_delay"),
            f"rx_delay {'reset value' if self.rx_delay is None else self.rx_delay}"
            + src("rx_delay"),
            f"spi_mode MODE{self.spi_mode}" + src("spi_mode"),
            "erase "
            + ", ".join(
                f"{e.size // 1024} KiB 0x{e.opcode:02X} typ {e.time.typ_s * 1e3:g} ms" for e in self.erase
            )
            + src("erase"),
        ]
        if self.expected_jedec_id is not None:
            lines.append(f"expected JEDEC ID {_hex_id(self.expected_jedec_id)}"
                         + src("expected_jedec_id"))
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
        raise UsageError(f"unknown board {name!r}{did_you_mean(name, BOARDS)}; known: "
                         f"{', '.join(BOARDS)}") from None


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
                    raise setting_error(layer.source, f"{chip.name} QSPI uses fixed pins; config gives {diff}")
                log.warning(
                    "ignoring pins: nrfjprog ignores them on nRF5340 too", source=layer.source, pins=diff
                )
            else:
                updates["pins"] = Pins(**merged)
        unknown = set(updates) - {f for f in FlashConfig.__dataclass_fields__}
        if unknown:
            raise setting_error(layer.source, f"unknown setting(s) {', '.join(sorted(unknown))}")
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


