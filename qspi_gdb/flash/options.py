"""Typed options of the flash jobs: what a user asks for, as data. The command line builds them
once from argparse (`qspi_gdb.cli.options`); scripts and integrations build them directly."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class TargetSpec:
    """Which board and flash to work on, before the chip is detected."""

    board: str | None = None  # preset name; None: the config file names it
    config_file: str | os.PathLike | None = None  # nrfutil JSON, nrfjprog ini or TOML
    jedec_id: str | None = None  # expected JEDEC ID (a mismatch is an error)
    loader: str | os.PathLike | None = None  # a loader ELF built elsewhere (default: packaged)
    reset: bool = False  # reset the target when done (the application runs)
    # command-line overrides of the config file: FlashConfig field names -> values as typed,
    # read by `inputs.config_values.cli_layer` (e.g. {"size": "32M", "readoc": "READ4O"})
    settings: Mapping[str, Any] = field(default_factory=dict)
    allow_unknown_keys: bool = False  # config keys this version does not know: warn, not refuse


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
    # True: erase the whole chip first (bytes outside the image are lost); None: the plan chooses
    # a chip erase when it rewrites every sector anyway and it is faster (nothing lost); False:
    # never a chip erase
    chip_erase: bool | None = None
    dry_run: bool = False  # plan only: connect to nothing, write nothing
    # the dry run's time estimate and the link cost the chip-erase choice weighs: an
    # inputs.probes profile name, or the OpenOCD interface name / "gdb-server" the connection
    # uses (None: the board's usual probe)
    probe: str | None = None
    compress: bool = True  # send program data as LZ4 blocks the loader decodes (when smaller)
    # who the target is, for the kept-bytes journal (`qspi_gdb.connect.target_identity`: the
    # virtual flash file, the probe's serial or interface, the GDB server); None: the board
    target_id: str | None = None
    discard_journal: bool = False  # delete a journal an interrupted flash left, unapplied


def chip_erase_choice(chip_erase: bool, no_chip_erase: bool) -> bool | None:
    """FlashOptions.chip_erase from the pair of flags `--chip-erase` / `--no-chip-erase`."""
    return True if chip_erase else False if no_chip_erase else None
