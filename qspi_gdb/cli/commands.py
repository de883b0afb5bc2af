"""The subcommands: their options (argparse) and what each runs.

Each handler turns its parsed options into typed ones once (`qspi_gdb.cli.options`), runs the
job (`qspi_gdb.flash.jobs`) inside the command harness (`qspi_gdb.cli.run`) and prints what the
job returns (the plan of a dry run, the lines of `info`). `sim` is the virtual board's own
program, started by `qspi_gdb.cli.main` as a child process.
"""

from __future__ import annotations

import argparse

from qspi_gdb.cli import gdb_script
from qspi_gdb.cli.options import connection, flash_options, image_spec, target_spec
from qspi_gdb.cli.report import write_layout
from qspi_gdb.cli.run import run
from qspi_gdb.connect import opener
from qspi_gdb.errors import UsageError
from qspi_gdb.flash import jobs
from qspi_gdb.flash.plan_text import render_plan


def _add_target_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("target")
    group.add_argument("--board", "-b", help="board preset: nrf52840dk, nrf5340dk, sim-nrf52840dk, "
                       "sim-nrf5340dk, sim-nrf5340-32mb, sim-nrf52840-32mb (required unless the "
                       "config file names it)")
    group.add_argument("--config", "-c", metavar="FILE",
                       help="flash configuration: nrfutil ext-mem JSON, nrfjprog QspiDefault.ini "
                       "or its TOML form")
    group.add_argument("--jedec-id", metavar="HEX",
                       help="expected JEDEC ID of the flash, e.g. C22817 (a mismatch is an error)")
    group.add_argument("--loader", metavar="ELF",
                       help="RAM loader ELF built elsewhere (default: the packaged one)")
    conn = parser.add_argument_group("connection (default: start OpenOCD, or the virtual board)")
    conn.add_argument("--gdb-server", metavar="HOST:PORT",
                      help="use a GDB server someone else runs (J-Link GDB server, pyOCD, "
                      "OpenOCD); only standard GDB remote operations are used")
    conn.add_argument("--interface", "-i", metavar="PROBE",
                      help="OpenOCD interface for a real board: jlink (default), cmsis-dap, "
                      "stlink, stlink-dap, or any other OpenOCD interface/NAME.cfg")
    conn.add_argument("--openocd-config", metavar="FILE", action="append",
                      help="OpenOCD config file(s) to use instead of --interface + the board's "
                      "target config")
    conn.add_argument("--serial", metavar="SN",
                      help="serial number of the probe to use (OpenOCD 'adapter serial'); "
                      "without it the first probe of the interface is used")
    conn.add_argument("--usb-location", metavar="PATH",
                      help="USB path of the probe to use, e.g. 1-1.2 (OpenOCD 'adapter usb "
                      "location', what labgrid's USB resources give)")
    conn.add_argument("--sim-image", metavar="PATH",
                      help="virtual boards: file holding the flash contents (kept between runs)")
    conn.add_argument("--wait-lock", metavar="SECONDS", type=_seconds,
                      help="when another qspi-gdb uses the same flash file or probe, wait up "
                      "to SECONDS for it (default: refuse at once)")
    parser.add_argument("--reset", action="store_true",
                        help="reset the target when done (lets the application run)")
    parser.add_argument("--json", action="store_true",
                        help="print one result object on stdout (schema in README)")
    parser.add_argument("--report", metavar="FILE",
                        help="write a JUnit XML report for CI (one test case per command; "
                        "added to FILE when it holds a qspi-gdb report already)")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    return value


def _add_image_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="IMAGE[@ADDR]",
                        help=".bin with its address (zephyr.bin@0x11E98000, or --addr), or "
                        ".hex / .elf (their addresses are XIP addresses)")
    parser.add_argument("--addr", "-a", metavar="ADDR",
                        help=".bin address: XIP address (e.g. 0x11E98000) or flash offset")
    parser.add_argument("--file-type", choices=("bin", "hex", "elf"),
                        help="the image's format when its name does not say (.bin/.hex/.elf)")
    parser.add_argument("--raw-offsets", action="store_true",
                        help=".hex/.elf addresses are flash offsets, not XIP addresses")
    parser.add_argument("--only-qspi", action="store_true",
                        help="skip segments outside the QSPI XIP window (e.g. internal flash) "
                        "with a warning instead of refusing")


