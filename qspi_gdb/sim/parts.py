"""The modelled serial-NOR parts: for each row of the product's part table
(`qspi_gdb.inputs.parts`: JEDEC ID, size, SFDP image) the model-only data the NOR model needs
beside it (command set, registers, busy times, protection bits).

Typical/max busy times and read dummy cycles are *decoded from the part's SFDP image* with this
module's own JESD216 helpers, so the model and what a host reads by RDSFDP can never disagree,
and a bug of the product's decoder (`qspi_gdb.inputs.sfdp`) cannot hide on both sides.
Sources: /work/shared/QSPI_FACTS.md sections 4 and 5.6. Values marked UNVERIFIED are not in any
source we could read; they are documented in README.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field

from qspi_gdb.inputs import parts as table

KiB = 1024
MiB = 1024 * KiB


class Kind(enum.Enum):
    READ = "read"
    PROGRAM = "program"
    ERASE = "erase"
    CHIP_ERASE = "chip_erase"
    WREN = "wren"
    WRDI = "wrdi"
    RDSR = "rdsr"
    WRSR = "wrsr"
    RDCR = "rdcr"  # Macronix configuration register (2 bytes)
    RDID = "rdid"
    RDSFDP = "rdsfdp"
    EN4B = "en4b"
    EX4B = "ex4b"
    RDBR = "rdbr"  # bank register (ISSI / Spansion style)
    WRBR = "wrbr"
    RDEAR = "rdear"  # extended address register (Micron)
    WREAR = "wrear"
    RDFSR = "rdfsr"  # Micron flag status register
    CLFSR = "clfsr"  # Micron clear flag status register
    RDNVCR = "rdnvcr"  # Micron 16-bit non-volatile configuration register
    WRNVCR = "wrnvcr"
    RSTEN = "rsten"
    RST = "rst"
    DP = "dp"
    RDP = "rdp"  # release from deep power-down (and RES electronic signature on Macronix)
    RDSCUR = "rdscur"  # Macronix security register (P_FAIL, E_FAIL)
    RDERP = "rderp"  # ISSI extended read register (PROT_E, P_ERR, E_ERR)
    CLERP = "clerp"  # ISSI clear extended read register


class Addr(enum.Enum):
    NONE = 0
    MODE = 1  # 3 or 4 bytes, as the chip's current address mode says
    THREE = 3  # always 3 (RDSFDP)
    FOUR = 4  # dedicated 4-byte opcode


@dataclass(frozen=True)
class Command:
    opcode: int
    kind: Kind
    addr: Addr = Addr.NONE
    addr_lines: int = 1
    dummy: int = 0  # dummy clocks incl. mode clocks, as the part's SFDP states
    data_lines: int = 1
    quad: bool = False  # uses IO2/IO3: needs QE on parts that have a QE bit
    size: int = 0  # erase block size
    max_data: int = 0  # write-register commands: max data bytes accepted (0 = not a write)


@dataclass(frozen=True)
class Timings:
    """Seconds. Typical values drive the model's busy time; max values are for time-outs."""

    page_program_typ: float
    page_program_max: float
    byte_first_typ: float
    byte_more_typ: float
    erase_typ: dict[int, float]  # block size -> seconds
    erase_max: dict[int, float]
    chip_erase_typ: float
    chip_erase_max: float
    wrsr_typ: float  # UNVERIFIED (no datasheet table available)
    wrsr_max: float  # UNVERIFIED
    dpd_exit: float  # SFDP DW14 exit-deep-power-down delay

    def program_time(self, nbytes: int, page_size: int) -> float:
        """JESD216 program times: a whole page takes the page program time (DW11); a partial
        page the byte times (first byte + more bytes), never more than a whole page. (The byte
        times add up to less than the page time on some parts; a full page still takes what
        the chip's own SFDP says it takes.)"""
        if nbytes >= page_size:
            return self.page_program_typ
        return min(self.page_program_typ, self.byte_first_typ + self.byte_more_typ * (nbytes - 1))


@dataclass(frozen=True)
class FailBits:
    """Where a part reports a failed program or erase (and a protected area it refused), the
    register it is read with, and how the bits clear."""

    register: Kind  # RDSCUR (Macronix), RDERP (ISSI), RDFSR (Micron)
    program: int
    erase: int
    protect: int  # set with program/erase when the area is block-protected (0: none)
    cleared_by_success: bool  # Macronix: the next successful program/erase clears its bit


