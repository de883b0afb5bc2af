"""How long a flash job takes on a real probe: the dry run's estimate.

One timing model, stated once, for the dry run and the benchmark (tests/bench/bench_flash.py
compares it with the virtual board's modelled clock, which charges the same probe profiles,
`qspi_gdb.inputs.probes`). The job is timed from the moment the chip is detected (OpenOCD's and
GDB's start-up, the loader download and the detection are not in it) to the end of the verify:

- reading: the on-target CRC32 of every image sector (skip-unchanged; a dry run cannot know
  which sectors already hold the image, so it assumes none does) and the bytes around the image
  that read-modify-write keeps, read over QSPI and the kept bytes moved over SWD;
- writing: erase + program, pipelined by the loader (the host fills the next RAM buffer while
  the flash works), so max(flash busy time, transfer time + loader calls x per-call cost); a
  chip erase must end before the first page is programmed and the transfer overlaps it only
  by filling the loader's RAM buffers: chip erase + max(program, transfer + calls - buffers).
  The plan's chip-erase choice weighs the same two figures (`link_s_per_byte`). Flash
  busy is the part's typical erase and page-program times from its SFDP (what the plan sums);
  the transfer is the programmed bytes at the probe's per-word cost; each loader stop costs the
  mailbox traffic of a stop (loader ABI 2: the host halts the running loader by request, which
  the debugger acts on at once; ABI 1's `bkpt` cost a wait for OpenOCD 0.12's 100 ms poll);
- verifying: the CRC32 of every written range over QSPI, plus its calls.

Model constants (besides the probe table):

| constant | value | source |
|---|---|---|
| loader data buffer | 32 KiB | loader_fw/src/chip.h QL_BUF_SIZE (one program call per buffer) |
| loader RAM buffers (dry run) | 6 x 32 KiB | loader_fw/src/chip.h QL_NBUF for the nRF52840 (14 on the nRF5340; a flash uses the loader's own count): what the host can send while a chip erase runs |
| erase work per call | 64 KiB | qspi_gdb/loader/pipeline.py: erases go out in 64 KiB units |
| DAP transactions per loader stop | 200 | measured (ABI 2) through OpenOCD 0.12 and GDB 13.1 on sim-nrf52840-32mb, 2026-12-04: flashes of 64 KiB and 256 KiB of random data took 5 and 14 stops and 23,350 and 74,873 DAP transactions; (difference of transactions - difference of data words written) / difference of stops = (51,523 - 49,755) / 9 = 196 |
| CRC32 sectors per call | 8192 | loader CRC_LIST: count <= QL_BUF_SIZE / 4 |
| a stop waits for a halt the target makes itself | no (ABI 2) | loader_fw/README.md "Protocol (ABI 2)": the loader runs on and the host halts it by request; ABI 1 ended each call in a `bkpt` seen at OpenOCD 0.12's poll (SIM_WIRE_NOTES.md) |

`estimate(plan, config, profile)` returns the parts of the figure (`Estimate`), so a bench row
can show each beside what the virtual board's clock measured. The loader-protocol constants
(the first five rows) are this module's assumptions about the pipeline: a change of the loader
protocol changes CALL_ENDS_BY_SELF_HALT, DAP_PER_CALL and the call counts here, in the same
change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from qspi_gdb.flash.plan import Plan
from qspi_gdb.flash.rules import pipelined_write_s
from qspi_gdb.inputs.flash_config import MODE_LINES, FlashConfig
from qspi_gdb.inputs.probes import DEFAULT_PROFILE, PROFILES, ProbeProfile

BUFFER_BYTES = 32 * 1024  # loader_fw/src/chip.h QL_BUF_SIZE
PREFILL_BYTES = 6 * BUFFER_BYTES  # the loader's RAM buffers on the nRF52840 (the fewer)
ERASE_PER_CALL = 64 * 1024  # loader/pipeline.py: one call per 64 KiB of erase work
DAP_PER_CALL = 200  # DAP transactions of one loader stop (ABI 2, measured: module table)
CRC_SECTORS_PER_CALL = 8192  # CRC_LIST count <= QL_BUF_SIZE / 4
CALL_ENDS_BY_SELF_HALT = False  # ABI 2: halted by request; ABI 1's `bkpt` waited for the poll

# The probe profile assumed for an OpenOCD interface name (a virtual board: the probe its clock
# models by default). Interfaces not listed get the default profile, and the text says so.
INTERFACE_PROFILES = {"jlink": "jlink-ob", "cmsis-dap": "cmsis-dap-hs"}


@dataclass(frozen=True)
class Estimate:
    """A typical time, in seconds, and what it is made of."""

    profile: ProbeProfile
    profile_reason: str  # why this profile: "--interface jlink", "virtual board", ...
    read_s: float
    flash_busy_s: float  # typical erase + program time of the chip
    transfer_s: float  # programmed bytes over SWD
    calls: int  # loader calls of the whole job
    call_s: float  # cost of one call
    verify_s: float
    read_calls: int = 0
    verify_calls: int = 0
    chip_erase_s: float = 0.0  # part of flash_busy_s that must end before programming starts
    prefill_s: float = 0.0  # transfer the loader's RAM buffers take while the chip erase runs

    @property
    def write_s(self) -> float:
        """Erase + program, pipelined: the flash and the host work at the same time; a chip
        erase first, overlapped only by filling the loader's buffers."""
        write_calls = self.calls - self.read_calls - self.verify_calls
        return pipelined_write_s(self.chip_erase_s, self.flash_busy_s - self.chip_erase_s,
                                 self.transfer_s + write_calls * self.call_s,
                                 chip_erase=bool(self.chip_erase_s), prefill_s=self.prefill_s)

    @property
    def total_s(self) -> float:
        return self.read_s + self.write_s + self.verify_s

    def to_json(self) -> dict:
        return {"profile": self.profile.name, "profile_reason": self.profile_reason,
                "total_s": round(self.total_s, 3), "read_s": round(self.read_s, 3),
                "write_s": round(self.write_s, 3), "verify_s": round(self.verify_s, 3),
                "flash_busy_s": round(self.flash_busy_s, 3),
                "transfer_s": round(self.transfer_s, 3), "calls": self.calls,
                "call_s": round(self.call_s, 4)}

    def text(self) -> str:
        return (f"estimated time: {self.total_s:.1f} s with a {self.profile.name} probe "
                f"({self.profile_reason}): reading {self.read_s:.1f} s, erase + program "
                f"{self.write_s:.1f} s (flash busy {self.flash_busy_s:.1f} s, transfer "
                f"{self.transfer_s:.1f} s, {self.calls} loader calls of {self.call_s * 1e3:.0f} "
                f"ms each), verify {self.verify_s:.1f} s; from detection on, start-up not "
                "included")


