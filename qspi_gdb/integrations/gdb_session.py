"""The loader's TargetLink inside a GDB session the user already has: memory, registers and run
control through gdb's own Python API (`gdb` exists only inside gdb), over whatever server the
session is attached to (OpenOCD, J-Link GDB server, pyOCD; local or remote).

Borrowing the core: on entry the registers gdb shows (core and special registers; the FPU is
not touched, the loader is built for soft float) and the RAM the loader occupies (its ELF's
loadable range, buffers and stack included) are saved; on exit, also after errors and Ctrl-C,
both are written back and read back to check, and the selected frame is selected again, so the
session goes on where it was. The loader's own deinit restores the clocks, pins, VTOR and the
flash chip's address mode; the QSPI peripheral is left disabled (README "In a GDB session").

gdb's Python runs synchronously: a resume is `continue`, which returns when the core stops;
the loader's halt point carries a silent internal breakpoint so its stops print nothing, and a
watchdog thread interrupts gdb (SIGINT, as Ctrl-C does) when the core does not stop in time.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import AbstractContextManager
from pathlib import Path

import gdb
from elftools.elf.elffile import ELFFile

from qspi_gdb import log
from qspi_gdb.connect import REAL_BOARD_WAIT, VIRTUAL_BOARD_WAIT
from qspi_gdb.errors import TargetError, UsageError
from qspi_gdb.inputs.boards import Board

_log = log.get_logger(__name__)

HALT_SYMBOL = "qspi_loader_halt"  # where the loader stops after each call (a `bkpt`)
BX_LR = b"\x70\x47"  # Thumb `bx lr`: the one instruction that brings the core back to its pc
_REGISTER_TYPES = (gdb.TYPE_CODE_INT, gdb.TYPE_CODE_PTR)
_CHUNK = 64 * 1024  # bytes per memory call while saving / restoring RAM


def elf_layout(path: str | os.PathLike) -> tuple[list[tuple[int, bytes]], tuple[int, int], int | None]:
    """The loader ELF's loadable bytes [(address, data)], the RAM range its segments occupy
    (buffers and stack included), and its halt address."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        segments = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
        if not segments:
            raise UsageError(f"{path}: no loadable segments")
        data = [(s["p_paddr"], s.data()[:s["p_filesz"]]) for s in segments if s["p_filesz"]]
        span = (min(s["p_paddr"] for s in segments),
                max(s["p_paddr"] + s["p_memsz"] for s in segments))
        symtab = elf.get_section_by_name(".symtab")
        found = symtab.get_symbol_by_name(HALT_SYMBOL) if symtab else None
        halt = found[0]["st_value"] & ~1 if found else None
    return data, span, halt


