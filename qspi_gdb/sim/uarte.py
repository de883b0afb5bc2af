"""UARTE: the UART with EasyDMA; its transmitter is the virtual board's console.

nRF52840 PS v1.7 §6.34 UARTE and the nRF5340 PS v1.3 UARTE chapter; register offsets from the
MDK headers (NRF_UARTE_Type). Modelled:

- ENABLE = 8 (UARTE) enables it; tasks do nothing while it is disabled. ENABLE = 4 (the
  legacy UART register interface of the nRF52840's UART0) is not modelled: refused loudly.
- Transmission: STARTTX generates TXSTARTED, then EasyDMA takes TXD.MAXCNT bytes from RAM at
  TXD.PTR; each byte goes out in (1 start + 8 data + parity + stop bits) / baud rate and
  generates TXDRDY; after the last one ENDTX, with TXD.AMOUNT the number sent. STOPTX stops the
  transmitter (after the byte on the line; ENDTX first if it was not generated yet) and
  generates TXSTOPPED. The bytes sent go to `output` (the board's console file). A TXD.PTR
  outside data RAM sends nothing (EasyDMA can only reach RAM) and is logged.
- Reception: nothing is ever received (no input is modelled). STARTRX generates RXSTARTED;
  STOPRX (or FLUSHRX) ends the empty buffer with ENDRX (RXD.AMOUNT = 0) and, for STOPRX, then
  RXTO. SHORTS ENDRX_STARTRX / ENDRX_STOPRX apply.
- Interrupt: the OR of EVENTS_x & INTEN bit (x - 0x100) / 4. nRF5340: SUBSCRIBE / PUBLISH for
  the DPPI.
"""

from __future__ import annotations

from collections.abc import Callable

from ..log import get_logger
from .bus import BusFault
from .clock import Clock, Event
from .periph import (
    IrqLine,
    Peripheral,
    Unmodelled,
    _no_irq,
    _store_dppi,
    _written_inten,
)

log = get_logger(__name__)

STARTRX, STOPRX, STARTTX, STOPTX, FLUSHRX = 0x000, 0x004, 0x008, 0x00C, 0x02C
CTS, NCTS, RXDRDY, ENDRX, TXDRDY, ENDTX, ERROR = 0x100, 0x104, 0x108, 0x110, 0x11C, 0x120, 0x124
RXTO, RXSTARTED, TXSTARTED, TXSTOPPED = 0x144, 0x14C, 0x150, 0x158
EVENTS = (CTS, NCTS, RXDRDY, ENDRX, TXDRDY, ENDTX, ERROR, RXTO, RXSTARTED, TXSTARTED, TXSTOPPED)
TASKS = (STARTRX, STOPRX, STARTTX, STOPTX, FLUSHRX)
ENABLE_UARTE = 8
# plain registers: offset -> mask (SHORTS, ERRORSRC handled apart)
_PLAIN = {0x508: 0x8000003F, 0x50C: 0x8000003F, 0x510: 0x8000003F, 0x514: 0x8000003F,
          0x524: 0xFFFFFFFF, 0x534: 0xFFFFFFFF, 0x538: 0xFFFF, 0x544: 0xFFFFFFFF,
          0x548: 0xFFFF, 0x56C: 0x1F}
_RESET = {0x508: 0xFFFFFFFF, 0x50C: 0xFFFFFFFF, 0x510: 0xFFFFFFFF, 0x514: 0xFFFFFFFF,
          0x524: 0x04000000}


