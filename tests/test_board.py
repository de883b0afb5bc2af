"""The virtual board in-process: presets, memory map, peripherals, C programs to `bkpt`."""

from __future__ import annotations

import time
import zlib

import pytest
from armgcc import build, run_on_board

from qspi_gdb.errors import TargetError
from qspi_gdb.sim.board import BOARDS, Board, InProcessLink
from qspi_gdb.sim.bus import BusFault
from qspi_gdb.sim.core import DFSR_VCATCH

pytestmark = pytest.mark.usefixtures("logging_to_a_live_stream")

CHIP_BOARDS = ["sim-nrf52840dk", "sim-nrf5340dk"]

# Per chip: (core, FICR INFO.PART address, CLOCK base, TIMER0 base, TIMER0 IRQ, P0 PIN_CNF[0])
CHIP = {
    "sim-nrf52840dk": ("cortex-m4f", 0x10000100, 0x40000000, 0x40008000, 8, 0x50000700),
    "sim-nrf5340dk": ("cortex-m33", 0x00FF020C, 0x50005000, 0x5000F000, 15, 0x50842700),
}


@pytest.fixture
def board(request):
    b = Board(request.param)
    yield b
    b.close()


def halted_link(board: Board) -> InProcessLink:
    link = InProcessLink(board)
    link.halt()
    return link


def run_program(board: Board, tmp_path, source: str, timeout_s: float = 1.0) -> int:
    return run_on_board(board, tmp_path, source, timeout_s)


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_presets_build_a_board(name):
    row = BOARDS[name]  # the board table's row
    with Board(name) as b:
        assert b.chip == row.chip and b.row is row
        assert b.flash.part.name == row.part
        assert b.core.model == b.model.core
        assert b.core_hz == 64e6
        assert len(b.ram) == (256 if b.chip == "nrf52840" else 512) * 1024


def test_unknown_board_is_refused():
    with pytest.raises(ValueError, match="unknown virtual board"):
        Board("sim-nrf9160")


@pytest.mark.parametrize("board", CHIP_BOARDS, indirect=True)
def test_blank_chip_locks_up_until_a_debugger_halts_it(board):
    board.service()
    assert board.core.lockup and "erased reset vector" in board.core.fault
    board.core.halt("halted")
    assert board.core.halted and not board.core.lockup


@pytest.mark.parametrize("board", CHIP_BOARDS, indirect=True)
def test_crc32_program_runs_to_bkpt(board, tmp_path):
    source = r"""
    #include <stdint.h>
    static uint8_t buf[8192];
    static uint32_t crc32(const uint8_t *p, uint32_t n) {
        uint32_t c = 0xFFFFFFFFu;
        while (n--) {
            c ^= *p++;
            for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & -(c & 1));
        }
        return ~c;
    }
    uint32_t main(void) {
        for (uint32_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)(i * 7 + 3);
        return crc32(buf, sizeof buf);
    }
    """
    r0 = run_program(board, tmp_path, source)
    assert r0 == zlib.crc32(bytes((i * 7 + 3) & 0xFF for i in range(8192)))
    assert board.stats["modelled_s"] > 0
    assert board.stats["halts"] >= 2


@pytest.mark.parametrize("board", CHIP_BOARDS, indirect=True)
def test_ficr_identifies_the_chip(board, tmp_path):
    part_addr = CHIP[board.name][1]
    part = board.bus.read(part_addr, 4)
    assert part == (0x52840 if board.chip == "nrf52840" else 0x5340)
    src = f"""
    #include <stdint.h>
    uint32_t main(void) {{ return *(volatile uint32_t *)0x{part_addr:08X}u; }}
    """
    assert run_program(board, tmp_path, src) == part


