"""Serial NOR parts qspi-gdb knows by JEDEC ID: name, size, and SFDP where a dump is public.

Used to name the detected part in `info`, and as the flash description when nothing was
detected (e.g. `--dry-run` before connecting). The chip's own SFDP, when read, always wins.
SFDP bytes: QSPI_FACTS.md section 5.6 (Zephyr DK DTS `sfdp-bfp`; qemu `m25p80_sfdp.c`
`sfdp_is25wp256`; Linux mtd patch mail for mt25qu256a).
"""

from __future__ import annotations

from dataclasses import dataclass

from qspi_gdb.sfdp import Sfdp, parse_sfdp, sfdp_from_bfpt

MX25R6435F_BFPT = bytes.fromhex(
    "e520f1ff ffffff03 44eb086b 083b04bb eeffffff ffff00ff ffff00ff 0c200f52"
    "10d800ff 2372f500 82ed04cc 44836844 30b030b0 f7c4d55c 00be29ff f0d0ffff"
)


def _is25wp256_sfdp() -> bytes:
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


IS25WP256_SFDP = _is25wp256_sfdp()

MT25QU256A_SFDP = bytes.fromhex(
    "53464450060101ff00060110300000ff84000102800000ffffffffffffff"
    "ffffffffffffffffffffffffffffffffffffe520fbffffffff0f29eb276b"
    "273b27bbffffffffffff27bbffff29eb0c2010d80f520000244a99008b8e"
    "03d4ac0127387a757a75fbbdd55c4a0f82ff81bd3d36ffffffffffffffff"
    "ffffffffffffffffffe7ffff21dcffff"
)


@dataclass(frozen=True)
class Part:
    name: str
    jedec_id: bytes  # RDID (9Fh) bytes: manufacturer, type, capacity
    size: int
    sfdp_bytes: bytes | None = None

    @property
    def sfdp(self) -> Sfdp | None:
        return None if self.sfdp_bytes is None else parse_sfdp(self.sfdp_bytes)


PARTS: tuple[Part, ...] = (
    Part("MX25R6435F", bytes.fromhex("C22817"), 8 << 20, sfdp_from_bfpt(MX25R6435F_BFPT)),
    Part("IS25WP256", bytes.fromhex("9D7019"), 32 << 20, IS25WP256_SFDP),
    Part("MT25QU256A", bytes.fromhex("20BB19"), 32 << 20, MT25QU256A_SFDP),
    Part("IS25LP256D", bytes.fromhex("9D6019"), 32 << 20),
    Part("MT25QL256A", bytes.fromhex("20BA19"), 32 << 20),
    Part("W25Q256JV", bytes.fromhex("EF4019"), 32 << 20),
    Part("W25Q256JV-M", bytes.fromhex("EF7019"), 32 << 20),
    Part("MX25L25645G", bytes.fromhex("C22019"), 32 << 20),
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
