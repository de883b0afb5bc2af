"""OpenOCD behind the GDB port: Debian's OpenOCD with the project's configs, in its own process
group, bound to 127.0.0.1 on free ports we choose, always ended by `close()` / the context
manager, also on errors and Ctrl-C. Its stderr is kept in a file so error reports can quote it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from qspi_gdb import log
from qspi_gdb.errors import TargetError, UsageError
from qspi_gdb.transport.ports import free_tcp_port, port_accepts
from qspi_gdb.transport.procgroup import exit_text, kill_group, spawn
from qspi_gdb.transport.workdirs import WorkDir

_log = log.get_logger(__name__)

OPENOCD_PROGRAM = "openocd"
_PACKAGE = Path(__file__).resolve().parents[1]


def openocd_cfg_dir() -> Path:
    """The project's OpenOCD configs: inside an installed wheel `qspi_gdb/openocd_cfg`, in a
    checkout or an editable install the repository's top-level `openocd_cfg/`."""
    installed = _PACKAGE / "openocd_cfg"
    return installed if installed.is_dir() else _PACKAGE.parent / "openocd_cfg"


@dataclass(frozen=True)
class Interface:
    """A probe we have a script for: OpenOCD's interface config and the SWD transport its driver
    offers (nRF chips have no JTAG; each driver names SWD its own way)."""

    transport: str | None  # `transport select` argument; None: the config chooses
    description: str
    dap_access: bool = True  # `dap apreg` works (recover, the network core's access port)


# Interfaces a user may name with --interface: our openocd_cfg/interface/<name>.cfg when we ship
# one, otherwise Debian's interface/<name>.cfg. Another OpenOCD interface name is used with the
# "swd" transport; FTDI adapters have one config per adapter (--openocd-config).
INTERFACES: dict[str, Interface] = {
    "jlink": Interface("swd", "SEGGER J-Link, external or the DKs' on-board J-Link OB"),
    "cmsis-dap": Interface("swd", "CMSIS-DAP v1 (HID) or v2 (bulk): DAPLink, Raspberry Pi "
                           "debugprobe, ..."),
    "stlink-dap": Interface("dapdirect_swd", "ST-LINK V2-1/V3 driven at the DAP level "
                            "(firmware V2J24 or later)"),
    "stlink": Interface("hla_swd", "ST-LINK as a high-level adapter: memory and run control "
                        "only, no DAP access (no recover; use stlink-dap)", dap_access=False),
    "sim": Interface(None, "a virtual board (remote_bitbang, JTAG)"),
}
KNOWN_INTERFACES = tuple(INTERFACES)


def interface_transport(name: str) -> str | None:
    return INTERFACES[name].transport if name in INTERFACES else "swd"

# Commands every OpenOCD we start gets before its configs: local only, no telnet/tcl servers,
# failed reads are errors (not zeros), no memory map (GDB would refuse plain writes to ranges
# marked as flash).
_BASE_COMMANDS = (
    "bindto 127.0.0.1",
    "telnet_port disabled",
    "tcl_port disabled",
    "gdb_report_data_abort enable",  # OpenOCD 0.12 spelling; `gdb report_data_abort` is newer
    "gdb_memory_map disable",
    # The server loop's sleep between its rounds. It does not shorten halt detection: OpenOCD
    # 0.12 notices a halt the target makes itself only at its 100 ms target poll whatever this
    # says (measured; TARGET_DEFAULT_POLLING_INTERVAL), which is why the loader never halts
    # itself and the host halts it by request (loader ABI 2). It does bound how late GDB's
    # interrupt is acted on when it arrives while OpenOCD still handles the resume before it:
    # the byte then waits in the connection's buffer (input_pending) and server_loop sleeps a
    # full period in select() before it looks (src/server/server.c). Measured on the virtual
    # board: 10 ms -> a halt 10 ms late in most loader stops; 1 ms -> none seen.
    "poll_period 1",
)


WORKDIR_PREFIX = "qspi-gdb-openocd-"


def openocd_script_dirs(program: str = OPENOCD_PROGRAM) -> list[Path]:
    """Where OpenOCD looks for a relative `-f` name: ours (-s), then its own search path
    (OPENOCD_SCRIPTS, the user's config dirs, the scripts installed next to the program)."""
    dirs = [openocd_cfg_dir()]
    dirs += [Path(p) for p in os.environ.get("OPENOCD_SCRIPTS", "").split(os.pathsep) if p]
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    dirs += [Path(config_home) / "openocd", Path.home() / ".openocd"]
    found = shutil.which(program)
    if found:
        dirs.append(Path(found).resolve().parent.parent / "share" / "openocd" / "scripts")
    return dirs + [Path("/usr/share/openocd/scripts"), Path("/usr/local/share/openocd/scripts")]


