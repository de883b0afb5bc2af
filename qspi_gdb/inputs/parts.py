"""Serial NOR parts qspi-gdb knows by JEDEC ID: name, size, SFDP where a dump is public, and
which nRF QSPI read/program modes the part executes as the nRF sends them.

Used to name the detected part in `info`, and as the flash description when nothing was
detected (e.g. `--dry-run` before connecting). The chip's own SFDP, when read, always wins.
SFDP bytes: `qspi_gdb.inputs.sfdp_dumps` (shared with the virtual board's part models; sources there).

Modes: the nRF sends fixed opcodes (QSPI_FACTS.md §1 IFCONFIG0): reads FASTREAD 0Bh, READ2O 3Bh
(1-1-2), READ2IO BBh (1-2-2), READ4O 6Bh (1-1-4), READ4IO EBh (1-4-4); programs PP 02h, PP2O A2h
(1-1-2), PP4O 32h (1-1-4), PP4IO 38h (1-4-4). SFDP describes reads but not programs, so the
program modes can only come from datasheets: a part lists a mode only if the opcode exists on
it with the nRF's line layout. The modelled parts (qspi_gdb/sim/parts.py) use the same sets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qspi_gdb.inputs.sfdp import Sfdp, parse_sfdp, sfdp_from_bfpt
from qspi_gdb.inputs.sfdp_dumps import IS25WP256_SFDP, MT25QU256A_SFDP, MX25R6435F_BFPT


ALL_READ_MODES = frozenset({"FASTREAD", "READ2O", "READ2IO", "READ4O", "READ4IO"})

# Why a part lacks a program mode, per vendor family (shown in the warning when it is replaced).
_ISSI_NOTES = (
    ("PP4IO", "38h is 1-1-4 on ISSI parts"),
    ("PP2O", "no A2h dual input page program"),
)
_MACRONIX_NOTES = (
    ("PP4O", "no 32h; Macronix quad page program is 38h 1-4-4"),
    ("PP2O", "no A2h dual input page program"),
)
_WINBOND_NOTES = (
    ("PP4IO", "no 38h; Winbond quad page program is 32h 1-1-4"),
    ("PP2O", "no A2h dual input page program"),
)


@dataclass(frozen=True)
class Part:
    name: str
    jedec_id: bytes  # RDID (9Fh) bytes: manufacturer, type, capacity
    size: int
    sfdp_bytes: bytes | None = None
    # nRF READOC / WRITEOC names the part executes as the nRF sends them; None = not known.
    read_modes: frozenset[str] | None = None
    write_modes: frozenset[str] | None = None
    mode_notes: tuple[tuple[str, str], ...] = field(default=())  # (mode, why it is missing)
    ex4b_opcode: int | None = None  # exit-4-byte opcode when it is not E9h (ISSI: 29h)

    @property
    def sfdp(self) -> Sfdp | None:
        return None if self.sfdp_bytes is None else parse_sfdp(self.sfdp_bytes)

    def why_not(self, mode: str) -> str | None:
        """The datasheet reason a mode is missing, if the table records one."""
        return dict(self.mode_notes).get(mode)


# Program modes per vendor family (datasheet command tables):
#   Macronix MX25R / MX25L: PP 02h and 4PP 38h (1-4-4); no 32h, no A2h.
#   ISSI IS25xP256(D): PP 02h and PPQ "32h or 38h", quad *input* with the address on one line
#     (1-1-4); no A2h. So the nRF's PP4IO (38h with a 4-line address) is misread by the chip: the
#     address bits sent on IO1-IO3 are taken as data. ISSI's EX4B is 29h; E9h there is UNPWD
#     (password unlock), so the exit opcode must not default to E9h on these parts.
#   Micron MT25Q: 02h, A2h (1-1-2), D2h (1-2-2), 32h (1-1-4), 38h (1-4-4): all four nRF modes.
#   Winbond W25Q256JV: 02h and 32h (1-1-4); no 38h, no A2h.
# Reads: all these parts have 0Bh, 3Bh, BBh, 6Bh and EBh (their SFDP DW1 announces 1-1-2, 1-2-2,
# 1-1-4 and 1-4-4); a chip's own SFDP still restricts reads further when it is read.
_MACRONIX_WRITES = frozenset({"PP", "PP4IO"})
_ISSI_WRITES = frozenset({"PP", "PP4O"})
_MICRON_WRITES = frozenset({"PP", "PP2O", "PP4O", "PP4IO"})
_WINBOND_WRITES = frozenset({"PP", "PP4O"})


def _part(name, jedec, size, sfdp_bytes, writes, notes, ex4b=None) -> Part:
    return Part(name, bytes.fromhex(jedec), size, sfdp_bytes, ALL_READ_MODES, writes, notes, ex4b)


PARTS: tuple[Part, ...] = (
    _part("MX25R6435F", "C22817", 8 << 20, sfdp_from_bfpt(MX25R6435F_BFPT), _MACRONIX_WRITES, _MACRONIX_NOTES),
    _part("IS25WP256", "9D7019", 32 << 20, IS25WP256_SFDP, _ISSI_WRITES, _ISSI_NOTES, ex4b=0x29),
    _part("MT25QU256A", "20BB19", 32 << 20, MT25QU256A_SFDP, _MICRON_WRITES, ()),
    _part("IS25LP256D", "9D6019", 32 << 20, None, _ISSI_WRITES, _ISSI_NOTES, ex4b=0x29),
    _part("MT25QL256A", "20BA19", 32 << 20, None, _MICRON_WRITES, ()),
    _part("W25Q256JV", "EF4019", 32 << 20, None, _WINBOND_WRITES, _WINBOND_NOTES),
    _part("W25Q256JV-M", "EF7019", 32 << 20, None, _WINBOND_WRITES, _WINBOND_NOTES),
    _part("MX25L25645G", "C22019", 32 << 20, None, _MACRONIX_WRITES, _MACRONIX_NOTES),
)


def by_name(name: str) -> Part | None:
    for part in PARTS:
        if part.name.lower() == name.lower():
            return part
    return None


def by_jedec(jedec_id: bytes) -> Part | None:
    for part in PARTS:
        if part.jedec_id == bytes(jedec_id[:3]):
            return part
    return None
