"""The probe table: what a debug probe and OpenOCD 0.12's driver for it cost per SWD
transaction, per USB exchange and per halt the target makes itself.

One table for the product's time estimate (`qspi_gdb.flash.estimate`, the dry run's figure) and
the virtual board's clock (issue 11 charges its DAP traffic by these profiles), so the estimate
and the bench cannot disagree about what a probe costs. Pure data: this module imports no other
module of the product (the virtual board may import it).

Constants and their sources (OpenOCD = openocd-org/openocd tag v0.12.0, paths under src/;
CMSIS-DAP = ARM-software/CMSIS-DAP v2.1.2):

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
| CMSIS-DAP v2 high speed round trip per packet | 0.2 ms | HS microframe 125 us; ~0.19 ms per op measured by probe-rs on HS CMSIS-DAP v2; "a few hundred us" between transfers (MCU-Link, pyOCD) |
| Target poll interval (halt detection) | 100 ms | target/target.h:805 TARGET_DEFAULT_POLLING_INTERVAL; `poll_period` does not change it (measured, /work/shared/SIM_WIRE_NOTES.md) |
| Network round trip (remote profile) | 10 ms | a GDB server across a network (issue 11's scenario); bandwidth 100 Mbit/s (an assumption) |
| GDB remote exchanges | 1 network round trip each (no-ack mode); `X` answered before the SWD write | measured with GDB 13.1 + OpenOCD 0.12 (`set debug remote 1`); server/gdb_server.c:1617-1700 |
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SWD_CLOCKS = 46  # one SWD transaction: request, turnarounds, ACK, 32 data bits, parity
POLL_INTERVAL_S = 0.100  # OpenOCD 0.12 TARGET_DEFAULT_POLLING_INTERVAL


@dataclass(frozen=True)
class ProbeProfile:
    """One probe + OpenOCD driver combination (sources in the module table)."""

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
    halt_poll_s: float = POLL_INTERVAL_S  # a halt the target makes itself is seen at this poll
    network_rtt_s: float = 0.0  # >0: a GDB server reached over a network
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

    def word_s(self) -> float:
        """Seconds per 32-bit word moved through the core's MEM-AP in a long run of writes
        (TAR auto-increment): its SWD clocks plus its share of the batch's USB exchange."""
        clocks = self.transaction_clocks(True, 0)
        per = clocks / self.adapter_hz
        if not self.batch:
            return per
        extra = self.batch_idle_clocks + (SWD_CLOCKS if self.write_check else 0)
        batch_s = self.exchange_s(self.batch * clocks + extra) + extra / self.adapter_hz
        return per + batch_s / self.batch


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
    "wire-only", "SWD clocks only: no USB, no halt-detection wait (for comparison)",
    halt_poll_s=0.0)

PROFILES = {p.name: p for p in (CMSIS_DAP_HS, JLINK_OB, REMOTE_10MS, WIRE_ONLY)}
DEFAULT_PROFILE = CMSIS_DAP_HS.name


def find_profile(name: str) -> ProbeProfile | None:
    return PROFILES.get(name)
