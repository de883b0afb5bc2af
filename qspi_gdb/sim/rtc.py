"""RTC: the 24-bit real-time counter on the low-frequency clock (Zephyr's system timer on nRF).

nRF52840 PS v1.7 §6.22 RTC and the nRF5340 PS v1.3 RTC chapter; register offsets from the MDK
headers (NRF_RTC_Type). What is modelled:

- COUNTER increments at f_RTC = 32768 Hz / (PRESCALER + 1) while the RTC is started (START /
  STOP) *and* the LFCLK runs (the RTC is clocked by the LFCLK: before LFCLKSTARTED it does not
  count). CLEAR sets it to 0, TRIGOVRFLW to 0xFFFFF0. PRESCALER "must be written when RTC is
  stopped": a write while started is ignored and logged.
- Events: TICK on every increment, OVRFLW when COUNTER wraps from 0xFFFFFF to 0, COMPARE[n]
  when COUNTER is incremented to CC[n]. "If the COUNTER is N, writing N or N+1 to a CC register
  may not trigger a COMPARE event": the model takes the strict reading - such a write never
  triggers on this pass (the match comes a full wrap later), so firmware must keep the
  documented distance, as Zephyr's nrf_rtc_timer does.
- Event control ("Event control" section): an event is generated (its EVENTS register set) only
  when it is enabled in INTEN or in EVTEN; it is routed to PPI / published on DPPI only when
  enabled in EVTEN; the interrupt line is the OR of EVENTS & INTEN. TICK and OVRFLW are only
  scheduled on the clock while enabled, so a running RTC costs nothing.
- nRF5340 only: TASKS_CAPTURE[n] (COUNTER into CC[n]), SHORTS COMPARE[n]_CLEAR, SUBSCRIBE /
  PUBLISH registers (DPPI).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ..log import get_logger
from .clock import Clock, Event
from .periph import IrqLine, Peripheral, Unmodelled, _no_irq, _store_dppi

log = get_logger(__name__)

LFCLK_HZ = 32768.0
COUNTER_BITS = 24
WRAP = 1 << COUNTER_BITS
MASK = WRAP - 1
TICK, OVRFLW = 0x100, 0x104


class Rtc(Peripheral):
    def __init__(self, name: str, chip: str, clock: Clock, lfclk_running: Callable[[], bool], *,
                 cc_count: int = 4, irq: IrqLine = _no_irq) -> None:
        self.name = name
        self.chip = chip
        self.clock = clock
        self.lfclk_running = lfclk_running
        self.cc_count = cc_count
        self.irq = irq
        self._scheduled: list[Event] = []
        self.reset()

    def reset(self) -> None:
        for event in self._scheduled:
            event.cancel()
        self._scheduled = []
        self.started = False
        self.prescaler = 0
        self.cc = [0] * self.cc_count
        self.inten = 0
        self.evten = 0
        self.shorts = 0
        self.events = {TICK: 0, OVRFLW: 0, **{0x140 + 4 * n: 0 for n in range(self.cc_count)}}
        self.subscribe: dict[int, int] = {}
        self.publish: dict[int, int] = {}
        self._counting = False
        self._count = 0  # COUNTER at _since
        self._ticks = 0  # increments since reset at _since (never wraps)
        self._since = self.clock.now
        self._match = [WRAP] * self.cc_count  # the _ticks value at which COMPARE[n] comes
        self.irq(False)

    # -- the counter --------------------------------------------------------------------
    @property
    def freq(self) -> float:
        return LFCLK_HZ / (self.prescaler + 1)

    def _elapsed(self) -> int:
        if not self._counting:
            return 0
        return math.floor((self.clock.now - self._since) * self.freq + 1e-6)

    def counter(self) -> int:
        return (self._count + self._elapsed()) & MASK

    def _now_ticks(self) -> int:
        return self._ticks + self._elapsed()

    def _settle(self) -> None:
        """Fold the increments so far into _count/_ticks, keeping the phase of the next one."""
        elapsed = self._elapsed()
        self._count = (self._count + elapsed) & MASK
        self._ticks += elapsed
        if self._counting:
            self._since += elapsed / self.freq
        else:
            self._since = self.clock.now

    def lfclk_changed(self) -> None:
        """The LFCLK started or stopped (CLOCK listener)."""
        self._update_counting()

    def _update_counting(self) -> None:
        counting = self.started and self.lfclk_running()
        if counting != self._counting:
            self._settle()
            self._counting = counting
            self._since = self.clock.now
        self._reschedule()

    def _set_counter(self, value: int) -> None:
        """CLEAR / TRIGOVRFLW / SHORTS: COUNTER jumps; compare matches follow it."""
        self._settle()
        self._count = value & MASK
        for n in range(self.cc_count):
            self._match[n] = self._ticks + (((self.cc[n] - self._count) & MASK) or WRAP)

    # -- events -------------------------------------------------------------------------
    @staticmethod
    def _bit(offset: int) -> int:
        return 1 << (0 if offset == TICK else 1 if offset == OVRFLW else 16 + (offset - 0x140) // 4)

    def _enabled(self, offset: int) -> bool:
        return bool((self.inten | self.evten) & self._bit(offset))

    def _update_irq(self) -> None:
        self.irq(any(v and self.inten & self._bit(off) for off, v in self.events.items()))

    def _generate(self, offset: int) -> None:
        self.events[offset] = 1
        self._update_irq()
        if self.evten & self._bit(offset):
            self._generated(offset)

    def _at_ticks(self, ticks: int, action: Callable[[], None]) -> None:
        when = self._since + (ticks - self._ticks) / self.freq
        self._scheduled.append(self.clock.call_at(when, action))

    def _reschedule(self) -> None:
        for event in self._scheduled:
            event.cancel()
        self._scheduled = []
        if not self._counting:
            return
        now = self._now_ticks()
        if self._enabled(TICK):
            self._at_ticks(now + 1, self._on_tick)
        if self._enabled(OVRFLW):
            self._at_ticks(now + (WRAP - self.counter()), self._on_overflow)
        for n in range(self.cc_count):
            if self._enabled(0x140 + 4 * n):
                while self._match[n] <= now:  # passed while the event was disabled
                    self._match[n] += WRAP
                self._at_ticks(self._match[n], lambda n=n: self._on_compare(n))

    def _on_tick(self) -> None:
        self._generate(TICK)
        self._reschedule()

    def _on_overflow(self) -> None:
        self._generate(OVRFLW)
        self._reschedule()

    def _on_compare(self, n: int) -> None:
        self._match[n] += WRAP
        self._generate(0x140 + 4 * n)
        if self.shorts >> n & 1:  # COMPARE[n]_CLEAR (nRF5340)
            self._set_counter(0)
        self._reschedule()

    # -- tasks --------------------------------------------------------------------------
    def _task(self, offset: int) -> None:
        if offset == 0x000:  # START
            self.started = True
            self._update_counting()
        elif offset == 0x004:  # STOP
            self.started = False
            self._update_counting()
        elif offset == 0x008:  # CLEAR
            self._set_counter(0)
            self._reschedule()
        elif offset == 0x00C:  # TRIGOVRFLW
            self._set_counter(0xFFFFF0)
            self._reschedule()
        elif self.chip == "nrf5340" and 0x040 <= offset < 0x040 + 4 * self.cc_count:
            self._write_cc((offset - 0x040) // 4, self.counter())  # CAPTURE[n]
        else:
            raise Unmodelled

    def _write_cc(self, n: int, value: int) -> None:
        self._settle()
        self.cc[n] = value & MASK
        now = self._now_ticks()
        delta = (self.cc[n] - self._count) & MASK
        if delta <= 1:  # N or N+1: no COMPARE on this pass (strict reading of the PS)
            delta += WRAP
        self._match[n] = now + delta
        self._reschedule()

    # -- registers ----------------------------------------------------------------------
    def read_reg(self, offset: int) -> int:
        nrf53 = self.chip == "nrf5340"
        if offset < 0x080:
            return 0  # tasks are write-only
        if offset in self.events:
            return self.events[offset]
        if offset in (0x304, 0x308):
            return self.inten
        if offset in (0x340, 0x344, 0x348):
            return self.evten
        if offset == 0x504:
            return self.counter()
        if offset == 0x508:
            return self.prescaler
        if 0x540 <= offset < 0x540 + 4 * self.cc_count:
            return self.cc[(offset - 0x540) // 4]
        if nrf53:
            if offset == 0x200:
                return self.shorts
            if 0x080 <= offset < 0x100:
                return self.subscribe.get(offset, 0)
            if 0x180 <= offset < 0x200:
                return self.publish.get(offset, 0)
        raise Unmodelled

    def write_reg(self, offset: int, value: int) -> None:
        nrf53 = self.chip == "nrf5340"
        if offset < 0x080:
            if value & 1:
                self._task(offset)
            return
        if offset in self.events:
            self.events[offset] = value & 1
            self._update_irq()
            return
        mask = 0x3 | (((1 << self.cc_count) - 1) << 16)
        if offset == 0x304:
            self.inten |= value & mask
        elif offset == 0x308:
            self.inten &= ~value
        elif offset == 0x340:
            self.evten = value & mask
        elif offset == 0x344:
            self.evten |= value & mask
        elif offset == 0x348:
            self.evten &= ~value
        elif offset == 0x508:
            if self.started:
                log.warning("RTC PRESCALER written while the RTC runs: ignored (PS: must be "
                            "written when stopped)", rtc=self.name)
                return
            self._settle()
            self.prescaler = value & 0xFFF
        elif 0x540 <= offset < 0x540 + 4 * self.cc_count:
            self._write_cc((offset - 0x540) // 4, value)
            return
        elif nrf53 and offset == 0x200:
            self.shorts = value & ((1 << self.cc_count) - 1)
        elif nrf53 and (0x080 <= offset < 0x100 or 0x180 <= offset < 0x200):
            _store_dppi(self, offset, value)
        else:
            raise Unmodelled
        self._update_irq()
        self._reschedule()
