"""FlashConfig (qspi_gdb.inputs.flash_config) -> the loader's INIT configuration block (qspi_gdb.loader.mailbox).

Two configurations are sent: a probing one (single-line reads, 24-bit addresses, quad enable
untouched) that is enough to read the JEDEC ID and SFDP of any serial NOR, and the working one
built from the configuration completed with the detected chip (config.apply_chip).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from qspi_gdb.inputs.flash_config import FlashConfig
from qspi_gdb.loader import mailbox as mb

# -- the block's layout (struct ql_config) -------------------------------------------------

READOC = {"FASTREAD": 0, "READ2O": 1, "READ2IO": 2, "READ4O": 3, "READ4IO": 4}
WRITEOC = {"PP": 0, "PP2O": 1, "PP4O": 2, "PP4IO": 3}


@dataclass(frozen=True)
class InitInstruction:
    """A custom instruction the loader sends during INIT (after the JEDEC check)."""

    opcode: int
    data: bytes = b""
    wren: bool = False
    wipwait: bool = False


@dataclass(frozen=True)
class LoaderConfig:
    """What INIT needs: every nrfutil ext-mem field plus size, 4-byte/QE methods, timings.

    pins: (sck, csn, io0, io1, io2, io3) as GPIO numbers port*32+pin, NO_PIN for unused.
    Times in microseconds; 0 lets the loader use generous defaults.
    """

    pins: tuple[int, int, int, int, int, int]
    flash_size: int
    sck_hz: int = 8_000_000
    page_size: int = 4096
    addr_mode: int = mb.ADDR_24BIT
    readoc: int = READOC["READ4IO"]
    writeoc: int = WRITEOC["PP4IO"]
    pp_size: int = 0
    sck_delay: int = 0
    rx_delay: int = 2
    spi_mode: int = 0
    enter_4b: int = mb.FOURB_NONE
    exit_4b_op: int = 0
    qe_method: int = mb.QE_S1B6
    expected_jedec: int = 0
    mode_query_op: int = mb.NO_QUERY
    mode_query_bit: int = 0
    wip_bit: int = 0
    flags: int = 0
    t_page_typ_us: int = 0
    t_page_max_us: int = 0
    t_4k_typ_us: int = 0
    t_4k_max_us: int = 0
    t_64k_typ_us: int = 0
    t_64k_max_us: int = 0
    t_chip_typ_us: int = 0
    t_chip_max_us: int = 0
    t_wrsr_max_us: int = 0
    init: tuple[InitInstruction, ...] = ()

    @property
    def page_bytes(self) -> int:
        return 512 if self.pp_size else 256

    def pack(self) -> bytes:
        if len(self.init) > mb.MAX_INIT_INSTR:
            raise ValueError(f"at most {mb.MAX_INIT_INSTR} custom init instructions")
        words = [
            *self.pins, self.sck_hz, self.flash_size, self.page_size, self.addr_mode,
            self.readoc, self.writeoc, self.pp_size, self.sck_delay, self.rx_delay,
            self.spi_mode, self.enter_4b, self.exit_4b_op, self.qe_method, self.expected_jedec,
            self.mode_query_op, self.mode_query_bit, self.wip_bit, self.flags,
            self.t_page_typ_us, self.t_page_max_us, self.t_4k_typ_us, self.t_4k_max_us,
            self.t_64k_typ_us, self.t_64k_max_us, self.t_chip_typ_us, self.t_chip_max_us,
            self.t_wrsr_max_us, len(self.init),
        ]
        raw = struct.pack(f"<{len(words)}I", *[w & 0xFFFFFFFF for w in words])
        for ii in self.init:
            if len(ii.data) > 8:
                raise ValueError("a custom instruction carries at most 8 data bytes")
            data = ii.data.ljust(8, b"\0")
            flags = (mb.II_WREN if ii.wren else 0) | (mb.II_WIPWAIT if ii.wipwait else 0)
            raw += struct.pack("<3I", ii.opcode, len(ii.data), flags) + data
        raw = raw.ljust(mb.CONFIG_SIZE, b"\0")
        assert len(raw) == mb.CONFIG_SIZE
        return raw


# -- a FlashConfig as a block ------------------------------------------------------------------

ENTER_4B = {
    None: mb.FOURB_NONE,
    "B7": mb.FOURB_B7,
    "WREN+B7": mb.FOURB_WREN_B7,
    "bank-register": mb.FOURB_BANKREG,
    "always-4byte": mb.FOURB_ALWAYS,
}
QUAD_ENABLE = {
    "none": mb.QE_NONE,
    "S2B1v1": mb.QE_S2B1_V1,
    "S1B6": mb.QE_S1B6,
    "S2B7": mb.QE_S2B7,
    "S2B1v4": mb.QE_S2B1_V4,
    "S2B1v5": mb.QE_S2B1_V5,
    "S2B1v6": mb.QE_S2B1_V6,
}
PROBE_SIZE = 1 << 24  # what 24-bit addresses reach; enough for SFDP and JEDEC ID

# A register that tells the current address mode, per JEDEC manufacturer (first RDID byte):
# (read opcode, bit that is 1 in 4-byte mode). The loader reads it at INIT to learn the mode the
# chip was in, and DEINIT puts that mode back (an application expecting either mode still
# boots). SFDP has no such field, so this comes from the datasheets:
#   Micron MT25Q: READ FLAG STATUS REGISTER 70h, bit 0 "Addressing" (0 = 3-byte, 1 = 4-byte).
#   ISSI IS25WP256/IS25LP256: READ BANK ADDRESS REGISTER 16h, bit 7 EXTADD (1 = 4-byte).
#   Macronix MX25L/MX25U 256 Mbit+: READ CONFIGURATION REGISTER 15h, bit 5 4BYTE.
#   Winbond W25Q256: READ STATUS REGISTER-3 15h, bit 0 ADS.
MODE_QUERY = {
    0x20: (0x70, 0),
    0x9D: (0x16, 7),
    0xC2: (0x15, 5),
    0xEF: (0x15, 0),
}


def _us(seconds: float | None) -> int:
    return 0 if seconds is None else max(1, round(seconds * 1e6))


def _pins(cfg: FlashConfig) -> tuple[int, int, int, int, int, int]:
    p = cfg.pins
    return (p.sck, p.csn, p.io0, p.io1,
            mb.NO_PIN if p.io2 is None else p.io2, mb.NO_PIN if p.io3 is None else p.io3)


def _exit_4b_opcode(cfg: FlashConfig) -> int:
    """The opcode leaving 4-byte mode after a B7h entry ("E9", "WREN+29", ... from SFDP and the
    part table); 0 = the loader's default EX4B E9h."""
    method = (cfg.four_byte_exit or "").removeprefix("WREN+")
    if len(method) == 2:
        try:
            return int(method, 16)
        except ValueError:
            pass
    return 0


