"""The unicorn Cortex-M core on its own: run control, breakpoints, registers, sleep, faults."""

from __future__ import annotations

import pytest

from qspi_gdb.sim.bus import BusFault
from qspi_gdb.sim.clock import Clock
from qspi_gdb.sim.core import (
    DFSR_BKPT,
    DFSR_HALTED,
    DFSR_VCATCH,
    XPSR_T,
    CortexM,
)
from qspi_gdb.sim.nvic import Nvic

pytestmark = pytest.mark.usefixtures("logging_to_a_live_stream")

RAM = 0x20000000
MMIO = 0x40000000

# Thumb encodings used below (little-endian halfwords)
MOVS_R0_1 = bytes.fromhex("0120")
ADDS_R0_1 = bytes.fromhex("0130")
BKPT = bytes.fromhex("00be")
NOP = bytes.fromhex("00bf")
WFI = bytes.fromhex("30bf")
WFE = bytes.fromhex("20bf")
YIELD = bytes.fromhex("10bf")
UDF = bytes.fromhex("00de")
SVC = bytes.fromhex("00df")
LDR_R0_R1 = bytes.fromhex("0868")
STR_R0_R1 = bytes.fromhex("0860")
B_SELF = bytes.fromhex("fee7")


class Harness:
    """A core with 64 KiB RAM and a 4 KiB register window backed by a dict."""

    def __init__(self, model: str = "cortex-m4f", hz: float = 64e6) -> None:
        self.clock = Clock()
        self.nvic = Nvic(48)
        self.ram = bytearray(0x10000)
        self.regs: dict[int, int] = {MMIO: 0x1234}
        self.halts: list[str] = []
        self.core = CortexM(model, clock=self.clock, bus=self, nvic=self.nvic,
                            core_hz=lambda: hz, on_halt=self.halts.append)
        self.core.map_memory(RAM, self.ram)
        self.core.map_mmio(MMIO, 0x1000)

    # bus
    def read(self, addr: int, size: int) -> int:
        if addr not in self.regs:
            raise BusFault(addr, False)
        return self.regs[addr]

    def write(self, addr: int, size: int, value: int) -> None:
        if addr not in self.regs:
            raise BusFault(addr, True)
        self.regs[addr] = value

    def load(self, code: bytes, at: int = 0) -> None:
        self.ram[at : at + len(code)] = code
        self.core.invalidate_code(RAM + at, len(code))
        self.core.write_core_reg(15, RAM + at)
        self.core.write_core_reg(16, XPSR_T)
        self.core.write_core_reg(13, RAM + 0x10000)

    def run(self, slices: int = 100) -> None:
        self.core.resume()
        for _ in range(slices):
            if self.core.halted or self.core.sleeping or self.core.lockup:
                return
            self.core.run_slice()


@pytest.fixture(params=["cortex-m4f", "cortex-m33"])
def h(request) -> Harness:
    return Harness(request.param)


def test_starts_halted_and_bkpt_halts_with_pc_on_the_instruction(h):
    assert h.core.halted
    h.load(MOVS_R0_1 + ADDS_R0_1 + BKPT + NOP)
    h.run()
    assert h.core.halted and h.core.halt_reason == "bkpt"
    assert h.core.dfsr & DFSR_BKPT
    assert h.core.read_core_reg(0) == 2
    assert h.core.read_core_reg(15) == RAM + 4
    assert h.halts == ["bkpt"]
    h.core.clear_dfsr(DFSR_BKPT)
    assert h.core.dfsr == 0


def test_fpb_breakpoint_halts_before_the_instruction_and_again_on_resume(h):
    h.load(MOVS_R0_1 + ADDS_R0_1 + ADDS_R0_1 + BKPT)
    h.core.set_breakpoints({RAM + 4})
    h.run()
    assert h.core.halt_reason == "bkpt" and h.core.pc == RAM + 4
    assert h.core.read_core_reg(0) == 2  # the instruction at the comparator did not run
    h.run()  # silicon: a comparator on the resume address matches again at once
    assert h.core.pc == RAM + 4 and h.core.read_core_reg(0) == 2
    h.core.step()  # stepping over it executes exactly that instruction
    assert h.core.pc == RAM + 6 and h.core.read_core_reg(0) == 3
    assert h.core.dfsr & DFSR_HALTED
    h.core.set_breakpoints(set())
    h.run()
    assert h.core.pc == RAM + 6 and h.core.halt_reason == "bkpt"


