"""TargetLink over GDB/MI: memory, registers and run control of the target core through any GDB
remote server (OpenOCD that we started, or a server someone else runs: J-Link GDB server, pyOCD,
another OpenOCD).

Only standard GDB remote operations are used, except `monitor reset` when the server is an
OpenOCD we started (`monitor=True`); without it, reset is a plain memory write of SYSRESETREQ to
AIRCR, with DEMCR.VC_CORERESET deciding whether the core halts at the reset vector.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from qspi_gdb import log
from qspi_gdb.errors import ConnectionLost, TargetError, UsageError
from qspi_gdb.transport.dap import results as dap_results
from qspi_gdb.transport.gdbmi import GdbError, GdbMi, GdbTimeout, mi_quote
from qspi_gdb.transport.workdirs import WorkDir, remove_stale

_log = log.get_logger(__name__)

AIRCR = 0xE000ED0C
AIRCR_SYSRESETREQ = 0x05FA0004  # VECTKEY | SYSRESETREQ
DEMCR = 0xE000EDFC
DEMCR_TRCENA = 1 << 24
DEMCR_VC_CORERESET = 1 << 0
DHCSR = 0xE000EDF0
DHCSR_S_HALT = 1 << 17

SERVER_POLL_SETTLE_S = 0.3
CHUNK = 64 * 1024  # bytes per MI memory command (GDB splits it into remote packets)
# Conservative wire speed for deadlines of memory commands (the virtual board's test wire moves
# ~80 kB/s, real probes 100 kB/s .. several MB/s).
_MIN_WIRE_BYTES_PER_S = 8 * 1024
# From this size on a write goes to GDB as a file (`restore FILE binary ADDR`), not as hex on
# its MI input: GDB reads its input one byte per system call, ~2 s per MiB of data as hex.
RESTORE_MIN = 4096
SCRATCH_PREFIX = "qspi-restore-"  # the private directory of that file (a WorkDir)
# GDB's `restore` reads its file name up to the first blank, unquoted, and expands a `~`.
_RESTORE_SAFE_PATH = re.compile(r"[A-Za-z0-9_./+-]+")
# The cores' whole address map (code, SRAM, peripherals, private peripheral bus), declared
# before connecting with everything else inaccessible: GDB then never reads where no memory is
# (an erased chip's pc 0xfffffffe cost ~16 failing reads after each stop).
_MEMORY_REGION = "mem 0x0 0xe0100000 rw"


class ConnectError(TargetError):
    """The GDB server could not be reached, did not answer, or its core could not be halted:
    the failures where the server's own log (e.g. OpenOCD's errors) helps."""


class GdbLink:
    """A TargetLink (qspi_gdb.loader.target) over a GdbMi session.

    wait_scale / wait_floor_s turn a target-time timeout of wait_halt() into a wall-time deadline
    (the virtual board's modelled time and the host's wall time differ; OpenOCD polls a running
    core only every ~100 ms).
    """

    def __init__(self, gdb: GdbMi, *, monitor: bool, wait_scale: float = 1.5,
                 wait_floor_s: float = 5.0, monitor_reset: str = "sysresetreq"):
        self.gdb = gdb
        self.monitor = monitor
        # how OpenOCD's `reset` resets this target (our target configs: SYSRESETREQ)
        self.monitor_reset = monitor_reset
        self.wait_scale = wait_scale
        self.wait_floor_s = wait_floor_s
        self.halted = True
        self.stops = 0  # resume/stop cycles, for the report
        self.bytes_written = 0
        self.bytes_read = 0
        self._registers: dict[str, tuple[int, str]] | None = None  # lower name -> (no, name)
        self._scratch: WorkDir | None = None  # where `restore` files go, made at first use

    # -- connection ----------------------------------------------------------------------------

    def connect(self, address: str, *, elf: str | os.PathLike | None = None,
                timeout_s: float = 30.0) -> None:
        """Attach to the GDB server at HOST:PORT and halt the core.

        elf: symbols/architecture to load first (GDB then knows it is an ARM target).
        """
        self.gdb.command("-gdb-set tcp auto-retry off")
        self.gdb.command("-gdb-set remotetimeout 10")
        # After each stop GDB describes where the core is. Read-only sections come from the ELF
        # it loaded, not the target; no arguments, no caller frame: then a stop costs GDB the
        # registers and the thread list, instead of ~25 small reads of code, stack and MSP/PSP,
        # each a probe round trip (and a network one with a remote server).
        # Nor does GDB ask on connecting and loading whether a trace experiment runs (qTStatus)
        # or which symbols the server wants for its RTOS awareness (qSymbol, twice): a loader
        # has no tracepoints and no RTOS, and each is a network round trip with a remote server.
        for setting in ("trust-readonly-sections on", "print frame-arguments none",
                        "print entry-values no", "backtrace limit 1",
                        "remote trace-status-packet off", "remote symbol-lookup-packet off"):
            self.gdb.command(f"-gdb-set {setting}")
        if elf is not None:
            try:
                self.gdb.command(f"-file-exec-and-symbols {mi_quote(str(elf))}")
            except (GdbTimeout, ConnectionLost):
                raise
            except GdbError as exc:
                # A file GDB cannot read is bad input, unrelated to the target.
                message = _without_prefix(exc.gdb_message, f'"{elf}": ')
                raise UsageError(f"{elf}: GDB cannot load it: {message}") from exc
        else:
            self.gdb.command("-gdb-set architecture arm")
        self.gdb.console(_MEMORY_REGION)
        self.gdb.command("-gdb-set mem inaccessible-by-default on")
        remove_stale(SCRATCH_PREFIX)  # what a killed run left
        # A server that accepts but never answers keeps GDB silent until the deadline.
        _log.info(f"connecting to {address}")
        try:
            self.gdb.command(f"-target-select extended-remote {address}", timeout_s=timeout_s)
        except GdbTimeout as exc:
            raise ConnectError(f"the GDB server at {address} did not answer within "
                               f"{timeout_s:.0f} s") from exc
        except GdbError as exc:
            if isinstance(exc, ConnectionLost):
                raise
            raise ConnectError(f"cannot connect to the GDB server at {address}: "
                               f"{_without_prefix(exc.gdb_message, f'{address}: ')}") from exc
        self.halted = True
        # A server may leave the core running on attach; make sure it is halted.
        try:
            if self._core_running():
                self.halt()
        except TargetError as exc:
            raise ConnectError(f"connected to {address} but cannot halt the core: {exc}") from exc
        _log.debug("gdb connected", address=address)

    def disconnect(self) -> None:
        try:
            self.gdb.command("-target-disconnect", timeout_s=5)
        except TargetError:  # the work is done; a server gone by now changes nothing
            pass

    def close(self) -> None:
        """Remove the scratch directory (also after errors)."""
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None

    # -- TargetLink ----------------------------------------------------------------------------

    def load_elf(self, path: str | os.PathLike) -> None:
        path = Path(path)
        if not path.is_file():
            raise TargetError(f"loader ELF not found: {path}")
        self.gdb.command(f"-file-exec-and-symbols {mi_quote(str(path))}")
        deadline = 10 + path.stat().st_size / _MIN_WIRE_BYTES_PER_S
        try:
            self.gdb.command("-target-download", timeout_s=deadline)
        except ConnectionLost:
            raise
        except GdbError as exc:
            raise TargetError(f"loading {path.name} into target RAM failed: "
                              f"{exc.gdb_message}") from exc
        self._flush_registers()

    def read_memory(self, addr: int, length: int) -> bytes:
        out = bytearray()
        while len(out) < length:
            start = addr + len(out)
            size = min(CHUNK, length - len(out))
            result = self.gdb.command(f"-data-read-memory-bytes {start:#x} {size}",
                                      timeout_s=self._memory_deadline(size))
            out += _join_blocks(result.payload.get("memory", []), start, size)
        self.bytes_read += length
        return bytes(out)

    def write_memory(self, addr: int, data: bytes) -> None:
        view = memoryview(data)
        for offset in range(0, len(data), CHUNK):
            chunk = view[offset:offset + CHUNK]
            start = addr + offset
            try:
                if len(chunk) >= RESTORE_MIN and self._scratch_file() is not None:
                    self._restore(start, chunk)
                else:
                    self.gdb.command(f"-data-write-memory-bytes {start:#x} {chunk.hex()}",
                                     timeout_s=self._memory_deadline(len(chunk)))
            except (GdbTimeout, ConnectionLost):
                raise
            except GdbError as exc:
                raise TargetError(f"writing {len(chunk)} bytes at {start:#010x} failed: "
                                  f"{exc.gdb_message}") from exc
        self.bytes_written += len(data)

    def _scratch_file(self) -> Path | None:
        """The file `restore` reads, or None where GDB could not name it (then: hex)."""
        if self._scratch is None:
            self._scratch = WorkDir(SCRATCH_PREFIX)
        path = self._scratch.path / "chunk.bin"
        return path if _RESTORE_SAFE_PATH.fullmatch(str(path)) else None

    def _restore(self, start: int, chunk: memoryview) -> None:
        path = self._scratch_file()
        path.write_bytes(chunk)
        result = self.gdb.console(f"restore {path} binary {start:#x}",
                                  timeout_s=self._memory_deadline(len(chunk)))
        # GDB reports some failed writes only as a warning and goes on.
        warnings = [line.strip() for line in result.log if line.strip()]
        if warnings:
            raise TargetError(f"writing {len(chunk)} bytes at {start:#010x} failed: "
                              f"{warnings[0]}")

    def read_register(self, name: str) -> int:
        number, _ = self._register(name)
        result = self.gdb.command(f"-data-list-register-values x {number}")
        values = result.payload.get("register-values", [])
        if not values:
            raise TargetError(f"register {name} not available")
        return int(values[0]["value"], 16) & 0xFFFFFFFF

    def write_register(self, name: str, value: int) -> None:
        number, _ = self._register(name)
        # by number: an expression ($pc=...) makes GDB unwind the frame again after each write
        self.gdb.command(f"-data-write-register-values x {number} {value & 0xFFFFFFFF:#x}")

    def resume(self) -> None:
        self.gdb.drop_stopped()
        self.gdb.command("-exec-continue")
        self.halted = False

    def run_for(self, seconds: float) -> bool:
        """Resume, let the core run `seconds` of wall time, halt it by request (GDB's interrupt:
        the server halts the core at once). True when it stopped by itself first."""
        self.resume()
        try:
            record = self.gdb.wait_stopped(seconds)
        except GdbTimeout:
            record = None
        if record is None:
            try:
                self.gdb.command("-exec-interrupt")
            except GdbError as exc:
                if "running" not in exc.gdb_message.lower():
                    raise
            record = self.gdb.wait_stopped(self.wait_floor_s)
        self.halted = True
        self.stops += 1
        return record.get("signal-name") != "SIGINT"

    def wait_halt(self, timeout_s: float) -> None:
        deadline = max(self.wait_floor_s, timeout_s * self.wait_scale)
        try:
            self.gdb.wait_stopped(deadline)
        except GdbTimeout:
            self.halt()
            pc = self._safe_read("pc")
            try:
                ipsr = f"{self.read_register('xpsr') & 0x1FF}"
            except GdbError:
                ipsr = "?"
            raise TargetError(f"the target did not stop within {deadline:.1f} s "
                              f"(halted it at pc={pc}, IPSR {ipsr})") from None
        self.halted = True
        self.stops += 1

    def halt(self) -> None:
        if self.halted and not self._core_running():
            return
        try:
            self.gdb.command("-exec-interrupt")
        except GdbError as exc:
            if "running" not in exc.gdb_message.lower():
                raise
        self.gdb.wait_stopped(self.wait_floor_s)
        self.halted = True

    def reset(self, halt: bool = True) -> str:
        """Reset the target; returns how ("sysresetreq", or what OpenOCD's own configuration
        does for user configs) for the report."""
        if self.monitor:
            self.gdb.console("monitor reset halt" if halt else "monitor reset run", timeout_s=30)
            how = self.monitor_reset
        else:
            self._reset_by_aircr(halt)
            how = "sysresetreq (AIRCR write)"
        self._flush_registers()
        self.halted = halt
        return how

    def read_ap(self, ap: int, reg: int) -> int:
        """An access-port register of the debug port, through our OpenOCD (its Tcl helper in
        openocd_cfg/target/nordic_ctrlap.tcl); a GDB server someone else runs cannot."""
        if not self.monitor:
            raise TargetError("the debug port's access ports can only be read through an "
                              "OpenOCD qspi-gdb starts (not --gdb-server)")
        result = self.gdb.console(f"monitor qspi_gdb_apregs {{{int(ap)} {int(reg):#x}}}")
        answers = dap_results([("read", ap, reg)], result.console_text)
        if answers[0]["value"] is None:
            raise TargetError(f"OpenOCD could not read AP {ap} register {reg:#04x}")
        return answers[0]["value"]

    # -- helpers -------------------------------------------------------------------------------

    def _reset_by_aircr(self, halt: bool) -> None:
        """SYSRESETREQ with plain memory writes: works on any GDB server."""
        demcr = int.from_bytes(self.read_memory(DEMCR, 4), "little")
        demcr |= DEMCR_TRCENA
        demcr = demcr | DEMCR_VC_CORERESET if halt else demcr & ~DEMCR_VC_CORERESET
        self.write_memory(DEMCR, demcr.to_bytes(4, "little"))
        try:
            self.write_memory(AIRCR, AIRCR_SYSRESETREQ.to_bytes(4, "little"))
        except TargetError as exc:
            # The reset may cut the write's acknowledge short; that is the reset working.
            _log.debug("AIRCR write reported an error during reset", error=str(exc))
        # The server learns of a reset it did not do at its next poll of the core (OpenOCD:
        # every 100 ms by default, from DHCSR.S_RESET_ST) and until then answers register
        # reads from its cache. Reading DHCSR ourselves first would clear that sticky bit.
        time.sleep(SERVER_POLL_SETTLE_S)
        if halt:
            deadline = time.monotonic() + self.wait_floor_s
            while not self._dhcsr() & DHCSR_S_HALT:
                if time.monotonic() > deadline:
                    raise TargetError("the core did not halt after SYSRESETREQ")
                time.sleep(0.01)

    def _dhcsr(self) -> int:
        return int.from_bytes(self.read_memory(DHCSR, 4), "little")

    def _core_running(self) -> bool:
        try:
            return not self._dhcsr() & DHCSR_S_HALT
        except ConnectionLost:
            raise
        except GdbError:
            return False

    def _flush_registers(self) -> None:
        self.gdb.console("maintenance flush register-cache")

    def _register(self, name: str) -> tuple[int, str]:
        if self._registers is None:
            names = self.gdb.command("-data-list-register-names").payload.get(
                "register-names", [])
            self._registers = {n.lower(): (i, n) for i, n in enumerate(names) if n}
        try:
            return self._registers[name.lower()]
        except KeyError:
            raise TargetError(f"the target has no register {name!r}") from None

    def _safe_read(self, name: str) -> str:
        try:
            return f"{self.read_register(name):#010x}"
        except GdbError:
            return "?"

    @staticmethod
    def _memory_deadline(size: int) -> float:
        return 10.0 + size / _MIN_WIRE_BYTES_PER_S


def _join_blocks(blocks: list[dict], start: int, size: int) -> bytes:
    """The bytes of one -data-read-memory-bytes answer; anything missing is an error."""
    data = bytearray()
    for block in sorted(blocks, key=lambda b: int(b["begin"], 16)):
        begin = int(block["begin"], 16)
        if begin != start + len(data):
            break
        data += bytes.fromhex(block.get("contents", ""))
    if len(data) != size:
        raise TargetError(f"reading {size} bytes at {start:#010x}: only {len(data)} bytes "
                          f"readable")
    return bytes(data)


def _without_prefix(message: str, prefix: str) -> str:
    """GDB starts some errors with what our message already names: the address
    ("127.0.0.1:1: Connection refused.") or the file ('"/x.elf": not in executable format')."""
    return message[len(prefix):] if message.startswith(prefix) else message
