"""The command line's options as typed objects, built once from argparse's Namespace: the only
place where a Namespace turns into what the jobs and the connection take."""

from __future__ import annotations

import argparse
import os

from qspi_gdb.connect import Connection, target_identity
from qspi_gdb.errors import UsageError
from qspi_gdb.flash.options import FlashOptions, ImageSpec, TargetSpec, chip_erase_choice

# command-line option (argparse dest) -> the FlashConfig setting it overrides
# (`inputs.config_values.cli_layer` keywords; the options are named after the nrfutil JSON keys)
SETTING_OPTIONS = {
    "flash_size": "size",
    "address_mode": "address_mode",
    "readoc": "readoc",
    "writeoc": "writeoc",
    "pp_size": "pp_size",
    "page_size": "sector_size",
    "sck_frequency": "sck_frequency",
    "sck_delay": "sck_delay",
    "rx_delay": "rx_delay",
    "spi_mode": "spi_mode",
    "pins": "pins",
}


def target_spec(args: argparse.Namespace) -> TargetSpec:
    settings = {setting: getattr(args, dest) for dest, setting in SETTING_OPTIONS.items()
                if getattr(args, dest, None) is not None}
    return TargetSpec(board=args.board, config_file=args.config, jedec_id=args.jedec_id,
                      loader=args.loader, reset=args.reset, settings=settings,
                      allow_unknown_keys=args.allow_unknown_keys)


def image_specs(args: argparse.Namespace) -> tuple[ImageSpec, ...]:
    if args.addr is not None and len(args.images) > 1:
        raise UsageError(f"--addr {args.addr} applies to one image; with several, give each "
                         ".bin its address as FILE@ADDR")
    return tuple(ImageSpec(path=path, addr=args.addr, raw_offsets=args.raw_offsets,
                           only_qspi=args.only_qspi, kind=args.file_type)
                 for path in args.images)


def flash_options(args: argparse.Namespace) -> FlashOptions:
    chip_erase = chip_erase_choice(args.chip_erase, args.no_chip_erase)
    return FlashOptions(verify=not args.no_verify, force=args.force, chip_erase=chip_erase,
                        dry_run=args.dry_run, compress=not args.no_compress,
                        probe="gdb-server" if args.gdb_server else args.interface,
                        target_id=target_identity(connection(args)),
                        discard_journal=args.discard_journal)


def read_output(args: argparse.Namespace) -> str | None:
    """`read -o FILE`; None for `-o -` (the data goes to stdout)."""
    if args.output != "-":
        return args.output
    if args.json:
        raise UsageError("read -o - writes the data on stdout, where --json would write the "
                         "result object too: use -o FILE with --json")
    return None


def connection(args: argparse.Namespace) -> Connection:
    return Connection(gdb_server=args.gdb_server, interface=args.interface,
                      openocd_config=args.openocd_config, sim_image=args.sim_image,
                      serial=args.serial, usb_location=args.usb_location,
                      speed_khz=args.speed,
                      sim_locked=sim_locked_cores(args.sim_locked),
                      sim_args=sim_fault_args(args),
                      wait_lock_s=args.wait_lock)


def sim_fault_args(args: argparse.Namespace) -> tuple[str, ...]:
    """--sim-fault/--sim-fault-seed/--sim-fault-log: the virtual board's --fault options (the
    board checks them and refuses a bad one, exit 2, before anything is written)."""
    out: list[str] = []
    for spec in args.sim_fault or ():
        out += ["--fault", spec]
    if args.sim_fault_seed is not None:
        out += ["--fault-seed", str(args.sim_fault_seed)]
    if args.sim_fault_log:
        out += ["--fault-log", os.path.abspath(args.sim_fault_log)]
    return tuple(out)


def sim_locked_cores(text: str | None) -> tuple[str, ...]:
    """--sim-locked [CORES]: all (every core the chip has; the default), application, network."""
    if not text:
        return ()
    names = {"all": "all", "application": "application", "app": "application",
             "network": "network", "net": "network"}
    words = [word.strip().lower() for word in text.split(",")]
    unknown = [w for w in words if w not in names]
    if unknown:
        raise UsageError(f"--sim-locked {text}: cores are all, application, network")
    return tuple(dict.fromkeys(names[w] for w in words))
