"""A minimal stand-in for qspi_gdb.sim.board.Board: RAM, the System Control Space and a core
that only halts, resumes and holds registers. Enough for the debug port and wire to be tested
alone (no unicorn)."""

from __future__ import annotations

from qspi_gdb.sim.bus import BusFault
from qspi_gdb.sim.clock import Clock
from qspi_gdb.sim.scs import SystemControlSpace

DFSR_BITS = {"halted": 1, "bkpt": 2, "dwttrap": 4, "vcatch": 8, "external": 16}


class FakeCore:
    def __init__(self) -> None:
        self.halted = False
        self.dfsr = 0
        self.vector_catch = False
        self.sleeping = False
        self.lockup = False
        self.regs: dict[int, int] = {}
        self.breakpoints: set[int] = set()
        self.steps = 0
        self.upkeep_s = 0.0  # host time spent on translations (none here): the pacer reads it

    def halt(self, reason: str) -> None:
        self.halted = True
        self.dfsr |= DFSR_BITS[reason]

    def clear_dfsr(self, mask: int) -> None:
        self.dfsr &= ~mask

    def resume(self) -> None:
        self.halted = False

    def step(self) -> None:
        self.steps += 1
        self.regs[15] = self.regs.get(15, 0) + 2
        self.halt("halted")

    def read_core_reg(self, sel: int) -> int:
        return self.regs.get(sel, 0)

    def write_core_reg(self, sel: int, value: int) -> None:
        self.regs[sel] = value

    def set_breakpoints(self, addrs: set[int]) -> None:
        self.breakpoints = set(addrs)


class FakeNvic:
    def __init__(self) -> None:
        self.regs: dict[int, int] = {}

    def read(self, addr: int, size: int) -> int:
        return self.regs.get(addr, 0)

    def write(self, addr: int, size: int, value: int) -> None:
        self.regs[addr] = value


class FakeBus:
    def __init__(self, board: FakeBoard, ram_base: int, ram_size: int) -> None:
        self.board = board
        self.ram_base = ram_base
        self.ram = bytearray(ram_size)

    def read(self, addr: int, size: int) -> int:
        offset = addr - self.ram_base
        if 0 <= offset <= len(self.ram) - size:
            return int.from_bytes(self.ram[offset:offset + size], "little")
        if 0xE0000000 <= addr < 0xE0100000:
            return self.board.scs.read(addr, size)
        raise BusFault(addr, False)

    def write(self, addr: int, size: int, value: int) -> None:
        offset = addr - self.ram_base
        if 0 <= offset <= len(self.ram) - size:
            self.ram[offset:offset + size] = value.to_bytes(size, "little")
            return
        if 0xE0000000 <= addr < 0xE0100000:
            self.board.scs.write(addr, size, value)
            return
        raise BusFault(addr, True)


class FakeBoard:
    def __init__(self, chip: str = "nrf52840", ram_size: int = 256 * 1024) -> None:
        self.chip = chip
        self.clock = Clock()
        self.core_hz = 64_000_000
        self.stats: dict[str, float] = {}
        self.core = FakeCore()
        self.nvic = FakeNvic()
        self.bus = FakeBus(self, 0x20000000, ram_size)
        self.scs = SystemControlSpace(self)
        self.resets = 0
        self.serviced = 0

    def system_reset(self) -> None:
        self.resets += 1
        self.core.halted = False
        if self.core.vector_catch:
            self.core.halt("vcatch")

    def service(self, max_wall_s: float = 0.0, until: float | None = None) -> None:
        self.serviced += 1
        if until is not None:  # a core with nothing to do: time passes (the wire's pacing)
            self.clock.advance_to(until)

    def close(self) -> None:
        pass
