"""The Python API: the commands of the command line as functions on a `Target`.

    from qspi_gdb import Target, flash, verify
    with Target(board="sim-nrf5340dk", sim_image="flash.img") as t:
        result = flash(t, "app.bin", addr=0x10000000)
        verify(t, "app.bin", addr=0x10000000)

A `Target` opened with `with` (or `open()`) starts what its board needs once (the virtual
board's process, OpenOCD, gdb-multiarch; or attaches to a GDB server someone runs) and every
call reuses that connection; a Target that is not open is opened for one call and closed again.
Each function returns the `Result` the `--json` object is made of and raises the typed errors of
`qspi_gdb.errors` (the Result so far is the error's `result` attribute). Progress events
(`qspi_gdb.flash.progress`) go to an optional `progress` callable.

Built on the jobs (`qspi_gdb.flash.jobs`) and the connection (`qspi_gdb.connect`); the
integrations (west, the Zephyr runner, labgrid, the GDB command) use only this module.
"""

from __future__ import annotations

import os
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Callable, Iterator

from qspi_gdb import log
from qspi_gdb.connect import Connection, opener, target_identity
from qspi_gdb.errors import QspiGdbError, UsageError
from qspi_gdb.flash import jobs
from qspi_gdb.flash.jobs import OpenTarget
from qspi_gdb.flash.options import FlashOptions, ImageSpec, TargetSpec
from qspi_gdb.flash.progress import PhaseFinished, ProgressEvent, ProgressSink
from qspi_gdb.flash.result import Result
from qspi_gdb.inputs.boards import Board, find_board
from qspi_gdb.loader import loader_elf
from qspi_gdb.loader.target import TargetLink

__all__ = ["Target", "Result", "flash", "verify", "read", "erase", "info"]


class Target:
    """One board and how to reach it; the same options as the command line's.

    board: a preset (`nrf5340dk`, `sim-nrf5340-32mb`, ...), or None when `config` names it.
    config: nrfutil ext-mem JSON, nrfjprog ini or TOML. jedec_id: the flash you expect.
    loader: a loader ELF built elsewhere. reset: reset the target after each command.
    settings: overrides of the config file, FlashConfig names as the command line's
    `--flash-size` & co. ({"size": "32M", "readoc": "READ4O"}); allow_unknown_keys: a config
    file's keys this version does not know are a warning, not an error.
    gdb_server / interface / openocd_config / serial / usb_location / sim_image: how to
    connect (README); wait_lock_s: wait for a probe or flash file another qspi-gdb uses.
    open_target: a different way to open the link (an `OpenTarget`, e.g. an existing GDB
    session's); by default OpenOCD or the virtual board is started.
    """

    def __init__(self, board: str | None = None, *, config: str | os.PathLike | None = None,
                 jedec_id: str | None = None, loader: str | os.PathLike | None = None,
                 reset: bool = False, gdb_server: str | None = None,
                 interface: str | None = None,
                 openocd_config: list[str | os.PathLike] | None = None,
                 serial: str | None = None, usb_location: str | None = None,
                 wait_lock_s: float | None = None, sim_image: str | os.PathLike | None = None,
                 open_target: OpenTarget | None = None, settings: dict | None = None,
                 allow_unknown_keys: bool = False):
        log.configure_unless_configured()
        self.spec = TargetSpec(board=board, config_file=config, jedec_id=jedec_id,
                               loader=loader, reset=reset, settings=dict(settings or {}),
                               allow_unknown_keys=allow_unknown_keys)
        self.connection = Connection(gdb_server=gdb_server, interface=interface,
                                     openocd_config=openocd_config, sim_image=sim_image,
                                     serial=serial, usb_location=usb_location,
                                     wait_lock_s=wait_lock_s)
        self._open_target = open_target or opener(self.connection)
        self._stack: ExitStack | None = None
        self._link: TargetLink | None = None
        self.board: Board | None = None  # the board row, once open

    def resolve(self) -> tuple[Board, Path]:
        """The board row and the loader ELF the commands will use (UsageError when the board
        is unknown): what opening needs, without connecting."""
        cfg = jobs.preset_config(self.spec)
        board = find_board(cfg.board) if cfg.board else None
        if board is None:
            raise UsageError("the configuration names no known board (give board=...)")
        return board, Path(self.spec.loader) if self.spec.loader else loader_elf(board.chip)

    @property
    def is_open(self) -> bool:
        return self._link is not None

    def open(self) -> Target:
        """Connect once; every command until close() reuses the connection."""
        if self._link is not None:
            return self
        board, loader = self.resolve()
        stack = ExitStack()
        try:
            self._link = stack.enter_context(self._open_target(board, loader))
        except BaseException:
            stack.close()
            raise
        self._stack, self.board = stack, board
        return self

    def close(self) -> None:
        """Stop what open() started (also after errors); a second close() does nothing."""
        stack, self._stack, self._link = self._stack, None, None
        if stack is not None:
            stack.close()

    def __enter__(self) -> Target:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    def link_opener(self) -> OpenTarget:
        """What the jobs call to reach the target: the open link (kept open), or a one-call
        connection when the Target is not open."""
        if self._link is None:
            return self._open_target
        return self._borrow

    @contextmanager
    def _borrow(self, board: Board, _loader: Path) -> Iterator[TargetLink]:
        # The loader ELF is downloaded by the job itself; only the board must be the same.
        if self.board is not None and board.name != self.board.name:
            raise UsageError(f"this Target is open on {self.board.name}, not {board.name}")
        assert self._link is not None
        yield self._link


