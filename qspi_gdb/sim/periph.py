"""nRF52840 / nRF5340 (application core) peripherals a loader or OpenOCD touches.

Modelled here: CLOCK (+ the POWER/RESET registers sharing its base, with POWER's SLEEPENTER /
SLEEPEXIT events), GPIO ports P0/P1, TIMER0..2, FICR and UICR (UICR writes go to the NVMC,
`qspi_gdb.sim.nvmc`). The RTC, UARTE, PPI / DPPI and the register-file peripherals have their
own modules. Register offsets follow the nrfx MDK headers
(nrf52840.h, nrf5340_application.h). Registers are 32-bit: a sub-word read returns part of the
word, a sub-word write is refused. An offset a model does not implement raises BusFault (the
board logs it): nothing reads as a silent zero.

Each peripheral is addressed by offset from its base; the board's bus maps bases (and the
nRF5340's non-secure 0x4xxxxxxx aliases) to them. Events that raise interrupts drive NVIC
lines as levels (EVENTS_x & INTEN_x), as nRF peripherals do.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ..log import get_logger
from .bus import BusFault
from .clock import Clock, Event

log = get_logger(__name__)

IrqLine = Callable[[bool], None]


class Unmodelled(Exception):
    """Raised by a register handler for an offset the model does not implement."""


class Peripheral:
    """32-bit register block; subclasses implement read_reg/write_reg on word offsets.

    Events a model generates go through `_generated(offset)` to the board's event router (PPI on
    the nRF52840, DPPI on the nRF5340; `qspi_gdb.sim.ppi`), which triggers the connected tasks
    by writing 1 to them. nRF5340 models keep their PUBLISH / SUBSCRIBE registers in `publish`
    / `subscribe` (offset -> value) for the DPPI.
    """

    name = "peripheral"
    size = 0x1000
    router = None  # set by the board

    def _generated(self, offset: int) -> None:
        """The model generated the event at `offset` (its EVENTS register was set)."""
        if self.router is not None:
            self.router.event(self, offset)

    def read(self, offset: int, size: int) -> int:
        word = offset & ~3
        try:
            value = self.read_reg(word)
        except Unmodelled:
            raise BusFault(offset, False, f"{self.name}: register +0x{word:03X} not modelled")
        if size == 4 and not offset & 3:
            return value & 0xFFFFFFFF
        shift = 8 * (offset & 3)
        return (value >> shift) & ((1 << (8 * size)) - 1)

    def write(self, offset: int, size: int, value: int) -> None:
        if size != 4 or offset & 3:
            raise BusFault(offset, True, f"{self.name}: registers take 32-bit writes only")
        try:
            self.write_reg(offset, value & 0xFFFFFFFF)
        except Unmodelled:
            raise BusFault(offset, True, f"{self.name}: register +0x{offset:03X} not modelled")

    def read_reg(self, offset: int) -> int:
        raise Unmodelled

    def write_reg(self, offset: int, value: int) -> None:
        raise Unmodelled

    def reset(self) -> None:
        pass


def _no_irq(level: bool) -> None:
    pass


# -- FICR / UICR -------------------------------------------------------------------------


class InfoBlock(Peripheral):
    """A word table (FICR, UICR); words not listed read as erased (0xFFFFFFFF). Writes go to
    `writer` (the NVMC, for the UICR) or fault (the FICR is read-only)."""

    def __init__(self, name: str, words: dict[int, int], size: int = 0x1000) -> None:
        self.name = name
        self.size = size
        self.words = dict(words)
        self.writer: Callable[[int, int, int], None] | None = None

    def read_reg(self, offset: int) -> int:
        if offset >= self.size:
            raise Unmodelled
        return self.words.get(offset, 0xFFFFFFFF)

    def write(self, offset: int, size: int, value: int) -> None:
        if self.writer is None:
            raise BusFault(offset, True, f"{self.name} is read-only")
        self.writer(offset, size, value)


def ficr_nrf52840() -> InfoBlock:
    return InfoBlock(
        "FICR",
        {
            0x010: 4096,  # CODEPAGESIZE
            0x014: 256,  # CODESIZE (pages)
            0x060: 0x5A5E_1D00,  # DEVICEID[0] (made up, stable)
            0x064: 0x0051_4D00,  # DEVICEID[1]
            0x0A0: 0xFFFFFFFF,  # DEVICEADDRTYPE
            0x100: 0x00052840,  # INFO.PART
            0x104: 0x41414630,  # INFO.VARIANT "AAF0"
            0x108: 0x00002004,  # INFO.PACKAGE QI
            0x10C: 0x00000100,  # INFO.RAM K256
            0x110: 0x00000400,  # INFO.FLASH K1024
            0x130: 0x00000008,  # errata check word 1: nRF52840 (nrf52_erratas.h)
            0x134: 0x00000003,  # errata check word 2: revision
        },
    )


def ficr_nrf5340() -> InfoBlock:
    return InfoBlock(
        "FICR",
        {
            0x130: 0x00000007,  # errata check word 1: nRF5340 (nrf53_erratas.h)
            0x134: 0x00000005,  # errata check word 2: newest build (121, 159 apply)
            0x200: 0x00000000,  # INFO.CONFIGID
            0x204: 0x5A5E_1D53,  # INFO.DEVICEID[0] (made up, stable)
            0x208: 0x0053_4000,  # INFO.DEVICEID[1]
            0x20C: 0x00005340,  # INFO.PART
            0x210: 0x514B4141,  # INFO.VARIANT "QKAA"
            0x214: 0x00002000,  # INFO.PACKAGE QK
            0x218: 0x00000200,  # INFO.RAM K512
            0x21C: 0x00000400,  # INFO.FLASH K1024
            0x220: 4096,  # INFO.CODEPAGESIZE
            0x224: 256,  # INFO.CODESIZE
            0x228: 0x00000000,  # INFO.DEVICETYPE die
        },
    )


def uicr(chip: str) -> InfoBlock:
    """Erased UICR except the access-port protection words of an unlocked (recovered) DK,
    consistent with the CTRL-AP's "not protected" status."""
    if chip == "nrf5340":
        # APPROTECT, SECUREAPPROTECT = Unprotected
        return InfoBlock("UICR", {0x000: 0x50FA50FA, 0x01C: 0x50FA50FA})
    return InfoBlock("UICR", {0x208: 0x0000005A})  # APPROTECT = HwDisabled


