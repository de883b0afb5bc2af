"""Pure parts of the loader client: typed errors, the erase/program schedule, what the host
expects of the target's time."""

from __future__ import annotations

import dataclasses

import pytest

from qspi_gdb.errors import EXIT_TARGET, EXIT_USAGE
from qspi_gdb.loader import mailbox as mb
from qspi_gdb.loader.pipeline import Op, schedule
from qspi_gdb.loader.status import (
    STATUS_MESSAGES,
    FlashError,
    JedecMismatch,
    LoaderProtocolError,
    LoaderRefused,
    error_for,
)
from qspi_gdb.loader.timing import CPU_BYTES_PER_S, FlashTimes, LinkSpeed, ResumeDelay


def _header(**values) -> mb.MailboxHeader:
    """A mailbox header with every field 0 but `values`."""
    return mb.MailboxHeader(**{f.name: values.get(f.name, 0)
                               for f in dataclasses.fields(mb.MailboxHeader)})


def _erase(addr: int, length: int) -> Op:
    return Op(mb.Command(mb.OP_ERASE, addr=addr, len=length, arg=mb.ERASE_64K))


def _program(addr: int, length: int) -> Op:
    return Op(mb.Command(mb.OP_PROGRAM, addr=addr, len=length), b"\0" * length)


def _times(erase_64k_s: float) -> FlashTimes:
    """A quad part at 32 MHz: 120 us page programs, 64 KiB erases of `erase_64k_s`."""
    times = FlashTimes(sck_hz=32_000_000, write_lines=4, read_lines=4)
    times.typ.update(page=120e-6, **{"64k": erase_64k_s})
    return times


def _speed() -> LinkSpeed:
    """A measured link: 300 kB/s, 10 ms a stop."""
    speed = LinkSpeed()
    speed.rate, speed.overhead = 300e3, 0.01
    return speed


def _stream_client(times: FlashTimes, speed: LinkSpeed, **header):
    """What the stream's timing reads of a loader client, at a stop at time_us 1 s (busy)."""
    from types import SimpleNamespace

    return SimpleNamespace(header=_header(time_us=1_000_000, busy=1, **header), timing=times,
                           speed=speed, unfinished=1, max_cmds=8)


def _indexed(ops: list[Op], first: int) -> list[Op]:
    for i, op in enumerate(ops):
        op.index = first + i
    return ops


def test_status_codes_become_typed_errors():
    cmd = mb.Command(mb.OP_PROGRAM, addr=0x1E98000, len=16)
    assert isinstance(error_for(mb.ST_ADDR_24BIT, cmd), LoaderRefused)
    assert error_for(mb.ST_ADDR_24BIT, cmd).exit_code == EXIT_USAGE
    assert "0x01E98000" in str(error_for(mb.ST_ADDR_24BIT, cmd))
    assert isinstance(error_for(mb.ST_JEDEC_MISMATCH, cmd), JedecMismatch)
    assert isinstance(error_for(mb.ST_FLASH_BUSY, cmd), FlashError)
    assert error_for(mb.ST_TIMEOUT, cmd).exit_code == EXIT_TARGET
    assert isinstance(error_for(mb.ST_BUF_BUSY, cmd), LoaderProtocolError)
    assert "unknown loader status 77" in str(error_for(77, cmd))
    for code in STATUS_MESSAGES:
        if code != mb.ST_OK:
            assert error_for(code).status == code


def _order(ops):
    return [(o.cmd.name[0], o.cmd.addr) for o in ops]


