"""Work below the core, through the debug port's access ports only: read AP registers and run
ERASEALL through a Nordic CTRL-AP. It needs no GDB and works on a chip whose access-port
protection keeps OpenOCD from examining the core, so it runs as a one-shot OpenOCD (`init`, our
Tcl procedures from openocd_cfg/target/nordic_ctrlap.tcl, `shutdown`): OpenOCD 0.12 refuses a
GDB connection to a target it could not examine, so `monitor` commands cannot reach a
protected chip.

Operations are plain data so the flash layer can describe them without knowing OpenOCD:
("read", ap, reg) -> {"op": "read", "ap", "reg", "value": int | None}
("eraseall", ap, timeout_s) -> {"op": "eraseall", "ap", "status": "ok" | "timeout" |
"not-a-ctrl-ap" | "no answer", "seconds"}
"""

from __future__ import annotations

import re
from typing import Sequence

from qspi_gdb.errors import TargetError

_APREG = re.compile(r"^qspi-gdb-apreg: ap=(\d+) reg=0x([0-9a-f]+) (?:value=0x([0-9a-f]+)|error)",
                    re.M)
_ERASEALL = re.compile(r"^qspi-gdb-eraseall: ap=(\d+) (ok|timeout|not-a-ctrl-ap)(?: ms=(\d+))?",
                       re.M)
_APPROTECT = re.compile(r"^qspi-gdb-approtect: core=(\w+) ap=(\d+)", re.M)
# Debian's target/nrf52.cfg says this when its examine-fail check finds the CTRL-AP locked.
_UPSTREAM_NRF52_LOCK = "nRF52 device has AP lock engaged"


def commands(ops: Sequence[tuple]) -> list[str]:
    """The Tcl commands for the operations (after `init`)."""
    out = []
    reads: list[str] = []
    for op in ops:
        if op[0] == "read":
            reads += [str(int(op[1])), f"0x{int(op[2]):x}"]
            continue
        if reads:
            out.append(f"qspi_gdb_apregs {{{' '.join(reads)}}}")
            reads = []
        if op[0] == "eraseall":
            out.append(f"qspi_gdb_ctrl_ap_eraseall {int(op[1])} {int(op[2] * 1000)}")
        else:
            raise ValueError(f"unknown DAP operation {op[0]!r}")
    if reads:
        out.append(f"qspi_gdb_apregs {{{' '.join(reads)}}}")
    return out


def results(ops: Sequence[tuple], log_text: str) -> list[dict]:
    """Each operation's answer, read from OpenOCD's log in order."""
    reads = iter(_APREG.findall(log_text))
    erases = iter(_ERASEALL.findall(log_text))
    out = []
    for op in ops:
        if op[0] == "read":
            found = next(reads, None)
            value = int(found[2], 16) if found and found[2] else None
            if found and (int(found[0]), int(found[1], 16)) != (op[1], op[2]):
                raise TargetError("OpenOCD's AP register answers are out of order")
            out.append({"op": "read", "ap": op[1], "reg": op[2], "value": value})
        else:
            found = next(erases, None)
            status = found[1] if found else "no answer"
            seconds = int(found[2]) / 1000 if found and found[2] else None
            out.append({"op": "eraseall", "ap": op[1], "status": status, "seconds": seconds})
    return out


def protected_cores(log_text: str) -> list[tuple[str, int | None]]:
    """The cores our target configs (or Debian's nrf52.cfg) found protected while examining."""
    found: list[tuple[str, int | None]] = [(core, int(ap))
                                           for core, ap in _APPROTECT.findall(log_text)]
    if not found and _UPSTREAM_NRF52_LOCK in log_text:
        found.append(("application", None))
    return found
