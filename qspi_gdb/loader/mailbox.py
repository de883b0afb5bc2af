"""Python mirror of the loader's mailbox ABI (`loader_fw/include/qspi_mailbox.h`).

The C header is the single definition; this module mirrors its constants (same names without
the `QL_` prefix) and struct layouts so an installed package needs no header.
tests/test_mailbox_abi.py parses the header and fails if anything here drifts. Every field is
a little-endian 32-bit word.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAGIC = 0x4C505351
ABI_VERSION = 3
MAX_CMDS = 32
MAX_BUFFERS = 16
MAX_INIT_INSTR = 8
CANARY = 0x5AFEC0DE
HEARTBEAT_US = 1000

CHIP_NRF52840 = 52840
CHIP_NRF5340 = 5340

STATE_IDLE = 0
STATE_READY = 1
STATE_ERROR = 2
STATE_EXITED = 3

OP_NOP = 0
OP_INIT = 1
OP_DEINIT = 2
OP_READ_ID = 3
OP_SFDP = 4
OP_ERASE = 5
OP_PROGRAM = 6
OP_READ = 7
OP_CRC32 = 8
OP_CRC_LIST = 9
OP_CINSTR = 10
OP_WAIT_IDLE = 11
OP_RDSR = 12
OP_EXIT = 13
OP_COUNT = 14

CF_WREN = 0x1
CF_WIPWAIT = 0x2
CF_SYNC = 0x4
CF_LZ4 = 0x8
CF_PREFIX = 0x10
CF_REST = 0x20

ERASE_4K = 0
ERASE_64K = 1
ERASE_CHIP = 2

ST_OK = 0
ST_SKIPPED = 1
ST_BAD_OP = 2
ST_NOT_INIT = 3
ST_RANGE = 4
ST_ALIGN = 5
ST_BUF_RANGE = 6
ST_BUF_BUSY = 7
ST_ADDR_24BIT = 8
ST_BAD_ARG = 9
ST_CONFIG = 10
ST_TIMEOUT = 11
ST_FLASH_BUSY = 12
ST_NO_FLASH = 13
ST_JEDEC_MISMATCH = 14
ST_QE_FAILED = 15
ST_ADDR4_FAILED = 16
ST_CLOCK = 17
ST_CORRUPT = 18
ST_COUNT = 19

BUF_FREE = 0
BUF_DMA = 1

ADDR_24BIT = 0
ADDR_32BIT = 1

FOURB_NONE = 0  # C: QL_4B_* (a Python name cannot start with a digit)
FOURB_B7 = 1
FOURB_WREN_B7 = 2
FOURB_BANKREG = 3
FOURB_ALWAYS = 4

QE_NONE = 0
QE_S2B1_V1 = 1
QE_S1B6 = 2
QE_S2B7 = 3
QE_S2B1_V4 = 4
QE_S2B1_V5 = 5
QE_S2B1_V6 = 6

CFG_SKIP_QE = 0x1
CFG_IO2_LOW = 0x2
CFG_IO3_LOW = 0x4

II_WREN = 0x1
II_WIPWAIT = 0x2

STAGE_ACTIVATE = 1
STAGE_CINSTR = 2
STAGE_ERASE = 3
STAGE_WRITE = 4
STAGE_READ = 5
STAGE_ERRATA = 6

NO_PIN = 0xFFFFFFFF
NO_QUERY = 0xFFFFFFFF

# Busy times (us) where the configuration leaves a t_*_us field at 0.
DEF_PAGE_TYP_US = 1000
DEF_PAGE_MAX_US = 10000
DEF_4K_TYP_US = 50000
DEF_4K_MAX_US = 1000000
DEF_64K_TYP_US = 500000
DEF_64K_MAX_US = 4000000
DEF_CHIP_TYP_US = 60000000
DEF_CHIP_MAX_US = 2400000000
DEF_WRSR_MAX_US = 200000


OP_NAMES = {
    OP_NOP: "NOP",
    OP_INIT: "INIT",
    OP_DEINIT: "DEINIT",
    OP_READ_ID: "READ_ID",
    OP_SFDP: "SFDP",
    OP_ERASE: "ERASE",
    OP_PROGRAM: "PROGRAM",
    OP_READ: "READ",
    OP_CRC32: "CRC32",
    OP_CRC_LIST: "CRC_LIST",
    OP_CINSTR: "CINSTR",
    OP_WAIT_IDLE: "WAIT_IDLE",
    OP_RDSR: "RDSR",
    OP_EXIT: "EXIT",
}


# -- struct layouts --------------------------------------------------------------------------
# (field, count) for uint32_t fields, (field, (struct name, count)) for nested structs. Order and
# names are those of the header.

FieldSpec = tuple[str, "int | tuple[str, int]"]

INIT_INSTR_FIELDS: tuple[FieldSpec, ...] = (
    ("opcode", 1),
    ("len", 1),
    ("flags", 1),
    ("data", 2),
)

CONFIG_FIELDS: tuple[FieldSpec, ...] = (
    ("pin_sck", 1),
    ("pin_csn", 1),
    ("pin_io0", 1),
    ("pin_io1", 1),
    ("pin_io2", 1),
    ("pin_io3", 1),
    ("sck_hz", 1),
    ("flash_size", 1),
    ("page_size", 1),
    ("addr_mode", 1),
    ("readoc", 1),
    ("writeoc", 1),
    ("pp_size", 1),
    ("sck_delay", 1),
    ("rx_delay", 1),
    ("spi_mode", 1),
    ("enter_4b", 1),
    ("exit_4b_op", 1),
    ("qe_method", 1),
    ("expected_jedec", 1),
    ("mode_query_op", 1),
    ("mode_query_bit", 1),
    ("wip_bit", 1),
    ("flags", 1),
    ("t_page_typ_us", 1),
    ("t_page_max_us", 1),
    ("t_4k_typ_us", 1),
    ("t_4k_max_us", 1),
    ("t_64k_typ_us", 1),
    ("t_64k_max_us", 1),
    ("t_chip_typ_us", 1),
    ("t_chip_max_us", 1),
    ("t_wrsr_max_us", 1),
    ("n_init", 1),
    ("init", ("ql_init_instr", MAX_INIT_INSTR)),
)

CMD_FIELDS: tuple[FieldSpec, ...] = (
    ("op", 1),
    ("flags", 1),
    ("addr", 1),
    ("len", 1),
    ("buf", 1),
    ("buf_off", 1),
    ("arg", 1),
    ("arg2", 1),
    ("arg3", 1),
    ("status", 1),
    ("result0", 1),
    ("result1", 1),
    ("done_us", 1),
    ("tag", 1),
    ("gen", 1),
)

BUFFER_FIELDS: tuple[FieldSpec, ...] = (
    ("addr", 1),
    ("size", 1),
    ("state", 1),
    ("reserved", 1),
)

MAILBOX_FIELDS: tuple[FieldSpec, ...] = (
    ("magic", 1),
    ("abi_version", 1),
    ("build_id", 1),
    ("chip", 1),
    ("nbuffers", 1),
    ("max_cmds", 1),
    ("stack_base", 1),
    ("max_dma", 1),
    ("heartbeat_us", 1),
    ("entry_us", 1),
    ("state", 1),
    ("done_seq", 1),
    ("free_mask", 1),
    ("last_status", 1),
    ("busy", 1),
    ("idle", 1),
    ("jedec_id", 1),
    ("sck_hz", 1),
    ("addr4_before", 1),
    ("time_us", 1),
    ("host_seen", 1),
    ("resume_us", 1),
    ("ready_seq", 1),
    ("ready_us", 1),
    ("done_us", 1),
    ("fail_count", 1),
    ("fail_seq", 1),
    ("canary", 1),
    ("reserved0", 1),
    ("cmd", ("ql_cmd", MAX_CMDS)),
    ("buffer", ("ql_buffer", MAX_BUFFERS)),
    ("config", ("ql_config", 1)),
)

STRUCTS: dict[str, tuple[FieldSpec, ...]] = {
    "ql_init_instr": INIT_INSTR_FIELDS,
    "ql_config": CONFIG_FIELDS,
    "ql_cmd": CMD_FIELDS,
    "ql_buffer": BUFFER_FIELDS,
    "ql_mailbox": MAILBOX_FIELDS,
}


def struct_size(name: str) -> int:
    size = 0
    for _field, kind in STRUCTS[name]:
        if isinstance(kind, int):
            size += 4 * kind
        else:
            sub, count = kind
            size += struct_size(sub) * count
    return size


def offset_of(name: str, field: str) -> int:
    off = 0
    for f, kind in STRUCTS[name]:
        if f == field:
            return off
        off += 4 * kind if isinstance(kind, int) else struct_size(kind[0]) * kind[1]
    raise KeyError(f"{name}.{field}")


def _word_names(name: str) -> list[str]:
    """Flat list of the struct's word fields (arrays as name0, name1, ...; nested skipped)."""
    out = []
    for f, kind in STRUCTS[name]:
        if isinstance(kind, int):
            out.extend([f] if kind == 1 else [f"{f}{i}" for i in range(kind)])
        else:
            raise ValueError(f"{name} has nested structs")
    return out