def find_openocd_script(name: str, program: str = OPENOCD_PROGRAM) -> Path | None:
    return next((d / name for d in openocd_script_dirs(program) if (d / name).is_file()), None)


def interface_config(name: str, program: str = OPENOCD_PROGRAM) -> str:
    """The OpenOCD config file for --interface NAME (ours if we ship one, else OpenOCD's own
    interface/NAME.cfg); a name OpenOCD has no config for is refused before anything starts."""
    if "/" in name or name.endswith(".cfg"):
        raise UsageError(f"--interface takes a probe name ({', '.join(KNOWN_INTERFACES)}), "
                         f"not a file: use --openocd-config {name}")
    ours = openocd_cfg_dir() / "interface" / f"{name}.cfg"
    if ours.is_file():
        return str(ours)
    script = f"interface/{name}.cfg"
    if shutil.which(program) and find_openocd_script(script, program) is None:
        raise UsageError(f"--interface {name}: OpenOCD has no {script} (probe names: "
                         f"{', '.join(n for n in KNOWN_INTERFACES if n != 'sim')})")
    return script


def user_config(path: str | os.PathLike, program: str = OPENOCD_PROGRAM) -> str:
    """An --openocd-config FILE for OpenOCD, which runs in a temporary directory: a file that
    exists here becomes an absolute path; a relative name found only in OpenOCD's own scripts
    (e.g. interface/cmsis-dap.cfg) stays as it is; anything else is refused."""
    given = Path(path).expanduser()
    if given.is_file():
        return os.path.abspath(given)
    if given.exists():
        raise UsageError(f"--openocd-config {path}: not a file")
    if not given.is_absolute() and find_openocd_script(str(given), program) is not None:
        return str(given)
    raise UsageError(f"--openocd-config {path}: no such file")


# Text OpenOCD's Tcl (Jim) reads as one literal word without quoting.
_TCL_PLAIN = re.compile(r"[A-Za-z0-9_./:@%+,=-]+")


def tcl_word(text: str, what: str = "path") -> str:
    """text as one literal word of an OpenOCD command: as it is when plain, otherwise in double
    quotes with every character Tcl would substitute or end the word at (\\ " $ [ ] { }) escaped.
    Braces alone would not do: a `}` in a path ends a {...} word and the rest runs as commands.
    Control characters (a newline ends a command) are refused."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise UsageError(f"{what} {text!r} contains a control character; it cannot be passed "
                         "to OpenOCD safely")
    if _TCL_PLAIN.fullmatch(text):
        return text
    return '"' + re.sub(r'([\\"$\[\]{}])', r"\\\1", text) + '"'


# Error lines every healthy session logs: a blank chip (as new, or the virtual board's internal
# flash) faults on its erased vector table and OpenOCD clears the lockup when it examines it.
_EXPECTED_ERRORS = ("clearing lockup after double fault",)
# Our readiness check connects to the GDB port and closes without a word: OpenOCD logs that
# first connection as rejected.
_READY_PROBE_REJECTED = "attempted 'gdb' connection rejected"


def summarize_log(text: str, max_lines: int = 4, *, fallback: bool = True) -> str:
    """The relevant error lines of an OpenOCD log joined into one line (see error_summary)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = []
    probe_seen = False
    for line in lines:
        # "Assertion ... failed": OpenOCD 0.12's abort, e.g. remote_bitbang.c when its
        # adapter's socket closes mid-transaction
        if ("Error" not in line and "Assertion" not in line) or any(
                expected in line for expected in _EXPECTED_ERRORS):
            continue
        if _READY_PROBE_REJECTED in line and not probe_seen:
            probe_seen = True
            continue
        errors.append(line)
    chosen = (errors or (lines if fallback else []))[-max_lines:]
    if chosen:
        return " | ".join(chosen)
    return "no output" if fallback else ""


