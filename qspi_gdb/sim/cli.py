"""The virtual board's own command line (`python -m qspi_gdb.sim`, also `qspi-gdb sim`): run a
virtual board as a remote_bitbang server for OpenOCD.

The first line on stdout (flushed) is the endpoint, `remote_bitbang 127.0.0.1:PORT` or
`remote_bitbang unix:PATH` (with --json one object: remote_bitbang, board, sim_image). The board
serves until SIGINT/SIGTERM, then flushes its flash image and exits 0 (with --json a second
object with the board's statistics).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from dataclasses import replace

from qspi_gdb import log as logging_setup
from qspi_gdb.errors import EXIT_INTERRUPTED, EXIT_USAGE, QspiGdbError, UsageError
from qspi_gdb.log import get_logger
from qspi_gdb.sim.faults import KINDS, UNITS, FaultPlan, FaultSpecError
from qspi_gdb.sim.pacing import check_rate
from qspi_gdb.sim.probe import DEFAULT_PROFILE, PROFILES, get_profile
from qspi_gdb.sim.registry import Registration, default_serial

log = get_logger("qspi_gdb.sim.cli")
PROG = "qspi-gdb sim"


class _Parser(argparse.ArgumentParser):
    """A refused command line is one error line and exit 2, as in the product's CLI."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Run a virtual nRF board (NOR flash, QSPI, Cortex-M core, debug port) that "
        "OpenOCD reaches through interface/sim.cfg. Prints the endpoint as the first line.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="debug log output")
    parser.add_argument("--board", required=True, help="virtual board preset (sim-nrf5340dk, ...)")
    parser.add_argument(
        "--sim-image", "--image", dest="sim_image", metavar="PATH",
        help="file holding the flash contents (created if missing; kept between runs)",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--port", type=int, default=0,
                       help="TCP port on 127.0.0.1 (default 0: a free port, reported)")
    where.add_argument("--socket", metavar="PATH", help="serve on this UNIX socket instead")
    parser.add_argument("--json", action="store_true", help="print the endpoint and, at exit, "
                        "the board statistics as JSON objects")
    parser.add_argument("--probe-profile", default=DEFAULT_PROFILE, choices=list(PROFILES),
                        help="what the modelled clock charges per DAP transaction, USB batch, "
                        f"halt detection and GDB packet (default {DEFAULT_PROFILE}): "
                        + "; ".join(f"{p.name}: {p.description}" for p in PROFILES.values()))
    parser.add_argument("--adapter-khz", type=float, default=None,
                        help="modelled SWD clock (default: the profile's, 4000 kHz)")
    parser.add_argument("--time-rate", type=float, default=1.0, metavar="X",
                        help="while the core runs, let the modelled clock run X times faster "
                        "than wall time (default 1: real time). For tests that wait through "
                        "long flash operations; modelled figures are then not a real target's")
    parser.add_argument("--hop-socket", metavar="PATH",
                        help="network profiles: UNIX socket where a GDB proxy "
                        "(qspi_gdb.sim.nethop) reports the packets it forwards")
    parser.add_argument("--locked", nargs="?", const="all", metavar="CORES",
                        help="start with access-port protection (APPROTECT) on, as a chip whose "
                        "firmware enabled it: all (default), application or network (nRF5340; "
                        "comma-separated)")
    parser.add_argument("--network-core", choices=("off", "running"), default="off",
                        help="nRF5340: the network core starts held in Force-OFF (off, the reset "
                        "value) or released, as a DK's application firmware leaves it (running)")
    parser.add_argument("--serial", metavar="SN",
                        help="serial number as a virtual probe (default SIM<pid>); listed by "
                        "'qspi-gdb probes' and chosen with --dev-id")
    parser.add_argument("--no-register", dest="register", action="store_false",
                        help="do not announce this board as a virtual probe (qspi-gdb's own "
                        "boards for one command)")
    parser.add_argument("--console", metavar="FILE",
                        help="write what the board's UARTE0 transmits (an application's "
                        "console) to FILE, created or truncated; flushed at each line end")
    parser.add_argument("--fault", metavar="KIND:UNIT=N[:ARG]", action="append", default=[],
                        help="inject a fault when a counter reaches N (or a seeded point in "
                        "LO-HI); repeatable. Kinds: " + ", ".join(KINDS) + "; units: "
                        + ", ".join(f"{u} ({what})" for u, what in UNITS.items()))
    parser.add_argument("--fault-seed", type=int, default=0, metavar="N",
                        help="seed for everything a fault draws (default 0)")
    parser.add_argument("--fault-log", metavar="FILE",
                        help="write the faults and the counters when they fired as JSON to FILE "
                        "(rewritten at every fault and at exit)")
    return parser


def fault_plan(args: argparse.Namespace) -> FaultPlan:
    """--fault / --fault-seed / --fault-log as a plan; a bad spec is one line, exit 2."""
    try:
        plan = FaultPlan(args.fault, seed=args.fault_seed)
    except FaultSpecError as exc:
        raise UsageError(str(exc)) from None
    if args.fault_log:
        log_path = args.fault_log

        def write_log() -> None:
            tmp = f"{log_path}.tmp"
            with open(tmp, "w") as f:
                json.dump(plan.report(), f)
            os.replace(tmp, log_path)

        try:
            write_log()
        except OSError as exc:
            raise UsageError(f"--fault-log {log_path}: {exc.strerror or exc}") from exc
        plan.after_fire = write_log
    return plan


