"""What the loader client needs from a target: memory access and run control of a core.

Two implementations: the GDB/MI link (real boards and virtual boards through OpenOCD, or any GDB
server) and the in-process virtual board (loader tests without a debug wire). The loader client
and the programmer only ever see this protocol.
"""

from __future__ import annotations

from os import PathLike
from typing import Protocol


class TargetLink(Protocol):
    def load_elf(self, path: str | PathLike) -> None:
        """Download the ELF's loadable segments into target RAM (core halted)."""

    def read_memory(self, addr: int, length: int) -> bytes: ...

    def write_memory(self, addr: int, data: bytes) -> None: ...

    def read_register(self, name: str) -> int:
        """name: 'r0'..'r12', 'sp', 'lr', 'pc', 'xpsr', 'msp', 'psp'."""

    def write_register(self, name: str, value: int) -> None: ...

    def resume(self) -> None:
        """Continue the halted core from its current PC."""

    def run_for(self, seconds: float) -> bool:
        """Resume the halted core, let it run `seconds` of the target's time (wall time on a
        real board) and halt it by request: a halt the debugger acts on at once. Returns True
        when the core halted by itself before that (e.g. a `bkpt`: the debugger noticed it at
        its own pace); the core is halted either way."""

    def wait_halt(self, timeout_s: float) -> None:
        """Wait until the core halts (e.g. on the loader's `bkpt`).

        timeout_s is in seconds of the target's time base (wall time on real boards). On
        expiry the core is halted and TargetError is raised.
        """

    def halt(self) -> None: ...

    def reset(self, halt: bool = True) -> str | None:
        """System reset (SYSRESETREQ); halt at the reset vector when halt is True. Returns how
        it was done, for the report (e.g. "sysresetreq"), or None."""
