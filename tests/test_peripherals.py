"""RTC, UARTE (the console), PPI / DPPI routing, POWER sleep events and the register-file
peripherals of both virtual boards, at register level and by small C programs (no Zephyr)."""

from __future__ import annotations

import io

import pytest
from armgcc import run_on_board

from qspi_gdb.sim.board import Board
from qspi_gdb.sim.bus import BusFault

pytestmark = pytest.mark.usefixtures("logging_to_a_live_stream")

# per chip: CLOCK, RTC1, UARTE0, UARTE0 IRQ, TIMER0, RTC1 IRQ
BASES = {
    "nrf52840": dict(clock=0x40000000, rtc1=0x40011000, uarte=0x40002000, uarte_irq=2,
                     timer0=0x40008000, rtc1_irq=17),
    "nrf5340": dict(clock=0x50005000, rtc1=0x50015000, uarte=0x50008000, uarte_irq=8,
                    timer0=0x5000F000, rtc1_irq=21),
}


@pytest.fixture(params=["sim-nrf52840dk", "sim-nrf5340dk"])
def board(request):
    b = Board(request.param, console=io.BytesIO())
    b.core.halt("halted")
    yield b
    b.close()


def reg(board, name, offset, value=None):
    addr = BASES[board.chip][name] + offset
    if value is None:
        return board.bus.read(addr, 4)
    board.bus.write(addr, 4, value)


def start_lfclk(board, src=0) -> None:
    """LFCLKSRC (LFRC by default), LFCLKSTART, run until LFCLKSTARTED."""
    reg(board, "clock", 0x518, src)
    reg(board, "clock", 0x008, 1)
    board.clock.run_until_idle(board.clock.now + 0.5)
    assert reg(board, "clock", 0x104) == 1


def test_lfclk_start_up_time_follows_each_chips_lfclksrc_encoding(board):
    """LFCLKSRC.SRC: nRF52840 0 RC / 1 Xtal; nRF5340 1 LFRC / 2 LFXO (MDK bitfields). The model
    once read the nRF5340's LFRC (1) as a crystal, and Zephyr's two-stage start (RC first,
    then the crystal) took the crystal's 0.25 s for the RC."""
    rc, xtal = (0, 1) if board.chip == "nrf52840" else (1, 2)
    for src, expected in ((rc, 600e-6), (xtal, 0.25)):
        reg(board, "clock", 0x104, 0)
        reg(board, "clock", 0x518, src)
        t0 = board.clock.now
        reg(board, "clock", 0x008, 1)  # LFCLKSTART
        while not reg(board, "clock", 0x104):
            board.clock.advance(100e-6)
        assert board.clock.now - t0 == pytest.approx(expected, abs=1e-4)
        assert reg(board, "clock", 0x418) == src | 1 << 16  # LFCLKSTAT: SRC, running


# -- RTC ---------------------------------------------------------------------------------


def test_rtc_counts_at_32768_hz_over_prescaler_only_while_lfclk_runs(board):
    reg(board, "rtc1", 0x508, 31)  # PRESCALER: 1024 Hz
    reg(board, "rtc1", 0x000, 1)  # START
    board.clock.advance(0.1)
    assert reg(board, "rtc1", 0x504) == 0  # no LFCLK yet: the RTC does not count
    start_lfclk(board)
    t0 = board.clock.now
    board.clock.advance(0.5)
    assert reg(board, "rtc1", 0x504) == int((board.clock.now - t0) * 1024)
    reg(board, "rtc1", 0x508, 0)  # PRESCALER while running: ignored
    assert reg(board, "rtc1", 0x508) == 31
    reg(board, "rtc1", 0x004, 1)  # STOP holds the value
    held = reg(board, "rtc1", 0x504)
    board.clock.advance(0.1)
    assert reg(board, "rtc1", 0x504) == held
    reg(board, "rtc1", 0x008, 1)  # CLEAR
    assert reg(board, "rtc1", 0x504) == 0


