"""Running virtual boards announce themselves as virtual probes: one JSON file per board in the
per-user runtime directory (`qspi_gdb.rundir`), `virtual-probes/<serial>.json`, written when the
board listens and removed when it ends. `qspi-gdb probes` lists them beside the USB probes, and
`--dev-id SERIAL` reaches one, so picking one of several probes is tested without hardware.
An entry whose process is gone is stale: readers ignore it, and a new board may take its serial.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from qspi_gdb.errors import UsageError
from qspi_gdb.rundir import private_dir, process_alive, runtime_dir

SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
SUBDIR = "virtual-probes"


def registry_dir() -> Path:
    return private_dir(runtime_dir() / SUBDIR)


def default_serial() -> str:
    return f"SIM{os.getpid()}"


class Registration:
    """This board's entry; `close()` removes it (only if it is still ours)."""

    def __init__(self, serial: str, entry: dict) -> None:
        if not SERIAL.fullmatch(serial):
            raise UsageError(f"--serial {serial!r}: use letters, digits, '.', '_' and '-' "
                             "(at most 64)")
        self.path = registry_dir() / f"{serial}.json"
        try:
            other = json.loads(self.path.read_text())
        except (OSError, ValueError):
            other = None
        if other and other.get("pid") != os.getpid() and process_alive(int(other.get("pid", 0))):
            raise UsageError(f"--serial {serial}: a virtual board with this serial is running "
                             f"(PID {other.get('pid')})")
        self.entry = {"serial": serial, "pid": os.getpid(), "started": time.time(), **entry}
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self.entry, f)
        os.replace(tmp, self.path)

    def close(self) -> None:
        try:
            if json.loads(self.path.read_text()).get("pid") == os.getpid():
                self.path.unlink()
        except (OSError, ValueError):
            pass