def test_schedule_issues_each_erase_one_step_ahead():
    """The programmer's order (erase block, program block, ...) becomes "erase k+1, program k":
    the peripheral runs each pair back to back while the host feeds the next block."""
    ops = []
    for blk in range(3):
        ops += [_erase(blk * 0x10000, 0x10000), _program(blk * 0x10000, 0x10000)]
    ops.append(_erase(0x30000, 0x10000))  # erased, never programmed
    assert _order(schedule(ops)) == [
        ("E", 0x00000), ("E", 0x10000), ("P", 0x00000),
        ("E", 0x20000), ("P", 0x10000),
        ("E", 0x30000), ("P", 0x20000),
    ]
    # every program still comes after every erase that overlaps it
    out = schedule(ops)
    for i, op in enumerate(out):
        if op.is_program:
            for e in (o for o in ops if o.cmd.op == mb.OP_ERASE):
                if e.cmd.addr < op.cmd.addr + op.cmd.len and op.cmd.addr < e.cmd.addr + e.cmd.len:
                    assert out.index(e) < i


def test_schedule_keeps_one_erase_ahead_when_a_block_has_several_programs():
    """Blank pages split a block's data into several programs: still one erase ahead, not one
    per program (the erases would run ahead and leave the last blocks' programs alone)."""
    ops = []
    for blk in range(3):
        base = blk * 0x10000
        ops += [_erase(base, 0x10000), _program(base, 0x1000), _program(base + 0x3000, 0x1000),
                _program(base + 0x8000, 0x2000)]
    assert _order(schedule(ops)) == [
        ("E", 0x00000), ("E", 0x10000), ("P", 0x00000), ("P", 0x03000), ("P", 0x08000),
        ("E", 0x20000), ("P", 0x10000), ("P", 0x13000), ("P", 0x18000),
        ("P", 0x20000), ("P", 0x23000), ("P", 0x28000),
    ]
    # 4 KiB erases, one program each: one ahead per program as before
    ops = []
    for sec in range(3):
        ops += [_erase(sec * 0x1000, 0x1000), _program(sec * 0x1000, 0x1000)]
    assert _order(schedule(ops)) == [("E", 0), ("E", 0x1000), ("P", 0), ("E", 0x2000),
                                     ("P", 0x1000), ("P", 0x2000)]


def test_schedule_keeps_an_order_it_cannot_improve_safely():
    ops = [_program(0x0, 0x100), _erase(0x0, 0x10000), _program(0x0, 0x100)]
    assert schedule(ops) == ops  # an erase after a program of the same range
    ops = [_erase(0x10000, 0x10000), _erase(0x0, 0x10000), _program(0x0, 0x100)]
    assert schedule(ops) == ops  # erases not in address order
    chip = [Op(mb.Command(mb.OP_ERASE, addr=0, len=1 << 20, arg=mb.ERASE_CHIP)),
            _program(0, 0x100)]
    assert schedule(chip) == chip


def test_link_speed_learns_the_stop_cost_and_the_rate():
    speed = LinkSpeed()
    assert speed.stop_s == 0.005 and speed.cost_s(100_000) == 1.0  # guesses
    speed.observe(0.006, 200)  # a stop that wrote little: its fixed cost
    speed.observe(0.006 + 65536 / 300e3, 65536)  # 64 KiB at 300 kB/s on top
    assert abs(speed.stop_s - 0.006) < 1e-9 and abs(speed.rate - 300e3) < 1
    speed.observe(-1.0, 65536)  # nonsense is ignored
    assert abs(speed.rate - 300e3) < 1
    # data that took less than the stop around it (a GDB server 10 ms away: 79 ms a stop) is
    # no rate sample: 4.4 KiB in 79.35 ms would have read as 20 MB/s
    remote = LinkSpeed()
    remote.observe(0.079, 200)
    remote.observe(0.079 + 65536 / 230e3, 65536)
    remote.observe(0.07935, 4439)
    assert abs(remote.rate - 230e3) < 1


