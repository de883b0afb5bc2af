"""The subcommands: their options (argparse) and what each runs.

Option names follow the tools people come from (README "Options beside west, nrfutil and
pyOCD"): `-i/--dev-id` is the probe's serial number as in every Zephyr runner, `--erase` is
west's "erase the whole chip first", the flash-setting overrides are the nrfutil JSON keys.

Each handler turns its parsed options into typed ones once (`qspi_gdb.cli.options`), runs the
job (`qspi_gdb.flash.jobs`) inside the command harness (`qspi_gdb.cli.run`) and prints what the
job returns (the plan of a dry run, the lines of `info`). `sim` is the virtual board's own
program, started by `qspi_gdb.cli.main` as a child process.
"""

from __future__ import annotations

import argparse

from qspi_gdb.cli import gdb_script, hardware
from qspi_gdb.cli.options import (
    connection,
    flash_options,
    image_specs,
    read_output,
    target_spec,
)
from qspi_gdb.cli.output import write_stdout_bytes
from qspi_gdb.cli.report import write_layout
from qspi_gdb.cli.run import run
from qspi_gdb.connect import opener
from qspi_gdb.errors import UsageError
from qspi_gdb.flash import jobs
from qspi_gdb.inputs.boards import BOARDS
from qspi_gdb.inputs.config_values import READ_OPCODES, WRITE_OPCODES


def add_global_options(parser: argparse.ArgumentParser, *, after_command: bool) -> None:
    """Options every command takes, before or after the command's name. After it, absent
    options must not overwrite what was given before it (argparse copies a subcommand's
    namespace over the top-level one), so they default to SUPPRESS there; -v counts go to
    their own name and are added up by main()."""
    keep = {"default": argparse.SUPPRESS} if after_command else {}
    group = parser.add_argument_group("output")
    group.add_argument("-v", "--verbose", action="count",
                       dest="verbose_after" if after_command else "verbose",
                       **({"default": argparse.SUPPRESS} if after_command else {"default": 0}),
                       help="-v: debug lines of every step; -vv: also the GDB/MI traffic")
    group.add_argument("-q", "--quiet", action="store_true", **keep,
                       help="only warnings, errors and the result (no progress)")
    group.add_argument("--log-format", choices=("console", "plain", "json"), **keep,
                       help="progress and log lines on stderr: console (a terminal's default), "
                       "plain (otherwise), json (also the default with --json)")
    group.add_argument("--no-progress", action="store_true", **keep,
                       help="no progress bar or progress lines (logs stay)")
    group.add_argument("--json", action="store_true", **keep,
                       help="print one result object on stdout (schema in README)")


