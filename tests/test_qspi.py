"""nRF QSPI peripheral model: registers, tasks, EasyDMA rules, custom instructions, addressing."""

from __future__ import annotations

import pytest

from qspi_gdb.sim.bus import BusFault
from qspi_gdb.sim.clock import Clock
from qspi_gdb.sim.nor import NorFlash
from qspi_gdb.sim.qspi import (
    ADDRCONF,
    CINSTRCONF,
    CINSTRDAT0,
    CINSTRDAT1,
    DMA_ENC_BASE,
    DPMDUR,
    ENABLE,
    ERASE_LEN,
    ERASE_PTR,
    ERRATA_122,
    EVENTS_READY,
    IFCONFIG0,
    IFCONFIG1,
    IFTIMING,
    INTEN,
    INTENCLR,
    INTENSET,
    PSEL_CSN,
    PSEL_IO0,
    PSEL_IO1,
    PSEL_IO2,
    PSEL_IO3,
    PSEL_SCK,
    READ_CNT,
    READ_DST,
    READ_SRC,
    STATUS,
    TASKS_ACTIVATE,
    TASKS_DEACTIVATE,
    TASKS_ERASESTART,
    TASKS_READSTART,
    TASKS_WRITESTART,
    WRITE_CNT,
    WRITE_DST,
    WRITE_SRC,
    XIPEN,
    XIPOFFSET,
    NrfQspi,
)

RAM = 0x20000000
BUF = RAM + 0x1000
MiB = 1 << 20


class Ram:
    """bytearray RAM that faults outside [base, base+size)."""

    def __init__(self, base: int = RAM, size: int = 0x80000) -> None:
        self.base, self.buf = base, bytearray(size)

    def _off(self, addr: int, n: int, write: bool) -> int:
        if not (self.base <= addr and addr + n <= self.base + len(self.buf)):
            raise BusFault(addr, write, "not RAM")
        return addr - self.base

    def read(self, addr: int, n: int) -> bytes:
        o = self._off(addr, n, False)
        return bytes(self.buf[o : o + n])

    def write(self, addr: int, data: bytes) -> None:
        o = self._off(addr, len(data), True)
        self.buf[o : o + len(data)] = data


def cinstr(opcode: int, length: int = 1, *, wren=False, wipwait=False, lio2=True, lio3=True,
           lfen=False, lfstop=False) -> int:
    return (opcode | length << 8 | lio2 << 12 | lio3 << 13 | wipwait << 14 | wren << 15
            | lfen << 16 | lfstop << 17)


class Rig:
    def __init__(self, chip: str = "nrf5340", part: str = "is25wp256", *, activate: bool = True,
                 ram_size: int = 0x80000) -> None:
        self.clock = Clock()
        self.flash = NorFlash.from_part(part)
        self.ram = Ram(size=ram_size)
        self.irqs = 0
        self.q = NrfQspi(chip, self.flash, self.ram, clock=self.clock, on_ready_irq=self._irq)
        if activate:
            self.setup()
            self.task(TASKS_ACTIVATE)

    def _irq(self) -> None:
        self.irqs += 1

    def w(self, off: int, value: int) -> None:
        self.q.write_reg(off, value)

    def r(self, off: int) -> int:
        return self.q.read_reg(off)

    def setup(self, sckfreq: int = 11) -> None:
        for off, pin in ((PSEL_SCK, 17), (PSEL_CSN, 18), (PSEL_IO0, 13), (PSEL_IO1, 14),
                         (PSEL_IO2, 15), (PSEL_IO3, 16)):
            self.w(off, pin)
        self.w(IFCONFIG1, (self.r(IFCONFIG1) & 0x00FFFF00) | sckfreq << 28)
        self.w(ENABLE, 1)

    def wait(self, limit: float = 1000.0) -> None:
        """Sleep (WFE-like) until READY, then clear it."""
        while not self.r(EVENTS_READY):
            t = self.clock.next_event_time()
            assert t is not None and t <= limit, f"READY never came (errors: {self.q.errors})"
            self.clock.advance_to(t)
        self.w(EVENTS_READY, 0)

    def task(self, off: int) -> None:
        self.w(EVENTS_READY, 0)
        self.w(off, 1)
        self.wait()

    def ci(self, conf: int, dat0: int = 0, dat1: int = 0) -> tuple[int, int]:
        self.w(CINSTRDAT0, dat0)
        self.w(CINSTRDAT1, dat1)
        self.w(EVENTS_READY, 0)
        self.w(CINSTRCONF, conf)
        self.wait()
        return self.r(CINSTRDAT0), self.r(CINSTRDAT1)

    def settle(self) -> None:
        self.clock.advance(self.flash.busy_remaining + 1e-6)

    def write(self, dst: int, data: bytes, src: int = BUF) -> None:
        self.ram.write(src, data)
        self.w(WRITE_DST, dst)
        self.w(WRITE_SRC, src)
        self.w(WRITE_CNT, len(data))
        self.task(TASKS_WRITESTART)

    def read(self, src: int, n: int, dst: int = BUF + 0x40000) -> bytes:
        self.w(READ_SRC, src)
        self.w(READ_DST, dst)
        self.w(READ_CNT, n)
        self.task(TASKS_READSTART)
        return self.ram.read(dst, n)

    def erase(self, ptr: int, length: int) -> None:
        self.w(ERASE_PTR, ptr)
        self.w(ERASE_LEN, length)
        self.task(TASKS_ERASESTART)

    def set_qe(self) -> None:
        self.ci(cinstr(0x01, 2, wren=True, wipwait=True), dat0=0x40)
        self.ci(cinstr(0x05, 2, wipwait=True))


