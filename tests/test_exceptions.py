"""The core's exception model, by small C programs on both virtual boards (no Zephyr needed).

What an RTOS relies on (Zephyr's arch_swap among them): PendSV pended with interrupts masked and
taken right where they are unmasked, CONTROL.SPSEL surviving an exception return to a thread on
the process stack, priorities from SHPR / IPR with BASEPRI and PRIGROUP, tail-chaining, nested
preemption, SVC escalation and WFI wake-up by priority (ARMv7-M B1.5, ARMv8-M B3).
"""

from __future__ import annotations

import pytest
from armgcc import run_on_board

from qspi_gdb.errors import TargetError
from qspi_gdb.sim.board import Board, InProcessLink

pytestmark = pytest.mark.usefixtures("logging_to_a_live_stream")

CHIP_BOARDS = ["sim-nrf52840dk", "sim-nrf5340dk"]

# A RAM vector table and a log the handlers append to; main returns what the test checks.
PRELUDE = r"""
#include <stdint.h>
#define REG(a) (*(volatile uint32_t *)(a))
#define ICSR 0xE000ED04u
#define VTOR 0xE000ED08u
#define AIRCR 0xE000ED0Cu
#define SHPR3 0xE000ED20u
#define ISER0 0xE000E100u
#define ISPR0 0xE000E200u
#define IPR(n) (0xE000E400u + (n))
#define PENDSVSET (1u << 28)
__attribute__((aligned(512))) static uint32_t vectors[48];
static volatile uint32_t log_[16];
static volatile uint32_t n;
static void note(uint32_t v) { log_[n++] = v; }
static void isb(void) { __asm volatile("dsb\n isb" ::: "memory"); }
static void set_basepri(uint32_t v) { __asm volatile("msr basepri, %0" :: "r"(v) : "memory"); }
static uint32_t expect(const uint32_t *want, uint32_t count) {
    if (n != count) return 0x100 + n;
    for (uint32_t i = 0; i < count; i++) if (log_[i] != want[i]) return 0x200 + i;
    return 1;
}
static void install(void) {
    __asm volatile("dsb" ::: "memory");
    REG(VTOR) = (uint32_t)vectors;
}
"""


@pytest.fixture(params=CHIP_BOARDS)
def board(request):
    b = Board(request.param)
    yield b
    b.close()


def test_pendsv_pended_under_basepri_is_taken_where_basepri_is_lowered(board, tmp_path):
    """arch_swap: PENDSVSET with interrupts locked by BASEPRI, then unlock: the switch happens
    at that instruction boundary, before the next thread instruction (not a slice later)."""
    src = PRELUDE + r"""
    static void pendsv(void) { note(0xB); }
    uint32_t main(void) {
        vectors[14] = (uint32_t)pendsv;
        install();
        REG(SHPR3) = 0xE0u << 16;  /* PendSV at the lowest priority, as Zephyr sets it */
        set_basepri(0x20);
        REG(ICSR) = PENDSVSET;
        isb();
        note(1);                   /* masked: not taken yet */
        set_basepri(0);            /* unmasked here */
        note(2);
        static const uint32_t want[] = {1, 0xB, 2};
        return expect(want, 3);
    }
    """
    assert run_on_board(board, tmp_path, src) == 1


def test_pendsv_pended_by_a_register_write_is_taken_after_isb(board, tmp_path):
    src = PRELUDE + r"""
    static void pendsv(void) { note(0xB); }
    uint32_t main(void) {
        vectors[14] = (uint32_t)pendsv;
        install();
        REG(ICSR) = PENDSVSET;
        isb();                     /* the write takes effect; PendSV preempts thread mode */
        note(1);
        static const uint32_t want[] = {0xB, 1};
        return expect(want, 2);
    }
    """
    assert run_on_board(board, tmp_path, src) == 1


def test_exception_return_to_a_thread_on_the_process_stack_keeps_spsel(board, tmp_path):
    """EXC_RETURN 0xFFFFFFFD: the thread resumes on PSP with CONTROL.SPSEL set, at the SP it
    had (ARMv7-M B1.5.8). The model once wrote CONTROL while still in Handler mode, where the
    SPSEL write is ignored, and the thread came back on the main stack."""
    src = PRELUDE + r"""
    static uint32_t psp_stack[64] __attribute__((aligned(8)));
    static volatile uint32_t control_after, sp_after;
    static void svc(void) { note(0x5C); }
    uint32_t main(void) {
        vectors[11] = (uint32_t)svc;
        install();
        uint32_t top = (uint32_t)&psp_stack[64];
        __asm volatile(
            "msr psp, %[top]\n"
            "mrs r0, control\n orr r0, r0, #2\n msr control, r0\n isb\n"  /* thread on PSP */
            "svc #0\n"
            "mrs r1, control\n str r1, [%[ctl]]\n"
            "mov r1, sp\n str r1, [%[sp]]\n"
            "mrs r0, control\n bic r0, r0, #2\n msr control, r0\n isb\n"  /* back to MSP */
            :: [top] "r"(top), [ctl] "r"(&control_after), [sp] "r"(&sp_after)
            : "r0", "r1", "memory");
        if (n != 1 || log_[0] != 0x5C) return 2;
        if (!(control_after & 2)) return 3;  /* SPSEL lost: thread on the main stack */
        return sp_after == top ? 1 : 4;
    }
    """
    assert run_on_board(board, tmp_path, src) == 1