def _mode_query(cfg: FlashConfig) -> tuple[int, int]:
    """(opcode, bit) reading the chip's current address mode, or (NO_QUERY, 0) when the chip has
    no 4-byte mode we switch (then the loader assumes 3-byte mode before INIT)."""
    if cfg.four_byte_entry in (None, "always-4byte") or not cfg.jedec_id:
        return mb.NO_QUERY, 0
    return MODE_QUERY.get(cfg.jedec_id[0], (mb.NO_QUERY, 0))


def probe_config(cfg: FlashConfig) -> LoaderConfig:
    """Enough to read JEDEC ID and SFDP from any chip: FASTREAD/PP, 24-bit, QE untouched."""
    return LoaderConfig(
        pins=_pins(cfg),
        flash_size=PROBE_SIZE,
        sck_hz=cfg.sck_frequency,
        page_size=4096,
        addr_mode=mb.ADDR_24BIT,
        readoc=READOC["FASTREAD"],
        writeoc=WRITEOC["PP"],
        sck_delay=cfg.sck_delay,
        rx_delay=2 if cfg.rx_delay is None else cfg.rx_delay,
        spi_mode=cfg.spi_mode,
        enter_4b=mb.FOURB_NONE,
        qe_method=mb.QE_NONE,
        flags=mb.CFG_SKIP_QE,
    )


def loader_config(cfg: FlashConfig) -> LoaderConfig:
    """The working configuration; cfg must be completed by config.apply_chip()."""
    if cfg.size is None or cfg.address_mode is None:
        raise ValueError("loader_config() needs a FlashConfig completed by apply_chip()")
    erase = {e.size: e.time for e in cfg.erase}
    query_op, query_bit = _mode_query(cfg)
    quad = cfg.quad
    qe = QUAD_ENABLE.get(cfg.quad_enable or "", None)
    flags = (0 if cfg.custom_io2_level else mb.CFG_IO2_LOW) | \
        (0 if cfg.custom_io3_level else mb.CFG_IO3_LOW)
    if not quad or cfg.quad_enable is None:
        # Unknown QE method: leave the bit as it is rather than guess a register layout.
        flags |= mb.CFG_SKIP_QE
    return LoaderConfig(
        pins=_pins(cfg),
        flash_size=cfg.size,
        sck_hz=cfg.sck_frequency,
        page_size=cfg.sector_size,
        addr_mode=mb.ADDR_32BIT if cfg.address_mode == 32 else mb.ADDR_24BIT,
        readoc=READOC[cfg.readoc],
        writeoc=WRITEOC[cfg.writeoc],
        pp_size=1 if cfg.pp_size == 512 else 0,
        sck_delay=cfg.sck_delay,
        rx_delay=2 if cfg.rx_delay is None else cfg.rx_delay,
        spi_mode=cfg.spi_mode,
        enter_4b=ENTER_4B.get(cfg.four_byte_entry, mb.FOURB_NONE),
        exit_4b_op=_exit_4b_opcode(cfg),
        qe_method=mb.QE_NONE if qe is None else qe,
        expected_jedec=int.from_bytes(cfg.expected_jedec_id, "big") if cfg.expected_jedec_id
        else 0,
        mode_query_op=query_op,
        mode_query_bit=query_bit,
        wip_bit=cfg.wip_index,
        flags=flags,
        t_page_typ_us=_us(cfg.page_program.typ_s if cfg.page_program else None),
        t_page_max_us=_us(cfg.page_program.max_s if cfg.page_program else None),
        t_4k_typ_us=_us(erase[4096].typ_s) if 4096 in erase else 0,
        t_4k_max_us=_us(erase[4096].max_s) if 4096 in erase else 0,
        t_64k_typ_us=_us(erase[65536].typ_s) if 65536 in erase else 0,
        t_64k_max_us=_us(erase[65536].max_s) if 65536 in erase else 0,
        t_chip_typ_us=_us(cfg.chip_erase.typ_s if cfg.chip_erase else None),
        t_chip_max_us=_us(cfg.chip_erase.max_s if cfg.chip_erase else None),
        init=tuple(InitInstruction(i.opcode, bytes(i.data)) for i in cfg.init_instructions),
    )