# --- registers --------------------------------------------------------------------------------


@pytest.mark.parametrize("chip,iftiming,cnt", [("nrf52840", 0x200, 0x3FFFF), ("nrf5340", 0x600, 0x1FFFFF)])
def test_reset_values_and_masks(chip, iftiming, cnt):
    rig = Rig(chip, activate=False)
    assert rig.r(IFCONFIG1) == 0x00040480
    assert rig.r(DPMDUR) == 0xFFFFFFFF
    assert rig.r(ADDRCONF) == 0xB7
    assert rig.r(CINSTRCONF) == 0x2000
    assert rig.r(IFTIMING) == iftiming
    for p in (PSEL_SCK, PSEL_CSN, PSEL_IO0, PSEL_IO1, PSEL_IO2, PSEL_IO3):
        assert rig.r(p) == 0xFFFFFFFF
    assert rig.r(XIPEN) == (1 if chip == "nrf5340" else 0)
    assert rig.r(STATUS) & 0x8  # READY when idle
    rig.w(READ_CNT, 0xFFFFFFFF)
    rig.w(WRITE_CNT, 0xFFFFFFFF)
    assert rig.r(READ_CNT) == cnt and rig.r(WRITE_CNT) == cnt
    rig.w(ERASE_LEN, 0xFF)
    assert rig.r(ERASE_LEN) == 3
    rig.w(IFTIMING, 0xFFFFFFFF)
    assert rig.r(IFTIMING) == 0x700


def test_register_access_costs_bus_time():
    rig = Rig(activate=False)
    t0 = rig.clock.now
    for _ in range(10):
        rig.r(STATUS)
    assert rig.clock.now - t0 == pytest.approx(10 * rig.q.bus_access_time)


@pytest.mark.parametrize("chip,sckfreq,hz", [("nrf52840", 3, 8e6), ("nrf52840", 0, 32e6),
                                             ("nrf5340", 11, 8e6), ("nrf5340", 0, 96e6)])
def test_sckfreq_formulas_set_frame_time(chip, sckfreq, hz):
    rig = Rig(chip, activate=False)
    rig.setup(sckfreq)
    rig.w(IFCONFIG1, rig.r(IFCONFIG1) & ~0xFF | sckfreq << 28)  # SCKDELAY 0
    assert rig.q.sck_hz == pytest.approx(hz)
    rig.task(TASKS_ACTIVATE)
    t0 = rig.clock.now
    rig.w(EVENTS_READY, 0)
    rig.w(CINSTRCONF, cinstr(0x9F, 4))
    start = rig.clock.now
    rig.wait()
    assert rig.r(CINSTRDAT0) & 0xFFFFFF == 0x19709D
    assert rig.q.frames[-1][0] - start == pytest.approx(32 / hz)
    assert t0 < start


def test_errata_register_and_encryption_accepted(caplog):
    rig = Rig("nrf52840", activate=False)
    rig.w(ERRATA_122, 1)
    rig5 = Rig("nrf5340", activate=False)
    rig5.w(DMA_ENC_BASE + 0x1C, 1)
    assert rig5.r(DMA_ENC_BASE + 0x1C) == 1
    assert rig5.r(DMA_ENC_BASE) == 0  # key registers are write-only


