"""A network hop between GDB and its GDB server, for the remote probe profile.

`NetworkHop` is the virtual board's side: it charges the board clock for GDB remote packets
crossing a network with a round-trip time (`ProbeProfile.network_rtt_s`) and a bandwidth. The
board never sees GDB's packets, so a proxy that sits where the network would be
(`GdbHopProxy`: GDB -> proxy -> the GDB server) reports each packet over the board's hop socket
(`python -m qspi_gdb.sim --hop-socket PATH`) and waits for the board's "ok" before forwarding
it, so the charge lands before the server acts on the packet.

The model, per packet (all in the board's modelled time):
- GDB sends a request when it has the previous reply: the request reaches the server
  RTT/2 + size/bandwidth after the reply reached GDB, which was RTT/2 + size/bandwidth after the
  server sent it. The board's clock moves to that arrival if it is not there yet; if the server
  (the probe) is still busy with earlier work, the network time overlaps it and costs nothing.
- OpenOCD answers a binary write of 8 bytes or more (`X`) at once, before writing to the target
  (server/gdb_server.c:1617-1700, fast_limit = 8): GDB then sends its next packet while the probe
  writes, so consecutive writes overlap the network. The server reads that next packet once
  the write is done: the board charges it then (the proxy reports it at once, in wall time).
- An interrupt (Ctrl-C, `\\x03`) is sent while the core runs: the proxy holds it RTT/2 of wall
  time, during which the running core (paced to wall time) goes on running.
"""

from __future__ import annotations

import re
import select
import socket
import threading
import time
from collections.abc import Callable, MutableMapping
from pathlib import Path

OK_REPLY_BYTES = 6  # "$OK#9a"


