"""The `qspi` command inside a GDB session: gdb-multiarch attached (like a user) to a virtual
board through the real OpenOCD, an application of the user's stopped at a breakpoint; the
README's commands flash, verify, read and detect; the flash file holds the image, and the
application's registers and RAM are as they were, so it continues."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from readme_examples import readme_example

from qspi_gdb import log
from qspi_gdb.transport.openocd import OpenOcd
from qspi_gdb.transport.virtual_board import VirtualBoardProcess

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not all(shutil.which(t) for t in ("openocd", "gdb-multiarch",
                                                          "arm-none-eabi-gcc")),
                       reason="needs openocd, gdb-multiarch and arm-none-eabi-gcc"),
]

BIN = Path(sys.executable).parent
APP_AT = 0x2003C000  # the user's program: above the loader's RAM (0x20004000..0x2003B7FF)
LOADER_RAM = (0x20004000, 0x2003B800)
XIP_OFFSET = 0x1E98000  # 0x13E98000 in the nRF52840's XIP window

# Before the README's commands: the user's application stopped in its loop, with registers and
# RAM worth keeping. After them: everything as it was, and the application goes on.
PROLOGUE = """\
import gdb
inferior = gdb.selected_inferior()
gdb.execute("load")
gdb.execute("set var $sp = 0x20040000")
gdb.execute("set var $xPSR = 0x01000000")  # Thumb: the blank chip's reset left it clear
gdb.execute("set var $pc = spin")
gdb.execute("break count_here")
gdb.execute("continue")
gdb.execute("continue")
for i in (4, 5, 6, 7, 8, 9, 10, 11):
    gdb.execute(f"set var $r{i} = {0x1111 * i:#x}")
pattern = bytes(range(256)) * 16
for address in (0x20004000, 0x20020000, 0x2003B000):
    inferior.write_memory(address, pattern)
frame = gdb.newest_frame()
names = [r.name for r in frame.architecture().registers()
         if not r.name.startswith(("d", "s")) or r.name in ("sp",)]
before = {n: int(frame.read_register(n)) for n in names if n != "fpscr"}
counter_before = int(gdb.parse_and_eval("counter"))
"""
EPILOGUE = """\
frame = gdb.newest_frame()
after = {n: int(frame.read_register(n)) for n in before}
changed = {n: (hex(before[n]), hex(v)) for n, v in after.items() if v != before[n]}
print("CHANGED REGISTERS", changed)
for address in (0x20004000, 0x20020000, 0x2003B000):
    print("RAM KEPT", hex(address), inferior.read_memory(address, 4096).tobytes() == pattern)
gdb.execute("continue")
print("APP CONTINUED", int(gdb.parse_and_eval("counter")) == counter_before + 1,
      hex(int(gdb.parse_and_eval("$pc"))) == hex(before["pc"]))
"""


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    work = tmp_path_factory.mktemp("app")
    source = work / "app.c"
    source.write_text(textwrap.dedent("""
        volatile unsigned counter;
        void count_here(void) { counter++; }
        __attribute__((noreturn)) void spin(void) { for (;;) count_here(); }
    """))
    elf = work / "app.elf"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-O1", "-g",
                    "-nostdlib", "-fno-inline", f"-Wl,-Ttext={APP_AT:#x}", "-Wl,-e,spin",
                    "-o", str(elf), str(source)], check=True)
    return elf


def _gdb(tmp_path, address, app_elf, commands: str, *, source_line: list[str]):
    """gdb in batch mode: prologue, the commands (each its own -ex, so that one failing does
    not skip the rest, as at a prompt), epilogue; the two .py files share gdb's __main__."""
    (tmp_path / "prologue.py").write_text(PROLOGUE)
    (tmp_path / "epilogue.py").write_text(EPILOGUE)
    typed = [arg for line in commands.splitlines() if line.strip() for arg in ("-ex", line)]
    argv = ["gdb-multiarch", "-nx", "-batch", str(app_elf), *source_line,
            "-ex", f"target extended-remote {address}", "-x", "prologue.py",
            *typed, "-x", "epilogue.py"]
    return subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=280,
                          stdin=subprocess.DEVNULL)


def test_readme_gdb_session_flashes_and_gives_the_session_back(tmp_path, app):
    log.configure(0)
    image = os.urandom(12_000)
    (tmp_path / "zephyr.recovery.bin").write_bytes(image)
    setup = readme_example("In a GDB session", "sh").splitlines()[0]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(["bash", "-ec", setup], cwd=tmp_path, env=env, check=True)
    assert (tmp_path / "qspi.gdb").read_text().splitlines()[1].startswith("source ")
    commands = readme_example("In a GDB session", "gdb")
    flash_file = tmp_path / "flash.img"
    with VirtualBoardProcess("sim-nrf52840-32mb", image=flash_file) as sim, \
            OpenOcd([*sim.openocd_script(), ("f", "target/nrf52840.cfg")]) as openocd:
        run = _gdb(tmp_path, openocd.gdb_address, app, commands,
                   source_line=["-x", "qspi.gdb"])
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "verified 1 range(s) by CRC32 on the target" in output
    assert "zephyr.recovery.bin: verified 12,000 bytes" in output
    assert "read 64 bytes into head.bin" in output
    assert "MT25QU256A, JEDEC ID 20BB19, 32 MiB" in output
    assert "CHANGED REGISTERS {}" in output
    for address in ("0x20004000", "0x20020000", "0x2003b000"):
        assert f"RAM KEPT {address} True" in output
    assert "APP CONTINUED True True" in output, output
    assert flash_file.read_bytes()[XIP_OFFSET:XIP_OFFSET + len(image)] == image
    assert (tmp_path / "head.bin").read_bytes() == image[:64]


def test_board_from_the_chip_refusals_as_gdb_errors_and_the_session_left_alone(tmp_path, app):
    commands = textwrap.dedent("""\
        qspi info --no-restore-ram
        qspi flash missing.bin 0x12000000 --board sim-nrf52840dk
        qspi verify
        qspi read 0x12000000 16
        qspi flash -h
    """)
    with VirtualBoardProcess("sim-nrf52840dk") as sim, \
            OpenOcd([*sim.openocd_script(), ("f", "target/nrf52840.cfg")]) as openocd:
        run = _gdb(tmp_path, openocd.gdb_address, app, commands,
                   source_line=["-x", str(_gdbinit(tmp_path))])
    output = run.stdout + run.stderr
    assert "no --board: the core is an nrf52840, using the nrf52840dk preset" in output
    assert "MX25R6435F, JEDEC ID C22817, 8 MiB" in output
    assert "qspi flash: missing.bin: no such file" in output
    assert "qspi verify: no image: name one" in output
    assert "qspi read: the following arguments are required: --output/-o" in output
    assert "usage: qspi flash [-h]" in output
    assert "CHANGED REGISTERS {}" in output


def _gdbinit(tmp_path: Path) -> Path:
    path = tmp_path / "qspi-init.gdb"
    path.write_text(subprocess.run([BIN / "qspi-gdb", "gdb-script", "--gdbinit"],
                                   capture_output=True, text=True, check=True).stdout)
    return path
