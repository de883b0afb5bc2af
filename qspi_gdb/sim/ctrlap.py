"""Access-port protection (APPROTECT) and the nRF CTRL-APs, as a debugger sees them.

Sources (research notes: /work/notes/approtect.md):
- nRF52840 CTRL-AP (AP 1): RESET 0x000, ERASEALL 0x004, ERASEALLSTATUS 0x008 (1 = Busy),
  APPROTECTSTATUS 0x00C (0 = protection enabled), IDR 0x0FC = 0x02880000 (nRF52840 PS "CTRL-AP -
  Control access port", register overview; OpenOCD 0.12 target/nrf52.cfg; pyOCD target_nRF52.py).
- nRF5340 CTRL-APs (AP 2 application, AP 3 network): RESET, ERASEALL, ERASEALLSTATUS (0 = Ready),
  APPROTECT.DISABLE 0x010, SECUREAPPROTECT.DISABLE 0x014, ERASEPROTECT.STATUS 0x018 (1 = disabled),
  ERASEPROTECT.DISABLE 0x01C, MAILBOX 0x020-0x02C, IDR 0x12880000 (nRF5340 PS "CTRL-AP" register
  overview). APPROTECT.STATUS at 0x00C is not in the nRF5340 table: modelled as on the nRF9160
  (bit 0 APPROTECT, bit 1 SECUREAPPROTECT, 1 = disabled), as upstream OpenOCD reads it
  (UNVERIFIED on nRF5340 silicon; the product looks at CSW.DeviceEn instead, as Nordic's tools do).
- ERASEALL erases the internal flash, the UICR and the RAM of its domain and removes the
  protection until the next reset (nRF5340 PS: it "temporarily removes the access port
  protection"); the network CTRL-AP's ERASEALL erases the flash of both cores (Nordic, "Recovering
  nRF53 devices"). The external QSPI flash is not touched: it is off-chip. It takes tERASEALL =
  173 ms (nRF5340 PS, NVMC electrical specification; the same figure is assumed for the
  nRF52840, UNVERIFIED). During it the chip works in real time whatever the debugger does, so
  the board's clock follows wall time while an ERASEALL runs.
- What a protected MEM-AP looks like: on the nRF52840 the AHB-AP disappears (every register,
  IDR included, reads 0: OpenOCD then prints "Could not find MEM-AP to control the core", as
  on silicon); on the nRF5340 it stays visible with CSW.DeviceEn = 0 and every DRW/BDx access
  fails with a sticky error (probe-rs on silicon: "FAULT response").
- Protection at reset (UICR): nRF52840 build code F (the virtual board's INFO.VARIANT "AAF0",
  hardened APPROTECT) opens only when UICR.APPROTECT.PALL = 0x5A (HwDisabled) and the firmware
  writes SwDisable at start-up; nRF5340 only when UICR.APPROTECT (and SECUREAPPROTECT) =
  0x50FA50FA and the firmware writes the key. The virtual board runs no firmware from internal
  flash: the firmware's part is assumed done whenever the UICR allows it. An erased UICR
  (after ERASEALL) therefore protects the chip again at the next SYSRESETREQ or pin reset; the
  CTRL-AP's own RESET pulse keeps it open (that is what makes OpenOCD's and Nordic's recover
  sequences work on these parts; inference, UNVERIFIED).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from qspi_gdb.log import get_logger
from qspi_gdb.sim.bus import BusFault

log = get_logger("qspi_gdb.sim.ctrlap")

ERASEALL_S = 0.173  # tERASEALL (nRF5340 PS, NVMC electrical specification)

AP_CSW, AP_TAR, AP_DRW, AP_BD0, AP_IDR = 0x00, 0x04, 0x0C, 0x10, 0xFC
CSW_DEVICEEN = 1 << 6
CSW_SPIDEN = 1 << 23

UNPROTECTED_53 = 0x50FA50FA  # nRF5340 UICR APPROTECT/SECUREAPPROTECT "Unprotected"
HW_DISABLED_52 = 0x5A  # nRF52840 UICR.APPROTECT.PALL "HwDisabled"
UICR_APPROTECT_52 = 0x208
UICR_APPROTECT_53 = 0x000
UICR_SECUREAPPROTECT_53 = 0x01C

APPLICATION, NETWORK = "application", "network"
DOMAINS = {"nrf52840": (APPLICATION,), "nrf5340": (APPLICATION, NETWORK)}


@dataclass
class Domain:
    """One protected domain: the application core (both chips) or the nRF5340 network core."""

    name: str
    uicr: dict[int, int]  # the domain's UICR words (erased: absent)
    open_words: dict[int, int]  # UICR word -> the value that leaves the port open
    locked: bool = False
    eraseall_busy_until: float | None = None
    eraseall_started_wall: float = 0.0
    eraseall_started_clock: float = 0.0
    erased: int = 0  # completed ERASEALLs

    def evaluate(self) -> None:
        """At reset: protected unless every protection word holds its "open" value."""
        self.locked = any(self.uicr.get(word, 0xFFFFFFFF) & _mask(value) != value
                          for word, value in self.open_words.items())

    def protect(self) -> None:
        """What firmware writing "Protected"/"Enabled" into the UICR does (0 in each word)."""
        for word in self.open_words:
            self.uicr[word] = 0
        self.evaluate()


def _mask(value: int) -> int:
    return 0xFF if value <= 0xFF else 0xFFFFFFFF


@dataclass
class ProtectionStats:
    eraseall: list[str] = field(default_factory=list)  # domains, in the order erased


class ChipProtection:
    """The protection state of a chip and what its CTRL-APs do to it.

    board: the virtual board whose memories ERASEALL clears (internal_flash, ram, uicr, and
    `network` on the nRF5340); None for a debug port tested alone (erases then clear nothing).
    clock: the board's clock (ERASEALL's busy time); wall: the host's time (tests pass their own).
    """

    def __init__(self, chip: str, *, board=None, clock=None,
                 wall: Callable[[], float] = time.monotonic) -> None:
        self.chip = chip
        self.board = board
        self.clock = clock if clock is not None else getattr(board, "clock", None)
        self.wall = wall
        self.stats = ProtectionStats()
        self._ctrl_ap_reset = False
        uicr = getattr(getattr(board, "uicr", None), "words", None)
        if uicr is None:
            uicr = _default_uicr(chip)
        network = getattr(board, "network", None)
        if chip == "nrf52840":
            self.domains = {APPLICATION: Domain(APPLICATION, uicr,
                                                {UICR_APPROTECT_52: HW_DISABLED_52})}
        elif chip == "nrf5340":
            net_uicr = network.uicr if network is not None else {0x000: UNPROTECTED_53}
            self.domains = {
                APPLICATION: Domain(APPLICATION, uicr, {UICR_APPROTECT_53: UNPROTECTED_53,
                                                        UICR_SECUREAPPROTECT_53: UNPROTECTED_53}),
                NETWORK: Domain(NETWORK, net_uicr, {0x000: UNPROTECTED_53}),
            }
        else:
            raise ValueError(f"unknown chip {chip!r}")
        for domain in self.domains.values():
            domain.evaluate()

    # -- state ------------------------------------------------------------------------------

    def locked(self, domain: str = APPLICATION) -> bool:
        return self.domains[domain].locked

    def protect(self, domains: tuple[str, ...] | list[str]) -> None:
        """Start protected: the UICR words say so (as firmware that enabled APPROTECT left them)."""
        for name in domains:
            if name not in self.domains:
                raise ValueError(f"{self.chip} has no {name} core (cores: "
                                 f"{', '.join(self.domains)})")
            self.domains[name].protect()
        if domains:
            log.info("approtect", chip=self.chip, locked=list(domains))

    def on_system_reset(self) -> None:
        """SYSRESETREQ or a pin reset: protection re-evaluated from the UICR, except after the
        CTRL-AP's own RESET pulse, which keeps what ERASEALL opened."""
        if self._ctrl_ap_reset:
            self._ctrl_ap_reset = False
            return
        for domain in self.domains.values():
            domain.evaluate()

    def as_dict(self) -> dict:
        return {"locked": {n: d.locked for n, d in self.domains.items()},
                "eraseall": list(self.stats.eraseall)}

    # -- ERASEALL ---------------------------------------------------------------------------

    def start_eraseall(self, name: str) -> None:
        domain = self.domains[name]
        if domain.eraseall_busy_until is not None:
            return  # already running
        now = self.clock.now if self.clock is not None else 0.0
        domain.eraseall_started_clock = now
        domain.eraseall_started_wall = self.wall()
        domain.eraseall_busy_until = now + ERASEALL_S
        log.info("ctrl_ap_eraseall", chip=self.chip, domain=name)

    def eraseall_busy(self, name: str) -> bool:
        """ERASEALLSTATUS: the chip's time runs at wall speed while the erase runs."""
        domain = self.domains[name]
        if domain.eraseall_busy_until is None:
            return False
        if self.clock is not None:
            elapsed = self.wall() - domain.eraseall_started_wall
            target = domain.eraseall_started_clock + elapsed
            if target > self.clock.now:
                self.clock.advance_to(target)
            now = self.clock.now
        else:
            now = domain.eraseall_started_clock + self.wall() - domain.eraseall_started_wall
        if now < domain.eraseall_busy_until:
            return True
        self._finish_eraseall(domain)
        return False

    def _finish_eraseall(self, domain: Domain) -> None:
        domain.eraseall_busy_until = None
        domain.erased += 1
        self.stats.eraseall.append(domain.name)
        domain.uicr.clear()  # erased UICR: every word reads 0xFFFFFFFF
        board = self.board
        if board is not None:
            if domain.name == APPLICATION or self.chip == "nrf5340":
                # the network CTRL-AP's ERASEALL erases the flash of both cores
                board.erase_internal_flash()
            if domain.name == APPLICATION:
                board.ram[:] = bytes(len(board.ram))  # RAM erased (content UNVERIFIED: zeros)
            network = getattr(board, "network", None)
            if domain.name == NETWORK and network is not None:
                network.erased()
        domain.locked = False  # open until the next reset
        log.info("ctrl_ap_eraseall_done", chip=self.chip, domain=domain.name)

    # -- the debug port's view --------------------------------------------------------------

    def ctrl_ap(self, domain: str, system_reset: Callable[[], None]) -> CtrlAp:
        cls = Nrf52CtrlAp if self.chip == "nrf52840" else Nrf53CtrlAp
        return cls(self, domain, system_reset)

    def gate(self, ap, domain: str, *, powered: Callable[[], bool] = lambda: True):
        """The MEM-AP of `domain` as protection shows it."""
        return ProtectedMemAp(ap, lambda: not self.locked(domain) and powered(),
                              absent=self.chip == "nrf52840")

    def ctrl_ap_reset(self, domain: str, system_reset: Callable[[], None]) -> None:
        if domain == NETWORK:
            network = getattr(self.board, "network", None)
            if network is not None:
                network.reset()
            return
        self._ctrl_ap_reset = True
        system_reset()


