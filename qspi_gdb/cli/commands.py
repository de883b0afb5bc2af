"""Controller subcommands: flash, verify, read, erase, info.

Thin adapters: parse options, build the inputs (image, flash config), open a target session
(qspi_gdb.transport.session) and call the programmer; render the result (qspi_gdb.cli.output). Errors are
typed (qspi_gdb.errors) and rendered once by qspi_gdb.cli with their exit code.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from qspi_gdb import log
from qspi_gdb.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_VERIFY, QspiGdbError, UsageError
from qspi_gdb.flash.progress import ERASING, PROGRAMMING
from qspi_gdb.cli.output import ProgressView, Result, print_result

EXIT_INTERNAL = 1  # an unexpected exception: a bug (README "Exit codes")

_log = log.get_logger(__name__)


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
                      "stlink, stlink-dap, ftdi")
    conn.add_argument("--openocd-config", metavar="FILE", action="append",
                      help="OpenOCD config file(s) to use instead of --interface + the board's "
                      "target config")
    conn.add_argument("--sim-image", metavar="PATH",
                      help="virtual boards: file holding the flash contents (kept between runs)")
    parser.add_argument("--reset", action="store_true",
                        help="reset the target when done (lets the application run)")
    parser.add_argument("--json", action="store_true",
                        help="print one result object on stdout (schema in README)")


def _add_image_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="IMAGE[@ADDR]",
                        help=".bin with its address (zephyr.bin@0x11E98000, or --addr), or "
                        ".hex / .elf (their addresses are XIP addresses)")
    parser.add_argument("--addr", "-a", metavar="ADDR",
                        help=".bin address: XIP address (e.g. 0x11E98000) or flash offset")
    parser.add_argument("--raw-offsets", action="store_true",
                        help=".hex/.elf addresses are flash offsets, not XIP addresses")
    parser.add_argument("--only-qspi", action="store_true",
                        help="skip segments outside the QSPI XIP window (e.g. internal flash) "
                        "with a warning instead of refusing")


def register(subparsers) -> None:
    """Add the controller subcommands."""
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
    _add_target_options(flash)
    flash.set_defaults(func=_run_flash)

    verify = subparsers.add_parser(
        "verify", help="compare the flash with an image (CRC32 on target)",
        description="Compare the flash with an image by CRC32 computed on the target; exit 4 "
        "when they differ. Writes nothing.")
    _add_image_options(verify)
    _add_target_options(verify)
    verify.set_defaults(func=_run_verify)

    read = subparsers.add_parser("read", help="read flash contents into a file",
                                 description="Read LEN bytes of the flash at ADDR into FILE.")
    read.add_argument("address", metavar="ADDR", help="XIP address or flash offset")
    read.add_argument("length", metavar="LEN", help="bytes: 0x.., decimal, K/M suffixes")
    read.add_argument("--output", "-o", metavar="FILE", required=True,
                      help="file to write (replaced)")
    _add_target_options(read)
    read.set_defaults(func=_run_read)

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
    erase.set_defaults(func=_run_erase)

    info = subparsers.add_parser(
        "info", help="detect the flash: JEDEC ID, part, size, SFDP",
        description="Detect the flash (JEDEC ID, part, size, SFDP: address modes, 4-byte "
        "entry, quad enable, erase types, page size) and show the configuration that would be "
        "used, each value with where it came from.")
    _add_target_options(info)
    info.set_defaults(func=_run_info)


# -- running a command ------------------------------------------------------------------------


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, SIGTERM or SIGHUP, with the one line that tells the user what state remains."""


class _Terminated(KeyboardInterrupt):
    """SIGTERM/SIGHUP: unwind like Ctrl-C so every started process is stopped."""


@contextmanager
def _terminate_as_interrupt():
    def handler(signum, _frame):
        raise _Terminated(f"by {signal.Signals(signum).name}")

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            previous[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):  # not the main thread
            pass
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _record_failure(args, result: Result, started: float, message: str, exit_code: int) -> None:
    """Mark the result failed; with --json print it now (the caller re-raises the error)."""
    result.ok = False
    result.error = {"message": message, "exit_code": exit_code}
    result.seconds = round(time.monotonic() - started, 3)
    if args.json:
        print_result(result, as_json=True)


