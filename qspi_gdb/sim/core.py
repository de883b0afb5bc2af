"""A Cortex-M core (M4F for nRF52840, M33 for the nRF5340 application core) on unicorn.

The core runs guest code in short slices while the debugger lets it run and is otherwise in
one of these states:

- halted: Debug state (DHCSR.S_HALT); entered by `halt(reason)`, a `bkpt`, an FPB comparator
  hit, vector catch or the end of a single step. DFSR bits accumulate until `clear_dfsr`.
- sleeping: executed WFI (or WFE without a latched event). WFI wakes when an NVIC-enabled
  interrupt is pending, also with PRIMASK set (ARMv7-M B1.5.19); a WFI whose wake-up
  condition already holds completes at once. WFE wakes on the event register (SEV,
  SEVONPEND) or an interrupt that would preempt. While asleep the board jumps the clock to
  its next event, so sleeping costs no host time.
- lockup: a fault with no usable handler (erased vector table, a fault inside the HardFault
  handler, a stacking failure). The reason is logged loudly and kept in `fault`; the PC stays
  where it was (silicon shows 0xEFFFFFFE) so a debugger sees where it happened.

Exceptions (ARMv7-M B1.5, ARMv8-M B3; state in `nvic.Nvic`): faults (bus fault, undefined
instruction, INVSTATE, ...) escalate to HardFault (configurable fault handlers are not modelled:
SHCSR enables are kept but ignored); SVC goes to SVCall, or escalates to HardFault when its
priority does not preempt; NMI, PendSV and SysTick are pended through ICSR; IRQs through the
NVIC. A pending exception is taken when its group priority (IPR / SHPR, split by
AIRCR.PRIGROUP) beats the execution priority: the active exceptions, BASEPRI, PRIMASK and
FAULTMASK (DHCSR.C_MASKINTS masks PendSV, SysTick and IRQs). It is taken at an instruction
boundary: at once on exception return (tail-chaining), right after an instruction that can
unmask it (CPSIE, MSR PRIMASK/BASEPRI/BASEPRI_MAX/FAULTMASK) or make a register write take effect
(ISB), and otherwise at the next slice boundary (up to one slice late, which the architecture
allows for a write without a context synchronization). Entry stacks the basic 8-word frame (no
FP context), takes the vector from VTOR and sets LR to EXC_RETURN; a branch to EXC_RETURN in
Handler mode unstacks (xPSR restored before CONTROL.SPSEL, which ARMv7-M ignores while in
Handler mode). DEMCR vector catch (VC_HARDERR) halts at the handler's first instruction.

Stores to read-only mapped memory (the internal flash) are offered to `rom_write` (the board's
NVMC): when it programs the word unicorn completes the store, otherwise a bus fault is taken.

Modelled time: each completed slice of N instructions advances the clock by N / core_hz (one
cycle per instruction, an estimate). A slice ends no later than the next clock event (timer
compare, QSPI completion...), so events and their interrupts land at the right instruction
(within 64 instructions). A slice cut short by bkpt, a sleeping WFI/WFE, a
breakpoint, a halt or a fault charges nothing for its partial part (unicorn does not report
how far it got): up to one slice (16384 instructions, 256 us at 64 MHz) per such stop is not
counted. Exceptions taken inside a slice (returns, tail-chaining, after CPSIE/MSR/ISB) keep the
slice going. Peripheral accesses charge their own bus cycles.

Known gaps (unicorn): LDRD/STRD/LDM/STM at unaligned addresses succeed (silicon faults); the
FPU is usable whatever CPACR says; code cannot execute from MMIO (the XIP window); stack
limit registers written by a debugger are kept but not enforced; BASEPRI reads back all 8 bits
written (silicon: only the implemented priority bits; the model's priority comparisons drop
the others); the MPU registers are kept but not enforced, and the ARMv8-M TT instruction
(answered by unicorn's own, never programmed MPU) reports no region. A tight loop that starts
right after a CPSIE / MSR <mask> / ISB (`isb; b .`, Zephyr's halt loop) costs a host call per
iteration.

Unicorn facts this relies on (see UNICORN_NOTES.md): BKPT raises interrupt 7 with the PC on
the instruction; WFI returns from emu_start with the PC after it; WFE/YIELD come in as invalid
instructions; code written behind unicorn's back needs its translation cache dropped; a code
hook that calls emu_stop stops *before* the hooked instruction (FPB semantics); a PC written in
a code or interrupt hook sends execution there; a write-protection hook that returns True lets
the store complete with the raw value; emu_stop inside an MMIO callback restarts the
instruction when emulation resumes (fine for a fault, which never completes the access, wrong
for anything else: exceptions are therefore not taken from inside register accesses).
"""

from __future__ import annotations

import ctypes
import math
import re
import time
from collections.abc import Callable

from unicorn import (
    UC_ARCH_ARM,
    UC_HOOK_BLOCK,
    UC_HOOK_CODE,
    UC_HOOK_INSN_INVALID,
    UC_HOOK_INTR,
    UC_HOOK_MEM_FETCH_PROT,
    UC_HOOK_MEM_FETCH_UNMAPPED,
    UC_HOOK_MEM_READ_UNMAPPED,
    UC_HOOK_MEM_WRITE_PROT,
    UC_HOOK_MEM_WRITE_UNMAPPED,
    UC_MODE_THUMB,
    UC_PROT_EXEC,
    UC_PROT_READ,
    UC_PROT_WRITE,
    Uc,
    UcError,
)
from unicorn import arm_const as A

from ..log import get_logger
from .bus import Bus, BusFault
from .clock import Clock
from .nvic import Nvic

log = get_logger(__name__)