def _default_uicr(chip: str) -> dict[int, int]:
    if chip == "nrf5340":
        return {UICR_APPROTECT_53: UNPROTECTED_53, UICR_SECUREAPPROTECT_53: UNPROTECTED_53}
    return {UICR_APPROTECT_52: HW_DISABLED_52}


class CtrlAp:
    """Registers common to both chips' CTRL-APs."""

    idr = 0

    def __init__(self, protection: ChipProtection, domain: str,
                 system_reset: Callable[[], None]) -> None:
        self.protection = protection
        self.domain = domain
        self.system_reset = system_reset
        self.reset_reg = 0
        self.eraseall = 0

    def read(self, reg: int) -> int:
        if reg == 0x000:
            return self.reset_reg
        if reg == 0x004:
            return self.eraseall
        if reg == 0x008:
            return int(self.protection.eraseall_busy(self.domain))
        if reg == AP_IDR:
            return self.idr
        return 0

    def write(self, reg: int, value: int) -> None:
        if reg == 0x000:
            if value & 1 and not self.reset_reg:
                self.protection.ctrl_ap_reset(self.domain, self.system_reset)
            self.reset_reg = value & 1
        elif reg == 0x004:
            if value & 1 and not self.eraseall:
                self.protection.start_eraseall(self.domain)
            self.eraseall = value & 1