# -- CLOCK (+ POWER / RESET registers at the same base) ----------------------------------

HFXO_STARTUP_S = 360e-6  # HFXO start-up, typical (nRF52840 PS tSTART,HFXO; same on nRF5340)
HFINT_STARTUP_S = 3e-6  # nRF5340 HFCLKSRC=HFINT: no crystal to wait for (estimate)
HFCLK192M_STARTUP_S = 360e-6
HFCLKAUDIO_STARTUP_S = 360e-6
# LFCLK start-up by LFCLKSRC.SRC, which the chips encode differently (MDK bitfields): nRF52840
# 0 RC, 1 Xtal, 2 Synth; nRF5340 1 LFRC, 2 LFXO, 3 LFSYNT. LFRC / LFSYNT 600 us, LFXO 0.25 s
# (typical start-up times, PS LFRC / LFXO electrical specifications).
LFRC_STARTUP_S, LFXO_STARTUP_S, LFSYNT_STARTUP_S = 600e-6, 0.25, 600e-6
LF_STARTUP_S = {
    "nrf52840": {0: LFRC_STARTUP_S, 1: LFXO_STARTUP_S, 2: LFSYNT_STARTUP_S},
    "nrf5340": {1: LFRC_STARTUP_S, 2: LFXO_STARTUP_S, 3: LFSYNT_STARTUP_S},
}


