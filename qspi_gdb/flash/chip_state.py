"""The chip around the flash, as far as the tool must know it: access-port protection and the
nRF5340 network core. Reads only: nothing here resets, halts, releases or erases a core
(`recover` erases, and only when asked: `qspi_gdb.flash.recover`).

Two ways in: DAP operations below the core (`RunDap`, a one-shot OpenOCD; works on a protected
chip) and, on a connected target, its memory plus the access ports through our OpenOCD
(`ApReader`: GdbLink reads them with `monitor`, another GDB server cannot).
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence, runtime_checkable

from qspi_gdb.errors import TargetError
from qspi_gdb.inputs import boards
from qspi_gdb.inputs.debug_ports import (
    AP_CSW,
    CHIPS,
    CSW_DEVICEEN,
    CTRL_AP_APPROTECTSTATUS,
    ChipDebug,
)

# (board, operations, deadline in seconds) -> one answer per operation; operations and answers
# as `qspi_gdb.transport.dap` describes them: ("read", ap, reg), ("eraseall", ap, timeout_s).
RunDap = Callable[[boards.Board, Sequence[tuple], float], list[dict]]


@runtime_checkable
class ApReader(Protocol):
    def read_ap(self, ap: int, reg: int) -> int:
        """An access-port register of the debug port (TargetError when it cannot be read)."""


def protection_reads(chip: str) -> list[tuple]:
    """DAP reads that tell, per core, whether its access port is open."""
    debug = CHIPS[chip]
    if debug.hides_protected_ap:  # nRF52840: the CTRL-AP's APPROTECTSTATUS
        return [("read", c.ctrl_ap, CTRL_AP_APPROTECTSTATUS) for c in debug.cores]
    return [("read", c.mem_ap, AP_CSW) for c in debug.cores]


def open_ports(chip: str, answers: Sequence[dict]) -> dict[str, bool | None]:
    """core -> access port open (True), closed (False) or unreadable (None), from the answers
    to `protection_reads`."""
    debug = CHIPS[chip]
    out: dict[str, bool | None] = {}
    for core, answer in zip(debug.cores, answers):
        value = answer.get("value")
        if value is None:
            out[core.core] = None
        elif debug.hides_protected_ap:
            out[core.core] = bool(value & 1)
        else:
            out[core.core] = bool(value & CSW_DEVICEEN)
    return out


def network_core(link, chip: str) -> dict | None:
    """The nRF5340 network core: running or held in Force-OFF (RESET.NETWORK.FORCEOFF, read
    through the application core's bus) and whether its access port is open (CSW.DeviceEn of
    AHB-AP 1, when the link can read access ports). None on chips without one."""
    debug: ChipDebug = CHIPS[chip]
    if debug.network_forceoff is None:
        return None
    forceoff = int.from_bytes(link.read_memory(debug.network_forceoff, 4), "little") & 1
    state: dict = {"running": not forceoff, "forceoff": forceoff, "access_port": None}
    if isinstance(link, ApReader):
        try:
            csw = link.read_ap(debug.core("network").mem_ap, AP_CSW)
        except TargetError as exc:
            state["access_port_note"] = str(exc)
        else:
            state["access_port"] = "open" if csw & CSW_DEVICEEN else "closed"
    return state


def describe_network_core(state: dict) -> str:
    if not state["running"]:
        return ("network core: held in Force-OFF (RESET.NETWORK.FORCEOFF=1), not running; "
                "qspi-gdb leaves it so")
    port = {"open": "its access port is open",
            "closed": "its access port is closed (APPROTECT)",
            None: "its access port was not read (needs an OpenOCD qspi-gdb starts)"}
    return (f"network core: running (RESET.NETWORK.FORCEOFF=0), {port[state['access_port']]}; "
            "qspi-gdb leaves it running")
