"""Streaming erase and program steps through the loader's RAM buffers.

Each call starts one piece of flash work and returns while it runs (the core halts; the flash
and EasyDMA carry on). Meanwhile the host copies upcoming data into free buffers, piece by
piece, for about as long as the flash stays busy, then issues the next op. The link's speed, the
per-call overhead and the flash's real busy times are measured on the loader's timer, in the
target's time base.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qspi_gdb.loader import mailbox as mb

if TYPE_CHECKING:  # the client drives the pipeline; only its type is needed here
    from qspi_gdb.loader.client import LoaderClient

_FIRST_CHUNKS = (4096, 8192, 16384)  # ramp-up: the flash starts working sooner
_FILL_PIECE = 8192  # granularity of filling ahead while the flash works
_WAIT_SEEN_S = 200e-6  # a call that spent longer in the loader waited for the flash
_BUSY_SHRINK = 0.7  # busy estimate factor after a call that found the flash idle
_ERASE_UNIT = {mb.ERASE_4K: 4096, mb.ERASE_64K: 65536, mb.ERASE_CHIP: 0}


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
    data: bytes = b""  # program ops: the bytes for the buffer
    busy_typ_s: float = 0.0  # flash busy time it starts (typical)
    kind: str = ""  # timing key: "page", "4k", "64k", "chip"
    buf: int | None = None
    filled: int = 0  # bytes of data already in the buffer


class BusyEstimates:
    """Measured flash busy time / datasheet typical, per timing key ("page", "4k", "64k",
    "chip"): SFDP typical times can be far off (a full page often programs much faster than the
    page time), so the loader's own timer corrects them."""

    def __init__(self) -> None:
        self.scale: dict[str, float] = {}
        self.measured: set[str] = set()

    def learn(self, started: tuple[Op, int, bool] | None, hdr: mb.MailboxHeader | None) -> None:
        """After the call that followed op: if the loader had to wait for op's flash work, the
        loader's timer says how long that work took; if not and the host stopped filling only
        because op's estimated time was used up, the estimate may be too long: shorten it
        (the flash may have idled), until a wait shows the real time again."""
        if started is None or hdr is None:
            return
        op, start_us, budget_bound = started
        if op.busy_typ_s <= 0 or not op.kind:
            return
        waited = ((hdr.time_us - hdr.entry_us) & 0xFFFFFFFF) / 1e6
        scale = self.scale.get(op.kind, 1.0)
        if waited > _WAIT_SEEN_S:
            took = ((hdr.time_us - start_us) & 0xFFFFFFFF) / 1e6
            scale = took / op.busy_typ_s
            self.measured.add(op.kind)
        elif budget_bound and op.kind == "page" and op.kind not in self.measured:
            # Only program times are shortened, and only until a wait has measured them: the
            # SFDP page time is for a worst-case page (JESD216's byte times make full pages
            # much faster on some parts), whereas erase times are what they say. Once known,
            # an idle flash at the next call means the host overshot by a fill piece, not that
            # the estimate is long (shortening then would block the host in the loader while
            # it could transfer).
            scale *= _BUSY_SHRINK
        self.scale[op.kind] = min(max(scale, 0.02), 4.0)


