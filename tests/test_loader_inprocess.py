"""The committed loader ELFs on the virtual board's core, in process (no OpenOCD / GDB).

Both chips with each modelled part (MX25R6435F, IS25WP256, MT25QU256A): greeting, init and
JEDEC ID, SFDP, erase/program/read/CRC round trips across page and sector boundaries, the seed
scenario, 24-bit refusal above 16 MiB, invalid arguments, deinit restoring the address mode,
streaming through several buffers vs one buffer at a time.
"""

from __future__ import annotations

import hashlib
import random
import struct
import zlib
from dataclasses import replace

import pytest

from qspi_gdb.errors import UsageError
from qspi_gdb.loader import config as lc
from qspi_gdb.loader import mailbox as mb
from qspi_gdb.loader.client import LoaderClient
from qspi_gdb.loader.pipeline import EraseStep, ProgramStep
from qspi_gdb.loader.status import (
    FlashError,
    JedecMismatch,
    LoaderProtocolError,
    LoaderRefused,
    status_text,
)
from qspi_gdb.sim import board as board_mod
from qspi_gdb.sim.board import Board, InProcessLink
from qspi_gdb.sim.parts import get_part

MIB = 1 << 20
PINS = {"nrf52840": (19, 17, 20, 21, 22, 23), "nrf5340": (17, 18, 13, 14, 15, 16)}
PRESET = {
    ("nrf52840", "mx25r6435f"): "sim-nrf52840dk",
    ("nrf5340", "mx25r6435f"): "sim-nrf5340dk",
    ("nrf5340", "is25wp256"): "sim-nrf5340-32mb",
    ("nrf52840", "mt25qu256a"): "sim-nrf52840-32mb",
    # the other two combinations: same chips, other part (see _board)
    ("nrf52840", "is25wp256"): None,
    ("nrf5340", "mt25qu256a"): None,
}
COMBOS = list(PRESET)
COMBO_IDS = [f"{c}-{p}" for c, p in COMBOS]


def part_config(chip: str, part_name: str, **over) -> lc.LoaderConfig:
    """What a host derives from the board preset + the part's SFDP / datasheet."""
    part = get_part(part_name)
    t = part.timings
    us = lambda s: int(s * 1e6)  # noqa: E731
    common = dict(
        pins=PINS[chip], flash_size=part.size, sck_hz=8_000_000, rx_delay=2,
        t_page_typ_us=us(t.page_program_typ), t_page_max_us=us(t.page_program_max),
        t_4k_typ_us=us(t.erase_typ[4096]), t_4k_max_us=us(t.erase_max[4096]),
        t_64k_typ_us=us(t.erase_typ[65536]), t_64k_max_us=us(t.erase_max[65536]),
        t_chip_typ_us=us(t.chip_erase_typ), t_chip_max_us=us(t.chip_erase_max),
        t_wrsr_max_us=us(t.wrsr_max),
    )
    if part_name == "mx25r6435f":
        cfg = lc.LoaderConfig(**common, readoc=lc.READOC["READ4IO"], writeoc=lc.WRITEOC["PP4IO"],
                              qe_method=mb.QE_S1B6)
    elif part_name == "is25wp256":
        # ISSI 38h is a 1-1-4 program (address on one line): PP4O, not PP4IO
        cfg = lc.LoaderConfig(**common, readoc=lc.READOC["READ4IO"], writeoc=lc.WRITEOC["PP4O"],
                              qe_method=mb.QE_S1B6, addr_mode=mb.ADDR_32BIT,
                              enter_4b=mb.FOURB_B7, exit_4b_op=0x29,
                              mode_query_op=0x16, mode_query_bit=7)
    else:
        cfg = lc.LoaderConfig(**common, readoc=lc.READOC["READ4IO"], writeoc=lc.WRITEOC["PP4IO"],
                              qe_method=mb.QE_NONE, addr_mode=mb.ADDR_32BIT,
                              enter_4b=mb.FOURB_WREN_B7, mode_query_op=0x70, mode_query_bit=0)
    return replace(cfg, **over)