class Uarte(Peripheral):
    def __init__(self, name: str, chip: str, clock: Clock, memory, *,
                 irq: IrqLine = _no_irq,
                 output: Callable[[bytes], None] = lambda data: None) -> None:
        self.name = name
        self.chip = chip
        self.clock = clock
        self.memory = memory  # EasyDMA's view of RAM: read(addr, n)
        self.irq = irq
        self.output = output
        self._tx_event: Event | None = None
        self.reset()

    def reset(self) -> None:
        self._cancel_tx()
        self.events = dict.fromkeys(EVENTS, 0)
        self.inten = 0
        self.shorts = 0
        self.errorsrc = 0
        self.enable = 0
        self.regs = dict(_RESET)
        self.tx_amount = 0
        self.rx_amount = 0
        self.rx_active = False
        self.subscribe: dict[int, int] = {}
        self.publish: dict[int, int] = {}
        self._tx_data = b""
        self._tx_sent = 0
        self._ended = False
        self.irq(False)

    # -- timing ---------------------------------------------------------------------------
    @property
    def baud(self) -> float:
        """BAUDRATE is the baud rate x 2^32 / 16 MHz, to 12 bits (0x01D60000 -> ~115200)."""
        return max(self.regs.get(0x524, 0) & 0xFFFFF000, 0x1000) * 16e6 / 2**32

    @property
    def byte_time(self) -> float:
        config = self.regs.get(0x56C, 0)
        bits = 1 + 8 + (1 if config & 0xE else 0) + (2 if config & 0x10 else 1)
        return bits / self.baud

    # -- events ---------------------------------------------------------------------------
    def _update_irq(self) -> None:
        self.irq(any(v and self.inten >> ((off - 0x100) // 4) & 1 for off, v in self.events.items()))

    def _generate(self, offset: int) -> None:
        self.events[offset] = 1
        self._update_irq()
        self._generated(offset)

    # -- transmitter ------------------------------------------------------------------------
    def _cancel_tx(self) -> None:
        if self._tx_event is not None:
            self._tx_event.cancel()
            self._tx_event = None

    def _start_tx(self) -> None:
        if self._tx_event is not None:
            log.error("UARTE STARTTX while transmitting is not modelled: ignored", uarte=self.name)
            return
        ptr, count = self.regs.get(0x544, 0), self.regs.get(0x548, 0)
        try:
            self._tx_data = self.memory.read(ptr, count) if count else b""
        except BusFault:
            log.error("UARTE TXD.PTR outside data RAM: nothing sent (EasyDMA reaches RAM only)",
                      uarte=self.name, ptr=f"0x{ptr:08X}", maxcnt=count)
            self._tx_data = b""
        self._tx_sent = 0
        self._ended = False
        self.tx_amount = 0
        self._generate(TXSTARTED)
        self._tx_event = self.clock.call_after(
            self.byte_time if self._tx_data else 0.0, self._tx_step)

    def _tx_step(self) -> None:
        self._tx_event = None
        if self._tx_sent < len(self._tx_data):
            byte = self._tx_data[self._tx_sent:self._tx_sent + 1]
            self._tx_sent += 1
            self.tx_amount = self._tx_sent
            self.output(byte)
            self._generate(TXDRDY)
            if self._tx_sent < len(self._tx_data):
                self._tx_event = self.clock.call_after(self.byte_time, self._tx_step)
                return
        self._end_tx()

    def _end_tx(self) -> None:
        if not self._ended:
            self._ended = True
            self._generate(ENDTX)

    def _stop_tx(self) -> None:
        if self._tx_event is not None:  # the byte on the line finishes; the rest is dropped
            self._cancel_tx()
            self._end_tx()
        self._generate(TXSTOPPED)

    # -- receiver ---------------------------------------------------------------------------
    def _end_rx(self) -> None:
        self.rx_amount = 0
        self._generate(ENDRX)
        if self.shorts >> 5 & 1:  # ENDRX_STARTRX
            self._task(STARTRX)
        if self.shorts >> 6 & 1:  # ENDRX_STOPRX
            self._task(STOPRX)

    def _task(self, offset: int) -> None:
        if self.enable != ENABLE_UARTE:
            return
        if offset == STARTTX:
            self._start_tx()
        elif offset == STOPTX:
            self._stop_tx()
        elif offset == STARTRX:
            self.rx_active = True
            self._generate(RXSTARTED)
        elif offset == STOPRX:
            if self.rx_active:
                self.rx_active = False
                self._end_rx()
            self._generate(RXTO)
        elif offset == FLUSHRX:
            self._end_rx()

    # -- registers ----------------------------------------------------------------------
    def read_reg(self, offset: int) -> int:
        nrf53 = self.chip == "nrf5340"
        if offset in TASKS:
            return 0
        if offset in self.events:
            return self.events[offset]
        if offset == 0x200:
            return self.shorts
        if offset in (0x300, 0x304, 0x308):
            return self.inten
        if offset == 0x480:
            return self.errorsrc
        if offset == 0x500:
            return self.enable
        if offset == 0x53C:
            return self.rx_amount
        if offset == 0x54C:
            return self.tx_amount
        if offset in _PLAIN:
            return self.regs.get(offset, 0)
        if nrf53 and (0x080 <= offset < 0x100 or 0x180 <= offset < 0x200):
            return (self.subscribe if offset < 0x100 else self.publish).get(offset, 0)
        raise Unmodelled

    def write_reg(self, offset: int, value: int) -> None:
        nrf53 = self.chip == "nrf5340"
        if offset in TASKS:
            if value & 1:
                self._task(offset)
            return
        if offset in self.events:
            self.events[offset] = value & 1
            self._update_irq()
            return
        mask = sum(1 << ((off - 0x100) // 4) for off in EVENTS)
        inten = _written_inten(offset, value, self.inten, mask, True)
        if inten is not None:
            self.inten = inten
            self._update_irq()
        elif offset == 0x200:
            self.shorts = value & 0x60
        elif offset == 0x480:
            self.errorsrc &= ~value  # write 1 to clear
        elif offset == 0x500:
            enable = value & 0xF
            if enable not in (0, ENABLE_UARTE):
                log.error("UARTE ENABLE value not modelled (4 = legacy UART registers)",
                          uarte=self.name, value=enable)
                raise Unmodelled
            self.enable = enable
            if not enable:
                self._cancel_tx()
                self.rx_active = False
        elif offset in _PLAIN:
            self.regs[offset] = value & _PLAIN[offset]
        elif nrf53 and (0x080 <= offset < 0x100 or 0x180 <= offset < 0x200):
            _store_dppi(self, offset, value)
        else:
            raise Unmodelled
