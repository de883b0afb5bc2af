"""What a real debug probe costs, charged to the virtual board's clock (the "honest clock").

The board sees OpenOCD's DAP transactions over its JTAG-DP test wire. A real probe runs the same
transactions over SWD and pays, on top of the SWD clocks of each transaction:

- idle clocks the driver appends after AP accesses (OpenOCD's J-Link driver),
- one USB round trip per batch of transactions (each OpenOCD `dap_run` is split into packets of
  the driver's batch size; each packet is a request/response over USB),
- the halt-detection wait: OpenOCD 0.12 notices a halt the target makes itself (a `bkpt`) only
  at its next target poll, every 100 ms; a halt the host requests is acted on at once,
- for a GDB server reached over a network: one round trip per GDB remote packet exchange
  (`NetworkHop`, fed by a proxy that sits where the network would be: `qspi_gdb.sim.nethop`).

The profiles and their constants, each with its source, are one table for the product's time
estimate and this clock: `qspi_gdb.inputs.probes` (README "Performance").

A batch boundary is visible on the JTAG-DP: OpenOCD ends every `dap_run` with a DPACC read of
CTRL/STAT and a DPACC read of RDBUFF (adi_v5_jtag.c:632-645 `jtagdp_transaction_endcheck`,
836-849 `jtag_dp_run`). SWD has no such pair, so those two scans are not charged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, MutableMapping

from qspi_gdb.inputs.probes import (
    DEFAULT_PROFILE,
    POLL_INTERVAL_S,
    PROFILES,
    SWD_CLOCKS,
    ProbeProfile,
)

__all__ = ["DEFAULT_PROFILE", "POLL_INTERVAL_S", "PROFILES", "SWD_CLOCKS", "ProbeClock",
           "ProbeProfile", "get_profile"]

DP_CTRL_STAT = 0x4
DP_RDBUFF = 0xC
SELF_HALT_REASONS = ("bkpt", "dwttrap")  # halts the target makes itself (not C_HALT, step, reset)


def get_profile(name: str) -> ProbeProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown probe profile {name!r} (known: {', '.join(PROFILES)})") from None


class ProbeClock:
    """Charges each DAP transaction, batch and halt detection of one profile to a board clock.

    `advance(seconds)` moves the board's clock; `stats` receives the counters (usb_round_trips,
    noticed_halts, halt_wait_s, probe_clocks).
    """

    def __init__(self, profile: ProbeProfile, advance: Callable[[float], None],
                 now: Callable[[], float], stats: MutableMapping) -> None:
        self.profile = profile
        self._advance = advance
        self._now = now
        self.stats = stats
        self._clock_s = 1.0 / profile.adapter_hz
        self._n = 0  # transactions in the current batch (run)
        self._bits = 0  # SWD bits in the current J-Link batch
        self._last_write = False
        self._held_ctrl_stat = False  # a DP CTRL/STAT read that may open a run boundary
        # halt detection
        self._self_halt_at: float | None = None
        self._last_poll: float | None = None
        for key in ("usb_round_trips", "noticed_halts", "halt_wait_s", "probe_clocks"):
            stats.setdefault(key, 0)

    # -- transactions ---------------------------------------------------------------------
    def transaction(self, ap: bool, apsel: int, rnw: bool, reg: int) -> None:
        """One DPACC/APACC scan of the test wire (apsel: the AP selected for APACC)."""
        if self._held_ctrl_stat:
            self._held_ctrl_stat = False
            if not ap and rnw and reg == DP_RDBUFF:
                self._end_batch()  # OpenOCD's end-of-run check: a JTAG-only pair
                return
            self._charge(False, 0, True)
        if not ap and rnw and reg == DP_CTRL_STAT:
            self._held_ctrl_stat = True
            return
        self._charge(ap, apsel, rnw)

    def _charge(self, ap: bool, apsel: int, rnw: bool) -> None:
        p = self.profile
        clocks = p.transaction_clocks(ap, apsel)
        self._n += 1
        self._bits += clocks
        self._last_write = not rnw
        if p.batch and self._n % p.batch == 0:
            clocks += self._packet_done()
        self.stats["probe_clocks"] += clocks
        self._advance(clocks * self._clock_s)

    def _packet_done(self) -> int:
        """A full packet/batch went out: its USB exchange; returns extra SWD clocks."""
        p = self.profile
        extra = p.batch_idle_clocks + (SWD_CLOCKS if p.write_check and self._last_write else 0)
        self.stats["usb_round_trips"] += 1
        self._advance(p.exchange_s(self._bits + extra))
        self._bits = 0
        return extra

    def _end_batch(self) -> None:
        p = self.profile
        if p.batch and self._n % p.batch:
            extra = self._packet_done()
            self.stats["probe_clocks"] += extra
            self._advance(extra * self._clock_s)
        self._n = 0
        self._bits = 0

    # -- halt detection -----------------------------------------------------------------------
    def core_halted(self, reason: str) -> None:
        """The core entered Debug state; a halt the target made itself waits for the poll."""
        if reason in SELF_HALT_REASONS and self.profile.halt_poll_s:
            self._self_halt_at = self._now()

    def halt_requested(self) -> None:
        """The debugger wrote C_HALT: a halt it asked for is seen at once (OpenOCD polls right
        after its halt request, server/gdb_server.c:3714-3729), also one the target made just
        before."""
        self._self_halt_at = None

    def dhcsr_read(self, core_halted: bool) -> None:
        """The debugger read DHCSR: while the core runs that is OpenOCD's poll; the first read
        after a self-made halt is the poll that notices it, on OpenOCD's 100 ms grid."""
        period = self.profile.halt_poll_s
        if not core_halted:
            self._last_poll = self._now()
            return
        if self._self_halt_at is None or not period:
            return
        halted_at, self._self_halt_at = self._self_halt_at, None
        if self._last_poll is None:
            noticed = halted_at + period
        else:
            periods = max(1, math.ceil((halted_at - self._last_poll) / period - 1e-9))
            noticed = self._last_poll + periods * period
        wait = max(0.0, noticed - self._now())
        self.stats["noticed_halts"] += 1
        self.stats["halt_wait_s"] += wait
        self._last_poll = noticed
        if wait:
            self._advance(wait)