class NrfClock(Peripheral):
    """CLOCK of both chips and the POWER/RESET registers that share its base address.

    HFCLKSTART starts the HFXO: EVENTS_HFCLKSTARTED after the crystal's start-up time.
    nRF5340: HFCLKCTRL selects the CPU clock (Div1 128 MHz / Div2 64 MHz, reset Div2) and
    HFCLK192MCTRL the QSPI's PCLK192M divider (reset Div4).
    """

    name = "CLOCK"

    def __init__(self, chip: str, clock: Clock, irq: IrqLine = _no_irq) -> None:
        self.chip = chip
        self.clock = clock
        self.irq = irq
        self._pending: dict[str, Event] = {}
        self.listeners: list[Callable[[], None]] = []  # told when a clock divider changes
        self.reset_reason = 0  # RESETREAS accumulates until written 1 to clear
        self.reset()

    # bit of each event in INTEN, by event register offset; POWER's SLEEPENTER (0x114, bit 5)
    # and SLEEPEXIT (0x118, bit 6) share the register with CLOCK's events on both chips
    _EVENTS52 = {0x100: 0, 0x104: 1, 0x10C: 3, 0x110: 4, 0x114: 5, 0x118: 6, 0x128: 10,
                 0x12C: 11}
    _EVENTS53 = {0x100: 0, 0x104: 1, 0x114: 5, 0x118: 6, 0x11C: 7, 0x120: 8, 0x124: 9}

    def reset(self) -> None:
        for event in self._pending.values():
            event.cancel()
        self._pending = {}
        self.events = {off: 0 for off in self._event_map()}
        self.inten = 0
        self.hfclk_run = 0
        self.hfxo_running = False
        self.lfclk_run = 0
        self.lfclk_running = False
        nrf53 = self.chip == "nrf5340"
        self.lfclksrc = 1 if nrf53 else 0  # SVD reset values
        self.lfclksrccopy = 0
        self.hfclksrc = 1  # nRF5340: HFCLKSTART starts the HFXO (SVD reset value)
        self.hfclkctrl = 1  # nRF5340: Div2 -> 64 MHz CPU
        self.hfclk192mctrl = 2  # nRF5340: Div4
        self.hfclk192msrc = 1
        self.hfclk192m_run = 0
        self.hfclk192m_running = False
        self.hfclkaudio_run = 0
        self.hfclkaudio_running = False
        self.hfclkaudio_freq = 0x9BA6
        self.alwaysrun = {0x570: 0, 0x574: 0, 0x57C: 0, 0x584: 0}
        self.subscribe: dict[int, int] = {}
        self.publish: dict[int, int] = {}
        self._notify()
        self.storage = {
            0x528: 0x10,  # HFXODEBOUNCE (nRF52840)
            0x538: 0,  # CTIV
            0x55C: 0,  # TRACECONFIG (nRF52840)
            0x5B4: 0,  # LFRCMODE (nRF52840)
            0x51C: 0,  # POWER.GPREGRET / GPREGRET[0]
            0x520: 0,  # POWER.GPREGRET2 / GPREGRET[1]
            0x510: 0,  # POWER.POFCON (nRF52840)
            0x578: 0,  # POWER.DCDCEN (nRF52840)
            0x580: 0,  # POWER.DCDCEN0 (nRF52840)
        }
        self._update_irq()

    def _notify(self) -> None:
        for listener in getattr(self, "listeners", ()):
            listener()

    def _event_map(self) -> dict[int, int]:
        return self._EVENTS52 if self.chip == "nrf52840" else self._EVENTS53

    @property
    def cpu_hz(self) -> float:
        if self.chip == "nrf5340":
            return 128e6 if (self.hfclkctrl & 3) == 0 else 64e6
        return 64e6

    @property
    def pclk192m_hz(self) -> float:
        """nRF5340 PCLK192M (QSPI base clock): 192 MHz / (1, 2, 4)."""
        return 192e6 / (1, 2, 4, 4)[self.hfclk192mctrl & 3]

    def system_reset(self) -> None:
        """SYSRESETREQ: CLOCK back to reset values; RESETREAS gets SREQ."""
        self.reset()
        self.reset_reason |= 1 << (3 if self.chip == "nrf5340" else 2)  # RESETREAS.SREQ

    # -- tasks --------------------------------------------------------------------------
    def _after(self, key: str, delay: float, action: Callable[[], None]) -> None:
        old = self._pending.pop(key, None)
        if old:
            old.cancel()

        def fire() -> None:
            self._pending.pop(key, None)
            action()

        self._pending[key] = self.clock.call_after(delay, fire)

    def _cancel(self, key: str) -> None:
        old = self._pending.pop(key, None)
        if old:
            old.cancel()

    def _set_event(self, offset: int) -> None:
        self.events[offset] = 1
        self._update_irq()
        self._generated(offset)

    def note_sleep(self, asleep: bool) -> None:
        """POWER.EVENTS_SLEEPENTER / SLEEPEXIT: the CPU entered / left WFI or WFE sleep
        (nRF52840 PS §5.3 POWER, nRF5340 PS POWER registers)."""
        self._set_event(0x114 if asleep else 0x118)

    def _update_irq(self) -> None:
        level = any(
            self.events.get(off) and self.inten & (1 << bit)
            for off, bit in self._event_map().items()
        )
        self.irq(level)

    def _task(self, offset: int) -> None:
        if offset == 0x000:  # HFCLKSTART
            self.hfclk_run = 1

            def started() -> None:
                self.hfxo_running = True
                self._set_event(0x100)

            hfint = self.chip == "nrf5340" and not self.hfclksrc & 1
            self._after("hf", HFINT_STARTUP_S if hfint else HFXO_STARTUP_S, started)
        elif offset == 0x004:  # HFCLKSTOP
            self.hfclk_run = 0
            self.hfxo_running = False
            self._cancel("hf")
        elif offset == 0x008:  # LFCLKSTART
            self.lfclk_run = 1
            self.lfclksrccopy = self.lfclksrc

            def lf_started() -> None:
                self.lfclk_running = True
                self._set_event(0x104)
                self._notify()  # the RTCs count from now on

            self._after("lf", LF_STARTUP_S[self.chip].get(self.lfclksrc & 3, LFRC_STARTUP_S),
                        lf_started)
        elif offset == 0x00C:  # LFCLKSTOP
            self.lfclk_run = 0
            self.lfclk_running = False
            self._cancel("lf")
            self._notify()
        elif offset == 0x010:  # CAL
            done = 0x10C if self.chip == "nrf52840" else 0x11C
            self._after("cal", 16e-3, lambda: self._set_event(done))
        elif self.chip == "nrf52840" and offset in (0x014, 0x018):  # CTSTART / CTSTOP
            self._set_event(0x128 if offset == 0x014 else 0x12C)
        elif self.chip == "nrf5340" and offset == 0x018:  # HFCLKAUDIOSTART
            self.hfclkaudio_run = 1

            def audio() -> None:
                self.hfclkaudio_running = True
                self._set_event(0x120)

            self._after("audio", HFCLKAUDIO_STARTUP_S, audio)
        elif self.chip == "nrf5340" and offset == 0x01C:
            self.hfclkaudio_run = 0
            self.hfclkaudio_running = False
            self._cancel("audio")
        elif self.chip == "nrf5340" and offset == 0x020:  # HFCLK192MSTART
            self.hfclk192m_run = 1

            def c192() -> None:
                self.hfclk192m_running = True
                self._set_event(0x124)

            self._after("192m", HFCLK192M_STARTUP_S, c192)
        elif self.chip == "nrf5340" and offset == 0x024:
            self.hfclk192m_run = 0
            self.hfclk192m_running = False
            self._cancel("192m")
        else:
            raise Unmodelled

    # -- registers ----------------------------------------------------------------------
    def read_reg(self, offset: int) -> int:
        nrf53 = self.chip == "nrf5340"
        if offset in self._task_offsets():
            return 0  # tasks are write-only; reads return 0 on silicon
        if offset in self.events:
            return self.events[offset]
        if offset == 0x300 and nrf53:
            return self.inten
        if offset in (0x304, 0x308):
            return self.inten
        if offset == 0x30C and nrf53:  # INTPEND
            return sum(
                1 << bit for off, bit in self._event_map().items() if self.events[off]
            ) & self.inten
        if offset == 0x408:
            return self.hfclk_run
        if offset == 0x40C:  # HFCLKSTAT: SRC bit0, STATE bit16 (reset value 0 on both)
            if self.hfxo_running:
                return (self.hfclksrc & 1 if nrf53 else 1) | 1 << 16
            return 0
        if offset == 0x414:
            return self.lfclk_run
        if offset == 0x418:
            return (self.lfclksrccopy & 3) | (1 << 16 if self.lfclk_running else 0)
        if offset == 0x41C:
            return self.lfclksrccopy
        if offset == 0x518:
            return self.lfclksrc
        if offset == 0x400:  # POWER.RESETREAS / RESET.RESETREAS
            return self.reset_reason
        if offset in self.storage and (
            not nrf53 or offset in (0x51C, 0x520)
        ):
            return self.storage[offset]
        if nrf53:
            if offset in (0x450, 0x454):
                return self.hfclkaudio_run if offset == 0x450 else (
                    1 << 16 if self.hfclkaudio_running else 0
                )
            if offset == 0x458:
                return self.hfclk192m_run
            if offset == 0x45C:
                return (self.hfclk192msrc & 1) | (1 << 16 if self.hfclk192m_running else 0)
            if offset == 0x514:
                return self.hfclksrc
            if offset == 0x558:
                return self.hfclkctrl
            if offset == 0x55C:
                return self.hfclkaudio_freq
            if offset in self.alwaysrun:
                return self.alwaysrun[offset]
            if offset == 0x580:
                return self.hfclk192msrc
            if offset == 0x5B8:
                return self.hfclk192mctrl
            if 0x080 <= offset < 0x100:
                return self.subscribe.get(offset, 0)
            if 0x180 <= offset < 0x200:
                return self.publish.get(offset, 0)
        raise Unmodelled

    def write_reg(self, offset: int, value: int) -> None:
        nrf53 = self.chip == "nrf5340"
        if offset in (0x078, 0x07C):  # POWER.TASKS_CONSTLAT / TASKS_LOWPWR
            return
        if offset in self._task_offsets():
            if value & 1:
                self._task(offset)
            return
        if offset in self.events:
            self.events[offset] = value & 1
            self._update_irq()
            return
        inten = _written_inten(offset, value, self.inten, self._inten_mask(), nrf53)
        if inten is not None:
            self.inten = inten
        elif offset == 0x400:
            self.reset_reason &= ~value  # write 1 to clear
        elif offset == 0x518:
            self.lfclksrc = value & (0x3 if nrf53 else 0x30003)
        elif offset in self.storage and (not nrf53 or offset in (0x51C, 0x520)):
            self.storage[offset] = value
        elif offset == 0x500 and not nrf53:  # POWER.SYSTEMOFF
            log.error("POWER.SYSTEMOFF written: System OFF is not modelled")
            raise Unmodelled
        elif nrf53 and offset == 0x514:
            self.hfclksrc = value & 1
        elif nrf53 and offset == 0x558:
            self.hfclkctrl = value & 3
            self._notify()
        elif nrf53 and offset == 0x55C:
            self.hfclkaudio_freq = value & 0xFFFF
        elif nrf53 and offset in self.alwaysrun:
            self.alwaysrun[offset] = value & 1
        elif nrf53 and offset == 0x580:
            self.hfclk192msrc = value & 1
        elif nrf53 and offset == 0x5B8:
            self.hfclk192mctrl = value & 3
            self._notify()
        elif nrf53 and (0x080 <= offset < 0x100 or 0x180 <= offset < 0x200):
            _store_dppi(self, offset, value)
        else:
            raise Unmodelled
        self._update_irq()

    def _task_offsets(self) -> tuple[int, ...]:
        if self.chip == "nrf52840":
            return (0x000, 0x004, 0x008, 0x00C, 0x010, 0x014, 0x018)
        return (0x000, 0x004, 0x008, 0x00C, 0x010, 0x018, 0x01C, 0x020, 0x024)

    def _inten_mask(self) -> int:
        return sum(1 << bit for bit in self._event_map().values())


