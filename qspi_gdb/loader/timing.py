"""What the host expects of the target's time, in the loader's time base (its TIMER, seconds):
how long a command takes (typical, to plan when to stop the loader) and at most (deadlines),
and how fast the host moves data into target RAM (learned at every stop).

The typical times come from the flash configuration (SFDP typical times, SCK and data lines);
`scale` corrects the flash's busy times by what the loader's timer measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qspi_gdb.loader import mailbox as mb

# The loader's own times where the config leaves a t_*_us field at 0 (QL_DEF_* in the header).
DEFAULT_MAX_S = {"page": mb.DEF_PAGE_MAX_US / 1e6, "4k": mb.DEF_4K_MAX_US / 1e6,
                 "64k": mb.DEF_64K_MAX_US / 1e6, "chip": mb.DEF_CHIP_MAX_US / 1e6,
                 "wrsr": mb.DEF_WRSR_MAX_US / 1e6}
DEFAULT_TYP_S = {"page": mb.DEF_PAGE_TYP_US / 1e6, "4k": mb.DEF_4K_TYP_US / 1e6,
                 "64k": mb.DEF_64K_TYP_US / 1e6, "chip": mb.DEF_CHIP_TYP_US / 1e6}
# CRC-32 on a 64 MHz Cortex-M4 (crc32.c, slicing by 8: ~3.4 instructions a byte, near 5 cycles
# with its two-cycle table loads, plus the heartbeat and the DMA set-ups), on the safe side: a
# stop too early costs more than waiting a little long
CPU_BYTES_PER_S = 10e6
COMMAND_OVERHEAD_S = 50e-6  # one command: checks, a few register accesses


@dataclass
class FlashTimes:
    """Typical and maximum times of the flash work, from the loader configuration."""

    typ: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TYP_S))
    max: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MAX_S))
    sck_hz: int = 8_000_000
    page: int = 256
    read_lines: int = 1
    write_lines: int = 1
    csn_gap_s: float = 0.0  # CSN high between frames
    scale: float = 1.0  # busy time / typical

    def transfer_s(self, nbytes: int, lines: int) -> float:
        return nbytes * 8 / lines / max(self.sck_hz, 1)

    def erase_s(self, cmd: mb.Command) -> float:
        if cmd.arg == mb.ERASE_CHIP:
            return self.typ["chip"] * self.scale
        unit = 4096 if cmd.arg == mb.ERASE_4K else 65536
        key = "4k" if unit == 4096 else "64k"
        return max(1, cmd.len // unit) * self.typ[key] * self.scale

    def program_s(self, nbytes: int) -> float:
        """Page programs, each with its frames: WREN, the program instruction with a 4-byte
        address and the data, a status read when the flash is done, and the CSN-high time
        between frames (IFCONFIG1.SCKDELAY, 16 MHz cycles)."""
        pages = max(1, -(-nbytes // self.page))
        frames = (8 + 40 + 16) / max(self.sck_hz, 1) + 3 * self.csn_gap_s
        return pages * (self.typ["page"] * self.scale + frames +
                        self.transfer_s(self.page, self.write_lines))

    def decode_s(self, cmd: mb.Command) -> float:
        """A packed PROGRAM: decoding and checking its CRC-32 before it is sent."""
        return 2 * cmd.len / CPU_BYTES_PER_S if cmd.flags & mb.CF_LZ4 else 0.0

    def read_s(self, nbytes: int) -> float:
        """A read-and-sum pass (READ, CRC32, CRC_LIST): the QSPI read and the CPU overlap."""
        return max(self.transfer_s(nbytes, self.read_lines), nbytes / CPU_BYTES_PER_S)

    def read_frame_s(self) -> float:
        """What a read costs besides its data: the instruction, a 4-byte address, mode and dummy
        clocks, the CSN-high time, and the loader's DMA set-up."""
        return (8 + 8 * 8 // self.read_lines + 8) / max(self.sck_hz, 1) + self.csn_gap_s + 5e-6

    def prefixes_s(self, sectors: int, prefix: int) -> float:
        """CRC_LIST with CF_PREFIX: a read of each sector's first bytes (summed one by one)."""
        return sectors * (self.read_frame_s() + self.transfer_s(prefix, self.read_lines) +
                          prefix / CPU_BYTES_PER_S)

    def rests_s(self, sectors: int, sector: int, prefix: int) -> float:
        """CRC_LIST with CF_REST over `sectors` sectors whose first bytes matched."""
        return COMMAND_OVERHEAD_S + sectors * (self.read_frame_s() +
                                               self.read_s(sector - prefix))

    def typ_s(self, cmd: mb.Command) -> float:
        """How long the command keeps the loader or the flash busy, typically."""
        op = cmd.op
        if op == mb.OP_ERASE:
            return self.erase_s(cmd)
        if op == mb.OP_PROGRAM:
            return self.decode_s(cmd) + self.program_s(cmd.len)
        if op == mb.OP_CRC_LIST and cmd.flags & mb.CF_PREFIX:
            return COMMAND_OVERHEAD_S + self.prefixes_s(cmd.len // cmd.arg, cmd.arg2)
        if op == mb.OP_CRC_LIST and cmd.flags & mb.CF_REST:  # as if every bit were set
            return self.rests_s(cmd.len // cmd.arg, cmd.arg, cmd.arg2)
        if op in (mb.OP_READ, mb.OP_CRC32, mb.OP_CRC_LIST, mb.OP_SFDP):
            return COMMAND_OVERHEAD_S + self.read_s(cmd.len)
        if op == mb.OP_INIT:
            return 0.002
        return COMMAND_OVERHEAD_S

    def max_s(self, cmd: mb.Command) -> float:
        """The longest the command may take before the host calls the target stuck."""
        xfer = self.transfer_s(cmd.len, 1) * 2
        op = cmd.op
        if op == mb.OP_ERASE:
            if cmd.arg == mb.ERASE_CHIP:
                return self.max["chip"]
            unit, key = (4096, "4k") if cmd.arg == mb.ERASE_4K else (65536, "64k")
            return (cmd.len // unit + 1) * self.max[key]
        if op == mb.OP_PROGRAM:
            return (cmd.len // self.page + 2) * (self.max["page"] + self.transfer_s(256, 1)) + \
                cmd.len / 1e6
        if op in (mb.OP_READ, mb.OP_CRC32, mb.OP_CRC_LIST, mb.OP_SFDP):
            return xfer + cmd.len / 1e6 + 0.001 * (cmd.len // 4096 + 1)
        if op == mb.OP_INIT:
            return 1.0 + self.max["64k"] + 10 * self.max["wrsr"]
        if op == mb.OP_CINSTR:
            return self.max["64k"] if cmd.flags & mb.CF_WIPWAIT else self.max["wrsr"]
        if op in (mb.OP_WAIT_IDLE, mb.OP_DEINIT, mb.OP_EXIT):
            return self.max["64k"] + self.max["page"]
        return 0.05


class LinkSpeed:
    """How fast the host writes target RAM, in the target's time: bytes per second while the
    core is halted, and the fixed cost of one stop (halt, mailbox, resume). Measured at every
    stop: the loader notes when it runs again (resume_us) after the host wrote a request."""

    def __init__(self) -> None:
        self.rate = 0.0  # bytes per second; 0: not measured yet
        self.overhead = 0.0  # seconds per stop; 0: not measured yet
        self.expected = 0.0  # bytes per second the probe should reach (its profile), if known

    def observe(self, halted_s: float, nbytes: int) -> None:
        if halted_s < 0:
            return
        if nbytes < 4096:
            self.overhead = halted_s if not self.overhead else \
                0.7 * self.overhead + 0.3 * halted_s
            return
        # a link that costs the target no time (an in-process board) is simply very fast
        moving = max(halted_s - self.overhead, 1e-6)
        if self.overhead > 1e-3 and moving < self.overhead:
            # the data took less than the stop around it: the sample is mostly the overhead's
            # own spread (through a GDB server 10 ms away, 4.4 KiB in a 79 ms stop read as
            # 20 MB/s, and the stream then planned its writes for that)
            return
        sample = nbytes / moving
        self.rate = sample if not self.rate else 0.5 * self.rate + 0.5 * sample

    def cost_s(self, nbytes: int) -> float:
        """Halted time to move nbytes (until measured: what the probe's profile says, else a
        guess of 100 kB/s)."""
        return nbytes / (self.rate or self.expected or 100e3)

    @property
    def stop_s(self) -> float:
        return self.overhead if self.rate else 0.005


class ResumeDelay:
    """How much later than GDB reports it the core runs again after a stop that wrote data
    behind its commands (`write_ahead`): a server such as OpenOCD answers a write before it does
    it and resumes after it, so the host's wait for the next stop begins early by about the time
    that write takes. Modelled as fixed + per_byte x the bytes written behind the commands, both
    learned from the loader's clock (it notes when it ran again: resume_us); until then, those
    bytes at the link's speed. A constant (the model before) was up to 40 ms short for a 7 KiB
    tail and as much too long for a 0.1 KiB one through a GDB server 10 ms away, and a wait that
    ends early costs a whole stop."""

    SMALL = 1024  # tails below this teach the fixed part, larger ones the part per byte
    MAX_S = 0.1  # no delay is assumed longer than this
    # A stop whose loader ran less than this after the resume may have had its halt request
    # reach the server before the resume (the halt then follows at once): it shows only that
    # the delay was at least the host's wait plus the delay it assumed, less that short run; a
    # sample only when that is more than assumed.
    MIN_RUN_S = 0.002

    def __init__(self) -> None:
        self.fixed = 0.0
        self.per_byte: float | None = None  # seconds; None: not measured yet

    def estimate(self, tail: int, speed: LinkSpeed) -> float:
        per_byte = self.per_byte if self.per_byte is not None else speed.cost_s(1)
        return min(self.fixed + per_byte * tail, self.MAX_S)

    def observe(self, tail: int, late_s: float, ran_s: float, assumed_s: float) -> None:
        """late_s: how late the core ran again, judged by the host (its wait plus the delay it
        assumed, less what the loader ran); ran_s: what the loader ran; assumed_s: the delay
        the host assumed (`estimate`)."""
        if tail <= 0:
            return
        late_s = min(max(late_s, 0.0), self.MAX_S)
        if ran_s < self.MIN_RUN_S and late_s <= assumed_s:
            return  # a bound below what is assumed already
        if tail < self.SMALL:
            self.fixed = 0.5 * self.fixed + 0.5 * late_s
            return
        sample = max(late_s - self.fixed, 0.0) / tail
        self.per_byte = sample if self.per_byte is None else 0.5 * self.per_byte + 0.5 * sample