def test_resume_delay_grows_with_the_bytes_written_behind_the_commands():
    speed = LinkSpeed()
    speed.observe(0.006, 200)
    speed.observe(0.006 + 65536 / 300e3, 65536)
    delay = ResumeDelay()
    assert delay.estimate(6000, speed) == pytest.approx(6000 / 300e3)  # until measured
    # through a GDB server 10 ms away on the test bed: ~8 us a byte, ~0 for a short tail
    # a halt right after the resume, before any sample: a bound below the assumed delay (the
    # tail at the link's speed, not the fixed part alone) teaches nothing
    delay.observe(6000, 0.015, ran_s=0.001, assumed_s=delay.estimate(6000, speed))
    assert delay.per_byte is None
    delay.observe(150, 0.0003, ran_s=0.09, assumed_s=delay.estimate(150, speed))
    delay.observe(6400, 0.051, ran_s=0.02, assumed_s=delay.estimate(6400, speed))
    delay.observe(4100, 0.033, ran_s=0.2, assumed_s=delay.estimate(4100, speed))
    assert delay.fixed == pytest.approx(0.00015)
    assert delay.estimate(6400, speed) == pytest.approx(0.00015 + 6400 * 8.0e-6, rel=0.05)
    assert delay.estimate(150, speed) < 0.003  # a constant would have said ~40 ms
    # a halt right after the resume (the request reached the server before it) tells only
    # that the delay was at least the wait plus what was assumed: no sample below the estimate,
    before = delay.per_byte
    delay.observe(6400, 0.015, ran_s=0.001, assumed_s=delay.estimate(6400, speed))
    assert delay.per_byte == before
    # ... one above it (the wait ended before the resume: the delay was underrated)
    delay.observe(6400, 0.09, ran_s=0.0006, assumed_s=delay.estimate(6400, speed))
    assert delay.estimate(6400, speed) > 0.07
    assert delay.estimate(10**7, speed) == ResumeDelay.MAX_S


def test_flash_times_from_the_configuration():
    t = FlashTimes(sck_hz=32_000_000, write_lines=4, read_lines=4)
    t.typ.update(page=120e-6, **{"64k": 0.16})
    erase = mb.Command(mb.OP_ERASE, addr=0, len=0x20000, arg=mb.ERASE_64K)
    assert abs(t.erase_s(erase) - 0.32) < 1e-9
    program = mb.Command(mb.OP_PROGRAM, addr=0, len=0x10000)
    page_send = 256 * 8 / 4 / 32e6
    frames = (8 + 40 + 16) / 32e6  # WREN, instruction + address, status read
    assert abs(t.typ_s(program) - 256 * (120e-6 + page_send + frames)) < 1e-9
    crc = mb.Command(mb.OP_CRC_LIST, addr=0, len=0x80000, arg=4096)
    assert t.typ_s(crc) >= 0x80000 / CPU_BYTES_PER_S  # the slower of reading and summing
    assert t.max_s(program) > t.typ_s(program)


def test_a_loader_whose_clock_stands_still_is_reported_not_waited_for(monkeypatch):
    """A reset target runs no loader: its mailbox keeps the last time_us. Waits measured on that
    clock would never end; after 2 s of host time over 3 stops that let it run, the session says
    so (issue 12: a core reset mid-flash hung the command)."""
    from qspi_gdb.errors import TargetError
    from qspi_gdb.loader import session as session_mod

    class Link:
        def read_register(self, name):
            return 0xFFFFFFFE  # a core locked up at the blank reset vector

    s = session_mod.LoaderSession(Link(), chip="nrf52840")
    stood = _header()
    ran = dataclasses.replace(stood, time_us=1000)
    now = [100.0]
    monkeypatch.setattr(session_mod.time, "monotonic", lambda: now[0])
    s._ran_s = 0.01
    s._check_heartbeat(stood, ran)  # the clock moved: fine
    for _ in range(2):
        now[0] += 1.5
        s._check_heartbeat(ran, ran)  # stood still, but not yet long enough
    now[0] += 1.5
    with pytest.raises(TargetError, match=r"loader stopped running .* PC 0xfffffffe"):
        s._check_heartbeat(ran, ran)
    s._frozen = None
    s._ran_s = 0.0002  # tiny runs between long halts: not evidence enough
    for _ in range(5):
        now[0] += 3.0
        s._check_heartbeat(ran, ran)