def test_step_executes_one_instruction_and_charges_one_cycle(h):
    h.load(MOVS_R0_1 + ADDS_R0_1 + ADDS_R0_1 + BKPT)
    t0 = h.clock.now
    for expected_pc, r0 in ((RAM + 2, 1), (RAM + 4, 2), (RAM + 6, 3)):
        h.core.step()
        assert h.core.halted and h.core.pc == expected_pc and h.core.read_core_reg(0) == r0
    assert h.clock.now - t0 == pytest.approx(3 / 64e6)


def test_running_slices_advance_the_clock_at_core_hz():
    h = Harness(hz=32e6)
    h.load(ADDS_R0_1 + bytes.fromhex("fde7"))  # adds r0,#1; b .-2
    h.core.resume()
    h.core.run_slice(32000)
    assert h.clock.now == pytest.approx(32000 / 32e6)
    assert h.core.instructions == 32000
    assert h.core.read_core_reg(0) == 16000


def test_code_rewritten_while_halted_is_executed(h):
    h.load(MOVS_R0_1 + BKPT)
    h.run()
    assert h.core.read_core_reg(0) == 1
    h.load(MOVS_R0_1 + ADDS_R0_1 + ADDS_R0_1 + BKPT)  # same address, new code
    h.run()
    assert h.core.read_core_reg(0) == 3


def test_core_registers_by_dcrsr_selector(h):
    core = h.core
    for sel in range(13):
        core.write_core_reg(sel, 0x1000 + sel)
    assert [core.read_core_reg(s) for s in range(13)] == [0x1000 + s for s in range(13)]
    core.write_core_reg(17, 0x20001000)  # MSP
    core.write_core_reg(18, 0x20002000)  # PSP
    assert core.read_core_reg(13) == 0x20001000  # SP is MSP with CONTROL.SPSEL=0
    core.write_core_reg(20, (2 << 24) | (0x40 << 8) | 1)  # CONTROL.SPSEL, BASEPRI, PRIMASK
    assert core.read_core_reg(13) == 0x20002000
    assert core.read_core_reg(20) == (2 << 24) | (0x40 << 8) | 1
    core.write_core_reg(15, RAM + 0x101)
    assert core.read_core_reg(15) == RAM + 0x100
    core.write_core_reg(0x21, 0x03C00000)
    assert core.read_core_reg(0x21) == 0x03C00000
    for i in range(32):
        core.write_core_reg(0x40 + i, 0x3F800000 + i)
    assert [core.read_core_reg(0x40 + i) for i in range(32)] == [0x3F800000 + i for i in range(32)]


def test_m33_banked_registers_follow_the_secure_state():
    core = Harness("cortex-m33").core
    core.write_core_reg(17, 0x20003000)
    assert core.read_core_reg(0x1A) == 0x20003000  # MSP_S is the live MSP
    core.write_core_reg(0x1B, 0x20004000)
    assert core.read_core_reg(18) == 0x20004000
    core.write_core_reg(0x18, 0x20005000)  # MSP_NS kept for the debugger
    core.write_core_reg(0x1C, 0x20000107)  # MSPLIM_S: bits 2:0 are RES0
    assert core.read_core_reg(0x18) == 0x20005000
    assert core.read_core_reg(0x1C) == 0x20000100
    core.write_core_reg(0x22, 1)
    assert core.read_core_reg(20) == 1


def test_halt_while_running_and_resume(h):
    h.load(ADDS_R0_1 + bytes.fromhex("fde7"))
    h.core.resume()
    h.core.run_slice(100)
    h.core.halt("halted")
    assert h.core.halted and h.core.dfsr & DFSR_HALTED
    pc = h.core.pc
    assert pc in (RAM, RAM + 2)
    h.core.resume()
    assert h.core.running


