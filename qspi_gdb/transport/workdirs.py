"""Private temporary directories for the processes we start (a virtual board's socket and log,
OpenOCD's log): mode 0700, each holding an `owner` file that names the qspi-gdb process that
made it. A directory whose owner is gone (killed with SIGKILL, so no `finally` ran) is removed
the next time a directory with the same prefix is made.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from qspi_gdb import log

_log = log.get_logger(__name__)

OWNER_FILE = "owner"


class WorkDir:
    """A 0700 temporary directory owned by this process; `cleanup()` removes it."""

    def __init__(self, prefix: str):
        remove_stale(prefix)
        self.path = Path(tempfile.mkdtemp(prefix=prefix))  # mkdtemp: 0700, ours alone
        (self.path / OWNER_FILE).write_text(_identity(os.getpid()))

    @property
    def name(self) -> str:
        return str(self.path)

    def cleanup(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def remove_stale(prefix: str, parent: str | os.PathLike | None = None) -> list[Path]:
    """Remove our directories with this prefix whose owner process is gone; returns them.
    Directories without an owner file (made by someone else, or being made) are left alone."""
    removed = []
    base = Path(parent or tempfile.gettempdir())
    try:
        candidates = [p for p in base.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return removed
    for path in candidates:
        try:
            if path.is_symlink() or not path.is_dir() or path.stat().st_uid != os.getuid():
                continue
            owner = (path / OWNER_FILE).read_text()
        except OSError:
            continue
        if _owner_alive(owner):
            continue
        shutil.rmtree(path, ignore_errors=True)
        _log.debug("removed a stale work directory", path=str(path), owner=owner.strip())
        removed.append(path)
    return removed


def _identity(pid: int) -> str:
    """pid and start time: a pid the system reuses for another process is not our owner."""
    return f"{pid} {_stat(pid)[1]}\n"


def _stat(pid: int) -> tuple[str, str]:
    """(state, start time) from /proc/PID/stat (fields 3 and 22); ("", "?") if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0], fields[19]
    except (OSError, IndexError):
        return "", "?"


def _owner_alive(owner: str) -> bool:
    fields = owner.split()
    if not fields or not fields[0].isdigit():
        return True  # unreadable: not ours to judge
    pid = int(fields[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    state, started_now = _stat(pid)
    if state == "Z":  # killed, not yet reaped by its parent
        return False
    started = fields[1] if len(fields) > 1 else "?"
    return started == "?" or started == started_now