def _board(chip: str, part: str) -> Board:
    name = PRESET[(chip, part)]
    if name is None:
        base = board_mod.BOARDS["sim-nrf52840dk" if chip == "nrf52840" else "sim-nrf5340dk"]
        return Board(replace(base, name=f"test-{chip}-{part}", part=part))
    return Board(name)


class Rig:
    def __init__(self, chip: str, part: str) -> None:
        self.chip, self.part_name = chip, part
        self.part = get_part(part)
        self.board = _board(chip, part)
        self.link = InProcessLink(self.board)
        self.client = LoaderClient(self.link, chip=chip)
        self.greeting = self.client.start()
        self.config = part_config(chip, part)

    def init(self, **over):
        if over:
            self.config = replace(self.config, **over)
        return self.client.init(self.config)

    @property
    def flash(self):
        return self.board.flash

    def digest(self) -> str:
        return hashlib.sha256(self.flash.peek(0, self.part.size)).hexdigest()

    def close(self) -> None:
        self.board.close()


@pytest.fixture
def rig_factory():
    rigs = []

    def make(chip: str, part: str) -> Rig:
        rig = Rig(chip, part)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.close()


@pytest.fixture(params=COMBOS, ids=COMBO_IDS)
def rig(request, rig_factory) -> Rig:
    return rig_factory(*request.param)


def _only(data_len: int, off: int, image: bytes, size: int) -> bool:
    """Every byte outside [off, off+data_len) is still erased."""
    tail = off + data_len
    return image[:off].count(0xFF) == off and image[tail:].count(0xFF) == size - tail


# -- greeting / init ---------------------------------------------------------------------


@pytest.mark.parametrize("chip", ["nrf52840", "nrf5340"])
def test_greeting(chip, rig_factory):
    rig = rig_factory(chip, "mx25r6435f")
    g = rig.greeting
    assert g.chip == (mb.CHIP_NRF52840 if chip == "nrf52840" else mb.CHIP_NRF5340)
    assert g.abi_version == mb.ABI_VERSION
    assert g.build_id == rig.client.build_id
    assert len(g.buffers) >= 4
    ram_end = 0x20000000 + (256 if chip == "nrf52840" else 512) * 1024
    for b in g.buffers:
        assert b.addr % 4 == 0
        assert 0x20004000 <= b.addr and b.addr + b.size <= ram_end  # OpenOCD work area untouched
    assert rig.client.header.free_mask == (1 << len(g.buffers)) - 1
    # before INIT every flash command is refused
    cmds = rig.client.run([mb.Command(mb.OP_READ_ID)], check=False)
    assert cmds[0].status == mb.ST_NOT_INIT


def test_init_reads_jedec_id(rig):
    res = rig.init()
    assert res.jedec_id == int.from_bytes(rig.part.jedec_id, "big")
    assert res.sck_hz == 8_000_000
    assert rig.client.read_id() == res.jedec_id
    assert rig.flash.four_byte_mode == (rig.config.addr_mode == mb.ADDR_32BIT)
    if rig.part.qe_mask:
        assert rig.flash.quad_enabled


def test_sfdp_equals_parts_table(rig):
    rig.init()
    sfdp = rig.part.sfdp
    assert rig.client.sfdp(0, len(sfdp)) == sfdp
    assert rig.client.sfdp(0x30, 9) == sfdp[0x30:0x39]  # odd length, offset inside


def test_jedec_mismatch_refused(rig_factory):
    rig = rig_factory("nrf5340", "mx25r6435f")
    with pytest.raises(JedecMismatch) as exc:
        rig.init(expected_jedec=0x9D7019)
    assert exc.value.status == mb.ST_JEDEC_MISMATCH
    assert "C22817" in str(exc.value)
    assert isinstance(exc.value, UsageError)
    rig.init(expected_jedec=0xC22817)