@dataclass(frozen=True)
class PartModel:
    row: table.Part  # the product's part table row: name, JEDEC ID, size, SFDP image
    page_size: int
    commands: dict[int, Command]
    timings: Timings
    qe_mask: int | None  # SR1 bit that enables quad I/O; None = part has no QE bit
    sr_writable: int  # SR1 bits WRSR can change
    en4b_needs_wren: bool = False
    ex4b_needs_wren: bool = False
    ear_needs_wren: bool = False
    dpd_wake_on_any_frame: bool = False  # MX25R: a CS# pulse wakes it (RDP opcode not needed)
    electronic_signature: int | None = None  # RES (ABh + 3 dummy bytes) output
    bp_bits: tuple[int, ...] = (2, 3, 4, 5)  # SR1 positions of BP0, BP1, ... (LSB first)
    tb_bit: int | None = None  # SR1 top/bottom bit (None: protection always from the top)
    fail_bits: FailBits | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        return self.row.name

    @property
    def jedec_id(self) -> bytes:
        return self.row.jedec_id

    @property
    def size(self) -> int:
        return self.row.size

    @functools.cached_property
    def sfdp(self) -> bytes:
        """The SFDP space the chip answers RDSFDP from: the part's image, 0xFF to 256 bytes."""
        return _pad(self.row.sfdp_bytes)

    def protected_range(self, sr: int) -> tuple[int, int] | None:
        """[start, end) the block-protect bits guard: 2^(N-1) 64 KiB blocks for BP value N,
        from the top (or bottom with TB=1), the whole chip at most. UNVERIFIED per-part tables:
        this is the common scheme of the Macronix/ISSI/Micron tables as we remember them."""
        n = sum((sr >> b & 1) << i for i, b in enumerate(self.bp_bits))
        if not n:
            return None
        length = min(self.size, (64 * KiB) << (n - 1))
        if self.tb_bit is not None and sr >> self.tb_bit & 1:
            return 0, length
        return self.size - length, self.size

    @property
    def max_address_bytes(self) -> int:
        return 4 if self.size > 16 * MiB else 3

    def read_commands(self) -> dict[int, Command]:
        return {op: c for op, c in self.commands.items() if c.kind is Kind.READ}


# ---------------------------------------------------------------------------------------------
# SFDP decoding (JESD216B basic flash parameter table), used to derive timings and dummy cycles.
# Deliberately NOT shared with qspi_gdb.inputs.sfdp (the controller's decoder), although both read the
# same DWORD fields: the model is the oracle the controller is tested against, so a decoding bug
# must not be able to sit in both. Only the dump bytes are shared (qspi_gdb.inputs.sfdp_dumps).


def sfdp_tables(image: bytes) -> dict[int, bytes]:
    """Parameter tables by 16-bit ID (MSB<<8 | LSB), from an SFDP image."""
    if image[:4] != b"SFDP":
        raise ValueError("no SFDP signature")
    tables = {}
    for i in range(image[6] + 1):
        h = image[8 + 8 * i : 16 + 8 * i]
        ident = (h[7] << 8) | h[0]
        ptr = int.from_bytes(h[4:7], "little")
        tables[ident] = image[ptr : ptr + 4 * h[3]]
    return tables


def _dwords(table: bytes) -> list[int]:
    """1-based DWORD list (index 0 unused) so code reads like the standard: dw[11]."""
    return [0] + [int.from_bytes(table[i : i + 4], "little") for i in range(0, len(table), 4)]


def bfp_read_dummy(bfp: bytes) -> dict[int, int]:
    """Opcode -> mode + wait clocks for the 1-1-2, 1-2-2, 1-1-4, 1-4-4 reads the BFP lists."""
    dw = _dwords(bfp)
    out = {}
    for word, shift, supported_bit in ((3, 0, 21), (3, 16, 22), (4, 0, 16), (4, 16, 20)):
        if not dw[1] >> supported_bit & 1:
            continue
        half = dw[word] >> shift & 0xFFFF
        out[half >> 8] = (half >> 5 & 7) + (half & 0x1F)
    return out