def test_wfi_sleeps_until_an_enabled_interrupt_is_pending_even_with_primask(h):
    h.load(WFI + MOVS_R0_1 + BKPT)
    h.core.write_core_reg(20, 1)  # PRIMASK=1
    h.run()
    assert h.core.sleeping and not h.core.halted and h.core.pc == RAM + 2
    h.nvic.set_level(8, True)  # pending but not enabled: stays asleep
    assert not h.core.try_wake()
    h.nvic.enabled |= 1 << 8
    assert h.core.try_wake()
    h.run()
    assert h.core.halt_reason == "bkpt" and h.core.read_core_reg(0) == 1


def test_debug_halt_wakes_a_sleeping_core(h):
    h.load(WFI + MOVS_R0_1 + BKPT)
    h.run()
    assert h.core.sleeping
    h.core.halt("halted")
    assert h.core.halted and not h.core.sleeping and h.core.pc == RAM + 2


def test_wfe_sleeps_and_yield_is_a_hint(h):
    h.load(YIELD + WFE + MOVS_R0_1 + BKPT)
    h.run()
    assert h.core.sleeping and h.core.pc == RAM + 4
    h.core.sevonpend = True
    h.nvic.set_level(3, True)  # disabled IRQ pends: with SEVONPEND that is an event
    h.core.note_pended()
    assert h.core.try_wake()
    h.run()
    assert h.core.halt_reason == "bkpt"


VECTORS = RAM + 0x8000
IRQ_HANDLER = RAM + 0x200  # movs r4,#0x55; bx lr
FAULT_HANDLER = RAM + 0x300  # bkpt #0xFA
SVC_HANDLER = RAM + 0x310  # bkpt #0x0B


def with_vectors(h: Harness, fault_handler: bytes = bytes.fromhex("fabe")) -> None:
    h.ram[0x200:0x204] = bytes.fromhex("5524" "7047")
    h.ram[0x300:0x300 + len(fault_handler)] = fault_handler
    h.ram[0x310:0x312] = bytes.fromhex("0bbe")
    table = {3: FAULT_HANDLER, 11: SVC_HANDLER, 16 + 5: IRQ_HANDLER}
    for n, handler in table.items():
        h.ram[0x8000 + 4 * n : 0x8004 + 4 * n] = (handler | 1).to_bytes(4, "little")
    h.core.invalidate_code(RAM, 0x400)
    h.core.vtor = lambda: VECTORS


def stacked(h: Harness, index: int) -> int:
    sp = h.core.read_core_reg(17)
    return int.from_bytes(h.ram[sp - RAM + 4 * index : sp - RAM + 4 * index + 4], "little")


def test_enabled_interrupt_is_taken_with_primask_clear_and_returns(h):
    with_vectors(h)
    h.load(NOP + NOP + MOVS_R0_1 + BKPT)
    sp = h.core.read_core_reg(13)
    h.nvic.enabled |= 1 << 5
    h.nvic.pend(5)
    h.run()
    assert h.core.halt_reason == "bkpt" and h.core.pc == RAM + 6, h.core.fault
    assert h.core.read_core_reg(4) == 0x55 and h.core.read_core_reg(0) == 1
    assert h.core.read_core_reg(13) == sp
    assert h.core.read_core_reg(16) & 0x1FF == 0  # back in Thread mode
    assert h.nvic.active == 0 and not h.nvic.pending & (1 << 5)


def test_step_with_an_unmasked_pending_interrupt_enters_the_handler(h):
    with_vectors(h)
    h.load(NOP + NOP + BKPT)
    h.nvic.enabled |= 1 << 5
    h.nvic.pend(5)
    h.core.step()
    assert h.core.halted and h.core.pc == IRQ_HANDLER
    assert h.core.read_core_reg(16) & 0x1FF == 16 + 5
    h.core.maskints = True  # C_MASKINTS: what OpenOCD sets while stepping
    h.core.step()
    assert h.core.pc == IRQ_HANDLER + 2 and h.core.read_core_reg(4) == 0x55


