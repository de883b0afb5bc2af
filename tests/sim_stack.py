"""Test helper: one virtual board process, the real OpenOCD on it and gdb-multiarch batch runs.

`start_stack` starts `python -m qspi_gdb sim` on a UNIX socket (with the Stack's flash image and
any extra board options, e.g. --console), then OpenOCD with interface/sim.cfg + target/<chip>.cfg
on a free 127.0.0.1 GDB port. Every process runs in its own process group; `Stack.stop` ends
them (OpenOCD first, then the board with SIGTERM so it flushes its files).
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from qspi_gdb.transport.openocd import openocd_cfg_dir


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie of ours counts as gone once reaped
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True
    return True


def end_group(proc: subprocess.Popen, sig: int = signal.SIGTERM, grace_s: float = 10.0) -> int:
    """Signal proc's process group, wait, SIGKILL what is left; returns proc's exit status."""
    for signum, wait_s in ((sig, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:
            pass
        try:
            return proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
    return proc.wait(timeout=5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Stack:
    board: str
    chip: str
    workdir: Path
    gdb_port: int = 0
    sim: subprocess.Popen | None = None
    openocd: subprocess.Popen | None = None
    pids: list[int] = field(default_factory=list)
    sim_args: tuple[str, ...] = ()  # more `qspi-gdb sim` options (--console FILE)
    elves: dict[str, Path] = field(default_factory=dict)
    sim_exit: int | None = None
    sim_stdout: str = ""

    @property
    def image(self) -> Path:
        return self.workdir / "flash.img"

    @property
    def openocd_log(self) -> str:
        return (self.workdir / "openocd.log").read_text(errors="replace")

    def gdb(self, *commands: str, timeout_s: float = 90.0) -> str:
        """Run gdb-multiarch in batch mode: connect, run commands, detach; return stdout."""
        script = self.workdir / "gdb.cmds"
        lines = ["set pagination off", "set confirm off", "set width 0",
                 f"target extended-remote 127.0.0.1:{self.gdb_port}", *commands, "detach"]
        script.write_text("\n".join(lines) + "\n")
        proc = subprocess.Popen(
            ["gdb-multiarch", "-nx", "-batch", "-x", str(script)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=self.workdir, text=True,
        )
        self.pids.append(proc.pid)
        try:
            out, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            end_group(proc, signal.SIGKILL)
            pytest.fail(f"gdb timed out; openocd log tail:\n{self.openocd_log[-3000:]}")
        finally:
            if proc.poll() is None:
                end_group(proc)
        return out

    def stop(self) -> None:
        """End OpenOCD, then the board (SIGTERM: it flushes its image and exits 0)."""
        if self.openocd is not None:
            end_group(self.openocd)
            self.openocd = None
        if self.sim is not None:
            self.sim_exit = end_group(self.sim, signal.SIGTERM)
            self.sim_stdout += self.sim.stdout.read() if self.sim.stdout else ""
            self.sim.stdout and self.sim.stdout.close()
            self.sim = None


def start_stack(stack: Stack) -> None:
    sock_path = stack.workdir / "board.sock"
    stack.sim = subprocess.Popen(
        [sys.executable, "-m", "qspi_gdb", "sim", "--board", stack.board, "--socket",
         str(sock_path), "--sim-image", str(stack.image), "--json", *stack.sim_args],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=open(stack.workdir / "sim.log", "wb"), start_new_session=True, text=True,
    )
    stack.pids.append(stack.sim.pid)
    ready, _, _ = select.select([stack.sim.stdout], [], [], 60)
    assert ready, "the virtual board printed no endpoint"
    first = stack.sim.stdout.readline()
    assert f'"remote_bitbang": "unix:{sock_path}"' in first, first

    stack.gdb_port = free_port()
    argv = ["openocd", "-s", str(openocd_cfg_dir()),
            "-c", "bindto 127.0.0.1", "-c", f"gdb_port {stack.gdb_port}",
            "-c", "telnet_port disabled", "-c", "tcl_port disabled",
            "-c", "gdb_report_data_abort enable", "-c", "gdb_memory_map disable",
            "-c", f"set SIM_SOCKET {{{sock_path}}}",
            "-f", "interface/sim.cfg", "-f", f"target/{stack.chip}.cfg"]
    stack.openocd = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=open(stack.workdir / "openocd.log", "wb"),
        stderr=subprocess.STDOUT, start_new_session=True, cwd=stack.workdir,
    )
    stack.pids.append(stack.openocd.pid)
    deadline = time.monotonic() + 60
    while True:
        assert stack.openocd.poll() is None, f"openocd stopped:\n{stack.openocd_log}"
        try:
            socket.create_connection(("127.0.0.1", stack.gdb_port), timeout=0.5).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"openocd GDB port not open:\n{stack.openocd_log}"
            time.sleep(0.1)
