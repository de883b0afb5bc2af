"""IEEE 1149.1 TAP of an ARM JTAG-DP (what Debian's OpenOCD 0.12 remote_bitbang can drive).

The TAP has a 4-bit IR. Instructions: ABORT 0x8, DPACC 0xA, APACC 0xB, IDCODE 0xE, BYPASS 0xF
(any other IR value selects the 1-bit bypass register, as on ARM's JTAG-DP). DPACC/APACC/ABORT
use 35-bit DR scans: shifted in = data[34:3] | A[3:2] << 1 | RnW; captured = ReadResult << 3 |
ACK. The DP behind the TAP implements the transactions (see dap.py).

Actions happen on the TCK rising edge that enters Capture-xR (load), in Shift-xR (shift, TDI in
at the MSB, TDO = LSB) and on entering Update-xR (apply): equivalent to the standard's edges
for everything a host can observe.
"""

from __future__ import annotations

from typing import Protocol

IR_LEN = 4
IR_ABORT = 0x8
IR_DPACC = 0xA
IR_APACC = 0xB
IR_IDCODE = 0xE
IR_BYPASS = 0xF
DAP_SCAN_LEN = 35

# TAP controller states (IEEE 1149.1 figure 6-1).
TLR, RTI, SEL_DR, CAP_DR, SHIFT_DR, EXIT1_DR, PAUSE_DR, EXIT2_DR, UPD_DR = range(9)
SEL_IR, CAP_IR, SHIFT_IR, EXIT1_IR, PAUSE_IR, EXIT2_IR, UPD_IR = range(9, 16)

# NEXT_STATE[state * 2 + tms]
NEXT_STATE: tuple[int, ...] = (
    RTI, TLR,  # TLR
    RTI, SEL_DR,  # RTI
    CAP_DR, SEL_IR,  # SEL_DR
    SHIFT_DR, EXIT1_DR,  # CAP_DR
    SHIFT_DR, EXIT1_DR,  # SHIFT_DR
    PAUSE_DR, UPD_DR,  # EXIT1_DR
    PAUSE_DR, EXIT2_DR,  # PAUSE_DR
    SHIFT_DR, UPD_DR,  # EXIT2_DR
    RTI, SEL_DR,  # UPD_DR
    CAP_IR, TLR,  # SEL_IR
    SHIFT_IR, EXIT1_IR,  # CAP_IR
    SHIFT_IR, EXIT1_IR,  # SHIFT_IR
    PAUSE_IR, UPD_IR,  # EXIT1_IR
    PAUSE_IR, EXIT2_IR,  # PAUSE_IR
    SHIFT_IR, UPD_IR,  # EXIT2_IR
    RTI, SEL_DR,  # UPD_IR
)

IR_CAPTURE = 0b0001  # IEEE 1149.1: the two LSBs captured into IR are 01


class DapScanTarget(Protocol):
    """What sits behind DPACC/APACC/ABORT: an ADIv5 JTAG-DP."""

    def capture(self) -> int:
        """35-bit value captured in Capture-DR: ReadResult << 3 | ACK."""

    def capture_after_write(self) -> int | None:
        """`capture()`'s value after a pending write, without taking it (None: unknown)."""

    def dpacc(self, addr: int, rnw: bool, data: int) -> None: ...

    def apacc(self, addr: int, rnw: bool, data: int) -> None: ...

    def abort(self, data: int) -> None: ...


class JtagTap:
    """One TAP; `clock(tms, tdi)` is a TCK rising edge, `tdo` the value sampled before it.

    `state`, `sr` (shift register) and `sr_top` (its MSB index) are public so the wire's tight
    loop can shift Shift-DR bits inline and only call `clock` for the other edges.
    """

    def __init__(self, idcode: int, dp: DapScanTarget) -> None:
        self.idcode = idcode
        self.dp = dp
        self.state = TLR
        self.ir = IR_IDCODE
        self.sr = 0
        self.sr_top = 0

    @property
    def tdo(self) -> int:
        if self.state == SHIFT_DR or self.state == SHIFT_IR:
            return self.sr & 1
        return 0

    def reset(self) -> None:
        """TRST or five TMS=1 clocks: Test-Logic-Reset selects IDCODE."""
        self.state = TLR
        self.ir = IR_IDCODE

    def clock(self, tms: int, tdi: int) -> None:
        state = self.state
        if state == SHIFT_DR or state == SHIFT_IR:
            self.sr = (self.sr >> 1) | (tdi << self.sr_top)
        state = NEXT_STATE[state * 2 + tms]
        self.state = state
        if state == CAP_DR:
            self.capture_dr()
        elif state == UPD_DR:
            self.update_dr()
        elif state == CAP_IR:
            self.sr, self.sr_top = IR_CAPTURE, IR_LEN - 1
        elif state == UPD_IR:
            self.ir = self.sr & ((1 << IR_LEN) - 1)
        elif state == TLR:
            self.ir = IR_IDCODE

    def dr_length(self) -> int:
        ir = self.ir
        if ir in (IR_DPACC, IR_APACC, IR_ABORT):
            return DAP_SCAN_LEN
        if ir == IR_IDCODE:
            return 32
        return 1

    def capture_dr(self) -> None:
        ir = self.ir
        self.sr_top = self.dr_length() - 1
        if ir == IR_DPACC or ir == IR_APACC:
            self.sr = self.dp.capture()
        elif ir == IR_IDCODE:
            self.sr = self.idcode
        else:  # ABORT captures an UNKNOWN value; BYPASS captures 0
            self.sr = 0

    def capture_after_pending_write(self) -> int | None:
        """What Capture-DR will load once the DR scan now in Exit1-DR (a DPACC/APACC write) is
        applied, or None when that cannot be known before it is (see `JtagDp.capture_after_write`)."""
        if self.ir not in (IR_DPACC, IR_APACC) or self.sr & 1:
            return None
        return self.dp.capture_after_write()

    def update_dr(self) -> None:
        ir = self.ir
        sr = self.sr
        if ir == IR_DPACC or ir == IR_APACC:
            addr = (sr >> 1 & 0b11) << 2
            rnw = bool(sr & 1)
            data = sr >> 3 & 0xFFFFFFFF
            if ir == IR_DPACC:
                self.dp.dpacc(addr, rnw, data)
            else:
                self.dp.apacc(addr, rnw, data)
        elif ir == IR_ABORT:
            if sr & 0b111 == 0:  # A = 0, RnW = 0: a write of ABORT
                self.dp.abort(sr >> 3 & 0xFFFFFFFF)