@pytest.mark.parametrize("bad", [
    {"addr_mode": mb.ADDR_32BIT, "enter_4b": mb.FOURB_NONE},
    {"pins": (19, 17, 20, 21, 22, 23)},  # not the nRF5340's dedicated QSPI pins
    {"sck_hz": 1_000_000},  # below 6 MHz: slower than the nRF5340 QSPI goes at /1
    {"readoc": 5},
    {"flash_size": 12345},
])
def test_bad_config_refused(bad, rig_factory):
    rig = rig_factory("nrf5340", "mx25r6435f")
    with pytest.raises(LoaderRefused) as exc:
        rig.init(**bad)
    assert exc.value.status == mb.ST_CONFIG


# -- round trips -------------------------------------------------------------------------


def test_erase_program_read_crc_round_trip(rig):
    rig.init()
    c = rig.client
    # above 16 MiB on the 32 MiB parts (4-byte mode), low on the 8 MiB part
    base = 0x1230000 if rig.part.size > 16 * MIB else 0x230000
    c.erase([EraseStep(base, 0x10000, 65536), EraseStep(base + 0x10000, 0x2000, 4096)])
    rnd = random.Random(5)
    data = bytes(rnd.getrandbits(8) for _ in range(0xF123))
    off = base + 0x0FF3  # unaligned, inside a page, crosses pages and 4 KiB sectors
    c.program(off, data)
    assert c.read(off, len(data)) == data
    assert c.crc32(off, len(data)) == zlib.crc32(data)
    assert c.crc32(off + 1, 37) == zlib.crc32(data[1:38])  # unaligned CRC
    image = rig.flash.peek(0, rig.part.size)
    assert image[off:off + len(data)] == data
    assert _only(len(data), off, image, rig.part.size)
    sectors = c.crc_list(base, 4096, 0x12)
    assert sectors == [zlib.crc32(image[base + i * 4096:base + (i + 1) * 4096])
                       for i in range(0x12)]
    # erase one sector in the middle: only it returns to 0xFF
    c.erase([EraseStep(base + 0x3000, 0x1000, 4096)])
    after = rig.flash.peek(0, rig.part.size)
    assert after[base + 0x3000:base + 0x4000] == b"\xff" * 0x1000
    assert after[:base + 0x3000] == image[:base + 0x3000]
    assert after[base + 0x4000:] == image[base + 0x4000:]


@pytest.mark.parametrize("chip,part", [("nrf5340", "is25wp256"), ("nrf52840", "mt25qu256a")])
def test_seed_scenario(chip, part, rig_factory):
    """512,583 bytes at flash offset 0x1E98000 of a 32 MiB chip in 4-byte mode land exactly
    there and nowhere else."""
    rig = rig_factory(chip, part)
    rig.init()
    c = rig.client
    data = random.Random(1).randbytes(512_583)
    off = 0x1E98000
    end = off + len(data)
    c.write([
        EraseStep(off, 0x1EA0000 - off, 4096),
        EraseStep(0x1EA0000, 0x1F10000 - 0x1EA0000, 65536),
        EraseStep(0x1F10000, ((end + 0xFFF) & ~0xFFF) - 0x1F10000, 4096),
        ProgramStep(off, data),
    ])
    assert c.crc32(off, len(data)) == zlib.crc32(data)
    image = rig.flash.peek(0, rig.part.size)
    assert image[off:end] == data
    assert _only(len(data), off, image, rig.part.size)
    # stop/resume cycles stay few: <= 64 per MiB
    assert c.stats.calls <= 64 * (len(data) / MIB) + 8


def test_chip_erase(rig_factory):
    rig = rig_factory("nrf52840", "mx25r6435f")
    rig.init()
    c = rig.client
    c.erase([EraseStep(0x10000, 0x1000, 4096)])
    c.program(0x10000, b"\x00" * 64)
    c.erase_chip(rig.part.size)
    assert rig.flash.peek(0, rig.part.size).count(0xFF) == rig.part.size


