"""ARM ADIv5 debug port: a JTAG-DP with the access ports of the nRF52840 and nRF5340.

JTAG-DP semantics (ADIv5.2 B3/C2): every DPACC/APACC read is posted — its result is the
ReadResult captured by the *next* DPACC/APACC scan; a read of RDBUFF returns the last AP read
again. A bus error in a MEM-AP access sets CTRL/STAT.STICKYERR (OpenOCD then reports a data
abort) and, while a sticky flag is set, further AP transactions are discarded. JTAG-DP clears
sticky flags by writing 1 to them in CTRL/STAT.

Above the DP everything is what an SWD probe sees on silicon: MEM-AP (CSW, TAR, DRW, BD0-3,
CFG, BASE, IDR) on the system bus, the nRF CTRL-APs, and the CoreSight ROM table (served by the
System Control Space model at 0xE00FF000). The CTRL-APs and access-port protection live in
`qspi_gdb.sim.ctrlap`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from qspi_gdb.log import get_logger
from qspi_gdb.sim.bus import Bus, BusFault
from qspi_gdb.sim.ctrlap import APPLICATION, NETWORK, ChipProtection
from qspi_gdb.sim.scs import ROM_TABLE

log = get_logger("qspi_gdb.sim.dap")

ACK_OK_FAULT = 0b010
ACK_WAIT = 0b001

# DP registers (A[3:2] of DPACC).
DP_DPIDR = 0x0
DP_CTRL_STAT = 0x4
DP_SELECT = 0x8
DP_RDBUFF = 0xC

# CTRL/STAT bits.
CSYSPWRUPACK = 1 << 31
CSYSPWRUPREQ = 1 << 30
CDBGPWRUPACK = 1 << 29
CDBGPWRUPREQ = 1 << 28
CDBGRSTACK = 1 << 27
CDBGRSTREQ = 1 << 26
WDATAERR = 1 << 7
READOK = 1 << 6
STICKYERR = 1 << 5
STICKYCMP = 1 << 4
STICKYORUN = 1 << 1
ORUNDETECT = 1 << 0
STICKY_FLAGS = STICKYERR | STICKYCMP | STICKYORUN | WDATAERR
# Bits a debugger writes and reads back (power/reset requests, TRNMODE, TRNCNT, MASKLANE, ORUN).
CTRL_STAT_RW = CSYSPWRUPREQ | CDBGPWRUPREQ | CDBGRSTREQ | 0x00FFFF00 | 0b1100 | ORUNDETECT

# ABORT register bits (JTAG-DP implements DAPABORT; the clear bits are SWD's, accepted too).
DAPABORT = 1 << 0
STKCMPCLR = 1 << 1
STKERRCLR = 1 << 2
WDERRCLR = 1 << 3
ORUNERRCLR = 1 << 4

# MEM-AP registers.
AP_CSW = 0x00
AP_TAR = 0x04
AP_TAR_HI = 0x08
AP_DRW = 0x0C
AP_BD0 = 0x10
AP_BASE_HI = 0xF0
AP_CFG = 0xF4
AP_BASE = 0xF8
AP_IDR = 0xFC

CSW_SIZE_MASK = 0b111
CSW_ADDRINC_SHIFT = 4
CSW_DEVICEEN = 1 << 6
CSW_TRINPROG = 1 << 7
CSW_SPIDEN = 1 << 23

DP_IDCODES = {"nrf52840": 0x2BA01477, "nrf5340": 0x6BA02477}


class AccessPort:
    """One AP: 64 word registers addressed by byte offset 0x00-0xFC."""

    idr = 0

    def read(self, reg: int) -> int:
        if reg == AP_IDR:
            return self.idr
        return 0

    def write(self, reg: int, value: int) -> None:
        pass


class AbsentAp(AccessPort):
    """An APSEL with nothing behind it: IDR reads 0, which debuggers take as "no AP"."""


class MemAp(AccessPort):
    """MEM-AP onto a bus (AHB-AP).

    `tar_wrap` is the auto-increment block: TAR increments only within TAR[log2(wrap)-1:0], so
    the debugger must rewrite TAR at each block boundary (4 KiB as OpenOCD assumes on Cortex-M4,
    1 KiB on the Cortex-M33). Packed transfers are not implemented (CSW.AddrInc=0b10 reads back
    as 0b00), as on the Cortex-M AHB-APs.
    """

    def __init__(
        self,
        bus: Bus,
        *,
        idr: int,
        base: int,
        tar_wrap: int,
        csw_fixed: int = CSW_DEVICEEN,
        on_access: Callable[[int, bool], None] | None = None,
    ) -> None:
        self.bus = bus
        self.idr = idr
        self.base = base
        self.tar_wrap = tar_wrap
        self.csw_fixed = csw_fixed
        self.csw = csw_fixed | 0b010  # word size, no increment
        self.tar = 0
        self.on_access = on_access

    def read(self, reg: int) -> int:
        if reg == AP_CSW:
            return self.csw
        if reg == AP_TAR:
            return self.tar
        if reg == AP_DRW:
            value = self._data_read(self.tar)
            self._increment()
            return value
        if AP_BD0 <= reg <= AP_BD0 + 0xC:
            return self._data_read((self.tar & ~0xF) | (reg & 0xC), word=True)
        if reg == AP_CFG:
            return 0  # little-endian, 32-bit addresses, no large data
        if reg == AP_BASE:
            return self.base
        if reg == AP_IDR:
            return self.idr
        return 0  # TAR[63:32], BASE[63:32] and reserved registers read as zero

    def write(self, reg: int, value: int) -> None:
        if reg == AP_CSW:
            addrinc = (value >> CSW_ADDRINC_SHIFT) & 0b11
            if addrinc != 0b01:
                addrinc = 0
            kept = value & ~(0b11 << CSW_ADDRINC_SHIFT | CSW_TRINPROG | CSW_DEVICEEN | CSW_SPIDEN)
            self.csw = kept | addrinc << CSW_ADDRINC_SHIFT | self.csw_fixed
        elif reg == AP_TAR:
            self.tar = value & 0xFFFFFFFF
        elif reg == AP_DRW:
            self._data_write(self.tar, value)
            self._increment()
        elif AP_BD0 <= reg <= AP_BD0 + 0xC:
            self._data_write((self.tar & ~0xF) | (reg & 0xC), value, word=True)

    def _size(self) -> int:
        size = self.csw & CSW_SIZE_MASK
        if size > 2:
            raise BusFault(self.tar, False, f"unsupported CSW.Size {size}")
        return 1 << size

    def _data_read(self, addr: int, word: bool = False) -> int:
        size = 4 if word else self._size()
        lane = addr & (4 - size) & 3  # byte lane of a sub-word access
        value = self.bus.read(addr & ~(size - 1), size)
        if self.on_access:
            self.on_access(size, False)
        return (value << (8 * lane)) & 0xFFFFFFFF

    def _data_write(self, addr: int, value: int, word: bool = False) -> None:
        size = 4 if word else self._size()
        lane = addr & (4 - size) & 3
        self.bus.write(addr & ~(size - 1), size, (value >> (8 * lane)) & ((1 << (8 * size)) - 1))
        if self.on_access:
            self.on_access(size, True)

    def _increment(self) -> None:
        if (self.csw >> CSW_ADDRINC_SHIFT) & 0b11 == 0b01:
            step = 1 << (self.csw & CSW_SIZE_MASK)
            mask = self.tar_wrap - 1
            self.tar = (self.tar & ~mask) | ((self.tar + step) & mask)


class FaultingBus:
    """A bus that refuses every access (the nRF5340 network core while it is forced off)."""

    def __init__(self, why: str) -> None:
        self.why = why

    def read(self, addr: int, size: int) -> int:
        raise BusFault(addr, False, self.why)

    def write(self, addr: int, size: int, value: int) -> None:
        raise BusFault(addr, True, self.why)


class JtagDp:
    """The DP behind the TAP's DPACC/APACC/ABORT instructions.

    `on_transaction(ap, apsel, rnw, reg)` is called once per DPACC/APACC transaction (the
    wire's time accounting: `qspi_gdb.sim.probe`); `wait_next` > 0 answers that many scans
    with WAIT and `fault_next` > 0 fails that many AP transactions with a sticky error (fault
    injection, `qspi_gdb.sim.faults`).
    """

    def __init__(
        self,
        aps: list[AccessPort],
        *,
        dpidr: int,
        on_transaction: Callable[[bool, int, bool, int], None] | None = None,
    ) -> None:
        self.aps = aps
        self.dpidr = dpidr
        self.on_transaction = on_transaction
        self.ctrl_stat = 0
        self.select = 0
        self.read_result = 0
        self.last_ap_read = 0
        self.ack = ACK_OK_FAULT
        self.wait_next = 0
        self.fault_next = 0

    # --- scan interface (jtag.DapScanTarget) ---

    def capture(self) -> int:
        # The ACK captured with a scan says whether *this* scan's request will be taken: WAIT
        # means the previous transaction is still in progress and the request is ignored.
        if self.wait_next > 0:
            self.wait_next -= 1
            self.ack = ACK_WAIT
            if self.ctrl_stat & ORUNDETECT:
                self.ctrl_stat |= STICKYORUN
        else:
            self.ack = ACK_OK_FAULT
        return (self.read_result << 3) | self.ack

    def capture_after_write(self) -> int | None:
        """The value `capture()` will return after the pending DP/AP *write* is applied, or None
        while an injected WAIT or fault is armed. A write never changes ReadResult, and with
        nothing armed the next ACK is OK, so the wire may answer the next scan before it applies
        the write (`BitbangDecoder(post_writes=True)`)."""
        if self.wait_next > 0 or self.fault_next > 0:
            return None
        return (self.read_result << 3) | ACK_OK_FAULT

    def dpacc(self, addr: int, rnw: bool, data: int) -> None:
        if self._waiting(False, addr, rnw):
            return
        if rnw:
            self.read_result = self._dp_read(addr)
        else:
            self._dp_write(addr, data)

    def apacc(self, addr: int, rnw: bool, data: int) -> None:
        if self._waiting(True, addr, rnw):
            return
        apsel = self.select >> 24
        reg = (self.select & 0xF0) | addr
        ap = self.aps[apsel] if apsel < len(self.aps) else None
        if self.ctrl_stat & STICKY_FLAGS:
            # A sticky flag blocks AP transactions until the debugger clears it.
            if rnw:
                self.read_result = 0
            return
        if self.fault_next > 0:
            # A JTAG-DP has no FAULT acknowledge (its ACK is OK/FAULT or WAIT): an AP
            # transaction that faults sets CTRL/STAT.STICKYERR instead (ADIv5.2, JTAG-DP
            # acknowledges and sticky flags), which the debugger finds when it checks.
            self.fault_next -= 1
            self.ctrl_stat |= STICKYERR
            if rnw:
                self.read_result = self.last_ap_read = 0
            return
        try:
            if rnw:
                value = ap.read(reg) if ap else 0
                self.read_result = self.last_ap_read = value & 0xFFFFFFFF
            elif ap:
                ap.write(reg, data)
        except BusFault as fault:
            log.debug("dap_bus_fault", ap=apsel, reg=hex(reg), error=str(fault))
            self.ctrl_stat |= STICKYERR
            if rnw:
                self.read_result = self.last_ap_read = 0

    def abort(self, data: int) -> None:
        if data & (STKERRCLR | DAPABORT):
            self.ctrl_stat &= ~STICKYERR
        if data & STKCMPCLR:
            self.ctrl_stat &= ~STICKYCMP
        if data & ORUNERRCLR:
            self.ctrl_stat &= ~STICKYORUN
        if data & WDERRCLR:
            self.ctrl_stat &= ~WDATAERR

    # --- registers ---

    def _waiting(self, ap: bool, addr: int, rnw: bool) -> bool:
        if self.on_transaction:
            self.on_transaction(ap, self.select >> 24, rnw, addr)
        return self.ack == ACK_WAIT

    def _dp_read(self, addr: int) -> int:
        if addr == DP_CTRL_STAT:
            value = self.ctrl_stat
            # Power domains and debug reset acknowledge what was requested, at once.
            if value & CSYSPWRUPREQ:
                value |= CSYSPWRUPACK
            if value & CDBGPWRUPREQ:
                value |= CDBGPWRUPACK
            if value & CDBGRSTREQ:
                value |= CDBGRSTACK
            return value
        if addr == DP_SELECT:
            return self.select
        if addr == DP_RDBUFF:
            return self.last_ap_read
        return self.dpidr

    def _dp_write(self, addr: int, data: int) -> None:
        if addr == DP_CTRL_STAT:
            cleared = data & STICKY_FLAGS  # JTAG-DP: write 1 to clear
            self.ctrl_stat = (self.ctrl_stat & STICKY_FLAGS & ~cleared) | (data & CTRL_STAT_RW)
        elif addr == DP_SELECT:
            self.select = data & 0xFF0000FF
        # DPIDR is read-only; writes to RDBUFF are ignored.


@dataclass(frozen=True)
class ApLayout:
    dpidr: int
    tar_wrap: int


def build_dap(
    chip: str,
    bus: Bus,
    system_reset: Callable[[], None],
    *,
    protection: ChipProtection | None = None,
    on_transaction: Callable[[bool, int, bool, int], None] | None = None,
    on_access: Callable[[int, bool], None] | None = None,
) -> JtagDp:
    """The chip's real AP layout: nRF52840 AHB-AP 0 + CTRL-AP 1; nRF5340 application AHB-AP 0,
    network AHB-AP 1, CTRL-APs 2 (application) and 3 (network). The MEM-APs answer as access-port
    protection lets them and the CTRL-APs belong to `protection` (`qspi_gdb.sim.ctrlap`; a debug
    port tested alone gets an unprotected chip whose erases clear nothing)."""
    protection = protection or ChipProtection(chip)
    rom = ROM_TABLE | 0b11  # BASE: entry present, ADIv5 format; the SCS model serves the table
    if chip == "nrf52840":
        app = MemAp(bus, idr=0x24770011, base=rom, tar_wrap=4096, on_access=on_access)
        aps: list[AccessPort] = [protection.gate(app, APPLICATION),
                                 protection.ctrl_ap(APPLICATION, system_reset)]
    elif chip == "nrf5340":
        # OpenOCD 0.12 rewrites TAR every 1 KiB on the Cortex-M33.
        csw_fixed = CSW_DEVICEEN | CSW_SPIDEN  # debug enabled while the port is open
        app = MemAp(
            bus, idr=0x84770001, base=rom, tar_wrap=1024, csw_fixed=csw_fixed, on_access=on_access
        )
        network = getattr(protection.board, "network", None)
        net = MemAp(
            network if network is not None else FaultingBus("network core not modelled"),
            idr=0x84770001,
            base=rom,
            tar_wrap=1024,
            csw_fixed=csw_fixed,
        )
        aps = [
            protection.gate(app, APPLICATION),
            # a network core held in Force-OFF shows its AP disabled, as a protected one does
            protection.gate(net, NETWORK,
                            powered=lambda: network is not None and not network.forceoff),
            protection.ctrl_ap(APPLICATION, system_reset),
            protection.ctrl_ap(NETWORK, system_reset),
        ]
    else:
        raise ValueError(f"unknown chip {chip!r}")
    return JtagDp(aps, dpidr=DP_IDCODES[chip], on_transaction=on_transaction)