@pytest.mark.parametrize("board", CHIP_BOARDS, indirect=True)
def test_unmodelled_addresses_fault_loudly(board, tmp_path):
    with pytest.raises(BusFault):
        board.bus.read(0x40003000, 4)  # SPIM/TWIM (nRF52840), nothing (nRF5340): not modelled
    with pytest.raises(BusFault):
        board.bus.read(0x30000000, 4)  # nothing there
    with pytest.raises(BusFault):
        board.bus.write(0x00000000, 4, 0)  # internal flash: the NVMC is not in write mode
    src = r"""
    #include <stdint.h>
    uint32_t main(void) { return *(volatile uint32_t *)0x40003000u; }
    """
    elf = build(tmp_path, src, CHIP[board.name][0])
    link = halted_link(board)
    link.load_elf(elf)
    link.resume()
    with pytest.raises(TargetError, match="locked up.*0x40003000"):
        link.wait_halt(1.0)


@pytest.mark.parametrize("board", CHIP_BOARDS, indirect=True)
def test_memory_round_trip_through_the_link(board):
    link = halted_link(board)
    data = bytes(range(256)) * 256
    link.write_memory(0x20010000, data)
    assert link.read_memory(0x20010000, len(data)) == data
    assert board.stats["bytes_written"] == len(data)
    link.write_memory(0x20000001, b"\x11\x22\x33")  # unaligned bytes
    assert link.read_memory(0x20000000, 5) == b"\x00\x11\x22\x33\x00"
    with pytest.raises(TargetError):
        link.read_memory(0x20000000 + len(board.ram), 4)


@pytest.mark.parametrize("board", CHIP_BOARDS, indirect=True)
def test_reset_halt_stops_at_the_reset_vector_and_keeps_ram(board):
    link = halted_link(board)
    link.write_memory(0x20000000, b"keep")
    link.reset(halt=True)
    assert board.core.halted and board.core.dfsr & DFSR_VCATCH
    assert link.read_register("pc") == 0xFFFFFFFE  # blank vector table
    assert link.read_memory(0x20000000, 4) == b"keep"


def timer_wait_source(board_name: str, prescaler: int, cc: int) -> str:
    _, _, _, timer, irq, _ = CHIP[board_name]
    return f"""
    #include <stdint.h>
    #define REG(a) (*(volatile uint32_t *)(a))
    #define T 0x{timer:08X}u
    uint32_t main(void) {{
        __asm volatile("cpsid i");
        REG(0xE000E100u + 4 * ({irq} / 32)) = 1u << ({irq} % 32);  /* NVIC ISER */
        REG(T + 0x504) = 0;            /* MODE Timer */
        REG(T + 0x508) = 3;            /* BITMODE 32 */
        REG(T + 0x510) = {prescaler};  /* PRESCALER */
        REG(T + 0x540) = {cc};         /* CC[0] */
        REG(T + 0x304) = 1u << 16;     /* INTENSET COMPARE0 */
        REG(T + 0x00C) = 1;            /* CLEAR */
        REG(T + 0x000) = 1;            /* START */
        uint32_t wakes = 0;
        while (!REG(T + 0x140)) {{ __asm volatile("wfi"); wakes++; }}
        REG(T + 0x040 + 4) = 1;        /* CAPTURE[1] */
        uint32_t now = REG(T + 0x544);
        REG(T + 0x004) = 1;            /* STOP */
        return (wakes << 24) | (now & 0xFFFFFF);
    }}
    """


@pytest.mark.parametrize("board", CHIP_BOARDS, indirect=True)
def test_timer_compare_wakes_wfi_with_primask_set_and_sleep_costs_no_wall_time(board, tmp_path):
    # 20 s of modelled sleep at 31.25 kHz: must take no noticeable host time
    src = timer_wait_source(board.name, prescaler=9, cc=625000)
    t0_wall = time.perf_counter()
    r0 = run_program(board, tmp_path, src, timeout_s=30.0)
    wall = time.perf_counter() - t0_wall
    count = r0 & 0xFFFFFF
    assert r0 >> 24 >= 1  # it slept and was woken
    assert 625000 <= count < 625000 + 50  # woke at the compare, not before
    assert board.clock.now == pytest.approx(20.0, abs=0.01)
    assert wall < 10  # generous: the point is it does not take 20 s of busy host time


