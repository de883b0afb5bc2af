"""The NVMC: the internal flash and the UICR programmed and erased by a debugger and by code.

nRF52840 PS v1.7 §4.3 / nRF5340 PS NVMC: CONFIG selects write (Wen) or erase (Een); only whole
aligned words are written, and a write can only clear bits; each operation keeps READY low for
its datasheet time. This is how a flash-linked application gets onto the virtual board (a
debugger writes it through the NVMC) and how Zephyr's SystemInit programs UICR.PSELRESET.
"""

from __future__ import annotations

import time

import pytest
from armgcc import build, run_on_board

from qspi_gdb.sim.board import Board, InProcessLink
from qspi_gdb.sim.bus import BusFault

pytestmark = pytest.mark.usefixtures("logging_to_a_live_stream")

NVMC = {"nrf52840": 0x4001E000, "nrf5340": 0x50039000}
UICR = {"nrf52840": 0x10001000, "nrf5340": 0x00FF8000}
READY, CONFIG, ERASEPAGE, ERASEALL, ERASEUICR = 0x400, 0x504, 0x508, 0x50C, 0x514
REN, WEN, EEN = 0, 1, 2


@pytest.fixture(params=["sim-nrf52840dk", "sim-nrf5340dk"])
def board(request):
    b = Board(request.param)
    b.core.halt("halted")  # "the CPU must be halted before initiating a NVMC operation
    yield b                # from the debug system"
    b.close()


def nvmc(board, offset, value=None):
    addr = NVMC[board.chip] + offset
    if value is None:
        return board.bus.read(addr, 4)
    board.bus.write(addr, 4, value)


def wait_ready(board) -> float:
    """Poll READY as a debugger would; returns the modelled time it took."""
    start = board.clock.now
    while not nvmc(board, READY):
        board.clock.advance(5e-6)
    return board.clock.now - start


def erase_page(board, page: int) -> None:
    nvmc(board, CONFIG, EEN)
    if board.chip == "nrf52840":
        nvmc(board, ERASEPAGE, page)
    else:
        board.bus.write(page, 4, 0xFFFFFFFF)  # nRF5340: 0xFFFFFFFF to the page's first word
    wait_ready(board)
    nvmc(board, CONFIG, REN)


def test_debugger_writes_words_through_the_nvmc_and_they_only_clear_bits(board):
    nvmc(board, CONFIG, WEN)
    board.bus.write(0x1000, 4, 0x12345678)
    busy = wait_ready(board)
    assert busy == pytest.approx(board.nvmc.t_write, abs=6e-6)  # tWRITE: 41 us / 43 us
    board.bus.write(0x1000, 4, 0xFFFF00FF)  # nWRITE = 2: the second write ANDs
    wait_ready(board)
    nvmc(board, CONFIG, REN)
    assert board.bus.read(0x1000, 4) == 0x12340078
    with pytest.raises(BusFault, match="not Wen"):
        board.bus.write(0x1004, 4, 0)  # read-only mode: refused
    nvmc(board, CONFIG, WEN)
    with pytest.raises(BusFault, match="word-aligned"):
        board.bus.write(0x1006, 2, 0)  # "byte or half-word-aligned writes: hard fault"
    assert board.read_memory(0x1004, 4) == b"\xff" * 4


def test_page_erase_and_erase_all(board):
    nvmc(board, CONFIG, WEN)
    for addr in (0x2000, 0x2FFC, 0x3000):
        board.bus.write(addr, 4, 0)
        wait_ready(board)
    board.bus.write(UICR[board.chip] + 0x80, 4, 0xA5A5A5A5)  # CUSTOMER[0]
    wait_ready(board)
    erase_page(board, 0x2000)
    assert board.read_memory(0x2000, 0x1000) == b"\xff" * 0x1000
    assert board.bus.read(0x3000, 4) == 0  # the next page is untouched
    assert board.bus.read(UICR[board.chip] + 0x80, 4) == 0xA5A5A5A5
    nvmc(board, CONFIG, EEN)
    nvmc(board, ERASEALL, 1)
    busy = wait_ready(board)
    assert busy == pytest.approx(board.nvmc.t_eraseall, abs=1e-5)
    assert board.bus.read(0x3000, 4) == 0xFFFFFFFF
    assert board.bus.read(UICR[board.chip] + 0x80, 4) == 0xFFFFFFFF  # UICR erased too


def test_erase_needs_een(board):
    nvmc(board, CONFIG, WEN)
    board.bus.write(0x4000, 4, 0)
    wait_ready(board)
    if board.chip == "nrf52840":
        nvmc(board, ERASEPAGE, 0x4000)  # Wen, not Een: ignored (and logged)
    else:
        board.bus.write(0x4000, 4, 0xFFFFFFFF)  # with Wen this is a write: ANDs nothing
    wait_ready(board)
    assert board.bus.read(0x4000, 4) == 0


