"""A serial NOR flash chip as a host on its SPI/QSPI pins sees it.

The chip is modelled at the level of SCK clocks on IO0..IO3 within one CS# frame: the host's
frame is a list of segments (bytes driven on 1/2/4 lines, dummy clocks, bytes sampled), and
the chip parses those clocks with *its own* expectations (opcode -> address bytes per its
current 3/4-byte mode, address lines, dummy clocks from its SFDP, data lines). So 4 address
bytes sent to a chip in 3-byte mode give a wrong address and shift the data, a dummy-count
mismatch shifts read data by whole clocks, and undriven lines read as 1 (0xFF) — as on a logic
analyser. Effects (program, erase, register writes) happen when CS# rises, and only if the
frame ended on the byte boundary the datasheets demand.

Interfaces:
- `transfer(tx, rx_len)` one 1-1-1 frame; `begin()/shift()/end()` a 1-1-1 frame in pieces
  (long-frame custom instructions); `frame(...)` one multi-I/O frame (QSPI peripheral).
- `advance(seconds)` moves the chip's time: program/erase/WRSR complete when their typical
  busy time (from the part's SFDP) has elapsed.
- Backing store: a raw file of exactly the chip size, 0xFF-filled when created, memory-mapped
  (MAP_SHARED) so every change is in the file at once and other processes see it.
"""

from __future__ import annotations

import mmap
import os
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from qspi_gdb.log import get_logger
from qspi_gdb.sim.faults import Fault, FaultPlan, flip_bits, mixed_bits
from qspi_gdb.sim.parts import Addr, Command, Kind, PartModel, get_part

log = get_logger("qspi_gdb.sim.nor")

SR_WIP = 0x01
SR_WEL = 0x02
_LINES = (1, 2, 4)
_HEADER_BYTES = 16  # > opcode + 4 address bytes + any dummy that matters for decoding
_DONE_EPSILON = 1e-12  # seconds: float residue below this counts as "time has elapsed"


# ---------------------------------------------------------------------------------------------
# The host's side of one CS# frame.