@pytest.mark.parametrize("board", CHIP_BOARDS, indirect=True)
def test_hfclk_start_sets_its_event_after_the_crystal_start_up(board, tmp_path):
    clock = CHIP[board.name][2]
    src = f"""
    #include <stdint.h>
    #define REG(a) (*(volatile uint32_t *)(a))
    uint32_t main(void) {{
        uint32_t before = REG(0x{clock:08X}u + 0x40C);
        REG(0x{clock:08X}u + 0x100) = 0;
        REG(0x{clock:08X}u + 0x000) = 1;       /* TASKS_HFCLKSTART */
        uint32_t polls = 0;
        while (!REG(0x{clock:08X}u + 0x100)) polls++;
        return (REG(0x{clock:08X}u + 0x40C) << 0) ^ (before << 1) ^ 0 ? polls : 0;
    }}
    """
    t0 = board.clock.now
    polls = run_program(board, tmp_path, src)
    assert polls > 0
    assert board.clock.now - t0 >= 360e-6
    assert board.bus.read(clock + 0x40C, 4) == 0x00010001  # HFXO running
    assert board.bus.read(clock + 0x408, 4) == 1  # HFCLKRUN


def test_timer_compare_fires_once_per_match_and_shorts_clear():
    with Board("sim-nrf52840dk") as b:
        t = 0x40008000
        for off, value in ((0x508, 0), (0x510, 0), (0x540, 1000), (0x200, 1), (0x000, 1)):
            b.bus.write(t + off, 4, value)  # 16 bit, 16 MHz, CC0=1000, COMPARE0_CLEAR, START
        fired = []
        original = b.timers[0]._compare
        b.timers[0]._compare = lambda n: (fired.append(b.clock.now), original(n))
        b.clock.advance(3.5 * 1000 / 16e6)
        assert len(fired) == 3
        assert fired[0] == pytest.approx(1000 / 16e6) and fired[2] == pytest.approx(3000 / 16e6)
        b.bus.write(t + 0x048, 4, 1)  # CAPTURE[2]
        assert b.bus.read(t + 0x548, 4) == 500
        assert b.bus.read(t + 0x140, 4) == 1


def test_nrf5340_hfclkctrl_sets_the_core_clock():
    with Board("sim-nrf5340dk") as b:
        assert b.core_hz == 64e6
        b.bus.write(0x50005558, 4, 0)  # HFCLKCTRL Div1
        assert b.core_hz == 128e6
        assert b.bus.read(0x40005558, 4) == 0  # the non-secure alias is the same register
        b.bus.write(0x500055B8, 4, 0)  # HFCLK192MCTRL Div1
        assert b.clock_periph.pclk192m_hz == 192e6


def test_gpio_pin_cnf_and_dir_are_one_bit_and_mcusel_is_kept():
    with Board("sim-nrf5340dk") as b:
        cnf = 0x50842700 + 13 * 4  # P0.PIN_CNF[13]
        assert b.bus.read(cnf, 4) == 0x2
        b.bus.write(cnf, 4, (3 << 28) | (3 << 8) | 2)  # MCUSEL Peripheral, H0H1, disconnect
        assert b.bus.read(cnf, 4) == (3 << 28) | (3 << 8) | 2
        b.bus.write(0x50842518, 4, 1 << 13)  # DIRSET
        assert b.bus.read(cnf, 4) & 1 and b.bus.read(0x50842514, 4) == 1 << 13
    with Board("sim-nrf52840dk") as b:
        b.bus.write(0x50000508, 4, 1 << 5)  # P0.OUTSET
        b.bus.write(0x50000518, 4, 1 << 5)  # P0.DIRSET
        assert b.bus.read(0x50000504, 4) == 1 << 5
        assert b.bus.read(0x50000700 + 5 * 4, 4) & 1
        b.bus.write(0x50000A00, 4, 1)  # P1.PIN_CNF[0]
        assert b.bus.read(0x50000814, 4) == 1  # P1.DIR


