"""Exception state of the core: the NVIC's external interrupts and the system exceptions.

The NVIC register block lives in the System Control Space (0xE000E100..0xE000E4EF, plus ITNS on
ARMv8-M); the board routes that range here. Peripheral interrupt lines are level signals
(nRF: OR of EVENTS_x & INTEN_x): while a line is high its IRQ is (re)pended, exactly as the
architecture describes, so clearing ICPR with the event still set pends it again.

System exceptions (ARMv7-M B1.5.2, ARMv8-M B3.2): NMI (2) and HardFault (3) have fixed
priorities -2 and -1; MemManage (4), BusFault (5), UsageFault (6), SecureFault (7, ARMv8-M),
SVCall (11), DebugMonitor (12), PendSV (14) and SysTick (15) take theirs from SHPR1..3, which
the SCS routes here (`shpr_read` / `shpr_write`). NMI, PendSV and SysTick are pended through
ICSR (`pend_exception`). Priorities keep only the implemented high bits (3 on both nRF cores),
and AIRCR.PRIGROUP splits them into group priority and subpriority (B1.5.4): only the group
priority decides preemption; the subpriority, then the exception number, orders the pending
ones.

The core asks "which pending exception is most urgent?" (`highest_pending_exception`, exception
entry and WFI wake-up) and keeps the active set here (`activate` / `deactivate`), from which it
derives its execution priority.
"""

from __future__ import annotations

from collections.abc import Callable

from ..log import get_logger
from .bus import BusFault

log = get_logger(__name__)

NVIC_BASE = 0xE000E100
ISER = 0x000  # 0xE000E100
ICER = 0x080  # 0xE000E180
ISPR = 0x100  # 0xE000E200
ICPR = 0x180  # 0xE000E280
IABR = 0x200  # 0xE000E300
ITNS = 0x280  # 0xE000E380 (ARMv8-M with Security Extension)
IPR = 0x300  # 0xE000E400
NVIC_END = 0xE000E4F0  # one past the last IPR word the largest NVIC can have

NMI, HARDFAULT, MEMMANAGE, BUSFAULT, USAGEFAULT, SECUREFAULT = 2, 3, 4, 5, 6, 7
SVCALL, DEBUGMONITOR, PENDSV, SYSTICK = 11, 12, 14, 15
FIXED_PRIORITY = {1: -3, NMI: -2, HARDFAULT: -1}  # Reset, NMI, HardFault
# SHPR1..3 (0xE000ED18/1C/20): byte n of the 12 holds the priority of exception 4 + n
CONFIGURABLE = (MEMMANAGE, BUSFAULT, USAGEFAULT, SECUREFAULT, SVCALL, DEBUGMONITOR, PENDSV, SYSTICK)
PENDABLE = (NMI, PENDSV, SYSTICK)  # system exceptions software pends through ICSR


