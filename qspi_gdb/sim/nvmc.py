"""The NVMC: writing and erasing the internal flash and the UICR, from the CPU or a debugger.

nRF52840 PS v1.7 §4.3 NVMC and the nRF5340 PS v1.3 NVMC chapter (register offsets from the
MDK headers nrf52840.h / nrf5340_application.h):

- CONFIG.WEN selects read-only (0), write (Wen, 1), erase (Een, 2; nRF5340 also partial erase
  PEen, 4). With Wen, a full 32-bit word written to a word-aligned address of the flash or the
  UICR is programmed: bits can only go from 1 to 0 (the stored word becomes old & new). "Only
  word-aligned writes are allowed. Byte or half-word-aligned writes will result in a hard
  fault" - and so does any write while CONFIG is not Wen (the model's choice: the PS does not
  say what such a write does, and a fault is the loud answer).
- A word takes tWRITE, a page erase tERASEPAGE, ERASEALL tERASEALL (table below); READY (and
  READYNEXT: no write buffering is modelled) reads 0 until it is done. "The CPU is halted if the
  CPU executes code from the flash while the NVMC is writing": an operation the core starts
  while running from the flash advances the clock by its whole time at once; started from RAM
  (or by a debugger) the core runs on and polls READY.
- Page erase: nRF52840 writes the page address to ERASEPAGE (ERASEPCR1 alias; ERASEPCR0 at
  0x510 in the SVD); nRF5340 writes 0xFFFFFFFF to the first word of the page with CONFIG=Een
  ("Erasing a secure page in flash"). ERASEALL (write 1, Een) erases the flash and the UICR;
  nRF52840 ERASEUICR erases the UICR alone. Partial erase (ERASEPAGEPARTIAL) is not modelled:
  it is refused loudly.
- nRF5340 erratum 160 (nrfx MDK system_nrf5340_application.c) writes 0 to the undocumented
  NVMC offsets 0xE04 and 0xE08: accepted and ignored, reading 0.

The CPU's own writes reach `cpu_write` from the core's write-protection hook: the internal flash
is mapped read-only in unicorn (fast execution), and unicorn then stores the raw value once the
hook allowed it; `settle()` puts the programmed (ANDed) word back afterwards - the board calls it
after every slice and before anything else reads the flash, so the difference (a rewritten word
whose new bits are not a subset of the old ones) is visible to no reader.
"""

from __future__ import annotations

from collections.abc import Callable

from ..log import get_logger
from .bus import BusFault
from .clock import Clock
from .periph import InfoBlock, Peripheral, Unmodelled

log = get_logger(__name__)

PAGE_SIZE = 4096
# (tWRITE, tERASEPAGE, tERASEALL) in seconds: nRF52840 PS §4.3.9 (max 41 us, 85 ms, 169 ms);
# nRF5340 PS NVMC electrical specification (43 us, 87.5 ms, 173 ms with the HFXO)
TIMES = {"nrf52840": (41e-6, 85e-3, 169e-3), "nrf5340": (43e-6, 87.5e-3, 173e-3)}
REN, WEN, EEN = 0, 1, 2
ERRATUM_160_OFFSETS = (0xE04, 0xE08)  # nRF5340 NVMC block, written 0 by SystemInit


