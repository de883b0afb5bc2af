"""Open the way to a target: (virtual board process) -> (OpenOCD) -> gdb-multiarch -> GdbLink.

Which processes are started depends on the options:
- `gdb_server` HOST:PORT: none but GDB; only standard GDB remote operations.
- a virtual board: its process (`python -m qspi_gdb.sim`) on a private UNIX socket, then
  OpenOCD with interface/sim.cfg + target/<chip>.cfg.
- a real board: OpenOCD with board/<board>.cfg (on-board J-Link), or `--interface NAME` +
  target/<chip>.cfg over SWD, or the user's `--openocd-config` files.
Options that cannot work are refused before anything starts; then the target is locked (one
qspi-gdb per flash file or probe, `locks`). Everything started is stopped when the context
ends, however it ends, and GDB's waits fail at once when OpenOCD or the board process ends.
"""

from __future__ import annotations

import os
import signal
import socket
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import Iterator, Sequence

from qspi_gdb import log
from qspi_gdb.errors import UsageError
from qspi_gdb.transport.gdb_link import ConnectError, GdbLink
from qspi_gdb.transport.gdbmi import GdbMi
from qspi_gdb.transport.locks import (
    TargetLock,
    board_file_lock,
    config_lock,
    probe_lock,
)
from qspi_gdb.transport.openocd import OpenOcd, interface_config, tcl_word, user_config
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
    sim_args: Sequence[str] = ()
    adapter_khz: int = 4000
    serial: str | None = None  # the probe's serial number (OpenOCD `adapter serial`)
    usb_location: str | None = None  # the probe's USB path (OpenOCD `adapter usb location`)
    lock_wait_s: float | None = None  # wait this long for a target in use (None: refuse)
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
    """HOST:PORT of a GDB server: well formed, and the host name resolves."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--gdb-server {text!r}: expected HOST:PORT, e.g. localhost:2331")
    try:
        socket.getaddrinfo(host.strip("[]"), int(port), type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise UsageError(f"--gdb-server {text}: cannot resolve host {host!r} ({reason})") from None
    return text


def checked_options(options: TargetOptions) -> TargetOptions:
    """Refuse, before anything starts, what cannot work; make the files handed to processes
    that run in temporary directories (OpenOCD) absolute."""
    started_board = options.virtual and not options.openocd_config
    if started_board:
        for option, value in (("--interface", options.interface), ("--serial", options.serial),
                              ("--usb-location", options.usb_location)):
            if value:
                raise UsageError(f"{option} {value}: {options.board} is a virtual board (no "
                                 f"probe to choose); drop {option}")
    sim_image = options.sim_image
    if sim_image:
        if not started_board:
            why = "is not used with --openocd-config" if options.virtual else \
                f"needs a virtual board (sim-*), not {options.board}"
            raise UsageError(f"--sim-image {why}")
        check_sim_image(sim_image)
        sim_image = os.path.abspath(sim_image)
    configs = [user_config(path) for path in options.openocd_config or ()] or None
    return replace(options, openocd_config=configs, sim_image=sim_image)


def openocd_script(options: TargetOptions, sim: VirtualBoardProcess | None) -> list[tuple[str, str]]:
    """The -f/-c steps for OpenOCD (after our base commands) for these options."""
    serial = [("c", f"adapter serial {tcl_word(options.serial, '--serial')}")] \
        if options.serial else []
    if options.usb_location:  # generic adapter settings: any driver, before `init`
        serial.append(("c", "adapter usb location "
                       f"{tcl_word(options.usb_location, '--usb-location')}"))
    if options.openocd_config:
        return [*(("f", str(path)) for path in options.openocd_config), *serial]
    target = ("f", f"target/{options.chip}.cfg")
    if sim is not None:
        return [*sim.openocd_script(), target]
    if options.interface in (None, "jlink") and options.board in ("nrf52840dk", "nrf5340dk"):
        return [("f", f"board/{options.board}.cfg"), *serial]
    interface = options.interface or "jlink"
    script = [("f", interface_config(interface))]
    if interface != "sim":
        script.append(("c", "transport select swd"))
    script.append(("c", f"adapter speed {options.adapter_khz}"))
    return [*script, *serial, target]


def target_lock(options: TargetOptions) -> TargetLock | None:
    """The lock of what these options reach: the virtual board's flash file, the probe (by
    serial, else by interface), or the --openocd-config files; none for a GDB server someone
    else runs or a virtual board without a flash file."""
    if options.gdb_server:
        return None
    if options.openocd_config:
        return config_lock(list(options.openocd_config))
    if options.virtual:
        return board_file_lock(options.sim_image) if options.sim_image else None
    return probe_lock(options.interface or "jlink", options.serial)


@contextmanager
def open_session(options: TargetOptions, *, elf: str | os.PathLike | None = None) -> Iterator[Session]:
    """Start what the options need, connect GDB, halt the core; stop everything at the end."""
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
            options = checked_options(options)
            start_board = options.virtual and not options.openocd_config
            script = None if start_board else openocd_script(options, None)  # checks names
            lock = target_lock(options)
            if lock is not None:
                lock.acquire(options.lock_wait_s)
                stack.callback(lock.release)  # last out: after every process has ended
            if start_board:
                sim = VirtualBoardProcess(options.board, image=options.sim_image,
                                          extra_args=options.sim_args)
                stack.callback(sim.close)
                sim.start()
                script = openocd_script(options, sim)
            openocd = OpenOcd(script)
            stack.callback(openocd.close)
            openocd.start()
            address = openocd.gdb_address
            monitor = True
        gdb = GdbMi(default_timeout_s=30.0)
        stack.callback(gdb.close)
        gdb.start()
        # A process behind GDB that ends fails GDB's waits at once, naming it; the board
        # first: when it dies, OpenOCD may follow.
        if sim is not None:
            gdb.watch("the virtual board", sim.exit_status, sim.error_message)
        if openocd is not None:
            server = openocd
            # its own error lines explain an exit of its own, not a signal
            gdb.watch("OpenOCD", server.exit_status,
                      lambda: server.error_summary(max_lines=2, fallback=False)
                      if (server.exit_status() or 0) > 0 else "")
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