def test_rtc_compare_event_interrupt_and_the_n_plus_one_rule(board):
    start_lfclk(board)
    irq = BASES[board.chip]["rtc1_irq"]
    reg(board, "rtc1", 0x304, 1 << 16)  # INTENSET COMPARE0
    reg(board, "rtc1", 0x540, 100)  # CC[0]
    reg(board, "rtc1", 0x000, 1)
    board.clock.advance(99 / 32768)
    assert reg(board, "rtc1", 0x140) == 0
    board.clock.advance(2 / 32768)
    assert reg(board, "rtc1", 0x140) == 1 and board.nvic.pending >> irq & 1
    reg(board, "rtc1", 0x140, 0)
    board.nvic.write(0xE000E280, 4, 1 << irq)  # ICPR: the line is low now
    assert not board.nvic.pending >> irq & 1
    # "If the COUNTER is N, writing N or N+1 to a CC register may not trigger a COMPARE event":
    # the model never triggers then (the strict reading)
    now = reg(board, "rtc1", 0x504)
    reg(board, "rtc1", 0x540, now + 1)
    board.clock.advance(3 / 32768)
    assert reg(board, "rtc1", 0x140) == 0
    reg(board, "rtc1", 0x540, reg(board, "rtc1", 0x504) + 2)  # N+2 triggers
    board.clock.advance(3 / 32768)
    assert reg(board, "rtc1", 0x140) == 1


def test_rtc_events_need_inten_or_evten_and_overflow_comes_after_trigovrflw(board):
    start_lfclk(board)
    reg(board, "rtc1", 0x000, 1)
    reg(board, "rtc1", 0x00C, 1)  # TRIGOVRFLW: COUNTER = 0xFFFFF0
    board.clock.advance(20 / 32768)
    assert reg(board, "rtc1", 0x104) == 0  # OVRFLW neither in INTEN nor EVTEN: not generated
    reg(board, "rtc1", 0x344, 1 << 1)  # EVTENSET OVRFLW
    reg(board, "rtc1", 0x00C, 1)
    board.clock.advance(17 / 32768)
    assert reg(board, "rtc1", 0x104) == 1
    assert reg(board, "rtc1", 0x504) < 0x10  # wrapped
    assert not board.nvic.pending >> BASES[board.chip]["rtc1_irq"] & 1  # no INTEN: no IRQ


def test_rtc_compare_wakes_a_sleeping_program(board, tmp_path):
    """k_sleep in miniature: RTC1 CC[0] interrupt, WFI, the handler counts."""
    b = BASES[board.chip]
    src = rf"""
    #include <stdint.h>
    #define REG(a) (*(volatile uint32_t *)(a))
    __attribute__((aligned(512))) static uint32_t vectors[80];
    static volatile uint32_t ticks;
    static void rtc1(void) {{ REG({b['rtc1'] + 0x140:#x}u) = 0; ticks++;
                             REG({b['rtc1'] + 0x540:#x}u) = REG({b['rtc1'] + 0x504:#x}u) + 33; }}
    uint32_t main(void) {{
        vectors[16 + {b['rtc1_irq']}] = (uint32_t)rtc1;
        REG(0xE000ED08u) = (uint32_t)vectors;
        REG({b['clock'] + 0x008:#x}u) = 1;                 /* LFCLKSTART (LFRC) */
        while (!REG({b['clock'] + 0x104:#x}u)) {{}}
        REG({b['rtc1'] + 0x304:#x}u) = 1u << 16;
        REG({b['rtc1'] + 0x540:#x}u) = 33;                 /* ~1 ms */
        REG(0xE000E100u + 4 * ({b['rtc1_irq']} / 32)) = 1u << ({b['rtc1_irq']} % 32);
        REG({b['rtc1'] + 0x000:#x}u) = 1;
        while (ticks < 10) __asm volatile("wfi");
        return REG({b['rtc1'] + 0x504:#x}u);
    }}
    """
    t0 = board.clock.now
    counter = run_on_board(board, tmp_path, src, timeout_s=1.0)
    assert 330 <= counter <= 340
    assert board.clock.now - t0 == pytest.approx(0.0106, abs=0.002)  # slept, LFRC start


