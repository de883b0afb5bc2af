"""The commands for the bench drawer: `probes` (what is attached), `recover` (erase and unlock a
protected chip) and `selftest` (prove the tool on a board without losing its data). Thin
adapters: the work is in `qspi_gdb.transport.probes`, `qspi_gdb.flash.recover` and
`qspi_gdb.flash.selftest`.
"""

from __future__ import annotations

import argparse
import json
import subprocess

from qspi_gdb import __version__
from qspi_gdb.cli.options import connection, target_spec
from qspi_gdb.cli.output import write_stdout
from qspi_gdb.cli.run import run
from qspi_gdb.connect import dap_runner, opener
from qspi_gdb.flash import selftest
from qspi_gdb.flash.recover import recover
from qspi_gdb.transport import probes
from qspi_gdb.transport.gdbmi import GDB_PROGRAM
from qspi_gdb.transport.openocd import OPENOCD_PROGRAM

PROBES_SCHEMA = "qspi-gdb/probes/1"


def register(subparsers, add_target_options) -> None:
    listing = subparsers.add_parser(
        "probes", help="list the debug probes attached (USB) and virtual boards running",
        description="List the debug probes on USB (SEGGER J-Link, CMSIS-DAP, ST-LINK) and the "
        "virtual boards running as virtual probes (`qspi-gdb sim`), with the serial number "
        "to pass as -i/--dev-id.")
    listing.add_argument("--json", action="store_true", help="print one JSON object")
    listing.set_defaults(func=run_probes)

    rec = subparsers.add_parser(
        "recover", help="erase and unlock a protected chip (APPROTECT) through its CTRL-AP",
        description="Erase the chip through its CTRL-AP(s) (ERASEALL; on the nRF5340 the "
        "network core first, then the application core), which removes the access-port "
        "protection until the next reset. This ERASES THE INTERNAL FLASH, UICR AND RAM; the "
        "external QSPI flash is not erased. Needs an OpenOCD qspi-gdb starts (not "
        "--gdb-server) and a probe with DAP access (not --interface stlink: use stlink-dap).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    rec.add_argument("--yes-erase-internal-flash", dest="consent", action="store_true",
                     help="consent to erasing the internal flash, UICR and RAM")
    add_target_options(rec)
    rec.set_defaults(func=run_recover)

    test = subparsers.add_parser(
        "selftest", help="check the tool on a board: ID, SFDP, write/verify/restore a scratch "
        "region, speed",
        description="Read the JEDEC ID and SFDP and check them against the part table; save a "
        "scratch region (default: the last 64 KiB; on parts over 16 MiB also 16 KiB around "
        "16 MiB), write patterns that cross page, sector and 16 MiB boundaries in each address "
        "mode the chip supports, verify them, measure the speed, then write the saved bytes "
        "back and verify them. Prints a report to paste into an issue.")
    test.add_argument("--scratch", metavar="ADDR",
                      help="start of the 64 KiB scratch region (XIP address or flash offset, a "
                      "multiple of 64 KiB; default: the last 64 KiB of the chip)")
    test.add_argument("--yes-use-scratch", dest="consent", action="store_true",
                      help="use the scratch region even when it holds data (it is saved, to a "
                      "file too, and written back)")
    test.add_argument("--backup", metavar="FILE",
                      help="where the saved scratch bytes go when the region holds data "
                      "(default: qspi-gdb-scratch-<board>-<offset>.bin; removed once restored)")
    add_target_options(test)
    test.set_defaults(func=run_selftest)


def run_probes(args: argparse.Namespace) -> int:
    found, usb_listed = probes.attached()
    if args.json:
        write_stdout(json.dumps({"schema": PROBES_SCHEMA, "usb_listed": usb_listed,
                                 "probes": [p.to_json() for p in found]}, sort_keys=True) + "\n")
        return 0
    rows = [("KIND", "SERIAL", "USB ID", "WHERE", "PRODUCT")]
    for p in found:
        where = p.location or (f"PID {p.pid}" if p.pid else "-")
        rows.append((p.kind, p.serial or "-", p.usb_id or "-", where, p.product))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[4]
             for row in rows]
    if not found:
        lines = ["no debug probes found"]
    if not usb_listed:
        lines.append("(USB devices cannot be listed here: no /sys/bus/usb/devices)")
    write_stdout("\n".join(lines) + "\n")
    return 0


def run_recover(args: argparse.Namespace) -> int:
    def body(progress, result):
        return "\n".join(recover(target_spec(args), args.consent,
                                 dap_runner(connection(args), result), result))

    return run(args, "recover", body)


def tool_versions() -> list[str]:
    """The first line of `openocd --version` and `gdb-multiarch --version`, for the report."""
    out = []
    for program in (OPENOCD_PROGRAM, GDB_PROGRAM):
        try:
            run_ = subprocess.run([program, "--version"], capture_output=True, text=True,
                                  timeout=10, stdin=subprocess.DEVNULL)
            text = (run_.stdout or run_.stderr).strip().splitlines()
            out.append(text[0] if text else f"{program}: no version")
        except (OSError, subprocess.TimeoutExpired) as exc:
            out.append(f"{program}: {exc}")
    return out


def run_selftest(args: argparse.Namespace) -> int:
    def body(progress, result):
        report = selftest.selftest(target_spec(args), selftest.SelftestOptions(
            scratch=args.scratch, use_scratch=args.consent, backup=args.backup),
            opener(connection(args), result), progress, result)
        return "\n".join([f"qspi-gdb selftest report (qspi-gdb {__version__}; "
                          f"{'; '.join(tool_versions())})", *report])

    return run(args, "selftest", body)
