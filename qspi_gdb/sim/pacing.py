"""While the core runs, the virtual board's clock follows wall time.

A host drives a running target by waiting in wall time: it resumes the core, sleeps until it
expects the target to be where it wants it (the loader's own clock and the flash's busy
estimates say when), and then halts it by request. On silicon the target runs for exactly that
wall time. The virtual board keeps one modelled clock, which it otherwise moves only by what
things cost (DAP transactions, instructions, flash busy time), so without care a host's sleep
would either be free (the board fast-forwards through flash busy time in a fraction of the wall
time and then idles at no cost) or meaningless.

The rule, the one a real target obeys: from the moment the core starts running, modelled time
may not run ahead of wall time. The pacer runs the core up to `anchor + wall elapsed`; a core
asleep with nothing due before that limit sleeps until it (time passes while the host waits), a
busy core executes until it. If the host interrupts after d seconds of wall time, the core has
run d modelled seconds, as on silicon. Only when the emulation cannot keep up (a busy core is
slower to model than real time) does the modelled clock fall behind wall time; that lag is
counted (`stats["pacing_lag_s"]`) and the host then simply sees the target a little less far
along, as with a slower target. DAP traffic while the core runs (OpenOCD's polls) still costs
its probe time; the core then waits for wall time to catch up.

The test bed's own upkeep is not target time: host time the core model spends dropping stale
translations of memory the debugger wrote (`CortexM.upkeep_s`, ~ms per 64 KiB buffer) is taken
out of the wall time the core may run.

A test may let the modelled clock run faster than wall time while the core runs (`rate`,
`qspi-gdb sim --time-rate`): a 52 s chip erase then takes 13 s at rate 4. The product's waits
are planned from the loader's clock, so it simply finds the work further along; the board's
modelled figures are then not what a real target would show (tests assert correctness only).

While the core is halted nothing is paced: the clock moves only by what the probe is charged,
whatever the test bed's own (slower) wall time for the same work.
"""

from __future__ import annotations

import time

MAX_SLEEP_S = 0.005  # how long the server may block before pacing again (an idle core)


MAX_RATE = 1000.0  # a guard against typos in --time-rate (the tests use 8)


def check_rate(rate: float) -> None:
    """ValueError unless 0 < rate <= MAX_RATE (NaN included)."""
    if not 0 < rate <= MAX_RATE:
        raise ValueError(f"must be > 0 and <= {MAX_RATE:g}")


class Pacer:
    def __init__(self, board, *, slice_s: float = 0.002, rate: float = 1.0) -> None:
        check_rate(rate)
        self.board = board
        self.slice_s = slice_s
        self.rate = rate  # modelled seconds per wall second while the core runs
        self._anchor: tuple[float, float] | None = None  # (wall, modelled) at resume
        board.stats.setdefault("pacing_lag_s", 0.0)

    @property
    def running(self) -> bool:
        """The core runs (it is paced): neither halted nor locked up."""
        core = self.board.core
        return not core.halted and not core.lockup

    def limit(self) -> float | None:
        """The modelled time the running core may reach now (None: the core is not running)."""
        if not self.running:
            self._anchor = None
            return None
        # Host time the board spends on its own upkeep (the core model's translation cache)
        # does not exist on silicon: it is not wall time the target runs.
        now_wall = time.perf_counter() - self.board.core.upkeep_s
        if self._anchor is None:
            self._anchor = (now_wall, self.board.clock.now)
        wall0, model0 = self._anchor
        return model0 + (now_wall - wall0) * self.rate

    def catch_up(self, max_wall_s: float | None = None) -> float | None:
        """Run the core up to the wall-time limit (within max_wall_s of host time). Returns how
        long the server may sleep before the core needs time again (None: not running)."""
        limit = self.limit()
        if limit is None:
            return None
        board, clock = self.board, self.board.clock
        if clock.now >= limit:  # ahead (probe traffic moved the clock): wait for wall time
            return min(MAX_SLEEP_S, (clock.now - limit) / self.rate)
        board.service(max_wall_s or self.slice_s, until=limit)
        if not self.running:
            self._anchor = None
            return None
        behind = limit - clock.now
        if behind > 0.001:  # could not keep up within the slice: count what is still missing
            wall0, model0 = self._anchor
            self._anchor = (wall0, model0 - behind)  # lag is lost, not owed: never catch up
            board.stats["pacing_lag_s"] += behind
            return 0.0
        due = clock.next_event_time()
        core = board.core
        if core.sleeping and not core.wake_pending():
            if due is None:
                return MAX_SLEEP_S
            return min(MAX_SLEEP_S, max(0.0, due - clock.now) / self.rate)
        return 0.0005
