"""Open the way to a target: (virtual board process) -> (OpenOCD) -> gdb-multiarch -> GdbLink,
or, for work below the core (recover), (virtual board process) -> a one-shot OpenOCD.

What is started depends on the route (`qspi_gdb.transport.route`): options that cannot work are
refused and the probe is chosen before anything starts; then the target is locked (one
qspi-gdb per flash file or probe, `locks`). Everything started is stopped when the context
ends, however it ends, and GDB's waits fail at once when OpenOCD or the board process ends. A
chip whose access-port protection keeps OpenOCD from its core is reported as such (typed
`ChipProtected`, saying how to unlock it), not in OpenOCD's words.
"""

from __future__ import annotations

import os
import signal
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

from qspi_gdb import log
from qspi_gdb.errors import ChipProtected, UsageError
from qspi_gdb.rundir import process_alive
from qspi_gdb.transport import dap
from qspi_gdb.transport.gdb_link import ConnectError, GdbLink
from qspi_gdb.transport.gdbmi import GdbMi
from qspi_gdb.transport.openocd import INTERFACES, OpenOcd
from qspi_gdb.transport.route import (  # noqa: F401 - the session's options, re-exported
    Route,
    TargetOptions,
    check_gdb_server,
    check_probe_selection,
    checked_options,
    plan_route,
    protected_message,
)
from qspi_gdb.transport.virtual_board import VirtualBoardProcess

_log = log.get_logger(__name__)


@dataclass
class Session:
    link: GdbLink
    openocd: OpenOcd | None
    board_process: VirtualBoardProcess | None
    address: str
    route: Route | None = None  # None with --gdb-server


def openocd_script(options: TargetOptions, sim: VirtualBoardProcess | None
                   ) -> list[tuple[str, str]]:
    """The -f/-c steps for OpenOCD (after our base commands) for these options (the probe as
    --dev-id names it; no USB lookup)."""
    route = plan_route(options, choose_probe=False)
    return route.openocd_script(sim.openocd_script() if sim is not None else ())


def _target(options: TargetOptions, stack: ExitStack
            ) -> tuple[Route, list[tuple[str, str]], VirtualBoardProcess | None]:
    """Check the options, choose the probe, take the lock, start a virtual board of our own
    (each undone by `stack`): returns the route, the OpenOCD script and the board's process."""
    options = checked_options(options)
    named_first = bool(options.serial) and not (options.virtual or options.openocd_config)
    if named_first:  # lock the named probe before looking for it
        early = plan_route(options, choose_probe=False).lock()
        if early is not None:
            early.acquire(options.lock_wait_s)
            stack.callback(early.release)
    route = plan_route(options)
    lock = None if named_first else route.lock()
    if lock is not None:
        lock.acquire(options.lock_wait_s)
        stack.callback(lock.release)  # last out: after every process has ended
    sim = None
    if route.start_board:
        sim = VirtualBoardProcess(options.board, image=options.sim_image,
                                  extra_args=route.sim_arguments())
        stack.callback(sim.close)
        sim.start()
    return route, route.openocd_script(sim.openocd_script() if sim else ()), sim


def _refuse_protected(route: Route, openocd: OpenOcd) -> None:
    cores = dap.protected_cores(openocd.stderr_text())
    if cores:
        raise ChipProtected(protected_message(route.options, [core for core, _ in cores]))


