"""One qspi-gdb at a time per target: an exclusive lock per virtual board flash file and per
probe, taken before any process is started.

Each lock is an flock(2) on a small file in a private per-user directory
($XDG_RUNTIME_DIR/qspi-gdb, else /tmp/qspi-gdb-locks-UID; mode 0700). The kernel drops the lock
when its holder ends, however it ends (SIGKILL too), so a lock is never stale; the file keeps
the holder's PID for the message a second command prints.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from pathlib import Path

from qspi_gdb import log
from qspi_gdb.errors import TargetError, UsageError
from qspi_gdb.rundir import RunDirError, runtime_dir

_log = log.get_logger(__name__)

_POLL_S = 0.2


def lock_dir() -> Path:
    """The private directory for lock files (`qspi_gdb.rundir`)."""
    try:
        return runtime_dir()
    except RunDirError as exc:
        raise TargetError(f"lock directory: {exc}") from exc


class TargetLock:
    """An exclusive lock on one target. `what` names it in messages ("the virtual board's
    flash file f.img", "the jlink probe"); `key` identifies it (hashed into a file name)."""

    def __init__(self, key: str, what: str):
        self.key = key
        self.what = what
        self._fd: int | None = None

    @property
    def path(self) -> Path:
        digest = hashlib.sha256(self.key.encode()).hexdigest()[:24]
        return lock_dir() / f"{digest}.lock"

    def acquire(self, wait_s: float | None = None) -> TargetLock:
        """Take the lock: at once, or (wait_s > 0) waiting up to wait_s seconds with a message.
        A target in use is a UsageError naming the holder's PID; nothing was started yet."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + (wait_s or 0)
        told = False
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    pass
                holder = _holder(fd)
                if not wait_s:
                    raise UsageError(f"{self.what} is in use by another qspi-gdb (PID {holder}); "
                                     "wait for it to finish or pass --wait-lock SECONDS")
                if time.monotonic() >= deadline:
                    raise UsageError(f"{self.what} is still in use by another qspi-gdb (PID "
                                     f"{holder}) after --wait-lock {wait_s:g}")
                if not told:
                    _log.warning(f"waiting up to {wait_s:g} s for {self.what}, in use by PID "
                                 f"{holder}")
                    told = True
                time.sleep(_POLL_S)
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        _log.debug("target locked", what=self.what, path=str(self.path))
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None

    def __enter__(self) -> TargetLock:
        return self.acquire() if self._fd is None else self

    def __exit__(self, *exc) -> None:
        self.release()


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text if text.isdigit() else "unknown"


def board_file_lock(path: str | os.PathLike) -> TargetLock:
    """The lock of a virtual board's flash file (by its resolved path)."""
    resolved = Path(path).resolve()
    return TargetLock(f"sim-image:{resolved}", f"the virtual board's flash file {path}")


def probe_lock(interface: str, serial: str | None = None) -> TargetLock:
    """The lock of a probe: by its serial number when given, else by its interface name (one
    probe of a kind at a time)."""
    if serial:
        return TargetLock(f"probe-serial:{serial}", f"the probe with serial {serial}")
    return TargetLock(f"probe:{interface}", f"the {interface} probe")


def config_lock(configs: list[str]) -> TargetLock:
    """The lock for a set of --openocd-config files: the probe they name is unknown to us, so
    the same files count as the same probe."""
    return TargetLock("openocd-config:" + "\0".join(configs),
                      f"the probe of --openocd-config {' '.join(configs)}")
