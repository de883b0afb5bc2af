"""labgrid: `QspiGdbDriver`, a `BootstrapProtocol` driver (`labgrid-client bootstrap FILE`,
`target.get_driver("QspiGdbDriver").load(FILE)`) with `flash_ext(...)` as its own step, and
`QspiGdbVirtualBoard`, a resource for a qspi-gdb virtual board that farms and tests export.

The driver binds to the probe a farm exports (`USBDebugger`, `NetworkUSBDebugger`) or to a
virtual board, and runs `qspi-gdb flash ... --json` where the probe is: on the exporter's host
through labgrid's `wrap_command` (ssh), files copied there with `ManagedFile`. The debug wire
never crosses the network. labgrid's network resources always go through ssh, even for this
host; when the exporter runs here, the driver runs the tool directly instead.

Needs the `labgrid` extra (labgrid >= 25, whose coordinator speaks gRPC) on the client and
qspi-gdb on the exporter's host. The env file imports this module by name:
`imports: [qspi_gdb.integrations.labgrid_driver]` (README "labgrid").
"""

from __future__ import annotations

import json
import os
import socket
import subprocess

import attr
from labgrid.driver.common import Driver
from labgrid.factory import target_factory
from labgrid.protocol import BootstrapProtocol
from labgrid.resource.common import NetworkResource
from labgrid.step import step
from labgrid.util.helper import processwrapper
from labgrid.util.managedfile import ManagedFile

from qspi_gdb.errors import (
    EXIT_TARGET,
    EXIT_USAGE,
    EXIT_VERIFY,
    QspiGdbError,
    TargetError,
    UsageError,
    VerifyError,
)
from qspi_gdb.flash.result import SCHEMA
from qspi_gdb.integrations.request import FlashRequest

_optional_str = attr.validators.optional(attr.validators.instance_of(str))
_ERRORS = {EXIT_USAGE: UsageError, EXIT_TARGET: TargetError, EXIT_VERIFY: VerifyError}


@target_factory.reg_resource
@attr.s(eq=False)
class QspiGdbVirtualBoard(NetworkResource):
    """A qspi-gdb virtual board (`sim-nrf5340dk`, ...) on `host`, its flash kept in the file
    `sim_image` there (optional). Exported as a plain resource entry: every key the exporter
    config gives is one of these fields."""

    host = attr.ib(default="localhost", validator=attr.validators.instance_of(str))
    board = attr.ib(default="sim-nrf5340dk", validator=attr.validators.instance_of(str))
    sim_image = attr.ib(default=None, validator=_optional_str)


def is_this_host(host: str) -> bool:
    """True when `host` names this machine (then no ssh is needed)."""
    if host in ("localhost", socket.gethostname(), socket.getfqdn()):
        return True
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addresses) and all(a.startswith("127.") or a == "::1" for a in addresses)


@target_factory.reg_driver
@attr.s(eq=False)
class QspiGdbDriver(Driver, BootstrapProtocol):
    """Writes images into the external QSPI flash with qspi-gdb, where the probe is.

    board: qspi-gdb preset (nrf5340dk, ...; a virtual board's resource names its own).
    address: the .bin address `load()` uses (XIP address or flash offset).
    config: external memory configuration (nrfutil JSON, ...), a path on this machine.
    probe: OpenOCD interface (jlink, cmsis-dap, ...). serial: the probe's serial number (by
    default a USB resource's path selects it). reset, verify: what `load()` does.
    tool: the qspi-gdb command on the exporter's host. extra_args: more `qspi-gdb flash` options.
    """

    bindings = {"interface": {"USBDebugger", "NetworkUSBDebugger", "QspiGdbVirtualBoard"}}

    board = attr.ib(default=None, validator=_optional_str)
    address = attr.ib(default=None, validator=_optional_str)
    config = attr.ib(default=None, validator=_optional_str)
    probe = attr.ib(default=None, validator=_optional_str)
    serial = attr.ib(default=None, validator=_optional_str)
    reset = attr.ib(default=True, validator=attr.validators.instance_of(bool))
    verify = attr.ib(default=True, validator=attr.validators.instance_of(bool))
    tool = attr.ib(default=None, validator=_optional_str)
    extra_args = attr.ib(default=attr.Factory(list), validator=attr.validators.instance_of(list))

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        env = self.target.env if self.target else None
        if env is not None:
            self.tool = self.tool or env.config.get_tool("qspi-gdb")
            if self.config:
                self.config = env.config.resolve_path(self.config)
        self.tool = self.tool or "qspi-gdb"

    @Driver.check_active
    @step(args=["filename"])
    def load(self, filename: str) -> dict:
        """BootstrapProtocol: write `filename` with the driver's settings."""
        return self.flash_ext(filename)

    @Driver.check_active
    @step(args=["filename", "address", "erase"], result=True)
    def flash_ext(self, filename: str, address: str | None = None, erase: bool = False,
                  verify: bool | None = None, reset: bool | None = None) -> dict:
        """Write an image into the external flash; returns the tool's `--json` result object
        (verified unless verify=False) and raises qspi-gdb's typed errors."""
        return self._run(self.command(filename, address=address, erase=erase, verify=verify,
                                      reset=reset))

    def command(self, filename: str, *, address: str | None = None, erase: bool = False,
                verify: bool | None = None, reset: bool | None = None) -> list[str]:
        """The `qspi-gdb flash` command line as it runs on the exporter's host (files copied
        there first when it is another machine)."""
        virtual = isinstance(self.interface, QspiGdbVirtualBoard)
        request = FlashRequest(
            file=self._on_exporter(filename),
            address=address or self.address,
            board=self.interface.board if virtual else self.board,
            ext_mem_config_file=self._on_exporter(self.config) if self.config else None,
            dev_id=self.serial,
            usb_location=None if virtual or self.serial else getattr(self.interface, "path", None),
            erase=erase,
            reset=self.reset if reset is None else reset,
            verify=self.verify if verify is None else verify,
            interface=self.probe,
            sim_image=self.interface.sim_image if virtual else None,
        )
        return [*request.argv(self.tool), *self.extra_args]

    def _here(self) -> bool:
        if not isinstance(self.interface, NetworkResource):
            return True
        if getattr(self.interface, "extra", None) and self.interface.extra.get("proxy_required"):
            return False
        return is_this_host(self.interface.host)

    def _on_exporter(self, path: str) -> str:
        if self._here():
            return os.path.abspath(path)
        managed = ManagedFile(path, self.interface)
        managed.sync_to_resource()
        return managed.get_remote_path()

    def _run(self, argv: list[str]) -> dict:
        command = argv if self._here() else self.interface.wrap_command(argv)
        try:
            output = processwrapper.check_output(command, print_on_silent_log=True)
            code = 0
        except subprocess.CalledProcessError as exc:
            output, code = exc.output or b"", exc.returncode
        result = _result_object(output)
        if code == 0 and result is not None and result.get("ok"):
            return result
        message = (result or {}).get("error", {}) or {}
        text = message.get("message") or f"{argv[0]} exited with status {code}"
        error = _ERRORS.get(code, QspiGdbError)(text)
        error.result = result
        raise error


def _result_object(output: bytes) -> dict | None:
    """The `--json` object among the tool's output (a PTY merges stdout, logs and bars)."""
    for line in reversed(output.decode(errors="replace").splitlines()):
        start = line.find("{")
        if start >= 0 and SCHEMA in line:
            try:
                return json.loads(line[start:])
            except ValueError:
                continue
    return None