class Nvmc(Peripheral):
    name = "NVMC"

    def __init__(self, chip: str, clock: Clock, flash: bytearray, uicr: InfoBlock, *,
                 flash_written: Callable[[int, int], None] = lambda addr, n: None,
                 cpu_runs_from_flash: Callable[[], bool] = lambda: False,
                 uicr_base: int) -> None:
        self.chip = chip
        self.clock = clock
        self.flash = flash
        self.uicr = uicr
        self.uicr_base = uicr_base
        self.flash_written = flash_written  # drop stale translations of programmed code
        self.cpu_runs_from_flash = cpu_runs_from_flash
        self.t_write, self.t_erasepage, self.t_eraseall = TIMES[chip]
        self._fixups: list[tuple[int, bytes]] = []
        self.stats = {"words_written": 0, "pages_erased": 0, "erase_all": 0}
        self.reset()

    def reset(self) -> None:
        self.config = 0
        self.icachecnf = 0
        self.configns = 0
        self.partialcfg = 0x0000000A
        self.busy_until = 0.0

    # -- registers ------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.clock.now >= self.busy_until

    def read_reg(self, offset: int) -> int:
        self.settle()
        nrf53 = self.chip == "nrf5340"
        if offset in (0x400, 0x408):  # READY, READYNEXT
            return int(self.ready)
        if offset == 0x504:
            return self.config
        if offset == 0x51C:
            return self.partialcfg
        if offset in (0x540, 0x548, 0x54C) and not nrf53:
            return self.icachecnf if offset == 0x540 else 0  # IHIT/IMISS: no cache model
        if offset == 0x584 and nrf53:
            return self.configns
        if offset in ERRATUM_160_OFFSETS and nrf53:
            return 0
        raise Unmodelled

    def write_reg(self, offset: int, value: int) -> None:
        self.settle()
        nrf53 = self.chip == "nrf5340"
        if offset == 0x504:
            self.config = value & (0x7 if nrf53 else 0x3)
        elif offset in (0x508, 0x510) and not nrf53:  # ERASEPAGE (ERASEPCR1), ERASEPCR0
            self._erase_page(value)
        elif offset == 0x50C:  # ERASEALL
            if value & 1:
                self._erase_all()
        elif offset == 0x514 and not nrf53:  # ERASEUICR
            if value & 1 and self._erase_enabled("ERASEUICR"):
                self._erase_uicr()
                self._busy(self.t_erasepage)
        elif offset == 0x518 and not nrf53:  # ERASEPAGEPARTIAL
            log.error("NVMC partial page erase is not modelled", page=f"0x{value:08X}")
            raise Unmodelled
        elif offset == 0x51C:
            self.partialcfg = value & 0x7F
        elif offset == 0x540 and not nrf53:
            self.icachecnf = value & 0x101
        elif offset in (0x548, 0x54C) and not nrf53:
            pass  # IHIT / IMISS are cleared by writing; nothing is counted
        elif offset == 0x584 and nrf53:
            self.configns = value & 0x3
        elif offset == 0x588 and nrf53:
            log.warning("NVMC.WRITEUICRNS is not modelled", value=f"0x{value:08X}")
        elif offset in ERRATUM_160_OFFSETS and nrf53:
            pass
        else:
            raise Unmodelled

    # -- programming ------------------------------------------------------------------------
    def program(self, addr: int, size: int, value: int, *, flash_offset: int | None) -> bytes:
        """A bus write of `value` to the flash (flash_offset) or the UICR (None: UICR
        offset = addr - uicr_base): refuse it, erase a page (nRF5340 erase by write), or
        program the word. Returns the word now stored. Raises BusFault when refused."""
        self.settle()
        if size != 4 or addr & 3:
            raise BusFault(addr, True, "NVMC: only word-aligned 32-bit writes to flash "
                           "(a byte or halfword write is a hard fault)")
        value &= 0xFFFFFFFF
        mode = self.config & 0x7
        if (mode == EEN and self.chip == "nrf5340" and flash_offset is not None
                and value == 0xFFFFFFFF and not flash_offset % PAGE_SIZE):
            self._erase_page(flash_offset)
            return b"\xff\xff\xff\xff"
        if mode != WEN:
            raise BusFault(addr, True, f"write to flash with NVMC.CONFIG={mode} (not Wen)")
        self._wait_ready()
        if flash_offset is None:
            uicr_offset = addr - self.uicr_base
            old = self.uicr.words.get(uicr_offset, 0xFFFFFFFF)
            self.uicr.words[uicr_offset] = new = old & value
        else:
            old = int.from_bytes(self.flash[flash_offset:flash_offset + 4], "little")
            new = old & value
            self.flash[flash_offset:flash_offset + 4] = new.to_bytes(4, "little")
            self.flash_written(flash_offset, 4)
        self.stats["words_written"] += 1
        self._busy(self.t_write)
        return new.to_bytes(4, "little")

    def cpu_write(self, flash_offset: int, size: int, value: int) -> bool:
        """The core stores to the read-only-mapped flash: program it and allow the raw store
        (True), or refuse (False: the core takes a bus fault). The raw store unicorn makes
        after this is corrected by settle()."""
        try:
            stored = self.program(flash_offset, size, value, flash_offset=flash_offset)
        except BusFault as fault:
            log.error("core write to flash refused", why=fault.why, addr=f"0x{flash_offset:08X}")
            return False
        if stored != (value & 0xFFFFFFFF).to_bytes(4, "little"):
            self._fixups.append((flash_offset, stored))
        return True

    def settle(self) -> None:
        """Put programmed words back over the raw values unicorn stored."""
        if self._fixups:
            fixups, self._fixups = self._fixups, []
            for offset, word in fixups:
                self.flash[offset:offset + 4] = word

    # -- erase ----------------------------------------------------------------------------
    def _erase_enabled(self, what: str) -> bool:
        if self.config & 0x7 != EEN:
            log.error("NVMC erase without CONFIG=Een: ignored", what=what,
                      config=self.config)
            return False
        return True

    def _erase_page(self, address: int) -> None:
        if not self._erase_enabled(f"page 0x{address:08X}"):
            return
        self._wait_ready()
        if address % PAGE_SIZE or not 0 <= address < len(self.flash):
            log.error("NVMC page erase of an address that is no page start: ignored",
                      page=f"0x{address:08X}")
            return
        self.flash[address:address + PAGE_SIZE] = b"\xff" * PAGE_SIZE
        self.flash_written(address, PAGE_SIZE)
        self.stats["pages_erased"] += 1
        self._busy(self.t_erasepage)

    def _erase_uicr(self) -> None:
        self.uicr.words.clear()

    def _erase_all(self) -> None:
        if not self._erase_enabled("ERASEALL"):
            return
        self._wait_ready()
        self.erase_everything()
        self._busy(self.t_eraseall)

    def erase_everything(self) -> None:
        """The flash and the UICR back to 0xFF (NVMC.ERASEALL)."""
        self.erase_flash()
        self._erase_uicr()
        self.stats["erase_all"] += 1

    def erase_flash(self) -> None:
        """The flash back to 0xFF (also the CTRL-AP's ERASEALL, `qspi_gdb.sim.ctrlap`)."""
        self.settle()
        self.flash[:] = b"\xff" * len(self.flash)
        self.flash_written(0, len(self.flash))

    # -- time -----------------------------------------------------------------------------
    def _wait_ready(self) -> None:
        """A new operation while one runs waits for it (the bus stalls)."""
        if not self.ready:
            self._advance_to(self.busy_until)

    def _busy(self, seconds: float) -> None:
        self.busy_until = self.clock.now + seconds
        if self.cpu_runs_from_flash():
            self._advance_to(self.busy_until)  # the core is halted until it is done

    def _advance_to(self, when: float) -> None:
        try:
            self.clock.advance_to(when)
        except RuntimeError:
            pass  # inside a clock event: no nested time (busy_until still holds READY low)
