"""GDB/MI session with gdb-multiarch: token-matched requests, a deadline per command, typed errors.

pygdbmi parses each MI line; its controller is not used (it is timeout based and drops
prompts). A reader thread turns GDB's stdout into parsed records on a queue; the caller's thread
sends `<token><command>` and consumes records until the result record with that token arrives or
the deadline passes. Exec-async records (`*stopped`, `*running`) are kept for `wait_stopped`.
While it waits it also watches the processes behind GDB (`watch`): one that ends fails the wait
at once with ConnectionLost naming it. Error messages name a command, never its arguments.
"""

from __future__ import annotations

import collections
import os
import queue
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from pygdbmi.gdbmiparser import parse_response

from qspi_gdb import log
from qspi_gdb.errors import ConnectionLost, TargetError
from qspi_gdb.transport.procgroup import exit_text, kill_group, spawn

_log = log.get_logger(__name__)

GDB_PROGRAM = "gdb-multiarch"
DEFAULT_TIMEOUT_S = 10.0
_EOF = object()
# `^done,memory=[{begin="0x..",offset="0x..",end="0x..",contents="..."}]` of a large read is
# parsed directly: pygdbmi's character-by-character parser costs seconds per MiB of hex.
_MEMORY_RESULT = re.compile(
    r'^(\d*)\^done,memory=\[((?:\{begin="0x[0-9a-f]+",offset="0x[0-9a-f]+",'
    r'end="0x[0-9a-f]+",contents="[0-9a-f]*"\},?)*)\]\s*$'
)
_MEMORY_BLOCK = re.compile(
    r'\{begin="(0x[0-9a-f]+)",offset="(0x[0-9a-f]+)",end="(0x[0-9a-f]+)",contents="([0-9a-f]*)"\}'
)


# How often waits look at the processes behind GDB (OpenOCD, a virtual board): one that ends is
# noticed within this time, not at the end of a deadline sized for flash work.
WATCH_INTERVAL_S = 0.1
# After GDB reports an error: how long to wait for a process behind it to be seen ended (a
# killed process's socket closes a moment before its exit status is there), longer when GDB
# says the remote connection is gone.
_ERROR_SETTLE_S = 0.1
_DEATH_SETTLE_S = 0.5
_CAUSE_SETTLE_S = 0.5
_MAX_MESSAGE = 240  # characters of a GDB message in our one-line errors


def short_text(text: str, limit: int = _MAX_MESSAGE) -> str:
    """One line, at most `limit` characters: messages never carry payloads."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


def command_name(command: str) -> str:
    """What a message says about an MI command: its name, never its arguments (a memory write
    carries up to 128 KiB of hex); a console command with its text, a wait as described."""
    if command.startswith("("):
        return short_text(command, 60)
    console = "-interpreter-exec console "
    if command.startswith(console):
        return short_text(f"console {command[len(console):]}", 60)
    return command.split(None, 1)[0] if command.strip() else command


class GdbError(TargetError):
    """GDB answered a command with ^error (or died, or missed a deadline)."""

    def __init__(self, message: str, *, command: str = "", code: str | None = None):
        self.command = command
        self.code = code
        self.gdb_message = short_text(message)
        super().__init__(f"gdb: {self.gdb_message}"
                         + (f" (command: {command_name(command)})" if command else ""))


class GdbTimeout(GdbError):
    """A command or a wait for the target to stop missed its deadline."""


class GdbExited(GdbError, ConnectionLost):
    """gdb-multiarch is gone (crashed, killed or never started)."""


@dataclass
class MiRecord:
    """One parsed MI output line. kind: result, exec, status, notify, console, target, log,
    output (anything not MI) or prompt."""

    kind: str
    message: str | None
    payload: Any
    token: int | None
    raw: str


@dataclass
class MiResult:
    """The answer to one command: its result class, payload and the stream output before it."""

    message: str  # done, running, connected, exit
    payload: dict = field(default_factory=dict)
    console: list[str] = field(default_factory=list)  # ~ and @ stream text, in order
    log: list[str] = field(default_factory=list)  # & stream text (GDB's own messages)

    @property
    def console_text(self) -> str:
        return "".join(self.console)


def mi_quote(text: str) -> str:
    """An MI c-string argument: quoted, with backslashes, quotes and newlines escaped."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


_KIND_BY_PREFIX = {"^": "result", "*": "exec", "+": "status", "=": "notify",
                   "~": "console", "@": "target", "&": "log"}