# --- ACTIVATE / READY / IRQ -------------------------------------------------------------------


def test_activate_waits_for_wip_clear():
    rig = Rig(activate=False)
    rig.flash.transfer(b"\x06")
    rig.flash.transfer(b"\x20\x00\x00\x00")  # a 48 ms erase runs from before the MCU reset
    rig.setup()
    rig.w(TASKS_ACTIVATE, 1)
    t0 = rig.clock.now
    rig.wait()
    assert rig.clock.now - t0 == pytest.approx(rig.flash.part.timings.erase_typ[4096], rel=0.01)
    assert rig.q.stats["polls"] <= 3  # the poll that finds WIP=0 is scheduled, not spun


def test_activate_with_pins_disconnected_completes_without_traffic():
    rig = Rig(activate=False)
    rig.w(ENABLE, 1)
    rig.task(TASKS_ACTIVATE)
    assert rig.q.stats["frames"] == 0


def test_activate_never_ready_while_flash_sleeps():
    rig = Rig(part="mt25qu256a", activate=False)
    rig.flash.transfer(b"\xb9")
    rig.setup()
    rig.w(TASKS_ACTIVATE, 1)
    rig.clock.run_until_idle()
    assert not rig.r(EVENTS_READY) and not rig.r(STATUS) & 8


def test_activate_wakes_mx25r_by_its_cs_pulse():
    rig = Rig(part="mx25r6435f", activate=False)
    rig.flash.transfer(b"\xb9")
    rig.setup()
    rig.task(TASKS_ACTIVATE)
    assert not rig.flash.deep_power_down


def test_addrconf_sent_at_activate():
    rig = Rig(part="mt25qu256a", activate=False)
    rig.setup()
    rig.w(ADDRCONF, 0xB7 | 1 << 24)  # opcode only, no WREN: Micron ignores it
    rig.task(TASKS_ACTIVATE)
    assert not rig.flash.four_byte_mode
    rig.w(ADDRCONF, 0xB7 | 1 << 24 | 1 << 27)  # with WREN
    rig.task(TASKS_ACTIVATE)
    assert rig.flash.four_byte_mode


def test_addrconf_nothing_sent_in_noinstr_mode():
    rig = Rig(part="is25wp256")
    assert not rig.flash.four_byte_mode
    assert [f[1] for f in rig.q.frames] == [0x05]


def test_tasks_need_enable_and_activation():
    rig = Rig(activate=False)
    rig.w(TASKS_READSTART, 1)
    assert "ENABLE=0" in rig.q.errors[-1]
    rig.setup()
    rig.w(TASKS_READSTART, 1)
    assert "before ACTIVATE" in rig.q.errors[-1]
    rig.clock.run_until_idle()
    assert not rig.r(EVENTS_READY)


@pytest.mark.parametrize("chip", ["nrf52840", "nrf5340"])
def test_activate_while_disabled_raises_ready_without_traffic(chip):
    """nrfx's errata 215/43 workaround (nrfx_qspi_init -> qspi_configure) triggers ACTIVATE
    with the pins disconnected before ENABLE and spins on READY: READY comes, nothing is sent,
    the interface is not activated, and no rule violation is recorded."""
    rig = Rig(chip, activate=False)
    rig.irqs = 0
    rig.w(INTENSET, 1)
    rig.task(TASKS_ACTIVATE)  # ENABLE=0, PSELs at reset (disconnected)
    assert rig.irqs == 1 and not rig.q.frames and not rig.q.errors
    rig.w(EVENTS_READY, 0)
    rig.w(TASKS_READSTART, 1)  # still not activated: a transfer is refused
    assert "ENABLE=0" in rig.q.errors[-1]
    rig.clock.run_until_idle()
    assert not rig.r(EVENTS_READY)
    rig.q.errors.clear()
    rig.setup()  # pins, ENABLE=1
    rig.task(TASKS_ACTIVATE)  # the real activation talks to the flash
    assert [f[1] for f in rig.q.frames] == [0x05] and not rig.q.errors


