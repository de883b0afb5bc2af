"""The RAM loader's host side: the mailbox ABI mirror (`mailbox`, checked against
`loader_fw/include/qspi_mailbox.h`), the client that loads the loader and streams commands and
data through the mailbox (`client`, `pipeline`), the translation of a FlashConfig into the
loader's configuration block (`config`), and the packaged loader ELFs (`elf/`).

May import: `qspi_gdb.errors`, `qspi_gdb.log`, `qspi_gdb.inputs` (for FlashConfig) and itself.
It talks to a target only through the `target.TargetLink` protocol: it never imports the
transport, starts no process and knows nothing of GDB.
"""

from __future__ import annotations

from pathlib import Path

ELF_DIR = Path(__file__).resolve().parent / "elf"


def loader_elf(chip: str) -> Path:
    """The prebuilt loader for 'nrf52840' or 'nrf5340' (written by `make -C loader_fw`)."""
    return ELF_DIR / f"qspi_loader_{chip}.elf"