def parse_line(line: str) -> MiRecord:
    """Parse one line of GDB/MI output (without its newline)."""
    stripped = line.rstrip("\r\n")
    if stripped.strip() == "(gdb)":
        return MiRecord("prompt", None, None, None, stripped)
    fast = _MEMORY_RESULT.match(stripped)
    if fast:
        blocks = [
            {"begin": b, "offset": o, "end": e, "contents": c}
            for b, o, e, c in _MEMORY_BLOCK.findall(fast.group(2))
        ]
        token = int(fast.group(1)) if fast.group(1) else None
        return MiRecord("result", "done", {"memory": blocks}, token, stripped)
    body = stripped.lstrip("0123456789")
    kind = _KIND_BY_PREFIX.get(body[:1], "output")
    parsed = parse_response(stripped)
    if parsed.get("type") == "output":
        kind = "output"
    return MiRecord(kind, parsed.get("message"), parsed.get("payload"), parsed.get("token"), stripped)


class GdbMi:
    """A gdb-multiarch process spoken to over GDB/MI (mi3), in its own process group."""

    def __init__(
        self,
        program: str = GDB_PROGRAM,
        extra_args: Iterable[str] = (),
        default_timeout_s: float = DEFAULT_TIMEOUT_S,
    ):
        self.program = program
        self.extra_args = list(extra_args)
        self.default_timeout_s = default_timeout_s
        self._proc: subprocess.Popen | None = None
        self._records: queue.Queue = queue.Queue()
        self._exec_records: collections.deque[MiRecord] = collections.deque()
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
        self._next_token = 1
        self._threads: list[threading.Thread] = []
        self._exited = False
        # processes the session depends on: (name, exit status or None while running, detail)
        self._watched: list[tuple[str, Callable[[], int | None], Callable[[], str]]] = []
        self._next_watch = 0.0

    # -- process life -------------------------------------------------------------------------

    def start(self) -> GdbMi:
        argv = [self.program, "--interpreter=mi3", "--nx", "--quiet", *self.extra_args]
        try:
            # its own session: Ctrl-C reaches us, not GDB; we stop it ourselves
            self._proc = spawn(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={**os.environ, "LC_ALL": "C"},
            )
        except OSError as exc:
            raise GdbExited(f"cannot start {self.program}: {exc}") from exc
        try:
            self._threads = [
                threading.Thread(target=self._read_stdout, name="gdb-stdout", daemon=True),
                threading.Thread(target=self._read_stderr, name="gdb-stderr", daemon=True),
            ]
            for thread in self._threads:
                thread.start()
            _log.debug("gdb started", pid=self._proc.pid, argv=argv)
            # Settings that make the session deterministic and non-interactive.
            for setting in ("confirm off", "pagination off", "width 0", "height 0",
                            "mi-async on"):
                self.command(f"-gdb-set {setting}")
        except BaseException:  # never leave GDB running behind a failed start
            self.close()
            raise
        return self

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def close(self, timeout_s: float = 2.0) -> None:
        """Ask GDB to exit, then end its process group whatever state it is in."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None and not self._exited:
            try:
                self._send("-gdb-exit")
            except GdbError:
                pass
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                pass
        kill_group(proc)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            try:
                if stream:
                    stream.close()
            except OSError:
                pass
        self._proc = None

    def __enter__(self) -> GdbMi:
        return self.start() if self._proc is None else self

    def __exit__(self, *exc) -> None:
        self.close()

    def stderr_tail(self) -> str:
        return "".join(self._stderr_tail).strip()

    def watch(self, name: str, status: Callable[[], int | None],
              detail: Callable[[], str] = lambda: "") -> None:
        """Fail commands and waits with ConnectionLost as soon as the process `name` (e.g.
        "OpenOCD") has ended: status() is its exit status, None while it runs; detail() adds
        what it said (one short line). Checked in the order watched: put the process the
        others depend on first."""
        self._watched.append((name, status, detail))

    def check_watched(self, settle_s: float = 0.0) -> None:
        """Raise ConnectionLost when a watched process has ended (waiting up to settle_s for
        one to be seen ended). When a later one ended, an earlier one it depends on is given a
        moment to be seen ended too: a killed board takes its OpenOCD along, and the board is
        the news (its exit status comes a little after its socket closes)."""
        deadline = time.monotonic() + settle_s
        while True:
            ended = self._first_ended()
            if ended is not None:
                if ended > 0:
                    cause_deadline = time.monotonic() + _CAUSE_SETTLE_S
                    while time.monotonic() < cause_deadline and self._first_ended(ended) is None:
                        time.sleep(0.02)
                    cause = self._first_ended(ended)
                    ended = ended if cause is None else cause
                name, status, detail = self._watched[ended]
                extra = short_text(detail() or "", 160)
                raise ConnectionLost(f"{name} exited ({exit_text(status())})"
                                     + (f": {extra}" if extra else ""))
            if time.monotonic() >= deadline:
                return
            time.sleep(0.05)

    def _first_ended(self, before: int | None = None) -> int | None:
        """Index of the first watched process (of the first `before`) that has ended."""
        watched = self._watched if before is None else self._watched[:before]
        return next((i for i, (_, status, _) in enumerate(watched) if status() is not None), None)

    # -- requests ----------------------------------------------------------------------------

    def command(self, command: str, timeout_s: float | None = None) -> MiResult:
        """Send one MI command and return its result; ^error raises GdbError.

        timeout_s: deadline for the result record (default: the session's). On expiry the
        session is unusable (a late answer could be mistaken for the next one's), so it is
        closed and GdbTimeout raised.
        """
        token = self._next_token
        self._next_token += 1
        deadline = time.monotonic() + (self.default_timeout_s if timeout_s is None else timeout_s)
        self.check_watched()
        self._send(f"{token}{command}")
        result = MiResult("")
        while True:
            record = self._next_record(deadline, command)
            if record.kind in ("console", "target"):
                result.console.append(record.payload or "")
            elif record.kind == "log":
                result.log.append(record.payload or "")
            elif record.kind == "exec":
                self._exec_records.append(record)
            elif record.kind == "result":
                if record.token != token:
                    _log.debug("gdb: stray result", token=record.token, message=record.message)
                    continue
                return self._finish(command, record, result)

    def console(self, text: str, timeout_s: float | None = None) -> MiResult:
        """Run a CLI command (e.g. `monitor reset halt`) through -interpreter-exec console."""
        return self.command(f"-interpreter-exec console {mi_quote(text)}", timeout_s)

    def wait_stopped(self, timeout_s: float) -> dict:
        """Wait for the next `*stopped` record; return its payload (reason, frame, ...)."""
        deadline = time.monotonic() + timeout_s
        while True:
            while self._exec_records:
                record = self._exec_records.popleft()
                if record.message == "stopped":
                    return record.payload or {}
            record = self._next_record(deadline, "(waiting for the target to stop)", close=False)
            if record.kind == "exec":
                self._exec_records.append(record)

    def drop_stopped(self) -> None:
        """Forget exec records already received (before a new resume)."""
        self._exec_records.clear()

    # -- internals ---------------------------------------------------------------------------

    def _finish(self, command: str, record: MiRecord, result: MiResult) -> MiResult:
        payload = record.payload if isinstance(record.payload, dict) else {}
        if record.message == "error":
            message = str(payload.get("msg", "unknown error"))
            # a server that died explains the error better than GDB's view of it
            self.check_watched(_DEATH_SETTLE_S if "remote" in message.lower() else
                               _ERROR_SETTLE_S)
            raise GdbError(message, command=command, code=payload.get("code"))
        if record.message == "exit":
            self._exited = True
        result.message = record.message or ""
        result.payload = payload
        return result

    def _send(self, line: str) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.poll() is not None:
            raise GdbExited(self._exit_message())
        log.traffic(_log, "gdb <-", line=line if len(line) < 200 else line[:200] + "...")
        try:
            proc.stdin.write(line.encode() + b"\n")
            proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise GdbExited(self._exit_message()) from exc

    def _next_record(self, deadline: float, command: str, close: bool = True) -> MiRecord:
        while True:
            now = time.monotonic()
            if now >= self._next_watch:
                self.check_watched()
                self._next_watch = now + WATCH_INTERVAL_S
            try:
                record = self._records.get(timeout=max(0.0, min(deadline - now,
                                                                WATCH_INTERVAL_S)))
                break
            except queue.Empty:
                if time.monotonic() < deadline:
                    continue
            self.check_watched()
            if close:
                self.close(timeout_s=0.5)
            raise GdbTimeout("no answer before the deadline", command=command)
        if record is _EOF:
            self._records.put(_EOF)  # every later read sees the end too
            # gdb may die of its server's death (SIGABRT when OpenOCD is killed): the server
            # that ended is the news, and its exit status can come a moment after gdb's EOF
            self.check_watched(_DEATH_SETTLE_S)
            raise GdbExited(self._exit_message(), command=command)
        return record

    def _exit_message(self) -> str:
        code = None
        if self._proc is not None:
            try:
                code = self._proc.wait(timeout=1.0)  # its output ends a moment before it does
            except subprocess.TimeoutExpired:
                pass
        tail = self.stderr_tail()
        message = "gdb-multiarch exited" + (f" ({exit_text(code)})" if code is not None else "")
        return f"{message}: {short_text(tail, 160)}" if tail else message

    def _read_stdout(self) -> None:
        assert self._proc and self._proc.stdout
        for raw in self._proc.stdout:
            line = raw.decode("utf-8", "replace")
            try:
                record = parse_line(line)
            except Exception:  # noqa: BLE001 - a parser failure must not kill the session
                record = MiRecord("output", None, line, None, line)
            if record.kind == "prompt":
                continue
            if record.kind == "output" and record.raw:
                log.traffic(_log, "gdb output", text=record.raw[:200])
            self._records.put(record)
        self._records.put(_EOF)

    def _read_stderr(self) -> None:
        assert self._proc and self._proc.stderr
        for raw in self._proc.stderr:
            self._stderr_tail.append(raw.decode("utf-8", "replace"))

