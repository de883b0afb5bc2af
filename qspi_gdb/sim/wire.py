"""OpenOCD's remote_bitbang protocol (0.12) served on 127.0.0.1 TCP or a UNIX socket.

Protocol (host -> target, one ASCII char each; only `R` is answered, with '0'/'1'):
'0'..'7' set TCK/TMS/TDI (value - '0' = tck << 2 | tms << 1 | tdi), `R` samples TDO,
'r'..'u' set TRST/SRST (value - 'r' = trst << 1 | srst), `B`/`b` blink, `Q` quit.

OpenOCD 0.12 reads the samples back at the end of every scan, so the wire is round-trip bound:
the decoder is a tight loop that shifts Shift-DR bits inline (the TAP's other edges go through
`JtagTap.clock`), the replies of one received chunk go out in one send, a write that the reply
does not depend on is applied after the send (`BitbangDecoder(post_writes=True)`), and while
the core is halted the server polls the socket briefly before it blocks.

Modelled time: what a real probe pays for each DAP transaction, batch and halt detection
(`qspi_gdb.sim.probe`, one profile per board process); while the core runs the clock follows
wall time (`qspi_gdb.sim.pacing`); with a network profile, GDB's packets are charged through the
hop socket (`qspi_gdb.sim.nethop`).
"""

from __future__ import annotations

import os
import re
import select
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path

from qspi_gdb.log import get_logger
from qspi_gdb.sim.dap import JtagDp, build_dap
from qspi_gdb.sim.jtag import (
    CAP_DR,
    EXIT1_DR,
    IR_ABORT,
    IR_APACC,
    IR_DPACC,
    RTI,
    SHIFT_DR,
    SHIFT_IR,
    UPD_DR,
    JtagTap,
)
from qspi_gdb.sim.nethop import NetworkHop
from qspi_gdb.sim.pacing import Pacer
from qspi_gdb.sim.probe import DEFAULT_PROFILE, ProbeClock, ProbeProfile, get_profile
from qspi_gdb.sim.scs import chip_name

log = get_logger("qspi_gdb.sim.wire")

_R, _Q = ord("R"), ord("Q")
_DAP_IRS = (IR_DPACC, IR_APACC, IR_ABORT)
_RESET_FIRST, _RESET_LAST = ord("r"), ord("u")


# OpenOCD 0.12's bitbang driver (src/jtag/drivers/bitbang.c) sends a DAP scan as: from
# Run-Test/Idle "2604040" (TMS 1,0,0 to Shift-DR, then an idle low edge), 35 bit triples
# "<low edge> R <high edge>" (the last with TMS=1 into Exit1-DR), and at the start of its next
# scan "26040" (TMS 1,0 through Update-DR, where the transaction happens, to Run-Test/Idle),
# after AP accesses followed by idle clocks in Run-Test/Idle ("04" each, then "0").
_DAP_SCAN_BITS = rb"((?:[01]R[45]){34}[23]R[67])"
_SCAN_FROM_IDLE = re.compile(rb"(?:(?:04)+0)?2604040" + _DAP_SCAN_BITS)
_SCAN_FROM_EXIT1 = re.compile(rb"26040(?:(?:04)+0)?2604040" + _DAP_SCAN_BITS)
_TDI_OF_HIGH_EDGE = bytes.maketrans(b"4567", b"0101")


