"""A virtual board as a process: `python -m qspi_gdb.sim` serving OpenOCD's remote_bitbang on a
UNIX socket in a private temporary directory (0700, the socket 0600), in its own process group,
dying with us, always ended by `close()` / the context manager. The transport starts it and
reaches it like any other probe; it knows nothing else about it (it never imports
`qspi_gdb.sim`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterable

from qspi_gdb import log
from qspi_gdb.errors import EXIT_USAGE, TargetError, UsageError
from qspi_gdb.transport.openocd import tcl_word
from qspi_gdb.transport.procgroup import exit_text, kill_group, spawn
from qspi_gdb.transport.workdirs import WorkDir

_log = log.get_logger(__name__)


def check_sim_image(path: str | os.PathLike) -> None:
    """--sim-image must be a file the virtual board can create: refused here as bad input,
    not found out when the board process dies trying to write it."""
    where = Path(path)
    if where.is_dir():
        raise UsageError(f"--sim-image {path}: is a directory (name a file)")
    if not where.absolute().parent.is_dir():
        raise UsageError(f"--sim-image {path}: no such directory {where.absolute().parent}")


WORKDIR_PREFIX = "qspi-sim-"

# How the virtual board's command line reports an error (`qspi-gdb sim: error: ...`).
_CLI_ERROR_LINE = re.compile(r"^qspi-gdb(?: \w+)?: error: (.+)$")


class VirtualBoardProcess:
    """A virtual board (`python -m qspi_gdb.sim`) serving remote_bitbang on a UNIX socket."""

    def __init__(
        self,
        board: str,
        *,
        image: str | os.PathLike | None = None,
        extra_args: Iterable[str] = (),
        ready_timeout_s: float = 30.0,
        workdir: str | os.PathLike | None = None,
    ):
        self.board = board
        self.image = image
        self.extra_args = list(extra_args)
        self.ready_timeout_s = ready_timeout_s
        self._workdir = Path(workdir) if workdir else None
        self._own_tmp: WorkDir | None = None
        self._proc: subprocess.Popen | None = None
        self.socket_path: Path | None = None
        self._log_path: Path | None = None
        self._out_path: Path | None = None
        self.stats: dict | None = None  # the board's statistics, after close()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def exit_status(self) -> int | None:
        """The board's exit status once it has ended, None while it runs (or before start)."""
        return self._proc.poll() if self._proc else None

    def argv(self) -> list[str]:
        assert self.socket_path is not None
        argv = [sys.executable, "-m", "qspi_gdb.sim", "--board", self.board,
                "--socket", str(self.socket_path), "--json", "--no-register"]
        if self.image is not None:
            argv += ["--sim-image", str(self.image)]
        return argv + self.extra_args

    def start(self) -> VirtualBoardProcess:
        if self._workdir is None:
            # Short path: UNIX socket paths are limited to ~107 bytes.
            self._own_tmp = WorkDir(WORKDIR_PREFIX)
            self._workdir = self._own_tmp.path
        self.socket_path = self._workdir / "board.sock"
        self._out_path = self._workdir / "sim.out"
        self._log_path = self._workdir / "sim.log"
        argv = self.argv()
        _log.debug("starting virtual board", argv=argv)
        with open(self._out_path, "wb") as out, open(self._log_path, "wb") as err:
            self._proc = spawn(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        try:
            self._wait_ready()
            os.chmod(self.socket_path, 0o600)  # only we (and our OpenOCD) reach the board
            _log.debug("virtual board ready", pid=self._proc.pid, socket=str(self.socket_path))
        except BaseException:  # anything, even a failing log call: never leave it running
            self.close()
            raise
        return self

    def _stdout_objects(self) -> list[dict]:
        """The JSON objects the board printed: its endpoint, and at exit its statistics."""
        if not self._out_path or not self._out_path.exists():
            return []
        objects = []
        for line in self._out_path.read_text(errors="replace").splitlines():
            try:
                objects.append(json.loads(line))
            except ValueError:
                continue
        return objects

    def _wait_ready(self) -> None:
        """Ready = the board printed its endpoint (it listens before printing)."""
        assert self._proc is not None and self.socket_path is not None
        deadline = time.monotonic() + self.ready_timeout_s
        while not self._stdout_objects():
            if self._proc.poll() is not None:
                if self._proc.returncode == EXIT_USAGE:  # it refused its input (e.g. --sim-image)
                    raise UsageError(self.error_message() or self.output_tail())
                raise TargetError(f"virtual board {self.board} stopped "
                                  f"({exit_text(self._proc.returncode)}): {self.output_tail()}")
            if time.monotonic() > deadline:
                raise TargetError(f"virtual board {self.board} did not open its socket within "
                                  f"{self.ready_timeout_s:.0f} s: {self.output_tail()}")
            time.sleep(0.05)

    def error_message(self) -> str:
        """The board's last "qspi-gdb: error: ..." line without that prefix ("" if none)."""
        if not self._log_path or not self._log_path.exists():
            return ""
        messages = [match.group(1).strip() for line in
                    self._log_path.read_text(errors="replace").splitlines()
                    if (match := _CLI_ERROR_LINE.match(line.strip()))]
        return messages[-1] if messages else ""

    def output_tail(self, max_lines: int = 4) -> str:
        if not self._log_path or not self._log_path.exists():
            return "no output"
        lines = [line.strip() for line in self._log_path.read_text(errors="replace").splitlines()
                 if line.strip()]
        return " | ".join(lines[-max_lines:]) or "no output"

    def openocd_script(self) -> list[tuple[str, str]]:
        """The OpenOCD interface steps that reach this board (before a target config); the
        socket's path (under TMPDIR, which anyone may set) is quoted for Tcl."""
        socket = tcl_word(str(self.socket_path), "virtual board socket")
        return [("c", f"set SIM_SOCKET {socket}"), ("f", "interface/sim.cfg")]

    def close(self) -> None:
        if self._proc is not None:
            # SIGTERM first: the board flushes its flash file on the way out.
            kill_group(self._proc, grace_s=10.0)
            self._proc = None
            objects = self._stdout_objects()
            if len(objects) > 1:
                self.stats = objects[-1]
        if self._own_tmp is not None:
            self._own_tmp.cleanup()
            self._own_tmp = None

    def __enter__(self) -> VirtualBoardProcess:
        return self.start() if self._proc is None else self

    def __exit__(self, *exc) -> None:
        self.close()
