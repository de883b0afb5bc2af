"""What a serial NOR flash says about itself (JESD216 / SFDP), as data: the parameter headers,
the Basic Flash Parameter Table (BFPT) and the 4-byte Address Instruction Table (4BAIT), with
what follows from them for the nRF (`Sfdp.four_byte_entry`, the erase types, `summary` and
`describe` for `info`). The bytes are decoded by `qspi_gdb.inputs.sfdp_decode`.

The nRF QSPI peripheral can only issue the ordinary (3/4-byte-mode) opcodes, never the dedicated
4-byte ones, so `Sfdp.four_byte_entry` names how to put the chip into 4-byte address mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qspi_gdb.errors import TargetError

SIGNATURE = b"SFDP"
ID_BFPT = 0xFF00
ID_SECTOR_MAP = 0xFF81
ID_4BAIT = 0xFF84

TABLE_NAMES = {
    ID_BFPT: "basic flash parameters",
    ID_SECTOR_MAP: "sector map",
    ID_4BAIT: "4-byte address instructions",
    0xFF05: "xSPI profile 1.0",
    0xFF06: "xSPI profile 2.0",
    0xFF87: "status/control register map",
}

# DW15 bits 22:20 (JESD216B); names as in Zephyr's enum jesd216_dw15_qer_type.
QER_NAMES = {
    0: "none",  # no QE bit; quad instructions work as they are
    1: "S2B1v1",  # SR2 bit 1, written with 01h + 2 bytes (one byte clears SR2)
    2: "S1B6",  # SR1 bit 6, written with 01h + 1 byte (Macronix, ISSI)
    3: "S2B7",  # SR2 bit 7, written with 3Eh, read with 3Fh
    4: "S2B1v4",  # SR2 bit 1, 01h + 2 bytes; one-byte write leaves SR2 alone
    5: "S2B1v5",  # SR2 bit 1, read SR2 with 35h, write 01h + 2 bytes
    6: "S2B1v6",  # SR2 bit 1, SR2 written with 31h + 1 byte
}

# DW16 bits 31:24, one bit per method (Linux BFPT_DWORD16_EN4B_*).
ENTER_4B_METHODS = (
    "B7",  # bit 0: issue B7h
    "WREN+B7",  # bit 1: WREN, then B7h
    "extended-address-register",  # bit 2: C5h/C8h hold A31..A24 (3-byte mode stays)
    "bank-register",  # bit 3: 17h/16h, bit 7 = EXTADD
    "nv-config-register",  # bit 4: 16-bit non-volatile config register B5h/B1h
    "dedicated-4byte-opcodes",  # bit 5: 13h/12h/21h/... always take 4 address bytes
    "always-4byte",  # bit 6: the device always uses 4-byte addresses
)
# DW16 bits 23:14.
EXIT_4B_METHODS = (
    "E9",
    "WREN+E9",
    "extended-address-register",
    "bank-register",
    "nv-config-register",
    "hardware-reset",
    "software-reset",
    "power-cycle",
)
# Ways into 4-byte mode that work with the nRF's fixed opcodes, best first. The extended
# address register keeps 3-byte addressing and dedicated 4-byte opcodes cannot be issued by
# READSTART/WRITESTART/ERASESTART, so neither counts here.
NRF_USABLE_4B_ENTRY = ("always-4byte", "B7", "WREN+B7", "bank-register")
NRF_USABLE_4B_EXIT = ("E9", "WREN+E9", "bank-register", "software-reset")

# 4BAIT DW1 support bits -> the 4-byte opcode they announce (Linux spi_nor_parse_4bait).
FOUR_BAIT_OPCODES = (
    ("READ", 0x13),
    ("FAST_READ", 0x0C),
    ("READ_1_1_2", 0x3C),
    ("READ_1_2_2", 0xBC),
    ("READ_1_1_4", 0x6C),
    ("READ_1_4_4", 0xEC),
    ("PP", 0x12),
    ("PP_1_1_4", 0x34),
    ("PP_1_4_4", 0x3E),
)



class SfdpError(TargetError):
    """The SFDP bytes read from the chip are not a valid JESD216 structure."""


@dataclass(frozen=True)
class ParameterHeader:
    id: int
    major: int
    minor: int
    length_dwords: int
    pointer: int

    @property
    def name(self) -> str:
        if self.id in TABLE_NAMES:
            return TABLE_NAMES[self.id]
        return f"vendor 0x{self.id:04X}"

    def to_json(self) -> dict:
        return {
            "id": f"0x{self.id:04X}",
            "name": self.name,
            "revision": f"{self.major}.{self.minor}",
            "dwords": self.length_dwords,
            "pointer": self.pointer,
        }


@dataclass(frozen=True)
class EraseType:
    """One of the up to four BFPT erase types (DW8/DW9, times from DW10)."""

    index: int  # 1..4
    size: int  # bytes
    opcode: int
    typ_ms: float | None = None
    max_ms: float | None = None
    opcode_4b: int | None = None  # from the 4BAIT, if the chip has one for this type

    def to_json(self) -> dict:
        return {
            "size": self.size,
            "opcode": f"0x{self.opcode:02X}",
            "typ_ms": self.typ_ms,
            "max_ms": self.max_ms,
            "opcode_4byte": None if self.opcode_4b is None else f"0x{self.opcode_4b:02X}",
        }


@dataclass(frozen=True)
class FastRead:
    """A fast-read mode the BFPT announces: bus widths, opcode and dummy cycles."""

    mode: str  # "1-1-2", "1-2-2", "1-4-4", "1-1-4", "2-2-2", "4-4-4"
    opcode: int
    mode_clocks: int
    wait_states: int

    def to_json(self) -> dict:
        return {
            "mode": self.mode,
            "opcode": f"0x{self.opcode:02X}",
            "mode_clocks": self.mode_clocks,
            "wait_states": self.wait_states,
        }


@dataclass(frozen=True)
class Bfpt:
    """Basic Flash Parameter Table, decoded. Fields of DWORDs the table lacks are None."""

    dwords: tuple[int, ...]
    erase_4k_supported: bool
    erase_4k_opcode: int | None
    address_bytes: str  # "3", "3/4", "4" (DW1 bits 18:17)
    dtr: bool
    density_bytes: int
    fast_reads: tuple[FastRead, ...]
    erase_types: tuple[EraseType, ...]
    page_size: int | None = None
    page_program_typ_us: float | None = None
    page_program_max_us: float | None = None
    chip_erase_typ_ms: float | None = None
    chip_erase_max_ms: float | None = None
    suspend_resume: bool | None = None
    deep_power_down: tuple[int, int] | None = None  # (enter opcode, exit opcode)
    qer: int | None = None  # DW15 bits 22:20
    enter_4b_bits: int | None = None  # DW16 bits 31:24 (None: absent or unprogrammed)
    exit_4b_bits: int | None = None  # DW16 bits 23:14

    @property
    def qer_name(self) -> str | None:
        if self.qer is None:
            return None
        return QER_NAMES.get(self.qer, f"reserved({self.qer})")

    @property
    def enter_4b_methods(self) -> tuple[str, ...]:
        return _bit_names(self.enter_4b_bits, ENTER_4B_METHODS)

    @property
    def exit_4b_methods(self) -> tuple[str, ...]:
        return _bit_names(self.exit_4b_bits, EXIT_4B_METHODS)


@dataclass(frozen=True)
class FourByteAddressTable:
    """4-byte Address Instruction Table (ID 0xFF84): dedicated 4-byte opcodes."""

    dw1: int
    dw2: int

    @property
    def instructions(self) -> tuple[str, ...]:
        return tuple(name for bit, (name, _) in enumerate(FOUR_BAIT_OPCODES) if self.dw1 >> bit & 1)

    def erase_opcode(self, erase_type_index: int) -> int | None:
        """4-byte erase opcode for BFPT erase type 1..4, or None if unsupported."""
        if not self.dw1 >> (8 + erase_type_index) & 1:
            return None
        op = self.dw2 >> (8 * (erase_type_index - 1)) & 0xFF
        return None if op == 0xFF else op

    def to_json(self) -> dict:
        return {
            "dw1": f"0x{self.dw1:08X}",
            "dw2": f"0x{self.dw2:08X}",
            "instructions": list(self.instructions),
            "erase_opcodes": [
                None if (op := self.erase_opcode(i)) is None else f"0x{op:02X}" for i in range(1, 5)
            ],
        }


@dataclass(frozen=True)
class Sfdp:
    major: int
    minor: int
    access_protocol: int
    headers: tuple[ParameterHeader, ...]
    bfpt: Bfpt
    four_byte_table: FourByteAddressTable | None = None
    raw: bytes = field(default=b"", repr=False)

    @property
    def size(self) -> int:
        return self.bfpt.density_bytes

    @property
    def four_byte_capable(self) -> bool:
        """The chip can address beyond 16 MiB somehow: DW1, DW16 or a 4BAIT say so.

        DW1 alone is not enough: IS25WP256's DW1 says "3-byte only", yet DW16 lists B7h.
        """
        b = self.bfpt
        return b.address_bytes != "3" or bool(b.enter_4b_methods) or self.four_byte_table is not None

    @property
    def four_byte_entry(self) -> str | None:
        """How to put the chip in 4-byte address mode with the nRF's ordinary opcodes.

        One of NRF_USABLE_4B_ENTRY, or None if no method the nRF can use is announced.
        Without a usable DW16, DW1 "4 only" means always-4byte and "3 or 4" means B7h.
        """
        methods = self.bfpt.enter_4b_methods
        for method in NRF_USABLE_4B_ENTRY:
            if method in methods:
                return method
        if self.bfpt.enter_4b_bits is None:
            if self.bfpt.address_bytes == "4":
                return "always-4byte"
            if self.bfpt.address_bytes == "3/4":
                return "B7"
        return None

    @property
    def four_byte_exit(self) -> str | None:
        """How to leave 4-byte mode: "E9", "WREN+E9", "bank-register", "software-reset" or None.

        Without a usable DW16, a chip entered with B7h is assumed to leave with E9h.
        """
        methods = self.bfpt.exit_4b_methods
        for method in NRF_USABLE_4B_EXIT:
            if method in methods:
                return method
        if self.bfpt.exit_4b_bits is None and self.four_byte_entry in ("B7", "WREN+B7"):
            return "E9"
        return None

    def erase_type(self, size: int) -> EraseType | None:
        for et in self.bfpt.erase_types:
            if et.size == size:
                return et
        return None

    def summary(self) -> dict:
        """What `info` shows: address modes and 4-byte entry, QE, erase types, page size."""
        b = self.bfpt
        return {
            "revision": f"{self.major}.{self.minor}",
            "tables": [h.to_json() for h in self.headers],
            "size": b.density_bytes,
            "address_bytes": b.address_bytes,
            "four_byte_capable": self.four_byte_capable,
            "enter_4byte_methods": list(b.enter_4b_methods),
            "exit_4byte_methods": list(b.exit_4b_methods),
            "four_byte_entry": self.four_byte_entry,
            "four_byte_exit": self.four_byte_exit,
            "four_byte_instructions": (
                list(self.four_byte_table.instructions) if self.four_byte_table else []
            ),
            "quad_enable": b.qer_name,
            "erase_types": [et.to_json() for et in b.erase_types],
            "erase_4k_opcode": None if b.erase_4k_opcode is None else f"0x{b.erase_4k_opcode:02X}",
            "page_size": b.page_size,
            "page_program_typ_us": b.page_program_typ_us,
            "page_program_max_us": b.page_program_max_us,
            "chip_erase_typ_ms": b.chip_erase_typ_ms,
            "chip_erase_max_ms": b.chip_erase_max_ms,
            "fast_reads": [fr.to_json() for fr in b.fast_reads],
            "dtr": b.dtr,
        }

    def describe(self) -> list[str]:
        """Human lines for `info`."""
        s = self.summary()
        lines = [
            f"SFDP {s['revision']}, tables: "
            + ", ".join(f"{t['name']} v{t['revision']} ({t['dwords']} DW)" for t in s["tables"]),
            f"size {_human_size(s['size'])}; address bytes (DW1): {s['address_bytes']}; "
            f"enter 4-byte (DW16): {', '.join(s['enter_4byte_methods']) or 'none'}; "
            f"4-byte instructions (4BAIT): {', '.join(s['four_byte_instructions']) or 'none'}",
            f"4-byte mode for nRF QSPI: {s['four_byte_entry'] or 'not available'}",
            f"quad enable: {s['quad_enable'] if s['quad_enable'] is not None else 'unknown'}",
            "erase types: "
            + ", ".join(
                f"{_human_size(e['size'])} {e['opcode']}"
                + (f" typ {e['typ_ms']:g} ms / max {e['max_ms']:g} ms" if e["typ_ms"] else "")
                for e in s["erase_types"]
            ),
            f"page size: {s['page_size']} B"
            + (
                f", program typ {s['page_program_typ_us']:g} us / max {s['page_program_max_us']:g} us"
                if s["page_program_typ_us"]
                else ""
            ),
        ]
        return lines


def _human_size(n: int) -> str:
    for unit, div in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div and n % div == 0:
            return f"{n // div} {unit}"
    return f"{n} B"


def _bit_names(bits: int | None, names: tuple[str, ...]) -> tuple[str, ...]:
    if bits is None:
        return ()
    return tuple(name for i, name in enumerate(names) if bits >> i & 1)