# -- UARTE, PPI, DPPI ----------------------------------------------------------------------


def test_uarte_transmits_to_the_console_at_the_baud_rate(board):
    board.write_memory(0x20001000, b"hello\r\n")
    reg(board, "uarte", 0x524, 0x01D60000)  # 115200
    reg(board, "uarte", 0x500, 8)
    reg(board, "uarte", 0x544, 0x20001000)
    reg(board, "uarte", 0x548, 7)
    reg(board, "uarte", 0x008, 1)  # STARTTX
    assert reg(board, "uarte", 0x150) == 1  # TXSTARTED at once
    board.clock.advance(6 * 10 / 115200)
    assert reg(board, "uarte", 0x120) == 0  # 6 of 7 bytes on the line
    board.clock.advance(2 * 10 / 115200)
    assert reg(board, "uarte", 0x120) == 1 and reg(board, "uarte", 0x54C) == 7  # ENDTX, AMOUNT
    assert board.console._file.getvalue() == b"hello\r\n"
    reg(board, "uarte", 0x00C, 1)  # STOPTX
    assert reg(board, "uarte", 0x158) == 1  # TXSTOPPED


def test_uarte_does_nothing_while_disabled_and_refuses_the_legacy_uart(board):
    reg(board, "uarte", 0x548, 1)
    reg(board, "uarte", 0x008, 1)
    board.clock.advance(1e-3)
    assert reg(board, "uarte", 0x150) == 0 and board.console._file.getvalue() == b""
    with pytest.raises(BusFault):
        reg(board, "uarte", 0x500, 4)  # ENABLE=4: UART (legacy) is not modelled


def route_endtx_to_stoptx(board) -> None:
    """What Zephyr's uarte driver sets up for its polled TX: ENDTX -> STOPTX."""
    base = BASES[board.chip]["uarte"]
    if board.chip == "nrf52840":
        board.bus.write(0x4001F510 + 8 * 19, 4, base + 0x120)  # CH[19].EEP = ENDTX
        board.bus.write(0x4001F514 + 8 * 19, 4, base + 0x00C)  # CH[19].TEP = STOPTX
        board.bus.write(0x4001F504, 4, 1 << 19)  # CHENSET
    else:
        reg(board, "uarte", 0x1A0, 0x80000000 | 31)  # PUBLISH_ENDTX on channel 31
        reg(board, "uarte", 0x08C, 0x80000000 | 31)  # SUBSCRIBE_STOPTX
        board.bus.write(0x50017504, 4, 1 << 31)  # DPPIC CHENSET


def test_ppi_or_dppi_connects_endtx_to_stoptx(board):
    route_endtx_to_stoptx(board)
    board.write_memory(0x20001000, b"x")
    reg(board, "uarte", 0x500, 8)
    reg(board, "uarte", 0x544, 0x20001000)
    reg(board, "uarte", 0x548, 1)
    reg(board, "uarte", 0x008, 1)
    board.clock.advance(1e-3)
    assert reg(board, "uarte", 0x120) == 1 and reg(board, "uarte", 0x158) == 1  # by routing


def test_routing_follows_channel_enable(board):
    route_endtx_to_stoptx(board)
    if board.chip == "nrf52840":
        board.bus.write(0x4001F508, 4, 1 << 19)  # CHENCLR
    else:
        board.bus.write(0x50017508, 4, 1 << 31)
    reg(board, "uarte", 0x500, 8)
    reg(board, "uarte", 0x548, 0)
    reg(board, "uarte", 0x008, 1)  # MAXCNT 0: ENDTX at once
    board.clock.advance(1e-4)
    assert reg(board, "uarte", 0x120) == 1 and reg(board, "uarte", 0x158) == 0


