"""OpenOCD's remote_bitbang protocol (0.12) served on 127.0.0.1 TCP or a UNIX socket.

Protocol (host -> target, one ASCII char each; only `R` is answered, with '0'/'1'):
'0'..'7' set TCK/TMS/TDI (value - '0' = tck << 2 | tms << 1 | tdi), `R` samples TDO,
'r'..'u' set TRST/SRST (value - 'r' = trst << 1 | srst), `B`/`b` blink, `Q` quit.

OpenOCD 0.12 reads the samples back at the end of every scan, so the wire is round-trip bound:
the decoder is a tight loop that shifts Shift-DR bits inline (the TAP's other edges go through
`JtagTap.clock`), the replies of one received chunk go out in one send, and after a reply the
server polls the socket briefly before it blocks. While the core runs, the board gets
`service()` slices between batches and whenever the wire is idle.

Modelled time: each DAP transaction advances the board clock by 46 cycles of the adapter clock
(an SWD transaction), plus an optional latency per round trip (0 by default: remote_bitbang's
round trip per scan is an artefact of the test wire that real probes batch away).
"""

from __future__ import annotations

import os
import select
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path

from qspi_gdb.log import get_logger
from qspi_gdb.sim.dap import CYCLES_PER_DAP_TRANSACTION, JtagDp, build_dap
from qspi_gdb.sim.jtag import SHIFT_DR, SHIFT_IR, JtagTap
from qspi_gdb.sim.scs import chip_name

log = get_logger("qspi_gdb.sim.wire")

DEFAULT_ADAPTER_HZ = 4_000_000
_R, _Q = ord("R"), ord("Q")
_RESET_FIRST, _RESET_LAST = ord("r"), ord("u")


class BitbangDecoder:
    """Turns remote_bitbang chars into TAP edges and TDO samples (one connection)."""

    def __init__(self, tap: JtagTap, on_reset: Callable[[bool, bool], None]) -> None:
        self.tap = tap
        self.on_reset = on_reset
        self.tck = 0
        self.quit = False

    def feed(self, data: bytes) -> bytes:
        """Decode `data`; return the TDO samples ('0'/'1') it asked for."""
        tap = self.tap
        clock = tap.clock
        state, sr, top = tap.state, tap.sr, tap.sr_top
        tck = self.tck
        out = bytearray()
        append = out.append
        for c in data:
            if c == _R:
                if state == SHIFT_DR or state == SHIFT_IR:
                    append(48 | (sr & 1))
                else:
                    append(48)
            elif 52 <= c <= 55:  # TCK high
                if not tck:
                    tck = 1
                    if state == SHIFT_DR or state == SHIFT_IR:
                        sr = (sr >> 1) | ((c & 1) << top)
                        if c & 2:  # TMS=1: Shift -> Exit1 (the next state number)
                            state += 1
                            tap.state, tap.sr = state, sr
                    else:
                        clock((c >> 1) & 1, c & 1)
                        state, sr, top = tap.state, tap.sr, tap.sr_top
            elif 48 <= c <= 51:  # TCK low
                tck = 0
            elif _RESET_FIRST <= c <= _RESET_LAST:
                tap.state, tap.sr = state, sr
                bits = c - _RESET_FIRST
                self.on_reset(bool(bits & 2), bool(bits & 1))
                state, sr, top = tap.state, tap.sr, tap.sr_top
            elif c == _Q:
                self.quit = True
                break
            # 'B'/'b' (blink), 'Z'/'z' (sleep) and line noise are ignored.
        tap.state, tap.sr, tap.sr_top = state, sr, top
        self.tck = tck
        return bytes(out)