def test_ready_irq_and_inten():
    rig = Rig()
    rig.irqs = 0
    rig.w(INTENSET, 1)
    assert rig.r(INTEN) == 1
    rig.ci(cinstr(0x05, 2))
    assert rig.irqs == 1
    rig.w(EVENTS_READY, 1)  # software can set the event
    assert rig.irqs == 2
    rig.w(INTENCLR, 1)
    rig.w(INTENSET, 1)  # enabling with READY pending raises it
    assert rig.irqs == 3
    rig.w(EVENTS_READY, 0)
    rig.w(INTENCLR, 1)
    rig.ci(cinstr(0x05, 2))
    assert rig.irqs == 3


def test_status_busy_and_second_task_ignored():
    rig = Rig()
    rig.w(READ_SRC, 0)
    rig.w(READ_DST, BUF)
    rig.w(READ_CNT, 4096)
    rig.w(TASKS_READSTART, 1)
    assert not rig.r(STATUS) & 8
    rig.w(TASKS_ERASESTART, 1)
    assert "busy" in rig.q.errors[-1]
    rig.wait()
    assert rig.r(STATUS) & 8
    assert rig.flash.busy_remaining == 0.0


@pytest.mark.parametrize("chip,ready", [("nrf52840", 1), ("nrf5340", 0)])
def test_deactivate_ready_per_chip(chip, ready):
    rig = Rig(chip)
    rig.w(TASKS_DEACTIVATE, 1)
    assert rig.r(EVENTS_READY) == ready


# --- custom instructions ----------------------------------------------------------------------


def test_cinstr_byte_order_over_nine_bytes():
    rig = Rig()
    # 5Ah + addr 000010h + dummy, then 4 bytes received into CINSTRDAT1
    dat0, dat1 = rig.ci(cinstr(0x5A, 9), dat0=0x10_00_00)
    assert dat1.to_bytes(4, "little") == rig.flash.part.sfdp[0x10:0x14]
    assert dat0 == 0xFFFFFFFF  # the chip drives nothing while it takes address and dummy


def test_cinstr_wren_and_wipwait():
    rig = Rig(part="mx25r6435f")
    rig.ci(cinstr(0x01, 2), dat0=0x40)  # WRSR without WREN: ignored
    assert not rig.flash.quad_enabled
    rig.ci(cinstr(0x01, 2, wren=True), dat0=0x40)
    assert rig.flash.status & 1
    sr, _ = rig.ci(cinstr(0x05, 2, wipwait=True))
    assert sr & 0xFF == 0x40 and rig.flash.quad_enabled
    assert rig.r(STATUS) >> 24 == 0x40


def test_lio3_low_is_hold_while_qe_clear():
    rig = Rig(part="mx25r6435f")
    sr, _ = rig.ci(cinstr(0x05, 2, lio3=False))
    assert sr & 0xFF == 0xFF  # HOLD# asserted: the chip ignores the clocks
    sr, _ = rig.ci(cinstr(0x05, 2, lio3=True))
    assert sr & 0xFF == 0x00
    rig.set_qe()
    sr, _ = rig.ci(cinstr(0x05, 2, lio3=False))  # QE=1: IO3 is a data line, no HOLD#
    assert sr & 0xFF == 0x40


def test_long_frame_reads_sfdp_and_holds_cs():
    rig = Rig(part="mt25qu256a")
    rig.ci(cinstr(0x5A, 1, lfen=True))
    assert rig.flash.selected
    rig.ci(cinstr(0, 5, lfen=True), dat0=0)  # address 000000h + dummy
    got = b""
    for i in range(32):
        d0, d1 = rig.ci(cinstr(0, 9, lfen=True, lfstop=i == 31), dat0=0xFFFFFFFF, dat1=0xFFFFFFFF)
        got += d0.to_bytes(4, "little") + d1.to_bytes(4, "little")
    assert got == rig.flash.part.sfdp
    assert not rig.flash.selected


def test_enter_4byte_by_custom_instruction():
    rig = Rig(part="is25wp256")
    rig.ci(cinstr(0xB7))
    assert rig.flash.four_byte_mode


# --- erase / write / read ---------------------------------------------------------------------