def bfp_timings(bfp: bytes) -> dict[str, object]:
    dw = _dwords(bfp)
    sizes = [1 << (dw[8] & 0xFF), 1 << (dw[8] >> 16 & 0xFF), 1 << (dw[9] & 0xFF), 1 << (dw[9] >> 16 & 0xFF)]
    present = [dw[8] & 0xFF, dw[8] >> 16 & 0xFF, dw[9] & 0xFF, dw[9] >> 16 & 0xFF]
    erase_mult = 2 * ((dw[10] & 0xF) + 1)
    erase_typ, erase_max = {}, {}
    for i in range(4):
        if not present[i]:
            continue
        field_ = dw[10] >> (4 + 7 * i) & 0x7F
        unit = (0.001, 0.016, 0.128, 1.0)[field_ >> 5]
        erase_typ[sizes[i]] = ((field_ & 0x1F) + 1) * unit
        erase_max[sizes[i]] = erase_typ[sizes[i]] * erase_mult
    prog_mult = 2 * ((dw[11] & 0xF) + 1)
    page = 1 << (dw[11] >> 4 & 0xF)
    pp = ((dw[11] >> 8 & 0x1F) + 1) * (64e-6 if dw[11] >> 13 & 1 else 8e-6)
    first = ((dw[11] >> 14 & 0xF) + 1) * (8e-6 if dw[11] >> 18 & 1 else 1e-6)
    more = ((dw[11] >> 19 & 0xF) + 1) * (8e-6 if dw[11] >> 23 & 1 else 1e-6)
    chip = ((dw[11] >> 24 & 0x1F) + 1) * (0.016, 0.256, 4.0, 64.0)[dw[11] >> 29 & 3]
    dpd_exit = ((dw[14] >> 8 & 0x1F) + 1) * (128e-9, 1e-6, 8e-6, 64e-6)[dw[14] >> 13 & 3]
    return {
        "page_size": page,
        "page_program_typ": pp,
        "page_program_max": pp * prog_mult,
        "byte_first_typ": first,
        "byte_more_typ": more,
        "erase_typ": erase_typ,
        "erase_max": erase_max,
        "chip_erase_typ": chip,
        "chip_erase_max": chip * prog_mult,
        "dpd_exit": dpd_exit,
    }


def bfp_density_bytes(bfp: bytes) -> int:
    dw2 = _dwords(bfp)[2]
    bits = 1 << (dw2 & 0x7FFFFFFF) if dw2 >> 31 else dw2 + 1
    return bits // 8


def bfp_qer(bfp: bytes) -> int:
    return _dwords(bfp)[15] >> 20 & 7


def bfp_enter_4b(bfp: bytes) -> int:
    return _dwords(bfp)[16] >> 24


# ---------------------------------------------------------------------------------------------
# SFDP images.


def _pad(image: bytes, length: int = 256) -> bytes:
    return image + b"\xff" * (length - len(image))


# ---------------------------------------------------------------------------------------------
# Command tables.


def _reads(dummy: dict[int, int], four_byte: bool) -> dict[int, Command]:
    """Standard read set; dummy clocks of 3Bh/BBh/6Bh/EBh from the part's SFDP."""
    shapes = {  # opcode: (addr lines, data lines, quad)
        0x03: (1, 1, False), 0x0B: (1, 1, False), 0x3B: (1, 2, False),
        0xBB: (2, 2, False), 0x6B: (1, 4, True), 0xEB: (4, 4, True),
    }
    fixed = {0x03: 0, 0x0B: 8}  # JESD216: FAST READ 1-1-1 always 8 clocks
    four = {0x03: 0x13, 0x0B: 0x0C, 0x3B: 0x3C, 0xBB: 0xBC, 0x6B: 0x6C, 0xEB: 0xEC}
    out = {}
    for op, (al, dl, quad) in shapes.items():
        d = fixed[op] if op in fixed else dummy[op]
        out[op] = Command(op, Kind.READ, Addr.MODE, al, d, dl, quad)
        if four_byte:
            out[four[op]] = Command(four[op], Kind.READ, Addr.FOUR, al, d, dl, quad)
    return out


def _cmd(*commands: Command) -> dict[int, Command]:
    return {c.opcode: c for c in commands}