class DebugWire:
    """A board's TAP + DAP, with the modelled cost of each transaction on its clock."""

    def __init__(
        self,
        board,
        *,
        adapter_hz: float = DEFAULT_ADAPTER_HZ,
        round_trip_latency_s: float = 0.0,
    ) -> None:
        self.board = board
        self.adapter_hz = adapter_hz
        self.round_trip_latency_s = round_trip_latency_s
        self._transaction_s = CYCLES_PER_DAP_TRANSACTION / adapter_hz
        chip = chip_name(board)
        for key in ("dap_transactions", "bytes_read", "bytes_written"):
            if key not in board.stats:
                board.stats[key] = 0
        self.dp: JtagDp = build_dap(
            chip,
            board.bus,
            self._system_reset,
            protection=getattr(board, "protection", None),
            on_transaction=self._on_transaction,
            on_access=self._on_access,
        )
        self.tap = JtagTap(self.dp.dpidr, self.dp)
        self._srst = False
        self.drop_requested = False  # a wire-drop / power-loss fault: the server hangs up
        faults = getattr(board, "faults", None)
        if faults is not None:
            faults.on("dap-wait", self._wait_storm)
            faults.on("dap-fault", self._ap_faults)
            faults.on("wire-drop", self._drop)
            faults.on("power-loss", self._drop)
            self._count = faults.count
        else:
            self._count = None

    def _wait_storm(self, fault) -> None:
        # The DP answers WAIT while "the previous transaction has not completed" (ADIv5.2):
        # a slow or stalled AHB access looks like this to the probe.
        self.dp.wait_next += fault.arg
        fault.note(f"{fault.arg} WAIT acknowledges")

    def _ap_faults(self, fault) -> None:
        self.dp.fault_next += fault.arg
        fault.note(f"{fault.arg} AP transactions fault (STICKYERR)")

    def _drop(self, fault) -> None:
        self.drop_requested = True
        fault.note("debug connection dropped")

    def _on_transaction(self) -> None:
        self.board.stats["dap_transactions"] += 1
        self.board.clock.advance(self._transaction_s)
        if self._count is not None:
            self._count("dap")

    def _on_access(self, size: int, write: bool) -> None:
        # Bytes the debugger moved through the MEM-AP (data RAM, peripherals, SCS alike).
        self.board.stats["bytes_written" if write else "bytes_read"] += size

    def _system_reset(self) -> None:
        self.board.system_reset()
        scs = getattr(self.board, "scs", None)
        if scs is not None and hasattr(scs, "note_reset"):
            scs.note_reset()

    def reset_pins(self, trst: bool, srst: bool) -> None:
        if trst:
            self.tap.reset()
        if srst and not self._srst:
            log.info("srst_asserted")
            self._system_reset()
        self._srst = srst

    def decoder(self) -> BitbangDecoder:
        return BitbangDecoder(self.tap, self.reset_pins)

    def round_trip(self) -> None:
        if self.round_trip_latency_s:
            self.board.clock.advance(self.round_trip_latency_s)