def test_wait_stretches_the_rest_of_an_estimate_by_the_run_time_the_loader_got():
    """The host waits in its time, the loader works in its own: a core that ran only a share of
    the first wait (a link that resumes it late, a target slower than real time) is asked for
    the rest of the estimate divided by that share, not given a row of short stops that each
    cost a halt. A loader that got all of it and is not done had a short estimate: growing
    steps, none shorter than a stop costs."""
    from qspi_gdb.errors import TargetError
    from qspi_gdb.loader import session as session_mod

    class Slow(session_mod.LoaderSession):
        """A loader that needs `work_s` of run time and runs `share` of what the host waits;
        each stop holds the core 5 ms (its clock runs on)."""

        def __init__(self, share: float, work_s: float) -> None:
            self.share, self.work_s, self.t_us, self.ran_us = share, work_s, 0, 0
            self.waits: list[float] = []
            self.header = _header()
            self._host_gen, self._seq = 1, 1
            self.speed = LinkSpeed()
            self.speed.rate, self.speed.overhead = 1e6, 0.005

        def cycle(self, wait_s: float) -> mb.MailboxHeader:
            self.waits.append(wait_s)
            self.t_us += 5_000  # the halt before this run (writing the request, or a stop)
            resume = self.t_us if len(self.waits) == 1 else self.header.resume_us
            run = int(wait_s * self.share * 1e6)
            self.t_us += run
            self.ran_us += run
            self.header = dataclasses.replace(
                self.header, time_us=self.t_us, resume_us=resume, host_seen=1,
                done_seq=1 if self.ran_us >= self.work_s * 1e6 else 0)
            return self.header

    for share in (0.15, 0.5, 0.9):
        s = Slow(share, work_s=0.050)
        s.wait(0, estimate_s=0.050, limit_s=10.0)
        assert len(s.waits) == 2, (share, s.waits)
    exact = Slow(1.0, work_s=0.050)
    exact.wait(0, estimate_s=0.050, limit_s=10.0)
    assert len(exact.waits) == 1  # a loader that gets all of it is done at the first stop
    stuck = Slow(0.01, work_s=50.0)  # a long wait is stretched by 1 s at most
    with pytest.raises(TargetError, match="did not finish"):
        stuck.wait(0, estimate_s=50.0, limit_s=0.6)
    assert stuck.waits[1] <= 50.0 * 1.05 - 0.525 + 1.0 + 0.001
    short = Slow(1.0, work_s=0.080)  # a short estimate: steps of at least a stop's cost
    short.wait(0, estimate_s=0.050, limit_s=10.0)
    assert short.done_seq == 1 and all(w >= 0.005 for w in short.waits[1:])
    assert len(short.waits) <= 5


def test_the_last_wait_of_a_stream_ends_when_the_flash_is_done_if_nothing_holds_it_up():
    """With everything queued and the last program going out as soon as the core runs again, one
    stop at the end (a stop costs tens of ms through a network). When an earlier program must
    end first, the host stops when the loader takes the last one, and times the end from
    there."""
    from qspi_gdb.loader.timeline import next_wait

    times = _times(0.16)
    speed = _speed()
    speed.overhead = 0.05
    program_s = times.program_s(0x10000)

    def client(done_seq: int, halted_s: float):
        c = _stream_client(times, speed, done_seq=done_seq, ready_seq=5, ready_us=1_000_000,
                           done_us=1_000_000)
        c.halted_s = lambda: halted_s
        return c

    def ops(*programs: int) -> list[Op]:
        return _indexed([_erase(0x10000, 0x10000)] + [_program(p, 0x10000) for p in programs]
                        + [Op(mb.Command(mb.OP_WAIT_IDLE))], 4)

    # the erase just went out (0.16 s of it, the host held the core 0.05 s of that): the
    # program is issued when the core runs, the flash sends it after the erase: one wait
    one = next_wait(client(done_seq=5, halted_s=0.05), ops(0), queued=3)
    left = 0.16 - 0.05 + program_s
    assert left * 1.05 < one <= left * 1.05 + 0.05 + 0.001 + 1e-9
    # a program behind another one still to be sent: stop when the loader takes it
    two = next_wait(client(done_seq=6, halted_s=0.05), ops(0, 0x10000), queued=4)
    issue = 0.16 + program_s - times.program_s(times.page)
    assert abs(two - ((issue - 0.05) * 1.03 + 0.001)) < 1e-6