class Nrf52CtrlAp(CtrlAp):
    """nRF52840 CTRL-AP (AP 1)."""

    idr = 0x02880000

    def read(self, reg: int) -> int:
        if reg == 0x00C:  # APPROTECTSTATUS: 1 = not enabled
            return 0 if self.protection.locked(self.domain) else 1
        return super().read(reg)


class Nrf53CtrlAp(CtrlAp):
    """nRF5340 CTRL-AP (AP 2 application, AP 3 network)."""

    idr = 0x12880000

    def __init__(self, protection: ChipProtection, domain: str,
                 system_reset: Callable[[], None]) -> None:
        super().__init__(protection, domain, system_reset)
        self.regs: dict[int, int] = {0x010: 0, 0x014: 0, 0x01C: 0}

    def read(self, reg: int) -> int:
        if reg == 0x00C:  # APPROTECT.STATUS as on the nRF9160 (UNVERIFIED on nRF5340)
            return 0 if self.protection.locked(self.domain) else 3
        if reg == 0x018:  # ERASEPROTECT.STATUS: 1 = ERASEPROTECT disabled
            return 1
        if 0x010 <= reg <= 0x02C:
            return self.regs.get(reg, 0)
        return super().read(reg)

    def write(self, reg: int, value: int) -> None:
        if 0x010 <= reg <= 0x02C:
            # keys and mailbox are kept; the CPU side that would match a key is not modelled
            self.regs[reg] = value & 0xFFFFFFFF
        else:
            super().write(reg, value)