class _PhaseClock:
    """Forwards progress events and keeps each phase's duration for the Result."""

    def __init__(self, forward: ProgressSink | None):
        self.forward = forward
        self.seconds: dict[str, float] = {}

    def __call__(self, event: ProgressEvent) -> None:
        if isinstance(event, PhaseFinished):
            self.seconds[event.phase] = round(self.seconds.get(event.phase, 0.0)
                                              + event.seconds, 3)
        if self.forward is not None:
            self.forward(event)


def _run(command: str, target: Target, progress: ProgressSink | None,
         body: Callable[[OpenTarget, ProgressSink, Result], object]) -> Result:
    result = Result(command=command, board=target.spec.board)
    clock = _PhaseClock(progress)
    started = time.monotonic()
    try:
        body(target.link_opener(), clock, result)
    except QspiGdbError as exc:
        result.ok = False
        result.error = {"message": str(exc), "exit_code": exc.exit_code}
        result.seconds = round(time.monotonic() - started, 3)
        result.phase_seconds = clock.seconds
        exc.result = result  # the caller sees what was done before the failure
        raise
    result.seconds = round(time.monotonic() - started, 3)
    result.phase_seconds = clock.seconds
    return result


Images = str | os.PathLike | list[str | os.PathLike] | tuple[str | os.PathLike, ...]


def _image(image: Images, addr: str | int | None, file_type: str | None,
           raw_offsets: bool, only_qspi: bool) -> tuple[ImageSpec, ...]:
    """One image, or several (a list: merged into one plan, as `qspi-gdb flash a.bin b.hex`)."""
    paths = list(image) if isinstance(image, (list, tuple)) else [image]
    if addr is not None and len(paths) > 1:
        raise UsageError("addr applies to one image; with several, give each .bin as FILE@ADDR")
    return tuple(ImageSpec(path=os.fspath(path), addr=addr, raw_offsets=raw_offsets,
                           only_qspi=only_qspi, kind=file_type) for path in paths)


def flash(target: Target, image: Images, *, addr: str | int | None = None,
          file_type: str | None = None, verify: bool = True, force: bool = False,
          chip_erase: bool | None = None, compress: bool = True, dry_run: bool = False,
          raw_offsets: bool = False, only_qspi: bool = False,
          progress: ProgressSink | None = None) -> Result:
    """Write an image (.bin with `addr` or IMAGE@ADDR, .hex, .elf), or a list of them in one
    plan, and verify it on the target. chip_erase: True erases the chip first (bytes outside
    the image are lost), False never does, None lets the plan choose one when it is faster and
    loses nothing. compress: send blocks that compress as LZ4 (decoded and CRC-checked on the
    target). dry_run: plan only (result.plan, with the estimate for the target's probe),
    nothing is connected or written."""
    spec = _image(image, addr, file_type, raw_offsets, only_qspi)
    connection = target.connection
    options = FlashOptions(verify=verify, force=force, chip_erase=chip_erase, compress=compress,
                           dry_run=dry_run,
                           probe="gdb-server" if connection.gdb_server else connection.interface,
                           target_id=target_identity(connection))
    return _run("flash", target, progress, lambda open_target, sink, result: jobs.flash(
        target.spec, spec, options, open_target, sink, result))


def verify(target: Target, image: Images, *, addr: str | int | None = None,
           file_type: str | None = None, raw_offsets: bool = False, only_qspi: bool = False,
           progress: ProgressSink | None = None) -> Result:
    """Compare the flash with an image (CRC32 on the target); VerifyError when they differ."""
    spec = _image(image, addr, file_type, raw_offsets, only_qspi)
    return _run("verify", target, progress, lambda open_target, sink, result: jobs.verify(
        target.spec, spec, open_target, sink, result))


def read(target: Target, address: str | int, length: str | int, output: str | os.PathLike,
         *, progress: ProgressSink | None = None) -> Result:
    """Read `length` bytes at `address` (XIP address or flash offset) into the file `output`."""
    return _run("read", target, progress, lambda open_target, sink, result: jobs.read(
        target.spec, address, length, output, open_target, sink, result))


def erase(target: Target, address: str | int | None = None, length: str | int | None = None,
          *, dry_run: bool = False, progress: ProgressSink | None = None) -> Result:
    """Erase whole sectors of address..address+length, or the whole chip without both; the
    range is then checked on the target to read 0xFF."""
    return _run("erase", target, progress, lambda open_target, sink, result: jobs.erase(
        target.spec, address, length, open_target, sink, result, dry_run=dry_run))


def info(target: Target, *, progress: ProgressSink | None = None) -> Result:
    """Detect the flash: JEDEC ID, part, size, address mode and SFDP summary (result.info)."""
    return _run("info", target, progress, lambda open_target, sink, result: jobs.info(
        target.spec, open_target, sink, result))