def test_rtc_compare_routed_to_a_timer_task(board):
    """EVTEN gates routing: RTC1 COMPARE0 -> TIMER0 START only once routing is enabled."""
    start_lfclk(board)
    rtc_event = BASES[board.chip]["rtc1"] + 0x140
    timer_start = BASES[board.chip]["timer0"] + 0x000
    if board.chip == "nrf52840":
        board.bus.write(0x4001F510, 4, rtc_event)
        board.bus.write(0x4001F514, 4, timer_start)
        board.bus.write(0x4001F504, 4, 1)
    else:
        reg(board, "rtc1", 0x1C0, 0x80000000 | 3)  # PUBLISH_COMPARE[0]
        board.bus.write(BASES[board.chip]["timer0"] + 0x080, 4, 0x80000000 | 3)  # SUB_START
        board.bus.write(0x50017504, 4, 1 << 3)
    reg(board, "rtc1", 0x540, 10)
    reg(board, "rtc1", 0x304, 1 << 16)  # INTEN only: event, no routing
    reg(board, "rtc1", 0x000, 1)
    board.clock.advance(12 / 32768)
    assert board.timers[0].running is False
    reg(board, "rtc1", 0x344, 1 << 16)  # EVTENSET: now routed
    reg(board, "rtc1", 0x540, reg(board, "rtc1", 0x504) + 5)
    board.clock.advance(7 / 32768)
    assert board.timers[0].running is True


# -- POWER, register files, errata words ----------------------------------------------------


def test_power_sleepenter_and_sleepexit_follow_wfi(board, tmp_path):
    b = BASES[board.chip]
    src = rf"""
    #include <stdint.h>
    #define REG(a) (*(volatile uint32_t *)(a))
    uint32_t main(void) {{
        REG({b['clock'] + 0x114:#x}u) = 0;
        REG({b['clock'] + 0x118:#x}u) = 0;
        REG({b['timer0'] + 0x510:#x}u) = 4;            /* 1 MHz */
        REG({b['timer0'] + 0x540:#x}u) = 100;          /* CC[0]: 100 us */
        REG({b['timer0'] + 0x304:#x}u) = 1u << 16;
        REG(0xE000E100u) = 1u << {8 if board.chip == 'nrf52840' else 15};
        __asm volatile("cpsid i");
        REG({b['timer0']:#x}u) = 1;
        __asm volatile("wfi");
        return REG({b['clock'] + 0x114:#x}u) | REG({b['clock'] + 0x118:#x}u) << 1;
    }}
    """
    assert run_on_board(board, tmp_path, src) == 3


def test_register_files_keep_values_and_errata_words_read_zero(board):
    if board.chip == "nrf52840":
        assert board.bus.read(0x4000C520, 4) == 0x326  # TEMP.A0 reset value (SVD)
        board.bus.write(0x4000C520, 4, 0xFFFFFFFF)  # erratum 66 trim copy
        assert board.bus.read(0x4000C520, 4) == 0xFFF
        board.bus.write(0x4000617C, 4, 0)  # GPIOTE EVENTS_PORT
        assert board.bus.read(0x4000617C, 4) == 0
    else:
        assert board.bus.read(0x50032420, 4) == 0  # erratum 140: no reset during calibration
        board.bus.write(0x502012A0, 4, 0)  # erratum 160: accepted
        board.bus.write(0x5000470C, 4, 0x7E)  # erratum 160 in REGULATORS: ignored
        assert board.bus.read(0x5000470C, 4) == 0
        board.bus.write(0x50001500, 4, 1)  # CACHE.ENABLE
        assert board.bus.read(0x40001500, 4) == 1  # the non-secure alias is the same block
        board.bus.write(0x50006544, 4, 0x50FA50FA)  # CTRLAP.APPROTECT.DISABLE
        assert board.bus.read(0x50006544, 4) == 0x50FA50FA
        board.bus.write(0x5002A5B8, 4, 0x400)  # IPC RECEIVE_CNF[10]
        assert board.bus.read(0x5002A5B8, 4) == 0x400
        with pytest.raises(BusFault):
            board.bus.read(0x50032424, 4)  # next to an errata word: nothing