CMD_SIZE = struct_size("ql_cmd")
BUFFER_SIZE = struct_size("ql_buffer")
CONFIG_SIZE = struct_size("ql_config")
INIT_INSTR_SIZE = struct_size("ql_init_instr")
MAILBOX_SIZE = struct_size("ql_mailbox")
OFF_CMD = offset_of("ql_mailbox", "cmd")
OFF_BUFFER = offset_of("ql_mailbox", "buffer")
OFF_CONFIG = offset_of("ql_mailbox", "config")
HEADER_WORDS = OFF_CMD // 4  # the loader-written words before the ring: read at every stop


@dataclass
class Command:
    """One queued loader command (struct ql_cmd); status/result fields are filled by the loader."""

    op: int
    flags: int = 0
    addr: int = 0
    len: int = 0
    buf: int = 0
    buf_off: int = 0
    arg: int = 0
    arg2: int = 0
    arg3: int = 0
    status: int = ST_SKIPPED
    result0: int = 0
    result1: int = 0
    done_us: int = 0
    gen: int = 0  # the host's stop counter when it wrote the command

    def pack(self, index: int) -> bytes:
        """The ring slot of command number `index` (its tag is index + 1)."""
        return struct.pack(
            "<15I", self.op, self.flags, self.addr, self.len, self.buf, self.buf_off,
            self.arg, self.arg2, self.arg3, 0, 0, 0, 0, (index + 1) & 0xFFFFFFFF,
            self.gen & 0xFFFFFFFF,
        )

    def unpack_results(self, raw: bytes) -> None:
        words = struct.unpack("<15I", raw)
        self.status, self.result0, self.result1, self.done_us = words[9:13]

    @property
    def name(self) -> str:
        return OP_NAMES.get(self.op, f"op {self.op}")

    def buffer_ranges(self) -> list[tuple[int, int, int]]:
        """(buffer, offset, bytes) of the data buffers the command reads or writes (buffer -1:
        the offset counts from the start of the buffer area); a range may run on into the
        following buffers (a PROGRAM's data)."""
        if self.op == OP_PROGRAM:
            if self.flags & CF_LZ4:  # arg2: where it is decoded, an offset in the buffer area
                return [(self.buf, self.buf_off, self.arg), (-1, self.arg2, self.len)]
            return [(self.buf, self.buf_off, self.len)]
        if self.op in (OP_READ, OP_SFDP):
            return [(self.buf, self.buf_off, self.len)]
        if self.op == OP_CRC_LIST:
            return [(self.buf, self.buf_off, crc_list_bytes(self))]
        return []