class OpenOcd:
    """One OpenOCD process serving GDB on a free 127.0.0.1 port.

    script: ("f", file) and ("c", command) steps in order, after our base commands. Files are
    absolute, or found in our openocd_cfg dir, then in OpenOCD's own scripts. E.g.
    [("c", "set SIM_SOCKET /tmp/b.sock"), ("f", "interface/sim.cfg"),
    ("f", "target/nrf5340.cfg")]. Commands are Tcl text: a path in one goes through tcl_word().
    """

    def __init__(
        self,
        script: Sequence[tuple[str, str]],
        *,
        program: str = OPENOCD_PROGRAM,
        ready_timeout_s: float = 30.0,
        workdir: str | os.PathLike | None = None,
    ):
        for kind, _value in script:
            if kind not in ("f", "c"):
                raise ValueError(f"OpenOCD script step kind {kind!r} (use 'f' or 'c')")
        self.script = list(script)
        self.program = program
        self.ready_timeout_s = ready_timeout_s
        self.gdb_port: int | None = None
        self._workdir = Path(workdir) if workdir else None
        self._own_tmp: WorkDir | None = None
        self._proc: subprocess.Popen | None = None
        self._stderr_path: Path | None = None

    def argv(self, gdb_port: int) -> list[str]:
        return self._argv((*_BASE_COMMANDS, f"gdb_port {gdb_port}"))

    def _argv(self, base_commands: Sequence[str]) -> list[str]:
        argv = [self.program, "-s", str(openocd_cfg_dir())]
        for command in base_commands:
            argv += ["-c", command]
        for kind, value in self.script:
            value = str(value)
            if kind == "f" and not _TCL_PLAIN.fullmatch(value):
                # OpenOCD turns `-f FILE` into the Tcl `script {FILE}`: quote it ourselves
                argv += ["-c", f"script {tcl_word(value, 'OpenOCD config')}"]
            else:
                argv += [f"-{kind}", value]
        return argv

    def exit_status(self) -> int | None:
        """OpenOCD's exit status once it has ended, None while it runs (or before start)."""
        return self._proc.poll() if self._proc else None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def gdb_address(self) -> str:
        return f"127.0.0.1:{self.gdb_port}"

    def start(self) -> OpenOcd:
        if self._workdir is None:
            self._own_tmp = WorkDir(WORKDIR_PREFIX)
            self._workdir = self._own_tmp.path
        self._stderr_path = self._workdir / "openocd.log"
        self.gdb_port = free_tcp_port()
        argv = self.argv(self.gdb_port)
        _log.debug("starting openocd", argv=argv)
        with open(self._stderr_path, "wb") as stderr:
            try:
                self._proc = spawn(argv, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
                                   cwd=self._workdir)
            except OSError as exc:
                self.close()
                raise TargetError(f"cannot start {self.program}: {exc}") from exc
        try:
            self._wait_ready()
            _log.info("openocd ready", pid=self._proc.pid, gdb=self.gdb_address)
        except BaseException:  # anything, even a failing log call: never leave it running
            self.close()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        assert self._proc is not None and self.gdb_port is not None
        while True:
            if self._proc.poll() is not None:
                raise TargetError(f"OpenOCD stopped ({exit_text(self._proc.returncode)}): "
                                  f"{self.error_summary()}")
            if port_accepts("127.0.0.1", self.gdb_port):
                return
            if time.monotonic() > deadline:
                raise TargetError(f"OpenOCD did not open its GDB port {self.gdb_port} within "
                                  f"{self.ready_timeout_s:.0f} s: {self.error_summary()}")
            time.sleep(0.05)

    def stderr_text(self) -> str:
        if self._stderr_path and self._stderr_path.exists():
            return self._stderr_path.read_text(errors="replace")
        return ""

    def error_summary(self, max_lines: int = 4, *, fallback: bool = True) -> str:
        """OpenOCD's error lines for one-line reports, without those a healthy session also
        logs; when there are none, its last lines (fallback) or ""."""
        return summarize_log(self.stderr_text(), max_lines, fallback=fallback)

    def close(self) -> None:
        if self._proc is not None:
            kill_group(self._proc)
            _log.debug("openocd stopped", pid=self._proc.pid, status=self._proc.returncode)
            self._proc = None
        if self._own_tmp is not None:
            self._own_tmp.cleanup()
            self._own_tmp = None

    def run_once(self, commands: Sequence[str], timeout_s: float) -> str:
        """Run OpenOCD without servers: the script, `init`, the commands, `shutdown`; return
        its log. For work below the core (the DAP's access ports), which needs no GDB and works
        on a chip whose core cannot be examined. Killed (TargetError) after timeout_s."""
        if self._workdir is None:
            self._own_tmp = WorkDir(WORKDIR_PREFIX)
            self._workdir = self._own_tmp.path
        self._stderr_path = self._workdir / "openocd.log"
        argv = self._argv(("gdb_port disabled", "telnet_port disabled", "tcl_port disabled"))
        for command in ("init", *commands, "shutdown"):
            argv += ["-c", command]
        _log.debug("running openocd once", argv=argv)
        try:
            with open(self._stderr_path, "wb") as stderr:
                try:
                    self._proc = spawn(argv, stdin=subprocess.DEVNULL, stdout=stderr,
                                       stderr=stderr, cwd=self._workdir)
                except OSError as exc:
                    raise TargetError(f"cannot start {self.program}: {exc}") from exc
            try:
                status = self._proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                raise TargetError(f"OpenOCD did not finish within {timeout_s:.0f} s: "
                                  f"{self.error_summary()}") from None
            text = self.stderr_text()
            if status != 0:
                raise TargetError(f"OpenOCD stopped ({exit_text(status)}): "
                                  f"{self.error_summary()}")
            return text
        finally:
            self.close()

    def __enter__(self) -> OpenOcd:
        return self.start() if self._proc is None else self

    def __exit__(self, *exc) -> None:
        self.close()