def test_run_until_halt_times_out_in_modelled_time_and_halts(tmp_path):
    with Board("sim-nrf52840dk") as b:
        src = "int main(void) { for (;;) { __asm volatile(\"wfi\"); } }"
        elf = build(tmp_path, src)
        link = halted_link(b)
        link.load_elf(elf)
        link.resume()
        with pytest.raises(TargetError, match="did not halt"):
            link.wait_halt(2.0)
        assert b.core.halted
        assert b.clock.now == pytest.approx(2.0, abs=1e-3)


def test_stats_are_a_mapping_with_live_values():
    with Board("sim-nrf52840dk") as b:
        b.stats["dap_transactions"] += 5
        b.stats["dap_bytes"] += 4  # unknown counters start at 0
        snapshot = dict(b.stats)
        assert snapshot["dap_transactions"] == 5 and snapshot["dap_bytes"] == 4
        expected = {"modelled_s", "debug_session_s", "flash_busy_s", "halts", "bytes_read",
                    "bytes_written"}
        assert expected <= set(snapshot)
        with pytest.raises(KeyError):
            b.stats["modelled_s"] = 1


def test_debug_session_spans_the_first_halt_to_the_last_resume():
    """The board's run time before a debugger takes hold and after it lets go is not part of
    the session it held (on the test bed it follows OpenOCD's own start and exit in wall time)."""
    with Board("sim-nrf52840dk") as b:
        assert b.stats["debug_session_s"] == 0.0
        b.clock.advance(0.5)  # running before the debugger halts it
        b.core.halt("halted")
        b.clock.advance(0.25)
        b.core.resume()
        b.clock.advance(0.5)
        b.core.halt("halted")
        b.clock.advance(0.125)  # still halted: counts
        assert b.stats["debug_session_s"] == pytest.approx(0.875)
        b.core.resume()
        b.clock.advance(2.0)  # let go: no longer the session
        assert b.stats["debug_session_s"] == pytest.approx(0.875)
        assert b.stats["modelled_s"] == pytest.approx(3.375, abs=1e-3)


def test_sim_image_is_the_flash_backing_file(tmp_path):
    image = tmp_path / "flash.bin"
    b = Board("sim-nrf52840dk", image)
    b.close()
    assert image.stat().st_size == 8 * 1024 * 1024


# Per chip: QSPI base, pins (SCK, CSN, IO0..IO3 on P0), GPIO P0 PIN_CNF[0], XIP base, QSPI IRQ
QSPI = {
    "sim-nrf52840dk": (0x40029000, (19, 17, 20, 21, 22, 23), 0x50000700, 0x12000000, 41),
    "sim-nrf5340dk": (0x5002B000, (17, 18, 13, 14, 15, 16), 0x50842700, 0x10000000, 43),
}


