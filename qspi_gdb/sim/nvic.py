"""Nested Vectored Interrupt Controller: enable, pending, active and priority state.

The register block lives in the System Control Space (0xE000E100..0xE000E4EF, plus ITNS on
ARMv8-M); the board routes that range here. Peripheral interrupt lines are level signals
(nRF: OR of EVENTS_x & INTEN_x): while a line is high its IRQ is (re)pended, exactly as the
architecture describes, so clearing ICPR with the event still set pends it again.

The core asks two questions: "is an enabled interrupt pending?" (WFI wake-up, which ignores
PRIMASK) and "which pending interrupt would preempt now?" (exception entry).
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


class Nvic:
    def __init__(self, num_irqs: int, *, priority_bits: int = 3, has_itns: bool = False) -> None:
        self.num_irqs = num_irqs
        self.priority_bits = priority_bits
        self.has_itns = has_itns
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
        implemented = (0xFF << (8 - self.priority_bits)) & 0xFF
        for i in range(size):
            irq = off + i
            if irq < self.num_irqs:
                self.priority[irq] = (value >> (8 * i)) & implemented
