"""Event routing between peripherals: PPI (nRF52840) and DPPI (nRF5340 application core).

A model that generates an event calls `Peripheral._generated(offset)`, which reaches
`EventRouter.event`; the router asks the chip's controller which tasks that event triggers
and triggers each by writing 1 to it (through the system bus for PPI, whose endpoints are bus
addresses; straight to the subscribing model for DPPI).

PPI (nRF52840 PS v1.7 §6.16): channel n connects the event register at CH[n].EEP to the task
register at CH[n].TEP and, if set, FORK[n].TEP, while CHEN bit n is set (CHENSET / CHENCLR
write 1 to set / clear). TASKS_CHG[g].EN / .DIS enable / disable the channels in group CHG[g].
Channels 20..31 are pre-programmed to RADIO / AAR / CCM / TIMER0 / RTC0 endpoints: the RADIO,
AAR and CCM are not modelled, so enabling one of them is reported, and it routes nothing.

DPPI (nRF5340 PS v1.3 DPPI chapter): an event is published on channel CHIDX when its
PUBLISH register (event offset + 0x80) has EN set; every task whose SUBSCRIBE register (task
offset + 0x80) names that channel with EN set is triggered, while the channel is enabled in the
DPPIC's CHEN. The DPPIC's own TASKS_CHG[g].EN / .DIS can themselves be subscribed.
"""

from __future__ import annotations

from ..log import get_logger
from .bus import BusFault
from .periph import Peripheral, Unmodelled

log = get_logger(__name__)

PPI_CHANNELS = 20  # configurable channels; 20..31 are pre-programmed
PPI_GROUPS = 6
DPPI_CHANNELS = 32
DPPI_GROUPS = 6


class EventRouter:
    """Joins the board's peripherals to its PPI or DPPI controller."""

    def __init__(self) -> None:
        self.controller: Ppi | Dppic | None = None
        self.bases: dict[int, int] = {}  # id(model) -> its bus base (PPI endpoints)
        self.models: list[Peripheral] = []

    def attach(self, model: Peripheral, base: int) -> None:
        model.router = self
        self.bases[id(model)] = base
        self.models.append(model)

    def event(self, model: Peripheral, offset: int) -> None:
        if self.controller is not None:
            self.controller.route(self, model, offset)