def test_primask_keeps_the_interrupt_pending(h):
    with_vectors(h)
    h.load(NOP + NOP + BKPT)
    h.core.write_core_reg(20, 1)
    h.nvic.enabled |= 1 << 5
    h.nvic.pend(5)
    h.run()
    assert h.core.halt_reason == "bkpt" and h.core.read_core_reg(4) == 0
    assert h.nvic.pending & (1 << 5)


def test_fault_vectors_to_hardfault_with_the_faulting_pc_stacked(h):
    with_vectors(h)
    h.load(NOP + UDF + BKPT)
    h.run()
    assert h.core.halt_reason == "bkpt" and h.core.pc == FAULT_HANDLER, h.core.fault
    assert h.core.read_core_reg(16) & 0x1FF == 3
    assert h.core.read_core_reg(14) == 0xFFFFFFF9
    assert stacked(h, 6) == RAM + 2  # stacked return address = the UDF
    assert "undefined instruction" in h.core.fault


def test_svc_goes_to_svcall_returning_after_the_svc(h):
    with_vectors(h)
    h.load(NOP + SVC + BKPT)
    h.run()
    assert h.core.pc == SVC_HANDLER and h.core.read_core_reg(16) & 0x1FF == 11
    assert stacked(h, 6) == RAM + 4


def test_fault_in_the_hardfault_handler_locks_up(h):
    with_vectors(h, fault_handler=UDF)
    h.load(NOP + UDF + BKPT)
    h.run()
    assert h.core.lockup and "inside the HardFault handler" in h.core.fault


def test_vector_catch_halts_at_hardfault_entry(h):
    with_vectors(h)
    h.core.exception_catch = lambda exception: exception == 3
    h.load(NOP + UDF + BKPT)
    h.run()
    assert h.core.halted and h.core.halt_reason == "vcatch" and h.core.dfsr & DFSR_VCATCH
    assert h.core.pc == FAULT_HANDLER


def test_no_vector_table_locks_up_loudly(h):
    h.load(NOP + NOP + BKPT)
    h.nvic.enabled |= 1 << 5
    h.nvic.pend(5)
    h.run()
    assert h.core.lockup and "vector fetch for exception 21" in h.core.fault


@pytest.mark.parametrize(
    "code, expect",
    [
        (UDF, "undefined instruction"),
        (SVC, "SVC"),
    ],
)
def test_faults_lock_up_with_a_reason(h, code, expect):
    h.load(NOP + code + BKPT)
    h.run()
    assert h.core.lockup and not h.core.halted
    assert expect in h.core.fault
    h.core.halt("halted")  # a debugger can still halt a locked-up core
    assert h.core.halted and not h.core.lockup


def test_bus_fault_on_mmio_stops_on_the_faulting_load(h):
    h.load(MOVS_R0_1 + LDR_R0_R1 + BKPT)
    h.core.write_core_reg(1, MMIO + 0x40)  # no register there
    h.run()
    assert h.core.lockup and "0x40000040" in h.core.fault
    assert h.core.pc == RAM + 2 and h.core.read_core_reg(0) == 1


def test_mmio_reads_and_writes_reach_the_bus(h):
    h.load(LDR_R0_R1 + ADDS_R0_1 + STR_R0_R1 + BKPT)
    h.core.write_core_reg(1, MMIO)
    h.run()
    assert h.core.halt_reason == "bkpt"
    assert h.regs[MMIO] == 0x1235


def test_unmapped_access_locks_up(h):
    h.load(LDR_R0_R1 + BKPT)
    h.core.write_core_reg(1, 0x30000000)
    h.run()
    assert h.core.lockup and "0x30000000" in h.core.fault


def test_clear_thumb_bit_is_an_invstate_fault(h):
    h.load(NOP + BKPT)
    h.core.write_core_reg(16, 0)
    h.run()
    assert h.core.lockup and "INVSTATE" in h.core.fault


