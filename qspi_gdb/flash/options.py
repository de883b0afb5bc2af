"""Typed options of the flash jobs: what a user asks for, as data. The command line builds them
once from argparse (`qspi_gdb.cli.options`); scripts and integrations build them directly."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class TargetSpec:
    """Which board and flash to work on, before the chip is detected."""

    board: str | None = None  # preset name; None: the config file names it
    config_file: str | os.PathLike | None = None  # nrfutil JSON, nrfjprog ini or TOML
    jedec_id: str | None = None  # expected JEDEC ID (a mismatch is an error)
    loader: str | os.PathLike | None = None  # a loader ELF built elsewhere (default: packaged)
    reset: bool = False  # reset the target when done (the application runs)


@dataclass(frozen=True)
class ImageSpec:
    """An image file: .bin with its address (IMAGE@ADDR or `addr`), .hex or .elf."""

    path: str
    addr: str | int | None = None
    raw_offsets: bool = False  # .hex/.elf addresses are flash offsets, not XIP addresses
    only_qspi: bool = False  # skip segments outside the XIP window instead of refusing
    kind: str | None = None  # "bin" | "hex" | "elf"; None: from the file name's suffix


@dataclass(frozen=True)
class FlashOptions:
    verify: bool = True  # CRC32 of every written range on the target
    force: bool = False  # rewrite sectors that already hold the image
    chip_erase: bool = False  # erase the whole chip first (bytes outside the image are lost)
    dry_run: bool = False  # plan only: connect to nothing, write nothing