@dataclass
class Segment:
    """Part of a frame: `out` = host drives `payload` on `lines` lines; `dummy` = `clocks`
    clocks nobody drives; `in` = host samples `nbytes` bytes on `lines` lines. On one line the
    host drives IO0 and samples IO1 (full duplex), so 1-line `out` segments are sampled too."""

    kind: str
    lines: int = 1
    payload: bytes = b""
    nbytes: int = 0
    clocks: int = 0
    _int: int | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.lines not in _LINES:
            raise ValueError(f"lines must be 1, 2 or 4, not {self.lines}")
        if self.kind == "out":
            self.nbytes = len(self.payload)
        if self.kind in ("out", "in"):
            self.clocks = self.nbytes * 8 // self.lines

    @property
    def as_int(self) -> int:
        if self._int is None:
            self._int = int.from_bytes(self.payload, "big")
        return self._int

    def nibble(self, k: int) -> int:
        """IO3..IO0 levels the host drives at clock k of this segment (undriven lines = 1)."""
        if self.kind != "out":
            return 0xF
        bit = k * self.lines
        v = self.payload[bit // 8] >> (8 - self.lines - bit % 8) & ((1 << self.lines) - 1)
        return {1: 0b1110, 2: 0b1100, 4: 0}[self.lines] | v


def _nibble_from_output(bits: int, lines: int) -> int:
    """IO3..IO0 levels when the chip drives `bits` on its output lines (1-line = IO1)."""
    if lines == 1:
        return 0b1101 | bits << 1
    if lines == 2:
        return 0b1100 | bits
    return bits


class HostFrame:
    def __init__(self, segments: list[Segment]) -> None:
        self.segments = segments
        self.starts: list[int] = []
        t = 0
        for seg in segments:
            self.starts.append(t)
            t += seg.clocks
        self.clocks = t

    def received(self, start: int, nclocks: int, lines: int) -> tuple[int, int]:
        """(value, nbits) a chip sampling `lines` lines (1-line = IO0) sees over the clocks."""
        value = nbits = 0
        c, end = start, min(start + nclocks, self.clocks)
        while c < end:
            i = bisect_right(self.starts, c) - 1
            seg, s0 = self.segments[i], self.starts[i]
            stop = min(end, s0 + seg.clocks)
            n = stop - c
            if seg.kind == "out" and seg.lines == lines:
                total = seg.nbytes * 8
                lo, hi = (c - s0) * lines, (stop - s0) * lines
                chunk = seg.as_int >> (total - hi) & ((1 << (hi - lo)) - 1)
            elif seg.kind != "out":
                chunk = (1 << (n * lines)) - 1
            else:
                chunk = 0
                for k in range(c - s0, stop - s0):
                    nib = seg.nibble(k)
                    chunk = chunk << lines | (nib & 1 if lines == 1 else nib & ((1 << lines) - 1))
            value = value << (n * lines) | chunk
            nbits += n * lines
            c = stop
        return value, nbits

    def received_bytes(self, start: int, lines: int) -> tuple[bytes, bool]:
        """Bytes a chip receives from clock `start` to CS# rise; False if not byte-aligned."""
        if start >= self.clocks:
            return b"", start == self.clocks
        i = bisect_right(self.starts, start) - 1
        seg, s0 = self.segments[i], self.starts[i]
        if i == len(self.segments) - 1 and seg.kind == "out" and seg.lines == lines:
            bit = (start - s0) * lines
            if bit % 8 == 0:  # the common case: data phase lines up with the host's bytes
                return seg.payload[bit // 8 :], True
        value, nbits = self.received(start, self.clocks - start, lines)
        if nbits % 8:
            return b"", False
        return value.to_bytes(nbits // 8, "big"), True


def _bits_from_stream(fetch: Callable[[int, int], bytes], bitoff: int, nbits: int) -> int:
    """nbits of a byte stream starting at bit offset `bitoff` (negative: undriven 1s first)."""
    if nbits <= 0:
        return 0
    if bitoff < 0:
        lead = min(-bitoff, nbits)
        rest = nbits - lead
        return ((1 << lead) - 1) << rest | _bits_from_stream(fetch, 0, rest)
    first, last = bitoff // 8, (bitoff + nbits + 7) // 8
    v = int.from_bytes(fetch(first, last - first), "big")
    shift = (last - first) * 8 - (bitoff - first * 8) - nbits
    return v >> shift & ((1 << nbits) - 1)


# ---------------------------------------------------------------------------------------------
# The chip.


@dataclass(frozen=True)
class _Snapshot:
    """Chip state that decides how a frame is parsed, taken when CS# falls."""

    busy: bool
    asleep: bool  # deep power-down, or still waking from it
    four_byte: bool
    quad_ok: bool
    reset_armed: bool


@dataclass
class _Operation:
    """The program or erase under way (what a power loss interrupts)."""

    kind: Kind  # PROGRAM or ERASE (CHIP_ERASE as ERASE of the whole array)
    addr: int
    size: int
    data: bytes = b""  # PROGRAM: the bytes the frame carried
    fail: Fault | None = None  # it will fail (program-fail / erase-fail)


@dataclass
class _Decoded:
    opcode: int | None
    cmd: Command | None
    addr: int | None = None  # None: no address or frame ended inside it
    addr_end: int = 8  # clock where the address phase ends
    data_start: int = 8  # clock where the chip's data phase starts


class NorFlash:
    def __init__(self, part: PartModel, store: mmap.mmap, file=None) -> None:
        self.part = part
        self.size = part.size
        self.jedec_id = part.jedec_id
        self._mem = store
        self._file = file
        self._sr = 0  # non-volatile SR1 bits + WEL; WIP comes from _busy_remaining
        self._cr = bytearray(2)  # Macronix configuration registers CR1, CR2
        self._nvcr = 0xFFFF  # Micron NV configuration register (bit0 = 0: 4-byte at power-up)
        self._busy_remaining = 0.0
        self._pending: Callable[[], None] | None = None
        self._wake_remaining = 0.0
        # the part's fail bits (Micron flag status 0x20 erase, 0x10 program, 0x02 protection;
        # Macronix security register; ISSI extended read register: part.fail_bits)
        self._fail_flags = 0
        self._operation: _Operation | None = None
        self._stuck = False  # a wip-stuck fault: the operation under way never ends
        self.faults = FaultPlan()  # the board replaces it with its --fault plan
        self._session: bytearray | None = None
        self._session_snap: _Snapshot | None = None
        self._session_sent = 0
        self.driven_by = None  # the Clock whose on_advance drives advance() (set by NrfQspi)
        self.stats = {"frames": 0, "ignored": 0, "programs": 0, "erases": 0, "busy_time": 0.0}
        self._power_up_volatile()

    # --- construction ---------------------------------------------------------------------

    @classmethod
    def from_part(cls, name: str, backing: str | os.PathLike | None = None) -> NorFlash:
        try:
            part = get_part(name)
        except ValueError as e:
            where = f" (backing file {os.fspath(backing)!r})" if backing is not None else ""
            raise ValueError(f"{e}{where}") from None
        if backing is None:
            store = mmap.mmap(-1, part.size)
            _fill_ff(store.write, part.size)
            return cls(part, store)
        path = Path(backing)
        if path.exists():
            actual = path.stat().st_size
            if actual != part.size:
                raise ValueError(
                    f"backing file {str(path)!r} is {actual} bytes but part {part.name!r} "
                    f"is {part.size} bytes"
                )
        else:
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                _fill_ff(f.write, part.size)
            os.replace(tmp, path)  # atomic: another process never sees a half-filled chip
        f = open(path, "r+b")
        return cls(part, mmap.mmap(f.fileno(), part.size), f)

    def flush(self) -> None:
        if self._file is not None:
            self._mem.flush()

    def close(self) -> None:
        if self._mem.closed:
            return
        self.flush()
        self._mem.close()
        if self._file is not None:
            self._file.close()

    def __enter__(self) -> NorFlash:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- observable state -----------------------------------------------------------------

    @property
    def busy_remaining(self) -> float:
        """Seconds until WIP clears (0.0 when idle)."""
        return self._busy_remaining if self._pending is not None else 0.0

    @property
    def four_byte_mode(self) -> bool:
        return self._four_byte

    @property
    def status(self) -> int:
        """SR1 as RDSR would return it."""
        return self._sr | (SR_WIP if self._pending is not None else 0)

    @property
    def quad_enabled(self) -> bool:
        qe = self.part.qe_mask
        return qe is None or bool(self._sr & qe)

    @property
    def selected(self) -> bool:
        """CS# is low (a begin() frame is open)."""
        return self._session is not None

    @property
    def time_to_ready(self) -> float:
        """Seconds until the chip answers RDSR with WIP=0 by itself (busy or waking up);
        0.0 when it already does or never will (deep power-down without a wake-up)."""
        if self._stuck:
            return 0.0
        return max(self.busy_remaining, self._wake_remaining)

    @property
    def deep_power_down(self) -> bool:
        return self._dpd or self._wake_remaining > 0

    def peek(self, offset: int, length: int) -> bytes:
        """Array contents without any bus traffic (for tests and the board's reports)."""
        return bytes(self._mem[offset : offset + length])

    # --- time -----------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self._wake_remaining > 0:
            self._wake_remaining = max(0.0, self._wake_remaining - seconds)
            if self._wake_remaining <= _DONE_EPSILON:
                self._wake_remaining = 0.0
        if self._pending is not None and not self._stuck:
            self._busy_remaining -= seconds
            if self._busy_remaining <= _DONE_EPSILON:
                done, self._pending = self._pending, None
                self._busy_remaining = 0.0
                done()
                self._sr &= ~SR_WEL

    def power_on_reset(self) -> None:
        """Power cycle: an operation in progress is lost; non-volatile bits (SR, CR) stay."""
        self._pending = None
        self._operation = None
        self._stuck = False
        self._busy_remaining = 0.0
        self._wake_remaining = 0.0
        self._sr &= ~SR_WEL
        self._power_up_volatile()

    def _power_up_volatile(self) -> None:
        self._four_byte = self.part.commands.get(0xB1) is not None and not (self._nvcr & 1)
        self._ear = 0
        self._bank = 0x80 if self._four_byte and 0x17 in self.part.commands else 0
        self._dpd = False
        self._reset_armed = False
        self._fail_flags = 0

    def _soft_reset(self) -> None:
        self._sr &= ~SR_WEL
        self._power_up_volatile()

    # --- frames ---------------------------------------------------------------------------

    def transfer(self, tx: bytes, rx_len: int = 0) -> bytes:
        """One CS# frame in 1-1-1 mode; returns the rx_len bytes on SO after `tx`."""
        self.begin()
        try:
            out = self.shift(bytes(tx) + b"\xff" * rx_len)
        finally:
            self.end()
        return out[len(tx) :]

    def begin(self) -> None:
        """CS# falls: start a 1-1-1 frame that `shift` extends and `end` closes."""
        if self._session is not None:
            raise RuntimeError("CS# is already low")
        self._session = bytearray()
        self._session_sent = 0
        self._session_snap = self._snapshot()

    def shift(self, mosi: bytes) -> bytes:
        """Clock bytes out on SI (IO0); returns what the chip drove on SO (IO1) meanwhile."""
        if self._session is None:
            raise RuntimeError("shift() without begin()")
        self._session += mosi
        # The command is decided by its first bytes (opcode + up to 4 address bytes), so a
        # long frame shifted in many pieces stays linear in its length.
        header = HostFrame([Segment("out", 1, bytes(self._session[:_HEADER_BYTES]))])
        dec = self._decode(header, self._session_snap)
        start = self._session_sent * 8
        self._session_sent += len(mosi)
        return self._sample(dec, start, len(mosi) * 8, 1)

    def end(self) -> None:
        """CS# rises: the frame's command takes effect."""
        if self._session is None:
            raise RuntimeError("end() without begin()")
        host = HostFrame([Segment("out", 1, bytes(self._session))])
        snap = self._session_snap
        self._session = None
        self._execute(host, self._decode(host, snap), snap)

    def frame(
        self,
        opcode: int,
        *,
        address: bytes = b"",
        addr_lines: int = 1,
        dummy_cycles: int = 0,
        data: bytes = b"",
        data_lines: int = 1,
        rx_len: int = 0,
    ) -> bytes:
        """One multi-I/O CS# frame: opcode on IO0, address on `addr_lines`, `dummy_cycles`
        undriven clocks, then `data` driven or `rx_len` bytes sampled on `data_lines`.
        Returns the sampled bytes. The chip parses the clocks by its own rules."""
        if self._session is not None:
            raise RuntimeError("CS# is already low")
        segments = [Segment("out", 1, bytes([opcode]))]
        if address:
            segments.append(Segment("out", addr_lines, bytes(address)))
        if dummy_cycles:
            segments.append(Segment("dummy", clocks=dummy_cycles))
        if data:
            segments.append(Segment("out", data_lines, bytes(data)))
        if rx_len:
            segments.append(Segment("in", data_lines, nbytes=rx_len))
        host = HostFrame(segments)
        snap = self._snapshot()
        dec = self._decode(host, snap)
        rx = b""
        if rx_len:
            rx = self._sample(dec, host.starts[-1], segments[-1].clocks, data_lines)
            if dec.cmd is not None and dec.cmd.kind is Kind.READ:
                rx = self.read_faults(rx)
        self._execute(host, dec, snap)
        return rx

    # --- parsing ----------------------------------------------------------------------------

    def _snapshot(self) -> _Snapshot:
        return _Snapshot(
            busy=self._pending is not None,
            asleep=self.deep_power_down,
            four_byte=self._four_byte,
            quad_ok=self.quad_enabled,
            reset_armed=self._reset_armed,
        )

    def _accepts(self, opcode: int, snap: _Snapshot) -> Command | None:
        cmd = self.part.commands.get(opcode)
        if cmd is None:
            return None
        if snap.asleep:
            return None  # only the wake-up at CS# rise (see _execute)
        if snap.busy and cmd.kind not in (Kind.RDSR, Kind.RDFSR):
            return None
        if cmd.quad and not snap.quad_ok:
            return None  # IO2/IO3 are WP#/HOLD# while QE=0: the chip does not run quad commands
        return cmd

    def _decode(self, host: HostFrame, snap: _Snapshot) -> _Decoded:
        if host.clocks < 8:
            return _Decoded(None, None)
        opcode, _ = host.received(0, 8, 1)
        cmd = self._accepts(opcode, snap)
        if cmd is None:
            return _Decoded(opcode, None)
        nbytes = {Addr.NONE: 0, Addr.THREE: 3, Addr.FOUR: 4}.get(cmd.addr, 4 if snap.four_byte else 3)
        addr_end = 8 + nbytes * 8 // cmd.addr_lines
        dec = _Decoded(opcode, cmd, addr_end=addr_end, data_start=addr_end + cmd.dummy)
        if nbytes and host.clocks >= addr_end:
            raw, _ = host.received(8, addr_end - 8, cmd.addr_lines)
            dec.addr = raw if cmd.kind is Kind.RDSFDP else self._array_address(raw, nbytes)
        return dec

    def _array_address(self, raw: int, nbytes: int) -> int:
        if nbytes == 3:
            if 0x17 in self.part.commands:  # bank register: BA24 selects the upper 16 MiB
                raw |= (self._bank & 0x01) << 24
            elif 0xC5 in self.part.commands:
                raw |= self._ear << 24
        return raw & (self.size - 1)

    def _output(self, dec: _Decoded) -> Callable[[int, int], bytes] | None:
        """The chip's output stream for this frame's command, as fetch(offset, n)."""
        cmd = dec.cmd
        if cmd is None:
            return None
        kind = cmd.kind
        if kind is Kind.READ:
            if dec.addr is None:
                return None
            base = dec.addr
            return lambda off, n: self._read_wrapped((base + off) % self.size, n)
        if kind is Kind.RDSFDP:
            if dec.addr is None:
                return None
            image, base = self.part.sfdp, dec.addr
            return lambda off, n: (image[base + off : base + off + n]).ljust(n, b"\xff")
        if kind is Kind.RDID:
            ident = self.jedec_id
            return lambda off, n: (ident[off : off + n]).ljust(n, b"\xff")
        regs: dict[Kind, Callable[[], bytes]] = {
            Kind.RDSR: lambda: bytes([self.status]),  # live: WIP can clear mid-frame
            Kind.RDCR: lambda: bytes(self._cr),
            Kind.RDBR: lambda: bytes([self._bank]),
            Kind.RDEAR: lambda: bytes([self._ear]),
            Kind.RDFSR: lambda: bytes([(0 if self._pending else 0x80) | self._fail_flags
                                       | int(self._four_byte)]),
            Kind.RDSCUR: lambda: bytes([self._fail_flags]),
            Kind.RDERP: lambda: bytes([self._fail_flags]),
            Kind.RDNVCR: lambda: self._nvcr.to_bytes(2, "little"),
        }
        if kind is Kind.RDP and self.part.electronic_signature is not None:
            sig = self.part.electronic_signature
            regs[Kind.RDP] = lambda: bytes([sig])
        if kind in regs:
            reg = regs[kind]
            return lambda off, n: _repeat(reg(), off, n)
        return None

    def _read_wrapped(self, addr: int, n: int) -> bytes:
        if addr + n <= self.size:
            return self._mem[addr : addr + n]
        out = bytearray()
        while len(out) < n:
            take = min(n - len(out), self.size - addr)
            out += self._mem[addr : addr + take]
            addr = 0
        return bytes(out)

    def _sample(self, dec: _Decoded, start: int, nclocks: int, lines: int) -> bytes:
        """What the host samples on `lines` lines (1-line = IO1) over the given clocks."""
        nbytes = nclocks * lines // 8
        fetch = self._output(dec)
        if fetch is None:
            return b"\xff" * nbytes
        out_lines = dec.cmd.data_lines
        if lines == out_lines:
            bitoff = (start - dec.data_start) * lines
            if bitoff >= 0 and bitoff % 8 == 0:
                return bytes(fetch(bitoff // 8, nbytes))
            value = _bits_from_stream(fetch, bitoff, nbytes * 8)
            return value.to_bytes(nbytes, "big")
        value = 0  # line-count mismatch: go clock by clock (short frames only in practice)
        for c in range(start, start + nclocks):
            k = c - dec.data_start
            if k < 0:
                nib = 0xF
            else:
                nib = _nibble_from_output(_bits_from_stream(fetch, k * out_lines, out_lines), out_lines)
            value = value << lines | (nib >> 1 & 1 if lines == 1 else nib & ((1 << lines) - 1))
        return value.to_bytes(nbytes, "big")

    # --- effects at CS# rise --------------------------------------------------------------

    def _execute(self, host: HostFrame, dec: _Decoded, snap: _Snapshot) -> None:
        self.stats["frames"] += 1
        self._reset_armed = False
        if host.clocks == 0:
            return
        self.faults.count("cmd")
        if snap.asleep:
            if self._dpd and (self.part.dpd_wake_on_any_frame or dec.opcode == 0xAB):
                self._dpd = False
                self._wake_remaining = self.part.timings.dpd_exit
            return
        cmd = dec.cmd
        if cmd is None:
            self._ignore(dec, "unknown opcode, busy, or quad command with QE=0")
            return
        kind = cmd.kind
        wel = bool(self._sr & SR_WEL)
        if kind in (Kind.READ, Kind.RDSR, Kind.RDCR, Kind.RDID, Kind.RDSFDP, Kind.RDBR,
                    Kind.RDEAR, Kind.RDFSR, Kind.RDNVCR, Kind.RDP, Kind.RDSCUR, Kind.RDERP):
            return
        # Every other command must end exactly on a byte boundary of its data phase.
        if kind in (Kind.PROGRAM, Kind.WRSR, Kind.WRBR, Kind.WREAR, Kind.WRNVCR):
            if host.clocks < dec.data_start:
                return self._ignore(dec, "frame ended before the data phase")
            data, aligned = host.received_bytes(dec.data_start, cmd.data_lines)
            if not aligned or not data:
                return self._ignore(dec, "CS# not at a data byte boundary")
        elif kind is Kind.ERASE:
            if host.clocks != dec.addr_end:
                return self._ignore(dec, "CS# not right after the address")
        elif host.clocks != 8:
            return self._ignore(dec, "CS# not right after the opcode")

        t = self.part.timings
        if kind is Kind.WREN:
            self._sr |= SR_WEL
        elif kind is Kind.WRDI:
            self._sr &= ~SR_WEL
        elif kind is Kind.RSTEN:
            self._reset_armed = True
        elif kind in (Kind.CLFSR, Kind.CLERP):
            self._fail_flags = 0
        elif kind is Kind.RST:
            if snap.reset_armed:
                self._soft_reset()
        elif kind is Kind.DP:
            self._dpd = True
        elif kind in (Kind.EN4B, Kind.EX4B):
            needs = self.part.en4b_needs_wren if kind is Kind.EN4B else self.part.ex4b_needs_wren
            if needs and not wel:
                return self._ignore(dec, "needs WREN")
            self._four_byte = kind is Kind.EN4B
            self._bank = (self._bank & 0x7F) | (0x80 if self._four_byte else 0)
            if needs:
                self._sr &= ~SR_WEL
        elif kind is Kind.WRBR:
            if len(data) != 1:
                return self._ignore(dec, "bank register takes one byte")
            self._bank = data[0] & (0x80 | ((self.size - 1) >> 24))
            self._four_byte = bool(self._bank & 0x80)
        elif kind is Kind.WREAR:
            if self.part.ear_needs_wren and not wel:
                return self._ignore(dec, "needs WREN")
            if len(data) != 1:
                return self._ignore(dec, "EAR takes one byte")
            self._ear = data[0] & ((self.size - 1) >> 24)
            self._sr &= ~SR_WEL
        elif not wel:
            return self._ignore(dec, "WEL not set")
        elif kind is Kind.WRSR:
            if len(data) > cmd.max_data:
                return self._ignore(dec, "too many status bytes")
            self._start_busy(t.wrsr_typ, lambda d=bytes(data): self._write_status(d))
        elif kind is Kind.WRNVCR:
            if len(data) != 2:
                return self._ignore(dec, "NVCR takes two bytes")
            value = int.from_bytes(data, "little")
            self._start_busy(t.wrsr_typ, lambda: setattr(self, "_nvcr", value))
        elif kind is Kind.PROGRAM:
            if dec.addr is None:
                return self._ignore(dec, "no address")
            if self._protected(dec.addr, 1):
                return self._protection_fault(dec, program=True)
            self.stats["programs"] += 1
            self._begin(_Operation(Kind.PROGRAM, dec.addr, len(data), bytes(data)),
                        t.program_time(len(data), self.part.page_size))
        elif kind is Kind.ERASE:
            base = dec.addr & ~(cmd.size - 1)
            if self._protected(base, cmd.size):
                return self._protection_fault(dec, program=False)
            self.stats["erases"] += 1
            self._begin(_Operation(Kind.ERASE, base, cmd.size), t.erase_typ[cmd.size])
        elif kind is Kind.CHIP_ERASE:
            if self.part.protected_range(self._sr) is not None:
                return self._protection_fault(dec, program=False)  # chip erase needs all BP bits 0
            self.stats["erases"] += 1
            self._begin(_Operation(Kind.ERASE, 0, self.size), t.chip_erase_typ)

    def _protected(self, addr: int, length: int) -> bool:
        rng = self.part.protected_range(self._sr)
        return rng is not None and addr < rng[1] and rng[0] < addr + length

    def _protection_fault(self, dec: _Decoded, *, program: bool) -> None:
        """Program/erase into a block-protected area: not executed (WEL kept); the part's fail
        register reports it (Micron: the operation's bit and the protection bit; Macronix:
        P_FAIL/E_FAIL; ISSI: PROT_E)."""
        bits = self.part.fail_bits
        if bits is not None:
            own = bits.program if program else bits.erase
            self._fail_flags |= bits.protect | (own if bits.register is not Kind.RDERP else 0)
        self._ignore(dec, "block-protected area (BP bits)")

    def _ignore(self, dec: _Decoded, why: str) -> None:
        self.stats["ignored"] += 1
        log.debug("nor.ignored", part=self.part.name, opcode=dec.opcode, why=why)

    # --- program / erase, and the faults that strike them --------------------------------

    def _begin(self, op: _Operation, seconds: float) -> None:
        """Start a program or erase. The fault plan counts it first: a power loss due now
        interrupts it at once; a due fail, weak-cell or stuck-WIP fault changes how it ends."""
        self._operation = op
        self._start_busy(seconds, self._finish)
        plan = self.faults
        if op.kind is Kind.PROGRAM:
            plan.count("program")
            plan.count("byte", op.size)
        else:
            plan.count("erase")
        if self._operation is not op:
            return  # a power loss cut it short
        if not plan:
            return
        op.fail = plan.take("program-fail" if op.kind is Kind.PROGRAM else "erase-fail")
        if op.fail is not None:
            op.fail.note(f"{op.kind.value} at 0x{op.addr:08X} fails")
        if op.kind is Kind.PROGRAM and (weak := plan.take("program-flip")) is not None:
            op.data = self._weak_cells(op, weak)
        if (stuck := plan.take("wip-stuck")) is not None:
            self._stuck = True
            stuck.note(f"{op.kind.value} at 0x{op.addr:08X} never ends (WIP stuck)")

    def _weak_cells(self, op: _Operation, fault: Fault) -> bytes:
        """Cells that do not program: `fault.arg` bits that the page program should clear stay
        1 (a weak cell; the chip reports nothing, only reading the data back finds it)."""
        old = self.peek(op.addr, op.size) if op.addr + op.size <= self.size else b""
        data = bytearray(op.data)
        clearing = [i for i in range(len(old) * 8)
                    if old[i // 8] >> (7 - i % 8) & 1 and not data[i // 8] >> (7 - i % 8) & 1]
        for bit in fault.rng.sample(clearing, min(fault.arg, len(clearing))):
            data[bit // 8] |= 0x80 >> (bit % 8)
            fault.note(f"bit {bit % 8} of 0x{op.addr + bit // 8:08X} stays 1")
        return bytes(data)

    def _finish(self) -> None:
        op, self._operation = self._operation, None
        if op is None:
            return
        bits = self.part.fail_bits
        flag = 0 if bits is None else (bits.program if op.kind is Kind.PROGRAM else bits.erase)
        if op.fail is None:
            self._apply(op, None)
            if bits is not None and bits.cleared_by_success:
                self._fail_flags &= ~flag
            return
        # A failed program/erase: the datasheets promise only the fail bit; the cells it
        # reached hold a mix of old and new values. Parts without fail bits: bytes that do
        # not take, and nothing tells.
        self._apply(op, op.fail.rng)
        self._fail_flags |= flag

    def _apply(self, op: _Operation, rng) -> None:
        """Carry out `op` in the array, or with `rng` only partly (each changing bit may or
        may not take)."""
        for at, new in self._targets(op):
            if rng is not None:
                new = mixed_bits(self._mem[at : at + len(new)], new, rng)
            self._mem[at : at + len(new)] = new

    def _targets(self, op: _Operation) -> list[tuple[int, bytes]]:
        """(offset, new bytes) the operation would leave in the array."""
        if op.kind is Kind.ERASE:
            if op.size > 1 << 20:  # chip erase: in 1 MiB pieces
                return [(at, _FF_CHUNK) for at in range(op.addr, op.addr + op.size, len(_FF_CHUNK))]
            return [(op.addr, b"\xff" * op.size)]
        out = []
        for at, data in self._program_pieces(op.addr, op.data):
            old = int.from_bytes(self._mem[at : at + len(data)], "big")
            out.append((at, (old & int.from_bytes(data, "big")).to_bytes(len(data), "big")))
        return out

    def power_loss(self, fault: Fault) -> None:
        """Power is lost: a program or erase under way stops part-way (each bit it was
        changing is old, new or undefined: the datasheets' warning about power loss during
        program/erase), then the chip starts again from power-up (volatile state lost)."""
        op = self._operation
        if op is not None and self._pending is not None:
            self._apply(op, fault.rng)
            fault.note(f"power lost during {op.kind.value} at 0x{op.addr:08X} "
                       f"({op.size} bytes)")
        self.power_on_reset()

    def read_faults(self, rx: bytes) -> bytes:
        """An array read: counted, and a due read-flip fault inverts bits of what the host
        samples (the array is intact: a read disturbance, not a bad cell)."""
        plan = self.faults
        plan.count("read")
        if not plan or not rx:
            return rx
        fault = plan.take("read-flip")
        if fault is None:
            return rx
        out, bits = flip_bits(rx, fault.rng, fault.arg)
        fault.note(f"read of {len(rx)} bytes: bits {bits[:4]} flipped")
        return out

    def _start_busy(self, seconds: float, done: Callable[[], None]) -> None:
        self._pending = done
        self._busy_remaining = seconds
        self.stats["busy_time"] += seconds

    def _write_status(self, data: bytes) -> None:
        w = self.part.sr_writable
        self._sr = (self._sr & ~w) | (data[0] & w)
        for i, b in enumerate(data[1:3]):
            self._cr[i] = b

    def _program_pieces(self, addr: int, data: bytes) -> list[tuple[int, bytes]]:
        """Where a page program's bytes land: inside the page of `addr`, wrapping at its end;
        more than a page keeps only the last page-size bytes, at their wrapped spots."""
        page = self.part.page_size
        base = addr & ~(page - 1)
        start = addr - base
        if len(data) > page:
            skip = len(data) - page
            start = (start + skip) % page
            data = data[skip:]
        first = min(len(data), page - start)
        pieces = [(base + start, data[:first])]
        if first < len(data):
            pieces.append((base, data[first:]))  # wrap inside the same page
        return pieces


_FF_CHUNK = b"\xff" * (1 << 20)


def _fill_ff(write: Callable[[bytes], object], size: int) -> None:
    for off in range(0, size, len(_FF_CHUNK)):
        write(_FF_CHUNK[: min(len(_FF_CHUNK), size - off)])


def _repeat(unit: bytes, off: int, n: int) -> bytes:
    reps = (off % len(unit) + n) // len(unit) + 1
    s = off % len(unit)
    return (unit * reps)[s : s + n]