class RemoteBitbangServer:
    """Serves one board on 127.0.0.1:port (port 0 = a free port) or on a UNIX socket path.

    One connection at a time (OpenOCD opens one); others wait in the backlog. Single-threaded:
    the board is only ever touched from the thread that runs `serve_forever`.
    """

    def __init__(
        self,
        wire: DebugWire,
        *,
        port: int | None = 0,
        socket_path: str | os.PathLike | None = None,
        spin_s: float = 0.0005,
        service_slice_s: float = 0.002,
    ) -> None:
        self.wire = wire
        self.board = wire.board
        self.spin_s = spin_s
        self.service_slice_s = service_slice_s
        self.socket_path = Path(socket_path) if socket_path is not None else None
        self._stop = False
        if self.socket_path is not None:
            self._listener = self._bind_unix(self.socket_path)
        else:
            self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listener.bind(("127.0.0.1", port or 0))
        self._listener.listen(4)
        self._listener.setblocking(False)

    @staticmethod
    def _bind_unix(path: Path) -> socket.socket:
        if path.exists() or path.is_symlink():
            if not stat.S_ISSOCK(path.lstat().st_mode):
                raise FileExistsError(f"{path} exists and is not a socket")
            path.unlink()  # a stale socket of an earlier run
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(path))
        return sock

    @property
    def endpoint(self) -> str:
        """`127.0.0.1:PORT` or `unix:PATH` (the form `qspi-gdb sim` prints)."""
        if self.socket_path is not None:
            return f"unix:{self.socket_path}"
        host, port = self._listener.getsockname()[:2]
        return f"{host}:{port}"

    @property
    def port(self) -> int | None:
        if self.socket_path is not None:
            return None
        return self._listener.getsockname()[1]

    def stop(self) -> None:
        """Ask serve_forever to return (safe from a signal handler or another thread)."""
        self._stop = True

    def close(self) -> None:
        self._listener.close()
        if self.socket_path is not None:
            try:
                self.socket_path.unlink()
            except FileNotFoundError:
                pass

    # --- the loop ---

    def _core_running(self) -> bool:
        core = getattr(self.board, "core", None)
        return core is not None and not core.halted and not getattr(core, "lockup", False)

    def _progress_mark(self) -> tuple:
        return (self.board.clock.now, getattr(self.board.core, "instructions", None))

    def _idle(self, wait_on: list, timeout: float) -> list:
        """Wait for readability; a running core gets the time instead of a blocking select.

        A core that makes no progress (locked up, or asleep with nothing that could wake it)
        gets no more slices: then the wait blocks, so an idle board costs no host CPU.
        """
        deadline = time.monotonic() + timeout
        while self._core_running() and not self._stop:
            ready, _, _ = select.select(wait_on, [], [], 0)
            if ready:
                return ready
            before = self._progress_mark()
            self.board.service(self.service_slice_s)
            if self._progress_mark() == before or time.monotonic() >= deadline:
                break
        remaining = max(0.0, deadline - time.monotonic())
        return select.select(wait_on, [], [], remaining)[0]

    def serve_forever(self, poll_s: float = 0.1) -> None:
        while not self._stop:
            ready = self._idle([self._listener], poll_s)
            if not ready:
                continue
            try:
                conn, _ = self._listener.accept()
            except BlockingIOError:
                continue
            log.info("client_connected", endpoint=self.endpoint)
            try:
                self._serve_connection(conn, poll_s)
            finally:
                conn.close()
                log.info("client_disconnected", endpoint=self.endpoint)

    def _serve_connection(self, conn: socket.socket, poll_s: float) -> None:
        if conn.family == socket.AF_INET:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.setblocking(False)
        decoder = self.wire.decoder()
        recv = conn.recv
        spin_s = self.spin_s
        while not self._stop:
            if self.wire.drop_requested:  # a fault while the core ran (a power loss)
                self.wire.drop_requested = False
                log.warning("fault: debug connection dropped", endpoint=self.endpoint)
                return
            try:
                data = recv(65536)
            except BlockingIOError:
                data = None
            except ConnectionError:
                return
            if data is None:
                # Nothing yet: spin briefly (the host is usually mid-round-trip), then block.
                spin_until = time.monotonic() + spin_s
                while time.monotonic() < spin_until:
                    try:
                        data = recv(65536)
                        break
                    except BlockingIOError:
                        continue
                    except ConnectionError:
                        return
                if data is None:
                    if not self._idle([conn], poll_s):
                        continue
                    try:
                        data = recv(65536)
                    except BlockingIOError:
                        continue
                    except ConnectionError:
                        return
            if not data:
                return  # peer closed
            reply = decoder.feed(data)
            if self.wire.drop_requested:
                self.wire.drop_requested = False
                log.warning("fault: debug connection dropped", endpoint=self.endpoint)
                return  # the caller closes the connection: the probe sees the cable go
            if reply:
                self.wire.round_trip()
                try:
                    self._send(conn, reply)
                except ConnectionError:
                    return
            if decoder.quit:
                return
            if self._core_running():
                self.board.service(self.service_slice_s / 8)

    @staticmethod
    def _send(conn: socket.socket, reply: bytes) -> None:
        view = memoryview(reply)
        while view:
            try:
                view = view[conn.send(view):]
            except BlockingIOError:
                select.select([], [conn], [], 1.0)