# DFSR bits (ARMv7-M C1.6.1)
DFSR_HALTED = 1 << 0
DFSR_BKPT = 1 << 1
DFSR_DWTTRAP = 1 << 2
DFSR_VCATCH = 1 << 3
DFSR_EXTERNAL = 1 << 4
DFSR_BITS = {
    "halted": DFSR_HALTED,
    "bkpt": DFSR_BKPT,
    "dwttrap": DFSR_DWTTRAP,
    "vcatch": DFSR_VCATCH,
    "external": DFSR_EXTERNAL,
}

XPSR_T = 1 << 24

MODELS = {
    "cortex-m4f": A.UC_CPU_ARM_CORTEX_M4,
    "cortex-m33": A.UC_CPU_ARM_CORTEX_M33,
}

# qemu's ARM exception numbers as delivered to UC_HOOK_INTR
_EXCP_NAMES = {
    1: "undefined instruction (UsageFault)",
    2: "SVC",
    3: "prefetch abort",
    4: "data abort",
    8: "exception return outside Handler mode",
    17: "coprocessor access (NOCP UsageFault)",
    18: "invalid state (INVSTATE UsageFault)",
    19: "stack overflow (STKOF UsageFault)",
    21: "lazy FP state error",
    22: "unaligned access (UNALIGNED UsageFault)",
}
_EXCP_BKPT = 7

_GPR = [getattr(A, f"UC_ARM_REG_R{i}") for i in range(13)]

_THUMB_WFI = 0xBF30
_THUMB_WFE = 0xBF20
_THUMB_YIELD = 0xBF10
_NO_EXIT = 0xFFFFFFFF  # an odd address is never a PC: emu_start's `until` never triggers

# Instructions _hook_hints hooks, as byte patterns of little-endian Thumb halfwords (found at
# even offsets, overlapping matches included): (pattern, bytes of the instruction before the
# pattern, allowed range of the byte just before the pattern or None, hook table, handler, hook
# type, where: 0 = on the instruction, 2 / 4 = on the one after a 16 / 32-bit instruction).
# Each pattern starts with a literal byte so that re's fast literal search runs (a leading
# character class or lookahead makes the scan ten times slower: ~5 ms per 64 KiB, and the
# debugger writes every data buffer the loader gets).
# Unicorn calls every code hook's range check for every instruction while emu_start counts
# instructions (count=), so each UC_HOOK_CODE slows all code down; a UC_HOOK_BLOCK costs only
# where a translation block starts at its address. qemu ends the block after CPSIE, MSR to a
# special register and ISB, so a block hook on the next instruction sees each of them complete.
_HINTS = (
    (re.compile(rb"\x40\xbf"), 0, None, "_sev_hooks", "_on_sev", UC_HOOK_CODE, 0),  # SEV
    (re.compile(rb"\x30\xbf"), 0, None, "_wfi_hooks", "_on_wfi", UC_HOOK_CODE, 0),  # WFI
    (re.compile(rb"\xb6"), 1, (0x61, 0x63), "_unmask_hooks", "_on_unmask", UC_HOOK_BLOCK,
     2),  # CPSIE i/f (B66x)
    # MSR PRIMASK/BASEPRI/BASEPRI_MAX/FAULTMASK, Rn: F38n 88xx, SYSm 0x10..0x13
    (re.compile(rb"\xf3[\x10-\x13]\x88", re.S), 1, (0x80, 0x8F), "_unmask_hooks", "_on_unmask",
     UC_HOOK_BLOCK, 4),
    (re.compile(rb"\xbf\xf3[\x60-\x6f]\x8f", re.S), 0, None, "_unmask_hooks", "_on_unmask",
     UC_HOOK_BLOCK, 4),  # ISB
)


def hint_offsets(code: bytes, pattern: re.Pattern, before: int,
                 first_byte: tuple[int, int] | None) -> list[int]:
    """Offsets in `code` where a _HINTS instruction starts (even offsets only)."""
    found = []
    search = pattern.search
    pos = before
    while (match := search(code, pos)) is not None:
        at = match.start() - before
        if not at & 1 and (first_byte is None or first_byte[0] <= code[at] <= first_byte[1]):
            found.append(at)
        pos = match.start() + 1
    return found


SLICE_INSTRUCTIONS = 16384
MIN_SLICE_INSTRUCTIONS = 64  # 1 us at 64 MHz: bounds the host cost of dense clock events
TCG_BUFFER_BYTES = 32 * 1024 * 1024  # translated code; RAM programs are small