def choose_profile(probe: str | None, *, virtual: bool) -> tuple[ProbeProfile, str]:
    """The profile the estimate assumes, and why (for the text). probe: a profile name, an
    OpenOCD interface name, "gdb-server", or None (the board's usual probe: a real DK's
    on-board J-Link, a virtual board's default profile)."""
    if probe in PROFILES:
        return PROFILES[probe], "as asked"
    if virtual:
        return PROFILES[DEFAULT_PROFILE], ("the probe a virtual board's clock models; its wall "
                                           "time is longer: its CPU is modelled instruction by "
                                           "instruction")
    if probe == "gdb-server":
        return PROFILES[DEFAULT_PROFILE], "assumed: the GDB server's probe is unknown"
    name = probe or "jlink"
    if name in INTERFACE_PROFILES:
        return PROFILES[INTERFACE_PROFILES[name]], f"--interface {name}" if probe else \
            "the DK's on-board J-Link"
    return PROFILES[DEFAULT_PROFILE], f"assumed: no profile for --interface {name}"


def link_s_per_byte(probe: str | None, *, virtual: bool) -> float:
    """What the link costs per programmed byte, for the plan's chip-erase choice: the profile
    `choose_profile` picks when the probe is known (a profile name, an interface with a profile,
    a virtual board's clock); when it is not (a GDB server's probe, an interface without a
    profile) the slowest modelled probe, so that a chip erase is chosen only where it pays on
    any of them (a wrongly chosen chip erase costs up to its whole time, ~52 s on MX25R6435F; a
    wrongly kept block erase only the difference of the erase times)."""
    profile, reason = choose_profile(probe, virtual=virtual)
    if reason.startswith("assumed"):
        profile = max((p for p in PROFILES.values() if not p.network_rtt_s),
                      key=lambda p: p.word_s())
    return profile.word_s() / 4


def qspi_read_s(n: int, cfg: FlashConfig) -> float:
    """Reading n bytes over QSPI in the configured read mode (data lines x SCK)."""
    return n * 8 / MODE_LINES.get(cfg.readoc, 1) / cfg.sck_frequency


def estimate(plan: Plan, cfg: FlashConfig, profile: ProbeProfile, reason: str = "",
             *, crc_check: bool = True) -> Estimate:
    """The typical time of carrying out `plan` with `profile` (see the module text).
    crc_check: the skip-unchanged CRCs are read first (not with --force or a chip erase)."""
    word_s = profile.word_s()
    call_s = (profile.halt_poll_s if CALL_ENDS_BY_SELF_HALT else 0.0) + DAP_PER_CALL * word_s
    image_bytes = sum(c.range.length for c in plan.checks)
    crc_calls = math.ceil(len(plan.checks) / CRC_SECTORS_PER_CALL) if crc_check else 0
    fills = plan.read_back
    read_s = (qspi_read_s(image_bytes, cfg) if crc_check else 0.0) + \
        qspi_read_s(plan.fill_bytes, cfg) + math.ceil(plan.fill_bytes / 4) * word_s
    read_calls = crc_calls + len(fills)
    programmed = sum(len(op.pages) * plan.page_size for op in plan.operations)
    blocks = sum(1 for op in plan.operations if op.erase == "64KB")
    sectors = sum(1 for op in plan.operations if op.erase == "4KB")
    erase_calls = 1 if plan.chip_erase else blocks + math.ceil(sectors * 4096 / ERASE_PER_CALL)
    program_calls = math.ceil(programmed / BUFFER_BYTES)
    write_calls = erase_calls + program_calls + (1 if plan.operations else 0)  # + wait idle
    verify_bytes = sum(r.length for r in plan.verify)
    verify_calls = math.ceil(verify_bytes / (CRC_SECTORS_PER_CALL * plan.sector_size)) \
        if verify_bytes else 0
    verify_s = qspi_read_s(verify_bytes, cfg) + verify_calls * call_s
    return Estimate(
        profile=profile, profile_reason=reason,
        read_s=read_s + read_calls * call_s,
        flash_busy_s=plan.erase_typ_s + plan.program_typ_s,
        transfer_s=math.ceil(programmed / 4) * word_s,
        calls=read_calls + write_calls + verify_calls, call_s=call_s,
        verify_s=verify_s, read_calls=read_calls, verify_calls=verify_calls,
        chip_erase_s=plan.erase_typ_s if plan.chip_erase else 0.0,
        prefill_s=math.ceil(PREFILL_BYTES / 4) * word_s)
