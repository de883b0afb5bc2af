"""The board table: which nRF chip a board carries, its QSPI pins and its usual flash part.

One table for the product (board presets, `--board`), the benchmarks and the virtual board
(`qspi_gdb.sim` builds a virtual board from the `sim-*` rows). Pure data: this module imports no
other module of the product (the virtual board may import it), so lookups that fail return None
and the caller words the error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

PIN_NAMES = ("sck", "csn", "io0", "io1", "io2", "io3")


@dataclass(frozen=True)
class Chip:
    name: str
    xip_base: int  # where the external flash appears in the address map (128 MiB window)
    max_sck_hz: int
    fixed_pins: Mapping[str, int] | None = None  # nRF5340: QSPI only on dedicated pins


CHIPS: dict[str, Chip] = {
    "nrf52840": Chip("nrf52840", 0x12000000, 32_000_000),
    "nrf5340": Chip(
        "nrf5340", 0x10000000, 96_000_000,
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
    part: str  # the flash part the board usually carries (qspi_gdb.inputs.parts name)
    virtual: bool  # a virtual board (qspi_gdb.sim), started on demand
    description: str

    @property
    def xip_base(self) -> int:
        return CHIPS[self.chip].xip_base


_DK52 = Pins(sck=19, csn=17, io0=20, io1=21, io2=22, io3=23)
_DK53 = Pins(sck=17, csn=18, io0=13, io1=14, io2=15, io3=16)

BOARDS: dict[str, Board] = {
    b.name: b
    for b in (
        Board("nrf52840dk", "nrf52840", _DK52, "MX25R6435F", False,
              "nRF52840 DK (PCA10056), 8 MiB MX25R6435F"),
        Board("nrf5340dk", "nrf5340", _DK53, "MX25R6435F", False,
              "nRF5340 DK (PCA10095), 8 MiB MX25R6435F"),
        Board("sim-nrf52840dk", "nrf52840", _DK52, "MX25R6435F", True,
              "virtual nRF52840 DK, 8 MiB MX25R6435F"),
        Board("sim-nrf5340dk", "nrf5340", _DK53, "MX25R6435F", True,
              "virtual nRF5340 DK, 8 MiB MX25R6435F"),
        Board("sim-nrf5340-32mb", "nrf5340", _DK53, "IS25WP256", True,
              "virtual nRF5340 DK pins, 32 MiB IS25WP256"),
        Board("sim-nrf52840-32mb", "nrf52840", _DK52, "MT25QU256A", True,
              "virtual nRF52840 DK pins, 32 MiB MT25QU256A"),
    )
}

VIRTUAL_BOARDS: tuple[str, ...] = tuple(name for name, b in BOARDS.items() if b.virtual)


def find_board(name: str) -> Board | None:
    return BOARDS.get(name)