# -- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize("chip,part", [("nrf5340", "is25wp256"), ("nrf52840", "mt25qu256a")])
def test_24bit_mode_refuses_access_above_16mib(chip, part, rig_factory):
    rig = rig_factory(chip, part)
    rig.init(addr_mode=mb.ADDR_24BIT)
    assert not rig.flash.four_byte_mode
    c = rig.client
    c.erase([EraseStep(0xFF0000, 0x10000, 65536)])  # just below 16 MiB: fine
    c.program(0xFFFFF0, b"\x12" * 16)
    before = rig.digest()
    b = 0
    for cmd in (
        mb.Command(mb.OP_ERASE, addr=0x1000000, len=0x1000, arg=mb.ERASE_4K),
        mb.Command(mb.OP_PROGRAM, addr=0x1000000, len=16, buf=b),
        mb.Command(mb.OP_PROGRAM, addr=0xFFFFF8, len=16, buf=b),  # crosses 16 MiB
        mb.Command(mb.OP_READ, addr=0x1E98000, len=16, buf=b),
        mb.Command(mb.OP_CRC32, addr=0xFFFFFF, len=2),
    ):
        (done,) = c.run([cmd], check=False)
        assert done.status == mb.ST_ADDR_24BIT, cmd
    with pytest.raises(LoaderRefused):
        c.program(0x1E98000, b"\0" * 8)
    assert rig.digest() == before


INVALID = [
    # (command, expected status)
    (mb.Command(99), mb.ST_BAD_OP),
    (mb.Command(mb.OP_PROGRAM, addr=0x1002, len=16), mb.ST_ALIGN),
    (mb.Command(mb.OP_PROGRAM, addr=0x1000, len=15), mb.ST_ALIGN),
    (mb.Command(mb.OP_PROGRAM, addr=0x1000, len=0), mb.ST_BAD_ARG),
    (mb.Command(mb.OP_PROGRAM, addr=0x7FFFF0, len=32), mb.ST_RANGE),
    (mb.Command(mb.OP_PROGRAM, addr=0x800000, len=4), mb.ST_RANGE),
    (mb.Command(mb.OP_PROGRAM, addr=0x1000, len=16, buf=99), mb.ST_BUF_RANGE),
    (mb.Command(mb.OP_PROGRAM, addr=0x1000, len=16, buf_off=2), mb.ST_ALIGN),
    (mb.Command(mb.OP_PROGRAM, addr=0x1000, len=0x40, buf_off=0x7FFFFFF0), mb.ST_BUF_RANGE),
    (mb.Command(mb.OP_ERASE, addr=0x1800, len=0x1000, arg=mb.ERASE_4K), mb.ST_ALIGN),
    (mb.Command(mb.OP_ERASE, addr=0x10000, len=0x8000, arg=mb.ERASE_64K), mb.ST_ALIGN),
    (mb.Command(mb.OP_ERASE, addr=0x0, len=0x1000, arg=3), mb.ST_BAD_ARG),
    (mb.Command(mb.OP_ERASE, addr=0x1000, len=0, arg=mb.ERASE_4K), mb.ST_BAD_ARG),
    (mb.Command(mb.OP_ERASE, addr=0x7FF000, len=0x2000, arg=mb.ERASE_4K), mb.ST_RANGE),
    (mb.Command(mb.OP_ERASE, addr=0x1000, len=0x800000, arg=mb.ERASE_CHIP), mb.ST_BAD_ARG),
    (mb.Command(mb.OP_READ, addr=0x1000, len=0x100000, buf=0), mb.ST_BUF_RANGE),
    (mb.Command(mb.OP_READ, addr=0x1001, len=4, buf=0), mb.ST_ALIGN),
    (mb.Command(mb.OP_CRC32, addr=0x1000, len=0), mb.ST_BAD_ARG),
    (mb.Command(mb.OP_CRC32, addr=0x7FFFFF, len=2), mb.ST_RANGE),
    (mb.Command(mb.OP_CRC_LIST, addr=0x1000, len=0x2000, arg=0), mb.ST_BAD_ARG),
    (mb.Command(mb.OP_CRC_LIST, addr=0x1000, len=0x2001, arg=0x1000), mb.ST_ALIGN),
    (mb.Command(mb.OP_CRC_LIST, mb.CF_PREFIX, 0x1000, 0x2000, arg=0x1000), mb.ST_BAD_ARG),
    (mb.Command(mb.OP_CRC_LIST, mb.CF_PREFIX, 0x1000, 0x2000, arg=0x1000, arg2=0x1000),
     mb.ST_BAD_ARG),
    (mb.Command(mb.OP_CRC_LIST, mb.CF_PREFIX, 0x1000, 0x2000, arg=0x1000, arg2=0x102),
     mb.ST_ALIGN),
    (mb.Command(mb.OP_CRC_LIST, mb.CF_PREFIX | mb.CF_REST, 0x1000, 0x2000, arg=0x1000,
                arg2=0x100), mb.ST_BAD_ARG),
    (mb.Command(mb.OP_CRC_LIST, mb.CF_REST, 0x1000, 0x2000, arg=0x1000), mb.ST_BAD_ARG),
    (mb.Command(mb.OP_CRC_LIST, 0x40, 0x1000, 0x2000, arg=0x1000), mb.ST_BAD_ARG),
    # the words and their bitmap must fit the buffer: a buffer's 0x2000 words leave no room
    (mb.Command(mb.OP_CRC_LIST, mb.CF_PREFIX, 0, 0x200000, arg=0x100, arg2=4), mb.ST_BUF_RANGE),
    (mb.Command(mb.OP_CINSTR, addr=0x9F, len=9), mb.ST_BAD_ARG),
    (mb.Command(mb.OP_CINSTR, addr=0x19F, len=1), mb.ST_BAD_ARG),
    (mb.Command(mb.OP_SFDP, addr=0, len=0), mb.ST_BAD_ARG),
    (mb.Command(mb.OP_SFDP, addr=0xFFFFFF, len=4), mb.ST_RANGE),
]


