"""The nRF52840 / nRF5340 QSPI peripheral, driving a modelled NOR chip through EasyDMA.

Register map, reset values and masks from QSPI_FACTS.md §1 (SVD / bitfield headers). The
peripheral is a state machine on the board's clock: a task starts a sequence of SPI frames
(each costing its SCK clocks at the configured SCKFREQ plus the CSN-high time), run as clock
events; EVENTS_READY is set when the sequence ends. Flash busy periods are waited out by
polling RDSR, but the poll that finds WIP=0 is scheduled at the chip's completion time, so a
60 s chip erase costs a handful of events, not millions.

Modelling choices that no source confirms (README lists them):
- 24-bit ADDRMODE transmits address bits 23..0 of READ.SRC / WRITE.DST / ERASE.PTR / XIP
  addresses (the higher bits are silently dropped); 32-bit mode sends 4 bytes, same opcodes.
- Dummy clocks per READOC = what the attached part's SFDP states for that opcode (FASTREAD 8).
- ADDRCONF's instruction is sent at every ACTIVATE when MODE != NoInstr, before the RDSR poll.
- WRITESTART: per PPSIZE page, wait WIP=0 (RDSR poll), WREN, PP; READY after the last page was
  sent. ERASESTART: wait WIP=0, WREN, erase command; READY when sent. READSTART: wait WIP=0,
  one read frame of CNT bytes. EasyDMA reads each page from RAM when that page is sent.
- EasyDMA rule violations (unaligned, CNT not a multiple of 4, outside RAM): nothing is sent
  or stored, READY is raised, and the violation is appended to `errors` and logged.
- ACTIVATE while ENABLE=0 completes with READY after the activation time but sends nothing
  and leaves the interface not activated: ENABLE "acquires the pins selected in PSELn", so
  without it no pin is driven, yet EVENTS_READY is generated "as a response to any QSPI task"
  (nRF52840 PS) / "all QSPI tasks except DEACTIVATE" (nRF5340 PS). nrfx relies on it: its
  errata 215 / 43 workaround in nrfx_qspi_init -> qspi_configure triggers ACTIVATE with the
  pins disconnected and spins on READY *before* nrf_qspi_enable (nrfx 3.x drivers/src/
  nrfx_qspi.c; Zephyr's nrf_qspi_nor runs it on both DKs).
- Tasks other than ACTIVATE need ENABLE=1 and an activated interface, else nothing happens
  (no READY); the violation is recorded in `errors`.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Generator
from dataclasses import dataclass

from qspi_gdb.log import get_logger
from qspi_gdb.sim.bus import BusFault, Memory
from qspi_gdb.sim.clock import Clock, Event
from qspi_gdb.sim.nor import NorFlash

log = get_logger("qspi_gdb.sim.qspi")

# Register offsets
TASKS_ACTIVATE = 0x000
TASKS_READSTART = 0x004
TASKS_WRITESTART = 0x008
TASKS_ERASESTART = 0x00C
TASKS_DEACTIVATE = 0x010
ERRATA_122 = 0x054  # nRF52840 erratum 122 workaround register (undocumented)
SUBSCRIBE_BASE = 0x080  # nRF5340: 0x080..0x090
EVENTS_READY = 0x100
PUBLISH_READY = 0x180  # nRF5340
INTEN = 0x300
INTENSET = 0x304
INTENCLR = 0x308
ENABLE = 0x500
READ_SRC = 0x504
READ_DST = 0x508
READ_CNT = 0x50C
WRITE_DST = 0x510
WRITE_SRC = 0x514
WRITE_CNT = 0x518
ERASE_PTR = 0x51C
ERASE_LEN = 0x520
PSEL_SCK = 0x524
PSEL_CSN = 0x528
PSEL_IO0 = 0x530
PSEL_IO1 = 0x534
PSEL_IO2 = 0x538
PSEL_IO3 = 0x53C
XIPOFFSET = 0x540
IFCONFIG0 = 0x544
XIPEN = 0x54C  # nRF5340
XIP_ENC_BASE = 0x560  # nRF5340: KEY0..3, NONCE0..2, ENABLE (0x560..0x57C)
DMA_ENC_BASE = 0x580  # nRF5340: 0x580..0x59C
IFCONFIG1 = 0x600
STATUS = 0x604
DPMDUR = 0x614
ADDRCONF = 0x624
CINSTRCONF = 0x634
CINSTRDAT0 = 0x638
CINSTRDAT1 = 0x63C
IFTIMING = 0x640

READOC = {  # IFCONFIG0.READOC -> (opcode, address lines, data lines)
    0: (0x0B, 1, 1), 1: (0x3B, 1, 2), 2: (0xBB, 2, 2), 3: (0x6B, 1, 4), 4: (0xEB, 4, 4),
}
WRITEOC = {0: (0x02, 1, 1), 1: (0xA2, 1, 2), 2: (0x32, 1, 4), 3: (0x38, 4, 4)}
ERASE_OPCODE = {0: 0x20, 1: 0xD8, 2: 0xC7}

STATUS_DPM = 1 << 2
STATUS_READY = 1 << 3

_STALL = object()  # a task step that never finishes (flash never answers)


@dataclass(frozen=True)
class ChipVariant:
    name: str
    cnt_mask: int
    ram_ranges: tuple[tuple[int, int], ...]  # (start, size) EasyDMA-capable RAM
    iftiming_reset: int
    sckdelay_unit: float  # seconds per IFCONFIG1.SCKDELAY step
    ifconfig0_mask: int
    has_5340_regs: bool
    ready_on_deactivate: bool


VARIANTS = {
    "nrf52840": ChipVariant(
        "nrf52840", 0x3FFFF, ((0x20000000, 0x40000),), 0x200, 1 / 16e6, 0x10FF, False, True
    ),
    "nrf5340": ChipVariant(
        "nrf5340", 0x1FFFFF, ((0x20000000, 0x80000),), 0x600, 1 / 32e6, 0x310FF, True, False
    ),
}

_RESET = {
    IFCONFIG1: 0x00040480, DPMDUR: 0xFFFFFFFF, ADDRCONF: 0x000000B7, CINSTRCONF: 0x00002000,
    PSEL_SCK: 0xFFFFFFFF, PSEL_CSN: 0xFFFFFFFF, PSEL_IO0: 0xFFFFFFFF, PSEL_IO1: 0xFFFFFFFF,
    PSEL_IO2: 0xFFFFFFFF, PSEL_IO3: 0xFFFFFFFF,
}

_MASKS = {
    INTEN: 1, ENABLE: 1, ERASE_LEN: 3, XIPEN: 1, ADDRCONF: 0x0FFFFFFF, CINSTRCONF: 0x3FFFF,
    IFTIMING: 0x700, PSEL_SCK: 0x8000003F, PSEL_CSN: 0x8000003F, PSEL_IO0: 0x8000003F,
    PSEL_IO1: 0x8000003F, PSEL_IO2: 0x8000003F, PSEL_IO3: 0x8000003F,
}

# Plain read/write registers (beyond those with side effects, handled in write_reg).
_PLAIN = {
    READ_SRC, READ_DST, READ_CNT, WRITE_DST, WRITE_SRC, WRITE_CNT, ERASE_PTR, ERASE_LEN,
    PSEL_SCK, PSEL_CSN, PSEL_IO0, PSEL_IO1, PSEL_IO2, PSEL_IO3, XIPOFFSET, IFCONFIG0,
    DPMDUR, ADDRCONF, CINSTRDAT0, CINSTRDAT1, IFTIMING, ENABLE, INTEN,
}

BUS_ACCESS_TIME = 4 / 16e6  # a few 16 MHz APB cycles per register access
ACTIVATION_TIME = 2e-6  # UNVERIFIED: clock request before the first frame


class NrfQspi:
    def __init__(
        self,
        chip: str,
        flash: NorFlash,
        memory: Memory,
        *,
        clock: Clock | None = None,
        on_ready_irq: Callable[[], None] | None = None,
        bus_access_time: float = BUS_ACCESS_TIME,
    ) -> None:
        if chip not in VARIANTS:
            raise ValueError(f"unknown chip {chip!r}; known: {', '.join(VARIANTS)}")
        self.variant = VARIANTS[chip]
        self.chip = chip
        self.flash = flash
        self.memory = memory
        self.clock = clock if clock is not None else Clock()
        if flash.driven_by is not self.clock:  # subscribe exactly once per flash
            if flash.driven_by is not None:
                raise ValueError("this NorFlash is already driven by another clock")
            self.clock.on_advance(flash.advance)
            flash.driven_by = self.clock
        self.on_ready_irq = on_ready_irq
        self.bus_access_time = bus_access_time
        self.pclk192m_hz = 192e6  # nRF5340 PCLK192M (HFCLK192MCTRL=Div1); the board may set it
        self.errors: list[str] = []  # rule violations software committed (observable by tests)
        self.frames: collections.deque = collections.deque(maxlen=4096)  # (time, op, detail)
        self.stats = {"frames": 0, "sck_clocks": 0, "polls": 0, "dma_bytes": 0}
        self._regs: dict[int, int] = {}
        self._task: Generator | None = None
        self._task_event: Event | None = None
        self._warned: set[str] = set()
        self.reset()

    # --- reset / registers -----------------------------------------------------------------

    def reset(self) -> None:
        """MCU reset: registers to reset values, running work dropped; the flash is untouched
        (CS# rises if a long frame held it low)."""
        self._drop_running_work()
        self._regs = dict(_RESET)
        self._regs[IFTIMING] = self.variant.iftiming_reset
        if self.variant.has_5340_regs:
            self._regs[XIPEN] = 1
        self._events_ready = 0
        self._activated = False
        self._long_frame = False
        self._lf_hold = False
        self._sreg = 0
        self._dpm = False

    def _drop_running_work(self) -> None:
        """Cancel the running task; CS# rises if its frame held it low."""
        if self._task_event is not None:
            self._task_event.cancel()
        self._task = self._task_event = None
        if self.flash.selected:
            self.flash.end()

    def _reg(self, off: int) -> int:
        return self._regs.get(off, 0)

    def _bus_cycle(self) -> None:
        try:
            self.clock.advance(self.bus_access_time)
        except RuntimeError:
            pass  # called from inside a clock event (e.g. an IRQ handler model): no nested time

    def read_reg(self, offset: int) -> int:
        self._bus_cycle()
        if offset == EVENTS_READY:
            return self._events_ready
        if offset in (INTENSET, INTENCLR):
            return self._reg(INTEN)
        if offset == STATUS:
            return self._status()
        if offset == CINSTRCONF:
            return self._reg(CINSTRCONF) & ~(1 << 17)
        if self.variant.has_5340_regs and XIP_ENC_BASE <= offset < DMA_ENC_BASE + 0x20:
            # KEY/NONCE are write-only; ENABLE reads back
            return self._reg(offset) if offset in (XIP_ENC_BASE + 0x1C, DMA_ENC_BASE + 0x1C) else 0
        return self._reg(offset)

    def write_reg(self, offset: int, value: int) -> None:
        self._bus_cycle()
        value &= 0xFFFFFFFF
        v5340 = self.variant.has_5340_regs
        if offset in (TASKS_ACTIVATE, TASKS_READSTART, TASKS_WRITESTART, TASKS_ERASESTART,
                      TASKS_DEACTIVATE):
            if value & 1:
                self._trigger(offset)
        elif offset == EVENTS_READY:
            self._set_ready(value & 1)
        elif offset == INTEN:
            self._regs[INTEN] = value & 1
            self._irq_if_pending()
        elif offset == INTENSET:
            self._regs[INTEN] = self._reg(INTEN) | (value & 1)
            self._irq_if_pending()
        elif offset == INTENCLR:
            self._regs[INTEN] = self._reg(INTEN) & ~(value & 1)
        elif offset in (READ_CNT, WRITE_CNT):
            self._regs[offset] = value & self.variant.cnt_mask
        elif offset == IFCONFIG0:
            self._regs[offset] = value & self.variant.ifconfig0_mask
        elif offset == IFCONFIG1:
            self._write_ifconfig1(value)
        elif offset == CINSTRCONF:
            self._regs[CINSTRCONF] = value & _MASKS[CINSTRCONF]
            self._start(self._cinstr(value), "CINSTR")
        elif offset == ERRATA_122 and self.chip == "nrf52840":
            self._regs[offset] = value  # accepted and ignored (erratum 122 workaround)
        elif offset == XIPEN and v5340:
            self._regs[offset] = value & 1
        elif v5340 and (SUBSCRIBE_BASE <= offset <= SUBSCRIBE_BASE + 0x10 or offset == PUBLISH_READY):
            self._regs[offset] = value & 0x800000FF
            if value >> 31:
                self._unsupported("DPPI subscribe/publish")
        elif v5340 and XIP_ENC_BASE <= offset < DMA_ENC_BASE + 0x20:
            self._regs[offset] = value
            self._unsupported("XIP/EasyDMA encryption")
        elif offset == ENABLE:
            self._regs[ENABLE] = value & 1
            if not value & 1:
                self._activated = False  # pins released: a new ACTIVATE is needed
        elif offset in _PLAIN:
            self._regs[offset] = value & _MASKS.get(offset, 0xFFFFFFFF)
        elif offset == STATUS:
            pass  # read-only
        else:
            log.debug("qspi.reserved_write", offset=hex(offset), value=hex(value))

    def _status(self) -> int:
        ready = STATUS_READY if self._task is None else 0
        return (self._sreg << 24) | ready | (STATUS_DPM if self._dpm else 0)

    def _unsupported(self, what: str) -> None:
        if what not in self._warned:
            self._warned.add(what)
            log.warning("qspi.unsupported", feature=what, chip=self.chip)

    def _error(self, why: str) -> None:
        self.errors.append(why)
        log.warning("qspi.error", why=why, chip=self.chip)

    # --- events / IRQ -----------------------------------------------------------------------

    def _set_ready(self, value: int) -> None:
        rising = value and not self._events_ready
        self._events_ready = value
        if rising:
            self._irq_if_pending()

    def _irq_if_pending(self) -> None:
        if self._events_ready and self._reg(INTEN) & 1 and self.on_ready_irq is not None:
            self.on_ready_irq()

    @property
    def events_ready(self) -> int:
        return self._events_ready

    @property
    def irq_level(self) -> bool:
        """The QSPI interrupt line: EVENTS_READY and INTEN.READY."""
        return bool(self._events_ready and self._reg(INTEN) & 1)

    @property
    def busy(self) -> bool:
        return self._task is not None

    # --- timing -------------------------------------------------------------------------------

    @property
    def sck_hz(self) -> float:
        freq = self._reg(IFCONFIG1) >> 28
        if self.chip == "nrf52840":
            return 32e6 / (freq + 1)
        return self.pclk192m_hz / (2 * (freq + 1))

    def _frame_time(self, clocks: int) -> float:
        csn_high = (self._reg(IFCONFIG1) & 0xFF) * self.variant.sckdelay_unit
        return clocks / self.sck_hz + csn_high

    # --- task runner --------------------------------------------------------------------------

    def _trigger(self, task: int) -> None:
        if task == TASKS_DEACTIVATE:
            self._deactivate()
            return
        name = {TASKS_ACTIVATE: "ACTIVATE", TASKS_READSTART: "READSTART",
                TASKS_WRITESTART: "WRITESTART", TASKS_ERASESTART: "ERASESTART"}[task]
        body = {TASKS_ACTIVATE: self._activate, TASKS_READSTART: self._read,
                TASKS_WRITESTART: self._write, TASKS_ERASESTART: self._erase}[task]()
        self._start(body, name)

    def _start(self, body: Generator, name: str) -> None:
        if not self._reg(ENABLE) & 1:
            if name == "ACTIVATE" and self._task is None:
                self._task = self._activate_disabled()  # READY, no pins, no traffic
                self._step()
                return
            self._error(f"{name} while ENABLE=0: ignored")
            return
        if self._task is not None:
            self._error(f"{name} while STATUS.READY=0 (busy): ignored")
            return
        if name != "ACTIVATE" and not self._activated:
            self._error(f"{name} before ACTIVATE: interface not active, ignored")
            return
        if self._long_frame and name != "CINSTR":
            self._error(f"{name} while a long-frame custom instruction holds CS# low: ignored")
            return
        self._task = body
        self._step()

    def _step(self) -> None:
        self._task_event = None
        try:
            delay = next(self._task)
        except StopIteration:
            self._task = None
            self._set_ready(1)
            return
        if delay is _STALL:
            return  # the flash never answers: READY never comes, software must time out
        self._task_event = self.clock.call_after(delay, self._step)

    # --- frames ---------------------------------------------------------------------------

    def _pins_connected(self) -> bool:
        return all(not self._reg(p) >> 31 for p in (PSEL_SCK, PSEL_CSN, PSEL_IO0, PSEL_IO1))

    def _addr_bytes(self, addr: int) -> bytes:
        if self._reg(IFCONFIG0) >> 6 & 1:
            return (addr & 0xFFFFFFFF).to_bytes(4, "big")
        return (addr & 0xFFFFFF).to_bytes(3, "big")  # 24-bit mode: bits 31..24 are dropped

    def _frame(self, opcode: int, *, address: bytes = b"", addr_lines: int = 1, dummy: int = 0,
               data: bytes = b"", data_lines: int = 1, rx_len: int = 0) -> Generator:
        """Yield the frame's duration, then run it on the chip; the generator returns rx."""
        clocks = 8 + len(address) * 8 // addr_lines + dummy + (len(data) + rx_len) * 8 // data_lines
        yield self._frame_time(clocks)
        self.stats["frames"] += 1
        self.stats["sck_clocks"] += clocks
        self.frames.append((self.clock.now, opcode, address, len(data), rx_len))
        return self.flash.frame(opcode, address=address, addr_lines=addr_lines, dummy_cycles=dummy,
                                data=data, data_lines=data_lines, rx_len=rx_len)

    def _wait_wip(self) -> Generator:
        """Poll RDSR until WIP=0 (STATUS.SREG follows); a poll that would find the flash still
        busy is skipped by scheduling the next one at the flash's completion time."""
        while True:
            self.stats["polls"] += 1
            sr = (yield from self._frame(0x05, rx_len=1))[0]
            self._sreg = sr
            if not sr & 1:
                return
            wait = self.flash.time_to_ready
            if wait <= 0:
                yield _STALL  # e.g. flash in deep power-down: RDSR reads 0xFF forever
            yield wait

    # --- tasks ---------------------------------------------------------------------------------

    def _activate(self) -> Generator:
        yield ACTIVATION_TIME
        self._activated = True
        if not self._pins_connected():
            return  # errata 215/43 workaround: READY without flash traffic
        conf = self._reg(ADDRCONF)
        mode = conf >> 24 & 3
        if mode:
            if conf >> 26 & 1:
                yield from self._wait_wip()
            if conf >> 27 & 1:
                yield from self._frame(0x06)
            payload = bytes([conf >> 8 & 0xFF, conf >> 16 & 0xFF])[: mode - 1]
            yield from self._frame(conf & 0xFF, data=payload)
        yield from self._wait_wip()

    def _activate_disabled(self) -> Generator:
        yield ACTIVATION_TIME

    def _deactivate(self) -> None:
        self._drop_running_work()
        self._long_frame = False
        self._activated = False
        if self.variant.ready_on_deactivate:
            self._set_ready(1)  # nRF52840 text: READY "as a response to any QSPI task"

    def _dma_ok(self, what: str, ram: int, cnt: int, flash_addr: int) -> bool:
        problems = []
        if ram % 4:
            problems.append(f"RAM address 0x{ram:08X} not word aligned")
        if flash_addr % 4:
            problems.append(f"flash address 0x{flash_addr:08X} not word aligned")
        if cnt % 4:
            problems.append(f"CNT {cnt} not a multiple of 4")
        if not self.in_ram(ram, cnt):
            problems.append(f"RAM range 0x{ram:08X}+{cnt} outside EasyDMA RAM")
        for p in problems:
            self._error(f"{what}: {p}; nothing transferred")
        return not problems

    def in_ram(self, addr: int, n: int) -> bool:
        return any(s <= addr and addr + n <= s + size for s, size in self.variant.ram_ranges)

    @property
    def ram_ranges(self) -> tuple[tuple[int, int], ...]:
        return self.variant.ram_ranges

    def _readoc(self) -> tuple[int, int, int]:
        code = self._reg(IFCONFIG0) & 7
        if code not in READOC:
            self._error(f"IFCONFIG0.READOC={code} is reserved; using FASTREAD")
        return READOC.get(code, READOC[0])

    def _read_dummy(self, opcode: int) -> int:
        cmd = self.flash.part.commands.get(opcode)
        return cmd.dummy if cmd is not None else 8

    def _read(self) -> Generator:
        src, dst, cnt = self._reg(READ_SRC), self._reg(READ_DST), self._reg(READ_CNT)
        if not self._dma_ok("READSTART", dst, cnt, src):
            yield self._frame_time(0)
            return
        yield from self._wait_wip()
        if cnt == 0:
            return
        op, al, dl = self._readoc()
        data = yield from self._frame(op, address=self._addr_bytes(src), addr_lines=al,
                                      dummy=self._read_dummy(op), data_lines=dl, rx_len=cnt)
        self._dma_write(dst, data)

    def _write(self) -> Generator:
        dst, src, cnt = self._reg(WRITE_DST), self._reg(WRITE_SRC), self._reg(WRITE_CNT)
        if not self._dma_ok("WRITESTART", src, cnt, dst):
            yield self._frame_time(0)
            return
        code = self._reg(IFCONFIG0) >> 3 & 7
        if code not in WRITEOC:
            self._error(f"IFCONFIG0.WRITEOC={code} is reserved; using PP")
        op, al, dl = WRITEOC.get(code, WRITEOC[0])
        page = 512 if self._reg(IFCONFIG0) >> 12 & 1 else 256
        done = 0
        while done < cnt:
            addr = dst + done
            n = min(cnt - done, page - addr % page)
            yield from self._wait_wip()
            yield from self._frame(0x06)
            data = self._dma_read(src + done, n)  # fetched when this page goes out
            if data is None:
                return
            yield from self._frame(op, address=self._addr_bytes(addr), addr_lines=al,
                                   data=data, data_lines=dl)
            done += n

    def _erase(self) -> Generator:
        ptr, length = self._reg(ERASE_PTR), self._reg(ERASE_LEN)
        if ptr % 4:
            self._error(f"ERASESTART: ERASE.PTR 0x{ptr:08X} not word aligned; nothing erased")
            yield self._frame_time(0)
            return
        if length not in ERASE_OPCODE:
            self._error(f"ERASESTART: ERASE.LEN={length} is reserved; nothing erased")
            yield self._frame_time(0)
            return
        yield from self._wait_wip()
        yield from self._frame(0x06)
        op = ERASE_OPCODE[length]
        yield from self._frame(op, address=b"" if op == 0xC7 else self._addr_bytes(ptr))

    def _dma_read(self, addr: int, n: int) -> bytes | None:
        try:
            data = self.memory.read(addr, n)
        except BusFault as e:
            self._error(f"EasyDMA read fault: {e}")
            return None
        self.stats["dma_bytes"] += n
        return data

    def _dma_write(self, addr: int, data: bytes) -> None:
        try:
            self.memory.write(addr, data)
            self.stats["dma_bytes"] += len(data)
        except BusFault as e:
            self._error(f"EasyDMA write fault: {e}")

    # --- custom instructions -----------------------------------------------------------------

    def _cinstr_tx(self, n: int) -> bytes:
        raw = self._reg(CINSTRDAT0).to_bytes(4, "little") + self._reg(CINSTRDAT1).to_bytes(4, "little")
        return raw[:n]

    def _cinstr_rx(self, data: bytes) -> None:
        raw = bytearray(self._reg(CINSTRDAT0).to_bytes(4, "little")
                        + self._reg(CINSTRDAT1).to_bytes(4, "little"))
        raw[: len(data)] = data
        self._regs[CINSTRDAT0] = int.from_bytes(raw[:4], "little")
        self._regs[CINSTRDAT1] = int.from_bytes(raw[4:], "little")

    def _hold_asserted(self, conf: int) -> bool:
        """IO3 is HOLD# on parts with a QE bit while QE=0: LIO3=0 pauses the chip."""
        return (self.flash.part.qe_mask is not None and not self.flash.quad_enabled
                and not conf >> 13 & 1)

    def _cinstr(self, conf: int) -> Generator:
        opcode, length = conf & 0xFF, conf >> 8 & 0xF
        lfen, lfstop = conf >> 16 & 1, conf >> 17 & 1
        if not 1 <= length <= 9:
            self._error(f"CINSTRCONF.LENGTH={length} outside 1..9; clamped")
            length = max(1, min(length, 9))
        continuing = self._long_frame
        if continuing and not lfen:
            self._error("CINSTRCONF without LFEN while a long frame is active: ignored")
            yield self._frame_time(0)
            return
        tx = self._cinstr_tx(length - 1)
        if not continuing:
            if conf >> 14 & 1:
                yield from self._wait_wip()
            if conf >> 15 & 1:
                yield from self._frame(0x06)
            self._lf_hold = self._hold_asserted(conf)
        mosi = tx if continuing else bytes([opcode]) + tx
        clocks = len(mosi) * 8
        yield clocks / self.sck_hz
        self.stats["frames"] += 0 if continuing else 1
        self.stats["sck_clocks"] += clocks
        if not continuing:
            self.frames.append((self.clock.now, opcode, b"", len(tx), 0))
            if not self._lf_hold:
                self.flash.begin()
        miso = b"\xff" * len(mosi) if self._lf_hold else self.flash.shift(mosi)
        rx = miso if continuing else miso[1:]
        self._cinstr_rx(rx)
        if opcode == 0x05 and not continuing and rx:
            self._sreg = rx[0]
        if lfen and not lfstop:
            self._long_frame = True
            return
        self._long_frame = False
        if not self._lf_hold:
            self.flash.end()
        yield (self._reg(IFCONFIG1) & 0xFF) * self.variant.sckdelay_unit

    # --- DPM ----------------------------------------------------------------------------------

    def _write_ifconfig1(self, value: int) -> None:
        old = self._reg(IFCONFIG1)
        self._regs[IFCONFIG1] = value
        if not (self._reg(IFCONFIG0) >> 7 & 1) or not self._activated:
            return
        enter, leave = value >> 24 & 1 and not old >> 24 & 1, old >> 24 & 1 and not value >> 24 & 1
        if (enter or leave) and (self._task is not None or self.flash.selected):
            self._error("IFCONFIG1.DPMEN changed while busy: ignored")
        elif enter or leave:
            self.stats["frames"] += 1
            self.frames.append((self.clock.now, 0xB9 if enter else 0xAB, b"", 0, 0))
            self.flash.frame(0xB9 if enter else 0xAB)
            self._dpm = bool(enter)

    # --- XIP ----------------------------------------------------------------------------------

    def xip_read(self, offset: int, size: int) -> int:
        """A CPU/debugger read of the XIP window (offset from the window base)."""
        if not self._reg(ENABLE) & 1 or not self._activated:
            raise BusFault(offset, False, "XIP while QSPI is not enabled and activated")
        if self.variant.has_5340_regs and not self._reg(XIPEN) & 1:
            raise BusFault(offset, False, "XIP disabled (XIPEN=0)")
        if self.flash.selected:
            raise BusFault(offset, False, "XIP while a long-frame custom instruction holds CS# low")
        op, al, dl = self._readoc()
        address = self._addr_bytes(self._reg(XIPOFFSET) + offset)
        clocks = 8 + len(address) * 8 // al + self._read_dummy(op) + size * 8 // dl
        try:
            self.clock.advance(self._frame_time(clocks))
        except RuntimeError:
            pass
        data = self.flash.frame(op, address=address, addr_lines=al,
                                dummy_cycles=self._read_dummy(op), data_lines=dl, rx_len=size)
        return int.from_bytes(data, "little")

    def xip_write(self, offset: int, size: int, value: int) -> None:
        raise BusFault(offset, True, "the XIP window is read-only")
