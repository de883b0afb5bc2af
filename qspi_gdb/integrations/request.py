"""The flash request that `west flash-ext`, the Zephyr runner and the labgrid driver share,
with the flag names of Zephyr's nRF runners (`-i/--dev-id`, `-f/--file`, `-t/--file-type`,
`--erase`, `--reset/--no-reset`, `--ext-mem-config-file`), and its two ways to run: in this
process through the Python API (`run`), or as a `qspi-gdb flash` command line (`argv`, for a
labgrid exporter). Framework-free: the parsers it fills are handed in by west or Zephyr.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from qspi_gdb import api
from qspi_gdb.errors import UsageError
from qspi_gdb.flash.progress import PhaseFinished, ProgressEvent
from qspi_gdb.flash.result import Result
from qspi_gdb.inputs.boards import BOARDS

FILE_TYPES = ("hex", "bin", "elf")


@dataclass(frozen=True)
class FlashRequest:
    file: str  # image: .hex / .elf, or .bin with `address` (or FILE@ADDR)
    file_type: str | None = None  # hex | bin | elf; None: from the name's suffix
    address: str | None = None  # .bin: XIP address or flash offset
    board: str | None = None  # qspi-gdb board preset (or a Zephyr board name, see board_preset)
    ext_mem_config_file: str | None = None  # nrfutil JSON (or any --config format)
    dev_id: str | None = None  # probe serial number (Zephyr's name, qspi-gdb's --dev-id)
    usb_location: str | None = None  # probe USB path (labgrid's USB resources)
    erase: bool = False  # chip erase first, as the nRF runners' --erase
    reset: bool = True  # reset after flashing (the nRF runners' default)
    verify: bool = True
    force: bool = False
    only_qspi: bool = False  # skip segments outside the QSPI window (a merged.hex)
    interface: str | None = None  # OpenOCD interface (jlink, cmsis-dap, ...)
    gdb_server: str | None = None
    sim_image: str | None = None  # virtual boards: the flash contents file

    def target(self) -> api.Target:
        return api.Target(board=board_preset(self.board), config=self.ext_mem_config_file,
                          reset=self.reset, interface=self.interface,
                          gdb_server=self.gdb_server, serial=self.dev_id,
                          usb_location=self.usb_location, sim_image=self.sim_image)

    def run(self, progress: Callable[[ProgressEvent], None] | None = None) -> Result:
        """Flash through the Python API in this process; typed errors as the API raises them."""
        return api.flash(self.target(), self.file, addr=self.address, file_type=self.file_type,
                         verify=self.verify, force=self.force, chip_erase=True if self.erase else None,
                         only_qspi=self.only_qspi, progress=progress)

    def argv(self, tool: str = "qspi-gdb") -> list[str]:
        """The same request as a `qspi-gdb flash ... --json` command line."""
        argv = [tool, "flash", self.file]
        for option, value in (("--addr", self.address), ("--file-type", self.file_type),
                              ("--board", board_preset(self.board)),
                              ("--config", self.ext_mem_config_file),
                              ("--dev-id", self.dev_id), ("--usb-location", self.usb_location),
                              ("--interface", self.interface),
                              ("--gdb-server", self.gdb_server),
                              ("--sim-image", self.sim_image)):
            if value is not None:
                argv += [option, value]
        for option, wanted in (("--chip-erase", self.erase), ("--reset", self.reset),
                               ("--no-verify", not self.verify), ("--force", self.force),
                               ("--only-qspi", self.only_qspi)):
            if wanted:
                argv.append(option)
        return [*argv, "--json"]


def board_preset(name: str | None) -> str | None:
    """Our board preset for a Zephyr board name: `nrf5340dk/nrf5340/cpuapp` and the older
    `nrf5340dk_nrf5340_cpuapp` are `nrf5340dk`; a preset name stays as it is."""
    if name is None or name in BOARDS:
        return name
    base = name.split("/")[0].split("@")[0]
    for candidate in (base, base.split("_")[0]):
        if candidate in BOARDS:
            return candidate
    raise UsageError(f"board {name!r}: no qspi-gdb preset (known: {', '.join(BOARDS)})")


def add_zephyr_flags(parser) -> None:
    """The flags every Zephyr runner gets from `ZephyrBinaryRunner.add_parser` (for a command
    that is no runner: `west flash-ext`), with the nRF runners' meaning."""
    parser.add_argument("-i", "--dev-id", metavar="SERIAL",
                        help="serial number of the probe (OpenOCD `adapter serial`)")
    parser.add_argument("-f", "--file", required=True,
                        help="image to write: .hex / .elf, or .bin with --addr (or FILE@ADDR)")
    parser.add_argument("-t", "--file-type", choices=FILE_TYPES,
                        help="the image's format when its name does not say")
    parser.add_argument("--erase", action="store_true",
                        help="erase the whole external flash first (bytes outside the image "
                        "are lost)")
    parser.add_argument("--reset", dest="reset", action="store_true", default=None,
                        help="reset the target when done (default)")
    parser.add_argument("--no-reset", dest="reset", action="store_false",
                        help="leave the core halted")


