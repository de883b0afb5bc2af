"""The per-user runtime directory qspi-gdb shares between its processes: the target locks
(`qspi_gdb.transport.locks`) and the registry of running virtual boards (written by
`qspi_gdb.sim`, read by `qspi-gdb probes`), and the per-user state directory (kept-bytes journals). A leaf: it imports nothing of the product, so the
virtual board may use it.

$XDG_RUNTIME_DIR/qspi-gdb, else /tmp/qspi-gdb-locks-UID; created mode 0700 and refused when it
is not a private directory of this user.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class RunDirError(OSError):
    """The runtime directory cannot be made or is not private."""


def runtime_dir() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime) and os.access(runtime, os.W_OK):
        path = Path(runtime) / "qspi-gdb"
    else:
        path = Path("/tmp") / f"qspi-gdb-locks-{os.getuid()}"
    return private_dir(path)


def state_dir() -> Path:
    """The per-user state directory (kept-bytes journals, `qspi_gdb.flash.journal`): it must
    survive a reboot, so $XDG_STATE_HOME/qspi-gdb, else ~/.local/state/qspi-gdb; mode 0700."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    try:
        Path(base).mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot make the directory {base}: {exc.strerror}") from exc
    return private_dir(Path(base) / "qspi-gdb")


def private_dir(path: Path) -> Path:
    """path as a directory only this user can use (created 0700 when missing)."""
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = path.lstat()
    except OSError as exc:
        raise RunDirError(f"cannot make the directory {path}: {exc.strerror}") from exc
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise RunDirError(f"{path} is not a private directory of this user")
    return path


def process_alive(pid: int) -> bool:
    """Whether a process (not necessarily our child) still runs: the owner of an entry here."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's: it exists
        return True
    return True
