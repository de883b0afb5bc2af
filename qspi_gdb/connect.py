"""How a board is reached: joins a row of the board table with the connection options (a GDB
server someone runs, an OpenOCD interface or config files, a virtual board's flash file) into
the transport's options, and returns the `OpenTarget` the flash jobs call.

The one module that knows both the inputs (boards) and the transport; the command line and
scripts use it, the flash jobs only see the function it returns.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from qspi_gdb.errors import UsageError
from qspi_gdb.flash.chip_state import RunDap
from qspi_gdb.flash.jobs import OpenTarget
from qspi_gdb.flash.result import Result
from qspi_gdb.inputs.boards import Board
from qspi_gdb.loader.target import TargetLink
from qspi_gdb.transport.session import TargetOptions, open_link, run_dap

# Deadlines for waits on a running loader, from the target-time timeout the loader client
# computes: a virtual board's wall time can exceed its modelled time many times over (a CPU
# modelled instruction by instruction), a real board's cannot.
REAL_BOARD_WAIT = {"wait_scale": 2.0, "wait_floor_s": 5.0}
VIRTUAL_BOARD_WAIT = {"wait_scale": 50.0, "wait_floor_s": 60.0}


@dataclass(frozen=True)
class Connection:
    """How to reach the target (command line: the "connection" options)."""

    gdb_server: str | None = None  # HOST:PORT of a GDB server someone else runs
    interface: str | None = None  # OpenOCD probe name for a real board (default jlink)
    openocd_config: Sequence[str | os.PathLike] | None = None  # instead of interface + target
    sim_image: str | os.PathLike | None = None  # virtual boards: the flash contents file
    # virtual boards of qspi-gdb's own: start with these cores' access ports protected
    # ("all", "application", "network"), as a chip with APPROTECT on
    sim_locked: Sequence[str] = ()
    # virtual boards of qspi-gdb's own: more `qspi-gdb sim` arguments (--fault ...: the
    # reliability campaign and its tests)
    sim_args: Sequence[str] = ()
    serial: str | None = None  # the probe's serial number (picks the probe, names its lock)
    usb_location: str | None = None  # the probe's USB path, e.g. 1-1.2 (`adapter usb location`)
    speed_khz: int | None = None  # SWD clock, OpenOCD `adapter speed` (None: 4000 kHz)
    wait_lock_s: float | None = None  # wait this long for a board or probe in use


def target_options(board: Board, connection: Connection) -> TargetOptions:
    return TargetOptions(
        board=board.name, chip=board.chip, virtual=board.virtual,
        gdb_server=connection.gdb_server, interface=connection.interface,
        openocd_config=connection.openocd_config, sim_image=connection.sim_image,
        sim_locked=tuple(connection.sim_locked), sim_args=tuple(connection.sim_args),
        serial=connection.serial,
        usb_location=connection.usb_location, adapter_khz=connection.speed_khz,
        lock_wait_s=connection.wait_lock_s,
        **(VIRTUAL_BOARD_WAIT if board.virtual else REAL_BOARD_WAIT),
    )


def target_identity(connection: Connection) -> str:
    """Who the target is, for the kept-bytes journal (`qspi_gdb.flash.journal`): the virtual
    board's flash file, the probe by serial (else its interface), the OpenOCD configs or the
    GDB server. The journal also checks the board and the chip's JEDEC ID."""
    if connection.gdb_server:
        return f"GDB server {connection.gdb_server}"
    if connection.openocd_config:
        return "OpenOCD config " + " ".join(os.path.abspath(c) for c in connection.openocd_config)
    if connection.sim_image:
        return f"virtual flash file {os.path.realpath(connection.sim_image)}"
    if connection.serial:
        return f"probe serial {connection.serial}"
    where = f" at USB {connection.usb_location}" if connection.usb_location else ""
    return f"probe {connection.interface or 'jlink'}{where}"


def _reporter(result: Result | None):
    """Copies how the target was reached (probe, serial, speed) into the result."""

    def report(route) -> None:
        if result is not None and route is not None:
            result.probe = route.describe_probe()
            result.speed_khz = route.speed_khz

    return report


def opener(connection: Connection, result: Result | None = None) -> OpenTarget:
    """The OpenTarget for these connection options: starts what the board needs (its virtual
    board process, OpenOCD, gdb-multiarch) and ends it all with the context. The probe and
    speed used go into `result`."""

    def open_target(board: Board | None, loader: Path) -> AbstractContextManager[TargetLink]:
        if board is None:
            raise UsageError("the configuration names no known board")
        return open_link(target_options(board, connection), elf=loader,
                         on_route=_reporter(result))

    return open_target


def dap_runner(connection: Connection, result: Result | None = None) -> RunDap:
    """The RunDap for these connection options: DAP operations in one OpenOCD run that needs no
    core (after starting a virtual board of our own when the board is one)."""

    def run(board: Board, ops, timeout_s: float) -> list[dict]:
        answers, route = run_dap(target_options(board, connection), ops, timeout_s)
        _reporter(result)(route)
        return answers

    return run
