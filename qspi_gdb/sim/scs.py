"""The Private Peripheral Bus seen by a debugger and by code: System Control Space and friends.

Covers 0xE0000000-0xE00FFFFF: ITM (component IDs and enables), DWT (CTRL, CYCCNT from the board
clock, comparators stored), FPB (FP_CTRL per core revision, comparators -> core breakpoints), the
SCS proper (SysTick, NVIC delegated to `board.nvic`, SCB, debug registers DHCSR/DCRSR/DCRDR/
DEMCR/DSCSR, FPU and ID registers, DAUTHSTATUS and CoreSight IDs) and the ROM table at
0xE00FF000. Anything else raises BusFault and is logged: a debugger sees a data abort, code a
bus fault, never a silent zero.

Two cores: Cortex-M4 r0p1 with FPv4-SP (nRF52840) and Cortex-M33 r0p4 with FPv5-SP and the
Security Extension (nRF5340 application core). The values OpenOCD 0.12 checks (MVFR0/1,
DAUTHSTATUS.SID, FP_CTRL.REV, DWT_DEVARCH) are exact, or it silently drops registers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qspi_gdb.log import get_logger
from qspi_gdb.sim.bus import BusFault
from qspi_gdb.sim.nvic import NMI as NMI_EXCEPTION
from qspi_gdb.sim.nvic import PENDSV as PENDSV_EXCEPTION
from qspi_gdb.sim.nvic import SYSTICK as SYSTICK_EXCEPTION

log = get_logger("qspi_gdb.sim.scs")

# Debug registers.
DHCSR = 0xE000EDF0
DCRSR = 0xE000EDF4
DCRDR = 0xE000EDF8
DEMCR = 0xE000EDFC
DSCSR = 0xE000EE08
DFSR = 0xE000ED30
DAUTHSTATUS = 0xE000EFB8

DBGKEY = 0xA05F
C_DEBUGEN = 1 << 0
C_HALT = 1 << 1
C_STEP = 1 << 2
C_MASKINTS = 1 << 3
C_SNAPSTALL = 1 << 5
S_REGRDY = 1 << 16
S_HALT = 1 << 17
S_SLEEP = 1 << 18
S_LOCKUP = 1 << 19
S_SDE = 1 << 20
S_RETIRE_ST = 1 << 24
S_RESET_ST = 1 << 25

DCRSR_REGWNR = 1 << 16
VC_CORERESET = 1 << 0
TRCENA = 1 << 24
DEMCR_MASK = 0x010F07F1

# SCB.
CPUID = 0xE000ED00
ICSR = 0xE000ED04
VTOR = 0xE000ED08
AIRCR = 0xE000ED0C
SCR = 0xE000ED10
CCR = 0xE000ED14
SHPR1 = 0xE000ED18  # SHPR1..3: system handler priorities, byte per exception 4..15
SHPR3 = 0xE000ED20
SHCSR = 0xE000ED24
CPACR = 0xE000ED88
NSACR = 0xE000ED8C  # ARMv8-M with the Security Extension
MPU_TYPE = 0xE000ED90
MPU_CTRL = 0xE000ED94
MPU_RNR = 0xE000ED98
MPU_RBAR = 0xE000ED9C
MPU_LAST = 0xE000EDB8  # RBAR/RASR (v8-M RLAR) and their three aliases end here
MPU_MAIR0 = 0xE000EDC0  # ARMv8-M
MPU_MAIR1 = 0xE000EDC4
MPU_REGIONS = 8  # MPU_TYPE.DREGION of both cores (Cortex-M4 and M33 TRMs: 8 regions)
AIRCR_VECTKEY = 0x05FA
AIRCR_VECTKEYSTAT = 0xFA05
SYSRESETREQ = 1 << 2
VECTRESET = 1 << 0

# NVIC (delegated).
NVIC_FIRST = 0xE000E100
NVIC_END = 0xE000E4F0

# SysTick.
SYST_CSR = 0xE000E010
SYST_RVR = 0xE000E014
SYST_CVR = 0xE000E018
SYST_CALIB = 0xE000E01C

# FPB.
FP_CTRL = 0xE0002000
FP_REMAP = 0xE0002004
FP_COMP0 = 0xE0002008

# DWT.
DWT_CTRL = 0xE0001000
DWT_CYCCNT = 0xE0001004
DWT_COMP0 = 0xE0001020
DWT_LSR = 0xE0001FB4
DWT_DEVARCH = 0xE0001FBC

ROM_TABLE = 0xE00FF000


@dataclass(frozen=True)
class CoreProfile:
    """What distinguishes the two cores to a debugger."""

    name: str
    cpuid: int
    mvfr0: int
    mvfr1: int
    mvfr2: int | None
    fp_ctrl_ro: int  # REV, NUM_CODE, NUM_LIT fields
    fpb_rev2: bool  # FPBv2: comparators hold BPADDR[31:1] | BE
    dwt_ctrl_ro: int
    v8m: bool
    ictr: int
    ccr_reset: int
    # ID_PFR0..ID_ISAR5 at 0xE000ED40..0xE000ED74
    feature_ids: tuple[int, ...]
    component_ids: dict[int, tuple[int, ...]] = field(default_factory=dict)
    rom_entries: tuple[int, ...] = ()


def _cs_ids(pidr: int, cidr: int) -> tuple[int, ...]:
    """PIDR4..7, PIDR0..3, CIDR0..3 as the 12 words at offsets 0xFD0..0xFFC."""
    p = [(pidr >> (8 * i)) & 0xFF for i in range(8)]
    c = [(cidr >> (8 * i)) & 0xFF for i in range(4)]
    return (p[4], p[5], p[6], p[7], p[0], p[1], p[2], p[3], *c)


# CIDR classes: 0x1 ROM table, 0x9 CoreSight component, 0xE generic IP (ARMv7-M SCS/DWT/FPB).
_CIDR_ROM = 0xB105100D
_CIDR_CS = 0xB105900D
_CIDR_GENERIC = 0xB105E00D


def _arm_pidr(part: int, rev: int = 0) -> int:
    """ARM Ltd (JEP106 0x3B, continuation 4) peripheral ID for a 4 KiB component."""
    return 0x04_00_00_00_00 | (rev << 20) | (1 << 19) | (0x3B << 12) | part


CORTEX_M4 = CoreProfile(
    name="Cortex-M4",
    cpuid=0x410FC241,
    mvfr0=0x10110021,
    mvfr1=0x11000011,
    mvfr2=None,
    fp_ctrl_ro=(0 << 28) | (2 << 8) | (6 << 4),  # FPBv1: 6 code + 2 literal comparators
    fpb_rev2=False,
    dwt_ctrl_ro=4 << 28,  # 4 comparators, cycle counter and profiling counters present
    v8m=False,
    ictr=1,  # up to 64 interrupts (nRF52840 has 48)
    ccr_reset=0x00000200,  # STKALIGN
    feature_ids=(
        0x00000030, 0x00000200, 0x00100000, 0x00000000,  # ID_PFR0, ID_PFR1, ID_DFR0, ID_AFR0
        0x00100030, 0x00000000, 0x01000000, 0x00000000,  # ID_MMFR0..3
        0x01101110, 0x02112000, 0x21232231, 0x01111131, 0x01310132, 0x00000000,  # ID_ISAR0..5
    ),
    component_ids={
        0xE000E000: _cs_ids(_arm_pidr(0x00C), _CIDR_GENERIC),  # SCS-M4
        0xE0001000: _cs_ids(_arm_pidr(0x002, 3), _CIDR_GENERIC),  # DWT
        0xE0002000: _cs_ids(_arm_pidr(0x003, 2), _CIDR_GENERIC),  # FPB
        0xE0000000: _cs_ids(_arm_pidr(0x001, 3), _CIDR_GENERIC),  # ITM
        ROM_TABLE: _cs_ids(_arm_pidr(0x4C4), _CIDR_ROM),  # Cortex-M4 ROM table
    },
    # SCS, DWT, FPB, ITM present; TPIU and ETM listed absent (offsets, bit 0 = present).
    rom_entries=(0xFFF0F003, 0xFFF02003, 0xFFF03003, 0xFFF01003, 0xFFF41002, 0xFFF42002, 0),
)

CORTEX_M33 = CoreProfile(
    name="Cortex-M33",
    cpuid=0x410FD214,
    mvfr0=0x10110021,
    mvfr1=0x11000011,
    mvfr2=0x00000040,
    fp_ctrl_ro=(1 << 28) | (0 << 8) | (8 << 4),  # FPBv2: 8 code comparators, no literal
    fpb_rev2=True,
    dwt_ctrl_ro=4 << 28,
    v8m=True,
    ictr=2,  # up to 96 interrupts (nRF5340 application core has 69)
    ccr_reset=0x00000201,  # STKOFHFNMIGN=0, BP... STKALIGN RES1, UNALIGN_TRP=0, bit0 RES1
    feature_ids=(
        0x00000030, 0x00000210, 0x00200000, 0x00000000,
        0x00101F40, 0x00000000, 0x01000000, 0x00000000,
        0x01101110, 0x02212000, 0x20232232, 0x01111131, 0x01310132, 0x00000000,
    ),
    component_ids={
        0xE000E000: _cs_ids(_arm_pidr(0xD21, 4), _CIDR_CS),
        0xE0001000: _cs_ids(_arm_pidr(0xD21, 4), _CIDR_CS),
        0xE0002000: _cs_ids(_arm_pidr(0xD21, 4), _CIDR_CS),
        0xE0000000: _cs_ids(_arm_pidr(0xD21, 4), _CIDR_CS),
        ROM_TABLE: _cs_ids(_arm_pidr(0x4C9), _CIDR_ROM),
    },
    rom_entries=(0xFFF0F003, 0xFFF02003, 0xFFF03003, 0xFFF01003, 0xFFF41002, 0xFFF42002, 0),
)

# DEVARCH (0xFBC) of ARMv8-M CoreSight components; ARMv7-M parts read 0 there.
_DEVARCH_V8M = {0xE000E000: 0x47702A04, 0xE0001000: 0x47701A02, 0xE0002000: 0x47701A03,
                0xE0000000: 0x47701A01}
_DEVTYPE_V8M = {0xE000E000: 0x00, 0xE0001000: 0x00, 0xE0002000: 0x00, 0xE0000000: 0x43}

PROFILES = {"nrf52840": CORTEX_M4, "nrf5340": CORTEX_M33}


def chip_name(board) -> str:
    """'nrf52840' or 'nrf5340' from whatever the board calls its chip."""
    chip = getattr(board, "chip", board)
    text = chip if isinstance(chip, str) else str(getattr(chip, "name", chip))
    text = text.lower()
    for name in PROFILES:
        if name in text:
            return name
    raise ValueError(f"unknown chip {text!r}")


class SystemControlSpace:
    """read(addr, size) / write(addr, size, value) for 0xE0000000-0xE00FFFFF."""

    def __init__(self, board, profile: CoreProfile | None = None) -> None:
        self.board = board
        self.profile = profile or PROFILES[chip_name(board)]
        # Debug domain: survives a system reset (power-on reset only on silicon).
        self.dhcsr_ctrl = 0  # C_* bits
        self.dcrdr = 0
        self.demcr = 0
        self.fp_ctrl_enable = 0
        self.fp_comp = [0] * self._fp_num_code()
        self.dwt_ctrl = 0
        self.dwt_regs: dict[int, int] = {}
        self._cyccnt_base = 0
        self._cyccnt_since: float | None = None
        self.dscsr = 1 << 16  # CDS: the core starts in Secure state
        self.itm_regs: dict[int, int] = {}
        self._reset_seen = True  # S_RESET_ST after power-on
        self._logged: set[tuple[int, bool]] = set()
        self._retired = False
        # The wire's probe model (qspi_gdb.sim.probe.ProbeClock): told of DHCSR reads and halt
        # requests, which is how a debugger notices halts.
        self.debug_observer = None
        self.reset()

    # --- properties the CPU side may consult ---

    @property
    def debug_enabled(self) -> bool:
        return bool(self.dhcsr_ctrl & C_DEBUGEN)

    @property
    def maskints(self) -> bool:
        return bool(self.dhcsr_ctrl & C_MASKINTS)

    @property
    def vtor(self) -> int:
        return self.scb.get(VTOR, 0)

    def reset(self) -> None:
        """System (local) reset: SCB, SysTick and FPU control return to reset values; the debug
        registers, FPB and DWT are in the debug domain and keep their state."""
        self.scb: dict[int, int] = {CCR: self.profile.ccr_reset}
        if self.profile.v8m:
            self.scb[0xE000EF34] = 0xC0000004  # FPCCR: ASPEN, LSPEN, S
        else:
            self.scb[0xE000EF34] = 0xC0000000
        self.systick = {SYST_CSR: 0, SYST_RVR: 0, SYST_CVR: 0}
        self._systick_since: float | None = None
        self.mpu = MpuRegisters(self.profile.v8m)

    def note_reset(self) -> None:
        """Record a system reset for DHCSR.S_RESET_ST and reset the SCB (idempotent per reset)."""
        self.reset()
        self._reset_seen = True

    def note_retired(self) -> None:
        """The core executed instructions (DHCSR.S_RETIRE_ST)."""
        self._retired = True

    # --- bus interface ---

    def read(self, addr: int, size: int) -> int:
        if size == 4:
            return self._read_word(addr)
        if NVIC_FIRST <= addr < NVIC_END:
            return self.board.nvic.read(addr, size)
        word = self._read_word(addr & ~3)
        return (word >> (8 * (addr & 3))) & ((1 << (8 * size)) - 1)

    def write(self, addr: int, size: int, value: int) -> None:
        if size == 4:
            self._write_word(addr, value & 0xFFFFFFFF)
            return
        if NVIC_FIRST <= addr < NVIC_END:
            self.board.nvic.write(addr, size, value)
            return
        # Sub-word write to a word register: merge into the current value (byte-accessible
        # registers such as SHPR; keyed registers ignore it as the key is not in the merge).
        shift = 8 * (addr & 3)
        mask = ((1 << (8 * size)) - 1) << shift
        word = self._read_word(addr & ~3)
        self._write_word(addr & ~3, (word & ~mask) | ((value << shift) & mask))

    # --- words ---

    def _read_word(self, addr: int) -> int:
        core = self.board.core
        if addr == DHCSR:
            return self._dhcsr()
        if addr == DCRDR:
            return self.dcrdr
        if addr == DCRSR:
            return 0
        if addr == DEMCR:
            return self.demcr
        if addr == DFSR:
            return core.dfsr
        if NVIC_FIRST <= addr < NVIC_END:
            return self.board.nvic.read(addr, 4)
        if addr == CPUID:
            return self.profile.cpuid
        if addr == AIRCR:
            return (AIRCR_VECTKEYSTAT << 16) | (self.scb.get(AIRCR, 0) & 0xFFFF)
        if addr == ICSR:
            return self._icsr()
        if SHPR1 <= addr <= SHPR3:
            nvic = self.board.nvic
            return sum(nvic.shpr_read(addr - SHPR1 + i) << (8 * i) for i in range(4))
        if addr == SHCSR:
            return self._shcsr()
        if MPU_TYPE <= addr <= MPU_LAST or (self.profile.v8m and addr in (MPU_MAIR0, MPU_MAIR1)):
            return self.mpu.read(addr)
        if addr == NSACR and self.profile.v8m:
            return self.scb.get(NSACR, 0)
        if 0xE000ED08 <= addr <= 0xE000ED3C or addr == CPACR or addr in (0xE000EF34, 0xE000EF38,
                                                                          0xE000EF3C):
            return self.scb.get(addr, 0)
        if 0xE000ED40 <= addr <= 0xE000ED74:
            return self.profile.feature_ids[(addr - 0xE000ED40) // 4]
        if addr == 0xE000EF40:
            return self.profile.mvfr0
        if addr == 0xE000EF44:
            return self.profile.mvfr1
        if addr == 0xE000EF48 and self.profile.mvfr2 is not None:
            return self.profile.mvfr2
        if addr == 0xE000E004:
            return self.profile.ictr
        if addr == 0xE000E008:
            return self.scb.get(addr, 0)  # ACTLR
        if SYST_CSR <= addr <= SYST_CALIB:
            return self._systick_read(addr)
        if self.profile.v8m:
            if addr == DSCSR:
                return self.dscsr
            if addr == DAUTHSTATUS:
                return 0x000000FF  # secure and non-secure invasive/non-invasive debug enabled
            if addr == 0xE000EFBC:
                return _DEVARCH_V8M[0xE000E000]
        if addr in (0xE0000FBC, 0xE0001FBC, 0xE0002FBC, 0xE0000FCC, 0xE0001FCC, 0xE0002FCC) \
                and not self.profile.v8m:
            return 0  # DEVARCH/DEVTYPE are RAZ on ARMv7-M components (OpenOCD probes DEVARCH)
        if 0xE0002000 <= addr < 0xE0003000:
            return self._fpb_read(addr)
        if 0xE0001000 <= addr < 0xE0002000:
            return self._dwt_read(addr)
        if 0xE0000000 <= addr < 0xE0001000:
            return self._itm_read(addr)
        if ROM_TABLE <= addr < ROM_TABLE + 0x1000:
            return self._rom_read(addr)
        return self._component_id_or_fault(addr)

    def _write_word(self, addr: int, value: int) -> None:
        core = self.board.core
        if addr == DHCSR:
            self._dhcsr_write(value)
        elif addr == DCRSR:
            self._dcrsr_write(value)
        elif addr == DCRDR:
            self.dcrdr = value
        elif addr == DEMCR:
            self.demcr = value & DEMCR_MASK
            core.vector_catch = bool(self.demcr & VC_CORERESET)
            self._cyccnt_settle()
        elif addr == DFSR:
            core.clear_dfsr(value & 0x1F)
        elif NVIC_FIRST <= addr < NVIC_END:
            self.board.nvic.write(addr, 4, value)
        elif addr == AIRCR:
            self._aircr_write(value)
        elif addr == ICSR:
            self._icsr_write(value)
        elif SHPR1 <= addr <= SHPR3:
            for i in range(4):
                self.board.nvic.shpr_write(addr - SHPR1 + i, (value >> (8 * i)) & 0xFF)
        elif addr == SHCSR:
            # the enable bits (MEMFAULTENA..SECUREFAULTENA) are kept; faults still escalate
            # to HardFault (configurable fault handlers are not modelled). The active and
            # pended bits are the exception state's, not writable here.
            self.scb[SHCSR] = value & 0x000F0000
        elif MPU_TYPE <= addr <= MPU_LAST or (self.profile.v8m
                                              and addr in (MPU_MAIR0, MPU_MAIR1)):
            self.mpu.write(addr, value)
        elif addr == NSACR and self.profile.v8m:
            self.scb[NSACR] = value & 0x00000CFF  # CP10, CP11, CP0..CP7
        elif addr in (VTOR, SCR, CCR, CPACR, 0xE000E008):
            self.scb[addr] = value & (0xFFFFFF80 if addr == VTOR else 0xFFFFFFFF)
            if addr == SCR:
                core.sevonpend = bool(value & (1 << 4))
        elif 0xE000ED28 <= addr <= 0xE000ED2C or addr == 0xE000ED3C:
            self.scb[addr] = self.scb.get(addr, 0) & ~value  # CFSR/HFSR/AFSR: write 1 to clear
        elif addr in (0xE000ED34, 0xE000ED38, 0xE000EF34, 0xE000EF38, 0xE000EF3C):
            self.scb[addr] = value
        elif addr == 0xE000EF00:
            self.board.nvic.write(NVIC_FIRST + 0x100 + 4 * ((value & 0x1FF) // 32), 4,
                                  1 << (value & 31))  # STIR: pend via ISPR
        elif SYST_CSR <= addr <= SYST_CVR:
            self._systick_write(addr, value)
        elif self.profile.v8m and addr == DSCSR:
            self.dscsr = (self.dscsr & ~0x3) | (value & 0x3)  # SBRSEL, SBRSELEN; CDS stays
        elif 0xE0002000 <= addr < 0xE0003000:
            self._fpb_write(addr, value)
        elif 0xE0001000 <= addr < 0xE0002000:
            self._dwt_write(addr, value)
        elif 0xE0000000 <= addr < 0xE0001000:
            self.itm_regs[addr] = value
        elif addr in (0xE000EFB0, 0xE0001FB0, 0xE0002FB0):
            pass  # Lock Access Registers: no software lock for debugger accesses
        else:
            raise self._unmodelled(addr, True)

    def _unmodelled_once(self, addr: int, event: str) -> None:
        if (addr, True) not in self._logged:
            self._logged.add((addr, True))
            log.warning(event, addr=f"0x{addr:08X}")

    def _unmodelled(self, addr: int, write: bool) -> BusFault:
        if (addr, write) not in self._logged:  # loud once per address, not per poll
            self._logged.add((addr, write))
            log.warning("scs_unmodelled_access", addr=f"0x{addr:08X}", write=write)
        return BusFault(addr, write, "System Control Space register not modelled")

    # --- debug halting control ---

    def _dhcsr(self) -> int:
        core = self.board.core
        if self.debug_observer is not None:
            self.debug_observer.dhcsr_read(core.halted)
        value = self.dhcsr_ctrl & (C_DEBUGEN | C_STEP | C_MASKINTS | C_SNAPSTALL)
        if core.halted:
            value |= C_HALT | S_HALT | S_REGRDY
        else:
            self._retired = True
        if getattr(core, "sleeping", False):
            value |= S_SLEEP
        if getattr(core, "lockup", False):
            value |= S_LOCKUP
        if self.profile.v8m:
            value |= S_SDE
        if self._retired:
            value |= S_RETIRE_ST
            self._retired = False
        if self._reset_seen:
            value |= S_RESET_ST
            self._reset_seen = False
        return value

    def _dhcsr_write(self, value: int) -> None:
        if value >> 16 != DBGKEY:
            return  # writes without the key are ignored
        core = self.board.core
        ctrl = value & (C_DEBUGEN | C_HALT | C_STEP | C_MASKINTS | C_SNAPSTALL)
        if not ctrl & C_DEBUGEN:
            # Halting debug disabled: C_HALT/C_STEP/C_MASKINTS read as 0; a halted core leaves
            # Debug state.
            self.dhcsr_ctrl = 0
            core.maskints = False
            if core.halted:
                self._retired = True
                core.resume()
            return
        was_maskints = self.dhcsr_ctrl & C_MASKINTS
        if not core.halted:
            ctrl = (ctrl & ~C_MASKINTS) | was_maskints  # C_MASKINTS changes only while halted
        self.dhcsr_ctrl = ctrl & ~C_HALT
        core.maskints = bool(ctrl & C_MASKINTS)
        if ctrl & C_HALT:
            if self.debug_observer is not None:
                self.debug_observer.halt_requested()
            if not core.halted:
                core.halt("halted")
        elif core.halted:
            self._retired = True
            if ctrl & C_STEP:
                core.step()
            else:
                core.resume()

    def _dcrsr_write(self, value: int) -> None:
        core = self.board.core
        if not core.halted:
            log.warning("dcrsr_while_running", value=f"0x{value:08X}")
            return
        sel = value & 0x7F
        if value & DCRSR_REGWNR:
            # (CortexM.write_core_reg keeps xPSR.T across a PC write, as silicon does.)
            core.write_core_reg(sel, self.dcrdr)
        else:
            self.dcrdr = core.read_core_reg(sel) & 0xFFFFFFFF

    # --- SCB ---

    def _aircr_write(self, value: int) -> None:
        if value >> 16 != AIRCR_VECTKEY:
            return
        self.scb[AIRCR] = value & 0x0000E708  # PRIGROUP, SYSRESETREQS, BFHFNMINS, PRIS
        self.board.nvic.prigroup = (value >> 8) & 7
        if value & SYSRESETREQ or (value & VECTRESET and not self.profile.v8m):
            self.board.system_reset()
            self.note_reset()

    def _icsr(self) -> int:
        """ICSR (ARMv7-M B3.2.4): VECTACTIVE, RETTOBASE, VECTPENDING, ISRPENDING and the
        NMI / PendSV / SysTick pend bits of the exception state."""
        nvic = self.board.nvic
        value = 0
        pending = nvic.highest_pending_exception()
        if pending is not None:
            value |= pending << 12  # VECTPENDING
        if nvic.pending:
            value |= 1 << 22  # ISRPENDING: an external interrupt is pending
        if nvic.is_pending(NMI_EXCEPTION):
            value |= 1 << 31
        if nvic.is_pending(PENDSV_EXCEPTION):
            value |= 1 << 28
        if nvic.is_pending(SYSTICK_EXCEPTION):
            value |= 1 << 26
        vectactive = getattr(self.board.core, "vectactive", 0) & 0x1FF
        if vectactive and len(nvic.active_exceptions()) <= 1:
            value |= 1 << 11  # RETTOBASE: no other active exception to return to
        return value | vectactive

    def _icsr_write(self, value: int) -> None:
        nvic = self.board.nvic
        for exception, set_bit, clr_bit in ((PENDSV_EXCEPTION, 28, 27),
                                            (SYSTICK_EXCEPTION, 26, 25)):
            if value & (1 << set_bit):
                nvic.pend_exception(exception)
            elif value & (1 << clr_bit):
                nvic.unpend_exception(exception)
        if value & (1 << 31):
            nvic.pend_exception(NMI_EXCEPTION)

    def _shcsr(self) -> int:
        """SHCSR: the enable bits written, the active and pended bits of the exception
        state (ARMv7-M B3.2.13)."""
        nvic = self.board.nvic
        value = self.scb.get(SHCSR, 0)
        active = set(nvic.active_exceptions())
        for exception, bit in ((4, 0), (5, 1), (6, 3), (11, 7), (12, 8), (14, 10), (15, 11)):
            if exception in active:
                value |= 1 << bit
        if self.profile.v8m:
            for exception, bit in ((3, 2), (7, 4), (2, 5)):
                if exception in active:
                    value |= 1 << bit
        return value

    # --- SysTick (counts at the core clock; interrupts are not modelled) ---

    def _systick_cycles(self) -> int:
        if self._systick_since is None:
            return 0
        return int((self.board.clock.now - self._systick_since) * self.board.core_hz)

    def _systick_read(self, addr: int) -> int:
        if addr == SYST_CALIB:
            return 1 << 31  # NOREF: no reference clock; TENMS unknown
        csr, rvr = self.systick[SYST_CSR], self.systick[SYST_RVR]
        if addr == SYST_RVR:
            return rvr
        cvr = self.systick[SYST_CVR]
        elapsed = self._systick_cycles()
        wrapped = False
        if csr & 1 and elapsed:
            # COUNTFLAG: the counter went from 1 to 0 (a reload from 0 does not count).
            if elapsed <= cvr:
                wrapped = elapsed == cvr
                cvr -= elapsed
            else:
                period = rvr + 1
                over = elapsed - cvr - 1  # cycles after the first reload
                wrapped = cvr > 0 or (rvr > 0 and over >= rvr)
                cvr = rvr - (over % period) if rvr else 0
        if addr == SYST_CVR:
            return cvr
        # CSR: COUNTFLAG set when the counter passed 0 since the last CSR read; reading clears.
        flag = wrapped or bool(csr & (1 << 16))
        if csr & 1:
            self.systick[SYST_CVR] = cvr
            self._systick_since = self.board.clock.now
        self.systick[SYST_CSR] = csr & ~(1 << 16)
        return (csr & 0x3) | 4 | ((1 << 16) if flag else 0)  # CLKSOURCE: processor clock

    def _systick_write(self, addr: int, value: int) -> None:
        if addr == SYST_CVR:
            self.systick[SYST_CVR] = 0
            self.systick[SYST_CSR] &= ~(1 << 16)
            self._systick_since = self.board.clock.now if self.systick[SYST_CSR] & 1 else None
            return
        if addr == SYST_RVR:
            self.systick[SYST_RVR] = value & 0xFFFFFF
            return
        # CSR
        if value & 2:
            log.warning("systick_interrupt_not_modelled")
        current = self._systick_read(SYST_CVR)
        self.systick[SYST_CVR] = current
        self.systick[SYST_CSR] = value & 0x7
        self._systick_since = self.board.clock.now if value & 1 else None

    # --- FPB ---

    def _fp_num_code(self) -> int:
        ro = self.profile.fp_ctrl_ro
        return ((ro >> 8) & 0x70) | ((ro >> 4) & 0xF)

    def _fp_num_lit(self) -> int:
        return (self.profile.fp_ctrl_ro >> 8) & 0xF

    def _fpb_read(self, addr: int) -> int:
        if addr == FP_CTRL:
            return self.profile.fp_ctrl_ro | self.fp_ctrl_enable
        if addr == FP_REMAP:
            return 0  # no remapping support (RMPSPT = 0)
        index = (addr - FP_COMP0) // 4
        if 0 <= index < len(self.fp_comp):
            return self.fp_comp[index]
        if 0 <= index < len(self.fp_comp) + self._fp_num_lit():
            return 0
        if addr == 0xE0002FBC and self.profile.v8m:
            return _DEVARCH_V8M[0xE0002000]
        return self._component_id_or_fault(addr)

    def _fpb_write(self, addr: int, value: int) -> None:
        if addr == FP_CTRL:
            if value & 2:  # KEY
                self.fp_ctrl_enable = value & 1
        elif addr == FP_REMAP:
            pass
        else:
            index = (addr - FP_COMP0) // 4
            if 0 <= index < len(self.fp_comp):
                self.fp_comp[index] = value
            elif not 0 <= index < len(self.fp_comp) + self._fp_num_lit():
                raise self._unmodelled(addr, True)
        self._update_breakpoints()

    def breakpoint_addresses(self) -> set[int]:
        """Instruction addresses the enabled FPB comparators match."""
        if not self.fp_ctrl_enable:
            return set()
        found: set[int] = set()
        for comp in self.fp_comp:
            if not comp & 1:
                continue
            if self.profile.fpb_rev2:
                found.add(comp & 0xFFFFFFFE)
            else:
                base = comp & 0x1FFFFFFC
                replace = comp >> 30
                if replace & 1:
                    found.add(base)
                if replace & 2:
                    found.add(base + 2)
        return found

    def _update_breakpoints(self) -> None:
        self.board.core.set_breakpoints(self.breakpoint_addresses())

    # --- DWT ---

    def _cyccnt_running(self) -> bool:
        return bool(self.dwt_ctrl & 1 and self.demcr & TRCENA)

    def _cyccnt(self) -> int:
        count = self._cyccnt_base
        if self._cyccnt_since is not None:
            count += int((self.board.clock.now - self._cyccnt_since) * self.board.core_hz)
        return count & 0xFFFFFFFF

    def _cyccnt_settle(self) -> None:
        """Fold elapsed cycles into the base and (re)start or stop counting."""
        self._cyccnt_base = self._cyccnt()
        self._cyccnt_since = self.board.clock.now if self._cyccnt_running() else None

    def _dwt_read(self, addr: int) -> int:
        if addr == DWT_CTRL:
            return self.profile.dwt_ctrl_ro | (self.dwt_ctrl & 0x0FFFFFFF)
        if addr == DWT_CYCCNT:
            return self._cyccnt()
        if addr == DWT_LSR:
            return 0  # no software lock for debugger accesses
        if addr == DWT_DEVARCH and self.profile.v8m:
            return _DEVARCH_V8M[0xE0001000]
        if 0xE0001008 <= addr <= 0xE0001018 or DWT_COMP0 <= addr < DWT_COMP0 + 0x40:
            return self.dwt_regs.get(addr, 0)
        return self._component_id_or_fault(addr)

    def _dwt_write(self, addr: int, value: int) -> None:
        if addr == DWT_CTRL:
            self.dwt_ctrl = value & 0x0FFFFFFF
            self._cyccnt_settle()
        elif addr == DWT_CYCCNT:
            self._cyccnt_base = value
            self._cyccnt_since = self.board.clock.now if self._cyccnt_running() else None
        elif 0xE0001008 <= addr <= 0xE0001018 or DWT_COMP0 <= addr < DWT_COMP0 + 0x40:
            # Comparators are stored; watchpoint matching is not modelled: say so when a
            # debugger arms one (FUNCTION != 0) instead of letting it silently never fire.
            self.dwt_regs[addr] = value
            if addr >= DWT_COMP0 and (addr - DWT_COMP0) % 16 == 8 and value & 0xF:
                self._unmodelled_once(addr, "dwt_watchpoint_not_modelled")
        elif addr == 0xE0001FB0:
            pass
        else:
            raise self._unmodelled(addr, True)

    # --- ITM, ROM table, component IDs ---

    def _itm_read(self, addr: int) -> int:
        if addr < 0xE0000080:
            return 1  # stimulus port FIFO ready
        if addr == 0xE0000FBC and self.profile.v8m:
            return _DEVARCH_V8M[0xE0000000]
        ids = self._component_id(addr)
        if ids is not None:
            return ids
        return self.itm_regs.get(addr, 0) if addr in (0xE0000E00, 0xE0000E40, 0xE0000E80) else \
            self._raise_unmodelled(addr)

    def _raise_unmodelled(self, addr: int) -> int:
        raise self._unmodelled(addr, False)

    def _rom_read(self, addr: int) -> int:
        offset = addr - ROM_TABLE
        entries = self.profile.rom_entries
        if offset < 4 * len(entries):
            return entries[offset // 4]
        if offset == 0xFCC:
            return 1  # MEMTYPE: system memory present on the bus
        ids = self._component_id(addr)
        if ids is not None:
            return ids
        if offset < 0xF00:
            return 0  # the rest of the entry array: end markers
        raise self._unmodelled(addr, False)

    def _component_id_or_fault(self, addr: int) -> int:
        """A CoreSight ID/management register read, or the fault of an unmodelled register."""
        ids = self._component_id(addr)
        if ids is not None:
            return ids
        raise self._unmodelled(addr, False)

    def _component_id(self, addr: int) -> int | None:
        base, offset = addr & ~0xFFF, addr & 0xFFF
        ids = self.profile.component_ids.get(base)
        if ids is None:
            return None
        if 0xFD0 <= offset <= 0xFFC:
            return ids[(offset - 0xFD0) // 4]
        if offset == 0xFCC and self.profile.v8m and base in _DEVTYPE_V8M:
            return _DEVTYPE_V8M[base]
        if offset >= 0xF00:
            return 0  # other CoreSight management registers (claim tags, DEVID, ...) are RAZ
        return None


class MpuRegisters:
    """The MPU's registers (ARMv7-M B3.5 PMSAv7; ARMv8-M D1.2 MPU_* registers), kept but not
    enforced:
    unicorn's own MPU cannot be programmed from outside, so accesses are never checked
    against these regions, and the ARMv8-M TT instruction (answered by unicorn) reports no
    region. TYPE.DREGION = 8 on both cores. RBAR/RASR (ARMv7-M) or RBAR/RLAR (ARMv8-M) are
    banked by RNR; the alias registers RBAR_An/RASR_An (RLAR_An) at +8n reach RNR's region
    (ARMv7-M, where a RBAR write with VALID=1 selects the region first) or region
    RNR[7:2]:n (ARMv8-M)."""

    def __init__(self, v8m: bool) -> None:
        self.v8m = v8m
        self.ctrl = 0
        self.rnr = 0
        self.rbar = [0] * MPU_REGIONS
        self.rasr = [0] * MPU_REGIONS  # RLAR on ARMv8-M
        self.mair = [0, 0]

    def _region(self, addr: int) -> tuple[int, bool]:
        """(region number, is RBAR) of an RBAR/RASR(RLAR) register or alias."""
        alias, second = divmod(addr - MPU_RBAR, 8)
        region = ((self.rnr & ~3) | alias) if self.v8m and alias else self.rnr
        return region % MPU_REGIONS, second == 0

    def read(self, addr: int) -> int:
        if addr == MPU_TYPE:
            return MPU_REGIONS << 8
        if addr == MPU_CTRL:
            return self.ctrl
        if addr == MPU_RNR:
            return self.rnr
        if addr in (MPU_MAIR0, MPU_MAIR1):
            return self.mair[(addr - MPU_MAIR0) // 4]
        region, is_rbar = self._region(addr)
        if is_rbar:
            return self.rbar[region] | (0 if self.v8m else region)
        return self.rasr[region]

    def write(self, addr: int, value: int) -> None:
        if addr == MPU_TYPE:
            return  # read-only
        if addr == MPU_CTRL:
            self.ctrl = value & 0x7
        elif addr == MPU_RNR:
            self.rnr = value & 0xFF
        elif addr in (MPU_MAIR0, MPU_MAIR1):
            self.mair[(addr - MPU_MAIR0) // 4] = value
        else:
            region, is_rbar = self._region(addr)
            if is_rbar:
                if not self.v8m and value & 0x10:  # VALID: REGION selects the region
                    self.rnr = value & 0xF
                    region = self.rnr % MPU_REGIONS
                self.rbar[region] = value & (0xFFFFFFFF if self.v8m else 0xFFFFFFE0)
            else:
                self.rasr[region] = value