class Nvic:
    def __init__(self, num_irqs: int, *, priority_bits: int = 3, has_itns: bool = False,
                 has_securefault: bool | None = None) -> None:
        self.num_irqs = num_irqs
        self.priority_bits = priority_bits
        self.has_itns = has_itns
        self.has_securefault = has_itns if has_securefault is None else has_securefault
        self._words = (num_irqs + 31) // 32
        self._irq_mask = (1 << num_irqs) - 1
        self._levels = 0
        self._sources: dict[int, Callable[[], bool]] = {}
        self.reset()

    # -- state -------------------------------------------------------------------------
    def reset(self) -> None:
        self.enabled = 0
        self.pending = self._asserted(self._irq_mask)  # lines still high pend again
        self.active = 0
        self.itns = 0
        self.priority = [0] * self.num_irqs
        self.system_priority = {exc: 0 for exc in CONFIGURABLE}
        self.system_pending: set[int] = set()
        self.system_active: set[int] = set()
        self.prigroup = 0  # AIRCR.PRIGROUP, written by the SCS

    # -- priorities ----------------------------------------------------------------------
    @property
    def implemented_mask(self) -> int:
        """The priority bits the NVIC implements (the high `priority_bits` of 8)."""
        return self._implemented

    @property
    def _implemented(self) -> int:
        return (0xFF << (8 - self.priority_bits)) & 0xFF

    def exception_priority(self, exception: int) -> int:
        """The priority of an exception number (16 + n for IRQ n)."""
        if exception >= 16:
            return self.priority[exception - 16]
        if exception in FIXED_PRIORITY:
            return FIXED_PRIORITY[exception]
        return self.system_priority.get(exception, 0)

    def group_priority(self, priority: int) -> int:
        """The group-priority part of a priority value (PRIGROUP: bits [7:PRIGROUP+1])."""
        if priority < 0:
            return priority
        return priority & (0xFF << (self.prigroup + 1)) & 0xFF

    def shpr_read(self, index: int) -> int:
        """SHPR byte `index` (0..11): the priority of exception 4 + index, RAZ if not there."""
        exception = 4 + index
        if exception == SECUREFAULT and not self.has_securefault:
            return 0
        return self.system_priority.get(exception, 0)

    def shpr_write(self, index: int, value: int) -> None:
        exception = 4 + index
        if exception in self.system_priority and (exception != SECUREFAULT
                                                  or self.has_securefault):
            self.system_priority[exception] = value & self._implemented

    # -- exceptions by number --------------------------------------------------------------
    def pend_exception(self, exception: int) -> None:
        """Set an exception pending: an IRQ (16 + n) or NMI, PendSV, SysTick (ICSR)."""
        if exception >= 16:
            self.pend(exception - 16)
        elif exception in PENDABLE:
            self.system_pending.add(exception)

    def unpend_exception(self, exception: int) -> None:
        if exception >= 16:
            bit = 1 << (exception - 16)
            self.pending = (self.pending & ~bit) | self._asserted(bit)
        else:
            self.system_pending.discard(exception)

    def is_pending(self, exception: int) -> bool:
        if exception >= 16:
            return bool(self.pending >> (exception - 16) & 1)
        return exception in self.system_pending

    def highest_pending_exception(self) -> int | None:
        """The pending exception that would be taken first: lowest group priority, then
        lowest subpriority, then lowest number (B1.5.4). IRQs count only when enabled; an
        exception already active is not a candidate."""
        best = None
        best_key = None
        for exception in self.system_pending:
            if exception in self.system_active:
                continue
            key = (self.exception_priority(exception), exception)
            if best_key is None or key < best_key:
                best, best_key = exception, key
        irq = self.highest_pending()
        if irq is not None:
            key = (self.priority[irq], 16 + irq)
            if best_key is None or key < best_key:
                best = 16 + irq
        return best

    def activate(self, exception: int) -> None:
        """Exception entry: pending -> active."""
        if exception >= 16:
            self.acknowledge(exception - 16)
        else:
            self.system_pending.discard(exception)
            self.system_active.add(exception)

    def deactivate(self, exception: int) -> None:
        """Exception return: no longer active (an asserted IRQ line pends again)."""
        if exception >= 16:
            self.complete(exception - 16)
        else:
            self.system_active.discard(exception)

    def active_exceptions(self) -> list[int]:
        irqs = self.active
        found = sorted(self.system_active)
        while irqs:
            low = irqs & -irqs
            found.append(16 + low.bit_length() - 1)
            irqs ^= low
        return found

    def set_level(self, irq: int, level: bool) -> None:
        """Drive a peripheral's interrupt line (level-sensitive)."""
        bit = 1 << irq
        if level:
            self._levels |= bit
            self.pending |= bit
        else:
            self._levels &= ~bit

    def set_level_source(self, irq: int, source: Callable[[], bool]) -> None:
        """A line whose level is read from its peripheral (for models that only pulse)."""
        self._sources[irq] = source

    def _asserted(self, bits: int) -> int:
        """Which of `bits` have their line high now."""
        asserted = self._levels & bits
        for irq, source in self._sources.items():
            if bits >> irq & 1 and source():
                asserted |= 1 << irq
        return asserted

    def pend(self, irq: int) -> None:
        """A single pulse on the line (sets pending)."""
        self.pending |= 1 << irq

    def pending_enabled(self) -> int:
        """Bit mask of IRQs that are both enabled and pending (WFI wake-up condition)."""
        return self.pending & self.enabled & ~self.active

    def highest_pending(self) -> int | None:
        """The enabled pending IRQ with the highest priority (lowest value, then lowest number)."""
        candidates = self.pending_enabled()
        best = None
        while candidates:
            low = candidates & -candidates
            irq = low.bit_length() - 1
            if best is None or self.priority[irq] < self.priority[best]:
                best = irq
            candidates ^= low
        return best

    def acknowledge(self, irq: int) -> None:
        """Exception entry: pending -> active (a still-high line pends again later)."""
        self.pending &= ~(1 << irq)
        self.active |= 1 << irq

    def complete(self, irq: int) -> None:
        """Exception return: clear active; an asserted line is pending again."""
        self.active &= ~(1 << irq)
        self.pending |= self._asserted(1 << irq)

    # -- register block ----------------------------------------------------------------
    @staticmethod
    def decodes(addr: int) -> bool:
        return NVIC_BASE <= addr < NVIC_END

    def read(self, addr: int, size: int) -> int:
        off = addr - NVIC_BASE
        if off >= IPR:
            return self._read_ipr(off - IPR, size, addr)
        if size != 4 or off & 3:
            raise BusFault(addr, False, "NVIC bit registers are word-access only")
        group, word = off & ~0x7F, (off & 0x7F) >> 2
        if word >= self._words and group != ITNS:
            return 0  # RAZ/WI beyond the implemented interrupts (architectural)
        shift = 32 * word
        if group in (ISER, ICER):
            value = self.enabled
        elif group in (ISPR, ICPR):
            value = self.pending
        elif group == IABR:
            value = self.active
        elif group == ITNS and self.has_itns:
            value = self.itns
        else:
            raise BusFault(addr, False, "reserved NVIC register")
        return (value >> shift) & 0xFFFFFFFF

    def write(self, addr: int, size: int, value: int) -> None:
        off = addr - NVIC_BASE
        if off >= IPR:
            self._write_ipr(off - IPR, size, value, addr)
            return
        if size != 4 or off & 3:
            raise BusFault(addr, True, "NVIC bit registers are word-access only")
        group, word = off & ~0x7F, (off & 0x7F) >> 2
        if word >= self._words:
            return
        bits = ((value & 0xFFFFFFFF) << (32 * word)) & self._irq_mask
        if group == ISER:
            self.enabled |= bits
        elif group == ICER:
            self.enabled &= ~bits
        elif group == ISPR:
            self.pending |= bits
        elif group == ICPR:
            # a line that is still asserted pends again at once
            self.pending = (self.pending & ~bits) | self._asserted(bits)
        elif group == IABR:
            pass  # read-only
        elif group == ITNS and self.has_itns:
            mask = 0xFFFFFFFF << (32 * word)
            self.itns = (self.itns & ~mask) | bits
        else:
            raise BusFault(addr, True, "reserved NVIC register")

    def _read_ipr(self, off: int, size: int, addr: int) -> int:
        value = 0
        for i in range(size):
            irq = off + i
            if irq < self.num_irqs:  # beyond the implemented IRQs: RAZ/WI
                value |= self.priority[irq] << (8 * i)
        return value

    def _write_ipr(self, off: int, size: int, value: int, addr: int) -> None:
        implemented = self._implemented
        for i in range(size):
            irq = off + i
            if irq < self.num_irqs:
                self.priority[irq] = (value >> (8 * i)) & implemented