def _add_target_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("target")
    group.add_argument("--board", "-b", help=f"board preset: {', '.join(BOARDS)} (required "
                       "unless the config file names it)")
    group.add_argument("--config", "-c", metavar="FILE",
                       help="flash configuration: nrfutil ext-mem JSON, nrfjprog QspiDefault.ini "
                       "or its TOML form")
    group.add_argument("--allow-unknown-keys", action="store_true",
                       help="ignore config keys this version does not know (a file for a newer "
                       "version), with a warning; by default they are an error")
    group.add_argument("--jedec-id", metavar="HEX",
                       help="expected JEDEC ID of the flash, e.g. C22817 (a mismatch is an error)")
    group.add_argument("--loader", metavar="ELF",
                       help="RAM loader ELF built elsewhere (default: the packaged one)")
    settings = parser.add_argument_group(
        "flash settings (override the config file; named as its nrfutil JSON keys)")
    settings.add_argument("--flash-size", metavar="BYTES",
                          help="flash size in bytes (0x2000000, 32M); checked against the chip")
    settings.add_argument("--address-mode", metavar="MODE",
                          help="MODE24BIT or MODE32BIT (default: 32-bit above 16 MiB)")
    settings.add_argument("--readoc", metavar="MODE", help=", ".join(READ_OPCODES))
    settings.add_argument("--writeoc", metavar="MODE", help=", ".join(WRITE_OPCODES))
    settings.add_argument("--pp-size", metavar="SIZE", help="PPSIZE256 or PPSIZE512")
    settings.add_argument("--page-size", metavar="BYTES",
                          help="smallest erase unit to use: 4096 or 65536")
    settings.add_argument("--sck-frequency", metavar="HZ", help="QSPI clock: 8000000, 8M, 32M")
    settings.add_argument("--sck-delay", metavar="N", help="IFCONFIG1.SCKDELAY, 0-255")
    settings.add_argument("--rx-delay", metavar="N", help="IFTIMING.RXDELAY, 0-7")
    settings.add_argument("--spi-mode", metavar="MODE", help="MODE0 or MODE3")
    settings.add_argument("--pins", metavar="LIST",
                          help="GPIO numbers (port * 32 + pin): sck=19,csn=17,io0=20,io1=21,"
                          "io2=22,io3=23 (nRF5340: fixed)")
    conn = parser.add_argument_group("connection (default: start OpenOCD, or the virtual board)")
    conn.add_argument("--gdb-server", metavar="HOST:PORT",
                      help="use a GDB server someone else runs (J-Link GDB server, pyOCD, "
                      "OpenOCD); only standard GDB remote operations are used")
    conn.add_argument("--interface", metavar="PROBE",
                      help="OpenOCD interface for a real board: jlink (default), cmsis-dap, "
                      "stlink-dap, stlink, or any other OpenOCD interface/NAME.cfg; sim: a "
                      "virtual board started with `qspi-gdb sim`")
    conn.add_argument("--openocd-config", metavar="FILE", action="append",
                      help="OpenOCD config file(s) to use instead of --interface + the board's "
                      "target config")
    conn.add_argument("-i", "--dev-id", dest="serial", metavar="SERIAL",
                      help="serial number of the probe to use (OpenOCD 'adapter serial', as "
                      "Zephyr's runners name it; 'qspi-gdb probes' lists them); needed when "
                      "several probes of the interface are attached. Of a virtual board started "
                      "with `qspi-gdb sim`: use that board")
    conn.add_argument("--serial", dest="serial", help=argparse.SUPPRESS)  # issue 17's name
    conn.add_argument("--usb-location", metavar="PATH",
                      help="USB path of the probe to use, e.g. 1-1.2 (OpenOCD 'adapter usb "
                      "location', what labgrid's USB resources give)")
    conn.add_argument("--speed", metavar="KHZ", type=_khz,
                      help="SWD clock in kHz (OpenOCD 'adapter speed', default 4000); lower it "
                      "(1000, 500) for long or unshielded cables and flying leads")
    conn.add_argument("--sim-image", metavar="PATH",
                      help="virtual boards: file holding the flash contents (kept between runs)")
    conn.add_argument("--sim-locked", metavar="CORES", nargs="?", const="all",
                      help="virtual boards: start with access-port protection (APPROTECT) on, "
                      "as a protected chip: all cores (default), application or network")
    conn.add_argument("--sim-fault", metavar="KIND:UNIT=N[:ARG]", action="append",
                      help="virtual boards: inject a fault (`qspi-gdb sim --help` lists the "
                      "kinds and units); repeatable")
    conn.add_argument("--sim-fault-seed", metavar="N", type=int,
                      help="virtual boards: the seed of the faults (default 0)")
    conn.add_argument("--sim-fault-log", metavar="FILE",
                      help="virtual boards: write the injected faults as JSON to FILE")
    conn.add_argument("--wait-lock", metavar="SECONDS", type=_seconds,
                      help="when another qspi-gdb uses the same flash file or probe, wait up "
                      "to SECONDS for it (default: refuse at once)")
    parser.add_argument("--reset", action="store_true",
                        help="reset the target when done (lets the application run); the "
                        "result says how")
    parser.add_argument("--report", metavar="FILE",
                        help="write a JUnit XML report for CI (one test case per command; "
                        "added to FILE when it holds a qspi-gdb report already)")
    add_global_options(parser, after_command=True)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    return value


