"""Register files: peripherals whose registers firmware configures at boot but whose function
no program run on the virtual board relies on (GPIOTE, TEMP, CACHE, OSCILLATORS / REGULATORS,
CTRL-AP mailbox, IPC), and the undocumented addresses the nRF errata workarounds touch.

A register file keeps what is written (masked to the documented bits) and reads back its reset
value until then; INTENSET / INTENCLR keep INTEN. Its events are never generated and its tasks
do nothing: a triggered task is logged once (`log.warning`), so a program that waits for the
result sees a hang that explains itself. Offsets, reset values and access come from the MDK
headers and SVD files of nrfx (nrf52840.h / .svd, nrf5340_application.h / .svd); an offset not
listed faults, as everywhere on the virtual board.

`errata_words` are addresses the nrfx MDK's SystemInit writes or reads for a documented erratum
although the product specification lists no register there: writes are ignored and reads
return 0, which the workarounds take as "condition not present". Each is named by its erratum.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..log import get_logger
from .periph import Peripheral, Unmodelled, _store_dppi, _written_inten

log = get_logger(__name__)


@dataclass(frozen=True)
class Reg:
    reset: int = 0
    mask: int = 0xFFFFFFFF
    kind: str = "rw"  # rw, ro, task, event, inten (0x300), intenset, intenclr, dppi


def _array(base: int, count: int, reg: Reg, stride: int = 4) -> dict[int, Reg]:
    return {base + stride * i: reg for i in range(count)}


TASK, EVENT, RO = Reg(kind="task"), Reg(mask=1, kind="event"), Reg(kind="ro")
INTENSET, INTENCLR, INTEN = Reg(kind="intenset"), Reg(kind="intenclr"), Reg(kind="inten")
DPPI = Reg(mask=0x800000FF, kind="dppi")


class RegisterFile(Peripheral):
    def __init__(self, name: str, regs: dict[int, Reg]) -> None:
        self.name = name
        self.regs = regs
        self._warned: set[int] = set()
        self.reset()

    def reset(self) -> None:
        self.values = {off: reg.reset for off, reg in self.regs.items()}
        self.inten = 0
        self.subscribe: dict[int, int] = {}
        self.publish: dict[int, int] = {}

    def read_reg(self, offset: int) -> int:
        reg = self.regs.get(offset)
        if reg is None:
            raise Unmodelled
        if reg.kind == "task":
            return 0
        if reg.kind in ("inten", "intenset", "intenclr"):
            return self.inten
        if reg.kind == "dppi":
            return (self.subscribe if offset < 0x100 else self.publish).get(offset, 0)
        return self.values[offset]

    def write_reg(self, offset: int, value: int) -> None:
        reg = self.regs.get(offset)
        if reg is None:
            raise Unmodelled
        if reg.kind == "task":
            if value & 1 and offset not in self._warned:
                self._warned.add(offset)
                log.warning("task of a register-file peripheral does nothing (not modelled)",
                            peripheral=self.name, task=f"+0x{offset:03X}")
        elif reg.kind in ("inten", "intenset", "intenclr"):
            mask = sum(1 << ((off - 0x100) // 4) for off, r in self.regs.items()
                       if r.kind == "event")
            self.inten = _written_inten(offset, value, self.inten, mask, True)
        elif reg.kind == "dppi":
            _store_dppi(self, offset, value)
        elif reg.kind != "ro":
            self.values[offset] = value & reg.mask


def gpiote(chip: str) -> RegisterFile:
    """GPIOTE (nRF52840 PS §6.10, nRF5340 GPIOTE): tasks, events, INTENSET/CLR, CONFIG[8]."""
    regs = {**_array(0x000, 24, TASK), **_array(0x100, 8, EVENT), 0x17C: EVENT,
            0x304: INTENSET, 0x308: INTENCLR, **_array(0x510, 8, Reg(mask=0x00131F33))}
    if chip == "nrf5340":
        regs.update({**_array(0x080, 24, DPPI), **_array(0x180, 8, DPPI), 0x1FC: DPPI,
                     0x504: Reg(reset=1, mask=1)})  # LATENCY
        return RegisterFile("GPIOTE0", regs)
    return RegisterFile("GPIOTE", regs)


def temp() -> RegisterFile:
    """nRF52840 TEMP (PS §6.26): SystemInit copies the FICR trims into A0..A5, B0..B5,
    T0..T4 (erratum 66); reset values from the SVD."""
    a = (0x326, 0x348, 0x3AA, 0x40E, 0x4BD, 0x5A3)
    b = (0x3FEF, 0x3FBE, 0x3FBE, 0x012, 0x124, 0x27C)
    t = (0xE2, 0x00, 0x19, 0x3C, 0x50)
    regs = {0x000: TASK, 0x004: TASK, 0x100: EVENT, 0x304: INTENSET, 0x308: INTENCLR,
            0x508: RO,
            **{0x520 + 4 * i: Reg(v, 0xFFF) for i, v in enumerate(a)},
            **{0x540 + 4 * i: Reg(v, 0x3FFF) for i, v in enumerate(b)},
            **{0x560 + 4 * i: Reg(v, 0xFF) for i, v in enumerate(t)}}
    return RegisterFile("TEMP", regs)


def cache() -> RegisterFile:
    """nRF5340 CACHE (application core): ENABLE and the profiling / control registers;
    enabling it changes nothing in the model (no cache is modelled, reads go to memory)."""
    regs = {**_array(0x400, 8, RO), 0x500: Reg(mask=1), 0x504: Reg(kind="task"),
            0x508: Reg(kind="task"), 0x50C: Reg(mask=1), 0x510: Reg(kind="task"),
            0x514: Reg(mask=1), 0x518: Reg(mask=1), 0x51C: Reg(mask=1), 0x520: Reg(mask=1)}
    return RegisterFile("CACHE", regs)


def oscillators_regulators() -> RegisterFile:
    """nRF5340 OSCILLATORS and REGULATORS share 0x50004000 (MDK: NRF_OSCILLATORS_S_BASE ==
    NRF_REGULATORS_S_BASE). Erratum 160 (and 64/69 on older builds) write the undocumented
    offsets 0x70C and 0x93C / 0x73C: accepted and ignored, read as 0."""
    regs = {0x5C4: Reg(), 0x6C0: Reg(mask=1), 0x6D0: Reg(mask=3),  # XOSC32MCAPS, XOSC32KI
            0x428: RO, 0x500: Reg(kind="task"), 0x510: Reg(),  # MAINREGSTATUS, SYSTEMOFF, POFCON
            0x704: Reg(mask=1), 0x904: Reg(mask=1), 0xB00: Reg(mask=1),  # DCDCEN x3
            0xB40: Reg(reset=1, mask=1),  # VREGH.EXTSILENTEN
            0x70C: Reg(kind="ro"), 0x73C: Reg(kind="ro"), 0x93C: Reg(kind="ro")}  # errata
    return RegisterFile("OSCILLATORS/REGULATORS", regs)


def ctrlap() -> RegisterFile:
    """nRF5340 CTRL-AP peripheral (CPU side): the mailbox and the APPROTECT / SECUREAPPROTECT
    / ERASEPROTECT registers SystemInit's nrf53_handle_approtect() writes."""
    regs = {0x100: EVENT, 0x104: EVENT, 0x300: INTEN, 0x304: INTENSET, 0x308: INTENCLR,
            0x400: RO, 0x404: RO, 0x480: Reg(), 0x484: RO,
            0x500: Reg(mask=1), 0x504: Reg(), 0x540: Reg(mask=1), 0x544: Reg(),
            0x548: Reg(mask=1), 0x54C: Reg(), 0x600: RO}
    return RegisterFile("CTRLAP", regs)