def test_nested_preemption_and_tail_chaining_by_priority(board, tmp_path):
    """IRQ 5 (0x80) runs, pends IRQ 6 (0x40), which preempts it at once and pends PendSV
    (0xE0); PendSV runs when IRQ 5 returns, tail-chained, before the thread goes on."""
    src = PRELUDE + r"""
    static void pendsv(void) { note(0xB); }
    static void irq6(void) { note(6); REG(ICSR) = PENDSVSET; }
    static void irq5(void) { note(5); REG(ISPR0) = 1u << 6; isb(); note(50); }
    uint32_t main(void) {
        vectors[14] = (uint32_t)pendsv;
        vectors[16 + 5] = (uint32_t)irq5;
        vectors[16 + 6] = (uint32_t)irq6;
        install();
        REG(SHPR3) = 0xE0u << 16;
        REG(IPR(5)) = 0x80;
        REG(IPR(6)) = 0x40;
        REG(ISER0) = (1u << 5) | (1u << 6);
        REG(ISPR0) = 1u << 5;
        isb();
        note(1);
        static const uint32_t want[] = {5, 6, 50, 0xB, 1};
        return expect(want, 5);
    }
    """
    assert run_on_board(board, tmp_path, src) == 1


def test_prigroup_subpriority_does_not_preempt(board, tmp_path):
    """PRIGROUP 5: group priority bits [7:6], so 0x40 and 0x60 are one group and the more
    urgent subpriority waits for the running handler (B1.5.4)."""
    src = PRELUDE + r"""
    static void irq6(void) { note(6); }
    static void irq5(void) { note(5); REG(ISPR0) = 1u << 6; isb(); note(50); }
    uint32_t main(void) {
        vectors[16 + 5] = (uint32_t)irq5;
        vectors[16 + 6] = (uint32_t)irq6;
        install();
        REG(AIRCR) = (0x05FAu << 16) | (5u << 8);
        REG(IPR(5)) = 0x60;
        REG(IPR(6)) = 0x40;
        REG(ISER0) = (1u << 5) | (1u << 6);
        REG(ISPR0) = 1u << 5;
        isb();
        note(1);
        static const uint32_t want[] = {5, 50, 6, 1};
        return expect(want, 4);
    }
    """
    assert run_on_board(board, tmp_path, src) == 1


def test_basepri_holds_back_lower_priorities_only(board, tmp_path):
    src = PRELUDE + r"""
    static void irq5(void) { note(5); }
    static void irq6(void) { note(6); }
    uint32_t main(void) {
        vectors[16 + 5] = (uint32_t)irq5;
        vectors[16 + 6] = (uint32_t)irq6;
        install();
        REG(IPR(5)) = 0x20;
        REG(IPR(6)) = 0x60;
        REG(ISER0) = (1u << 5) | (1u << 6);
        set_basepri(0x40);
        REG(ISPR0) = (1u << 5) | (1u << 6);
        isb();
        note(1);                   /* IRQ 5 (0x20 < 0x40) ran; IRQ 6 waits */
        set_basepri(0);
        note(2);
        static const uint32_t want[] = {5, 1, 6, 2};
        return expect(want, 4);
    }
    """
    assert run_on_board(board, tmp_path, src) == 1


def test_basepri_max_only_raises_the_priority_and_cpsie_unmasks(board, tmp_path):
    src = PRELUDE + r"""
    static uint32_t basepri(void) { uint32_t v; __asm volatile("mrs %0, basepri" : "=r"(v)); return v; }
    static void irq5(void) { note(5); }
    uint32_t main(void) {
        vectors[16 + 5] = (uint32_t)irq5;
        install();
        set_basepri(0x40);
        __asm volatile("msr basepri_max, %0" :: "r"(0x60u));   /* lower priority: no change */
        if (basepri() != 0x40) return 2;
        __asm volatile("msr basepri_max, %0" :: "r"(0x20u));   /* raises */
        if (basepri() != 0x20) return 3;
        set_basepri(0);
        REG(IPR(5)) = 0x80;
        REG(ISER0) = 1u << 5;
        __asm volatile("cpsid i" ::: "memory");
        REG(ISPR0) = 1u << 5;
        isb();
        note(1);                   /* PRIMASK holds IRQ 5 back */
        __asm volatile("cpsie i" ::: "memory");
        note(2);
        static const uint32_t want[] = {1, 5, 2};
        return expect(want, 3);
    }
    """
    assert run_on_board(board, tmp_path, src) == 1