class BitbangDecoder:
    """Turns remote_bitbang chars into TAP edges and TDO samples (one connection).

    A whole DAP scan (the bulk of the traffic) is recognised with one regular expression and
    applied at once; everything else goes through the edge-by-edge loop.

    With `post_writes`, a chunk that ends in a DAP scan behind a write is answered before that
    write is applied: the write cannot change what the scan captures (`JtagTap.
    capture_after_pending_write`), so the server sends the reply first and applies the write
    (`finish`) while OpenOCD reads it, as a probe's write buffer would. The edges then happen in
    the same order as without it; `finish` checks that the capture is the one that was sent.
    """

    def __init__(self, tap: JtagTap, on_reset: Callable[[bool, bool], None], *,
                 post_writes: bool = False) -> None:
        self.tap = tap
        self.on_reset = on_reset
        self.post_writes = post_writes
        self.tck = 0
        self.quit = False
        self._posted: tuple[int, int] | None = None  # (captured value sent, TDI shifted in)

    def feed(self, data: bytes) -> bytes:
        """Decode `data`; return the TDO samples ('0'/'1') it asked for."""
        self.finish()
        out = bytearray()
        pos, end = 0, len(data)
        while pos < end and not self.quit:
            fast = self._dap_scan(data, pos, out)
            pos = fast if fast is not None else self._edges(data, pos, out)
        return bytes(out)

    def finish(self) -> None:
        """Apply a posted write and the capture behind it (the reply has gone out)."""
        if self._posted is None:
            return
        sent, tdi = self._posted
        self._posted = None
        tap = self.tap
        tap.state = UPD_DR
        tap.update_dr()
        tap.state = CAP_DR
        tap.capture_dr()
        if tap.sr != sent:
            raise AssertionError(f"posted capture {sent:#x} != {tap.sr:#x}")
        tap.sr = tdi
        tap.state = EXIT1_DR

    def _dap_scan(self, data: bytes, pos: int, out: bytearray) -> int | None:
        """A complete 35-bit DAP scan at `pos`: the same edges as the loop, applied at once."""
        tap = self.tap
        if tap.ir not in _DAP_IRS:
            return None
        posted = None
        if tap.state == EXIT1_DR:
            match = _SCAN_FROM_EXIT1.match(data, pos)
            if match is None:
                return None
            if self.post_writes and match.end() == len(data):
                posted = tap.capture_after_pending_write()
            if posted is None:
                tap.state = UPD_DR
                tap.update_dr()  # the previous scan's transaction
        elif tap.state == RTI:
            match = _SCAN_FROM_IDLE.match(data, pos)
            if match is None:
                return None
        else:
            return None
        if posted is None:
            tap.state = CAP_DR
            tap.capture_dr()
            captured = tap.sr
        else:
            captured = posted
        out += format(captured, "035b")[::-1].encode()
        tdi = int(match.group(1)[2::3].translate(_TDI_OF_HIGH_EDGE)[::-1], 2)
        if posted is None:
            tap.sr = tdi
            tap.state = EXIT1_DR
        else:
            self._posted = (posted, tdi)
        self.tck = 1
        return match.end()

    def _edges(self, data: bytes, pos: int, out: bytearray) -> int:
        """Decode edge by edge from `pos` until a DAP scan may start; returns the new position."""
        tap = self.tap
        clock = tap.clock
        state, sr, top = tap.state, tap.sr, tap.sr_top
        tck = self.tck
        append = out.append
        end = len(data)
        i = pos
        while i < end:
            c = data[i]
            i += 1
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
            if (state == RTI or state == EXIT1_DR) and i < end and data[i] == 50:
                break  # a DAP scan may start here
        tap.state, tap.sr, tap.sr_top = state, sr, top
        self.tck = tck
        return i


class DebugWire:
    """A board's TAP + DAP, with what a real probe pays for each transaction on its clock."""

    def __init__(self, board, *, profile: ProbeProfile | str = DEFAULT_PROFILE) -> None:
        self.board = board
        self.profile = get_profile(profile) if isinstance(profile, str) else profile
        chip = chip_name(board)
        for key in ("dap_transactions", "bytes_read", "bytes_written"):
            if key not in board.stats:
                board.stats[key] = 0
        clock = board.clock
        self.probe = ProbeClock(self.profile, clock.advance, lambda: clock.now, board.stats)
        self.hop = (NetworkHop(self.profile.network_rtt_s, self.profile.network_bps,
                               clock.advance, lambda: clock.now, board.stats)
                    if self.profile.network_rtt_s else None)
        scs = getattr(board, "scs", None)
        if scs is not None:
            scs.debug_observer = self.probe
        listeners = getattr(board, "halt_listeners", None)
        if listeners is not None:
            listeners.append(self.probe.core_halted)
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

    def _on_transaction(self, ap: bool, apsel: int, rnw: bool, reg: int) -> None:
        self.board.stats["dap_transactions"] += 1
        self.probe.transaction(ap, apsel, rnw, reg)
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
        # Injected faults act per transaction as it is applied: with any armed, every write is
        # applied before the next scan is answered.
        faults = getattr(self.board, "faults", None)
        return BitbangDecoder(self.tap, self.reset_pins, post_writes=not faults)