def ipc() -> RegisterFile:
    """nRF5340 IPC (application core): no network core is modelled, so SEND reaches nobody
    and nothing is ever received."""
    regs = {**_array(0x000, 16, TASK), **_array(0x080, 16, DPPI), **_array(0x100, 16, EVENT),
            **_array(0x180, 16, DPPI), 0x300: INTEN, 0x304: INTENSET, 0x308: INTENCLR,
            0x30C: RO, **_array(0x510, 16, Reg(mask=0xFFFF)),
            **_array(0x590, 16, Reg(mask=0xFFFF)), **_array(0x610, 2, Reg())}
    return RegisterFile("IPC", regs)


# (address, erratum) of undocumented words outside any modelled block: nRF5340 application
# core, nrfx MDK system_nrf5340_application.c (hal_nordic, nrfx 3.x) and nrf53_erratas.h
NRF5340_ERRATA_WORDS = (
    (0x50032420, "140: bit 31 = reset during LFRC calibration (read)"),
    (0x50002118, "160"), (0x50002124, "160"), (0x5000212C, "160"),
    (0x50101110, "160"), (0x502012A0, "160"),
)


class ErrataWord(Peripheral):
    """One undocumented word an erratum workaround touches: write-ignore, read-0."""

    size = 4

    def __init__(self, erratum: str) -> None:
        self.name = f"erratum {erratum}"

    def read_reg(self, offset: int) -> int:
        if offset:
            raise Unmodelled
        return 0

    def write_reg(self, offset: int, value: int) -> None:
        if offset:
            raise Unmodelled
