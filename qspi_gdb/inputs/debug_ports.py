"""The debug port of each nRF chip as the tool uses it below the core: which access port serves
which core, the CTRL-AP that erases and unlocks it, and the network core's Force-OFF register.
Pure data (research: /work/notes/approtect.md).

- nRF52840: AHB-AP 0 (the core), CTRL-AP 1 (nRF52840 PS "Debug and trace"; OpenOCD's nrf52.cfg).
  A protected chip hides AP 0; CTRL-AP APPROTECTSTATUS (0x00C) bit 0 reads 0 while protected.
- nRF5340: AHB-AP 0 application core, AHB-AP 1 network core, CTRL-AP 2 application, CTRL-AP 3
  network (nRF5340 PS, "Debug access port" table). A protected (or, for the network core,
  forced-off) core keeps its AHB-AP visible with CSW.DeviceEn (bit 6) = 0: what Nordic's nrfutil
  and probe-rs read on this chip. Recover the network core first: its ERASEALL erases the flash
  of both cores (Nordic, "Recovering nRF53 devices").
- RESET.NETWORK.FORCEOFF at 0x50005614: 1 = the network core is held off, 0 = released
  (nRF5340 PS; Nordic's nRF5340 production programming guide reads it through AHB-AP 0).
- ERASEALL erases the internal flash, the UICR and the RAM, never the external QSPI flash.
"""

from __future__ import annotations

from dataclasses import dataclass

AP_CSW = 0x00
AP_IDR = 0xFC
CSW_DEVICEEN = 1 << 6
CTRL_AP_APPROTECTSTATUS = 0x00C  # nRF52840
ERASEALL_TIMEOUT_S = 15.0  # OpenOCD's nrf52_recover, pyOCD and nrf-recover all wait 15 s


@dataclass(frozen=True)
class CoreDebug:
    core: str  # "application" | "network"
    mem_ap: int
    ctrl_ap: int


@dataclass(frozen=True)
class ChipDebug:
    cores: tuple[CoreDebug, ...]  # in the order recover erases them
    hides_protected_ap: bool  # nRF52840: a protected AHB-AP reads as absent
    network_forceoff: int | None = None  # RESET.NETWORK.FORCEOFF (nRF5340)

    def core(self, name: str) -> CoreDebug:
        return next(c for c in self.cores if c.core == name)


CHIPS: dict[str, ChipDebug] = {
    "nrf52840": ChipDebug((CoreDebug("application", 0, 1),), hides_protected_ap=True),
    "nrf5340": ChipDebug((CoreDebug("network", 1, 3), CoreDebug("application", 0, 2)),
                         hides_protected_ap=False, network_forceoff=0x50005614),
}