def _run(args, command: str, body) -> int:
    """Run body(args, progress, result) and render the result; errors are re-raised typed."""
    started = time.monotonic()
    result = Result(command=command, board=getattr(args, "board", None))
    progress = ProgressView(sys.stderr)
    try:
        _check_sim_image(args)
        _check_read_output(args)
        _check_loader(args)
        with _terminate_as_interrupt():
            body(args, progress, result)
    except KeyboardInterrupt as exc:
        progress.close()  # the message goes on its own line, not after the bar
        message = _interrupted_message(command, exc, progress)
        _record_failure(args, result, started, message, EXIT_INTERRUPTED)
        raise Interrupted(message) from exc
    except QspiGdbError as exc:
        progress.close()
        _record_failure(args, result, started, str(exc), exc.exit_code)
        raise
    except Exception as exc:  # a bug: still end the bar line and keep the --json promise
        progress.close()
        _record_failure(args, result, started, internal_error_text(exc), EXIT_INTERNAL)
        raise
    progress.close()
    result.seconds = round(time.monotonic() - started, 3)
    result.phase_seconds = progress.phase_seconds
    print_result(result, as_json=args.json)
    if result.verify == "mismatch":
        return EXIT_VERIFY
    return EXIT_OK


def internal_error_text(exc: BaseException) -> str:
    return f"internal error {type(exc).__name__}: {exc} (a bug; -v shows the traceback)"


def _check_read_output(args) -> None:
    """read -o FILE: refused before connecting when FILE cannot be written."""
    output = getattr(args, "output", None)
    if output is None:
        return
    if Path(output).is_dir():
        raise UsageError(f"--output {output}: is a directory (name a file)")
    parent = Path(output).absolute().parent
    if parent.is_dir() and not os.access(parent, os.W_OK):
        raise UsageError(f"--output {output}: directory {parent} is not writable")


def _check_loader(args) -> None:
    """--loader must be an ELF file: refused before anything starts (GDB would reject it only
    after OpenOCD and the board are up, as a target failure)."""
    loader = getattr(args, "loader", None)
    if not loader or not Path(loader).is_file():
        return  # a missing file is refused by the programmer with the same exit code
    with open(loader, "rb") as f:
        if f.read(4) != b"\x7fELF":
            raise UsageError(f"--loader {loader}: not an ELF file")
        f.seek(0)
        try:
            machine = ELFFile(f).header["e_machine"]
        except ELFError as exc:
            raise UsageError(f"--loader {loader}: unreadable ELF file ({exc})") from None
    if machine != "EM_ARM":
        raise UsageError(f"--loader {loader}: an ELF for {machine}, not for an Arm Cortex-M core")


def _check_sim_image(args) -> None:
    """--sim-image must be a file the virtual board can create: refused here as bad input,
    not found out when the board process dies trying to write it."""
    path = getattr(args, "sim_image", None)
    if not path:
        return
    where = Path(path)
    if where.is_dir():
        raise UsageError(f"--sim-image {path}: is a directory (name a file)")
    if not where.absolute().parent.is_dir():
        raise UsageError(f"--sim-image {path}: no such directory {where.absolute().parent}")


def _interrupted_message(command: str, exc: KeyboardInterrupt, progress: ProgressView) -> str:
    """'interrupted' plus what it means for the flash: after erasing or programming began, the
    range may hold neither the old contents nor the image."""
    how = f"interrupted {exc}" if isinstance(exc, _Terminated) else "interrupted"
    touched = [p for p in (ERASING, PROGRAMMING)
               if p in progress.running or p in progress.phase_seconds]
    if command in ("flash", "erase") and touched:
        during = " and ".join(p.lower() for p in touched if p in progress.running)
        return (f"{how}{' while ' + during if during else ''}: the flash range may be partly "
                f"{'erased' if command == 'erase' else 'written'}; run the command again")
    return f"{how}; nothing was written" if command in ("flash", "erase") else how


def _run_flash(args) -> int:
    from qspi_gdb.flash import programmer

    return _run(args, "flash", programmer.run_flash)


def _run_verify(args) -> int:
    from qspi_gdb.flash import programmer

    return _run(args, "verify", programmer.run_verify)


def _run_read(args) -> int:
    from qspi_gdb.flash import programmer

    return _run(args, "read", programmer.run_read)


def _run_erase(args) -> int:
    if args.all == (args.address is not None):
        raise UsageError("erase takes ADDR LEN or --all")
    if args.address is not None and args.length is None:
        raise UsageError("erase ADDR needs a length")
    from qspi_gdb.flash import programmer

    return _run(args, "erase", programmer.run_erase)


def _run_info(args) -> int:
    from qspi_gdb.flash import programmer

    return _run(args, "info", programmer.run_info)