def test_erase_opcodes_and_ready_before_chip_done():
    rig = Rig()
    rig.write(0x23000, b"\x00" * 8)
    rig.settle()
    rig.write(0x24000, b"\x00" * 8)
    rig.settle()
    rig.erase(0x23004, 0)
    assert rig.q.frames[-1][1:3] == (0x20, b"\x02\x30\x04")
    assert rig.flash.busy_remaining > 0  # READY once the command was sent
    rig.settle()
    assert rig.flash.peek(0x23000, 8) == b"\xff" * 8 and rig.flash.peek(0x24000, 1) == b"\x00"
    rig.erase(0x20000, 1)
    assert rig.q.frames[-1][1] == 0xD8
    rig.settle()
    assert rig.flash.peek(0x24000, 1) == b"\xff"
    rig.erase(0, 2)
    assert rig.q.frames[-1][1:3] == (0xC7, b"")
    assert rig.flash.busy_remaining == pytest.approx(rig.flash.part.timings.chip_erase_typ, rel=1e-3)
    assert [f[1] for f in list(rig.q.frames)[-3:]] == [0x05, 0x06, 0xC7]


def test_erase_len_reserved_and_unaligned_ptr():
    rig = Rig()
    rig.erase(0, 3)
    assert "reserved" in rig.q.errors[-1]
    rig.erase(0x1002, 0)
    assert "word aligned" in rig.q.errors[-1]
    assert rig.flash.busy_remaining == 0.0


def test_write_split_at_pages_with_wren_and_wip_wait():
    rig = Rig()
    data = bytes(range(256)) * 3
    rig.write(0x10080, data)
    ops = [f[1] for f in rig.q.frames][1:]
    pp = [f for f in rig.q.frames if f[1] == 0x02]
    assert [(f[2], f[3]) for f in pp] == [(b"\x01\x00\x80", 128), (b"\x01\x01\x00", 256),
                                         (b"\x01\x02\x00", 256), (b"\x01\x03\x00", 128)]
    assert ops.count(0x06) == 4
    for i, op in enumerate(ops):
        if op == 0x02:
            assert ops[i - 1] == 0x06 and ops[i - 2] == 0x05
    assert rig.flash.busy_remaining > 0  # READY after the last page was sent
    rig.settle()
    assert rig.read(0x10080, len(data)) == data


def test_ppsize_512_on_a_256_byte_page_chip_wraps():
    rig = Rig()
    rig.w(IFCONFIG0, 1 << 12)
    data = bytes(range(256)) + bytes(range(255, -1, -1))
    rig.write(0x4000, data)
    rig.settle()
    assert rig.flash.peek(0x4000, 256) == bytes(range(255, -1, -1))  # last 256 bytes kept
    assert rig.flash.peek(0x4100, 4) == b"\xff" * 4


def test_easydma_reads_each_page_when_it_is_sent():
    rig = Rig()
    rig.ram.write(BUF, b"\x11" * 512)
    rig.w(WRITE_DST, 0x8000)
    rig.w(WRITE_SRC, BUF)
    rig.w(WRITE_CNT, 512)
    rig.w(EVENTS_READY, 0)
    rig.w(TASKS_WRITESTART, 1)
    while not any(f[1] == 0x02 for f in rig.q.frames):
        rig.clock.advance_to(rig.clock.next_event_time())
    rig.ram.write(BUF, b"\x22" * 512)  # software reuses the buffer before READY
    rig.wait()
    rig.settle()
    assert rig.flash.peek(0x8000, 256) == b"\x11" * 256
    assert rig.flash.peek(0x8100, 256) == b"\x22" * 256


@pytest.mark.parametrize(
    "dst,src,cnt,why",
    [(0x1001, BUF, 16, "flash address"), (0x1000, BUF + 2, 16, "RAM address"),
     (0x1000, BUF, 15, "multiple of 4"), (0x1000, 0x00001000, 16, "outside EasyDMA RAM"),
     (0x1000, RAM + 0x80000 - 8, 16, "outside EasyDMA RAM")],
)
def test_easydma_rules_on_write(dst, src, cnt, why):
    rig = Rig()
    rig.ram.write(BUF, b"\x00" * 16)
    rig.w(WRITE_DST, dst)
    rig.w(WRITE_SRC, src)
    rig.w(WRITE_CNT, cnt)
    rig.task(TASKS_WRITESTART)  # READY comes, with nothing moved
    assert why in rig.q.errors[-1]
    assert rig.flash.busy_remaining == 0.0 and rig.flash.peek(0x1000, 16) == b"\xff" * 16


