"""Open the way to a target: (virtual board process) -> (OpenOCD) -> gdb-multiarch -> GdbLink.

Which processes are started depends on the options:
- `gdb_server` HOST:PORT: none but GDB; only standard GDB remote operations.
- a virtual board: its process (`python -m qspi_gdb.sim`) on a private UNIX socket, then
  OpenOCD with interface/sim.cfg + target/<chip>.cfg.
- a real board: OpenOCD with board/<board>.cfg (on-board J-Link), or `--interface NAME` +
  target/<chip>.cfg over SWD, or the user's `--openocd-config` files.
Everything started is stopped when the context ends, however it ends.
"""

from __future__ import annotations

import os
import signal
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

from qspi_gdb import log
from qspi_gdb.errors import UsageError
from qspi_gdb.transport.gdb_link import ConnectError, GdbLink
from qspi_gdb.transport.gdbmi import GdbMi
from qspi_gdb.transport.openocd import OpenOcd, interface_config
from qspi_gdb.transport.virtual_board import VirtualBoardProcess, check_sim_image

_log = log.get_logger(__name__)


@dataclass(frozen=True)
class TargetOptions:
    board: str  # board name (for messages, OpenOCD's board/<name>.cfg, the virtual board)
    chip: str  # "nrf52840" | "nrf5340": OpenOCD's target/<chip>.cfg
    virtual: bool  # start the board's process (`python -m qspi_gdb.sim --board NAME`)
    gdb_server: str | None = None
    interface: str | None = None
    openocd_config: Sequence[str] | None = None
    sim_image: str | os.PathLike | None = None
    dev_id: str | None = None  # probe serial number: OpenOCD `adapter serial` (real probes only)
    usb_location: str | None = None  # probe USB path: OpenOCD `adapter usb location`
    sim_args: Sequence[str] = ()
    adapter_khz: int = 4000
    # A wait on a running loader: deadline = max(floor, scale * the target-time timeout).
    wait_scale: float = 2.0
    wait_floor_s: float = 5.0


@dataclass
class Session:
    link: GdbLink
    openocd: OpenOcd | None
    board_process: VirtualBoardProcess | None
    address: str


def check_gdb_server(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--gdb-server {text!r}: expected HOST:PORT, e.g. localhost:2331")
    return text


def check_probe_selection(options: TargetOptions) -> None:
    """--dev-id / --usb-location pick one of several real probes; there is no probe to pick on
    a virtual board or behind a GDB server someone else runs."""
    for option, value in (("--dev-id", options.dev_id), ("--usb-location", options.usb_location)):
        if value is None:
            continue
        if not value or any(c.isspace() or c in '{}[]"$;\\' for c in value):  # Tcl specials
            raise UsageError(f"{option} {value!r}: expected a probe serial number or USB path")
        if options.gdb_server:
            raise UsageError(f"{option} selects the probe of an OpenOCD we start; with "
                             "--gdb-server the server chooses its probe")
        if options.virtual and not options.openocd_config:
            raise UsageError(f"{option} selects a real probe; the virtual board "
                             f"{options.board} has none")


def _probe_selection(options: TargetOptions) -> list[tuple[str, str]]:
    # generic adapter settings: any driver, any time before `init`
    steps = [("c", f"adapter serial {options.dev_id}")] if options.dev_id else []
    if options.usb_location:
        steps.append(("c", f"adapter usb location {options.usb_location}"))
    return steps


def openocd_script(options: TargetOptions, sim: VirtualBoardProcess | None) -> list[tuple[str, str]]:
    """The -f/-c steps for OpenOCD (after our base commands) for these options."""
    serial = _probe_selection(options)
    if options.openocd_config:
        return [*(("f", str(path)) for path in options.openocd_config), *serial]
    target = ("f", f"target/{options.chip}.cfg")
    if sim is not None:
        return [*sim.openocd_script(), target]
    if options.interface in (None, "jlink") and options.board in ("nrf52840dk", "nrf5340dk"):
        return [("f", f"board/{options.board}.cfg"), *serial]
    interface = options.interface or "jlink"
    script = [("f", interface_config(interface)), *serial]
    if interface != "sim":
        script.append(("c", "transport select swd"))
    script.append(("c", f"adapter speed {options.adapter_khz}"))
    return [*script, target]


@contextmanager
def open_session(options: TargetOptions, *, elf: str | os.PathLike | None = None) -> Iterator[Session]:
    """Start what the options need, connect GDB, halt the core; stop everything at the end."""
    check_probe_selection(options)
    stack = ExitStack()
    try:
        openocd: OpenOcd | None = None
        sim: VirtualBoardProcess | None = None
        if options.gdb_server:
            address = check_gdb_server(options.gdb_server)
            monitor = False
            if options.sim_image:
                _log.warning("--sim-image is ignored with --gdb-server (the server's board "
                             "keeps its own flash)")
        else:
            if options.virtual and not options.openocd_config:
                if options.sim_image:
                    check_sim_image(options.sim_image)
                sim = VirtualBoardProcess(options.board, image=options.sim_image,
                                          extra_args=options.sim_args)
                stack.callback(sim.close)
                sim.start()
            elif options.sim_image:
                raise UsageError(f"--sim-image needs a virtual board (sim-*), not {options.board}")
            openocd = OpenOcd(openocd_script(options, sim))
            stack.callback(openocd.close)
            openocd.start()
            address = openocd.gdb_address
            monitor = True
        gdb = GdbMi(default_timeout_s=30.0)
        stack.callback(gdb.close)
        gdb.start()
        link = GdbLink(gdb, monitor=monitor, wait_scale=options.wait_scale,
                       wait_floor_s=options.wait_floor_s)
        try:
            link.connect(address, elf=elf)
        except ConnectError as exc:
            # OpenOCD's log explains connection/target failures (and only those).
            details = openocd.error_summary(fallback=False) if openocd is not None else ""
            if details:
                raise ConnectError(f"{exc} (OpenOCD: {details})") from exc
            raise
        yield Session(link=link, openocd=openocd, board_process=sim, address=address)
        link.disconnect()  # only after success: on errors the processes are simply ended
    finally:
        # A second Ctrl-C must not cut the teardown short and leave processes behind.
        with _DeferInterrupts():
            stack.close()


class _DeferInterrupts:
    def __enter__(self):
        try:
            self._old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        except ValueError:  # not the main thread
            self._old = None
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


@contextmanager
def open_link(options: TargetOptions, *, elf: str | os.PathLike | None = None) -> Iterator[GdbLink]:
    """open_session, yielding only the TargetLink (what the flash jobs need)."""
    with open_session(options, elf=elf) as session:
        yield session.link