def register(subparsers) -> None:
    """Add the subcommands: flash, verify, read, erase, info, demo, and sim (the virtual board's
    own program, run as a child process)."""
    flash = subparsers.add_parser(
        "flash", help="write an image into the external flash",
        description="Write an image into the external flash and verify it with CRC32 on the\n"
        "target. Bytes outside the image in a partly covered sector are kept;\n"
        "sectors that already hold the image are skipped.",
        epilog="examples:\n"
        "  qspi-gdb flash zephyr.recovery.bin@0x11E98000 --board nrf5340dk -c ext_mem.json\n"
        "  qspi-gdb flash merged.hex --only-qspi --board nrf52840dk --interface cmsis-dap\n"
        "  qspi-gdb flash app.bin --addr 0x11E98000 --board sim-nrf5340-32mb "
        "--sim-image flash.img",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_image_options(flash)
    flash.add_argument("--no-verify", action="store_true",
                       help="skip the CRC32 verify (the report then says 'not verified')")
    flash.add_argument("--force", action="store_true",
                       help="rewrite sectors whose contents already match")
    flash.add_argument("--chip-erase", action="store_true",
                       help="erase the whole chip first (bytes outside the image are lost)")
    flash.add_argument("--dry-run", action="store_true",
                       help="print the plan; connect to nothing, write nothing")
    flash.add_argument("--layout", metavar="FILE.svg",
                       help="draw the plan (with --dry-run) or what was done as an SVG picture "
                       "of the flash")
    _add_target_options(flash)
    flash.set_defaults(func=run_flash)

    verify = subparsers.add_parser(
        "verify", help="compare the flash with an image (CRC32 on target)",
        description="Compare the flash with an image by CRC32 computed on the target; exit 4 "
        "when they differ. Writes nothing.")
    _add_image_options(verify)
    _add_target_options(verify)
    verify.set_defaults(func=run_verify)

    read = subparsers.add_parser("read", help="read flash contents into a file",
                                 description="Read LEN bytes of the flash at ADDR into FILE.")
    read.add_argument("address", metavar="ADDR", help="XIP address or flash offset")
    read.add_argument("length", metavar="LEN", help="bytes: 0x.., decimal, K/M suffixes")
    read.add_argument("--output", "-o", metavar="FILE", required=True,
                      help="file to write (replaced)")
    _add_target_options(read)
    read.set_defaults(func=run_read)

    erase = subparsers.add_parser(
        "erase", help="erase a range (whole sectors) or the chip",
        description="Erase ADDR..ADDR+LEN (whole 4 KiB sectors) or, with --all, the whole "
        "chip; then check on the target that it reads 0xFF.")
    erase.add_argument("address", metavar="ADDR", nargs="?",
                       help="XIP address or flash offset, a multiple of 4 KiB")
    erase.add_argument("length", metavar="LEN", nargs="?",
                       help="bytes, a multiple of 4 KiB: 0x.., decimal, K/M suffixes")
    erase.add_argument("--all", action="store_true",
                       help="erase the whole chip (minutes on a 32 MiB part)")
    erase.add_argument("--dry-run", action="store_true", help="print what would be erased")
    _add_target_options(erase)
    erase.set_defaults(func=run_erase)

    info = subparsers.add_parser(
        "info", help="detect the flash: JEDEC ID, part, size, SFDP",
        description="Detect the flash (JEDEC ID, part, size, SFDP: address modes, 4-byte "
        "entry, quad enable, erase types, page size) and show the configuration that would be "
        "used, each value with where it came from.")
    _add_target_options(info)
    info.set_defaults(func=run_info)

    gdb_script.register(subparsers)
    subparsers.add_parser(
        "sim", help="run a virtual board (remote_bitbang server for OpenOCD)", add_help=False,
        description="Run a virtual nRF board; 'qspi-gdb sim --help' shows its options.")



# Each body runs one job inside the harness (`run`) and returns the text to print before the
# summary (the plan of a dry run, the lines of `info`), or None.


def run_flash(args: argparse.Namespace) -> int:
    def body(progress, result):
        if args.layout:
            jobs.check_output_file(args.layout, "--layout")
        plan = jobs.flash(target_spec(args), image_spec(args), flash_options(args),
                          opener(connection(args)), progress, result)
        if args.layout:
            write_layout(args.layout, plan, done=not result.dry_run)
        return render_plan(plan) if result.dry_run else None

    return run(args, "flash", body)


def run_verify(args: argparse.Namespace) -> int:
    def body(progress, result):
        jobs.verify(target_spec(args), image_spec(args), opener(connection(args)), progress,
                    result)

    return run(args, "verify", body)


def run_read(args: argparse.Namespace) -> int:
    def body(progress, result):
        jobs.read(target_spec(args), args.address, args.length, args.output,
                  opener(connection(args)), progress, result)  # the data went to the file

    return run(args, "read", body)


def run_erase(args: argparse.Namespace) -> int:
    def body(progress, result):
        # inside the harness: a refused command line prints its --json object too
        if args.all == (args.address is not None):
            raise UsageError("erase takes ADDR LEN or --all")
        if args.address is not None and args.length is None:
            raise UsageError("erase ADDR needs a length")
        jobs.erase(target_spec(args), args.address, args.length, opener(connection(args)),
                   progress, result, dry_run=args.dry_run)

    return run(args, "erase", body)


def run_info(args: argparse.Namespace) -> int:
    def body(progress, result):
        return "\n".join(jobs.info(target_spec(args), opener(connection(args)), progress,
                                   result))

    return run(args, "info", body)