def test_the_loader_issues_nothing_while_the_host_holds_the_core():
    """The flash works through what it has while the host writes, but the next op goes out only
    when the core runs again, and what follows it moves on from there. (The loader hands a
    program to the peripheral at the erase's READY, which comes as the erase is sent; the
    peripheral sends it when the flash is idle.)"""
    from qspi_gdb.loader.timeline import Timeline

    times = _times(0.16)
    client = _stream_client(times, LinkSpeed(), done_seq=5, ready_seq=5, ready_us=1_000_000,
                            done_us=1_000_000)
    ops = _indexed([_erase(0x10000, 0x10000), _program(0x10000, 0x10000),
                    _erase(0x20000, 0x10000)], 4)
    ready_e2 = times.program_s(0x10000) - times.program_s(times.page)
    early = Timeline(client, ops)  # the core runs again before the erase ends
    assert early.issue[5] == 0.0
    assert early.issue[6] == pytest.approx(0.16 + ready_e2)
    late = Timeline(client, ops, resume_s=0.3)  # the host writes for 0.3 s
    assert late.free[5] == 0.0
    assert late.issue[5] == pytest.approx(0.3)
    assert late.issue[6] == pytest.approx(0.3 + ready_e2)


def test_an_erase_about_to_go_out_goes_before_a_long_write():
    """With no program left to issue, writing the next block's data would hold back the erase
    the loader is about to send, and the flash would idle through the transfer: when the flash
    holds up the job, the host lets the loader send it first. When the data is short, or the
    link holds up the job (the flash catches up while the host writes), it writes."""
    from qspi_gdb.loader.pipeline import feed
    from qspi_gdb.loader.timeline import Timeline, erase_first, next_wait

    def job(erase_s: float, data: int):
        times, speed = _times(erase_s), _speed()
        # op 3 (a program) was issued just now, its READY not seen yet: the erase behind it
        # goes out when its last page is sent, ~16 ms from now
        client = _stream_client(times, speed, done_seq=4, ready_seq=3, done_us=1_000_000,
                                ready_us=999_000)
        client.halted_s = lambda: speed.stop_s
        ops = _indexed([_program(0x00000, 0x8000), _erase(0x20000, 0x10000),
                        _program(0x10000, data), _erase(0x30000, 0x10000)], 3)
        return client, ops

    client, ops = job(0.4, 0x10000)  # 64 KiB take 0.22 s to write, the erase 0.4 s
    assert feed(client, ops, queued=2) == 2  # nothing written
    assert 0.003 < next_wait(client, ops, queued=2) < 0.02  # until the erase is out
    for erase_s, data in ((0.4, 0x400), (0.16, 0x10000)):
        client, ops = job(erase_s, data)
        assert not erase_first(client, ops, 2, Timeline(client, ops))


def test_the_host_waits_for_the_next_erase_only_when_the_flash_holds_up_the_job():
    """Waiting until the loader has sent the erase queued after the last program keeps the flash
    busy through the next halt, at the cost of the host's time: worth it only when the flash,
    not the link, is what the next block waits for."""
    from qspi_gdb.loader.timeline import Timeline, _wait_for_erase

    def decide(erase_s: float) -> bool:
        times, speed = _times(erase_s), _speed()
        # the erase of block 1 ends in 20 ms; its program and the erase of block 2 queued,
        # block 2's 64 KiB of data still to write (0.23 s)
        sent = 1_000_000 - round((erase_s - 0.02) * 1e6)
        client = _stream_client(times, speed, done_seq=5, ready_seq=5, done_us=sent,
                                ready_us=sent)
        ops = _indexed([_erase(0x10000, 0x10000), _program(0x10000, 0x10000),
                        _erase(0x20000, 0x10000), _program(0x20000, 0x10000)], 4)
        line = Timeline(client, ops, resume_s=0.05)
        return _wait_for_erase(client, ops, 3, line, line.issue[5], ops[2])

    assert decide(0.4)  # the erase and its programs outlast the transfer
    assert not decide(0.16)  # the flash catches up while the host writes