@pytest.fixture(scope="module", params=["nrf52840", "nrf5340"])
def programmed_rig(request):
    """One 8 MiB board per chip with some data, shared by the invalid-argument cases."""
    rig = Rig(request.param, "mx25r6435f")
    rig.init()
    rig.client.erase([EraseStep(0, 0x10000, 65536)])
    rig.client.program(0x1000, random.Random(3).randbytes(0x3000))
    yield rig
    rig.close()


@pytest.mark.parametrize("cmd,status", INVALID,
                         ids=[f"{mb.OP_NAMES.get(c.op, c.op)}-{i}" for i, (c, _) in
                              enumerate(INVALID)])
def test_invalid_argument_answered_and_flash_unchanged(cmd, status, programmed_rig):
    rig = programmed_rig
    before = rig.digest()
    # the buffer a bad PROGRAM names holds zeros: programming it would change the flash
    rig.link.write_memory(rig.greeting.buffers[0].addr, b"\0" * 0x100)
    follow = mb.Command(mb.OP_NOP)
    done = rig.client.run([replace(cmd), follow], check=False)
    assert done[0].status == status, status_text(done[0].status)
    assert done[1].status == mb.ST_SKIPPED  # the queue stops at the first failure
    assert rig.client.header.state == mb.STATE_ERROR
    assert rig.digest() == before
    rig.client.run([mb.Command(mb.OP_NOP)])  # and the loader carries on