def _written_inten(offset: int, value: int, inten: int, mask: int, has_inten: bool) -> int | None:
    """INTEN after a write to INTEN (0x300; the nRF52840 has only the next two), INTENSET (0x304)
    or INTENCLR (0x308); None if offset is none of them. mask: the bits that have an event."""
    if offset == 0x300 and has_inten:
        return value & mask
    if offset == 0x304:
        return inten | (value & mask)
    if offset == 0x308:
        return inten & ~value
    return None


def _store_dppi(periph, offset: int, value: int) -> None:
    """SUBSCRIBE (task offset + 0x80) / PUBLISH (event offset + 0x80) registers: CHIDX and EN,
    read by the DPPI controller (`qspi_gdb.sim.ppi.Dppic`)."""
    table = periph.publish if offset >= 0x180 else periph.subscribe
    table[offset] = value & 0x800000FF


# -- GPIO --------------------------------------------------------------------------------


class GpioPort(Peripheral):
    """One GPIO port. `regs` is the offset of OUT-4 (0x500 on nRF52840, 0 on nRF5340)."""

    def __init__(self, name: str, chip: str, *, pins: int = 32) -> None:
        self.name = name
        self.chip = chip
        self.pins = pins
        self.base_off = 0x500 if chip == "nrf52840" else 0x000
        self.cnf_off = 0x700 if chip == "nrf52840" else 0x200
        self.size = self.cnf_off + 4 * 32
        self.reset()

    def reset(self) -> None:
        self.out = 0
        self.latch = 0
        self.detectmode = 0
        self.detectmode_sec = 0
        self.pin_cnf = [0x00000002] * 32  # input, buffer disconnected

    def _mask(self) -> int:
        return (1 << self.pins) - 1

    @property
    def dir(self) -> int:
        return sum(1 << i for i, cnf in enumerate(self.pin_cnf) if cnf & 1)

    def level(self, pin: int) -> int:
        cnf = self.pin_cnf[pin]
        if cnf & 1:
            return (self.out >> pin) & 1
        pull = (cnf >> 2) & 3
        return 1 if pull == 3 else 0

    def read_reg(self, offset: int) -> int:
        o = offset - self.base_off
        if o == 0x004:
            return self.out
        if o in (0x008, 0x00C):
            return self.out
        if o == 0x010:  # IN: only pins with a connected input buffer
            return sum(
                self.level(i) << i for i in range(self.pins) if not self.pin_cnf[i] & 2
            )
        if o in (0x014, 0x018, 0x01C):
            return self.dir
        if o == 0x020:
            return self.latch
        if o == 0x024:
            return self.detectmode
        if o == 0x028 and self.chip == "nrf5340":
            return self.detectmode_sec
        c = offset - self.cnf_off
        if 0 <= c < 4 * self.pins:
            return self.pin_cnf[c >> 2]
        raise Unmodelled

    def write_reg(self, offset: int, value: int) -> None:
        o = offset - self.base_off
        mask = self._mask()
        if o == 0x004:
            self.out = value & mask
        elif o == 0x008:
            self.out |= value & mask
        elif o == 0x00C:
            self.out &= ~value
        elif o in (0x014, 0x018, 0x01C):
            for i in range(self.pins):
                bit = (value >> i) & 1
                if o == 0x014:
                    self.pin_cnf[i] = (self.pin_cnf[i] & ~1) | bit
                elif bit:
                    self.pin_cnf[i] = self.pin_cnf[i] | 1 if o == 0x018 else self.pin_cnf[i] & ~1
        elif o == 0x020:
            self.latch &= ~value  # write 1 to clear
        elif o == 0x024:
            self.detectmode = value & 1
        elif o == 0x028 and self.chip == "nrf5340":
            self.detectmode_sec = value & 1
        else:
            c = offset - self.cnf_off
            if not 0 <= c < 4 * self.pins:
                raise Unmodelled
            # DIR, INPUT, PULL, DRIVE, SENSE (+ nRF5340 MCUSEL bits 30:28)
            keep = 0x00030F0F | (0x70000000 if self.chip == "nrf5340" else 0)
            self.pin_cnf[c >> 2] = value & keep