class Ppi(Peripheral):
    name = "PPI"

    def __init__(self, bus) -> None:
        self.bus = bus  # the system bus: tasks are triggered by writing 1 to TEP
        self.reset()

    def reset(self) -> None:
        self.chen = 0
        self.eep = [0] * PPI_CHANNELS
        self.tep = [0] * PPI_CHANNELS
        self.fork = [0] * 32
        self.chg = [0] * PPI_GROUPS

    def route(self, router: EventRouter, model: Peripheral, offset: int) -> None:
        base = router.bases.get(id(model))
        if base is None:
            return
        address = base + offset
        for ch in range(PPI_CHANNELS):
            if self.chen >> ch & 1 and self.eep[ch] == address:
                for task in (self.tep[ch], self.fork[ch]):
                    if task:
                        self._trigger(task, ch)

    def _trigger(self, task: int, ch: int) -> None:
        try:
            self.bus.write(task, 4, 1)
        except BusFault as fault:
            log.error("PPI task endpoint faulted", channel=ch, task=f"0x{task:08X}",
                      why=fault.why)

    def _set_chen(self, value: int) -> None:
        fixed = value & ~self.chen & 0xFFF00000
        if fixed:
            log.error("PPI pre-programmed channels enabled: their RADIO/AAR/CCM endpoints "
                      "are not modelled", channels=f"0x{fixed:08X}")
        self.chen = value & 0xFFFFFFFF

    def read_reg(self, offset: int) -> int:
        if offset < 8 * PPI_GROUPS:
            return 0  # TASKS_CHG[n].EN/DIS are write-only
        if offset in (0x500, 0x504, 0x508):
            return self.chen
        if 0x510 <= offset < 0x510 + 8 * PPI_CHANNELS:
            ch, is_tep = divmod(offset - 0x510, 8)
            return self.tep[ch] if is_tep else self.eep[ch]
        if 0x800 <= offset < 0x800 + 4 * PPI_GROUPS:
            return self.chg[(offset - 0x800) // 4]
        if 0x910 <= offset < 0x990:
            return self.fork[(offset - 0x910) // 4]
        raise Unmodelled

    def write_reg(self, offset: int, value: int) -> None:
        if offset < 8 * PPI_GROUPS:
            group, disable = divmod(offset, 8)
            if value & 1 and disable in (0, 4):
                mask = self.chg[group]
                self._set_chen(self.chen & ~mask if disable else self.chen | mask)
        elif offset == 0x500:
            self._set_chen(value)
        elif offset == 0x504:
            self._set_chen(self.chen | value)
        elif offset == 0x508:
            self.chen &= ~value
        elif 0x510 <= offset < 0x510 + 8 * PPI_CHANNELS:
            ch, is_tep = divmod(offset - 0x510, 8)
            (self.tep if is_tep else self.eep)[ch] = value
        elif 0x800 <= offset < 0x800 + 4 * PPI_GROUPS:
            self.chg[(offset - 0x800) // 4] = value
        elif 0x910 <= offset < 0x990:
            self.fork[(offset - 0x910) // 4] = value
        else:
            raise Unmodelled


class Dppic(Peripheral):
    name = "DPPIC"

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.chen = 0
        self.chg = [0] * DPPI_GROUPS
        self.subscribe: dict[int, int] = {}  # SUBSCRIBE_CHG[n].EN/DIS at 0x080 + 8n (+4)

    def route(self, router: EventRouter, model: Peripheral, offset: int) -> None:
        publish = getattr(model, "publish", {}).get(offset + 0x80, 0)
        if not publish >> 31:
            return
        channel = publish & 0xFF
        if channel >= DPPI_CHANNELS or not self.chen >> channel & 1:
            return
        wanted = 0x80000000 | channel
        for target in router.models:
            for sub_offset, sub in list(getattr(target, "subscribe", {}).items()):
                if sub == wanted:
                    try:
                        target.write_reg(sub_offset - 0x80, 1)
                    except Unmodelled:
                        log.error("DPPI subscriber's task is not modelled",
                                  peripheral=target.name, task=f"+0x{sub_offset - 0x80:03X}")

    def read_reg(self, offset: int) -> int:
        if offset < 8 * DPPI_GROUPS:
            return 0  # TASKS_CHG[n].EN/DIS are write-only
        if 0x080 <= offset < 0x080 + 8 * DPPI_GROUPS:
            return self.subscribe.get(offset, 0)
        if offset in (0x500, 0x504, 0x508):
            return self.chen
        if 0x800 <= offset < 0x800 + 4 * DPPI_GROUPS:
            return self.chg[(offset - 0x800) // 4]
        raise Unmodelled

    def write_reg(self, offset: int, value: int) -> None:
        if offset < 8 * DPPI_GROUPS:
            group, disable = divmod(offset, 8)
            if value & 1 and disable in (0, 4):
                mask = self.chg[group]
                self.chen = self.chen & ~mask if disable else self.chen | mask
        elif 0x080 <= offset < 0x080 + 8 * DPPI_GROUPS:
            self.subscribe[offset] = value & 0x800000FF
        elif offset == 0x500:
            self.chen = value & 0xFFFFFFFF
        elif offset == 0x504:
            self.chen |= value
        elif offset == 0x508:
            self.chen &= ~value
        elif 0x800 <= offset < 0x800 + 4 * DPPI_GROUPS:
            self.chg[(offset - 0x800) // 4] = value
        else:
            raise Unmodelled