class NetworkHop:
    def __init__(self, rtt_s: float, bps: float, advance: Callable[[float], None],
                 now: Callable[[], float], stats: MutableMapping) -> None:
        self.rtt_s = rtt_s
        self.bps = bps
        self._advance = advance
        self._now = now
        self.stats = stats
        self._gdb_ready: float | None = None  # when GDB holds the last reply
        self._early_oks = 0  # replies already accounted (OpenOCD's immediate OK to an X)
        # The proxy reports GDB's packet after an early OK at once, in wall time, while the
        # server has yet to write that X to the target: the server reads the packet only once
        # `stats["bytes_written"]` reaches `_written_at`, and its network time is charged then
        # (`poll`), so that it overlaps the write, as on a real link.
        self._written_at: int | None = None
        self._held: tuple[int, str, int] | None = None
        stats.setdefault("network_exchanges", 0)
        stats.setdefault("network_wait_s", 0.0)
        stats.setdefault("bytes_written", 0)

    def _wire_s(self, nbytes: int) -> float:
        return nbytes * 8 / self.bps

    def request(self, nbytes: int, kind: str, payload: int = 0) -> None:
        """A GDB packet reaches the proxy. kind: "plain", "fast" (an X of `payload` bytes the
        server acknowledges before writing) or "interrupt" (held in wall time by the proxy)."""
        self.stats["network_exchanges"] += 1
        if kind == "interrupt":
            return
        self._release()  # GDB sent this one: the server has read the one before
        if self._written_at is not None and self.stats["bytes_written"] < self._written_at:
            self._held = (nbytes, kind, payload)
            return
        self._arrive(nbytes, kind, payload)

    def poll(self) -> None:
        """After the server's work on the target: a held packet is read once the X before it
        is written."""
        if self._held is not None and self.stats["bytes_written"] >= self._written_at:
            self._release()

    def _release(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._arrive(*held)

    def _arrive(self, nbytes: int, kind: str, payload: int) -> None:
        now = self._now()
        sent = self._gdb_ready if self._gdb_ready is not None else now
        arrival = sent + self._wire_s(nbytes) + self.rtt_s / 2
        if arrival > now:
            self.stats["network_wait_s"] += arrival - now
            self._advance(arrival - now)
        self._written_at = None
        if kind == "fast":
            self._early_oks += 1
            self._gdb_ready = max(arrival, self._now()) + self._wire_s(OK_REPLY_BYTES) + \
                self.rtt_s / 2
            self._written_at = self.stats["bytes_written"] + payload

    def reply(self, nbytes: int) -> None:
        """A server packet reaches the proxy (on its way to GDB)."""
        self._release()  # an answer: the server has read the request
        if self._early_oks:
            self._early_oks -= 1
            return
        self._gdb_ready = self._now() + self._wire_s(nbytes) + self.rtt_s / 2

    def handle_line(self, line: str) -> None:
        """One message of the hop socket: `req N KIND [PAYLOAD]` or `rsp N`."""
        words = line.split()
        if len(words) in (3, 4) and words[0] == "req":
            self.request(int(words[1]), words[2], int(words[3]) if len(words) == 4 else 0)
        elif len(words) == 2 and words[0] == "rsp":
            self.reply(int(words[1]))
        else:
            raise ValueError(f"bad hop message {line!r}")


# -- the proxy (test bed: it sits where the network would be) --------------------------------

_X_HEADER = re.compile(rb"^\$X[0-9a-fA-F]+,([0-9a-fA-F]+):")


class _Framer:
    """Splits one direction of GDB remote traffic into packets: `$...#xx`, a bare `\\x03`,
    acks `+`/`-` (passed along with the next packet)."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[bytes, str]]:
        """(bytes to forward, kind) per complete unit; kind "packet", "interrupt" or "ack"."""
        self.buf += data
        out = []
        while self.buf:
            first = self.buf[0]
            if first == 0x03:
                out.append((bytes(self.buf[:1]), "interrupt"))
                del self.buf[:1]
            elif first in b"+-":
                out.append((bytes(self.buf[:1]), "ack"))
                del self.buf[:1]
            elif first in b"$%":
                end = self.buf.find(b"#")
                if end < 0 or len(self.buf) < end + 3:
                    break
                out.append((bytes(self.buf[:end + 3]), "packet"))
                del self.buf[:end + 3]
            else:  # noise between packets: pass it on
                out.append((bytes(self.buf[:1]), "ack"))
                del self.buf[:1]
        return out


def request_kind(packet: bytes) -> str:
    return "fast" if x_payload(packet) >= 8 else "plain"


def x_payload(packet: bytes) -> int:
    """The data length of a binary write (`X`), 0 for other packets."""
    match = _X_HEADER.match(packet)
    return int(match.group(1), 16) if match else 0


class GdbHopProxy:
    """127.0.0.1 TCP proxy GDB -> `upstream` (HOST:PORT of a GDB server) that reports each
    packet to a virtual board's hop socket. One GDB connection at a time; `close()` ends it."""

    def __init__(self, upstream: str, hop_socket: str | Path, *, rtt_s: float) -> None:
        host, _, port = upstream.rpartition(":")
        self.upstream = (host, int(port))
        self.rtt_s = rtt_s
        self._hop = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._hop.connect(str(hop_socket))
        self._hop_file = self._hop.makefile("rb")
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="gdb-hop", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        host, port = self._listener.getsockname()[:2]
        return f"{host}:{port}"

    def _tell(self, message: str) -> None:
        with self._lock:
            self._hop.sendall(message.encode() + b"\n")
            answer = self._hop_file.readline()
        if answer.strip() != b"ok":
            raise ConnectionError(f"virtual board hop socket answered {answer!r}")

    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._listener], [], [], 0.1)
            if not ready:
                continue
            gdb, _ = self._listener.accept()
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                gdb.close()
                continue
            for sock in (gdb, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                self._pump(gdb, server)
            finally:
                gdb.close()
                server.close()

    def _pump(self, gdb: socket.socket, server: socket.socket) -> None:
        to_server, to_gdb = _Framer(), _Framer()
        while not self._stop.is_set():
            ready, _, _ = select.select([gdb, server], [], [], 0.1)
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                if sock is gdb:
                    for unit, kind in to_server.feed(data):
                        if kind == "packet":
                            fast = request_kind(unit) == "fast"
                            self._tell(f"req {len(unit)} fast {x_payload(unit)}" if fast
                                       else f"req {len(unit)} plain")
                        elif kind == "interrupt":
                            self._tell("req 1 interrupt")
                            time.sleep(self.rtt_s / 2)  # the core keeps running meanwhile
                        server.sendall(unit)
                else:
                    for unit, kind in to_gdb.feed(data):
                        if kind == "packet":
                            self._tell(f"rsp {len(unit)}")
                        gdb.sendall(unit)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._listener.close()
        self._hop_file.close()
        self._hop.close()

    def __enter__(self) -> GdbHopProxy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