def test_easydma_rules_on_read():
    rig = Rig(chip="nrf52840", ram_size=0x80000)
    rig.ram.write(RAM + 0x40000, b"\x55" * 16)
    rig.w(READ_SRC, 0)
    rig.w(READ_DST, RAM + 0x40000)  # real RAM object, but beyond the nRF52840's 256 KiB
    rig.w(READ_CNT, 16)
    rig.task(TASKS_READSTART)
    assert "outside EasyDMA RAM" in rig.q.errors[-1]
    assert rig.ram.read(RAM + 0x40000, 16) == b"\x55" * 16
    assert rig.q.ram_ranges == ((0x20000000, 0x40000),)


@pytest.mark.parametrize("part", ["mx25r6435f", "is25wp256", "mt25qu256a"])
@pytest.mark.parametrize("readoc", [0, 1, 2, 3, 4])
def test_every_readoc_reads_correctly_with_qe(part, readoc):
    rig = Rig(part=part)
    data = bytes((i * 7) & 0xFF for i in range(1024))
    rig.write(0x3000, data)
    if rig.flash.part.qe_mask:
        rig.set_qe()
    rig.settle()
    rig.w(IFCONFIG0, readoc)
    assert rig.read(0x3000, 1024) == data


def test_quad_read_without_qe_is_garbage():
    rig = Rig(part="mx25r6435f")
    rig.write(0x3000, b"\x12\x34\x56\x78")
    rig.settle()
    rig.w(IFCONFIG0, 4)
    assert rig.read(0x3000, 4) != b"\x12\x34\x56\x78"


def test_pp4io_on_mx25r_needs_qe_then_works():
    rig = Rig(part="mx25r6435f")
    rig.w(IFCONFIG0, 3 << 3)
    rig.write(0x5000, b"\x0f" * 8)
    rig.settle()
    assert rig.flash.peek(0x5000, 8) == b"\xff" * 8
    rig.set_qe()
    rig.write(0x5000, b"\x0f" * 8)
    rig.settle()
    assert rig.flash.peek(0x5000, 8) == b"\x0f" * 8


# --- 24/32-bit addressing and the field failure ----------------------------------------------

IMAGE_OFFSET = 0x1E98000
IMAGE_LEN = 512_583


def _image() -> bytes:
    import random

    return random.Random(3).randbytes(IMAGE_LEN)


def _program_image(rig: Rig, image: bytes, chunk: int = 64 * 1024) -> None:
    padded = image + b"\xff" * (-len(image) % 4)  # CNT must be a multiple of 4
    for off in range(0, len(padded), chunk):
        rig.write(IMAGE_OFFSET + off, padded[off : off + chunk])
    rig.settle()


@pytest.mark.parametrize("part,enter", [("is25wp256", cinstr(0xB7)),
                                        ("mt25qu256a", cinstr(0xB7, wren=True))])
def test_field_failure_24bit_lands_low_then_4byte_mode_fixes_it(part, enter):
    image = _image()
    rig = Rig(part=part)
    _program_image(rig, image)
    assert rig.flash.peek(0xE98000, IMAGE_LEN) == image  # bits 31..24 dropped
    assert rig.flash.peek(IMAGE_OFFSET, 16) == b"\xff" * 16

    rig2 = Rig(part=part)
    rig2.ci(enter)
    assert rig2.flash.four_byte_mode
    rig2.w(IFCONFIG0, 1 << 6)  # ADDRMODE=32BIT
    _program_image(rig2, image)
    assert rig2.flash.peek(IMAGE_OFFSET, IMAGE_LEN) == image
    assert rig2.flash.peek(0xE98000, 16) == b"\xff" * 16
    assert rig2.read(IMAGE_OFFSET, 4096) == image[:4096]


def test_32bit_mode_with_chip_in_3byte_mode_hits_the_wrong_address():
    rig = Rig(part="is25wp256")
    rig.w(IFCONFIG0, 1 << 6)
    rig.write(0x0012_3400, b"\xa5" * 4)
    rig.settle()
    # chip took 00 12 34 as the address and the 4th address byte as the first data byte
    assert rig.flash.peek(0x1234, 5) == b"\x00\xa5\xa5\xa5\xa5"
    rig.erase(0x1000, 0)  # 4 address bytes to a 3-byte chip: frame too long, rejected
    assert rig.flash.busy_remaining == 0.0


# --- XIP, reset, clock ------------------------------------------------------------------------