def qspi_program(board_name: str, *, base: int | None = None) -> str:
    qbase, pins, pin_cnf, xip, irq = QSPI[board_name]
    qbase = base or qbase
    mcusel = "(3u << 28)" if "5340" in board_name else "0u"
    return f"""
    #include <stdint.h>
    #define REG(a) (*(volatile uint32_t *)(a))
    #define Q(o) REG(0x{qbase:08X}u + (o))
    static const uint32_t pins[6] = {{ {", ".join(str(p) for p in pins)} }};
    static uint32_t wbuf[64], rbuf[64];
    volatile uint32_t result[8];

    static void wait_ready(void) {{   /* PRIMASK=1 + WFI: wake on the pending QSPI IRQ */
        while (!Q(0x100)) __asm volatile("wfi");
        Q(0x100) = 0;
        REG(0xE000E280u + 4 * ({irq} / 32)) = 1u << ({irq} % 32);  /* ICPR */
    }}
    static uint32_t cinstr(uint32_t conf) {{
        Q(0x100) = 0;
        Q(0x634) = conf | (3u << 12);  /* LIO2 | LIO3 */
        wait_ready();
        return Q(0x638);
    }}
    static void wait_wip(void) {{ while (cinstr(0x05 | (2u << 8)) & 1u) ; }}

    uint32_t main(void) {{
        __asm volatile("cpsid i");
        REG(0xE000E100u + 4 * ({irq} / 32)) = 1u << ({irq} % 32);  /* ISER */
        for (int i = 0; i < 6; i++) {{
            REG(0x{pin_cnf:08X}u + 4 * pins[i]) = {mcusel} | (3u << 8) | 2u | (i == 1 || i == 5);
        }}
        for (int i = 0; i < 6; i++) Q(0x524 + 4 * i + (i >= 2 ? 4 : 0)) = pins[i];
        Q(0x544) = 0;                                   /* IFCONFIG0: FASTREAD, PP, 24 bit */
        Q(0x600) = (Q(0x600) & 0x00FFFF00u) | 1u | (3u << 28);
        Q(0x304) = 1;                                   /* INTENSET READY */
        Q(0x500) = 1;                                   /* ENABLE */
        Q(0x100) = 0;
        Q(0x000) = 1;                                   /* TASKS_ACTIVATE */
        wait_ready();
        result[0] = cinstr(0x9F | (4u << 8)) & 0xFFFFFFu;   /* RDID */
        Q(0x51C) = 0; Q(0x520) = 0;                     /* erase the 4 KiB sector at 0 */
        Q(0x100) = 0; Q(0x00C) = 1; wait_ready(); wait_wip();
        for (int i = 0; i < 64; i++) wbuf[i] = 0xA5000000u ^ (uint32_t)i * 0x01010101u;
        Q(0x510) = 0x100; Q(0x514) = (uint32_t)wbuf; Q(0x518) = 256;
        Q(0x100) = 0; Q(0x008) = 1; wait_ready(); wait_wip();   /* WRITESTART one page */
        Q(0x504) = 0x100; Q(0x508) = (uint32_t)rbuf; Q(0x50C) = 256;
        Q(0x100) = 0; Q(0x004) = 1; wait_ready();               /* READSTART */
        uint32_t same = 1;
        for (int i = 0; i < 64; i++) same &= rbuf[i] == wbuf[i];
        result[1] = same;
        result[2] = REG(0x{xip:08X}u + 0x100 + 4 * 5);   /* the same data through XIP */
        result[3] = (uint32_t)rbuf;
        return result[0];
    }}
    """


@pytest.mark.parametrize("board", CHIP_BOARDS, indirect=True)
def test_c_program_drives_the_qspi_peripheral_and_the_flash_model_agrees(board, tmp_path):
    r0 = run_program(board, tmp_path, qspi_program(board.name), timeout_s=2.0)
    jedec = board.flash.jedec_id
    assert r0 == int.from_bytes(bytes(jedec[:3]), "little")
    expected = b"".join(((0xA5000000 ^ i * 0x01010101) & 0xFFFFFFFF).to_bytes(4, "little")
                        for i in range(64))
    assert board.flash.peek(0x100, 256) == expected
    assert board.flash.peek(0x000, 0x100) == b"\xff" * 0x100
    assert board.flash.peek(0x200, 0xE00) == b"\xff" * 0xE00
    # the program's own read-back and XIP read saw the page too
    result_syms = _symbol(tmp_path / "prog.elf", "result")
    result = board.read_memory(result_syms, 16)
    assert int.from_bytes(result[4:8], "little") == 1
    assert int.from_bytes(result[8:12], "little") == int.from_bytes(expected[20:24], "little")
    rbuf = int.from_bytes(result[12:16], "little")
    assert board.read_memory(rbuf, 256) == expected
    assert board.qspi.errors == []
    assert board.stats["flash_busy_s"] > 0


def test_nrf5340_qspi_non_secure_alias_is_the_same_peripheral(tmp_path):
    with Board("sim-nrf5340dk") as board:
        r0 = run_program(board, tmp_path, qspi_program(board.name, base=0x4002B000), 2.0)
        assert r0 == int.from_bytes(bytes(board.flash.jedec_id[:3]), "little")
        assert board.bus.read(0x5002B500, 4) == board.bus.read(0x4002B500, 4) == 1