# -- TIMER -------------------------------------------------------------------------------

TIMER_BASE_HZ = 16e6
BITMODE_BITS = {0: 16, 1: 8, 2: 24, 3: 32}


class Timer(Peripheral):
    """TIMER in Timer and Counter mode, following the modelled clock.

    The counter is derived from the clock (f = 16 MHz / 2^PRESCALER); compare events are
    clock events scheduled at the exact tick the counter reaches CC[n].
    """

    def __init__(self, name: str, chip: str, clock: Clock, *, cc_count: int,
                 irq: IrqLine = _no_irq) -> None:
        self.name = name
        self.chip = chip
        self.clock = clock
        self.cc_count = cc_count
        self.irq = irq
        self._scheduled: list[Event | None] = [None] * cc_count  # each CC's compare event
        self.reset()

    def reset(self) -> None:
        for event in self._scheduled:
            if event is not None:
                event.cancel()
        self._scheduled = [None] * self.cc_count
        self.running = False
        self.mode = 0
        self.bitmode = 0
        self.prescaler = 4
        self.shorts = 0
        self.inten = 0
        self.cc = [0] * self.cc_count
        self.oneshot = [0] * self.cc_count
        self.events = [0] * self.cc_count
        self.subscribe: dict[int, int] = {}
        self.publish: dict[int, int] = {}
        self._count = 0  # counter value at _since
        self._since = self.clock.now
        self.irq(False)

    # -- counter -----------------------------------------------------------------------
    @property
    def freq(self) -> float:
        return TIMER_BASE_HZ / (1 << min(self.prescaler, 9))

    @property
    def bits(self) -> int:
        return BITMODE_BITS[self.bitmode & 3]

    def _ticks_since(self, when: float) -> int:
        if not self.running or self.mode != 0:
            return 0
        return math.floor((when - self._since) * self.freq + 1e-6)

    def counter(self) -> int:
        return (self._count + self._ticks_since(self.clock.now)) & ((1 << self.bits) - 1)

    def _rebase(self, count: int | None = None) -> None:
        self._count = self.counter() if count is None else count
        self._since = self.clock.now

    def _reschedule(self, only: int | None = None) -> None:
        """(Re)schedule the compare events: every CC's, or only CC[only]'s (a CC write or
        capture moves that one alone; the loader captures the counter at every time read)."""
        channels = range(self.cc_count) if only is None else (only,)
        for n in channels:
            event = self._scheduled[n]
            if event is not None:
                event.cancel()
                self._scheduled[n] = None
        if not self.running or self.mode != 0:
            return
        wrap = 1 << self.bits
        now_count = self.counter()
        base = self._count + self._ticks_since(self.clock.now)
        freq = self.freq
        for n in channels:
            delta = (self.cc[n] - now_count) % wrap or wrap
            when = self._since + (base + delta - self._count) / freq
            self._scheduled[n] = self.clock.call_at(when, lambda n=n: self._compare(n))

    def _compare(self, n: int) -> None:
        self.events[n] = 1
        # at this instant the counter equals CC[n] (no float rounding: set it exactly)
        self._rebase(0 if self.shorts & (1 << n) else self.cc[n] & ((1 << self.bits) - 1))
        if self.shorts & (1 << (8 + n)):  # COMPARE[n]_STOP
            self.running = False
        self._update_irq()
        # a short (clear/stop) moves every compare; otherwise only this one (a full wrap on)
        self._reschedule(None if self.shorts & (0x101 << n) else n)
        self._generated(0x140 + 4 * n)

    def _update_irq(self) -> None:
        self.irq(any(self.events[n] and self.inten & (1 << (16 + n)) for n in range(self.cc_count)))

    def _counter_mode_tick(self) -> None:
        wrap = 1 << self.bits
        self._count = (self._count + 1) % wrap
        for n in range(self.cc_count):
            if self._count == self.cc[n] & (wrap - 1):
                self.events[n] = 1
                self._generated(0x140 + 4 * n)
                if self.shorts & (1 << n):
                    self._count = 0
                if self.shorts & (1 << (8 + n)):
                    self.running = False
        self._update_irq()

    # -- registers ---------------------------------------------------------------------
    def read_reg(self, offset: int) -> int:
        n = (offset & 0x3F) >> 2
        if offset < 0x080:
            return 0
        if 0x140 <= offset < 0x140 + 4 * self.cc_count:
            return self.events[n]
        if offset == 0x200:
            return self.shorts
        if offset == 0x300 and self.chip == "nrf5340":
            return self.inten
        if offset in (0x304, 0x308):
            return self.inten
        if offset == 0x504:
            return self.mode
        if offset == 0x508:
            return self.bitmode
        if offset == 0x510:
            return self.prescaler
        if 0x540 <= offset < 0x540 + 4 * self.cc_count:
            return self.cc[n]
        if self.chip == "nrf5340":
            if 0x580 <= offset < 0x580 + 4 * self.cc_count:
                return self.oneshot[n]
            if 0x080 <= offset < 0x100:
                return self.subscribe.get(offset, 0)
            if 0x1C0 <= offset < 0x1C0 + 4 * self.cc_count:
                return self.publish.get(offset, 0)
        raise Unmodelled

    def write_reg(self, offset: int, value: int) -> None:
        n = (offset & 0x3F) >> 2
        if offset < 0x080:
            self._task(offset, value)
            return
        inten_mask = ((1 << self.cc_count) - 1) << 16  # COMPARE[n] is INTEN bit 16 + n
        inten = _written_inten(offset, value, self.inten, inten_mask, self.chip == "nrf5340")
        if inten is not None:
            self.inten = inten
            self._update_irq()
            return
        if 0x140 <= offset < 0x140 + 4 * self.cc_count:
            self.events[n] = value & 1
            self._update_irq()
        elif offset == 0x200:
            self.shorts = value & (((1 << self.cc_count) - 1) * 0x101)
        elif offset == 0x504:
            self._rebase()
            self.mode = value & 3
            self._reschedule()
        elif offset == 0x508:
            self._rebase()
            self.bitmode = value & 3
            self._count &= (1 << self.bits) - 1
            self._reschedule()
        elif offset == 0x510:
            self._rebase()
            self.prescaler = value & 0xF
            self._reschedule()
        elif 0x540 <= offset < 0x540 + 4 * self.cc_count:
            self.cc[n] = value
            self._reschedule(n)
        elif self.chip == "nrf5340" and 0x580 <= offset < 0x580 + 4 * self.cc_count:
            self.oneshot[n] = value & 1
            if value & 1:
                log.error("TIMER ONESHOTEN is not modelled", timer=self.name, channel=n)
        elif self.chip == "nrf5340" and (
            0x080 <= offset < 0x100 or 0x1C0 <= offset < 0x1C0 + 4 * self.cc_count
        ):
            _store_dppi(self, offset, value)
        else:
            raise Unmodelled

    def _task(self, offset: int, value: int) -> None:
        if not value & 1:
            return
        if offset == 0x000:  # START
            if not self.running:
                self._rebase()
                self.running = True
                self._since = self.clock.now
        elif offset == 0x004:  # STOP
            self._rebase()
            self.running = False
        elif offset == 0x008:  # COUNT
            if self.mode != 0 and self.running:
                self._counter_mode_tick()
            return
        elif offset == 0x00C:  # CLEAR
            self._rebase(0)
        elif offset == 0x010:  # SHUTDOWN (deprecated): stop and clear
            self._rebase(0)
            self.running = False
        elif 0x040 <= offset < 0x040 + 4 * self.cc_count:  # CAPTURE[n]
            n = (offset - 0x040) >> 2
            self.cc[n] = self.counter()
            self._reschedule(n)
            return
        else:
            raise Unmodelled
        self._reschedule()