def test_reset_loads_vectors_and_vector_catch_halts():
    h = Harness()
    rom = bytearray(0x1000)
    rom[0:8] = (0x20008000).to_bytes(4, "little") + (0x00000101).to_bytes(4, "little")
    h.core.map_memory(0, rom, writable=False)
    h.core.vector_catch = True
    h.core.resume()
    h.core.reset()
    assert h.core.halted and h.core.dfsr & DFSR_VCATCH and h.halts == ["vcatch"]
    assert h.core.read_core_reg(15) == 0x100
    assert h.core.read_core_reg(13) == 0x20008000
    assert h.core.read_core_reg(16) == XPSR_T


def test_blank_reset_vector_locks_up_without_vector_catch():
    h = Harness()
    h.core.map_memory(0, bytearray(b"\xff" * 0x1000), writable=False)
    h.core.reset()
    h.core.resume()
    h.core.run_slice()
    assert h.core.lockup and "erased reset vector" in h.core.fault


def test_unknown_model_is_refused():
    with pytest.raises(ValueError):
        CortexM("cortex-m0", clock=Clock(), bus=None, nvic=Nvic(8), core_hz=lambda: 1.0)


def test_sev_sets_the_event_register_so_wfe_falls_through(h):
    h.load(bytes.fromhex("40bf") + WFE + MOVS_R0_1 + WFE + BKPT)  # sev; wfe; movs; wfe
    h.run()
    assert h.core.sleeping and h.core.pc == RAM + 8  # the first WFE consumed the event
    assert h.core.read_core_reg(0) == 1


def test_vectactive_is_ipsr(h):
    h.core.write_core_reg(16, XPSR_T | 3)
    assert h.core.vectactive == 3


def test_a_slice_ending_after_a_wfi_lookalike_halfword_does_not_sleep(h):
    ldr_w = bytes.fromhex("d0f830bf")  # ldr.w r11, [r0, #0xF30]: second halfword is 0xBF30
    h.load(ldr_w + MOVS_R0_1 + BKPT)
    h.core.write_core_reg(0, RAM)
    h.core.resume()
    h.core.run_slice(1)  # the slice ends right after the LDR.W
    assert not h.core.sleeping and h.core.pc == RAM + 4


def test_wfi_with_a_wake_condition_already_pending_is_a_nop_that_costs_time(h):
    # loop: wfi; b loop  -- with an enabled IRQ pending and PRIMASK=1 it spins on silicon
    h.load(WFI + bytes.fromhex("fde7"))
    h.core.write_core_reg(20, 1)
    h.nvic.enabled |= 1 << 2
    h.nvic.pend(2)
    h.core.resume()
    h.core.run_slice(1000)
    assert not h.core.sleeping and h.core.instructions == 1000
    assert h.clock.now == pytest.approx(1000 / 64e6)


def test_an_interrupt_storm_costs_modelled_time(h):
    """A level IRQ the handler never clears re-enters forever, as on silicon; the slices
    around it are charged, so a deadline in modelled time is reached."""
    with_vectors(h)
    h.load(ADDS_R0_1 + bytes.fromhex("fde7"))  # adds r0,#1; b .-2
    h.nvic.enabled |= 1 << 5
    h.nvic.set_level(5, True)
    h.core.resume()
    for _ in range(10):
        h.core.run_slice(1000)
    assert h.clock.now == pytest.approx(10 * 1000 / 64e6)
    assert h.core.read_core_reg(4) == 0x55 and not h.core.lockup


def test_wfe_ignores_a_pending_interrupt_masked_by_primask_unless_sevonpend(h):
    h.load(WFE + MOVS_R0_1 + BKPT)
    h.core.write_core_reg(20, 1)  # PRIMASK
    h.run()
    assert h.core.sleeping
    h.nvic.enabled |= 1 << 4
    h.nvic.set_level(4, True)
    assert not h.core.try_wake()  # masked: no event without SEVONPEND
    h.core.write_core_reg(20, 0)
    assert h.core.try_wake()  # would preempt now


# -- NVIC ----------------------------------------------------------------------------------