class ProtectedMemAp:
    """A MEM-AP behind access-port protection.

    enabled() False: nRF52840 (absent=True) the AP answers like an empty APSEL (every register
    reads 0, writes ignored, no error); nRF5340 CSW reads with DeviceEn (and SPIDEN) 0, TAR, CFG,
    BASE and IDR stay readable, and DRW/BDx accesses raise a bus fault (the DP's STICKYERR).
    """

    def __init__(self, inner, enabled: Callable[[], bool], *, absent: bool) -> None:
        self.inner = inner
        self.enabled = enabled
        self.absent = absent

    @property
    def idr(self) -> int:
        return self.read(AP_IDR)

    def _data(self, reg: int) -> bool:
        return reg == AP_DRW or AP_BD0 <= reg <= AP_BD0 + 0xC

    def read(self, reg: int) -> int:
        if self.enabled():
            return self.inner.read(reg)
        if self.absent:
            return 0
        if self._data(reg):
            raise BusFault(self.inner.tar, False, "access port disabled (APPROTECT)")
        value = self.inner.read(reg)
        return value & ~(CSW_DEVICEEN | CSW_SPIDEN) if reg == AP_CSW else value

    def write(self, reg: int, value: int) -> None:
        if self.enabled():
            self.inner.write(reg, value)
        elif self.absent:
            return
        elif self._data(reg):
            raise BusFault(self.inner.tar, True, "access port disabled (APPROTECT)")
        else:
            self.inner.write(reg, value)
