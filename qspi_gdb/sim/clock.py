"""The virtual board's single modelled clock.

Everything that takes time on silicon (debug-wire cycles, CPU instructions, QSPI SCK cycles,
flash busy time) moves this clock forward; nothing reads wall time. Things that happen *at* a
time (a QSPI transfer finishing, a timer compare) are scheduled as events and fire, in time
order, while the clock passes them. Continuous listeners (the NOR chip's `advance`) see every
step as a delta.

Rules: an event callback may schedule or cancel events, but must not advance the clock itself
(that would nest time); it runs with `now` equal to its due time.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

# The queue is rebuilt without cancelled events when it has grown to this many entries and to
# twice its size after the last rebuild. A TIMER capture moves that channel's compare event to
# the next 32-bit wrap (~4295 s ahead), and the loader captures at every time read; behind an
# earlier live event (an RTC overflow) the cancelled ones never reach the head, and an 8 MiB
# flash piled up 120,000 of them: longer GC passes, then a 0.13 s drain at the loader's exit,
# with the board's clock following wall time meanwhile.
COMPACT_MIN_EVENTS = 1024


class Event:
    """A callback due at `when`; cancel() drops it (it stays queued until the clock passes it
    or the queue is compacted)."""

    __slots__ = ("when", "seq", "callback", "cancelled")

    def __init__(self, when: float, seq: int, callback: Callable[[], None]) -> None:
        self.when = when
        self.seq = seq
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Clock:
    """Modelled time in seconds (float; ns resolution holds for hours)."""

    def __init__(self) -> None:
        self._now = 0.0
        # (when, seq, event): tuples compare in C, and the clock orders thousands of timer
        # events per modelled second while a loader waits on its heartbeat
        self._events: list[tuple[float, int, Event]] = []
        self._seq = itertools.count()
        self._listeners: list[Callable[[float], None]] = []
        self._advancing = False
        self._compact_at = COMPACT_MIN_EVENTS

    @property
    def now(self) -> float:
        return self._now

    def on_advance(self, listener: Callable[[float], None]) -> None:
        """Call listener(delta_seconds) for every forward step of the clock."""
        self._listeners.append(listener)

    def call_at(self, when: float, callback: Callable[[], None]) -> Event:
        """Run callback when the clock reaches `when` (immediately due if already past)."""
        event = Event(max(when, self._now), next(self._seq), callback)
        heapq.heappush(self._events, (event.when, event.seq, event))
        if len(self._events) >= self._compact_at:
            self._compact()
        return event

    def _compact(self) -> None:
        """Drop cancelled events (amortised: the next rebuild waits until the queue doubles)."""
        self._events = [entry for entry in self._events if not entry[2].cancelled]
        heapq.heapify(self._events)
        self._compact_at = max(COMPACT_MIN_EVENTS, 2 * len(self._events))

    def call_after(self, delay: float, callback: Callable[[], None]) -> Event:
        return self.call_at(self._now + max(0.0, delay), callback)

    def next_event_time(self) -> float | None:
        """Due time of the earliest pending (not cancelled) event, or None."""
        events = self._events
        while events and events[0][2].cancelled:
            heapq.heappop(events)
        return events[0][0] if events else None

    def advance(self, seconds: float) -> None:
        """Move the clock forward by `seconds` (>= 0), firing due events on the way."""
        if seconds < 0:
            raise ValueError(f"clock cannot go backwards ({seconds} s)")
        self.advance_to(self._now + seconds)

    def advance_to(self, when: float) -> None:
        """Move the clock to absolute time `when`; a time in the past only fires due events."""
        if self._advancing:
            raise RuntimeError("Clock.advance called from inside a clock event or listener")
        self._advancing = True
        try:
            while True:
                due = self.next_event_time()
                if due is None or due > when:
                    break
                _, _, event = heapq.heappop(self._events)
                self._move(event.when)
                event.callback()
            self._move(when)
        finally:
            self._advancing = False

    def run_until_idle(self, limit: float | None = None) -> None:
        """Fire every pending event (up to absolute time `limit`), moving time as needed."""
        while (due := self.next_event_time()) is not None and (limit is None or due <= limit):
            self.advance_to(due)

    def _move(self, when: float) -> None:
        delta = when - self._now
        if delta > 0:
            self._now = when
            for listener in self._listeners:
                listener(delta)
