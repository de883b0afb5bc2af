"""Child processes (OpenOCD, gdb-multiarch, a virtual board): started in their own session,
detached from our terminal's Ctrl-C, tied to our life (they die with us, even when we are killed
with SIGKILL), and always ended as a whole group.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
from typing import Callable, Sequence

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def spawn(argv: Sequence[str], *, new_session: bool = True, **popen_kwargs) -> subprocess.Popen:
    """Popen (in a new session unless new_session=False) whose process dies with ours.

    Linux's parent-death signal (prctl PR_SET_PDEATHSIG), armed in the child before it execs
    the program, sends it SIGKILL when the thread that forked it ends: call this from the
    thread that lives as long as the child is needed (the command line's main thread). Foreign
    programs (OpenOCD, gdb) need no help of their own for it.
    """
    return subprocess.Popen(list(argv), start_new_session=new_session,
                            preexec_fn=_parent_death_hook(), **popen_kwargs)


def _parent_death_hook() -> Callable[[], None] | None:
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: the group is still ended by kill_group
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                      ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()

    def in_child() -> None:  # after fork, before exec: no allocation-heavy work here
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # we died before the signal was armed
            os.kill(os.getpid(), signal.SIGKILL)

    return in_child


def exit_text(status: int | None) -> str:
    """A Popen returncode in words: 'exit status 1', 'killed by SIGKILL'."""
    if status is None:
        return "still running"
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"


def kill_group(proc: subprocess.Popen, grace_s: float = 1.0) -> None:
    """SIGTERM the process group led by proc, SIGKILL what is left, and reap the leader."""
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        pgid = None
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            if pgid is not None:
                os.killpg(pgid, sig)
            elif proc.poll() is None:
                proc.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
        if pgid is None or not _group_alive(pgid):
            return


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True