def test_buffer_in_dma_is_protected(rig_factory):
    """A buffer EasyDMA may still read is reported busy to the host, and a command that would
    write into it (a READ) waits until EasyDMA is done: the data being programmed is never
    overwritten."""
    rig = rig_factory("nrf5340", "mx25r6435f")
    rig.init()
    c = rig.client
    c.erase([EraseStep(0, 0x10000, 65536)])
    buf = rig.greeting.buffers[0]
    rig.link.write_memory(buf.addr, b"\x5a" * 0x8000)
    c.run([mb.Command(mb.OP_PROGRAM, addr=0, len=0x8000, buf=0)])
    assert not c.free_mask & 1  # EasyDMA may still read buffer 0: not free
    assert 0 not in c.free_buffers()
    # a READ of other flash data into buffer 0: runs only once the program has read it all
    (read,) = c.run([mb.Command(mb.OP_READ, addr=0x9000, len=0x100, buf=0)], check=False)
    assert read.status == mb.ST_OK
    c.wait_idle()
    assert c.free_mask & 1
    assert rig.flash.peek(0, 0x8000) == b"\x5a" * 0x8000
    assert rig.link.read_memory(buf.addr, 0x100) == b"\xff" * 0x100


# -- deinit ------------------------------------------------------------------------------


@pytest.mark.parametrize("chip,part", [("nrf5340", "is25wp256"), ("nrf52840", "mt25qu256a")])
def test_deinit_restores_address_mode(chip, part, rig_factory):
    rig = rig_factory(chip, part)
    c = rig.client
    res = rig.init()
    assert not res.addr4_before and rig.flash.four_byte_mode
    c.deinit()
    assert not rig.flash.four_byte_mode  # an application expecting 3-byte mode still boots
    qspi_base = 0x40029000 if chip == "nrf52840" else 0x5002B000
    (enable,) = struct.unpack("<I", rig.link.read_memory(qspi_base + 0x500, 4))
    assert enable == 0  # peripheral disabled (errata 122 sequence on nRF52840)
    with pytest.raises(LoaderProtocolError):
        c.read_id()  # NOT_INIT again
    # a chip already in 4-byte mode before INIT is left in 4-byte mode
    rig.init(addr_mode=mb.ADDR_24BIT)
    c.cinstr(0xB7, wren=part == "mt25qu256a")
    c.wait_idle()
    c.deinit()
    assert rig.flash.four_byte_mode
    res = rig.init()
    assert res.addr4_before
    c.deinit()
    assert rig.flash.four_byte_mode


# -- streaming ---------------------------------------------------------------------------


@pytest.mark.parametrize("chip,part", [("nrf5340", "mx25r6435f"), ("nrf52840", "mt25qu256a")])
def test_streaming_equals_one_by_one(chip, part, rig_factory):
    data = random.Random(9).randbytes(300_001)
    off = 0x20F01
    steps = [EraseStep(0x20000, 0x50000, 65536), ProgramStep(off, data)]

    streamed = rig_factory(chip, part)
    streamed.init()
    used: set[int] = set()
    submit = streamed.client.submit

    def spy(cmds):
        cmds = list(cmds)
        used.update(c.buf for c in cmds if c.op == mb.OP_PROGRAM)
        return submit(cmds)

    streamed.client.submit = spy
    streamed.client.write(steps)
    assert len(used) >= 2  # several buffers in flight / filled ahead
    assert streamed.client.stats.noticed_halts == 0  # the host stopped the loader every time

    single = rig_factory(chip, part)
    single.init()
    c = single.client
    c.erase([EraseStep(0x20000, 0x50000, 65536)])
    start = off & ~3
    padded = b"\xff" * (off - start) + data
    padded += b"\xff" * (-len(padded) % 4)
    buf = single.greeting.buffers[0]
    for pos in range(0, len(padded), 0x1000):  # one buffer, one chunk, flash idle each time
        chunk = padded[pos:pos + 0x1000]
        single.link.write_memory(buf.addr, chunk)
        c.run([mb.Command(mb.OP_PROGRAM, mb.CF_SYNC, start + pos, len(chunk), buf=0)])
        assert c.free_mask & 1

    assert streamed.digest() == single.digest()
    assert streamed.flash.peek(off, len(data)) == data