class _FeedClient:
    """What `feed` uses of a loader client: 6 buffers of 32 KiB, a ring, and a record of the
    writes into target RAM ("ring" for the commands, else (buffer-area offset, bytes))."""

    BASE, SIZE = 0x20008000, 0x8000

    def __init__(self, times: FlashTimes, speed: LinkSpeed, free: list[int], **header) -> None:
        self.header = _header(time_us=1_000_000, **header)
        self.timing, self.speed = times, speed
        self.free = free
        self.writes: list = []
        self.max_cmds = 8
        self.seq = self.header.done_seq
        self.stats = dataclasses.make_dataclass("S", [("bytes_sent", int, 0)])()

    @property
    def unfinished(self) -> int:
        return self.seq - self.header.done_seq

    def buffers(self):
        return [mb.BufferInfo(i, self.BASE + i * self.SIZE, self.SIZE) for i in range(6)]

    def free_buffers(self) -> list[int]:
        return self.free

    def write_target(self, addr: int, data: bytes) -> None:
        self.writes.append((addr - self.BASE, len(data)))

    def write_request(self) -> None:
        self.writes.append("ring")

    def submit(self, cmds) -> int:
        self.seq += len(cmds)
        return self.seq - len(cmds)

    def halted_s(self) -> float:
        return self.speed.stop_s


def test_a_link_bound_stop_writes_the_next_programs_start_behind_its_commands():
    """The stop that sends a program whatever it costs writes the start of the next program's
    data after its commands (the resume then follows a long write); the next stop writes the
    rest of it first and sends its command; no other data goes into that space meanwhile."""
    from qspi_gdb.loader.pipeline import AHEAD_MIN, feed

    times, speed = _times(0.16), _speed()
    # the flash erases block 1 for 10 ms more; no program left to issue
    client = _FeedClient(times, speed, free=[0, 1, 2, 3, 4, 5], done_seq=3, ready_seq=3,
                         done_us=850_000, ready_us=850_000, busy=1)
    ops = _indexed([_erase(0x10000, 0x10000)], 2) + [
        _program(0x00000, 0x10000), _erase(0x20000, 0x10000), _program(0x10000, 0x10000),
        _erase(0x30000, 0x10000), _program(0x20000, 0x10000)]
    assert feed(client, ops, queued=1) == 3  # program 0 (forced) and the next erase
    assert client.writes == [(0, 0x10000), "ring", (0x10000, AHEAD_MIN)]
    assert ops[3].held == [(0x10000, 0x20000)] and ops[3].sent == AHEAD_MIN
    # the loader took program 0 (buffers 0-1 busy) and ran; program 1's space is still held
    client.writes.clear()
    client.free = [2, 3, 4, 5]
    client.header = _header(time_us=1_240_000, done_seq=5, ready_seq=4, done_us=1_230_000,
                            ready_us=1_230_000, busy=1)
    assert feed(client, ops, queued=3) == 5
    assert client.writes[0] == (0x10000 + AHEAD_MIN, 0x10000 - AHEAD_MIN)  # its rest first
    assert client.writes[1:] == ["ring", (0x20000, AHEAD_MIN)]  # program 2 not in held space
    assert ops[3].held is None and ops[3].cmd.buf == 2 and ops[3].cmd.buf_off == 0
    assert client.stats.bytes_sent == 0x20000 + AHEAD_MIN


