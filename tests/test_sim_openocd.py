"""The virtual board against the real Debian OpenOCD 0.12 and gdb-multiarch, both chips.

One stack per chip (module scope): `python -m qspi_gdb sim` on a UNIX socket with a flash image
file, OpenOCD with interface/sim.cfg + target/<chip>.cfg, and one gdb-multiarch batch run per
test. Every process runs in its own process group and is ended in the fixture's teardown,
which then asserts that none is left.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from sim_stack import Stack, alive, start_stack

from qspi_gdb.sim.board import BOARDS
from qspi_gdb.sim.parts import get_part

pytestmark = pytest.mark.integration

PROGRAMS = Path(__file__).parent / "sim_programs"
TOOLS = ("openocd", "gdb-multiarch", "arm-none-eabi-gcc")
CHIPS = {
    "sim-nrf52840dk": ("nrf52840", "cortex-m4", "Cortex-M4 r0p1 processor detected", ""),
    "sim-nrf5340dk": ("nrf5340", "cortex-m33", "Cortex-M33 r0p4 processor detected", "-DNRF5340"),
}
QSPI_FLASH_OFFSET = 0x10000
RAM_TEST_ADDR = 0x20004000  # above OpenOCD's work area, below the test programs

missing = [tool for tool in TOOLS if shutil.which(tool) is None]
if missing:
    pytest.skip(f"needs {', '.join(missing)}", allow_module_level=True)


def _build(chip_flags: tuple[str, str], workdir: Path) -> dict[str, Path]:
    cpu, define = chip_flags
    elves = {}
    for name in ("crc", "qspi"):
        out = workdir / f"{name}.elf"
        argv = ["arm-none-eabi-gcc", f"-mcpu={cpu}", "-mthumb", "-Os", "-g", "-ffreestanding",
                "-nostdlib", "-Wall", "-Werror", "-T", str(PROGRAMS / "link.ld"),
                str(PROGRAMS / "start.S"), str(PROGRAMS / f"{name}.c"), "-o", str(out)]
        if define:
            argv.insert(1, define)
        subprocess.run(argv, check=True, capture_output=True, timeout=120)
        elves[name] = out
    return elves


@pytest.fixture(scope="module", params=sorted(CHIPS))
def stack(request, tmp_path_factory):
    board = request.param
    chip, cpu, _, define = CHIPS[board]
    workdir = tmp_path_factory.mktemp(board)
    stack = Stack(board=board, chip=chip, workdir=workdir)
    stack.elves = _build((cpu, define), workdir)
    try:
        start_stack(stack)
        yield stack
    finally:
        stack.stop()
        left = [pid for pid in stack.pids if alive(pid)]
        assert not left, f"processes left behind: {left}"


def _value(out: str, key: str) -> int:
    for line in out.splitlines():
        if line.startswith(f"{key}="):
            return int(line.split("=", 1)[1].split()[0], 16)
    raise AssertionError(f"{key}= not in gdb output:\n{out}")


def test_openocd_examines_the_core(stack):
    expected = CHIPS[stack.board][2]
    assert expected in stack.openocd_log
    assert "Error" not in stack.openocd_log.split(expected, 1)[0]


def test_gdb_halts_reads_registers_and_moves_64k_of_ram(stack):
    data = bytes((i * 31 + (i >> 8)) & 0xFF for i in range(64 * 1024))
    (stack.workdir / "in.bin").write_bytes(data)
    out = stack.gdb(
        "monitor halt",
        "info all-registers",
        f"restore in.bin binary {RAM_TEST_ADDR:#x}",
        f"dump binary memory out.bin {RAM_TEST_ADDR:#x} {RAM_TEST_ADDR + len(data):#x}",
        "set $pc = 0x20008000",
        "set $sp = 0x20010000",
        "maintenance flush register-cache",
        'printf "PC=%08x\\n", $pc',
        'printf "SP=%08x\\n", $sp',
    )
    names = {line.split()[0].lower() for line in out.splitlines() if line.strip()}
    wanted = {"r0", "r12", "sp", "lr", "pc", "xpsr", "msp", "psp", "primask", "control",
              "s0", "d15", "fpscr"}
    if stack.chip == "nrf5340":
        wanted |= {"msp_s", "msp_ns", "psp_s", "psp_ns", "msplim_s", "control_ns"}
    assert wanted <= names, f"registers missing: {wanted - names}\n{out}"
    assert (stack.workdir / "out.bin").read_bytes() == data
    assert _value(out, "PC") == 0x20008000
    assert _value(out, "SP") == 0x20010000


def test_bus_errors_reach_gdb_as_errors_not_zeros(stack):
    out = stack.gdb(
        "monitor halt",
        "x/x 0x60000000",  # nothing there: STICKYERR -> data abort -> GDB error
    )
    assert "Cannot access memory at address 0x60000000" in out, out
    out = stack.gdb("monitor halt", f"x/x {RAM_TEST_ADDR:#x}")  # the DAP recovered
    assert "Cannot access memory" not in out and f"{RAM_TEST_ADDR:#x}" in out, out


def test_load_runs_to_bkpt_and_returns_crc32(stack):
    expected = zlib.crc32(bytes((i * 7 + 3) & 0xFF for i in range(4096)))
    out = stack.gdb(
        "monitor reset halt",  # a known xPSR (T=1); the last test left the core running
        "maintenance flush register-cache",  # GDB skips writing a PC it believes unchanged
        f"load {stack.elves['crc']}",
        "continue",
        'printf "R0=%08x\\n", $r0',
        'printf "HALT=%04x\\n", *(unsigned short *)$pc',
    )
    assert "SIGTRAP" in out, out
    assert _value(out, "R0") == expected
    assert _value(out, "HALT") == 0xBE00  # stopped on the program's bkpt #0


def test_breakpoints_and_single_step(stack):
    # Software breakpoint (OpenOCD writes a bkpt into RAM) on both chips; a hardware (FPB)
    # breakpoint in RAM only on the M33: FPB v1 of the M4 cannot match above 0x1FFFFFFE.
    kind = "hbreak" if stack.chip == "nrf5340" else "break"
    out = stack.gdb(
        "monitor reset halt",
        "maintenance flush register-cache",
        f"file {stack.elves['crc']}",
        "load",
        f"{kind} main",
        "continue",
        'printf "AT=%08x\\n", $pc',
        'printf "MAIN=%08x\\n", &main',
        "stepi",
        'printf "STEPPED=%08x\\n", $pc',
        "delete",
        "continue",
        'printf "R0=%08x\\n", $r0',
    )
    assert "Breakpoint 1, " in out, out
    at, main = _value(out, "AT"), _value(out, "MAIN")
    assert main <= at < main + 16
    assert at < _value(out, "STEPPED") <= at + 4
    assert _value(out, "R0") == zlib.crc32(bytes((i * 7 + 3) & 0xFF for i in range(4096)))


def test_monitor_reset_halt(stack):
    out = stack.gdb(
        "monitor halt",
        "set $r0 = 0x12345678",
        "monitor reset halt",
        "maintenance flush register-cache",
        'printf "PC=%08x\\n", $pc',
        'printf "XPSR=%08x\\n", $xPSR',
        'printf "R0=%08x\\n", $r0',
    )
    assert "halted due to debug-request" in out or "halted due to" in stack.openocd_log
    # The internal flash is blank: the reset vector is erased, as on a new chip.
    assert _value(out, "PC") == 0xFFFFFFFE
    assert _value(out, "XPSR") & (1 << 24)
    assert _value(out, "R0") != 0x12345678


def test_c_program_drives_the_qspi_peripheral(stack):
    part = get_part(BOARDS[stack.board].part)
    page = b"".join(struct.pack("<I", (0x01020304 * (i + 1) ^ 0xA5A5A5A5) & 0xFFFFFFFF)
                    for i in range(64))
    xip = BOARDS[stack.board].xip_base + QSPI_FLASH_OFFSET
    out = stack.gdb(
        "monitor reset halt",
        "maintenance flush register-cache",
        f"file {stack.elves['qspi']}",
        "load",
        "continue",
        'printf "R0=%08x\\n", $r0',
        'printf "JEDEC=%06x\\n", results.jedec',
        'printf "MISMATCHES=%x\\n", results.mismatches',
        'printf "POLLS=%x\\n", results.wip_polls',
        "dump binary value page_in.bin page_in",
        f"dump binary memory xip.bin {xip:#x} {xip + 256:#x}",
        timeout_s=180,
    )
    assert _value(out, "R0") == 0, out
    assert _value(out, "JEDEC") == int.from_bytes(part.jedec_id, "little")
    assert _value(out, "MISMATCHES") == 0
    assert _value(out, "POLLS") >= 2  # the erase and the program kept the chip busy
    assert (stack.workdir / "page_in.bin").read_bytes() == page
    assert (stack.workdir / "xip.bin").read_bytes() == page  # XIP reads the same chip

    # The flash model itself holds the page: stop the board (it flushes its image).
    stack.stop()
    assert stack.sim_exit == 0
    image = stack.image.read_bytes()
    assert len(image) == part.size
    assert image[QSPI_FLASH_OFFSET:QSPI_FLASH_OFFSET + 256] == page
    assert image[QSPI_FLASH_OFFSET + 256:QSPI_FLASH_OFFSET + 4096] == b"\xff" * (4096 - 256)
    assert '"dap_transactions"' in stack.sim_stdout
