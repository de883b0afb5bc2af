"""Where packaged files live: OpenOCD configs and prebuilt loader ELFs.

An installed wheel carries them inside the package; an editable install or a plain checkout
uses the repository's top-level openocd_cfg/ instead.
"""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def openocd_cfg_dir() -> Path:
    installed = _PKG / "openocd_cfg"
    if installed.is_dir():
        return installed
    return _PKG.parent / "openocd_cfg"


def loaders_dir() -> Path:
    return _PKG / "loaders"


def loader_elf(chip: str) -> Path:
    """The prebuilt loader for 'nrf52840' or 'nrf5340'."""
    return loaders_dir() / f"qspi_loader_{chip}.elf"
