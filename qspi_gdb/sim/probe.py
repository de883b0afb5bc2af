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

Constants and their sources (OpenOCD = openocd-org/openocd tag v0.12.0, paths under src/;
CMSIS-DAP = ARM-software/CMSIS-DAP v2.1.2; the full table is in README "Performance"):

| constant | value | source |
|---|---|---|
| SWD clocks per transaction | 46 | 8 request + 1 turnaround + 3 ACK + 32 data + 1 parity + 1 turnaround: jtag/drivers/jlink.c:2226-2244, CMSIS-DAP Firmware/Source/SW_DP.c:145-215 |
| J-Link idle clocks after a core MEM-AP access | 8 | jlink.c:2249-2251 (`ap->memaccess_tck`), target/cortex_m.c:2337 sets 8 |
| J-Link idle clocks after other APs (CTRL-AP) | 255 | target/arm_adi_v5.c:1124 (default memaccess_tck) |
| J-Link idle clocks per batch | 8 | jlink.c:2168-2172 |
| J-Link transactions per batch | 256 | jlink.c:1981 (MAX_PENDING_SCAN_RESULTS) |
| J-Link OB USB | full speed: 1 ms per exchange + bytes at 1.0 MB/s | USB 2.0 FS frames (1 ms, 64-byte bulk packets); pyOCD PR #1082 (~1 ms turnaround per phase); libjaylink swd.c:87-132 (OUT 4 + 2 x bits/8, IN bits/8 + 1 bytes). UNVERIFIED on J-Link OB hardware |
| CMSIS-DAP transfers per packet | 101 | jtag/drivers/cmsis_dap.c:1203 ((512 - 4) / 5 for 512-byte HS packets); 0.12 sends only DAP_Transfer, one packet in flight (cmsis_dap_usb_bulk.c:401-423) |
| CMSIS-DAP firmware check after a packet ending with a write | +1 transfer | CMSIS-DAP DAP.c:928-933 |
| CMSIS-DAP v2 high speed round trip per packet | 0.2 ms | HS microframe 125 us; measured 0.19 ms per op (probe-rs, HS CMSIS-DAP v2) and "a few hundred us" between transfers (MCU-Link, pyOCD) |
| Target poll interval (halt detection) | 100 ms | target/target.h:805 TARGET_DEFAULT_POLLING_INTERVAL; `poll_period` does not change it (server/server.c) |
| Network round trip (remote profile) | 10 ms | the issue's scenario; bandwidth 100 Mbit/s (an assumption) |

A batch boundary is visible on the JTAG-DP: OpenOCD ends every `dap_run` with a DPACC read of
CTRL/STAT and a DPACC read of RDBUFF (adi_v5_jtag.c:632-645 `jtagdp_transaction_endcheck`,
836-849 `jtag_dp_run`). SWD has no such pair, so those two scans are not charged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass

DP_CTRL_STAT = 0x4
DP_RDBUFF = 0xC

SWD_CLOCKS = 46
POLL_INTERVAL_S = 0.100  # OpenOCD 0.12 TARGET_DEFAULT_POLLING_INTERVAL
SELF_HALT_REASONS = ("bkpt", "dwttrap")  # halts the target makes itself (not C_HALT, step, reset)


@dataclass(frozen=True)
class ProbeProfile:
    """One probe + driver combination (see the module table for the sources)."""

    name: str
    description: str
    adapter_hz: float = 4_000_000.0  # our configs: `adapter speed 4000`
    ap_idle_clocks: int = 0  # after each access to the core's MEM-AP (AP 0)
    other_ap_idle_clocks: int = 0  # after each access to any other AP
    batch: int = 0  # transactions per USB exchange (0: no batching cost)
    batch_idle_clocks: int = 0
    round_trip_s: float = 0.0  # fixed cost of one USB exchange
    usb_bytes_per_s: float = 0.0  # >0: the exchange also moves J-Link's bit buffers at this rate
    write_check: bool = False  # CMSIS-DAP firmware reads RDBUFF after a packet ending in a write
    halt_poll_s: float = POLL_INTERVAL_S
    network_rtt_s: float = 0.0  # >0: a GDB server reached over a network (NetworkHop)
    network_bps: float = 100e6

    def transaction_clocks(self, ap: bool, apsel: int) -> int:
        if not ap:
            return SWD_CLOCKS
        return SWD_CLOCKS + (self.ap_idle_clocks if apsel == 0 else self.other_ap_idle_clocks)

    def exchange_s(self, bits: int) -> float:
        """Time of one USB exchange carrying `bits` SWD bits (besides their clocks)."""
        if not self.usb_bytes_per_s:
            return self.round_trip_s
        nbytes = math.ceil(bits / 8)
        out_bytes, in_bytes = 4 + 2 * nbytes, nbytes + 1  # libjaylink CMD 0xCF framing
        return self.round_trip_s + (out_bytes + in_bytes) / self.usb_bytes_per_s


CMSIS_DAP_HS = ProbeProfile(
    "cmsis-dap-hs", "CMSIS-DAP v2 on USB high speed (MCU-Link / LPC-Link2 class), OpenOCD 0.12 "
    "cmsis-dap driver", batch=101, round_trip_s=0.2e-3, write_check=True)
JLINK_OB = ProbeProfile(
    "jlink-ob", "SEGGER J-Link OB of the nRF DKs (USB full speed), OpenOCD 0.12 jlink driver",
    ap_idle_clocks=8, other_ap_idle_clocks=255, batch=256, batch_idle_clocks=8,
    round_trip_s=1e-3, usb_bytes_per_s=1.0e6)
REMOTE_10MS = ProbeProfile(
    "remote-10ms", "a GDB server 10 ms round trip away on the network, driving a CMSIS-DAP v2 "
    "high-speed probe", batch=101, round_trip_s=0.2e-3, write_check=True, network_rtt_s=0.010)
WIRE_ONLY = ProbeProfile(
    "wire-only", "SWD clocks only: no USB, no halt-detection wait (the clock before the honest "
    "model; for comparison)", halt_poll_s=0.0)

PROFILES = {p.name: p for p in (CMSIS_DAP_HS, JLINK_OB, REMOTE_10MS, WIRE_ONLY)}
DEFAULT_PROFILE = CMSIS_DAP_HS.name


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