def expand(client: LoaderClient, steps: Sequence[EraseStep | ProgramStep]) -> list[Op]:
    t = client.timing
    size = client.buffers()[0].size
    ops: list[Op] = []
    # Small first chunks get an idle flash going sooner; after an erase the flash is busy
    # anyway and full buffers are worth more.
    ramp = [] if steps and isinstance(steps[0], EraseStep) else list(_FIRST_CHUNKS)
    for step in steps:
        if isinstance(step, EraseStep):
            if step.block == 0:
                ops.append(Op(mb.Command(mb.OP_ERASE, addr=step.offset, len=step.length,
                                          arg=mb.ERASE_CHIP), busy_typ_s=t.typ["chip"],
                               kind="chip"))
                continue
            if step.block not in (4096, 65536):
                raise ValueError(f"erase block {step.block} (4096 or 65536 only)")
            unit = mb.ERASE_4K if step.block == 4096 else mb.ERASE_64K
            key = "4k" if step.block == 4096 else "64k"
            # one call per 64 KiB of erase work: data transfer overlaps each of them
            group = step.block if step.block == 65536 else 16 * step.block
            pos, end = step.offset, step.offset + step.length
            while pos < end:
                n = min(group, end - pos)
                ops.append(Op(mb.Command(mb.OP_ERASE, addr=pos, len=n, arg=unit),
                               busy_typ_s=t.typ[key], kind=key))
                pos += n
        else:
            start = step.offset & ~3
            data = b"\xff" * (step.offset - start) + step.data
            data += b"\xff" * (-len(data) % 4)
            pos, end = start, start + len(data)
            while pos < end:
                want = min(ramp.pop(0), size) if ramp else size
                stop = min(end, pos + want)
                if stop < end and (stop // t.page) * t.page > pos:
                    stop = (stop // t.page) * t.page  # next chunk starts page aligned
                chunk = data[pos - start:stop - start]
                pages = (stop - pos + t.page - 1) // t.page
                ops.append(Op(mb.Command(mb.OP_PROGRAM, addr=pos, len=len(chunk)), chunk,
                               busy_typ_s=pages * t.typ["page"], kind="page"))
                pos = stop
    return ops

def stream(client: LoaderClient, steps: Sequence[EraseStep | ProgramStep],
           progress: Callable[[int], None] | None = None,
           erased: Callable[[int, int], None] | None = None) -> None:
    """Run erase/program steps, overlapping the transfer of later data with the flash work
    of earlier steps; returns when the flash is idle again.

    progress(n): n more bytes went to the flash to be programmed; erased(n, unit): an erase of
    n bytes in units of `unit` bytes (0: the whole chip) began. Both are called as the loader
    accepts each piece, so a failure half-way leaves a true count behind.

    Each call starts one piece of flash work and returns while it runs (the core halts;
    the flash and EasyDMA carry on). Meanwhile the host copies upcoming data into free
    buffers, piece by piece, for about as long as the flash stays busy, then issues the
    next op. The link's speed and the per-call overhead are measured on the loader's timer
    (entry_us / time_us of consecutive calls), i.e. in the target's time base.
    """
    ops = interleave(expand(client, steps))
    bufs = client.buffers()
    assigned = 0  # buffers holding data of ops not yet issued
    speed = client.speed
    speed.start(client.header)

    def fill(op: Op, limit: int) -> None:
        """Copy up to `limit` more bytes of op's data into its buffer."""
        nonlocal assigned
        if op.buf is None:
            op.buf = client.free_buffer(assigned)
            op.cmd.buf = op.buf
            assigned |= 1 << op.buf
        n = min(limit, len(op.data) - op.filled)
        client.write_target(bufs[op.buf].addr + op.filled, op.data[op.filled:op.filled + n])
        op.filled += n
        speed.moved += n

    started: tuple[Op, int, bool] | None = None  # last op, loader time, budget-bound

    for i, op in enumerate(ops):
        if op.cmd.op == mb.OP_PROGRAM and op.filled < len(op.data):
            fill(op, len(op.data))
        client.call([op.cmd])
        speed.observe(client.header)
        client.busy.learn(started, client.header)
        if op.buf is not None:
            assigned &= ~(1 << op.buf)
        if progress is not None and op.cmd.op == mb.OP_PROGRAM:
            progress(op.cmd.len)
        if erased is not None and op.cmd.op == mb.OP_ERASE:
            erased(op.cmd.len, _ERASE_UNIT[op.cmd.arg])
        # While this op keeps the flash busy, copy upcoming data; a piece is worth copying
        # when at least half of its transfer overlaps the flash work.
        spare = op.busy_typ_s * client.busy.scale.get(op.kind, 1.0) - speed.overhead
        budget_bound = False
        # When moving the remaining data takes longer than the remaining flash work, the
        # link is the bottleneck: any overlap is worth a piece (an idle flash costs
        # nothing then, a host waiting in the loader does).
        link_bound = bool(speed.rate) and sum(
            len(o.data) - o.filled for o in ops[i + 1:]) / speed.rate > sum(
            o.busy_typ_s * client.busy.scale.get(o.kind, 1.0) for o in ops[i + 1:])
        for nxt in ops[i + 1:]:
            if nxt.cmd.op != mb.OP_PROGRAM or nxt.filled == len(nxt.data):
                continue
            while nxt.filled < len(nxt.data):
                if nxt.buf is None and not client.free_mask & ~assigned:
                    break
                piece = min(_FILL_PIECE, len(nxt.data) - nxt.filled)
                if not speed.rate:
                    if spare < 2 * speed.overhead:
                        break
                    # speed unknown: one piece and an empty call measure it
                    before = client.header.time_us if client.header else 0
                    fill(nxt, piece)
                    client.call([])
                    speed.observe(client.header)
                    spare -= ((client.header.time_us - before) & 0xFFFFFFFF) / 1e6
                    continue
                cost = piece / speed.rate
                if spare <= 0 or (spare < cost / 2 and not link_bound):
                    budget_bound = True
                    break
                fill(nxt, piece)
                spare -= cost
            if nxt.filled < len(nxt.data):
                break
        started = (op, client.header.time_us, budget_bound) if client.header else None
    client.call([mb.Command(mb.OP_WAIT_IDLE)])


class LinkSpeed:
    """How fast the host moves data into target RAM, and the fixed cost of one call, both in
    the target's time base (the loader's timer: entry_us of a call - time_us of the last)."""

    def __init__(self) -> None:
        self.rate = 0.0  # bytes per second (0 = not measured yet)
        self.overhead = 0.0  # seconds between two calls when nothing is moved
        self.moved = 0
        self._last_halt_us = 0

    def start(self, header: mb.MailboxHeader | None) -> None:
        self._last_halt_us = header.time_us if header else 0
        self.moved = 0

    def observe(self, header: mb.MailboxHeader | None) -> None:
        if header is None:
            return
        gap = ((header.entry_us - self._last_halt_us) & 0xFFFFFFFF) / 1e6
        if not self.moved:
            self.overhead = gap if not self.overhead else min(
                self.overhead, 0.5 * self.overhead + 0.5 * gap)
        else:
            # a transfer that costs no target time (in-process board) counts as very fast
            sample = self.moved / max(gap - self.overhead, 1e-6)
            self.rate = sample if not self.rate else 0.5 * self.rate + 0.5 * sample
        self._last_halt_us = header.time_us
        self.moved = 0


def interleave(ops: list[Op]) -> list[Op]:
    """When every erase comes before every program (the usual plan), move each erase to just
    before the first program that reaches it: transfers then overlap the erases all along and
    the buffers hold the data of the next block only, not of the whole image."""
    kinds = [op.cmd.op for op in ops]
    if mb.OP_PROGRAM not in kinds or mb.OP_ERASE not in kinds:
        return ops
    last_erase = max(i for i, k in enumerate(kinds) if k == mb.OP_ERASE)
    first_program = kinds.index(mb.OP_PROGRAM)
    if last_erase > first_program or any(op.cmd.arg == mb.ERASE_CHIP for op in ops
                                         if op.cmd.op == mb.OP_ERASE):
        return ops
    erases = [op for op in ops if op.cmd.op == mb.OP_ERASE]
    out: list[Op] = []
    for op in ops:
        if op.cmd.op != mb.OP_PROGRAM:
            continue
        end = op.cmd.addr + op.cmd.len
        due = [e for e in erases if e.cmd.addr < end]
        out += due
        erases = [e for e in erases if e.cmd.addr >= end]
        out.append(op)
    return out + erases