def test_nvic_set_clear_enable_and_pending_registers():
    nvic = Nvic(48)
    nvic.write(0xE000E100 + 4, 4, 1 << (41 - 32))  # ISER1: IRQ 41
    assert nvic.read(0xE000E180 + 4, 4) == 1 << 9 and nvic.enabled == 1 << 41
    nvic.write(0xE000E200, 4, 1 << 8)  # ISPR0: IRQ 8
    assert nvic.read(0xE000E280, 4) == 1 << 8
    assert nvic.pending_enabled() == 0
    nvic.write(0xE000E100, 4, 1 << 8)
    assert nvic.pending_enabled() == 1 << 8 and nvic.highest_pending() == 8
    nvic.write(0xE000E280, 4, 1 << 8)  # ICPR0
    assert nvic.pending == 0
    nvic.write(0xE000E180, 4, 0xFFFFFFFF)  # ICER0
    assert nvic.enabled == 1 << 41
    assert nvic.read(0xE000E100 + 8, 4) == 0  # beyond the implemented IRQs: RAZ


def test_nvic_level_line_pends_again_after_icpr_while_asserted():
    nvic = Nvic(48)
    nvic.set_level(15, True)
    nvic.write(0xE000E280, 4, 1 << 15)
    assert nvic.pending & (1 << 15)  # still asserted: pending again at once
    nvic.set_level(15, False)
    nvic.write(0xE000E280, 4, 1 << 15)
    assert not nvic.pending & (1 << 15)


def test_nvic_level_source_for_pulsing_peripherals():
    nvic = Nvic(48)
    level = [True]
    nvic.set_level_source(41, lambda: level[0])
    nvic.pend(41)
    nvic.write(0xE000E280 + 4, 4, 1 << 9)
    assert nvic.pending & (1 << 41)
    level[0] = False
    nvic.write(0xE000E280 + 4, 4, 1 << 9)
    assert not nvic.pending & (1 << 41)


def test_nvic_priorities_keep_the_implemented_bits_and_order_pending_irqs():
    nvic = Nvic(48, priority_bits=3)
    nvic.write(0xE000E400 + 8, 4, 0xFFE0_40FF)  # IPR2: IRQ 8..11
    assert nvic.read(0xE000E400 + 8, 4) == 0xE0E0_40E0
    assert nvic.read(0xE000E400 + 9, 1) == 0x40  # byte access
    nvic.enabled = (1 << 8) | (1 << 9)
    nvic.pending = (1 << 8) | (1 << 9)
    assert nvic.highest_pending() == 9  # 0x40 beats 0xE0
    nvic.acknowledge(9)
    assert nvic.active == 1 << 9 and nvic.highest_pending() == 8
    with pytest.raises(BusFault):
        nvic.read(0xE000E102, 2)  # bit registers are word-only


def test_hint_scan_finds_every_even_match_overlaps_included():
    """The literal-first search finds what a plain lookahead scan over every offset finds."""
    import random
    import re

    from qspi_gdb.sim.core import _HINTS, hint_offsets

    reference = (rb"(?=\x40\xbf)", rb"(?=\x30\xbf)", rb"(?=[\x61-\x63]\xb6)",
                 rb"(?=[\x80-\x8f]\xf3[\x10-\x13]\x88)", rb"(?=\xbf\xf3[\x60-\x6f]\x8f)")
    rng = random.Random(7)
    alphabet = bytes((0x40, 0xBF, 0x30, 0x61, 0x62, 0x63, 0x64, 0xB6, 0x80, 0x8F, 0x90, 0xF3,
                      0x10, 0x13, 0x14, 0x88, 0x60, 0x6F, 0x00))
    samples = [bytes(rng.choice(alphabet) for _ in range(400)) for _ in range(300)]
    samples.append(b"\x00\x80\xf3\x10\x88\xf3\x11\x88\x00\x00")  # overlapping MSR lookalikes
    for code in samples:
        for (pattern, before, first_byte, *_), ref in zip(_HINTS, reference, strict=True):
            expect = [m.start() for m in re.finditer(ref, code, re.S) if not m.start() & 1]
            assert hint_offsets(code, pattern, before, first_byte) == expect
