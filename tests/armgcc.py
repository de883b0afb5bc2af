"""Build tiny bare-metal test programs for the virtual board's cores with arm-none-eabi-gcc.

Each program runs from RAM at 0x20000000: `_start` sets SP to the top of a 64 KiB window,
calls `main` and executes `bkpt #0` with main's return value in r0.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

GCC = "arm-none-eabi-gcc"

CPU_FLAGS = {
    "cortex-m4f": ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft"],
    "cortex-m33": ["-mcpu=cortex-m33", "-mthumb", "-mfloat-abi=soft"],
}

STARTUP = r"""
__attribute__((naked, noreturn, section(".entry"))) void _start(void) {
    __asm volatile("ldr r0, =_stack_top\n mov sp, r0\n bl main\n bkpt #0\n b .\n");
}
"""

LINKER_SCRIPT = """
MEMORY { RAM (rwx) : ORIGIN = 0x20000000, LENGTH = 64K }
ENTRY(_start)
SECTIONS {
  .text : { KEEP(*(.entry)) *(.text*) *(.rodata*) } > RAM
  .data : { *(.data*) } > RAM
  .bss : { *(.bss*) *(COMMON) } > RAM
  _stack_top = ORIGIN(RAM) + LENGTH(RAM);
}
"""


def need_gcc() -> None:
    if shutil.which(GCC) is None:
        pytest.skip(f"{GCC} is not installed")


def build(tmp_path: Path, source: str, core: str = "cortex-m4f", name: str = "prog", *,
          startup: str = STARTUP, linker_script: str = LINKER_SCRIPT) -> Path:
    """Compile `source` (C, defines main) with the startup code; returns the ELF path."""
    need_gcc()
    c_file = tmp_path / f"{name}.c"
    c_file.write_text(startup + source)
    ld_file = tmp_path / f"{name}.ld"
    ld_file.write_text(linker_script)
    elf = tmp_path / f"{name}.elf"
    result = subprocess.run(
        [GCC, *CPU_FLAGS[core], "-O2", "-nostdlib", "-ffreestanding", "-T", str(ld_file),
         str(c_file), "-o", str(elf)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    return elf


def run_on_board(board, tmp_path: Path, source: str, timeout_s: float = 1.0) -> int:
    """Build `source` for the board's core, load it into RAM through an in-process link, run it
    to its final `bkpt` and return main's result (r0)."""
    from qspi_gdb.sim.board import InProcessLink

    elf = build(tmp_path, source, board.model.core)
    link = InProcessLink(board)
    link.halt()
    link.load_elf(elf)
    link.resume()
    link.wait_halt(timeout_s)
    assert board.core.halt_reason == "bkpt", board.core.fault
    return link.read_register("r0")