def add_tool_flags(parser, *, board_option: str = "--board") -> None:
    """qspi-gdb's own flags, beside Zephyr's (all long, so none can clash with a runner's)."""
    parser.add_argument("--ext-mem-config-file", metavar="FILE",
                        help="external memory configuration: the nrfutil JSON the nRF DK "
                        "boards pass (or an nrfjprog ini / TOML)")
    parser.add_argument(board_option, dest="qspi_board", metavar="BOARD",
                        help="qspi-gdb board preset or Zephyr board name (nrf5340dk, "
                        "nrf52840dk/nrf52840, sim-nrf5340dk, ...)")
    parser.add_argument("--addr", metavar="ADDR", help=".bin: XIP address or flash offset")
    parser.add_argument("--interface", metavar="PROBE",
                        help="OpenOCD interface: jlink (default), cmsis-dap, stlink, ...")
    parser.add_argument("--gdb-server", metavar="HOST:PORT",
                        help="use a GDB server someone else runs instead of OpenOCD")
    parser.add_argument("--sim-image", metavar="PATH",
                        help="virtual boards: the file holding the flash contents")
    parser.add_argument("--no-verify", dest="verify", action="store_false",
                        help="skip the CRC32 verify (reported as not verified)")
    parser.add_argument("--force", action="store_true",
                        help="rewrite sectors that already hold the image")
    parser.add_argument("--only-qspi", action="store_true",
                        help="write only the parts of a .hex/.elf inside the QSPI window")


def request_from_args(args, **override) -> FlashRequest:
    """A FlashRequest from parsed flags (add_zephyr_flags + add_tool_flags); `override`
    replaces fields (a runner's file from the build)."""
    values = {
        "file": args.file, "file_type": args.file_type, "address": args.addr,
        "board": args.qspi_board, "ext_mem_config_file": args.ext_mem_config_file,
        "dev_id": args.dev_id, "erase": bool(args.erase),
        "reset": True if args.reset is None else args.reset, "verify": args.verify,
        "force": args.force, "only_qspi": args.only_qspi, "interface": args.interface,
        "gdb_server": args.gdb_server, "sim_image": args.sim_image,
    }
    values.update(override)
    if not values["file"]:
        raise UsageError("no image: give -f FILE")
    if values["file_type"] not in (None, *FILE_TYPES):
        raise UsageError(f"--file-type {values['file_type']}: expected hex, bin or elf")
    values["file"] = os.fspath(values["file"])
    return FlashRequest(**values)


def phase_line(event: ProgressEvent) -> str | None:
    """One line per finished phase for tools that show no progress bar."""
    if isinstance(event, PhaseFinished) and event.total_bytes:
        return f"{event.phase}: {event.total_bytes:,} bytes in {event.seconds:.2f} s"
    return None


def describe(result: Result) -> str:
    """One line about a finished flash for west and the runner's logs."""
    image = result.image or {}
    done = (f"wrote {image.get('path')} ({image.get('bytes', 0):,} bytes) to {result.board}"
            f" ({result.part or 'flash'}): erased {result.bytes_erased:,} bytes, programmed "
            f"{result.pages_programmed:,} pages, {result.sectors_skipped_unchanged} sectors "
            f"already held the image")
    if result.verify == "verified":
        ranges = len(result.verified_ranges)
        return f"{done}; verified {ranges} range(s) by CRC32 on the target in {result.seconds:.1f} s"
    return f"{done}; {result.verify} ({result.seconds:.1f} s)"