def _khz(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        value = 0
    if not 0 < value <= 100_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a clock in kHz (1..100000)")
    return value


def _add_image_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", metavar="IMAGE[@ADDR]", nargs="+",
                        help=".bin with its address (zephyr.bin@0x11E98000, or --addr), or "
                        ".hex / .elf (their addresses are XIP addresses); several images are "
                        "written in one go (one connection, one plan; they may not overlap)")
    parser.add_argument("--addr", "-a", metavar="ADDR",
                        help=".bin address: XIP address (e.g. 0x11E98000) or flash offset "
                        "(one image only; with several, give each FILE@ADDR)")
    parser.add_argument("-t", "--file-type", choices=("bin", "hex", "elf"),
                        help="the images' format when their names do not say (.bin/.hex/.elf), "
                        "as west's -t")
    parser.add_argument("--raw-offsets", action="store_true",
                        help=".hex/.elf addresses are flash offsets, not XIP addresses")
    parser.add_argument("--only-qspi", action="store_true",
                        help="skip segments outside the QSPI XIP window (e.g. internal flash) "
                        "with a warning instead of refusing")


def register(subparsers) -> None:
    """Add the subcommands: flash, verify, read, erase, info, and sim (the virtual board's own
    program, run as a child process)."""
    flash = subparsers.add_parser(
        "flash", help="write images into the external flash",
        description="Write one or more images into the external flash and verify them with\n"
        "CRC32 on the target. Bytes outside the images in a partly covered sector are kept;\n"
        "sectors that already hold the image are skipped.",
        epilog="examples:\n"
        "  qspi-gdb flash zephyr.recovery.bin@0x11E98000 --board nrf5340dk -c ext_mem.json\n"
        "  qspi-gdb flash merged.hex --only-qspi --board nrf52840dk --interface cmsis-dap\n"
        "  qspi-gdb flash app.bin@0x10000000 fs.bin@0x10100000 --board nrf5340dk -i 683123456\n"
        "  qspi-gdb flash app.bin --addr 0x11E98000 --board sim-nrf5340-32mb "
        "--sim-image flash.img",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_image_options(flash)
    checking = flash.add_mutually_exclusive_group()
    checking.add_argument("--verify", action="store_true",
                          help="verify with CRC32 on the target (the default)")
    checking.add_argument("--no-verify", action="store_true",
                          help="skip the CRC32 verify (the report then says 'not verified')")
    flash.add_argument("--force", action="store_true",
                       help="rewrite sectors whose contents already match")
    chip = flash.add_mutually_exclusive_group()
    chip.add_argument("--chip-erase", "--erase", dest="chip_erase", action="store_true",
                      help="erase the whole chip first, as west's --erase (bytes outside the "
                      "images are lost)")
    chip.add_argument("--no-chip-erase", action="store_true",
                      help="never erase the whole chip (by default a chip erase is used when "
                      "every sector is rewritten anyway and the chip's erase time is lower)")
    flash.add_argument("--dry-run", action="store_true",
                       help="print the plan and its estimated time; connect to nothing, write "
                       "nothing")
    flash.add_argument("--discard-journal", action="store_true",
                       help="delete the kept-bytes journal an interrupted flash of this target "
                       "left, without restoring the bytes around its image it saved")
    flash.add_argument("--layout", metavar="FILE.svg",
                       help="draw the plan (with --dry-run) or what was done as an SVG picture "
                       "of the flash")
    flash.add_argument("--no-compress", action="store_true",
                       help="send the data as it is (by default each block that compresses "
                       "goes as LZ4, decoded and CRC-checked by the loader)")
    _add_target_options(flash)
    flash.set_defaults(func=run_flash)

    verify = subparsers.add_parser(
        "verify", help="compare the flash with images (CRC32 on target)",
        description="Compare the flash with one or more images by CRC32 computed on the "
        "target; exit 4 when they differ. Writes nothing.")
    _add_image_options(verify)
    _add_target_options(verify)
    verify.set_defaults(func=run_verify)

    read = subparsers.add_parser(
        "read", help="read flash contents into a file",
        description="Read LEN bytes of the flash at ADDR into FILE ('-o -': onto stdout, and "
        "the summary onto stderr).")
    read.add_argument("address", metavar="ADDR", help="XIP address or flash offset")
    read.add_argument("length", metavar="LEN", help="bytes: 0x.., decimal, K/M suffixes")
    read.add_argument("--output", "-o", metavar="FILE", required=True,
                      help="file to write (replaced); - for stdout")
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
    erase.add_argument("--dry-run", action="store_true",
                       help="print what would be erased, where; connect to nothing")
    _add_target_options(erase)
    erase.set_defaults(func=run_erase)

    info = subparsers.add_parser(
        "info", help="detect the flash: JEDEC ID, part, size, SFDP",
        description="Detect the flash (JEDEC ID, part, size, SFDP: address modes, 4-byte "
        "entry, quad enable, erase types, page size) and show the configuration that would be "
        "used, each value with the layer it came from (default, preset, config file, command "
        "line, the chip).")
    _add_target_options(info)
    info.set_defaults(func=run_info)

    gdb_script.register(subparsers)
    hardware.register(subparsers, _add_target_options)
    subparsers.add_parser(
        "sim", help="run a virtual board (remote_bitbang server for OpenOCD)", add_help=False,
        description="Run a virtual nRF board; 'qspi-gdb sim --help' shows its options.")


# Each body runs one job inside the harness (`run`) and returns the text to print before the
# summary (the plan of a dry run, the lines of `info`), or None.


def run_flash(args: argparse.Namespace) -> int:
    def body(progress, result):
        if args.layout:
            jobs.check_output_file(args.layout, "--layout")
        planned = jobs.flash(target_spec(args), image_specs(args), flash_options(args),
                             opener(connection(args), result), progress, result)
        if args.layout:
            write_layout(args.layout, planned.plan, done=not result.dry_run)
        return planned.text() if result.dry_run else None

    return run(args, "flash", body)


def run_verify(args: argparse.Namespace) -> int:
    def body(progress, result):
        jobs.verify(target_spec(args), image_specs(args), opener(connection(args), result),
                    progress, result)

    return run(args, "verify", body)


def run_read(args: argparse.Namespace) -> int:
    def body(progress, result):
        output = read_output(args)
        data = jobs.read(target_spec(args), args.address, args.length, output,
                         opener(connection(args), result), progress, result)
        if output is None:  # `-o -`: the data is the output; the summary goes to stderr
            write_stdout_bytes(data)

    return run(args, "read", body, summary_to_stderr=args.output == "-")


def run_erase(args: argparse.Namespace) -> int:
    def body(progress, result):
        # inside the harness: a refused command line prints its --json object too
        if args.all == (args.address is not None):
            raise UsageError("erase takes ADDR LEN or --all")
        if args.address is not None and args.length is None:
            raise UsageError("erase ADDR needs a length")
        jobs.erase(target_spec(args), args.address, args.length,
                   opener(connection(args), result), progress, result, dry_run=args.dry_run)

    return run(args, "erase", body)


def run_info(args: argparse.Namespace) -> int:
    def body(progress, result):
        lines = jobs.info(target_spec(args), opener(connection(args), result), progress, result)
        if result.probe:
            probe = result.probe
            lines.append(f"probe: {probe['interface'] or 'OpenOCD config'}"
                         f"{' serial ' + probe['serial'] if probe['serial'] else ''}, "
                         + (f"{probe['speed_khz']:g} kHz SWD clock" if probe['speed_khz'] else
                            "SWD clock as its OpenOCD config sets it"))
        return "\n".join(lines)

    return run(args, "info", body)
