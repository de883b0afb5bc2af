"""The nRF5340 network core, as far as a debugger on the application side can tell it apart.

Modelled (no CPU runs behind it):
- RESET.NETWORK.FORCEOFF at 0x50005614 (secure) / 0x40005614 (non-secure), reset value 1 = Hold,
  0 = Release (nRF5340 PS, RESET register overview; nrfx nrf5340_application.svd). An application
  system reset (SYSRESETREQ, pin reset) holds the network core again (upstream OpenOCD's
  nrf53.cfg notes that the application reset sets FORCEOFF; Nordic's production programming
  guide: read FORCEOFF through AHB-AP 0, 1 = Force-OFF, write 0 to leave it). 0x50005618 (written
  by the erratum 161 release sequence) is kept as written.
- Its AHB-AP (AP 1): enabled (CSW.DeviceEn = 1) only while the core is released and not
  protected; a forced-off core reads as disabled too (nrfutil protection-get notes this).
  Behind it only the core's DHCSR (halt requests are counted: the tool must never halt it) and
  AIRCR (a SYSRESETREQ is counted as a network reset); other addresses fault.
- Its UICR APPROTECT word (the network core's own UICR at 0x01FF8000 in its address space),
  used by the protection model (`qspi_gdb.sim.ctrlap`).
"""

from __future__ import annotations

from dataclasses import dataclass

from qspi_gdb.log import get_logger
from qspi_gdb.sim.bus import BusFault

log = get_logger("qspi_gdb.sim.netcore")

FORCEOFF_OFFSET = 0x614  # in the CLOCK/POWER/RESET block at 0x50005000 (0x40005000)
ERRATUM_161_OFFSET = 0x618
DHCSR = 0xE000EDF0
AIRCR = 0xE000ED0C
DBGKEY = 0xA05F0000
C_DEBUGEN, C_HALT = 1 << 0, 1 << 1
S_HALT = 1 << 17
UNPROTECTED = 0x50FA50FA


@dataclass
class NetworkStats:
    releases: int = 0  # FORCEOFF 1 -> 0
    holds: int = 0  # FORCEOFF 0 -> 1 (by a write or an application reset)
    halt_requests: int = 0  # DHCSR writes with C_HALT through its AP
    resets: int = 0  # network CTRL-AP RESET pulses and SYSRESETREQs through its AP
    erased: int = 0  # ERASEALLs of the network CTRL-AP


class NetworkCore:
    def __init__(self, *, running: bool = False) -> None:
        self.forceoff = 0 if running else 1
        self.halted = False
        self.debugen = False
        self.errata_reg = 0
        self.uicr: dict[int, int] = {0x000: UNPROTECTED}
        self.stats = NetworkStats()

    @property
    def running(self) -> bool:
        return not self.forceoff and not self.halted

    # -- application side: RESET.NETWORK ----------------------------------------------------

    def write_forceoff(self, value: int) -> None:
        value &= 1
        if value != self.forceoff:
            if value:
                self.stats.holds += 1
            else:
                self.stats.releases += 1
                self.halted = False
            log.info("network core", forceoff=value)
        self.forceoff = value

    def on_app_system_reset(self) -> None:
        self.write_forceoff(1)

    def reset(self) -> None:
        """The network core's own reset (its CTRL-AP's RESET, its SYSRESETREQ)."""
        self.stats.resets += 1
        self.halted = False
        self.debugen = False

    def erased(self) -> None:
        self.stats.erased += 1
        self.uicr.clear()

    def as_dict(self) -> dict:
        return {"forceoff": self.forceoff, "running": self.running, **vars(self.stats)}

    # -- its debug view (behind AP 1) --------------------------------------------------------

    def read(self, addr: int, size: int) -> int:
        if addr == DHCSR and size == 4:
            return (C_DEBUGEN if self.debugen else 0) | (C_HALT | S_HALT if self.halted else 0)
        raise BusFault(addr, False, "network core memory is not modelled")

    def write(self, addr: int, size: int, value: int) -> None:
        if addr == DHCSR and size == 4 and value & 0xFFFF0000 == DBGKEY:
            self.debugen = bool(value & C_DEBUGEN)
            if value & C_HALT and not self.halted:
                self.stats.halt_requests += 1
                log.warning("network core halted by the debugger")
            self.halted = bool(value & C_HALT) and self.debugen
            return
        if addr == AIRCR and size == 4 and value & 0xFFFF0004 == 0x05FA0004:
            self.reset()
            return
        raise BusFault(addr, True, "network core memory is not modelled")


class PowerResetBlock:
    """The block at 0x50005000 (CLOCK, POWER and RESET share it): RESET.NETWORK.FORCEOFF and the
    erratum 161 register here, everything else the CLOCK model's."""

    def __init__(self, clock_block, network: NetworkCore) -> None:
        self.clock_block = clock_block
        self.network = network
        self.name = getattr(clock_block, "name", "CLOCK")

    def read(self, offset: int, size: int) -> int:
        if offset & ~3 == FORCEOFF_OFFSET:
            return self.network.forceoff
        if offset & ~3 == ERRATUM_161_OFFSET:
            return self.network.errata_reg
        return self.clock_block.read(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        if offset == FORCEOFF_OFFSET and size == 4:
            self.network.write_forceoff(value)
        elif offset == ERRATUM_161_OFFSET and size == 4:
            self.network.errata_reg = value & 0xFFFFFFFF
        else:
            self.clock_block.write(offset, size, value)