def timer_span_s(later_us: int, earlier_us: int) -> float:
    """Seconds between two readings of the loader's 32-bit microsecond timer (it wraps)."""
    return ((later_us - earlier_us) & 0xFFFFFFFF) / 1e6


def crc_list_bytes(cmd: Command) -> int:
    """What a CRC_LIST command uses of its buffer: a word per sector, and with CF_PREFIX or
    CF_REST the bitmap behind them."""
    count = cmd.len // cmd.arg if cmd.arg else 1
    return 4 * (count + ((count + 31) // 32 if cmd.flags & (CF_PREFIX | CF_REST) else 0))


@dataclass(frozen=True)
class MailboxHeader:
    """The loader-written words at the start of the mailbox (struct ql_mailbox before the ring)."""

    magic: int
    abi_version: int
    build_id: int
    chip: int
    nbuffers: int
    max_cmds: int
    stack_base: int
    max_dma: int
    heartbeat_us: int
    entry_us: int
    state: int
    done_seq: int
    free_mask: int
    last_status: int
    busy: int
    idle: int
    jedec_id: int
    sck_hz: int
    addr4_before: int
    time_us: int
    host_seen: int
    resume_us: int
    ready_seq: int
    ready_us: int
    done_us: int
    fail_count: int
    fail_seq: int
    canary: int

    @classmethod
    def unpack(cls, raw: bytes) -> MailboxHeader:
        return cls(*struct.unpack_from(f"<{HEADER_WORDS - 1}I", raw))

    @property
    def since_done_s(self) -> float:
        """Loader time from the end of command done_seq - 1 to this stop (the timer wraps)."""
        return timer_span_s(self.time_us, self.done_us)


@dataclass(frozen=True)
class BufferInfo:
    index: int
    addr: int
    size: int


def unpack_buffers(raw: bytes, count: int) -> list[BufferInfo]:
    out = []
    for i in range(count):
        addr, size, _state, _r = struct.unpack_from("<4I", raw, i * BUFFER_SIZE)
        out.append(BufferInfo(i, addr, size))
    return out
