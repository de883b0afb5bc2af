"""The `qspi` command inside a GDB session: `qspi flash IMAGE [ADDR]`, `qspi verify`,
`qspi read`, `qspi erase`, `qspi info`, with the plan, loader and checks of the command line,
through the Python API on the session's own connection (`gdb_session`).

The session remembers the board, configuration and image of the last command, so after
`qspi flash zephyr.recovery.bin 0x11E98000 --config ext.json` a plain `qspi verify` checks the
same image. Without `--board` the board is the DK preset of the chip the core reports
(FICR INFO.PART), with the pins of `--config` where it gives them.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field

import gdb

from qspi_gdb import api
from qspi_gdb.errors import QspiGdbError, TargetError, UsageError
from qspi_gdb.flash.progress import PhaseFinished, PhaseStarted, ProgressEvent
from qspi_gdb.flash.result import Result
from qspi_gdb.integrations.gdb_session import check_session, session_opener
from qspi_gdb.integrations.request import describe

# Where the chip names itself (FICR INFO.PART), and the DK preset for it.
PART_REGISTERS = ((0x00FF020C, 0x5340, "nrf5340dk"), (0x10000100, 0x52840, "nrf52840dk"))


class _Parser(argparse.ArgumentParser):
    """argparse whose refusals are UsageErrors (gdb must not exit)."""

    def error(self, message: str):
        raise UsageError(message)

    def exit(self, status: int = 0, message: str | None = None):
        if message:
            gdb.write(message)
        raise _HelpShown()


class _HelpShown(Exception):
    """`-h` printed its help: nothing to run."""


@dataclass
class SessionDefaults:
    """What the last commands named: used when the next one names nothing."""

    board: str | None = None
    config: str | None = None
    jedec_id: str | None = None
    loader: str | None = None
    image: dict = field(default_factory=dict)  # image, addr, file_type, raw_offsets, only_qspi


STATE = SessionDefaults()


def _target_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--board", "-b", help="board preset (default: the DK of the chip the "
                        "core reports, or the last one named)")
    parser.add_argument("--config", "-c", metavar="FILE", help="flash configuration (nrfutil "
                        "JSON, nrfjprog ini or TOML)")
    parser.add_argument("--jedec-id", metavar="HEX", help="the flash you expect, e.g. C22817")
    parser.add_argument("--loader", metavar="ELF", help="a loader ELF built elsewhere")
    parser.add_argument("--json", action="store_true", help="print the result object")
    parser.add_argument("--no-restore-ram", action="store_true",
                        help="do not save and give back the RAM the loader uses (faster on a "
                        "slow probe; the application's data there is lost: reset before you "
                        "continue it)")


def _image_options(parser: argparse.ArgumentParser, *, optional: bool) -> None:
    parser.add_argument("image", metavar="IMAGE", nargs="?" if optional else None,
                        help=".bin (with ADDR or IMAGE@ADDR), .hex or .elf" +
                        (" (default: the image of the last qspi flash)" if optional else ""))
    parser.add_argument("address", metavar="ADDR", nargs="?",
                        help=".bin: XIP address or flash offset")
    parser.add_argument("--file-type", choices=("bin", "hex", "elf"))
    parser.add_argument("--raw-offsets", action="store_true")
    parser.add_argument("--only-qspi", action="store_true",
                        help="skip segments outside the QSPI window (a merged.hex)")


def _parsers() -> dict[str, argparse.ArgumentParser]:
    flash = _Parser(prog="qspi flash", description="Write an image into the external flash "
                    "and verify it (CRC32 on the target); registers and RAM are given back.")
    _image_options(flash, optional=False)
    flash.add_argument("--no-verify", action="store_true")
    flash.add_argument("--force", action="store_true", help="rewrite unchanged sectors")
    flash.add_argument("--chip-erase", action="store_true",
                       help="erase the whole chip first (bytes outside the image are lost)")
    verify = _Parser(prog="qspi verify", description="Compare the flash with an image.")
    _image_options(verify, optional=True)
    read = _Parser(prog="qspi read", description="Read flash contents into a file.")
    read.add_argument("address", metavar="ADDR")
    read.add_argument("length", metavar="LEN")
    read.add_argument("--output", "-o", metavar="FILE", required=True)
    erase = _Parser(prog="qspi erase", description="Erase whole sectors, or the chip (--all).")
    erase.add_argument("address", metavar="ADDR", nargs="?")
    erase.add_argument("length", metavar="LEN", nargs="?")
    erase.add_argument("--all", action="store_true")
    info = _Parser(prog="qspi info", description="Detect the flash: JEDEC ID, part, size, SFDP.")
    parsers = {"flash": flash, "verify": verify, "read": read, "erase": erase, "info": info}
    for parser in parsers.values():
        _target_options(parser)
    return parsers


PARSERS = _parsers()


def _board_of_the_core(link_reader) -> str:
    for address, part, preset in PART_REGISTERS:
        try:
            value = int.from_bytes(link_reader(address, 4), "little")
        except (gdb.error, gdb.MemoryError, TargetError):
            continue
        if value == part:
            return preset
    raise UsageError("cannot tell the chip (FICR INFO.PART): name the board with --board")


def _read_target(address: int, length: int) -> bytes:
    return gdb.selected_inferior().read_memory(address, length).tobytes()


def _target(args) -> api.Target:
    for key in ("board", "config", "jedec_id", "loader"):
        if getattr(args, key):
            setattr(STATE, key, getattr(args, key))
    board = STATE.board
    if board is None:
        check_session()
        board = _board_of_the_core(_read_target)
        gdb.write(f"qspi: no --board: the core is an {board[:-2]}, using the {board} preset\n")
    opener = session_opener(say=_say, restore_ram=not args.no_restore_ram)
    return api.Target(board=board, config=STATE.config, jedec_id=STATE.jedec_id,
                      loader=STATE.loader, open_target=opener)


def _image(args) -> dict:
    if args.image is None:
        if not STATE.image:
            raise UsageError("no image: name one (no earlier qspi flash in this session)")
        return STATE.image
    return {"image": args.image, "addr": args.address, "file_type": args.file_type,
            "raw_offsets": args.raw_offsets, "only_qspi": args.only_qspi}


def _say(text: str) -> None:
    gdb.write(f"qspi: {text}\n")
    gdb.flush()


def _progress(event: ProgressEvent) -> None:
    if isinstance(event, PhaseStarted) and event.total_bytes:
        _say(f"{event.phase} {event.total_bytes:,} bytes")
    elif isinstance(event, PhaseFinished) and event.total_bytes:
        _say(f"{event.phase} done in {event.seconds:.2f} s")


def run(command: str, argument: str) -> Result | None:
    """Parse and run one `qspi COMMAND ...`; None when only help was shown."""
    args = PARSERS[command].parse_args(gdb.string_to_argv(argument))
    target = _target(args)
    if command == "flash":
        image = _image(args)
        result = api.flash(target, image["image"], addr=image["addr"],
                           file_type=image["file_type"], raw_offsets=image["raw_offsets"],
                           only_qspi=image["only_qspi"], verify=not args.no_verify,
                           force=args.force, chip_erase=args.chip_erase, progress=_progress)
        STATE.image = image  # what a plain `qspi verify` checks next
        summary = describe(result)
    elif command == "verify":
        image = _image(args)
        result = api.verify(target, image["image"], addr=image["addr"],
                            file_type=image["file_type"], raw_offsets=image["raw_offsets"],
                            only_qspi=image["only_qspi"], progress=_progress)
        total = sum(r["length"] for r in result.verified_ranges)
        summary = f"{image['image']}: verified {total:,} bytes in " \
                  f"{len(result.verified_ranges)} range(s) (CRC32 on target)"
    elif command == "read":
        result = api.read(target, args.address, args.length, args.output, progress=_progress)
        summary = f"read {result.bytes_read:,} bytes into {result.output_file}"
    elif command == "erase":
        if args.all == (args.address is not None) or (args.address is None) != (args.length is None):
            raise UsageError("qspi erase takes ADDR LEN, or --all")
        result = api.erase(target, args.address, args.length, progress=_progress)
        summary = f"erased {result.bytes_erased:,} bytes, checked blank (CRC32 on target)"
    else:
        result = api.info(target, progress=_progress)
        summary = _info_text(result)
    if args.json:
        gdb.write(json.dumps(result.to_json(), sort_keys=True) + "\n")
    _say(summary)
    return result


def _info_text(result: Result) -> str:
    info = result.info or {}
    sfdp = "SFDP read" if info.get("sfdp") else "no SFDP"
    size = f"{result.flash_size / (1 << 20):g} MiB" if result.flash_size else "unknown size"
    return (f"{result.part or 'unknown part'}, JEDEC ID {result.jedec_id}, {size}, "
            f"{result.address_mode} addressing now, {sfdp} (board {result.board})")


class QspiCommand(gdb.Command):
    """Write the external QSPI flash of an nRF52840 / nRF5340 from this session (qspi-gdb).

Usage: qspi flash IMAGE [ADDR] [--config FILE] [--board B] | qspi verify [IMAGE [ADDR]] |
       qspi read ADDR LEN -o FILE | qspi erase ADDR LEN | --all | qspi info
`qspi COMMAND -h` shows a command's options. The core's registers and the RAM the loader uses
are saved before and written back after each command, so the session goes on where it was."""

    def __init__(self):
        super().__init__("qspi", gdb.COMMAND_USER, prefix=True)


class QspiSubcommand(gdb.Command):
    def __init__(self, name: str):
        self.command = name
        self.__doc__ = PARSERS[name].format_help()
        super().__init__(f"qspi {name}", gdb.COMMAND_USER)

    def invoke(self, argument: str, from_tty: bool) -> None:
        self.dont_repeat()  # Enter must not flash again
        try:
            run(self.command, argument)
        except _HelpShown:
            return
        except QspiGdbError as exc:
            raise gdb.GdbError(f"qspi {self.command}: {exc}") from None


def register() -> None:
    QspiCommand()
    for name in PARSERS:
        QspiSubcommand(name)
