"""How a command reaches its target, decided before anything starts: the options checked, the
probe chosen, the OpenOCD script, the speed and the lock.

- `gdb_server` HOST:PORT: nothing is started but GDB; only standard GDB remote operations.
- a virtual board: its own process (`python -m qspi_gdb.sim`) on a private UNIX socket, or, with
  `--dev-id SERIAL` / `--interface sim`, a virtual board already running as a virtual probe
  (`qspi-gdb sim`); OpenOCD with interface/sim.cfg + target/<chip>.cfg.
- a real board: OpenOCD with board/<board>.cfg (on-board J-Link), or `--interface NAME` +
  target/<chip>.cfg over the probe's SWD transport, or the user's `--openocd-config` files.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, replace
from typing import Sequence

from qspi_gdb import log
from qspi_gdb.errors import UsageError
from qspi_gdb.transport import probes
from qspi_gdb.transport.locks import (
    TargetLock,
    board_file_lock,
    config_lock,
    probe_lock,
)
from qspi_gdb.transport.openocd import (
    INTERFACES,
    interface_config,
    interface_transport,
    tcl_word,
    user_config,
)
from qspi_gdb.transport.probes import Probe
from qspi_gdb.transport.virtual_board import check_sim_image

_log = log.get_logger(__name__)

DEFAULT_SPEED_KHZ = 4000
CHIP_NAMES = {"nrf52840": "nRF52840", "nrf5340": "nRF5340"}


@dataclass(frozen=True)
class TargetOptions:
    board: str  # board name (for messages, OpenOCD's board/<name>.cfg, the virtual board)
    chip: str  # "nrf52840" | "nrf5340": OpenOCD's target/<chip>.cfg
    virtual: bool  # a virtual board (`python -m qspi_gdb.sim --board NAME`)
    gdb_server: str | None = None
    interface: str | None = None
    openocd_config: Sequence[str] | None = None
    sim_image: str | os.PathLike | None = None
    sim_locked: Sequence[str] = ()  # a virtual board of our own starts with these cores protected
    sim_args: Sequence[str] = ()  # more arguments for a virtual board of our own (tests)
    adapter_khz: int | None = None  # SWD clock (`adapter speed`); None: DEFAULT_SPEED_KHZ
    serial: str | None = None  # the probe's serial number (OpenOCD `adapter serial`)
    usb_location: str | None = None  # the probe's USB path (OpenOCD `adapter usb location`)
    lock_wait_s: float | None = None  # wait this long for a target in use (None: refuse)
    # A wait on a running loader: deadline = max(floor, scale * the target-time timeout).
    wait_scale: float = 2.0
    wait_floor_s: float = 5.0


@dataclass(frozen=True)
class Route:
    """What the options decided: start a board of our own or not, the probe used (None: OpenOCD
    picks, or there is none), the SWD clock and how the target is locked."""

    options: TargetOptions
    start_board: bool
    probe: Probe | None
    speed_khz: float | None
    interface: str | None

    def openocd_script(self, sim_steps: Sequence[tuple[str, str]] = ()) -> list[tuple[str, str]]:
        """The -f/-c steps for OpenOCD (after our base commands); sim_steps reach a board of
        our own."""
        options = self.options
        serial = [("c", f"adapter serial {tcl_word(self.serial, '--dev-id')}")] \
            if self.serial and self.interface != "sim" else []
        if options.usb_location:  # generic adapter settings: any driver, before `init`
            serial.append(("c", "adapter usb location "
                           f"{tcl_word(options.usb_location, '--usb-location')}"))
        target = ("f", f"target/{options.chip}.cfg")
        speed = [("c", f"adapter speed {self.speed_khz:g}")] if self.speed_khz else []
        if options.openocd_config:
            return [*(("f", str(path)) for path in options.openocd_config), *serial, *speed]
        if self.start_board:
            return [*sim_steps, target]
        if self.interface == "sim":  # a running virtual board
            return [*_virtual_probe_steps(self.probe), *speed, target]
        if options.interface in (None, "jlink") and options.board in ("nrf52840dk", "nrf5340dk"):
            return [("f", f"board/{options.board}.cfg"), *serial, *speed]
        interface = self.interface or "jlink"
        script = [("f", interface_config(interface))]
        transport = interface_transport(interface)
        if transport:
            script.append(("c", f"transport select {transport}"))
        return [*script, *speed, *serial, target]

    @property
    def serial(self) -> str | None:
        return self.options.serial or (self.probe.serial if self.probe else None)

    def lock(self) -> TargetLock | None:
        """The lock of what this route reaches: the virtual board's flash file, the probe (by
        serial, else by interface), or the --openocd-config files; none for a GDB server
        someone else runs or a board of our own without a flash file."""
        options = self.options
        if options.gdb_server:
            return None
        if options.openocd_config:
            return config_lock(list(options.openocd_config))
        if self.start_board:
            return board_file_lock(options.sim_image) if options.sim_image else None
        return probe_lock(self.interface or "jlink", self.serial)

    def sim_arguments(self) -> list[str]:
        """Arguments for a virtual board of our own."""
        options = self.options
        args = [*options.sim_args, "--adapter-khz", f"{self.speed_khz:g}"]
        if options.sim_locked:
            args += ["--locked", ",".join(options.sim_locked)]
        return args

    def describe_probe(self) -> dict | None:
        """The probe for the report: interface, serial, speed."""
        if self.options.gdb_server:
            return None
        return {"interface": self.interface, "serial": self.serial,
                "speed_khz": self.speed_khz}


def _virtual_probe_steps(probe: Probe) -> list[tuple[str, str]]:
    endpoint = probe.endpoint or ""
    if endpoint.startswith("unix:"):
        path = tcl_word(endpoint[len("unix:"):], "virtual board socket")
        return [("c", f"set SIM_SOCKET {path}"), ("f", "interface/sim.cfg")]
    port = endpoint.rpartition(":")[2]
    if not port.isdigit():
        raise UsageError(f"virtual probe {probe.serial}: unusable endpoint {endpoint!r}")
    return [("c", f"set SIM_PORT {port}"), ("f", "interface/sim.cfg")]


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


def check_probe_selection(options: TargetOptions) -> None:
    """--dev-id / --usb-location pick one of several probes (OpenOCD quotes them as one Tcl
    word); there is no probe to pick behind a GDB server someone else runs."""
    if options.gdb_server and options.interface:
        raise UsageError(f"--interface {options.interface} picks the probe of an OpenOCD "
                         "qspi-gdb starts; with --gdb-server the server chooses its probe")
    for option, value in (("--dev-id", options.serial), ("--usb-location", options.usb_location)):
        if value is None:
            continue
        if not value:
            raise UsageError(f"{option} {value!r}: expected a probe serial number or USB path")
        if options.gdb_server:
            raise UsageError(f"{option} selects the probe of an OpenOCD qspi-gdb starts; with "
                             "--gdb-server the server chooses its probe")


def checked_options(options: TargetOptions) -> TargetOptions:
    """Refuse, before anything starts, what cannot work; make the files handed to processes
    that run in temporary directories (OpenOCD) absolute."""
    check_probe_selection(options)
    if options.adapter_khz is not None and not 0 < options.adapter_khz <= 100_000:
        raise UsageError(f"--speed {options.adapter_khz}: expected kHz between 1 and 100000")
    running_board = options.virtual and not options.openocd_config and (
        options.serial or options.interface == "sim")
    started_board = options.virtual and not options.openocd_config and not running_board
    if options.virtual and not options.openocd_config and options.interface not in (None, "sim"):
        raise UsageError(f"--interface {options.interface}: {options.board} is a virtual board "
                         "(no probe to choose); drop --interface, or pass --interface sim to "
                         "use a virtual board started with `qspi-gdb sim`")
    if options.virtual and not options.openocd_config and options.usb_location:
        raise UsageError(f"--usb-location {options.usb_location}: {options.board} is a virtual "
                         "board (no probe to choose); drop --usb-location")
    if not options.virtual and options.interface == "sim":
        raise UsageError(f"--interface sim reaches a virtual board, not {options.board}")
    if options.sim_args and not started_board:
        raise UsageError("--sim-fault needs a virtual board of qspi-gdb's own; a board started "
                         "with `qspi-gdb sim` takes `--fault` itself")
    if options.sim_locked and not started_board:
        raise UsageError("--sim-locked starts a virtual board of qspi-gdb's own locked; a board "
                         "started with `qspi-gdb sim` takes `--locked` itself")
    sim_image = options.sim_image
    if sim_image:
        if not started_board:
            why = "is not used with --openocd-config" if options.virtual and \
                options.openocd_config else (
                    "belongs to the running virtual board (it was given when it started)"
                    if running_board else f"needs a virtual board (sim-*), not {options.board}")
            raise UsageError(f"--sim-image {why}")
        check_sim_image(sim_image)
        sim_image = os.path.abspath(sim_image)
    configs = [user_config(path) for path in options.openocd_config or ()] or None
    return replace(options, openocd_config=configs, sim_image=sim_image)


def plan_route(options: TargetOptions, *, choose_probe: bool = True) -> Route:
    """The route for checked options; the probe is chosen here (refused when several fit and
    none is named). choose_probe=False: the caller has locked the named probe first."""
    if options.gdb_server:
        return Route(options, False, None, None, None)
    if options.openocd_config:  # the user's configs set the speed unless --speed is given
        return Route(options, False, None, options.adapter_khz, None)
    speed = _khz(options.adapter_khz or DEFAULT_SPEED_KHZ)
    if options.virtual and not (options.serial or options.interface == "sim"):
        return Route(options, True, None, speed, "sim")
    interface = "sim" if options.virtual else options.interface or "jlink"
    probe = _choose(options, interface) if choose_probe else None
    if interface == "sim" and probe is not None:
        speed = _virtual_speed(options, probe)
    return Route(options, False, probe, speed, interface)


def _choose(options: TargetOptions, interface: str) -> Probe | None:
    if interface == "sim":
        running = probes.virtual_probes()
        if options.serial and options.serial not in [p.serial for p in running]:
            raise UsageError(f"--dev-id {options.serial}: {options.board} is a virtual board and "
                             "no virtual board with this serial number runs (running: "
                             f"{probes.listing(running)}); start one with `qspi-gdb sim --board "
                             f"{options.board} --serial {options.serial}`, or drop --dev-id")
        probe = probes.choose("sim", options.serial, running)
        if probe is not None and probe.board != options.board:
            raise UsageError(f"--dev-id {probe.serial} is the virtual board {probe.board}, not "
                             f"{options.board}: pass --board {probe.board}")
        return probe
    if interface not in INTERFACES:
        return None  # a probe we have no USB description of: OpenOCD finds it
    found, usb_listed = probes.attached()
    return probes.choose(interface, options.serial, found, usb_listed=usb_listed)


def _virtual_speed(options: TargetOptions, probe: Probe) -> float:
    """A running virtual board models the clock it was started with."""
    khz = _khz(probe.adapter_khz or DEFAULT_SPEED_KHZ)
    if options.adapter_khz is not None and options.adapter_khz != khz:
        _log.warning(f"--speed {options.adapter_khz}: the virtual board {probe.serial} models "
                     f"{khz:g} kHz (start it with `qspi-gdb sim --adapter-khz N` to change it)")
    return khz


def _khz(value: float) -> float | int:
    """kHz as a whole number when it is one (the report's 4000, not 4000.0)."""
    return int(value) if float(value).is_integer() else float(value)


def protected_message(options: TargetOptions, cores: Sequence[str]) -> str:
    """One line: the chip is protected, how to unlock it, and what that erases."""
    chip = CHIP_NAMES.get(options.chip, options.chip)
    which = " and ".join(dict.fromkeys(cores)) or "application"
    select = f" --dev-id {options.serial}" if options.serial else ""
    return (f"{options.board}: the {chip} is protected (APPROTECT keeps the debugger from its "
            f"{which} core); unlock it with `qspi-gdb recover --board {options.board}{select} "
            "--yes-erase-internal-flash`, which erases the chip's internal flash, UICR and RAM "
            "but not the external QSPI flash")
