"""Streaming erase and program work through the loader's RAM buffers, with a loader that keeps
running: the host halts it (by request) only to add data and commands, and plans each stop
from the loader's clock and the flash's busy estimates.

The work is a list of ops in the order the loader runs them: one ERASE per 64 KiB block (or per
4 KiB sector, or the chip) and one PROGRAM per block's data, each erase issued one
step ahead of the program that needs it (`schedule`). The nRF QSPI peripheral checks the flash's
busy bit itself before it sends an erase or a page, so the loader issues "erase block k+1" and
then "program block k" back to back and the flash works through both while the core is halted.

At each stop the host knows (`qspi_gdb.loader.timeline`) when the flash runs out of the work
already issued and when the loader will issue each queued op (an op is issued when the task
before it signalled READY, and never while the host holds the core). It then writes data for
the next ops while that issued work keeps the flash busy: at least the next program (so the
loader never starves), more while the transfer ends before the flash runs dry; first lets the
loader send an erase it is about to send when the flash would otherwise idle through the
transfer. Then it lets the loader run until the program it just fed is issued and stops again
(a trailing erase goes out during the next run: the flash then holds "erase k+1, program k"
while the host writes block k+1).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import lz4.block

from qspi_gdb.errors import TargetError
from qspi_gdb.loader import mailbox as mb
from qspi_gdb.loader.timeline import BLOCK, Timeline, erase_first, next_wait
from qspi_gdb.log import get_logger

if TYPE_CHECKING:  # the client drives the pipeline; only its type is needed here
    from qspi_gdb.loader.client import LoaderClient

log = get_logger(__name__)

_ERASE_UNIT = {mb.ERASE_4K: 4096, mb.ERASE_64K: 65536, mb.ERASE_CHIP: 0}
AHEAD_MIN = 4096  # bytes of the next program written behind a stop's commands (write_ahead)


@dataclass(frozen=True)
class EraseStep:
    """Erase [offset, offset+length) in blocks of `block` bytes (4096 or 65536), or the
    whole chip with block=0 (offset 0, length = chip size)."""

    offset: int
    length: int
    block: int = 4096


@dataclass(frozen=True)
class ProgramStep:
    offset: int
    data: bytes


@dataclass
class Op:
    cmd: mb.Command
    data: bytes = b""  # program ops: the bytes to program
    packed: bytes | None = None  # ... as one LZ4 block, when that is worth sending instead
    index: int | None = None  # ring index once queued
    # buffer space (byte ranges of the buffer area) taken for its data at an earlier stop than
    # its command (`write_ahead`): the loader does not know it is taken until then
    held: list[tuple[int, int]] | None = None
    sent: int = 0  # payload bytes already written into target RAM

    @property
    def payload(self) -> int:
        """Bytes the host writes into target RAM for this op."""
        return len(self.packed) if self.packed is not None else len(self.data)

    @property
    def is_program(self) -> bool:
        return self.cmd.op == mb.OP_PROGRAM

    @property
    def is_flash(self) -> bool:
        return self.cmd.op in (mb.OP_ERASE, mb.OP_PROGRAM)


def program_chunk(client: LoaderClient) -> int:
    """Bytes per PROGRAM: a block, or less when the buffers cannot hold two of them."""
    bufs = client.buffers()
    size = bufs[0].size
    pool = size * len(bufs)
    chunk = min(BLOCK, max(size, pool // 2 // size * size))
    return min(chunk, client.greeting.max_dma // size * size if client.greeting else chunk)


def expand(client: LoaderClient, steps: Sequence[EraseStep | ProgramStep]) -> list[Op]:
    chunk = program_chunk(client)
    ops: list[Op] = []
    for step in steps:
        if isinstance(step, EraseStep):
            if step.block == 0:
                ops.append(Op(mb.Command(mb.OP_ERASE, addr=step.offset, len=step.length,
                                          arg=mb.ERASE_CHIP)))
                continue
            if step.block not in (4096, 65536):
                raise ValueError(f"erase block {step.block} (4096 or 65536 only)")
            unit = mb.ERASE_4K if step.block == 4096 else mb.ERASE_64K
            for pos in range(step.offset, step.offset + step.length, step.block):
                ops.append(Op(mb.Command(mb.OP_ERASE, addr=pos, len=step.block, arg=unit)))
        else:
            start = step.offset & ~3
            data = b"\xff" * (step.offset - start) + step.data
            data += b"\xff" * (-len(data) % 4)
            pos, end = start, start + len(data)
            while pos < end:  # chunks end at block boundaries: one program per erase step
                stop = min(end, pos + chunk, (pos // BLOCK + 1) * BLOCK)
                chunk_data = data[pos - start:stop - start]
                ops.append(Op(mb.Command(mb.OP_PROGRAM, addr=pos, len=stop - pos), chunk_data,
                              packed=pack(chunk_data) if client.compress else None))
                pos = stop
    return ops


def pack(data: bytes) -> bytes | None:
    """The data as one LZ4 block (python-lz4, block format without a size header), when that
    saves at least an eighth of the bytes on the wire."""
    packed = lz4.block.compress(data, mode="high_compression", store_size=False)
    return packed if len(packed) <= len(data) - len(data) // 8 else None


def schedule(ops: list[Op]) -> list[Op]:
    """Each erase just before the first program that needs it, and the next erase one step
    earlier still, so the loader issues "erase k+1, program k" pairs the flash runs back to
    back. Only when that is safe: erases in address order and none of them overlapping an
    earlier program (an order that programs before erasing, or a chip erase, is kept)."""
    erases = [op for op in ops if op.cmd.op == mb.OP_ERASE]
    if not erases or not any(op.is_program for op in ops):
        return ops
    if any(e.cmd.arg == mb.ERASE_CHIP for e in erases) or \
            [e.cmd.addr for e in erases] != sorted(e.cmd.addr for e in erases):
        return ops
    for i, op in enumerate(ops):
        if op.cmd.op == mb.OP_ERASE and any(
                p.is_program and p.cmd.addr < op.cmd.addr + op.cmd.len
                and op.cmd.addr < p.cmd.addr + p.cmd.len for p in ops[:i]):
            return ops
    out: list[Op] = []
    ahead_at = -1  # address of the last erase placed (it may lie ahead of the programs)
    for op in ops:
        if not op.is_program:
            continue
        end = op.cmd.addr + op.cmd.len
        while erases and erases[0].cmd.addr < end:  # needed by this program
            ahead_at = erases[0].cmd.addr
            out.append(erases.pop(0))
        # one ahead, unless one is already: a block with blank pages between its data has
        # several programs, and an erase per program would run ever further ahead, leaving
        # the programs of the last blocks to the end with nothing to overlap their transfer
        if erases and ahead_at < end:
            ahead_at = erases[0].cmd.addr
            out.append(erases.pop(0))
        out.append(op)
    return out + erases


def stream(client: LoaderClient, steps: Sequence[EraseStep | ProgramStep],
           progress: Callable[[int], None] | None = None,
           erased: Callable[[int, int], None] | None = None,
           then: Sequence[mb.Command] = ()) -> None:
    """Run erase/program steps, overlapping the transfer of later data with the flash work of
    earlier steps; returns when the flash is idle again.

    progress(n): n more bytes went to the flash to be programmed; erased(n, unit): an erase of
    n bytes in units of `unit` bytes (0: the whole chip) began. Both are called as the loader
    reports each op issued, so a failure half-way leaves a true count behind. then: commands
    that use no buffer (CRC32 of what was written) to run once the flash is idle, queued with
    the last ops: the stop that collects the end of the work collects their results too
    (statuses checked; results in the commands)."""
    ops = schedule(expand(client, steps))
    ops.append(Op(mb.Command(mb.OP_WAIT_IDLE)))
    ops += [Op(cmd) for cmd in then]
    total = len(ops)
    queued = 0  # ops handed to the loader
    reported = 0  # program ops whose progress was reported
    start_us = client.header.time_us if client.header else 0
    limit = 2.0 + 1.5 * sum(client.timing.max_s(op.cmd) for op in ops)

    def report(hdr: mb.MailboxHeader) -> None:
        nonlocal reported
        while reported < queued and ops[reported].index < hdr.done_seq and \
                ops[reported].cmd.status == mb.ST_OK:  # the work really begun, also on failure
            cmd = ops[reported].cmd
            if progress is not None and cmd.op == mb.OP_PROGRAM:
                progress(cmd.len)
            if erased is not None and cmd.op == mb.OP_ERASE:
                erased(cmd.len, _ERASE_UNIT[cmd.arg])
            reported += 1

    while True:
        hdr = client.header
        assert hdr is not None
        report(hdr)
        client.check([op.cmd for op in ops[:queued] if op.index < hdr.done_seq
                      and op.cmd.status != mb.ST_OK])
        if queued == total and hdr.done_seq > ops[-1].index:
            return
        spent = mb.timer_span_s(hdr.time_us, start_us)
        if spent > limit:
            raise TargetError(f"the flash work did not finish within {limit:.1f} s "
                              f"({client.diagnose()})")
        if then and queued == total and hdr.done_seq > ops[-len(then) - 1].index:
            _wait_for_then(client, ops[-len(then):], limit - spent)
            continue  # their statuses checked above, then the end
        before = queued
        queued = feed(client, ops, queued)
        wait = next_wait(client, ops, queued)
        line = Timeline(client, ops, resume_s=client.halted_s())
        log.debug("pipeline stop", t_us=hdr.time_us, done=hdr.done_seq, ready=hdr.ready_seq,
                  done_us=hdr.done_us, ready_us=hdr.ready_us,
                  issue={k: round(v * 1e3, 1) for k, v in line.issue.items()},
                  until=round(line.issued_until * 1e3, 1),
                  busy=hdr.busy, queued=[op.cmd.name[0] + hex(op.cmd.addr) for op in
                                         ops[before:queued]], wait_ms=round(wait * 1e3, 2),
                  rate=round(client.speed.rate), stop_ms=round(client.speed.stop_s * 1e3, 2))
        try:
            client.cycle(wait)
        except KeyboardInterrupt:  # count what the loader began before it goes on unreported
            try:
                report(client.stop_now())
            except Exception as exc:  # noqa: BLE001 - the interrupt is what the user sees
                log.debug("could not read the loader's progress after the interrupt",
                          error=str(exc))
            raise


def _wait_for_then(client: LoaderClient, then: Sequence[Op], limit_s: float) -> None:
    """The flash is idle and only the `then` commands are left (CPU work and reads, which the
    flash's busy estimates do not time): the first one began when the op before it ended
    (done_us); wait for the rest of their estimate like any command wait, which stretches
    when the loader ran less than the host waited and then steps on (`LoaderSession.wait`),
    rather than the whole estimate again at every stop."""
    hdr = client.header
    assert hdr is not None
    typ = sum(client.timing.typ_s(op.cmd) for op in then if op.index >= hdr.done_seq)
    ran = hdr.since_done_s
    client.wait(then[-1].index, max(typ - ran, 0.05 * typ), limit_s)


def feed(client: LoaderClient, ops: list[Op], queued: int) -> int:
    """Queue the next ops, writing program data into free buffers. When the loader has no
    program left to issue, the programs of the next erase block go whatever they cost (the
    loader must not starve; when the link is the bottleneck the flash may as well wait); more
    only while their transfer ends before the flash runs out of the work already issued (the
    loader cannot issue anything while the host holds the core). Returns how many ops are
    queued now."""
    hdr = client.header
    assert hdr is not None
    line = Timeline(client, ops)
    budget = line.issued_until - client.speed.stop_s
    forced = not any(op.is_program and op.index >= hdr.done_seq for op in ops[:queued])
    if forced and erase_first(client, ops, queued, line):
        return queued
    pool = Pool(client, held=[r for op in ops[queued:] if op.held for r in op.held])
    idle = line.issued_until <= 0 and not client.unfinished
    block = None  # the erase block whose programs go out whatever they cost
    while queued < len(ops) and client.unfinished < client.max_cmds:
        op = ops[queued]
        if op.cmd.op == mb.OP_ERASE and idle:
            forced = False  # an idle flash gets its erases going first; the data follows
        if op.is_program:
            if forced and block is None:
                block = op.cmd.addr // BLOCK
            cost = client.speed.cost_s(op.payload - op.sent)
            if not (forced and op.cmd.addr // BLOCK == block) and cost > budget:
                break
            if not place(client, op, pool):
                break
            budget -= cost
            op.held = None  # its buffers are the loader's now
        op.index = client.submit([op.cmd])
        queued += 1
    if block is not None:
        write_ahead(client, ops, queued, pool)
    return queued


def write_ahead(client: LoaderClient, ops: list[Op], queued: int, pool: Pool) -> None:
    """This stop sent a program whatever it cost (the link holds up the job): behind its
    commands, write the start of the next program's data (it goes at the next stop, which
    writes the rest first). Every stop then ends with a data write that outlasts a network
    round trip instead of the short command write: GDB's resume follows the answer to the last
    write, which a server such as OpenOCD sends before it writes, so the resume reaches it
    while it still writes, not a round trip after (a GDB server 10 ms away: ~10 ms a stop). A
    write that failed is reported at the next write, before the command that uses its data."""
    if queued >= len(ops) or not ops[queued].is_program:
        return
    op = ops[queued]
    if op.held is None and not reserve(client, op, pool):
        return
    client.write_request()  # this stop's commands first
    # what the link moves in a quarter of a stop's fixed cost (several round trips), at least
    # AHEAD_MIN: the same bytes, only sent one stop earlier
    ahead = max(AHEAD_MIN, int(client.speed.rate * client.speed.stop_s / 4) // 4 * 4)
    send(client, op, min(op.payload, max(op.sent, ahead)))


class Pool:
    """The buffer space the host may fill at this stop: runs of whole free buffers, handed out
    in word-aligned pieces (byte offsets into the buffer area), so the small programs of a
    block with blank pages between them share buffers."""

    def __init__(self, client: LoaderClient,
                 held: Sequence[tuple[int, int]] = ()) -> None:
        self.size = client.buffers()[0].size
        self.runs: list[list[int]] = []
        for index in client.free_buffers():
            start = index * self.size
            if self.runs and self.runs[-1][1] == start:
                self.runs[-1][1] = start + self.size
            else:
                self.runs.append([start, start + self.size])
        for start, end in held:  # data written ahead of its command: not free
            self.runs = [piece for run in self.runs for piece in
                         ([run[0], min(run[1], start)], [max(run[0], end), run[1]])
                         if piece[0] < piece[1]]

    def take(self, nbytes: int) -> int | None:
        for run in self.runs:
            if run[1] - run[0] >= nbytes:
                at = run[0]
                run[0] = min(run[1], at + (nbytes + 3) // 4 * 4)
                return at
        return None

    def snapshot(self) -> list[list[int]]:
        return [list(run) for run in self.runs]


def _taken(before: list[list[int]], after: list[list[int]]) -> list[tuple[int, int]]:
    """The ranges `Pool.take` handed out between two snapshots (runs only shrink at the
    front)."""
    return [(b[0], a[0]) for b, a in zip(before, after) if a[0] > b[0]]


def place(client: LoaderClient, op: Op, pool: Pool) -> bool:
    """Write op's data into free buffer space (taken at an earlier stop, or now) and name it
    in its command. False when there is no room for it yet."""
    if op.held is None and not reserve(client, op, pool):
        return False
    send(client, op, op.payload)
    return True


def reserve(client: LoaderClient, op: Op, pool: Pool) -> bool:
    """Take buffer space for op's data and name it in its command (`op.held`); a packed op also
    takes space for the loader to decode into (EasyDMA programs from there). False when there
    is no room for it yet."""
    size = pool.size
    before = pool.snapshot()
    if op.packed is not None:
        src, dst = pool.take(len(op.packed)), pool.take(len(op.data))
        if src is None or dst is None:  # wait for room rather than send twice the bytes
            pool.runs = before
            return False
        op.cmd.flags |= mb.CF_LZ4
        op.cmd.buf, op.cmd.buf_off = divmod(src, size)
        op.cmd.arg, op.cmd.arg2, op.cmd.arg3 = len(op.packed), dst, zlib.crc32(op.data)
    else:
        at = pool.take(len(op.data))
        if at is None:
            return False
        op.cmd.buf, op.cmd.buf_off = divmod(at, size)
    op.held = _taken(before, pool.snapshot())
    return True


def send(client: LoaderClient, op: Op, upto: int) -> None:
    """Write op's payload (its LZ4 block, or its data) up to byte `upto`, from where the last
    write of it ended."""
    if upto <= op.sent:
        return
    payload = op.packed if op.packed is not None else op.data
    bufs = client.buffers()
    start = bufs[0].addr + op.cmd.buf * bufs[0].size + op.cmd.buf_off
    client.write_target(start + op.sent, payload[op.sent:upto])
    client.stats.bytes_sent += upto - op.sent
    op.sent = upto