def test_system_reset_keeps_the_flash_chip_state(tmp_path):
    with Board("sim-nrf52840dk") as board:
        run_program(board, tmp_path, qspi_program(board.name), timeout_s=2.0)
        page = board.flash.peek(0x100, 256)
        assert board.bus.read(0x40029500, 4) == 1  # QSPI enabled
        InProcessLink(board).reset(halt=True)
        assert board.bus.read(0x40029500, 4) == 0  # peripheral reset
        assert board.flash.peek(0x100, 256) == page  # chip untouched


def _symbol(elf_path, name: str) -> int:
    from elftools.elf.elffile import ELFFile

    with open(elf_path, "rb") as f:
        sym = ELFFile(f).get_section_by_name(".symtab").get_symbol_by_name(name)
        return sym[0]["st_value"]


@pytest.mark.parametrize("board", CHIP_BOARDS, indirect=True)
def test_fault_vectors_through_vtor_to_the_programs_handler(board, tmp_path):
    """As the loader does: VTOR -> a RAM table whose HardFault handler halts on a bkpt."""
    src = r"""
    #include <stdint.h>
    #define REG(a) (*(volatile uint32_t *)(a))
    void handler(void);
    __attribute__((aligned(512))) static uint32_t vectors[16];
    __attribute__((naked)) void handler(void) { __asm volatile("bkpt #0xFA\n b ."); }
    uint32_t main(void) {
        for (int i = 2; i < 8; i++) vectors[i] = (uint32_t)handler;
        __asm volatile("dsb" ::: "memory");      /* the table is written before VTOR */
        REG(0xE000ED08u) = (uint32_t)vectors;   /* VTOR */
        return REG(0x40003000u);                 /* unmodelled peripheral: BusFault */
    }
    """
    elf = build(tmp_path, src, CHIP[board.name][0])
    link = halted_link(board)
    link.load_elf(elf)
    link.resume()
    link.wait_halt(1.0)
    assert board.core.halt_reason == "bkpt"
    assert board.core.pc == _symbol(elf, "handler") & ~1
    assert link.read_register("xpsr") & 0x1FF == 3  # HardFault
    assert "0x40003000" in board.core.fault


@pytest.mark.parametrize("board", CHIP_BOARDS, indirect=True)
def test_prebuilt_loader_programs_the_flash_in_process(board):
    """The shipped RAM loader on the board through InProcessLink: the sim fits the loader."""
    from qspi_gdb.loader import config as lc
    from qspi_gdb.loader import mailbox as mb
    from qspi_gdb.loader.client import LoaderClient

    link = halted_link(board)
    client = LoaderClient(link, chip=board.chip)
    greeting = client.start()
    assert client.header.magic == mb.MAGIC and client.stats.noticed_halts == 0
    buf = greeting.buffers[0]
    init = client.init(lc.LoaderConfig(pins=QSPI[board.name][1], flash_size=board.flash.size))
    assert init.jedec_id == int.from_bytes(bytes(board.flash.jedec_id[:3]), "big")
    assert client.read_id() == init.jedec_id
    data = bytes((i * 13 + 1) & 0xFF for i in range(8192))
    link.write_memory(buf.addr, data)
    erase, program, crc = client.run([
        mb.Command(mb.OP_ERASE, addr=0x10000, len=0x1000 * 2, arg=mb.ERASE_4K),
        mb.Command(mb.OP_PROGRAM, addr=0x10000, len=len(data), buf=buf.index),
        mb.Command(mb.OP_CRC32, addr=0x10000, len=len(data)),
    ])
    assert board.flash.peek(0x10000, len(data)) == data
    assert crc.result0 == zlib.crc32(data)


