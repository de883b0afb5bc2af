"""The flash part table: every serial NOR part qspi-gdb knows, with the facts both the product
and the virtual board use (JEDEC ID, size, the part's SFDP bytes, the nRF read/program modes it
executes, its exit-4-byte opcode).

One table: the product names a detected chip and plans without a chip from it; the virtual
board's NOR model (`qspi_gdb.sim.parts`) adds its model-only data (command set, registers)
beside the rows it models. Pure data: this module imports no other module of the product, and
holds no decoding (the product decodes SFDP with `qspi_gdb.inputs.sfdp`, the virtual board with
its own JESD216 helpers, so a decoder bug shows up as a disagreement instead of being shared).

Modes: the nRF sends fixed opcodes (QSPI_FACTS.md §1 IFCONFIG0): reads FASTREAD 0Bh, READ2O 3Bh
(1-1-2), READ2IO BBh (1-2-2), READ4O 6Bh (1-1-4), READ4IO EBh (1-4-4); programs PP 02h, PP2O A2h
(1-1-2), PP4O 32h (1-1-4), PP4IO 38h (1-4-4). SFDP describes reads but not programs, so the
program modes can only come from datasheets: a part lists a mode only if the opcode exists on
it with the nRF's line layout.

SFDP sources: QSPI_FACTS.md section 5.6 (Zephyr DK DTS `sfdp-bfp`; qemu `m25p80_sfdp.c`
`sfdp_is25wp256`; Linux mtd patch mail for mt25qu256a).
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_READ_MODES = frozenset({"FASTREAD", "READ2O", "READ2IO", "READ4O", "READ4IO"})


def wrap_bfpt(bfpt: bytes, *, minor: int = 6, at: int = 0x30) -> bytes:
    """An SFDP image for a bare basic flash parameter table (e.g. a Zephyr DTS `sfdp-bfp`):
    JESD216B header (one parameter header, legacy protocol), 0xFF up to `at`, the table."""
    header = b"SFDP" + bytes([minor, 1, 0, 0xFF])
    param = bytes([0x00, minor, 1, len(bfpt) // 4, at & 0xFF, at >> 8 & 0xFF, at >> 16, 0xFF])
    return header + param + b"\xff" * (at - 16) + bfpt


# Basic flash parameter table (16 DWORDs, JESD216B) of the MX25R6435F, as in Zephyr's nRF52840
# DK devicetree. A bare table: the full SFDP dump of this part is not public, so the image below
# wraps it in a JESD216B header.
MX25R6435F_BFPT = bytes.fromhex(
    "e520f1ff ffffff03 44eb086b 083b04bb eeffffff ffff00ff ffff00ff 0c200f52"
    "10d800ff 2372f500 82ed04cc 44836844 30b030b0 f7c4d55c 00be29ff f0d0ffff"
)
MX25R6435F_SFDP = wrap_bfpt(MX25R6435F_BFPT)


def _is25wp256_sfdp() -> bytes:
    """0x8C bytes: the dump's non-0xFF runs at their offsets, 0xFF between them."""
    image = bytearray(b"\xff" * 0x8C)
    for offset, text in (
        (0x00, "53464450060101ff 00060110300000ff"),
        (0x10, "9d05010380000002"),
        (0x30, "e520f9ffffffff0f 44eb086b083b80bb"),
        (0x40, "feffffffffff00ff ffff44eb0c200f52"),
        (0x50, "10d800ff234ac900 82d811cecccd6846"),
        (0x60, "7a757a75f7aed55c 4a422cfff030faa9"),
        (0x80, "501950169ff9c0648fefffff"),
    ):
        data = bytes.fromhex(text)
        image[offset : offset + len(data)] = data
    return bytes(image)


# Full SFDP (header, BFPT at 0x30, ISSI vendor table at 0x80) of the IS25WP256.
IS25WP256_SFDP = _is25wp256_sfdp()

# Full SFDP (header, BFPT at 0x30, 4-byte address instruction table at 0x80) of the MT25QU256A.
MT25QU256A_SFDP = bytes.fromhex(
    "53464450060101ff00060110300000ff84000102800000ffffffffffffff"
    "ffffffffffffffffffffffffffffffffffffe520fbffffffff0f29eb276b"
    "273b27bbffffffffffff27bbffff29eb0c2010d80f520000244a99008b8e"
    "03d4ac0127387a757a75fbbdd55c4a0f82ff81bd3d36ffffffffffffffff"
    "ffffffffffffffffffe7ffff21dcffff"
)

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
    sfdp_bytes: bytes | None = None  # the part's SFDP image; None = not public
    # nRF READOC / WRITEOC names the part executes as the nRF sends them; None = not known.
    read_modes: frozenset[str] | None = None
    write_modes: frozenset[str] | None = None
    mode_notes: tuple[tuple[str, str], ...] = field(default=())  # (mode, why it is missing)
    ex4b_opcode: int | None = None  # exit-4-byte opcode when it is not E9h (ISSI: 29h)

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
    _part("MX25R6435F", "C22817", 8 << 20, MX25R6435F_SFDP, _MACRONIX_WRITES, _MACRONIX_NOTES),
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