def test_init_reads_the_start_of_sfdp_without_a_stop_of_its_own(rig_factory):
    """The probing INIT of `connect` and a read of the SFDP space go in one request: as many
    stops as the INIT alone."""
    stops = []
    for then_sfdp in (0, 512):
        rig = rig_factory("nrf52840", "mt25qu256a")
        before = rig.client.stats.stops
        res = rig.client.init(rig.config, then_sfdp=then_sfdp)
        stops.append(rig.client.stats.stops - before)
        assert res.jedec_id == 0x20BB19
    assert stops[1] == stops[0]
    sfdp = rig.part.sfdp
    assert len(res.sfdp) == 512 and res.sfdp[:len(sfdp)] == sfdp


def test_commands_after_a_stream_go_with_its_last_program(rig_factory):
    """CRC32s given to write(then=...) are queued behind the last program and the final
    WAIT_IDLE, in the same stop, and run once the flash is idle: their results come with the
    end of the writing, not with a stop of their own."""
    data = random.Random(5).randbytes(70_000)
    rig = rig_factory("nrf52840", "mt25qu256a")
    rig.init()
    client, submitted = rig.client, []
    submit = client.submit

    def spy(cmds):
        cmds = list(cmds)
        submitted.extend((c.op, client.stats.stops) for c in cmds)
        return submit(cmds)

    client.submit = spy
    then = [mb.Command(mb.OP_CRC32, addr=0x40000, len=len(data)),
            mb.Command(mb.OP_CRC32, addr=0x40000, len=100)]
    client.write([EraseStep(0x40000, 0x20000, 65536), ProgramStep(0x40000, data)], then=then)
    last_program = [stop for op, stop in submitted if op == mb.OP_PROGRAM][-1]
    assert submitted[-3:] == [(mb.OP_WAIT_IDLE, last_program), (mb.OP_CRC32, last_program),
                              (mb.OP_CRC32, last_program)]
    assert rig.flash.peek(0x40000, len(data)) == data
    assert [c.status for c in then] == [mb.ST_OK, mb.ST_OK]
    assert [c.result0 for c in then] == [zlib.crc32(data), zlib.crc32(data[:100])]


def test_reinit_in_one_call_and_after_deinit(rig_factory):
    rig = rig_factory("nrf52840", "mt25qu256a")
    rig.init()
    done = rig.client.run([mb.Command(mb.OP_DEINIT), mb.Command(mb.OP_INIT),
                           mb.Command(mb.OP_INIT), mb.Command(mb.OP_READ_ID)])
    assert done[3].result0 == 0x20BB19
    rig.client.deinit()
    assert not rig.flash.four_byte_mode
    assert rig.init().jedec_id == 0x20BB19  # the timer stopped at DEINIT starts again
    assert rig.flash.four_byte_mode


def test_greeting_catches_a_damaged_download(rig_factory):
    rig = rig_factory("nrf5340", "mx25r6435f")
    from elftools.elf.elffile import ELFFile

    from qspi_gdb.errors import TargetError
    with open(rig.client.elf_path, "rb") as f:
        (sym,) = ELFFile(f).get_section_by_name(".symtab").get_symbol_by_name(
            "qspi_loader_build_id")
    rig.link.write_memory(sym["st_value"], struct.pack("<I", rig.client.build_id ^ 1))
    again = LoaderClient(rig.link, chip="nrf5340")
    with pytest.raises(TargetError, match="did not arrive intact"):
        again.start(load=False)
    with pytest.raises(UsageError, match="built for nrf5340"):
        LoaderClient(rig.link, rig.client.elf_path, chip="nrf52840").start()


@pytest.mark.parametrize("sector", [0x800, 0x1000, 0x3000, 0x10000])
def test_crc_list_any_sector_size(sector, programmed_rig):
    rig = programmed_rig
    count = 0x20000 // sector
    image = rig.flash.peek(0, 0x20000)
    assert rig.client.crc_list(0, sector, count) == [
        zlib.crc32(image[i * sector:(i + 1) * sector]) for i in range(count)]


