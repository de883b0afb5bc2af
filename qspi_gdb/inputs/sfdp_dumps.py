"""Raw SFDP bytes of real serial-NOR parts: facts only, no decoding.

One source for the bytes both the host's known-part table (`qspi_gdb.inputs.parts`) and the virtual
board's part models (`qspi_gdb.sim.parts`) use. Each side decodes them with its own code (the
controller with `qspi_gdb.inputs.sfdp`, the sim with its own JESD216 helpers), so a decoder bug shows up
as a disagreement instead of being shared. Keep this module free of logic and imports.

Sources: QSPI_FACTS.md section 5.6 (Zephyr DK DTS `sfdp-bfp`; qemu `m25p80_sfdp.c`
`sfdp_is25wp256`; Linux mtd patch mail for mt25qu256a).
"""

from __future__ import annotations

# Basic flash parameter table (16 DWORDs, JESD216B) of the MX25R6435F, as in Zephyr's nRF52840
# DK devicetree. A bare table: no SFDP header (the full dump of this part is not public).
MX25R6435F_BFPT = bytes.fromhex(
    "e520f1ff ffffff03 44eb086b 083b04bb eeffffff ffff00ff ffff00ff 0c200f52"
    "10d800ff 2372f500 82ed04cc 44836844 30b030b0 f7c4d55c 00be29ff f0d0ffff"
)


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
