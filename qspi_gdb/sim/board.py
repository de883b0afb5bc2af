"""Virtual boards: the chip models, the memory map of each chip, and the Board that wires them up.

A Board holds one modelled clock, the application core (unicorn), its RAM and internal flash, the
peripherals, the external NOR chip and the System Control Space. `board.bus` is the AHB view of
the application core: the CPU's MMIO and the debugger's MEM-AP 0 both go through it, so they see
the same things.

Memory map (application core; IRQ numbers from the MDK's IRQn_Type):

| region                 | nRF52840                    | nRF5340 (app)                         |
|------------------------|-----------------------------|---------------------------------------|
| internal flash         | 0x00000000, 1 MiB           | 0x00000000, 1 MiB                     |
| code RAM alias         | 0x00800000, 256 KiB         | -                                     |
| FICR / UICR            | 0x10000000 / 0x10001000     | 0x00FF0000 / 0x00FF8000               |
| XIP (read-only)        | 0x12000000, 128 MiB         | 0x10000000, 128 MiB                   |
| RAM                    | 0x20000000, 256 KiB         | 0x20000000, 512 KiB                   |
| CLOCK/POWER (/RESET)   | 0x40000000 (IRQ 0)          | 0x50005000 (IRQ 5) (+)                |
| UARTE0                 | 0x40002000 (IRQ 2)          | 0x50008000 (IRQ 8) (+)                |
| GPIOTE                 | 0x40006000 (IRQ 6)          | 0x5000D000 (IRQ 13) (+)               |
| TIMER0/1/2             | 0x40008000/9000/A000 (8-10) | 0x5000F000/0x50010000/0x50011000 (+)  |
| RTC0/1(/2)             | 0x4000B000/0x40011000/0x40024000 (11, 17, 36) | 0x50014000/0x50015000 (20, 21) (+) |
| TEMP / PPI             | 0x4000C000 (IRQ 12) / 0x4001F000 | -                                |
| DPPIC, CACHE, IPC      | -                           | 0x50017000, 0x50001000, 0x5002A000 (+)|
| OSCILLATORS/REGULATORS | -                           | 0x50004000 (+)                        |
| CTRLAP                 | -                           | 0x50006000                            |
| NVMC                   | 0x4001E000                  | 0x50039000 (+)                        |
| QSPI                   | 0x40029000 (IRQ 41)         | 0x5002B000 + 0x4002B000 (IRQ 43)      |
| GPIO P0 / P1           | 0x50000000 / 0x50000300     | 0x50842500 / 0x50842800 (+)           |
| PPB (SCS, NVIC)        | 0xE0000000..0xE00FFFFF      | same                                  |

(+) the nRF5340's non-secure alias at 0x4xxxxxxx maps to the same model: unicorn has no
SAU/IDAU, and the core always runs Secure. The nRF5340 also has the undocumented words its
errata workarounds touch (`regfile.NRF5340_ERRATA_WORDS`).

The internal flash is blank (0xFF) at power-on and is written through the NVMC, by the core or a
debugger (`qspi_gdb.sim.nvmc`): so after a reset without vector catch the core locks up as a
blank nRF does, until a debugger halts it and loads code into RAM, or programs an application
into the flash. UARTE0's transmitter writes to the board's console (`Board(console=...)`, the
`--console FILE` of `qspi-gdb sim`). Events are routed between peripherals by PPI (nRF52840)
or DPPI (nRF5340) (`qspi_gdb.sim.ppi`).
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from os import PathLike
from typing import BinaryIO

from elftools.elf.elffile import ELFFile

from ..errors import TargetError
from ..inputs import boards
from ..log import get_logger
from .bus import BusFault
from .clock import Clock
from .core import XPSR_T, CortexM
from .ctrlap import ChipProtection
from .faults import Fault, FaultPlan
from .netcore import NetworkCore, PowerResetBlock
from .nor import NorFlash
from .nvic import Nvic
from .nvmc import Nvmc
from .periph import (
    GpioPort,
    NrfClock,
    Peripheral,
    Timer,
    ficr_nrf5340,
    ficr_nrf52840,
    uicr,
)
from .ppi import Dppic, EventRouter, Ppi
from .regfile import (
    NRF5340_ERRATA_WORDS,
    ErrataWord,
    cache,
    ctrlap,
    gpiote,
    ipc,
    oscillators_regulators,
    temp,
)
from .rtc import Rtc
from .uarte import Uarte

log = get_logger(__name__)

from .qspi import NrfQspi
from .scs import SystemControlSpace

KIB = 1024
MIB = 1024 * 1024

PERIPH_ACCESS_CYCLES = 4  # CPU cycles per peripheral register access (AHB->APB bridge, estimate)
PPB_ACCESS_CYCLES = 1


@dataclass(frozen=True)
class ChipModel:
    """What the virtual board models per nRF chip, beside the board table's chip facts
    (`qspi_gdb.inputs.boards`: XIP base, pins, the board's flash part)."""

    core: str  # "cortex-m4f" | "cortex-m33"
    ram_size: int
    qspi_bases: tuple[int, ...]
    irqs: dict[str, int] = field(default_factory=dict)

    @property
    def qspi_base(self) -> int:
        return self.qspi_bases[0]


# IRQ numbers: nrf52840.h / nrf5340_application.h IRQn_Type
_IRQS_52840 = {"CLOCK_POWER": 0, "UARTE0": 2, "GPIOTE": 6, "TIMER0": 8, "TIMER1": 9,
               "TIMER2": 10, "RTC0": 11, "TEMP": 12, "RTC1": 17, "RTC2": 36, "QSPI": 41}
_IRQS_5340 = {"CLOCK_POWER": 5, "UARTE0": 8, "GPIOTE": 13, "TIMER0": 15, "TIMER1": 16,
              "TIMER2": 17, "RTC0": 20, "RTC1": 21, "IPC": 42, "QSPI": 43}

CHIP_MODELS: dict[str, ChipModel] = {
    "nrf52840": ChipModel("cortex-m4f", 256 * KIB, (0x40029000,), _IRQS_52840),
    "nrf5340": ChipModel("cortex-m33", 512 * KIB, (0x5002B000, 0x4002B000), _IRQS_5340),
}

# The virtual boards: the board table's sim-* rows.
BOARDS: dict[str, boards.Board] = {name: b for name, b in boards.BOARDS.items() if b.virtual}

RAM_BASE = 0x20000000
CODE_RAM_ALIAS_52840 = 0x00800000
INTERNAL_FLASH_SIZE = 1 * MIB
XIP_SIZE = 128 * MIB
PPB_BASE = 0xE0000000
PPB_SIZE = 0x00100000
NUM_IRQS = {"nrf52840": 48, "nrf5340": 69}
UICR_BASE = {"nrf52840": 0x10001000, "nrf5340": 0x00FF8000}


# -- the bus -----------------------------------------------------------------------------


@dataclass
class Region:
    base: int
    size: int
    name: str
    device: object  # read(offset, size) / write(offset, size, value)
    cpu_cycles: int = 0  # cost of a CPU access beyond the instruction itself
    absolute: bool = False  # device takes absolute addresses (SCS)
    memory: bytearray | None = None  # plain memory: block accesses slice it directly
    writable: bool = True
    # read-only memory written through a controller instead (the internal flash: the NVMC)
    programmer: object = None  # write(addr, size, value); settle() before any read
    end: int = field(init=False)

    def __post_init__(self) -> None:
        self.end = self.base + self.size


class SystemBus:
    """Address decoder of the application core's AHB (what MEM-AP 0 and the CPU see)."""

    def __init__(self, on_write_memory=None) -> None:
        self.regions: list[Region] = []
        self._bases: list[int] = []
        self._on_write_memory = on_write_memory  # (addr, length) after a write to memory
        self._logged: dict[tuple[int, bool], int] = {}

    def add(self, region: Region) -> None:
        for other in self.regions:
            if region.base < other.end and other.base < region.end:
                raise ValueError(f"bus regions overlap: {region.name} and {other.name}")
        self.regions.append(region)
        self.regions.sort(key=lambda r: r.base)
        self._bases = [r.base for r in self.regions]

    def find(self, addr: int) -> Region | None:
        i = bisect_right(self._bases, addr) - 1
        if i >= 0:
            region = self.regions[i]
            if addr < region.end:
                return region
        return None

    def read(self, addr: int, size: int) -> int:
        return self.read_in(self._decode(addr, size, False), addr, size)

    def read_in(self, region: Region, addr: int, size: int) -> int:
        """Read from an already decoded region."""
        if region.memory is not None:
            if region.programmer is not None:
                region.programmer.settle()
            off = addr - region.base
            return int.from_bytes(region.memory[off : off + size], "little")
        try:
            return region.device.read(addr if region.absolute else addr - region.base, size)
        except BusFault as fault:
            raise self._fault(addr, False, fault.why) from None

    def write(self, addr: int, size: int, value: int) -> None:
        self.write_in(self._decode(addr, size, True), addr, size, value)

    def write_in(self, region: Region, addr: int, size: int, value: int) -> None:
        """Write to an already decoded region."""
        if region.memory is not None:
            if region.programmer is not None:
                try:
                    region.programmer.write(addr, size, value)
                except BusFault as fault:
                    raise self._fault(addr, True, fault.why) from None
                return
            if not region.writable:
                raise self._fault(addr, True, f"{region.name} is read-only")
            off = addr - region.base
            region.memory[off : off + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(
                size, "little"
            )
            if self._on_write_memory:
                self._on_write_memory(addr, size)
            return
        try:
            region.device.write(addr if region.absolute else addr - region.base, size, value)
        except BusFault as fault:
            raise self._fault(addr, True, fault.why) from None

    def read_block(self, addr: int, length: int) -> bytes:
        out = bytearray()
        while length > 0:
            region = self._decode(addr, 1, False)
            if region.memory is not None:
                if region.programmer is not None:
                    region.programmer.settle()
                n = min(length, region.end - addr)
                off = addr - region.base
                out += region.memory[off : off + n]
            else:
                n = 4 if not addr & 3 and length >= 4 else 1
                out += self.read(addr, n).to_bytes(n, "little")
            addr += n
            length -= n
        return bytes(out)

    def write_block(self, addr: int, data: bytes) -> None:
        pos = 0
        while pos < len(data):
            region = self._decode(addr, 1, True)
            if region.memory is not None and region.writable:
                n = min(len(data) - pos, region.end - addr)
                off = addr - region.base
                region.memory[off : off + n] = data[pos : pos + n]
                if self._on_write_memory:
                    self._on_write_memory(addr, n)
            else:
                n = 4 if not addr & 3 and len(data) - pos >= 4 else 1
                self.write(addr, n, int.from_bytes(data[pos : pos + n], "little"))
            addr += n
            pos += n

    def decode(self, addr: int, size: int, write: bool) -> Region:
        """The region holding [addr, addr+size); BusFault (logged) if there is none."""
        return self._decode(addr, size, write)

    def _decode(self, addr: int, size: int, write: bool) -> Region:
        region = self.find(addr)
        if region is None:
            raise self._fault(addr, write, "no device at this address")
        if addr + size > region.end:
            raise self._fault(addr, write, f"access crosses the end of {region.name}")
        return region

    def _fault(self, addr: int, write: bool, why: str) -> BusFault:
        key = (addr, write)
        seen = self._logged.get(key, 0)
        if seen < 3:  # loud, but a polling debugger must not flood the log
            self._logged[key] = seen + 1
            log.error(
                "bus fault", addr=f"0x{addr:08X}", access="write" if write else "read", why=why
            )
        return BusFault(addr, write, why)


class CpuBus:
    """The core's view of the bus: a peripheral access also costs its bus cycles."""

    def __init__(self, bus: SystemBus, clock: Clock, core_hz) -> None:
        self._bus = bus
        self._clock = clock
        self._core_hz = core_hz

    def read(self, addr: int, size: int) -> int:
        region = self._bus.decode(addr, size, False)
        if region.cpu_cycles:  # the access takes its bus cycles before it samples
            self._clock.advance(region.cpu_cycles / self._core_hz())
        return self._bus.read_in(region, addr, size)

    def write(self, addr: int, size: int, value: int) -> None:
        region = self._bus.decode(addr, size, True)
        if region.cpu_cycles:
            self._clock.advance(region.cpu_cycles / self._core_hz())
        self._bus.write_in(region, addr, size, value)


class RegisterAdapter(Peripheral):
    """Offsets -> a model with read_reg(off)/write_reg(off, value) on 32-bit registers that is
    not itself a Peripheral (the QSPI model); bus access rules are Peripheral's."""

    def __init__(self, name: str, model) -> None:
        self.name = name
        self.model = model

    def read_reg(self, offset: int) -> int:
        return self.model.read_reg(offset)

    def write_reg(self, offset: int, value: int) -> None:
        self.model.write_reg(offset, value)


class XipWindow:
    """Read-only window onto the external flash through the QSPI peripheral."""

    def __init__(self, qspi) -> None:
        self.qspi = qspi

    def read(self, offset: int, size: int) -> int:
        value = self.qspi.xip_read(offset, size)
        if isinstance(value, (bytes, bytearray)):
            return int.from_bytes(value, "little")
        return value

    def write(self, offset: int, size: int, value: int) -> None:
        raise BusFault(offset, True, "the XIP window is read-only")


class RamMemory:
    """EasyDMA's view: data RAM only (not the code RAM alias, not flash or peripherals)."""

    def __init__(self, board: Board) -> None:
        self._board = board

    def _check(self, addr: int, n: int, write: bool) -> int:
        size = len(self._board.ram)
        if not (RAM_BASE <= addr and addr + n <= RAM_BASE + size):
            raise BusFault(addr, write, "EasyDMA can only access data RAM")
        return addr - RAM_BASE

    def read(self, addr: int, n: int) -> bytes:
        off = self._check(addr, n, False)
        return bytes(self._board.ram[off : off + n])

    def write(self, addr: int, data: bytes) -> None:
        off = self._check(addr, len(data), True)
        self._board.ram[off : off + len(data)] = data
        self._board._memory_written(addr, len(data), hints=False)


# -- stats -------------------------------------------------------------------------------


def _debug_session_s(core, now: float) -> float:
    """Board time from the first halt to the last resume (to now while halted): the session a
    debugger held, without the run time of the target before it took hold and after it let go
    (which on the test bed follows OpenOCD's and the board's own start and exit in wall time)."""
    if core is None or core.first_halt_at is None:
        return 0.0
    end = now if core.halted or core.last_resume_at is None else core.last_resume_at
    return max(end - core.first_halt_at, 0.0)


class BoardStats(MutableMapping):
    """Counters: modelled_s, debug_session_s and flash_busy_s are live; everything else is a
    plain counter (unknown keys start at 0, so `stats["x"] += 1` always works)."""

    def __init__(self, board: Board) -> None:
        self._board = board
        self._counts: dict[str, float] = {
            "dap_transactions": 0,
            "halts": 0,
            "bytes_read": 0,
            "bytes_written": 0,
        }

    def _live(self) -> dict[str, float]:
        board = self._board
        flash = getattr(board, "flash", None)
        busy = flash.stats.get("busy_time", 0.0) if flash is not None else 0.0
        core = getattr(board, "core", None)
        return {
            "modelled_s": board.clock.now,
            "debug_session_s": _debug_session_s(core, board.clock.now),
            "flash_busy_s": busy,
            "instructions": core.instructions if core is not None else 0,
        }

    def __getitem__(self, key: str):
        if key in self._counts:  # the counters, bumped per DAP transaction: no live work
            return self._counts[key]
        live = self._live()
        if key in live:
            return live[key]
        return 0

    def __setitem__(self, key: str, value) -> None:
        if key in ("modelled_s", "debug_session_s", "flash_busy_s", "instructions"):
            raise KeyError(f"{key} is derived from the board and cannot be set")
        self._counts[key] = value

    def __delitem__(self, key: str) -> None:
        del self._counts[key]

    def __iter__(self) -> Iterator[str]:
        yield from self._live()
        yield from self._counts

    def __len__(self) -> int:
        return len(self._counts) + 3

    def as_dict(self) -> dict[str, float]:
        return {**self._live(), **self._counts}


# -- the board ---------------------------------------------------------------------------


class Board:
    """One virtual board. Not thread-safe: one thread drives it (the wire server or a test)."""

    def __init__(self, board: str | boards.Board, sim_image: str | PathLike | None = None, *,
                 locked: tuple[str, ...] = (), network_running: bool = False,
                 console: str | PathLike | BinaryIO | None = None,
                 faults: FaultPlan | None = None) -> None:
        """locked: the cores whose access port starts protected ("application", "network");
        network_running: the nRF5340 network core starts released from Force-OFF (as the
        application firmware of a DK does); console: where UARTE0's output goes; faults: the
        seeded faults to inject (`qspi_gdb.sim.faults`)."""
        row = BOARDS.get(board) if isinstance(board, str) else board
        if row is None or not row.virtual:
            raise ValueError(f"unknown virtual board {board!r} (known: {', '.join(BOARDS)})")
        self.name = row.name
        self.row = row  # the board table's row
        self.model = model = CHIP_MODELS[row.chip]
        self.chip = row.chip
        self.sim_image = sim_image
        self.clock = Clock()
        self.stats = BoardStats(self)
        self.halt_listeners: list = []  # callables(reason) told of every halt (the probe model)
        nrf53 = self.chip == "nrf5340"

        self.ram = bytearray(model.ram_size)
        self.internal_flash = bytearray(b"\xff") * INTERNAL_FLASH_SIZE
        self.nvic = Nvic(NUM_IRQS[self.chip], priority_bits=3, has_itns=nrf53)
        irqs = model.irqs
        self.clock_periph = NrfClock(self.chip, self.clock, self._irq_line(irqs["CLOCK_POWER"]))
        self.timers = [
            Timer(f"TIMER{i}", self.chip, self.clock, cc_count=6 if nrf53 else 4,
                  irq=self._irq_line(irqs[f"TIMER{i}"]))
            for i in range(3)
        ]
        self.gpio = [GpioPort("P0", self.chip), GpioPort("P1", self.chip, pins=16)]
        self.ficr = ficr_nrf5340() if nrf53 else ficr_nrf52840()
        self.uicr = uicr(self.chip)
        uicr_base = UICR_BASE[self.chip]
        self.nvmc = Nvmc(self.chip, self.clock, self.internal_flash, self.uicr,
                         uicr_base=uicr_base, flash_written=self._memory_written,
                         cpu_runs_from_flash=self._cpu_runs_from_flash)
        self.uicr.writer = lambda offset, size, value: self.nvmc.program(
            uicr_base + offset, size, value, flash_offset=None)
        self.memory = RamMemory(self)
        self.console = _Console(console)
        lfclk_running = lambda: self.clock_periph.lfclk_running  # noqa: E731
        self.rtcs = [
            Rtc(f"RTC{i}", self.chip, self.clock, lfclk_running,
                cc_count=3 if (i == 0 and not nrf53) else 4, irq=self._irq_line(irqs[f"RTC{i}"]))
            for i in range(2 if nrf53 else 3)
        ]
        for rtc in self.rtcs:
            self.clock_periph.listeners.append(rtc.lfclk_changed)
        self.uarte = Uarte("UARTE0", self.chip, self.clock, self.memory,
                           irq=self._irq_line(irqs["UARTE0"]), output=self.console.write)
        self.gpiote = gpiote(self.chip)
        self.router = EventRouter()
        if nrf53:
            self.router.controller = self.dppic = Dppic()
            self.cache, self.ctrlap, self.ipc = cache(), ctrlap(), ipc()
            self.oscillators_regulators = oscillators_regulators()
            self.others: list[Peripheral] = [
                self.dppic, self.cache, self.oscillators_regulators, self.ctrlap, self.ipc]
        else:
            self.temp = temp()
            self.others = [self.temp]
        self.network = NetworkCore(running=network_running) if nrf53 else None
        self.protection = ChipProtection(self.chip, board=self)
        self.protection.protect(locked)
        # told of every SYSRESETREQ / pin reset (not of the CTRL-AP's own RESET pulse)
        self.reset_listeners = [self.protection.on_system_reset]
        if self.network is not None:
            self.reset_listeners.append(self.network.on_app_system_reset)
        self.peripherals: list[Peripheral] = [
            self.clock_periph, *self.timers, *self.gpio, self.nvmc, *self.rtcs, self.uarte,
            self.gpiote, *self.others,
        ]

        self.flash = NorFlash.from_part(row.part, sim_image)
        self.faults = faults if faults is not None else FaultPlan()
        self.flash.faults = self.faults
        self.faults.on("core-reset", self._fault_reset)
        self.faults.on("power-loss", self.power_loss)
        # The QSPI model drives the chip's advance() from this clock and advances the clock
        # itself for register accesses and SCK time.
        self.qspi = NrfQspi(
            self.chip, self.flash, self.memory, clock=self.clock,
            on_ready_irq=self._irq_pulse(irqs["QSPI"]),
        )
        # its interrupt line as a level: EVENTS_READY & INTEN.READY
        self.nvic.set_level_source(
            irqs["QSPI"],
            lambda: bool(self.qspi.events_ready) and bool(self.qspi._regs.get(0x300, 0) & 1),
        )
        self.clock_periph.listeners.append(self._clock_dividers_changed)
        self._clock_dividers_changed()

        self.bus = SystemBus(on_write_memory=self._memory_written)
        if not nrf53:
            self.router.controller = self.ppi = Ppi(self.bus)
            self.peripherals.append(self.ppi)
        self.cpu_bus = CpuBus(self.bus, self.clock, lambda: self.core_hz)
        self.core = CortexM(
            model.core,
            clock=self.clock,
            bus=self.cpu_bus,
            nvic=self.nvic,
            core_hz=lambda: self.core_hz,
            on_halt=self._on_halt,
        )
        self._build_memory_map()
        self.scs = SystemControlSpace(self)
        self.core.vtor = lambda: self.scs.vtor
        self.core.exception_catch = self._vector_catch
        self.core.rom_write = self._rom_write
        self.core.on_sleep = self.clock_periph.note_sleep
        self.core.reset()  # power-on: vectors from the (blank) internal flash
        self.core.resume()

    # -- wiring ------------------------------------------------------------------------
    @property
    def core_hz(self) -> float:
        return self.clock_periph.cpu_hz

    def _cpu_runs_from_flash(self) -> bool:
        core = getattr(self, "core", None)
        return core is not None and core.in_emulation and core.pc < INTERNAL_FLASH_SIZE

    def _rom_write(self, addr: int, size: int, value: int) -> bool:
        """The core stored to read-only mapped memory: the internal flash goes to the NVMC."""
        if addr + size <= INTERNAL_FLASH_SIZE:
            return self.nvmc.cpu_write(addr, size, value)
        return False

    def _irq_line(self, irq: int):
        def drive(level: bool) -> None:
            was = self.nvic.pending
            self.nvic.set_level(irq, level)
            if self.nvic.pending != was:
                core = getattr(self, "core", None)
                if core is not None:
                    core.note_pended()

        return drive

    def _irq_pulse(self, irq: int):
        def pulse() -> None:
            self.nvic.pend(irq)
            core = getattr(self, "core", None)
            if core is not None:
                core.note_pended()

        return pulse

    def _clock_dividers_changed(self) -> None:
        qspi = getattr(self, "qspi", None)
        if qspi is not None and self.chip == "nrf5340":
            qspi.pclk192m_hz = self.clock_periph.pclk192m_hz

    def _memory_written(self, addr: int, length: int, hints: bool = True) -> None:
        """Host-side write to RAM (debugger, EasyDMA): drop stale translations, also of the
        nRF52840's code-RAM alias, which is the same memory."""
        self.core.invalidate_code(addr, length, hints=hints)
        if self.chip == "nrf52840":
            size = len(self.ram)
            if RAM_BASE <= addr < RAM_BASE + size:
                self.core.invalidate_code(addr - RAM_BASE + CODE_RAM_ALIAS_52840, length,
                                          hints=hints)
            elif CODE_RAM_ALIAS_52840 <= addr < CODE_RAM_ALIAS_52840 + size:
                self.core.invalidate_code(addr - CODE_RAM_ALIAS_52840 + RAM_BASE, length,
                                          hints=hints)

    def _vector_catch(self, exception: int) -> bool:
        """DEMCR.VC_HARDERR: halt on HardFault entry (faults escalate to HardFault here)."""
        return exception == 3 and bool(getattr(self.scs, "demcr", 0) & (1 << 10))

    def _on_halt(self, reason: str) -> None:
        self.stats["halts"] += 1
        for listener in self.halt_listeners:
            listener(reason)

    def _build_memory_map(self) -> None:
        nrf53 = self.chip == "nrf5340"
        bus, core, router = self.bus, self.core, self.router

        def periph(base: int, model, name: str, size: int = 0x1000, aliases=()) -> None:
            for b in (base, *aliases):
                bus.add(Region(b, size, name, model, cpu_cycles=PERIPH_ACCESS_CYCLES))
            if isinstance(model, Peripheral):
                router.attach(model, base)

        bus.add(Region(0x00000000, INTERNAL_FLASH_SIZE, "internal flash", None,
                       memory=self.internal_flash, writable=False,
                       programmer=_FlashProgrammer(self.nvmc)))
        core.map_memory(0x00000000, self.internal_flash, writable=False)
        bus.add(Region(RAM_BASE, len(self.ram), "RAM", None, memory=self.ram))
        core.map_memory(RAM_BASE, self.ram)
        if not nrf53:
            bus.add(Region(CODE_RAM_ALIAS_52840, len(self.ram), "code RAM", None, memory=self.ram))
            core.map_memory(CODE_RAM_ALIAS_52840, self.ram)

        if nrf53:
            ficr_base = 0x00FF0000
            core.map_mmio(0x00FF0000, 0x10000)
        else:
            ficr_base = 0x10000000
            core.map_mmio(0x10000000, 0x2000)
        bus.add(Region(ficr_base, 0x1000, "FICR", self.ficr, cpu_cycles=PERIPH_ACCESS_CYCLES))
        bus.add(Region(UICR_BASE[self.chip], 0x1000, "UICR", self.uicr,
                       cpu_cycles=PERIPH_ACCESS_CYCLES))

        # XIP: the QSPI model charges its own SCK time
        bus.add(Region(self.row.xip_base, XIP_SIZE, "XIP", XipWindow(self.qspi)))
        core.map_mmio(self.row.xip_base, XIP_SIZE)

        # Peripherals (0x40000000..0x5FFFFFFF). QSPI charges its own time.
        qspi_dev = RegisterAdapter("QSPI", self.qspi)
        for base in self.model.qspi_bases:
            bus.add(Region(base, 0x1000, "QSPI", qspi_dev))
        if nrf53:
            # secure addresses, each with its non-secure alias 0x10000000 lower
            # (nrf5340_application.h NRF_*_S_BASE / NRF_*_NS_BASE)
            ns = 0x10000000
            power_reset = PowerResetBlock(self.clock_periph, self.network)  # + RESET.NETWORK
            periph(0x50005000, power_reset, "CLOCK", aliases=(0x50005000 - ns,))
            router.attach(self.clock_periph, 0x50005000)  # its events and tasks
            secure = [(0x5000F000, self.timers[0], "TIMER0"),
                      (0x50010000, self.timers[1], "TIMER1"),
                      (0x50011000, self.timers[2], "TIMER2"),
                      (0x50039000, self.nvmc, "NVMC"),
                      (0x50014000, self.rtcs[0], "RTC0"), (0x50015000, self.rtcs[1], "RTC1"),
                      (0x50008000, self.uarte, "UARTE0"), (0x5000D000, self.gpiote, "GPIOTE0"),
                      (0x50017000, self.dppic, "DPPIC"), (0x50001000, self.cache, "CACHE"),
                      (0x50004000, self.oscillators_regulators, "OSCILLATORS/REGULATORS"),
                      (0x5002A000, self.ipc, "IPC")]
            for base, model, name in secure:
                periph(base, model, name, aliases=(base - ns,))
            periph(0x50006000, self.ctrlap, "CTRLAP")  # secure only
            periph(0x50842500, self.gpio[0], "P0", self.gpio[0].size, aliases=(0x40842500,))
            periph(0x50842800, self.gpio[1], "P1", self.gpio[1].size, aliases=(0x40842800,))
            for addr, erratum in NRF5340_ERRATA_WORDS:
                bus.add(Region(addr, 4, f"erratum {erratum.split(':')[0]}", ErrataWord(erratum),
                               cpu_cycles=PERIPH_ACCESS_CYCLES))
        else:
            periph(0x40000000, self.clock_periph, "CLOCK/POWER")
            for i, base in enumerate((0x40008000, 0x40009000, 0x4000A000)):
                periph(base, self.timers[i], f"TIMER{i}")
            periph(0x4001E000, self.nvmc, "NVMC")
            for i, base in enumerate((0x4000B000, 0x40011000, 0x40024000)):
                periph(base, self.rtcs[i], f"RTC{i}")
            periph(0x40002000, self.uarte, "UARTE0")
            periph(0x40006000, self.gpiote, "GPIOTE")
            periph(0x4000C000, self.temp, "TEMP")
            periph(0x4001F000, self.ppi, "PPI")
            # P0 and P1 share a 4 KiB page: map just each port's register span
            for port, base in ((self.gpio[0], 0x50000000), (self.gpio[1], 0x50000300)):
                bus.add(Region(base + 0x504, port.size - 0x504, port.name,
                               _Offset(port, 0x504), cpu_cycles=PERIPH_ACCESS_CYCLES))
        core.map_mmio(0x40000000, 0x20000000)

        bus.add(Region(PPB_BASE, PPB_SIZE, "PPB", _LateScs(self), absolute=True,
                       cpu_cycles=PPB_ACCESS_CYCLES))
        core.map_mmio(PPB_BASE, PPB_SIZE)

    # -- run control -------------------------------------------------------------------
    def system_reset(self) -> None:
        """SYSRESETREQ: core and peripherals reset; the external flash chip is not."""
        self.core.defer(self._system_reset_now)

    def _system_reset_now(self) -> None:
        log.info("system reset", board=self.name)
        for p in self.peripherals:
            p.reset()
        self.clock_periph.system_reset()
        self.qspi.reset()
        self.nvic.reset()
        self.scs.note_reset()  # SCB (VTOR, ...) back to reset values; idempotent per reset
        for listener in self.reset_listeners:
            listener()
        self.core.reset()

    def _fault_reset(self, fault: Fault) -> None:
        fault.note(f"system reset at PC 0x{self.core.pc:08X}")
        # A fault may come due inside a peripheral's task (a QSPI frame): the reset runs as the
        # next clock event, when that task step has returned.
        self.clock.call_after(0.0, self.system_reset)

    def power_loss(self, fault: Fault) -> None:
        """Power lost and back: the flash chip interrupted mid-operation and restarted, the
        MCU reset with its RAM undefined (drawn from the fault's seed); the debug connection
        drops with it (the wire registers that part)."""
        self.flash.power_loss(fault)

        def mcu_down() -> None:
            self.ram[:] = fault.rng.randbytes(len(self.ram))
            self.system_reset()

        self.clock.call_after(0.0, mcu_down)

    def erase_internal_flash(self) -> None:
        """The internal flash back to 0xFF (a CTRL-AP ERASEALL; `ctrlap` clears the UICR and
        RAM of its domain), with the core's view of it refreshed."""
        self.nvmc.erase_flash()

    def service(self, max_wall_s: float = 0.005, until: float | None = None) -> None:
        """Let a running core execute for up to max_wall_s of host time. until: a modelled time
        not to run past (the wire's pacing); a core asleep with nothing due before it sleeps
        until then."""
        self._run(time.perf_counter() + max_wall_s, until, sleep_to_until=until is not None)

    def _run(self, wall_deadline: float, until: float | None, *,
             sleep_to_until: bool = False) -> None:
        core, clock = self.core, self.clock
        while not core.halted and not core.lockup:
            if core.sleeping:
                if not core.try_wake():
                    due = clock.next_event_time()
                    if sleep_to_until and (due is None or due > until):
                        clock.advance_to(until)  # asleep until the pacing limit
                        return
                    if due is None:
                        core.log_sleep_forever_once()
                        return
                    if until is not None and due > until:
                        return
                    clock.advance_to(due)  # sleep: jump to the next thing that can happen
            else:
                core.run_slice()
                self.nvmc.settle()
            if until is not None and clock.now >= until:
                return
            if time.perf_counter() >= wall_deadline:
                return

    def run_for(self, modelled_s: float, *, max_wall_s: float = 60.0) -> str:
        """Let a running core go on for `modelled_s` seconds of board time (a program that
        does not halt: an application logging to its console). Returns why it stopped:
        "time", "halted", "lockup", "asleep" (sleeping with nothing left that could wake it)
        or "wall" (max_wall_s of host time used up first)."""
        core, clock = self.core, self.clock
        until = clock.now + modelled_s
        wall_deadline = time.perf_counter() + max_wall_s
        while True:
            if core.halted:
                return "halted"
            if core.lockup:
                return "lockup"
            if clock.now >= until:
                return "time"
            if time.perf_counter() >= wall_deadline:
                return "wall"
            if core.sleeping and not core.wake_pending():
                due = clock.next_event_time()
                if due is None:
                    core.log_sleep_forever_once()
                    return "asleep"
                if due > until:
                    clock.advance_to(until)
                    return "time"
            self._run(min(wall_deadline, time.perf_counter() + 0.05), until)

    def run_then_halt(self, modelled_s: float) -> bool:
        """Let the core run `modelled_s` of modelled time, then halt it (as a debugger's halt
        request would). True when it halted by itself first. Raises TargetError on a lockup."""
        core, clock = self.core, self.clock
        until = clock.now + modelled_s
        while not core.halted:
            if core.lockup:
                raise TargetError(f"core locked up at PC 0x{core.pc:08X}: {core.fault}")
            if clock.now >= until:
                core.halt("halted")
                return False
            self._run(time.perf_counter() + 0.05, until, sleep_to_until=True)
        return True

    def run_until_halt(self, max_modelled_s: float) -> str:
        """Run until the core halts; returns the halt reason. Raises TargetError on a
        timeout (in modelled seconds; the core is then halted) or a core lockup."""
        core, clock = self.core, self.clock
        deadline = clock.now + max_modelled_s
        while True:
            if core.halted:
                return core.halt_reason or "halted"
            if core.lockup:
                raise TargetError(f"core locked up at PC 0x{core.pc:08X}: {core.fault}")
            if clock.now >= deadline:
                core.halt("halted")
                raise TargetError(
                    f"core did not halt within {max_modelled_s} s (modelled); "
                    f"halted at PC 0x{core.pc:08X}"
                )
            self._run(time.perf_counter() + 0.05, deadline)
            if core.sleeping and not core.wake_pending():
                due = clock.next_event_time()
                if due is None or due > deadline:
                    clock.advance_to(deadline)

    def close(self) -> None:
        """Flush and release the flash image and the console file."""
        self.console.close()
        self.flash.close()

    def __enter__(self) -> Board:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- in-process debugger conveniences ------------------------------------------------
    def read_memory(self, addr: int, length: int) -> bytes:
        return self.bus.read_block(addr, length)

    def write_memory(self, addr: int, data: bytes) -> None:
        self.bus.write_block(addr, bytes(data))

    def load_elf(self, path: str | PathLike) -> int:
        """Halt, write the PT_LOAD segments (at their physical addresses, as GDB's `load`
        does), set PC to the entry point; returns the entry. SP is the caller's business."""
        if not self.core.halted:
            self.core.halt("halted")
        with open(path, "rb") as f:
            elf = ELFFile(f)
            for seg in elf.iter_segments():
                if seg["p_type"] == "PT_LOAD" and seg["p_filesz"]:
                    self.write_memory(seg["p_paddr"], seg.data())
            entry = elf.header["e_entry"]
        self.core.write_core_reg(15, entry & ~1)
        self.core.write_core_reg(16, self.core.read_core_reg(16) | XPSR_T)
        return entry


class _FlashProgrammer:
    """The internal flash's bus writes (a debugger's MEM-AP, the CPU through the bus) go to the
    NVMC; reads settle the CPU's raw stores first (see qspi_gdb.sim.nvmc)."""

    def __init__(self, nvmc: Nvmc) -> None:
        self.nvmc = nvmc
        self.settle = nvmc.settle

    def write(self, addr: int, size: int, value: int) -> None:
        self.nvmc.program(addr, size, value, flash_offset=addr)


class _Console:
    """Where UARTE0's transmitter writes: a file (flushed at each line end), or nowhere."""

    def __init__(self, target: str | PathLike | BinaryIO | None) -> None:
        self._owned = isinstance(target, (str, PathLike))
        self._file: BinaryIO | None = open(target, "wb") if self._owned else target

    def write(self, data: bytes) -> None:
        if self._file is not None:
            self._file.write(data)
            if b"\n" in data:
                self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            if self._owned:
                self._file.close()
            self._file = None


class _Offset:
    """A device whose register offsets start at `first` within its region."""

    def __init__(self, device, first: int) -> None:
        self.device = device
        self.first = first

    def read(self, offset: int, size: int) -> int:
        return self.device.read(offset + self.first, size)

    def write(self, offset: int, size: int, value: int) -> None:
        self.device.write(offset + self.first, size, value)


class _LateScs:
    """Routes the PPB to board.scs, which is built after the bus (it needs the board)."""

    def __init__(self, board: Board) -> None:
        self.board = board

    def read(self, addr: int, size: int) -> int:
        return self.board.scs.read(addr, size)

    def write(self, addr: int, size: int, value: int) -> None:
        self.board.scs.write(addr, size, value)


# -- TargetLink over an in-process board -------------------------------------------------

_REGISTERS = {**{f"r{i}": i for i in range(13)}, "sp": 13, "lr": 14, "pc": 15, "xpsr": 16,
              "msp": 17, "psp": 18}


class InProcessLink:
    """qspi_gdb.loader.target.TargetLink over a Board in this process (no OpenOCD, no GDB).

    wait_halt's timeout counts modelled seconds of the board's clock.
    """

    def __init__(self, board: Board) -> None:
        self.board = board

    def load_elf(self, path: str | PathLike) -> None:
        try:
            self.board.load_elf(path)
        except BusFault as fault:
            raise TargetError(f"cannot load {path}: {fault}") from None

    def read_memory(self, addr: int, length: int) -> bytes:
        try:
            data = self.board.read_memory(addr, length)
        except BusFault as fault:
            raise TargetError(str(fault)) from None
        self.board.stats["bytes_read"] += length
        return data

    def write_memory(self, addr: int, data: bytes) -> None:
        try:
            self.board.write_memory(addr, data)
        except BusFault as fault:
            raise TargetError(str(fault)) from None
        self.board.stats["bytes_written"] += len(data)

    def _selector(self, name: str) -> int:
        try:
            return _REGISTERS[name.lower()]
        except KeyError:
            raise TargetError(f"unknown register {name!r}") from None

    def read_register(self, name: str) -> int:
        if not self.board.core.halted:
            raise TargetError("registers can only be read while the core is halted")
        return self.board.core.read_core_reg(self._selector(name))

    def write_register(self, name: str, value: int) -> None:
        if not self.board.core.halted:
            raise TargetError("registers can only be written while the core is halted")
        self.board.core.write_core_reg(self._selector(name), value)

    def resume(self) -> None:
        self.board.core.resume()

    def run_for(self, seconds: float) -> bool:
        self.board.core.resume()
        return self.board.run_then_halt(seconds)

    def wait_halt(self, timeout_s: float) -> None:
        self.board.run_until_halt(timeout_s)

    def halt(self) -> None:
        self.board.core.halt("halted")

    def reset(self, halt: bool = True) -> None:
        core = self.board.core
        saved = core.vector_catch
        core.vector_catch = halt
        try:
            self.board.system_reset()
        finally:
            core.vector_catch = saved
        if not halt:
            core.resume()