class CortexM:
    """Run control, registers and memory of one Cortex-M core.

    `bus` is the core's view of everything that is not plain RAM/ROM (peripherals, System
    Control Space, XIP window); windows are routed to it with `map_mmio`. RAM is mapped
    straight into unicorn from host buffers with `map_memory` (shared with the debugger's
    view, so call `invalidate_code` after writing code behind the core's back).
    """

    def __init__(
        self,
        model: str,
        *,
        clock: Clock,
        bus: Bus,
        nvic: Nvic,
        core_hz: Callable[[], float],
        on_halt: Callable[[str], None] | None = None,
        slice_instructions: int = SLICE_INSTRUCTIONS,
    ) -> None:
        if model not in MODELS:
            raise ValueError(f"unknown core model {model!r} (known: {', '.join(MODELS)})")
        self.model = model
        self.is_v8m = model == "cortex-m33"
        self.clock = clock
        self.nvic = nvic
        self._bus = bus
        self._core_hz = core_hz
        self._on_halt = on_halt
        self.slice_instructions = slice_instructions

        uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB)
        uc.ctl_set_cpu_model(MODELS[model])  # must be the very first call (UNICORN_NOTES)
        uc.ctl_set_tcg_buffer_size(TCG_BUFFER_BYTES)  # default reserves 1 GiB per board
        self.uc = uc
        self._buffers: list[object] = []  # keep ctypes views of mapped host memory alive
        self._mmio_callbacks: list[object] = []
        self._bp_hooks: dict[int, int] = {}
        self._sev_hooks: dict[int, int] = {}
        self._wfi_hooks: dict[int, int] = {}
        self._unmask_hooks: dict[int, int] = {}
        self._wfi_at: int | None = None

        uc.hook_add(UC_HOOK_INTR, self._on_intr)
        uc.hook_add(UC_HOOK_INSN_INVALID, self._on_invalid)
        uc.hook_add(
            UC_HOOK_MEM_READ_UNMAPPED | UC_HOOK_MEM_WRITE_UNMAPPED | UC_HOOK_MEM_FETCH_UNMAPPED,
            self._on_unmapped,
        )
        uc.hook_add(UC_HOOK_MEM_WRITE_PROT | UC_HOOK_MEM_FETCH_PROT, self._on_prot)
        self._reset_context = uc.context_save()

        # debug-visible state
        self.halted = True
        # board time of the first halt (a debugger taking hold) and of the last resume: what a
        # debugger's session spans, without the target's own run time before and after it
        self.first_halt_at: float | None = None
        self.last_resume_at: float | None = None
        self.dfsr = 0
        self.halt_reason: str | None = None
        self.sleeping = False
        self.lockup = False
        self.fault: str | None = None
        self.vector_catch = False
        self.maskints = False  # DHCSR.C_MASKINTS (set by the SCS model)
        self.sevonpend = False  # SCR.SEVONPEND (set by the SCS model)
        self.instructions = 0  # executed instructions counted in completed slices and steps
        self.vtor: Callable[[], int] = lambda: 0  # the SCS's VTOR (set by the board)
        # DEMCR vector catch for an exception number (e.g. VC_HARDERR); set by the board
        self.exception_catch: Callable[[int], bool] = lambda exception: False
        # a store to read-only mapped memory (the internal flash): True if the NVMC programs
        # it (unicorn then completes the store), False for a bus fault; set by the board
        self.rom_write: Callable[[int, int, int], bool] = lambda addr, size, value: False
        # told when the core enters (True) or leaves (False) WFI/WFE sleep (nRF POWER events)
        self.on_sleep: Callable[[bool], None] = lambda asleep: None
        self._fault: tuple[str, int, int] | None = None

        self._event_register = False
        self._sleep_kind: str | None = None
        self._in_emulation = False
        self._stop_reason: str | None = None
        self._deferred: list[Callable[[], None]] = []
        self._step_from: int | None = None
        # code ranges written since the last run, kept apart: RAM and its nRF52840 code alias
        # (0x00800000) are 512 MB apart, and one merged span would be scanned on every resume
        self._dirty: list[tuple[int, int]] = []
        self._dirty_data: list[tuple[int, int]] = []  # written by EasyDMA: no hint scan
        self.upkeep_s = 0.0  # host time spent dropping stale translations (_drop_stale_code)
        self._banked_ns = self._fresh_ns_bank()
        self._sleep_logged = False

    # -- memory ------------------------------------------------------------------------
    def map_memory(self, addr: int, buffer: bytearray, *, writable: bool = True) -> None:
        """Map a host buffer as RAM (writable) or ROM (read/execute only) at addr."""
        view = (ctypes.c_char * len(buffer)).from_buffer(buffer)
        self._buffers.append(view)
        prot = UC_PROT_READ | UC_PROT_EXEC | (UC_PROT_WRITE if writable else 0)
        self.uc.mem_map_ptr(addr, len(buffer), prot, ctypes.addressof(view))

    def map_mmio(self, addr: int, size: int) -> None:
        """Route CPU accesses in [addr, addr+size) to the bus (peripherals, SCS, XIP)."""
        bus = self._bus

        def read(uc, offset, width, _ud):
            try:
                return bus.read(addr + offset, width)
            except BusFault as fault:
                self._enter_fault(f"{fault}")
                return 0

        def write(uc, offset, width, value, _ud):
            try:
                bus.write(addr + offset, width, value)
            except BusFault as fault:
                self._enter_fault(f"{fault}")

        self._mmio_callbacks.append((read, write))
        self.uc.mmio_map(addr, size, read, None, write, None)

    def invalidate_code(self, addr: int, length: int, *, hints: bool = True) -> None:
        """Host code wrote [addr, addr+length): drop stale translations before running.
        hints=False (data moved by EasyDMA): also drop translations, but do not look for WFI/SEV
        halfwords to hook (an optimisation for code the debugger loads; code arriving by DMA
        still sleeps correctly through the halfword check in _execute)."""
        lo, hi = addr, addr + length
        dirty = self._dirty if hints else self._dirty_data
        kept = []
        for d_lo, d_hi in dirty:
            if d_lo <= hi and lo <= d_hi:  # overlapping or touching: one range
                lo, hi = min(lo, d_lo), max(hi, d_hi)
            else:
                kept.append((d_lo, d_hi))
        kept.append((lo, hi))
        if hints:
            self._dirty = kept
        else:
            self._dirty_data = kept

    # -- run control -------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return not self.halted

    @property
    def in_emulation(self) -> bool:
        return self._in_emulation

    def halt(self, reason: str = "halted") -> None:
        """Enter Debug state (C_HALT, bkpt, FPB, DWT, vector catch, EDBGRQ)."""
        self.dfsr |= DFSR_BITS[reason]
        if self.first_halt_at is None:  # also a halt request to a core halted already
            self.first_halt_at = self.clock.now
        if self.halted:
            return
        self.halted = True
        self.halt_reason = reason
        self.sleeping = False  # a debug halt wakes a sleeping core; PC is after the WFI
        self._sleep_kind = None
        if self.lockup:
            # Debug state takes the core out of lockup (OpenOCD: "clearing lockup")
            self.lockup = False
        if self._in_emulation:
            self._stop_reason = self._stop_reason or "halt"
            self.uc.emu_stop()
        if self._on_halt:
            self._on_halt(reason)

    def clear_dfsr(self, mask: int) -> None:
        """DFSR bits are write-one-to-clear."""
        self.dfsr &= ~mask

    def resume(self) -> None:
        """Leave Debug state and continue at the current PC."""
        if not self.halted:
            return
        self.halted = False
        self.halt_reason = None
        self.last_resume_at = self.clock.now

    def step(self) -> None:
        """Execute exactly one instruction (C_STEP), then halt with reason 'halted'.

        A breakpoint on the instruction being stepped does not fire (OpenOCD removes its own
        temporary one before stepping; GDB steps with its breakpoints removed).
        """
        if not self.halted:
            raise RuntimeError("step needs a halted core")
        self.halted = False
        if self._pending_exception():  # an unmasked pending IRQ is taken first
            if not self.halted:
                self.halt("halted")
            return
        self._step_from = self.pc
        try:
            executed = self._execute(1)
        finally:
            self._step_from = None
        if not self.halted:
            self.sleeping = False  # stepping over WFI completes it (halting debug wakes)
            self._sleep_kind = None
            self._charge(executed)
            self.halt("halted")

    def run_slice(self, max_instructions: int | None = None) -> int:
        """Run up to one slice; returns instructions charged. Call only when running."""
        if self.halted or self.sleeping or self.lockup:
            return 0
        if self._pending_exception() and (self.lockup or self.halted):
            return 0
        count = max_instructions or self.slice_instructions
        due = self.clock.next_event_time()
        if due is not None:
            # end the slice when the next clock event is due, so timer compares, QSPI
            # completions and the interrupts they raise land at the right instruction
            until_due = math.ceil((due - self.clock.now) * self._core_hz() - 1e-6)
            count = min(count, max(MIN_SLICE_INSTRUCTIONS, until_due))
        executed = self._execute(count)
        self._charge(executed)
        return executed

    def reset(self) -> None:
        """Core part of a system reset: registers to reset values, vectors from address 0.

        Debug state is kept (DHCSR.C_HALT is in the debug domain); vector catch halts the
        core before it executes the first instruction.
        """
        uc = self.uc
        uc.context_restore(self._reset_context)
        self._banked_ns = self._fresh_ns_bank()
        self.sleeping = False
        self._sleep_kind = None
        self.lockup = False
        self.fault = None
        self._event_register = False
        self._sleep_logged = False
        try:
            sp = self._bus_word(0x0)
            entry = self._bus_word(0x4)
        except BusFault as fault:
            sp, entry = 0xFFFFFFFF, 0xFFFFFFFF
            log.error("reset vector fetch failed", error=str(fault))
        uc.reg_write(A.UC_ARM_REG_CONTROL, 0)
        uc.reg_write(A.UC_ARM_REG_MSP, sp & ~3)
        uc.reg_write(A.UC_ARM_REG_PSP, 0)
        uc.reg_write(A.UC_ARM_REG_LR, 0xFFFFFFFF)
        uc.reg_write(A.UC_ARM_REG_PC, entry & ~1)
        uc.reg_write(A.UC_ARM_REG_XPSR, XPSR_T if entry & 1 else 0)
        uc.reg_write(A.UC_ARM_REG_PRIMASK, 0)
        uc.reg_write(A.UC_ARM_REG_BASEPRI, 0)
        uc.reg_write(A.UC_ARM_REG_FAULTMASK, 0)
        uc.reg_write(A.UC_ARM_REG_FPSCR, 0)
        if self.vector_catch:
            self.halt("vcatch")

    def defer(self, action: Callable[[], None]) -> None:
        """Run action once the current emulation slice has returned (or now if none runs).

        For things a guest access triggers that must not happen inside unicorn's callback,
        like SYSRESETREQ written by the guest itself.
        """
        if self._in_emulation:
            self._deferred.append(action)
            self._stop_reason = self._stop_reason or "deferred"
            self.uc.emu_stop()
        else:
            action()

    # -- sleep -------------------------------------------------------------------------
    def wake_pending(self) -> bool:
        """Would the sleeping core wake now?  WFI: a pending exception would preempt if
        PRIMASK was clear (B1.5.19: enabled, and more urgent than BASEPRI and the active
        exceptions). WFE: the event register is set or an exception would preempt."""
        if not self.sleeping:
            return True
        if self._sleep_kind == "wfe":
            return self._event_register or self._preempting_exception() is not None
        return self._preempting_exception(ignore_primask=True) is not None

    def try_wake(self) -> bool:
        if self.sleeping and self.wake_pending():
            if self._sleep_kind == "wfe":
                self._event_register = False
            self.sleeping = False
            self._sleep_kind = None
            self._sleep_logged = False
            self.on_sleep(False)
        return not self.sleeping

    def note_pended(self) -> None:
        """NVIC pend transition: with SEVONPEND it sets the event register (wakes WFE)."""
        if self.sevonpend:
            self._event_register = True

    def log_sleep_forever_once(self) -> None:
        if not self._sleep_logged:
            self._sleep_logged = True
            log.warning(
                "core sleeps with nothing that could wake it",
                pc=f"0x{self.pc:08X}",
                enabled=f"0x{self.nvic.enabled:X}",
                pending=f"0x{self.nvic.pending:X}",
            )

    # -- breakpoints -------------------------------------------------------------------
    def set_breakpoints(self, addrs: set[int]) -> None:
        """The enabled FPB comparator addresses (halfword-aligned instruction addresses)."""
        wanted = {a & ~1 for a in addrs}
        for addr in list(self._bp_hooks):
            if addr not in wanted:
                self.uc.hook_del(self._bp_hooks.pop(addr))
        for addr in wanted - self._bp_hooks.keys():
            self._bp_hooks[addr] = self.uc.hook_add(
                UC_HOOK_CODE, self._on_breakpoint, begin=addr, end=addr
            )
        self.uc.ctl_flush_tb()

    @property
    def breakpoints(self) -> set[int]:
        return set(self._bp_hooks)

    # -- registers ---------------------------------------------------------------------
    @property
    def vectactive(self) -> int:
        """IPSR: the active exception number (0 in Thread mode), for ICSR.VECTACTIVE."""
        return self.uc.reg_read(A.UC_ARM_REG_IPSR) & 0x1FF

    @property
    def pc(self) -> int:
        return self.uc.reg_read(A.UC_ARM_REG_PC) & ~1

    def read_core_reg(self, selector: int) -> int:
        """Read a register by its DCRSR.REGSEL number."""
        uc = self.uc
        if 0 <= selector <= 12:
            return uc.reg_read(_GPR[selector])
        if selector == 13:
            return uc.reg_read(A.UC_ARM_REG_SP)
        if selector == 14:
            return uc.reg_read(A.UC_ARM_REG_LR)
        if selector == 15:
            return self.pc
        if selector == 16:
            return uc.reg_read(A.UC_ARM_REG_XPSR)
        if selector == 17:
            return uc.reg_read(A.UC_ARM_REG_MSP)
        if selector == 18:
            return uc.reg_read(A.UC_ARM_REG_PSP)
        if selector == 20 or (self.is_v8m and selector == 0x22):
            return self._packed_special()
        if selector == 0x21:
            return uc.reg_read(A.UC_ARM_REG_FPSCR)
        if 0x40 <= selector <= 0x5F:
            return uc.reg_read(A.UC_ARM_REG_S0 + selector - 0x40)
        if self.is_v8m:
            # The core always runs Secure (no SAU/IDAU in unicorn), so the _S registers are
            # the live ones and the _NS bank is kept for the debugger only.
            if selector == 0x1A:
                return uc.reg_read(A.UC_ARM_REG_MSP)
            if selector == 0x1B:
                return uc.reg_read(A.UC_ARM_REG_PSP)
            if selector in self._banked_ns:
                return self._banked_ns[selector]
        log.warning("read of an unknown DCRSR register selector", selector=f"0x{selector:02X}")
        return 0

    def write_core_reg(self, selector: int, value: int) -> None:
        """Write a register by its DCRSR.REGSEL number."""
        uc = self.uc
        value &= 0xFFFFFFFF
        if 0 <= selector <= 12:
            uc.reg_write(_GPR[selector], value)
        elif selector == 13:
            uc.reg_write(A.UC_ARM_REG_SP, value & ~3)
        elif selector == 14:
            uc.reg_write(A.UC_ARM_REG_LR, value)
        elif selector == 15:
            # unicorn's PC write also sets EPSR.T from bit 0; DebugReturnAddress must not
            xpsr = uc.reg_read(A.UC_ARM_REG_XPSR)
            uc.reg_write(A.UC_ARM_REG_PC, value & ~1)
            uc.reg_write(A.UC_ARM_REG_XPSR, xpsr)
        elif selector == 16:
            uc.reg_write(A.UC_ARM_REG_XPSR, value)
        elif selector == 17:
            uc.reg_write(A.UC_ARM_REG_MSP, value & ~3)
        elif selector == 18:
            uc.reg_write(A.UC_ARM_REG_PSP, value & ~3)
        elif selector == 20 or (self.is_v8m and selector == 0x22):
            self._write_packed_special(value)
        elif selector == 0x21:
            uc.reg_write(A.UC_ARM_REG_FPSCR, value)
        elif 0x40 <= selector <= 0x5F:
            uc.reg_write(A.UC_ARM_REG_S0 + selector - 0x40, value)
        elif self.is_v8m and selector == 0x1A:
            uc.reg_write(A.UC_ARM_REG_MSP, value & ~3)
        elif self.is_v8m and selector == 0x1B:
            uc.reg_write(A.UC_ARM_REG_PSP, value & ~3)
        elif self.is_v8m and selector in self._banked_ns:
            self._banked_ns[selector] = value & (~7 if 0x1C <= selector <= 0x1F else ~0)
        else:
            log.warning(
                "write of an unknown DCRSR register selector", selector=f"0x{selector:02X}"
            )

    def _packed_special(self) -> int:
        uc = self.uc
        return (
            (uc.reg_read(A.UC_ARM_REG_CONTROL) & 0xFF) << 24
            | (uc.reg_read(A.UC_ARM_REG_FAULTMASK) & 1) << 16
            | (uc.reg_read(A.UC_ARM_REG_BASEPRI) & 0xFF) << 8
            | (uc.reg_read(A.UC_ARM_REG_PRIMASK) & 1)
        )

    def _write_packed_special(self, value: int) -> None:
        uc = self.uc
        uc.reg_write(A.UC_ARM_REG_PRIMASK, value & 1)
        uc.reg_write(A.UC_ARM_REG_BASEPRI, (value >> 8) & 0xFF)
        uc.reg_write(A.UC_ARM_REG_FAULTMASK, (value >> 16) & 1)
        uc.reg_write(A.UC_ARM_REG_CONTROL, (value >> 24) & 0xFF)

    @staticmethod
    def _fresh_ns_bank() -> dict[int, int]:
        # MSP_NS, PSP_NS, MSPLIM_S, PSPLIM_S, MSPLIM_NS, PSPLIM_NS, packed CONTROL_NS...
        return {0x18: 0, 0x19: 0, 0x1C: 0, 0x1D: 0, 0x1E: 0, 0x1F: 0, 0x23: 0}

    # -- internals ---------------------------------------------------------------------
    def _bus_word(self, addr: int) -> int:
        """A word as the core's bus sees it (vector fetches): the bus, else mapped memory."""
        try:
            return self._bus.read(addr, 4)
        except BusFault as fault:
            try:
                return int.from_bytes(self.uc.mem_read(addr, 4), "little")
            except UcError:
                raise fault from None

    def _charge(self, instructions: int) -> None:
        if instructions:
            self.instructions += instructions
            self.clock.advance(instructions / self._core_hz())

    # -- exceptions ------------------------------------------------------------------
    def _execution_priority(self, *, ignore_primask: bool = False) -> int:
        """The current execution priority (ARMv7-M B1.5.4, ARMv8-M B3.9; lower is more
        urgent, Thread mode with nothing active and no mask is 256): the most urgent group
        priority among the active exceptions, boosted by BASEPRI (its group priority),
        PRIMASK (0) and FAULTMASK (-1). `ignore_primask` gives the priority a WFI wake-up
        compares with ("would preempt if PRIMASK was clear", B1.5.19)."""
        nvic, uc = self.nvic, self.uc
        priority = 256
        for exception in nvic.active_exceptions():
            priority = min(priority, nvic.group_priority(nvic.exception_priority(exception)))
        # BASEPRI's unimplemented low bits are RAZ/WI on silicon; unicorn keeps all 8 (an MRS
        # reads them back), so the comparison drops them
        basepri = uc.reg_read(A.UC_ARM_REG_BASEPRI) & nvic.implemented_mask
        if basepri:
            priority = min(priority, nvic.group_priority(basepri))
        if not ignore_primask and uc.reg_read(A.UC_ARM_REG_PRIMASK) & 1:
            priority = min(priority, 0)
        if uc.reg_read(A.UC_ARM_REG_FAULTMASK) & 1:
            priority = min(priority, -1)
        return priority

    def _preempting_exception(self, *, ignore_primask: bool = False) -> int | None:
        """The pending exception that would be taken now (its group priority is more urgent
        than the execution priority), or None. DHCSR.C_MASKINTS masks PendSV, SysTick and
        external interrupts (C1.6.2)."""
        nvic = self.nvic
        exception = nvic.highest_pending_exception()
        if exception is None:
            return None
        if self.maskints and (exception >= 14):
            return None
        priority = nvic.group_priority(nvic.exception_priority(exception))
        if priority >= self._execution_priority(ignore_primask=ignore_primask):
            return None
        return exception

    def _pending_exception(self) -> bool:
        """Take the most urgent pending exception if it preempts now; True if it did (the
        core is then in the handler, or locked up / halted by vector catch)."""
        exception = self._preempting_exception()
        if exception is None:
            return False
        self._exception_entry(exception, self.pc)
        return True

    def _take_in_emulation(self, return_pc: int) -> None:
        """Inside a hook, at an instruction boundary: take a pending exception that preempts
        now (the write of PC sends unicorn into the handler), stop if that locked up or
        halted the core."""
        exception = self._preempting_exception()
        if exception is None:
            return
        self._exception_entry(exception, return_pc)
        if self.lockup and not self.halted:
            self._stop_reason = self._stop_reason or "fault"
            self.uc.emu_stop()

    def _take_fault(self, why: str, return_pc: int, exception: int = 3) -> None:
        """A fault (or SVC) outside emulation: vector through VTOR. A synchronous exception
        whose priority does not preempt the execution priority escalates to HardFault, and
        a HardFault that cannot preempt (in the HardFault or NMI handler, or FAULTMASK set)
        locks the core up (B1.5.15)."""
        nvic = self.nvic
        current = self._execution_priority()
        if exception != 3 and nvic.group_priority(nvic.exception_priority(exception)) >= current:
            why = f"{why} escalated to HardFault (priority does not preempt)"
            exception = 3
        if exception == 3 and current <= -1:
            ipsr = self.uc.reg_read(A.UC_ARM_REG_IPSR) & 0x1FF
            where = {2: "the NMI handler", 3: "the HardFault handler"}.get(ipsr,
                                                                           "FAULTMASK set")
            self._lock_up(f"{why} inside {where}" if ipsr in (2, 3) else f"{why} with {where}")
            return
        if exception == 3:
            log.error("core fault: taking HardFault", why=why, pc=f"0x{return_pc:08X}")
        self.fault = why
        self._exception_entry(exception, return_pc)

    def _exception_entry(self, exception: int, return_pc: int) -> None:
        """Stack the basic frame, load the vector from VTOR, enter Handler mode."""
        uc = self.uc
        vtor = self.vtor()
        try:
            vector = self._bus_word(vtor + 4 * exception)
        except BusFault as fault:
            self._lock_up(f"{self.fault or 'exception'}: vector fetch for exception "
                          f"{exception} failed: {fault}")
            return
        if vector == 0xFFFFFFFF or not vector & 1:
            # erased flash / no handler: the handler fetch faults again -> lockup
            self._lock_up(f"{self.fault or 'exception'}: vector {exception} at "
                          f"0x{vtor + 4 * exception:08X} is 0x{vector:08X} (no handler)")
            return
        ipsr = uc.reg_read(A.UC_ARM_REG_IPSR) & 0x1FF
        control = uc.reg_read(A.UC_ARM_REG_CONTROL)
        use_psp = ipsr == 0 and bool(control & 2)
        sp = uc.reg_read(A.UC_ARM_REG_PSP if use_psp else A.UC_ARM_REG_MSP)
        xpsr = uc.reg_read(A.UC_ARM_REG_XPSR)
        if sp & 4:  # CCR.STKALIGN: 8-byte aligned frame, remembered in stacked xPSR bit 9
            sp -= 4
            xpsr |= 1 << 9
        sp -= 32
        regs = [uc.reg_read(r) for r in (_GPR[0], _GPR[1], _GPR[2], _GPR[3], _GPR[12],
                                         A.UC_ARM_REG_LR)]
        frame = b"".join(v.to_bytes(4, "little") for v in (*regs, return_pc & ~1, xpsr))
        try:
            uc.mem_write(sp, frame)
        except UcError:
            self._lock_up(f"stacking for exception {exception} failed at SP 0x{sp:08X}")
            return
        # Thread mode still: the SPSEL write switches the stack pointer (qemu ignores SPSEL
        # writes in Handler mode, as MSR does)
        uc.reg_write(A.UC_ARM_REG_CONTROL, control & ~0x6)  # SPSEL=0, FPCA=0
        uc.reg_write(A.UC_ARM_REG_PSP if use_psp else A.UC_ARM_REG_MSP, sp)
        exc_return = 0xFFFFFFF1 if ipsr else (0xFFFFFFFD if use_psp else 0xFFFFFFF9)
        uc.reg_write(A.UC_ARM_REG_LR, exc_return)
        uc.reg_write(A.UC_ARM_REG_PC, vector & ~1)  # (unicorn: a PC write sets EPSR.T from bit 0)
        uc.reg_write(A.UC_ARM_REG_XPSR, (XPSR_T if vector & 1 else 0) | exception)
        self.nvic.activate(exception)
        self.sleeping = False
        self._sleep_kind = None
        if self.exception_catch(exception):
            self.halt("vcatch")

    def _exception_return(self, exc_return: int) -> None:
        """EXC_RETURN loaded into PC in Handler mode: deactivate, unstack, leave the handler.

        xPSR (and so IPSR) is restored before CONTROL: CONTROL.SPSEL written while IPSR is
        still non-zero would be ignored (ARMv7-M B1.4.4: SPSEL cannot be written in Handler
        mode, and qemu applies that to a register write too), leaving a thread that returns to
        the Process stack running on the Main stack."""
        uc = self.uc
        exception = uc.reg_read(A.UC_ARM_REG_IPSR) & 0x1FF
        to_psp = bool(exc_return & 4)
        sp = uc.reg_read(A.UC_ARM_REG_PSP if to_psp else A.UC_ARM_REG_MSP)
        try:
            words = [int.from_bytes(uc.mem_read(sp + 4 * i, 4), "little") for i in range(8)]
        except UcError:
            self._lock_up(f"unstacking at SP 0x{sp:08X} failed (exception return)")
            return
        if exception:
            self.nvic.deactivate(exception)
        if exception != 2:  # DeActivate(): FAULTMASK clears on any return but NMI's
            uc.reg_write(A.UC_ARM_REG_FAULTMASK, 0)
        for reg, value in zip((_GPR[0], _GPR[1], _GPR[2], _GPR[3], _GPR[12], A.UC_ARM_REG_LR),
                              words[:6]):
            uc.reg_write(reg, value)
        xpsr = words[7]
        sp += 32 + (4 if xpsr & (1 << 9) else 0)
        uc.reg_write(A.UC_ARM_REG_PSP if to_psp else A.UC_ARM_REG_MSP, sp)
        uc.reg_write(A.UC_ARM_REG_PC, words[6] & ~1)
        uc.reg_write(A.UC_ARM_REG_XPSR, xpsr & ~(1 << 9))
        control = uc.reg_read(A.UC_ARM_REG_CONTROL)
        uc.reg_write(A.UC_ARM_REG_CONTROL, (control | 2) if to_psp else (control & ~2))

    def _execute(self, count: int) -> int:
        """emu_start for up to count instructions; returns how many to charge."""
        uc = self.uc
        if not uc.reg_read(A.UC_ARM_REG_XPSR) & XPSR_T:
            self._take_fault("EPSR.T is 0: INVSTATE UsageFault", self.pc)
            return 0
        if self._dirty_data or self._dirty:
            self._drop_stale_code()
        start = self.pc
        if start == 0xFFFFFFFE:
            self._lock_up("instruction fetch at 0xFFFFFFFE: erased reset vector (blank chip)",
                          quiet=True)
            return 0
        self._stop_reason = None
        self._fault = None
        self._wfi_at = None
        self._in_emulation = True
        error: UcError | None = None
        try:
            uc.emu_start(start | 1, _NO_EXIT, count=count)
        except UcError as exc:
            error = exc
        finally:
            self._in_emulation = False
        reason = self._stop_reason
        deferred, self._deferred = self._deferred, []
        for action in deferred:
            action()
        if self._fault is not None:
            why, return_pc, exception = self._fault
            if not self.halted:
                self._take_fault(why, return_pc, exception)
            return 0
        if self.lockup:
            return 0
        if error is not None:
            self._take_fault(f"unicorn stopped: {error}", self.pc)
            return 0
        if reason is not None:
            if reason == "wfe":
                self._sleep("wfe")
            return 0  # bkpt, breakpoint, halt, deferred action: partial slice
        pc = self.pc
        if pc - 2 in self._wfi_hooks:
            wfi = self._wfi_at == pc - 2  # known code: the hook saw this WFI run
        else:  # code the core wrote itself: fall back to looking at the halfword
            wfi = pc != start and self._halfword(pc - 2) == _THUMB_WFI
        if wfi:
            self._sleep("wfi")
            return 0 if count > 1 else 1
        return count

    def _drop_stale_code(self) -> None:
        """Translations and hint hooks of memory written since the last run. Host time spent
        here is the test bed's own upkeep (silicon has no translation cache): it is counted in
        upkeep_s, which the wire's pacing does not let the core's clock spend."""
        started = time.perf_counter()
        uc = self.uc
        dirty, self._dirty_data = self._dirty_data, []
        for lo, hi in dirty:
            uc.ctl_remove_cache(lo, hi)
        dirty, self._dirty = self._dirty, []
        for lo, hi in dirty:
            uc.ctl_remove_cache(lo, hi)
            self._hook_hints(lo, hi)
        self.upkeep_s += time.perf_counter() - started

    def _hook_hints(self, lo: int, hi: int) -> None:
        """Hook instructions of fresh code the core must see: SEV (unicorn runs it as a NOP;
        the hook sets the event register), WFI (tells a WFI stop from a slice that merely
        ended after one), and the instruction after each CPSIE, MSR PRIMASK/BASEPRI/
        BASEPRI_MAX/FAULTMASK and ISB: a pending exception that such an instruction unmasks,
        or that an earlier register write pended, is taken there, at the next instruction
        boundary (ARMv7-M B5.2.1 CPS and B5.2.3 MSR change the masks for the instructions
        that follow; ISB is a context synchronization event, A3.7.3), not at the end of the
        slice. A hook on a halfword that is not an instruction never fires; one after such
        a halfword only checks for an exception that may be taken at any boundary anyway."""
        tables = (self._sev_hooks, self._wfi_hooks, self._unmask_hooks)
        for table in tables:
            for addr in [a for a in table if lo <= a < hi + 4]:
                self.uc.hook_del(table.pop(addr))
        base = lo & ~1
        try:
            code = bytes(self.uc.mem_read(base, (hi - base + 1) & ~1))
        except UcError:
            return
        for pattern, before, first_byte, table_name, handler, kind, after in _HINTS:
            table = getattr(self, table_name)
            for at in hint_offsets(code, pattern, before, first_byte):
                addr = base + at + after
                if addr not in table:
                    table[addr] = self.uc.hook_add(kind, getattr(self, handler),
                                                   begin=addr, end=addr)

    def _on_unmask(self, uc, address, size, _ud):
        """A block starts right after a CPSIE / MSR <mask> / ISB (or is entered there from
        elsewhere, which changes nothing): take an exception that now preempts."""
        if self._step_from == address:
            return  # a stepped instruction runs; the step checks for exceptions itself
        self._take_in_emulation(address)

    def _on_sev(self, uc, address, size, _ud):
        self._event_register = True

    def _on_wfi(self, uc, address, size, _ud):
        if self._step_from is None and self._preempting_exception(ignore_primask=True) is not None:
            # the wake-up condition already holds: WFI completes at once, like a NOP, and the
            # slice goes on (so a loop around it still costs its instructions)
            uc.reg_write(A.UC_ARM_REG_PC, (address + 2) | 1)
            return
        self._wfi_at = address

    def _sleep(self, kind: str) -> None:
        if self.halted:
            return
        self.sleeping = True
        self._sleep_kind = kind
        self.on_sleep(True)

    def _halfword(self, addr: int) -> int | None:
        try:
            return int.from_bytes(self.uc.mem_read(addr, 2), "little")
        except UcError:
            return None

    def _enter_fault(self, why: str, *, exception: int = 3, return_pc: int | None = None) -> None:
        """Called inside emulation: stop (before the faulting instruction) and take the
        exception once emu_start has returned."""
        if self._fault is None:
            self._fault = (why, self.pc if return_pc is None else return_pc, exception)
        self._stop_reason = "fault"
        self.uc.emu_stop()

    def _note_exc_return(self, addr: int) -> bool:
        """A jump to an EXC_RETURN value in Handler mode (M33: interrupt 8; M4: a prefetch
        abort at 0xFFFFFFxx) is an exception return: unstack right here and let the slice
        go on in the code that was interrupted. A pending exception that preempts the
        priority returned to is taken at once (tail-chaining, B1.5.8: the same registers
        end up stacked, without running an instruction of the interrupted code)."""
        if addr >= 0xFFFFFF00 and self.uc.reg_read(A.UC_ARM_REG_IPSR) & 0x1FF:
            self._exception_return(addr | 1)
            if self.lockup:
                self._stop_reason = "fault"
                self.uc.emu_stop()
            else:
                self._take_in_emulation(self.pc)
            return True
        return False

    def _lock_up(self, why: str, *, quiet: bool = False) -> None:
        if self.halted:
            return
        self.lockup = True
        self.sleeping = False
        self.fault = why
        (log.info if quiet else log.error)("core locked up", why=why, pc=f"0x{self.pc:08X}")

    # -- unicorn hooks -----------------------------------------------------------------
    def _on_intr(self, uc, intno, _ud):
        if intno == _EXCP_BKPT:
            self._stop_reason = "bkpt"
            uc.emu_stop()
            self.halt("bkpt")
            return
        pc = self.pc
        if intno in (3, 8) and self._note_exc_return(pc):
            return
        if intno == 2:  # SVC: SVCall (exception 11) returns to the next instruction
            self._enter_fault("SVC", exception=11, return_pc=pc)
            return
        self._enter_fault(f"{_EXCP_NAMES.get(intno, f'CPU exception {intno}')} at 0x{pc:08X}")

    def _on_invalid(self, uc, _ud):
        pc = self.pc
        if self._halfword(pc - 2) == _THUMB_WFE:
            if self._event_register:
                self._event_register = False
                return True  # WFE with a latched event completes at once
            self._stop_reason = "wfe"
            uc.emu_stop()
            return True
        if self._halfword(pc - 2) == _THUMB_YIELD:
            return True  # a hint: NOP
        self._enter_fault(f"undefined instruction 0x{self._halfword(pc) or 0:04X} (UsageFault)")
        return False

    def _on_unmapped(self, uc, access, addr, size, value, _ud):
        kind = {19: "read", 20: "write", 21: "instruction fetch"}.get(access, "access")
        if access == 21 and self._note_exc_return(addr):
            return True  # fetch again, at the unstacked return address
        self._enter_fault(f"bus fault: {kind} at unmapped 0x{addr:08X}")
        return False

    def _on_prot(self, uc, access, addr, size, value, _ud):
        if access == 24:  # UC_MEM_FETCH_PROT
            why = (f"instruction fetch from 0x{addr:08X}: not executable here (execution from "
                   "the XIP window or peripherals is not modelled)")
        else:
            if self.rom_write(addr, size, value):
                return True  # programmed (NVMC): unicorn completes the store
            why = f"bus fault: write to read-only 0x{addr:08X}"
        self._enter_fault(why)
        return False

    def _on_breakpoint(self, uc, address, size, _ud):
        if self._step_from == address:
            return
        self._stop_reason = "bkpt"
        uc.emu_stop()
        self.halt("bkpt")