@pytest.mark.parametrize("board", CHIP_BOARDS, indirect=True)
def test_resetreas_records_a_system_reset_request(board):
    clock = CHIP[board.name][2]
    assert board.bus.read(clock + 0x400, 4) == 0
    board.system_reset()
    sreq = 1 << (3 if board.chip == "nrf5340" else 2)
    assert board.bus.read(clock + 0x400, 4) == sreq
    board.bus.write(clock + 0x400, 4, sreq)  # write 1 to clear
    assert board.bus.read(clock + 0x400, 4) == 0


def test_peripheral_details():
    with Board("sim-nrf5340dk") as b:
        clock = 0x50005000
        b.bus.write(clock + 0x124, 4, 0)
        b.bus.write(clock + 0x020, 4, 1)  # TASKS_HFCLK192MSTART
        assert b.bus.read(clock + 0x458, 4) == 1 and b.bus.read(clock + 0x124, 4) == 0
        b.clock.advance(1e-3)
        assert b.bus.read(clock + 0x124, 4) == 1
        assert b.bus.read(clock + 0x45C, 4) == (1 << 16) | 1
        with pytest.raises(BusFault):
            b.bus.read(0x5000F000 + 0x600, 4)  # a hole inside TIMER0
        with pytest.raises(BusFault):
            b.bus.write(0x5000F000 + 0x540, 2, 0)  # 16-bit write to a 32-bit register
        assert b.bus.read(0x50039400, 4) == 1  # NVMC.READY
        # TIMER in counter mode counts COUNT tasks
        t = 0x50010000  # TIMER1
        b.bus.write(t + 0x504, 4, 1)
        b.bus.write(t + 0x540, 4, 3)
        b.bus.write(t + 0x000, 4, 1)
        for _ in range(3):
            b.bus.write(t + 0x008, 4, 1)
        assert b.bus.read(t + 0x140, 4) == 1
        b.bus.write(t + 0x044, 4, 1)  # CAPTURE[1]
        assert b.bus.read(t + 0x544, 4) == 3


def test_easydma_reaches_data_ram_only():
    with Board("sim-nrf52840dk") as b:
        b.memory.write(0x20000000, b"\x01\x02")
        assert b.memory.read(0x20000000, 2) == b"\x01\x02"
        assert b.read_memory(0x00800000, 2) == b"\x01\x02"  # the CPU's code alias
        for addr in (0x00800000, 0x1FFFFFFC, 0x2003FFFE):
            with pytest.raises(BusFault):
                b.memory.read(addr, 4)


@pytest.mark.parametrize("board", CHIP_BOARDS, indirect=True)
def test_a_busy_poll_sees_the_compare_event_at_the_right_time(board, tmp_path):
    timer = CHIP[board.name][3]
    src = f"""
    #include <stdint.h>
    #define REG(a) (*(volatile uint32_t *)(a))
    #define T 0x{timer:08X}u
    uint32_t main(void) {{
        REG(T + 0x508) = 3; REG(T + 0x510) = 0; REG(T + 0x540) = 1000;  /* 32 bit, 16 MHz */
        REG(T + 0x00C) = 1; REG(T + 0x000) = 1;
        while (!REG(T + 0x140)) ;
        REG(T + 0x044) = 1;                    /* CAPTURE[1] right after the event */
        return REG(T + 0x544);
    }}
    """
    ticks = run_program(board, tmp_path, src)
    assert 1000 <= ticks < 1000 + 32  # 2 us of slack, not a whole 256 us slice


def test_code_rewritten_through_data_ram_runs_from_the_code_alias():
    with Board("sim-nrf52840dk") as b:
        link = halted_link(b)
        movs_bkpt = bytes.fromhex("0120" "00be")  # movs r0,#1; bkpt
        link.write_memory(0x20000100, movs_bkpt)
        for expected, code in ((1, movs_bkpt), (2, bytes.fromhex("0220" "00be"))):
            link.write_memory(0x20000100, code)  # written through the data RAM address
            link.write_register("pc", 0x00800100)  # executed through the code alias
            link.write_register("xpsr", 1 << 24)
            link.resume()
            link.wait_halt(0.1)
            assert link.read_register("r0") == expected
