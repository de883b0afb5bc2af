"""`recover`: erase and unlock a chip whose access-port protection (APPROTECT) is on, through its
CTRL-AP(s) (ERASEALL), as Nordic's tools do.

ERASEALL erases the internal flash, the UICR and the RAM and opens the access port until the
next reset; the external QSPI flash is not touched (research and sources:
`qspi_gdb.inputs.debug_ports`). On the nRF5340 both cores are erased, the network core first.
Nothing happens without the caller's consent. The erase runs below the core (a one-shot
OpenOCD; see `qspi_gdb.transport.dap`), so it works on a chip the debugger cannot examine.
"""

from __future__ import annotations

from qspi_gdb.errors import TargetError, UsageError
from qspi_gdb.flash.chip_state import RunDap, open_ports, protection_reads
from qspi_gdb.flash.options import TargetSpec
from qspi_gdb.flash.result import Result
from qspi_gdb.inputs import boards
from qspi_gdb.inputs.debug_ports import CHIPS, ERASEALL_TIMEOUT_S

WHAT_IS_ERASED = "internal flash, UICR and RAM"
NOT_ERASED = "the external QSPI flash is not erased"
CHIP_NAMES = {"nrf52840": "nRF52840", "nrf5340": "nRF5340"}


def recover(target: TargetSpec, consent: bool, run_dap: RunDap, result: Result) -> list[str]:
    """ERASEALL through every CTRL-AP of the board's chip; returns the report lines. Refused
    (UsageError, nothing done) without consent; TargetError when an erase does not finish in
    time or the application core's access port is still closed afterwards."""
    board = boards.find_board(target.board or "")
    if board is None:
        raise UsageError("recover needs --board (the chip decides which access ports to use)")
    chip = CHIP_NAMES[board.chip]
    debug = CHIPS[board.chip]
    cores = " and ".join(c.core for c in debug.cores)
    if not consent:
        raise UsageError(f"recover erases the {chip}'s {WHAT_IS_ERASED} ({cores} "
                         f"core{'s' if len(debug.cores) > 1 else ''}; {NOT_ERASED}); pass "
                         "--yes-erase-internal-flash to do it")
    reads = protection_reads(board.chip)
    ops = [*reads, *(("eraseall", c.ctrl_ap, ERASEALL_TIMEOUT_S) for c in debug.cores), *reads]
    deadline = 30.0 + ERASEALL_TIMEOUT_S * len(debug.cores)  # OpenOCD's start and examine too
    answers = run_dap(board, ops, deadline)
    before = open_ports(board.chip, answers[:len(reads)])
    erases = answers[len(reads):len(reads) + len(debug.cores)]
    after = open_ports(board.chip, answers[len(reads) + len(debug.cores):])
    report = []
    lines = []
    for core, erase in zip(debug.cores, erases):
        entry = {"core": core.core, "ctrl_ap": core.ctrl_ap, "erase": erase["status"],
                 "seconds": erase["seconds"], "was_open": before.get(core.core),
                 "open_now": after.get(core.core)}
        report.append(entry)
        lines.append(_line(entry))
    result.recover = {"cores": report}
    failed = [e for e in report if e["erase"] != "ok"]
    if failed:
        first = failed[0]
        why = {"timeout": f"did not finish within {ERASEALL_TIMEOUT_S:g} s",
               "not-a-ctrl-ap": "is not a CTRL-AP (wrong chip or board?)",
               "no answer": "gave no answer"}[first["erase"]]
        raise TargetError(f"recover: ERASEALL through CTRL-AP {first['ctrl_ap']} of the "
                          f"{first['core']} core {why}; the internal flash may be partly erased")
    if after.get("application") is False:
        raise TargetError(f"recover: ERASEALL finished but the {chip}'s application core access "
                          "port is still closed; power-cycle the board and run recover again")
    result.ok = True
    result.summary = (f"Recovered the {chip}: erased its {WHAT_IS_ERASED} ({cores} "
                      f"core{'s' if len(debug.cores) > 1 else ''}; {NOT_ERASED}); the access "
                      "port stays open until the next reset or power cycle")
    return lines


def _line(entry: dict) -> str:
    was = {True: "was open", False: "was protected", None: "state before unknown"}
    now = {True: "access port open now", False: "access port still closed",
           None: "access port closed while the core is held off"}
    if entry["core"] == "network" and entry["open_now"] is False:
        now[False] = ("access port closed while the network core is held in Force-OFF (the "
                      "reset after ERASEALL holds it; the application firmware releases it)")
    return (f"{entry['core']} core (CTRL-AP {entry['ctrl_ap']}): ERASEALL {entry['erase']}"
            f"{' in %.2f s' % entry['seconds'] if entry['seconds'] is not None else ''}; "
            f"{was[entry['was_open']]}; {now[entry['open_now']]}")