def _basic(wrsr_bytes: int) -> dict[int, Command]:
    return _cmd(
        Command(0x06, Kind.WREN),
        Command(0x04, Kind.WRDI),
        Command(0x05, Kind.RDSR),
        Command(0x01, Kind.WRSR, max_data=wrsr_bytes),
        Command(0x9F, Kind.RDID),
        Command(0x5A, Kind.RDSFDP, Addr.THREE, dummy=8),
        Command(0x66, Kind.RSTEN),
        Command(0x99, Kind.RST),
        Command(0xB9, Kind.DP),
        Command(0x60, Kind.CHIP_ERASE),
        Command(0xC7, Kind.CHIP_ERASE),
        Command(0x20, Kind.ERASE, Addr.MODE, size=4 * KiB),
        Command(0x52, Kind.ERASE, Addr.MODE, size=32 * KiB),
        Command(0xD8, Kind.ERASE, Addr.MODE, size=64 * KiB),
        Command(0x02, Kind.PROGRAM, Addr.MODE),
    )


def _four_byte_erase_program(with_32k: bool) -> dict[int, Command]:
    cmds = _cmd(
        Command(0x21, Kind.ERASE, Addr.FOUR, size=4 * KiB),
        Command(0xDC, Kind.ERASE, Addr.FOUR, size=64 * KiB),
        Command(0x12, Kind.PROGRAM, Addr.FOUR),
        Command(0x34, Kind.PROGRAM, Addr.FOUR, data_lines=4, quad=True),
    )
    if with_32k:
        cmds |= _cmd(Command(0x5C, Kind.ERASE, Addr.FOUR, size=32 * KiB))
    return cmds


def _bfp(sfdp: bytes) -> bytes:
    return sfdp_tables(sfdp)[0xFF00]


def _timings(sfdp: bytes, wrsr_typ: float, wrsr_max: float) -> Timings:
    t = bfp_timings(_bfp(sfdp))
    return Timings(
        page_program_typ=t["page_program_typ"],
        page_program_max=t["page_program_max"],
        byte_first_typ=t["byte_first_typ"],
        byte_more_typ=t["byte_more_typ"],
        erase_typ=t["erase_typ"],
        erase_max=t["erase_max"],
        chip_erase_typ=t["chip_erase_typ"],
        chip_erase_max=t["chip_erase_max"],
        wrsr_typ=wrsr_typ,
        wrsr_max=wrsr_max,
        dpd_exit=t["dpd_exit"],
    )


def _mx25r6435f() -> PartModel:
    row = table.by_name("MX25R6435F")
    sfdp = _pad(row.sfdp_bytes)
    cmds = _basic(wrsr_bytes=3)  # SR, CR1, CR2
    cmds |= _reads(bfp_read_dummy(_bfp(sfdp)), four_byte=False)
    cmds |= _cmd(
        Command(0x38, Kind.PROGRAM, Addr.MODE, addr_lines=4, data_lines=4, quad=True),  # 4PP
        Command(0x15, Kind.RDCR),
        Command(0xAB, Kind.RDP, dummy=24),  # RES: 3 dummy bytes, then the signature
        Command(0x2B, Kind.RDSCUR),
    )
    return PartModel(
        row=row,
        page_size=256,
        commands=cmds,
        timings=_timings(sfdp, wrsr_typ=0.010, wrsr_max=0.030),
        qe_mask=0x40,
        sr_writable=0xFC,
        dpd_wake_on_any_frame=True,
        electronic_signature=0x17,
        # Security register (RDSCUR 2Bh): bit 5 P_FAIL, bit 6 E_FAIL, set when a program/erase
        # fails or hits a protected area, cleared when the next one succeeds (Macronix MX25R
        # datasheet, "Security Register"; the bit values as Macronix's own drivers define them)
        fail_bits=FailBits(Kind.RDSCUR, program=0x20, erase=0x40, protect=0,
                           cleared_by_success=True),
        notes=("3-byte only part; no EN4B/EX4B, no 4-byte opcodes; only PP (02h) and 4PP (38h)",),
    )