def test_xip_read_only_window_with_offset():
    rig = Rig()
    rig.write(0x2000, bytes(range(16)))
    rig.settle()
    rig.w(XIPOFFSET, 0x2000)
    assert rig.q.xip_read(4, 4) == int.from_bytes(bytes([4, 5, 6, 7]), "little")
    with pytest.raises(BusFault):
        rig.q.xip_write(0, 4, 0)
    rig.w(XIPEN, 0)
    with pytest.raises(BusFault):
        rig.q.xip_read(0, 4)


def test_mcu_reset_keeps_the_chip_state():
    rig = Rig(part="is25wp256")
    rig.ci(cinstr(0xB7))
    rig.w(IFCONFIG0, 0x44)
    rig.write(0x100, b"\x00" * 4)
    rig.settle()
    rig.q.reset()
    assert rig.r(IFCONFIG0) == 0 and rig.r(ENABLE) == 0
    assert rig.flash.four_byte_mode
    assert rig.flash.peek(0x100, 4) == b"\x00" * 4


def test_flash_driven_by_clock_once():
    clock = Clock()
    flash = NorFlash.from_part("mx25r6435f")
    ram = Ram()
    NrfQspi("nrf52840", flash, ram, clock=clock)
    NrfQspi("nrf52840", flash, ram, clock=clock)  # the board re-creating its peripheral
    flash.transfer(b"\x06")
    flash.transfer(b"\x20\x00\x00\x00")
    t = flash.busy_remaining
    clock.advance(t / 2)
    assert flash.busy_remaining == pytest.approx(t / 2)
    with pytest.raises(ValueError):
        NrfQspi("nrf52840", flash, ram, clock=Clock())


def test_polling_software_reaches_completion_in_bounded_polls():
    rig = Rig(chip="nrf52840", part="mx25r6435f")
    rig.w(ERASE_PTR, 0)
    rig.w(ERASE_LEN, 1)
    rig.w(EVENTS_READY, 0)
    rig.w(TASKS_ERASESTART, 1)
    polls = 0
    while not rig.r(EVENTS_READY):  # the command goes out quickly (READY != chip done)
        polls += 1
    assert polls < 1000
    rdsr = 0
    while True:  # a loader's WIP poll: RDSR custom instruction + 1 ms delay
        rdsr += 1
        assert rdsr < 1000
        rig.w(EVENTS_READY, 0)
        rig.w(CINSTRCONF, cinstr(0x05, 2))
        polls = 0
        while not rig.r(EVENTS_READY):  # each read costs bus time, so this ends
            polls += 1
            assert polls < 200
        if not rig.r(CINSTRDAT0) & 1:
            break
        rig.clock.advance(1e-3)
    assert rig.clock.now >= rig.flash.part.timings.erase_typ[65536]


def test_reserved_readoc_writeoc_reported():
    rig = Rig()
    rig.w(IFCONFIG0, 7 | 7 << 3)
    rig.write(0x100, b"\x00" * 4)
    assert "WRITEOC=7" in rig.q.errors[-1]
    rig.read(0x100, 4)
    assert "READOC=7" in rig.q.errors[-1]


def test_disable_needs_new_activate():
    rig = Rig()
    rig.w(ENABLE, 0)
    rig.w(ENABLE, 1)
    rig.w(TASKS_READSTART, 1)
    assert "before ACTIVATE" in rig.q.errors[-1]


def test_deep_power_mode_via_ifconfig1():
    rig = Rig(part="is25wp256")
    rig.w(IFCONFIG0, 1 << 7)  # DPMENABLE
    rig.w(IFCONFIG1, rig.r(IFCONFIG1) | 1 << 24)
    assert rig.flash.deep_power_down and rig.r(STATUS) & 4
    rig.w(IFCONFIG1, rig.r(IFCONFIG1) & ~(1 << 24))
    rig.clock.advance(rig.flash.part.timings.dpd_exit)
    assert not rig.flash.deep_power_down and not rig.r(STATUS) & 4


def test_private_clock_when_none_given():
    flash = NorFlash.from_part("mx25r6435f")
    q = NrfQspi("nrf52840", flash, Ram())
    assert flash.driven_by is q.clock
    q.write_reg(ENABLE, 1)
    q.write_reg(TASKS_ACTIVATE, 1)
    q.clock.run_until_idle()
    assert q.read_reg(EVENTS_READY) == 1
    with pytest.raises(ValueError, match="nrf9160"):
        NrfQspi("nrf9160", flash, Ram(), clock=q.clock)