def test_uicr_written_by_code_survives_a_system_reset(board, tmp_path):
    """What Zephyr's SystemInit does for CONFIG_GPIO_AS_PINRESET on the nRF52840: program
    UICR.PSELRESET[0..1] through the NVMC, then reset; the words stay."""
    uicr = UICR[board.chip]
    src = rf"""
    #include <stdint.h>
    #define REG(a) (*(volatile uint32_t *)(a))
    uint32_t main(void) {{
        REG({NVMC[board.chip] + CONFIG:#x}u) = 1;
        while (!REG({NVMC[board.chip] + READY:#x}u)) {{}}
        REG({uicr + 0x200:#x}u) = 18;
        while (!REG({NVMC[board.chip] + READY:#x}u)) {{}}
        REG({uicr + 0x204:#x}u) = 18;
        while (!REG({NVMC[board.chip] + READY:#x}u)) {{}}
        REG({NVMC[board.chip] + CONFIG:#x}u) = 0;
        return REG({uicr + 0x200:#x}u);
    }}
    """
    assert run_on_board(board, tmp_path, src) == 18
    InProcessLink(board).reset(halt=True)
    assert board.bus.read(uicr + 0x200, 4) == board.bus.read(uicr + 0x204, 4) == 18


def test_code_programs_flash_and_reads_back_the_anded_word(board, tmp_path):
    """The core's own stores to the read-only mapped flash go through the NVMC: a program
    running from RAM writes a word twice and reads back old & new."""
    base = NVMC[board.chip]
    src = rf"""
    #include <stdint.h>
    #define REG(a) (*(volatile uint32_t *)(a))
    uint32_t main(void) {{
        volatile uint32_t *word = (volatile uint32_t *)0x8000u;
        REG({base + CONFIG:#x}u) = 1;
        *word = 0xF0F0FFFFu;
        while (!REG({base + READY:#x}u)) {{}}
        *word = 0xFFFF0F0Fu;             /* cannot set bits back to 1 */
        while (!REG({base + READY:#x}u)) {{}}
        REG({base + CONFIG:#x}u) = 0;
        return *word;
    }}
    """
    assert run_on_board(board, tmp_path, src) == 0xF0F00F0F
    assert board.bus.read(0x8000, 4) == 0xF0F00F0F


def test_code_writing_flash_in_read_only_mode_takes_a_hardfault(board, tmp_path):
    src = r"""
    #include <stdint.h>
    uint32_t main(void) { *(volatile uint32_t *)0x8000u = 0; return 1; }
    """
    elf = build(tmp_path, src, board.model.core)
    link = InProcessLink(board)
    link.load_elf(elf)
    link.resume()
    with pytest.raises(Exception, match="locked up"):
        link.wait_halt(1.0)
    assert board.bus.read(0x8000, 4) == 0xFFFFFFFF


def test_an_application_loaded_into_flash_by_the_debugger_boots_from_reset(board, tmp_path):
    """A flash-linked program (vector table at 0) written word by word through the NVMC, as a
    debugger loads an application; after a reset it runs from the internal flash."""
    linker = """
    MEMORY { FLASH (rx) : ORIGIN = 0, LENGTH = 64K  RAM (rwx) : ORIGIN = 0x20000000, LENGTH = 64K }
    ENTRY(reset)
    SECTIONS {
      .vectors : { LONG(0x20010000) LONG(reset + 1) KEEP(*(.vectors)) } > FLASH
      .text : { *(.text*) *(.rodata*) } > FLASH
      .bss : { *(.bss*) *(COMMON) } > RAM
    }
    """
    startup = r"""
    __attribute__((naked, noreturn)) void reset(void) {
        __asm volatile("bl main\n bkpt #0\n b .\n");
    }
    """
    src = r"""
    #include <stdint.h>
    static uint32_t counter;
    uint32_t main(void) { for (int i = 0; i < 10; i++) counter += i; return counter; }
    """
    elf = build(tmp_path, src, board.model.core, startup=startup, linker_script=linker)
    from elftools.elf.elffile import ELFFile

    nvmc(board, CONFIG, WEN)
    with open(elf, "rb") as f:
        for seg in ELFFile(f).iter_segments():
            if seg["p_type"] == "PT_LOAD" and seg["p_filesz"] and seg["p_paddr"] < 0x100000:
                data = seg.data() + b"\xff" * (-seg["p_filesz"] % 4)
                for i in range(0, len(data), 4):
                    board.bus.write(seg["p_paddr"] + i, 4,
                                    int.from_bytes(data[i:i + 4], "little"))
                    wait_ready(board)
    nvmc(board, CONFIG, REN)
    link = InProcessLink(board)
    link.reset(halt=False)
    link.wait_halt(1.0)
    assert board.core.halt_reason == "bkpt" and link.read_register("r0") == 45


def test_ctrl_ap_eraseall_erases_flash_and_uicr(board):
    """The debugger's recovery path (CTRL-AP ERASEALL, what `nrfjprog --recover` uses)."""
    from qspi_gdb.sim.wire import DebugWire

    nvmc(board, CONFIG, WEN)
    board.bus.write(0x10000, 4, 0)
    wait_ready(board)
    board.bus.write(UICR[board.chip] + 0x84, 4, 0)
    wait_ready(board)
    ctrl_ap = DebugWire(board).dp.aps[1 if board.chip == "nrf52840" else 2]
    ctrl_ap.write(0x004, 1)  # ERASEALL
    deadline = time.monotonic() + 5.0
    while ctrl_ap.read(0x008) and time.monotonic() < deadline:  # ERASEALLSTATUS: busy
        time.sleep(0.01)  # tERASEALL (173 ms) runs at wall speed (qspi_gdb.sim.ctrlap)
    assert ctrl_ap.read(0x008) == 0  # ready
    assert board.bus.read(0x10000, 4) == 0xFFFFFFFF
    assert board.bus.read(UICR[board.chip] + 0x84, 4) == 0xFFFFFFFF