def test_svc_with_primask_set_escalates_to_hardfault(board, tmp_path):
    src = PRELUDE + r"""
    __attribute__((naked)) static void hardfault(void) { __asm volatile("bkpt #0xFA\n b ."); }
    static void svc(void) { note(0x5C); }
    uint32_t main(void) {
        vectors[3] = (uint32_t)hardfault;
        vectors[11] = (uint32_t)svc;
        install();
        __asm volatile("cpsid i\n svc #0" ::: "memory");
        return 7;
    }
    """
    from armgcc import build

    elf = build(tmp_path, src, board.model.core)
    link = InProcessLink(board)
    link.halt()
    link.load_elf(elf)
    link.resume()
    link.wait_halt(1.0)
    assert link.read_register("xpsr") & 0x1FF == 3  # HardFault, not SVCall
    assert "escalated to HardFault" in board.core.fault


def test_wfi_wakes_only_for_an_interrupt_that_would_preempt(board, tmp_path):
    """WFI with PRIMASK set wakes for a pending interrupt that would preempt if PRIMASK was
    clear (B1.5.19) - not for one BASEPRI holds back."""
    src = PRELUDE + r"""
    uint32_t main(void) {
        REG(IPR(5)) = 0x80;
        REG(ISER0) = 1u << 5;
        __asm volatile("cpsid i" ::: "memory");
        set_basepri(0x40);
        REG(ISPR0) = 1u << 5;
        __asm volatile("dsb\n wfi" ::: "memory");
        return 1;
    }
    """
    from armgcc import build

    elf = build(tmp_path, src, board.model.core)
    link = InProcessLink(board)
    link.halt()
    link.load_elf(elf)
    link.resume()
    with pytest.raises(TargetError, match="did not halt"):
        link.wait_halt(0.01)
    assert board.core.sleeping or board.core.halted  # halted by the timeout, asleep before
    board.core.halt("halted")
    assert board.nvic.pending >> 5 & 1


def test_icsr_shpr_and_shcsr_as_a_debugger_sees_them(board):
    bus = board.bus
    bus.write(0xE000ED20, 4, 0xFFFF0000)  # SHPR3: SysTick, PendSV
    assert bus.read(0xE000ED20, 4) == 0xE0E00000  # 3 priority bits implemented
    bus.write(0xE000ED22, 1, 0x40)  # byte access: PendSV alone
    assert bus.read(0xE000ED20, 4) == 0xE0400000
    bus.write(0xE000ED04, 4, 1 << 28)  # PENDSVSET
    icsr = bus.read(0xE000ED04, 4)
    assert icsr >> 28 & 1 and (icsr >> 12) & 0x1FF == 14  # VECTPENDING = PendSV
    bus.write(0xE000ED04, 4, 1 << 27)  # PENDSVCLR
    assert not bus.read(0xE000ED04, 4) >> 28 & 1
    assert (bus.read(0xE000ED04, 4) >> 12) & 0x1FF == 0


def test_mpu_registers_are_kept_per_region(board):
    """MPU_TYPE.DREGION = 8; RBAR/RASR (RLAR on ARMv8-M) banked by RNR; kept, not enforced."""
    bus = board.bus
    assert bus.read(0xE000ED90, 4) == 8 << 8
    for region in range(8):
        bus.write(0xE000ED98, 4, region)
        bus.write(0xE000ED9C, 4, 0x20000000 + region * 0x1000)
        bus.write(0xE000EDA0, 4, 0x100 + region)
    bus.write(0xE000ED98, 4, 3)
    assert bus.read(0xE000ED9C, 4) & ~0x1F == 0x20003000
    assert bus.read(0xE000EDA0, 4) == 0x103
    if board.chip == "nrf5340":
        assert bus.read(0xE000EDA8, 4) == 0x101  # RLAR_A1, RNR=3: region RNR[7:2]:1 = 1
    else:
        bus.write(0xE000ED9C, 4, 0x20005000 | 0x10 | 5)  # VALID: selects region 5
        assert bus.read(0xE000ED98, 4) == 5


def test_nsacr_exists_on_the_m33_only(board):
    if board.chip == "nrf5340":
        board.bus.write(0xE000ED8C, 4, 3 << 10)
        assert board.bus.read(0xE000ED8C, 4) == 3 << 10
    else:
        from qspi_gdb.sim.bus import BusFault

        with pytest.raises(BusFault):
            board.bus.read(0xE000ED8C, 4)