def _is25wp256() -> PartModel:
    row = table.by_name("IS25WP256")
    sfdp = _pad(row.sfdp_bytes)
    cmds = _basic(wrsr_bytes=1)
    cmds |= _reads(bfp_read_dummy(_bfp(sfdp)), four_byte=True)
    cmds |= _four_byte_erase_program(with_32k=True)
    cmds |= _cmd(
        Command(0xD7, Kind.ERASE, Addr.MODE, size=4 * KiB),  # ISSI alias of 20h
        # ISSI "PPQ 32h/38h": quad *input* page program, address on one line (1-1-4). UNVERIFIED
        # for 38h (datasheet recollection); it is why PP4IO (nRF WRITEOC=3) fails on this part.
        Command(0x32, Kind.PROGRAM, Addr.MODE, data_lines=4, quad=True),
        Command(0x38, Kind.PROGRAM, Addr.MODE, data_lines=4, quad=True),
        Command(0xB7, Kind.EN4B),
        Command(0x29, Kind.EX4B),  # ISSI's EXIT 4-byte mode (not E9h)
        Command(0x16, Kind.RDBR),
        Command(0x17, Kind.WRBR, max_data=1),
        Command(0xAB, Kind.RDP),
        Command(0x81, Kind.RDERP),
        Command(0x82, Kind.CLERP),
    )
    return PartModel(
        row=row,
        page_size=256,
        commands=cmds,
        timings=_timings(sfdp, wrsr_typ=0.002, wrsr_max=0.015),
        qe_mask=0x40,
        sr_writable=0xFC,
        # Extended read register (RDERP 81h, cleared by CLERP 82h): bit 1 PROT_E, bit 2 P_ERR,
        # bit 3 E_ERR. UNVERIFIED: the bit positions are our recollection of the IS25WP
        # datasheet's table (no datasheet was readable); the other bits (drive strength) read 0
        fail_bits=FailBits(Kind.RDERP, program=0x04, erase=0x08, protect=0x02,
                           cleared_by_success=False),
        notes=(
            "BFP DW1 says 3-byte addressing only, but the part has EN4B (B7h, no WREN), "
            "EX4B (29h), a bank register (16h/17h, bit7 EXTADD, bit0 BA24) and 4-byte opcodes",
        ),
    )


def _mt25qu256a() -> PartModel:
    row = table.by_name("MT25QU256A")
    sfdp = _pad(row.sfdp_bytes)
    cmds = _basic(wrsr_bytes=1)
    cmds |= _reads(bfp_read_dummy(_bfp(sfdp)), four_byte=True)
    # 4BAIT: erase types 1 (4K, 21h) and 2 (64K, DCh) only, so no 4-byte 32K erase.
    cmds |= _four_byte_erase_program(with_32k=False)
    cmds |= _cmd(
        Command(0xA2, Kind.PROGRAM, Addr.MODE, data_lines=2),
        Command(0xD2, Kind.PROGRAM, Addr.MODE, addr_lines=2, data_lines=2),
        Command(0x32, Kind.PROGRAM, Addr.MODE, data_lines=4, quad=True),
        Command(0x38, Kind.PROGRAM, Addr.MODE, addr_lines=4, data_lines=4, quad=True),
        Command(0x3E, Kind.PROGRAM, Addr.FOUR, addr_lines=4, data_lines=4, quad=True),
        Command(0xB7, Kind.EN4B),
        Command(0xE9, Kind.EX4B),
        Command(0xC8, Kind.RDEAR),
        Command(0xC5, Kind.WREAR, max_data=1),
        Command(0x70, Kind.RDFSR),
        Command(0x50, Kind.CLFSR),
        Command(0xB5, Kind.RDNVCR),
        Command(0xB1, Kind.WRNVCR, max_data=2),
        Command(0xAB, Kind.RDP),
    )
    return PartModel(
        row=row,
        page_size=256,
        commands=cmds,
        timings=_timings(sfdp, wrsr_typ=0.0013, wrsr_max=0.008),
        qe_mask=None,  # QER=0: quad commands always available; SR bit6 is BP3
        sr_writable=0xFC,
        bp_bits=(2, 3, 4, 6),
        tb_bit=5,
        en4b_needs_wren=True,
        ex4b_needs_wren=True,
        ear_needs_wren=True,
        # Flag status register (70h, cleared by 50h): bit 5 erase, bit 4 program, bit 1
        # protection (MT25Q datasheet, "Flag Status Register")
        fail_bits=FailBits(Kind.RDFSR, program=0x10, erase=0x20, protect=0x02,
                           cleared_by_success=False),
        notes=("EN4B/EX4B and WRITE EAR need WREN; SR bit6 is BP3, not QE",),
    )


PARTS: dict[str, PartModel] = {p.name.lower(): p for p in (_mx25r6435f(), _is25wp256(), _mt25qu256a())}


def get_part(name: str) -> PartModel:
    try:
        return PARTS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown flash part {name!r}; known parts: {', '.join(sorted(PARTS))}") from None