class GdbSessionLink:
    """TargetLink over the gdb session this code runs in; a context manager that borrows the
    core (saves registers and the loader's RAM, gives them back)."""

    def __init__(self, loader: str | os.PathLike, *, wait_scale: float, wait_floor_s: float,
                 say=None, restore_ram: bool = True):
        self.loader = Path(loader)
        self.restore_ram = restore_ram
        self.wait_scale = wait_scale
        self.wait_floor_s = wait_floor_s
        self.say = say or (lambda text: None)
        _segments, self.ram, _halt = elf_layout(self.loader)
        self.stops = 0
        self._saved_ram: bytes | None = None
        self._saved_registers: dict[str, int] = {}
        self._frame_level = 0
        self._names: dict[str, str] = {}
        self._breakpoint: gdb.Breakpoint | None = None
        self._last_stop: gdb.StopEvent | None = None
        self._paused: list[gdb.Breakpoint] = []  # the user's, disabled while the loader runs

    # -- borrowing the core -----------------------------------------------------------------

    def __enter__(self) -> GdbSessionLink:
        check_session()
        self._frame_level = gdb.selected_frame().level()
        gdb.newest_frame().select()  # register writes go to the core, not to an outer frame
        self._saved_registers = {name: self._read(name) for name in self._register_names()}
        lo, hi = self.ram
        if self.restore_ram:
            self.say(f"saving {hi - lo:,} bytes of RAM at {lo:#010x}..{hi - 1:#010x} and the "
                     "registers (given back when done)")
            self._saved_ram = self.read_memory(lo, hi - lo)
        else:
            self.say(f"RAM at {lo:#010x}..{hi - 1:#010x} will hold the loader afterwards "
                     "(--no-restore-ram); the registers are given back")
        # The user's breakpoints and watchpoints would stop the loader (a watchpoint on RAM it
        # uses) and cost packets on every resume: off until the core is given back. Nothing
        # above changed the session, so a failure there needs no undoing.
        self._paused = [b for b in gdb.breakpoints() if b.enabled]
        for breakpoint in self._paused:
            breakpoint.enabled = False
        gdb.events.stop.connect(self._on_stop)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self._breakpoint is not None:
                self._breakpoint.delete()
                self._breakpoint = None
            self._stop_at_the_users_pc()
            self._give_back()
        except Exception as error:  # noqa: BLE001 - reported, unless an error is on its way
            if exc is None:
                raise
            _log.error("could not restore the session's registers and RAM", error=str(error))
        finally:
            gdb.events.stop.disconnect(self._on_stop)
            for breakpoint in self._paused:
                if breakpoint.is_valid():
                    breakpoint.enabled = True

    def _stop_at_the_users_pc(self) -> None:
        """Make gdb's last stop be at the user's pc again, so that their next `continue`
        steps over a breakpoint there as usual (gdb does so only when the pc is where the
        thread last stopped). One `bx lr` in the loader's RAM (given back afterwards) runs with
        interrupts masked into a silent breakpoint at that pc; where that is impossible (a pc
        outside any code, a breakpoint gdb cannot insert) gdb may report a breakpoint at the
        pc once more on the next continue."""
        pc = self._saved_registers.get(self._names.get("pc", "pc"))
        if pc is None:
            return
        try:
            self.write_memory(self.ram[0], BX_LR)
            for name, value in (("lr", pc | 1), ("xpsr", 0x01000000), ("primask", 1),
                                ("pc", self.ram[0])):
                if name in self._names:
                    self._write(self._names[name], value)
            stop = gdb.Breakpoint(f"*{pc & ~1:#x}", internal=True)
            stop.silent = True
            try:
                self.wait_halt(1.0)
            finally:
                stop.delete()
        except (gdb.error, TargetError) as error:
            _log.debug("could not stop at the session's pc again", error=str(error))

    def _give_back(self) -> None:
        if self._saved_ram is not None:
            self.write_memory(self.ram[0], self._saved_ram)
        gdb.newest_frame().select()
        names = list(self._saved_registers)
        # special and banked registers first, then r0..pc/xPSR, the stack pointer alias last
        first = [n for n in names if not _core_register(n)]
        order = first + [n for n in names if _core_register(n) and n != "sp"] + ["sp"]
        for name in order:
            if name in self._saved_registers and self._read(name) != self._saved_registers[name]:
                self._write(name, self._saved_registers[name])
        gdb.execute("maintenance flush register-cache", to_string=True)
        wrong = sorted(n for n, v in self._saved_registers.items() if self._read(n) != v)
        if wrong:
            raise TargetError(f"registers not restored: {', '.join(wrong)}")
        try:
            gdb.execute(f"frame {self._frame_level}", to_string=True)
        except gdb.error:
            pass  # the frame is gone (no symbols): frame 0 stays selected

    def _register_names(self) -> list[str]:
        frame = gdb.newest_frame()
        names = []
        for register in frame.architecture().registers():
            value = frame.read_register(register.name)
            kind = value.type.strip_typedefs()
            if kind.code in _REGISTER_TYPES and kind.sizeof <= 4:
                names.append(register.name)
        self._names = {n.lower(): n for n in names}
        return names

    def _read(self, name: str) -> int:
        return int(gdb.newest_frame().read_register(name)) & 0xFFFFFFFF

    def _write(self, name: str, value: int) -> None:
        gdb.execute(f"set var ${name} = {value & 0xFFFFFFFF:#x}", to_string=True)

    def _on_stop(self, event) -> None:
        self._last_stop = event

    # -- TargetLink ---------------------------------------------------------------------------

    def load_elf(self, path: str | os.PathLike) -> None:
        """Write the ELF's loadable bytes (gdb's symbol file stays the user's) and mark its
        halt point with a silent breakpoint."""
        segments, span, halt = elf_layout(path)
        if not (self.ram[0] <= span[0] and span[1] <= self.ram[1]):
            raise TargetError(f"{path} lies outside the RAM saved for it")
        for address, data in segments:
            self.write_memory(address, data)
        if halt is not None and self._breakpoint is None:
            self._breakpoint = gdb.Breakpoint(f"*{halt:#x}", internal=True)
            self._breakpoint.silent = True

    def read_memory(self, addr: int, length: int) -> bytes:
        inferior = gdb.selected_inferior()
        out = bytearray()
        try:
            while len(out) < length:
                size = min(_CHUNK, length - len(out))
                out += inferior.read_memory(addr + len(out), size).tobytes()
        except gdb.MemoryError as exc:
            raise TargetError(f"reading {length} bytes at {addr:#010x}: {exc}") from None
        return bytes(out)

    def write_memory(self, addr: int, data: bytes) -> None:
        inferior = gdb.selected_inferior()
        try:
            for offset in range(0, len(data), _CHUNK):
                inferior.write_memory(addr + offset, data[offset:offset + _CHUNK])
        except gdb.MemoryError as exc:
            raise TargetError(f"writing {len(data)} bytes at {addr:#010x}: {exc}") from None

    def read_register(self, name: str) -> int:
        return self._read(self._name(name))

    def write_register(self, name: str, value: int) -> None:
        self._write(self._name(name), value)

    def resume(self) -> None:
        """Nothing yet: gdb resumes and waits in one synchronous `continue` (wait_halt)."""

    def wait_halt(self, timeout_s: float) -> None:
        deadline = max(self.wait_floor_s, timeout_s * self.wait_scale)
        fired = threading.Event()

        def interrupt() -> None:
            fired.set()
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does: gdb interrupts the target

        watchdog = threading.Timer(deadline, interrupt)
        watchdog.daemon = True
        self._last_stop = None
        watchdog.start()
        try:
            gdb.execute("continue", to_string=True)
        except KeyboardInterrupt:
            if not fired.is_set():
                raise
        finally:
            watchdog.cancel()
        stop = self._last_stop
        signal_name = getattr(stop, "stop_signal", None)
        if fired.is_set():
            pc = self._read(self._name("pc"))
            raise TargetError(f"the target did not stop within {deadline:.1f} s (interrupted "
                              f"it at pc={pc:#010x})")
        if signal_name == "SIGINT":
            raise KeyboardInterrupt("interrupted")
        self.stops += 1

    def halt(self) -> None:
        """The core is halted whenever this code runs (gdb's all-stop mode)."""

    def reset(self, halt: bool = True) -> None:
        raise UsageError("qspi does not reset inside a GDB session; reset with your "
                         "debugger when you want to (e.g. `monitor reset halt`)")

    def _name(self, name: str) -> str:
        if not self._names:
            self._register_names()
        try:
            return self._names[name.lower()]
        except KeyError:
            raise TargetError(f"the target has no register {name!r}") from None


def _core_register(name: str) -> bool:
    return name.lower() in {f"r{i}" for i in range(13)} | {"sp", "lr", "pc", "xpsr"}


def check_session() -> None:
    """A core to borrow: connected, stopped, an Arm target."""
    if gdb.selected_inferior().pid == 0 or gdb.selected_thread() is None:
        raise UsageError("not connected to a target (e.g. `target extended-remote :3333`)")
    if gdb.selected_thread().is_running():
        raise UsageError("the target is running; interrupt it first")
    arch = gdb.newest_frame().architecture().name()
    if not arch.startswith("arm"):
        raise UsageError(f"the target is {arch}, not an Arm Cortex-M core")


def session_opener(say=None, *, restore_ram: bool = True):
    """The OpenTarget (qspi_gdb.flash.jobs) of this session: the loader's link, the core
    borrowed for the length of one command."""

    def open_target(board: Board, loader: Path) -> AbstractContextManager[GdbSessionLink]:
        waits = VIRTUAL_BOARD_WAIT if board.virtual else REAL_BOARD_WAIT
        return GdbSessionLink(loader, say=say, restore_ram=restore_ram, **waits)

    return open_target
