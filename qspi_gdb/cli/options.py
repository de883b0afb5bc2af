"""The command line's options as typed objects, built once from argparse's Namespace: the only
place where a Namespace turns into what the jobs and the connection take."""

from __future__ import annotations

import argparse

from qspi_gdb.connect import Connection
from qspi_gdb.flash.options import FlashOptions, ImageSpec, TargetSpec


def target_spec(args: argparse.Namespace) -> TargetSpec:
    return TargetSpec(board=args.board, config_file=args.config, jedec_id=args.jedec_id,
                      loader=args.loader, reset=args.reset)


def image_spec(args: argparse.Namespace) -> ImageSpec:
    return ImageSpec(path=args.image, addr=args.addr, raw_offsets=args.raw_offsets,
                     only_qspi=args.only_qspi, kind=args.file_type)


def flash_options(args: argparse.Namespace) -> FlashOptions:
    return FlashOptions(verify=not args.no_verify, force=args.force, chip_erase=args.chip_erase,
                        dry_run=args.dry_run)


def connection(args: argparse.Namespace) -> Connection:
    return Connection(gdb_server=args.gdb_server, interface=args.interface,
                      openocd_config=args.openocd_config, sim_image=args.sim_image,
                      serial=args.serial, wait_lock_s=args.wait_lock,
                      usb_location=args.usb_location)