@contextmanager
def open_session(options: TargetOptions, *, elf: str | os.PathLike | None = None) -> Iterator[Session]:
    """Start what the options need, connect GDB, halt the core; stop everything at the end."""
    stack = ExitStack()
    try:
        openocd: OpenOcd | None = None
        sim: VirtualBoardProcess | None = None
        route: Route | None = None
        if options.gdb_server:
            check_probe_selection(options)
            address = check_gdb_server(options.gdb_server)
            monitor = False
            if options.sim_image:
                _log.warning("--sim-image is ignored with --gdb-server (the server's board "
                             "keeps its own flash)")
        else:
            route, script, sim = _target(options, stack)
            openocd = OpenOcd(script)
            stack.callback(openocd.close)
            openocd.start()
            _refuse_protected(route, openocd)
            address = openocd.gdb_address
            monitor = True
        gdb = GdbMi(default_timeout_s=30.0)
        stack.callback(gdb.close)
        gdb.start()
        # A process behind GDB that ends fails GDB's waits at once, naming it; the board
        # first: when it dies, OpenOCD may follow.
        if sim is not None:
            gdb.watch("the virtual board", sim.exit_status, sim.error_message)
        elif route is not None and route.probe is not None and route.probe.pid:
            pid = route.probe.pid  # a virtual board someone started: not our child
            gdb.watch(f"the virtual board {route.probe.serial}", lambda: _gone(pid))
        if openocd is not None:
            server = openocd
            # its own error lines explain an exit of its own (an exit status, or the abort()
            # OpenOCD 0.12 calls when its adapter's connection breaks), not a signal we sent
            gdb.watch("OpenOCD", server.exit_status,
                      lambda: server.error_summary(max_lines=2, fallback=False)
                      if (server.exit_status() or 0) > 0 else
                      server.error_summary(max_lines=1, fallback=False)
                      if server.exit_status() == -signal.SIGABRT else "")
        link = GdbLink(gdb, monitor=monitor, wait_scale=options.wait_scale,
                       wait_floor_s=options.wait_floor_s,
                       monitor_reset="OpenOCD reset run (as the --openocd-config files set it)"
                       if options.openocd_config else "sysresetreq")
        stack.callback(link.close)
        try:
            link.connect(address, elf=elf)
        except ConnectError as exc:
            if openocd is not None and route is not None:
                _refuse_protected(route, openocd)
            # OpenOCD's log explains connection/target failures (and only those).
            details = openocd.error_summary(fallback=False) if openocd is not None else ""
            if details:
                raise ConnectError(f"{exc} (OpenOCD: {details})") from exc
            raise
        yield Session(link=link, openocd=openocd, board_process=sim, address=address,
                      route=route)
        link.disconnect()  # only after success: on errors the processes are simply ended
    finally:
        # A second Ctrl-C must not cut the teardown short and leave processes behind.
        with _DeferInterrupts():
            stack.close()


def _gone(pid: int) -> int | None:
    """For a process that is not our child: None while it runs, 0 once it has ended."""
    return None if process_alive(pid) else 0


def run_dap(options: TargetOptions, ops: Sequence[tuple], timeout_s: float
            ) -> tuple[list[dict], Route]:
    """Run DAP operations (`qspi_gdb.transport.dap`) in one OpenOCD run that needs no core:
    returns each operation's answer and the route taken."""
    if options.gdb_server:
        raise UsageError("this works below the core, through an OpenOCD qspi-gdb starts; it "
                         "cannot go through --gdb-server")
    stack = ExitStack()
    try:
        route, script, _sim = _target(options, stack)
        interface = INTERFACES.get(route.interface or "")
        if interface is not None and not interface.dap_access:
            raise UsageError(f"--interface {route.interface} has no access to the debug port's "
                             "access ports (OpenOCD's high-level adapter); use "
                             "--interface stlink-dap")
        if options.openocd_config:  # the user's configs: add our access-port procedures
            script = [*script, ("f", "target/nordic_ctrlap.tcl")]
        text = OpenOcd(script).run_once(dap.commands(ops), timeout_s)
        return dap.results(ops, text), route
    finally:
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
def open_link(options: TargetOptions, *, elf: str | os.PathLike | None = None,
              on_route=None) -> Iterator[GdbLink]:
    """open_session, yielding only the TargetLink (what the flash jobs need); on_route(route)
    is told how the target was reached (for the report)."""
    with open_session(options, elf=elf) as session:
        if on_route is not None:
            on_route(session.route)
        yield session.link