class RemoteBitbangServer:
    """Serves one board on 127.0.0.1:port (port 0 = a free port) or on a UNIX socket path.

    One connection at a time (OpenOCD opens one); others wait in the backlog. Single-threaded:
    the board is only ever touched from the thread that runs `serve_forever`. With
    `hop_socket_path` it also listens there for a network proxy's packet reports (the remote
    profile, `qspi_gdb.sim.nethop`).
    """

    def __init__(
        self,
        wire: DebugWire,
        *,
        port: int | None = 0,
        socket_path: str | os.PathLike | None = None,
        hop_socket_path: str | os.PathLike | None = None,
        spin_s: float = 0.0003,
        service_slice_s: float = 0.002,
        time_rate: float = 1.0,
    ) -> None:
        self.wire = wire
        self.board = wire.board
        self.pacer = Pacer(self.board, slice_s=service_slice_s, rate=time_rate)
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
        self.hop_socket_path = Path(hop_socket_path) if hop_socket_path is not None else None
        self._hop_listener: socket.socket | None = None
        self._hop_conn: socket.socket | None = None
        self._hop_buf = bytearray()
        if self.hop_socket_path is not None:
            if wire.hop is None:
                raise ValueError(f"profile {wire.profile.name} has no network hop")
            self._hop_listener = self._bind_unix(self.hop_socket_path)
            self._hop_listener.listen(1)
            self._hop_listener.setblocking(False)

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
        for sock in (self._hop_conn, self._hop_listener):
            if sock is not None:
                sock.close()
        for path in (self.socket_path, self.hop_socket_path):
            if path is not None:
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass

    # --- the network hop's reports ---

    def _hop_sockets(self) -> list[socket.socket]:
        return [s for s in (self._hop_listener, self._hop_conn) if s is not None]

    def _serve_hop(self) -> None:
        """Apply every report the proxy sent (it waits for our "ok" before it forwards)."""
        if self._hop_listener is not None and self._hop_conn is None:
            try:
                self._hop_conn, _ = self._hop_listener.accept()
                self._hop_conn.setblocking(False)
            except BlockingIOError:
                return
        if self._hop_conn is None:
            return
        try:
            data = self._hop_conn.recv(4096)
        except BlockingIOError:
            return
        except ConnectionError:
            data = b""
        if not data:
            self._hop_conn.close()
            self._hop_conn = None
            return
        self._hop_buf += data
        while b"\n" in self._hop_buf:
            line, _, rest = bytes(self._hop_buf).partition(b"\n")
            self._hop_buf = bytearray(rest)
            self.wire.hop.handle_line(line.decode())
            self._send(self._hop_conn, b"ok\n")

    # --- the loop ---

    def _idle(self, wait_on: list, timeout: float) -> list:
        """Wait for readability; meanwhile a running core runs, paced to wall time. A core
        that cannot run (halted, locked up) gets nothing: the wait then blocks, so an idle
        board costs no host CPU."""
        deadline = time.monotonic() + timeout
        wait_on = wait_on + self._hop_sockets()
        while not self._stop:
            pause = self.pacer.catch_up()
            remaining = max(0.0, deadline - time.monotonic())
            if pause is None:
                return select.select(wait_on, [], [], remaining)[0]
            ready = select.select(wait_on, [], [], min(pause, remaining))[0]
            if ready or time.monotonic() >= deadline:
                return ready
        return []

    def serve_forever(self, poll_s: float = 0.1) -> None:
        while not self._stop:
            ready = self._idle([self._listener], poll_s)
            self._serve_hop()
            if self._listener not in ready:
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

    def _recv(self, conn: socket.socket) -> bytes | None:
        """Data, b"" when the peer closed, None when nothing is there yet."""
        try:
            return conn.recv(65536)
        except BlockingIOError:
            return None
        except ConnectionError:
            return b""

    def _serve_connection(self, conn: socket.socket, poll_s: float) -> None:
        if conn.family == socket.AF_INET:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.setblocking(False)
        decoder = self.wire.decoder()
        spin_s = self.spin_s
        while not self._stop:
            if self.wire.drop_requested:  # a fault while the core ran (a power loss)
                self.wire.drop_requested = False
                log.warning("fault: debug connection dropped", endpoint=self.endpoint)
                return
            self._serve_hop()
            data = self._recv(conn)
            if data is None and spin_s and not self.pacer.running:
                data = self._spin_recv(conn, spin_s)
            if data is None:
                self._idle([conn], poll_s)
                continue
            if not data:
                decoder.finish()
                return  # peer closed
            # A running core first catches up with wall time: a halt request lands when it
            # would on silicon.
            self.pacer.catch_up(0.02)
            reply = decoder.feed(data)
            if self.wire.drop_requested:
                self.wire.drop_requested = False
                log.warning("fault: debug connection dropped", endpoint=self.endpoint)
                return  # the caller closes the connection: the probe sees the cable go
            if reply:
                try:
                    self._send(conn, reply)
                except ConnectionError:
                    decoder.finish()
                    return
            decoder.finish()  # a posted write, while OpenOCD reads the reply
            if self.wire.hop is not None:
                self.wire.hop.poll()
            if decoder.quit:
                return

    def _spin_recv(self, conn: socket.socket, spin_s: float) -> bytes | None:
        """Poll for `spin_s` before blocking: OpenOCD's next chunk follows a reply within tens
        of microseconds, and a blocking wait costs a wake-up (~50 us) on each scan. Only while
        the core is halted: a running core is paced from `_idle` instead."""
        spin_until = time.monotonic() + spin_s
        while time.monotonic() < spin_until:
            data = self._recv(conn)
            if data is not None:
                return data
        return None

    @staticmethod
    def _send(conn: socket.socket, reply: bytes) -> None:
        view = memoryview(reply)
        while view:
            try:
                view = view[conn.send(view):]
            except BlockingIOError:
                select.select([], [conn], [], 1.0)
