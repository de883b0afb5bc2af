"""The RAM loader's host side: the mailbox ABI mirror (`mailbox`, checked against
`loader_fw/include/qspi_mailbox.h`), the client that loads the loader and streams commands and
data through the mailbox (`client`, `pipeline`), the translation of a FlashConfig into the
loader's configuration block (`config`), and the packaged loader ELFs (`elf/`).

May import: `qspi_gdb.errors`, `qspi_gdb.log`, `qspi_gdb.inputs` (for FlashConfig) and itself.
It talks to a target only through the `target.TargetLink` protocol: it never imports the
transport, starts no process and knows nothing of GDB.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from qspi_gdb.errors import UsageError

ELF_DIR = Path(__file__).resolve().parent / "elf"


def loader_elf(chip: str) -> Path:
    """The prebuilt loader for 'nrf52840' or 'nrf5340' (written by `make -C loader_fw`)."""
    return ELF_DIR / f"qspi_loader_{chip}.elf"


def check_loader_elf(path: str | PathLike) -> None:
    """A loader built elsewhere (`--loader`) must be an ELF file for an Arm core: refused
    before anything starts (GDB would reject it only after the target is up)."""
    if not Path(path).is_file():
        raise UsageError(f"--loader {path}: no such loader ELF")
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"\x7fELF":
                raise UsageError(f"--loader {path}: not an ELF file")
            f.seek(0)
            machine = ELFFile(f).header["e_machine"]
    except ELFError as exc:
        raise UsageError(f"--loader {path}: unreadable ELF file ({exc})") from None
    except OSError as exc:
        raise UsageError(f"--loader {path}: cannot read it: {exc.strerror or exc}") from None
    if machine != "EM_ARM":
        raise UsageError(f"--loader {path}: an ELF for {machine}, not for an Arm Cortex-M core")
