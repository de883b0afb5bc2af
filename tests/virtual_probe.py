"""A virtual board started as a server (`python -m qspi_gdb.sim`), as a user starts one with
`qspi-gdb sim`: it announces itself as a virtual probe, keeps its state between commands, and
reports its statistics (protection, network core) when it ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


class VirtualProbe:
    def __init__(self, board: str, serial: str, *args: str, image: Path | None = None) -> None:
        argv = [sys.executable, "-m", "qspi_gdb.sim", "--board", board, "--serial", serial,
                "--json", *args]
        if image is not None:
            argv += ["--sim-image", str(image)]
        self.serial = serial
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, start_new_session=True)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"virtual board {serial} did not start (exit {self.proc.wait()})")
        self.about = json.loads(line)
        self.stats: dict | None = None

    def stop(self) -> dict:
        """SIGTERM (the board flushes its flash file); its statistics."""
        if self.stats is None:
            self.proc.send_signal(signal.SIGTERM)
            out, _ = self.proc.communicate(timeout=30)
            lines = [line for line in out.splitlines() if line.strip()]
            self.stats = json.loads(lines[-1])["stats"] if lines else {}
        return self.stats

    def __enter__(self) -> VirtualProbe:
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            try:
                self.stop()
            except (subprocess.TimeoutExpired, ValueError):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def wait_gone(path: Path, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return not path.exists()