def test_a_wait_behind_a_data_write_starts_when_the_core_runs_again():
    """OpenOCD answers a write before it does it: data written behind a stop's commands
    (write_ahead) still goes to the target when GDB reports the core running, and the core runs
    that much later than the host's wait begins. The wait is lengthened by that delay, at first
    the write's own link time, then what the loader's clock showed (resume_us); a stop that
    ends with its commands is not."""
    import struct

    from qspi_gdb.loader import session as session_mod

    class Link:
        """A server that resumes the core `lag_s` after the host resumes it when the last
        write was data written after the commands (the test says which)."""

        def __init__(self) -> None:
            self.t_us, self.resume_us, self.host_seen = 1_000_000, 0, 0
            self.lag_s, self.asked = 0.0, []

        def write_memory(self, addr, data):
            pass

        def run_for(self, seconds):
            self.asked.append(seconds)
            self.t_us += 10_000  # the rest of the halt
            self.resume_us = self.t_us + int(self.lag_s * 1e6)
            self.host_seen = s._host_gen
            self.t_us += int(seconds * 1e6)  # the host's wait ends: the core halts
            return False

        def read_memory(self, addr, length):
            values = {"magic": mb.MAGIC, "canary": mb.CANARY, "time_us": self.t_us,
                      "resume_us": self.resume_us, "host_seen": self.host_seen}
            words = [values.get(f.name, 0) for f in dataclasses.fields(mb.MailboxHeader)]
            return struct.pack(f"<{len(words)}I", *words).ljust(length, b"\0")

    link = Link()
    s = session_mod.LoaderSession(link, chip="nrf52840")
    s.speed.rate, s.speed.overhead = 100e3, 0.01
    s.header = _header(magic=mb.MAGIC, canary=mb.CANARY, time_us=link.t_us)

    def stop(tail: int, lag_s: float, wait_s: float = 0.05) -> float:
        s.submit([mb.Command(mb.OP_PROGRAM, addr=0, len=256)])
        s.write_request()
        s._write(0x20010000, b"\xff" * tail)  # behind the commands
        link.lag_s = lag_s
        s.cycle(wait_s)
        ran = mb.timer_span_s(s.header.time_us, s.header.resume_us)
        s._queued.clear()
        return ran

    stop(4096, lag_s=0.030)
    assert abs(link.asked[-1] - (0.05 + 4096 / 100e3)) < 1e-6  # at first: the write's time
    assert abs(stop(4096, lag_s=0.030) - 0.05) < 0.006  # learned: the loader ran its 50 ms
    for _ in range(4):
        ran = stop(4096, lag_s=0.030)
    assert abs(ran - 0.05) < 1e-3
    assert abs(link.asked[-1] - 0.08) < 1e-3
    assert stop(0, lag_s=0.0) == pytest.approx(0.05, abs=1e-6)  # commands last: no delay
    assert link.asked[-1] == 0.05


def test_commands_after_the_flash_work_are_waited_for_from_when_they_began():
    """`then` commands (a CRC32 of 8 MiB) began when the op before them ended: the wait asks
    for what is left of their estimate, not the whole of it again."""
    from types import SimpleNamespace

    from qspi_gdb.loader.pipeline import _wait_for_then

    times = _times(0.16)
    crc = Op(mb.Command(mb.OP_CRC32, addr=0, len=8 << 20))
    crc.index = 7
    waits = []
    client = SimpleNamespace(
        header=_header(time_us=4_500_000, done_us=4_000_000, done_seq=7), timing=times,
        wait=lambda last, estimate, limit: waits.append((last, estimate, limit)))
    _wait_for_then(client, [crc], 30.0)
    typ = times.typ_s(crc.cmd)
    assert typ > 0.6 and waits == [(7, pytest.approx(typ - 0.5), 30.0)]
    client.header = _header(time_us=9_000_000, done_us=4_000_000, done_seq=7)  # overdue
    _wait_for_then(client, [crc], 30.0)
    assert waits[-1][1] == pytest.approx(0.05 * typ)  # a short first look, then steps