CORES = {"application": ("application",), "app": ("application",),
         "network": ("network",), "net": ("network",)}


def locked_cores(text: str | None, chip: str) -> tuple[str, ...]:
    """--locked CORES: the protected domains of the chip ("all": every core it has)."""
    if not text:
        return ()
    every = ("application", "network") if chip == "nrf5340" else ("application",)
    cores: list[str] = []
    for word in text.split(","):
        word = word.strip().lower()
        if word == "all":
            cores += every
        elif word in CORES and set(CORES[word]) <= set(every):
            cores += CORES[word]
        else:
            raise UsageError(f"--locked {text}: cores of the {chip} are {', '.join(every)} "
                             "(or all)")
    return tuple(dict.fromkeys(cores))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    logging_setup.configure(args.verbose)
    try:
        return run(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except QspiGdbError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code


def run(args: argparse.Namespace) -> int:
    from qspi_gdb.sim.board import (  # the CPU side: unicorn is imported here
        BOARDS,
        Board,
    )
    from qspi_gdb.sim.wire import DebugWire, RemoteBitbangServer

    if args.board not in BOARDS:
        raise UsageError(f"unknown virtual board {args.board!r} (known: {', '.join(BOARDS)})")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: not a TCP port")
    profile = get_profile(args.probe_profile)
    if args.adapter_khz is not None:
        if args.adapter_khz <= 0:
            raise UsageError("--adapter-khz must be > 0")
        profile = replace(profile, adapter_hz=args.adapter_khz * 1000.0)
    try:
        check_rate(args.time_rate)
    except ValueError as exc:
        raise UsageError(f"--time-rate {args.time_rate:g}: {exc}") from None
    if args.hop_socket and not profile.network_rtt_s:
        raise UsageError(f"--hop-socket needs a network profile (remote-*), not {profile.name}")
    if args.sim_image and os.path.isdir(args.sim_image):
        raise UsageError(f"--sim-image {args.sim_image}: is a directory (name a file)")
    chip = BOARDS[args.board].chip
    locked = locked_cores(args.locked, chip)
    if args.network_core == "running" and chip != "nrf5340":
        raise UsageError(f"--network-core: {args.board} ({chip}) has no network core")
    faults = fault_plan(args)
    console = None
    if args.console:
        try:
            console = open(args.console, "wb")  # closed after the board
        except OSError as exc:
            raise UsageError(f"--console {args.console}: {exc.strerror or exc}") from exc
    try:
        board = Board(args.board, sim_image=args.sim_image, locked=locked,
                      network_running=args.network_core == "running", console=console,
                      faults=faults)
    except (OSError, ValueError) as exc:
        if console is not None:
            console.close()
        if not args.sim_image:
            raise
        # The flash file cannot be created, or holds another chip's size: bad input, one line.
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"--sim-image {args.sim_image}: {reason}") from exc
    # SIGINT/SIGTERM end serving; the handlers stay until the image is flushed, since a
    # terminal or `qspi-gdb sim` may deliver the same signal twice (group and forwarded)
    stop: list = []

    def on_signal(*_) -> None:
        if not stop:
            raise KeyboardInterrupt  # not serving yet
        stop[0]()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        wire = DebugWire(board, profile=profile)
        try:
            server = RemoteBitbangServer(wire, port=args.port, socket_path=args.socket,
                                         hop_socket_path=args.hop_socket,
                                         time_rate=args.time_rate)
        except OSError as exc:
            raise UsageError(f"cannot listen on {args.socket or args.port}: {exc}") from exc
        registration = None
        try:
            stop.append(server.stop)  # before the endpoint is out: its reader may signal at once
            serial = args.serial or default_serial()
            about = {"remote_bitbang": server.endpoint, "board": args.board,
                     "sim_image": args.sim_image, "serial": serial,
                     "adapter_khz": profile.adapter_hz / 1000.0, "probe_profile": profile.name,
                     "hop_socket": args.hop_socket, "locked": list(locked),
                     "network_core": args.network_core if chip == "nrf5340" else None}
            if args.register:
                try:
                    registration = Registration(serial, {**about, "chip": chip})
                except OSError as exc:
                    raise UsageError(f"cannot register the virtual probe: {exc}") from exc
            endpoint = f"remote_bitbang {server.endpoint}"
            if args.json:
                print(json.dumps(about), flush=True)
            else:
                print(endpoint, flush=True)
            log.info("virtual board serving", board=args.board, endpoint=server.endpoint)
            server.serve_forever()
        finally:
            if registration is not None:
                registration.close()
            server.close()
    finally:
        try:
            board.close()  # flushes the flash image and the console
            if console is not None:
                console.close()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    stats = {"modelled_s": board.clock.now, **dict(board.stats.items()),
             "protection": board.protection.as_dict()}
    if board.network is not None:
        stats["network_core"] = board.network.as_dict()
    if faults:
        stats["faults"] = faults.report()
    if faults.after_fire is not None:
        faults.after_fire()  # the final counters
    if args.json:
        print(json.dumps({"board": args.board, "stats": stats}, default=str), flush=True)
    else:
        log.info("virtual board stopped", board=args.board, **{
            k: v for k, v in stats.items() if isinstance(v, (int, float))})
    sys.stdout.flush()
    return 0