@pytest.mark.parametrize("sector,count", [(0x1000, 40), (0x10000, 3)])
def test_crc_list_prefixed_reads_no_further_where_the_first_bytes_differ(sector, count,
                                                                         programmed_rig):
    """Sector 1 differs from the expected image in its first bytes: only those are read and it
    comes back None. Sector 2 differs only behind them: read whole, its true CRC. The rest
    match: their CRCs."""
    rig = programmed_rig
    prefix = 256
    flash = rig.flash.peek(0, count * sector)
    image = bytearray(flash)
    image[sector + 10] ^= 1
    image[3 * sector - 1] ^= 1
    expected = [zlib.crc32(image[i * sector:i * sector + prefix]) for i in range(count)]
    read_before = rig.board.qspi.stats["dma_bytes"]
    got = rig.client.crc_list_prefixed(0, sector, prefix, expected)
    assert got == [None if i == 1 else zlib.crc32(flash[i * sector:(i + 1) * sector])
                   for i in range(count)]
    assert got[2] != zlib.crc32(image[2 * sector:3 * sector])
    assert rig.board.qspi.stats["dma_bytes"] - read_before == count * sector - (sector - prefix)


def test_crc_list_prefixed_waits_for_what_its_first_step_found(programmed_rig):
    """Sectors that all differ at their start: one stop. All equal: the stop after the first
    bytes knows how many sectors to read on, and the next one has them, soon after they are
    done (the wait counts what the loader read on while the host waited for the first bytes)."""
    rig = programmed_rig
    flash = rig.flash.peek(0, 0x40000)
    same = [zlib.crc32(flash[i * 4096:i * 4096 + 256]) for i in range(64)]
    for expected, stops in (([x ^ 1 for x in same], 1), (same, 2)):
        before = rig.client.stats.stops
        got = rig.client.crc_list_prefixed(0, 4096, 256, expected)
        assert rig.client.stats.stops - before == stops
        assert (got == [None] * 64) == (stops == 1)
    hdr = rig.client.header
    rest = rig.client.timing.rests_s(64, 4096, 256)
    # in process: 3 ms after the rest ended (6 ms when the wait ignored what ran meanwhile)
    assert hdr.since_done_s < 0.07 * rest


@pytest.mark.parametrize("chip", ["nrf52840", "nrf5340"])
def test_custom_init_instructions_and_raw_cinstr(chip, rig_factory):
    rig = rig_factory(chip, "mx25r6435f")
    assert not rig.flash.quad_enabled
    # nrfjprog's default for the DK part: WRSR SR=0x40 (QE), CR1=0, CR2=0x02, write-enabled;
    # the loader's own quad enable is switched off so only the custom instruction sets QE
    rig.init(flags=mb.CFG_SKIP_QE,
             init=(lc.InitInstruction(0x01, b"\x40\x00\x02", wren=True),))
    assert rig.flash.quad_enabled
    c = rig.client
    assert c.cinstr(0x9F, length=3) == bytes.fromhex("C22817")
    assert c.rdsr() & 0x40
    assert c.cinstr(0x15, length=2) == b"\x00\x02"  # RDCR: CR1, CR2 as written


def test_wait_beyond_the_parts_max_time_is_a_flash_error(rig_factory):
    """Deadlines come from the config's max times: claim a 4 KiB erase takes at most 1 ms
    (MX25R6435F really takes ~48 ms) and the loader gives up with FLASH_BUSY."""
    rig = rig_factory("nrf5340", "mx25r6435f")
    rig.init(t_4k_max_us=1000)
    c = rig.client
    with pytest.raises(FlashError) as exc:
        c.run([mb.Command(mb.OP_ERASE, mb.CF_SYNC, 0x1000, 0x1000, arg=mb.ERASE_4K)])
    assert exc.value.status == mb.ST_FLASH_BUSY
    assert "longer than the part's maximum" in str(exc.value)
    rig.board.clock.advance(0.1)  # the host takes its time while the core is halted...
    c.wait_idle()  # ...meanwhile the flash finished on its own; the loader carries on
    assert rig.flash.peek(0x1000, 0x1000) == b"\xff" * 0x1000
