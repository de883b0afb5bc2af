"""When to stop a running loader: at each stop of a stream (`qspi_gdb.loader.pipeline`) the
host knows, from the loader's clock and the flash's busy estimates, when the flash runs out of
the work already issued and when the loader will issue each queued op (`Timeline`); from that
it decides whether to write the next block's data now (`erase_first`) and how long to let the
loader run before the next stop (`next_wait`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import takewhile
from typing import TYPE_CHECKING

from qspi_gdb.loader import mailbox as mb

if TYPE_CHECKING:  # the pipeline's types; it calls in here
    from qspi_gdb.loader.client import LoaderClient
    from qspi_gdb.loader.pipeline import Op

BLOCK = 65536
_MARGIN_S = 0.001  # a stop too early costs a stop; a little late, only this


class Timeline:
    """When the flash runs dry and when the loader issues each queued op, in seconds from the
    stop (the loader's time_us), from what the loader published and the busy estimates.

    Every flash op is one QSPI task. The loader issues an op when the task before it signalled
    READY: an erase signals it as soon as it is sent (the flash then erases for its time), a
    program when its last page is sent. The peripheral sends each task once the flash is idle.
    So the chain starts at the last READY the loader saw (ready_seq, ready_us); the one op
    issued after it (if any) was issued at done_us; the queued ones follow.

    The loader issues nothing while the host holds the core: with `resume_s` (when the core
    runs again, seconds from the stop) no op is issued before it, and the chain moves on
    from there; the flash works through what it already has meanwhile. `free` keeps when the
    flash alone would let the loader issue each op."""

    def __init__(self, client: LoaderClient, ops: Sequence[Op], resume_s: float = 0.0) -> None:
        hdr = client.header
        assert hdr is not None
        times = client.timing
        now = hdr.time_us

        def since(us: int) -> float:  # loader time relative to now (it may be negative)
            delta = (us - now) & 0xFFFFFFFF
            return (delta - (1 << 32) if delta >= 1 << 31 else delta) / 1e6

        last_page = times.program_s(times.page)
        by_index = {op.index: op for op in ops if op.index is not None}
        ready = end = 0.0  # when the CPU may issue the next task / the flash is idle
        first = hdr.ready_seq - 1
        seen = by_index.get(first)
        if seen is not None:
            ready = since(hdr.ready_us)
            end = ready + (times.erase_s(seen.cmd) if seen.cmd.op == mb.OP_ERASE else last_page)
        elif hdr.busy:
            end = last_page
        if not hdr.busy:
            end = min(end, 0.0)
        self.issue: dict[int, float] = {}
        self.free: dict[int, float] = {}
        self.ready: dict[int, float] = {}  # when each flash op's READY comes
        self.anchor = ready  # the last READY seen, which the chain starts from
        issued_until = end
        for index in sorted(i for i in by_index if i > first):
            op = by_index[index]
            if index < hdr.done_seq:
                issued = since(hdr.done_us) if index == hdr.done_seq - 1 else ready
            else:
                self.free[index] = max(0.0, ready)
                issued = max(resume_s, ready)
                self.issue[index] = issued
            if op.cmd.op == mb.OP_ERASE:
                ready = max(issued, end)  # sent once the flash is idle
                end = ready + times.erase_s(op.cmd)
            elif op.is_program:
                if index >= hdr.done_seq:
                    issued += times.decode_s(op.cmd)  # an LZ4 block is decoded before it goes
                    self.issue[index] = issued
                end = max(issued, end) + times.program_s(op.cmd.len)
                ready = end - last_page
            if op.is_flash:
                self.ready[index] = ready
            else:  # WAIT_IDLE: done when the flash is idle; a command behind it (a CRC) runs then
                ready = end = max(issued, end) + (
                    0.0 if op.cmd.op == mb.OP_WAIT_IDLE else times.typ_s(op.cmd))
            if index < hdr.done_seq:
                issued_until = end
        self.issued_until = max(0.0, issued_until)  # the work already issued ends
        self.end = max(0.0, end)  # ... and all of it


def erase_first(client: LoaderClient, ops: Sequence[Op], queued: int, line: Timeline) -> bool:
    """With no program left to issue and an erase the loader is about to send: writing the next
    block's data now holds the core for the whole transfer (h seconds), so the erase waits for
    the resume while the flash idles. Letting the loader send it first (wait, one more stop,
    then write) starts the next programs min(h - due, e - due - stop) sooner (e: the erase,
    due: when the loader can send it), at the cost of the host's time (due + stop: the host
    could have used it to run ahead). True when the gain is larger and the flash, not the
    link, holds up the next block."""
    hdr = client.header
    assert hdr is not None
    erase = next((op for op in ops[:queued] if op.index is not None
                  and op.index >= hdr.done_seq and op.cmd.op == mb.OP_ERASE), None)
    if erase is None:
        return False
    due = line.issue.get(erase.index, 0.0)
    if due <= 0 and hdr.busy:  # the flash is busy past its estimate: do not wait on it
        return False
    stop = client.speed.stop_s
    halt, work = _halt_and_work(client, _next_block(ops, queued))
    erase_s = client.timing.erase_s(erase.cmd)
    return min(halt - due, erase_s - due - stop) > due + stop and erase_s + work > halt


def _next_block(ops: Sequence[Op], queued: int) -> list[Op]:
    """The programs of the next erase block still to go out."""
    programs = [op for op in ops[queued:] if op.is_program]
    block = programs[0].cmd.addr // BLOCK if programs else None
    return list(takewhile(lambda op: op.cmd.addr // BLOCK == block, programs))


def _halt_and_work(client: LoaderClient, programs: Iterable[Op]) -> tuple[float, float]:
    """The halt for writing these programs (a stop and their transfer) and their flash time."""
    halt, work = client.speed.stop_s, 0.0
    for op in programs:
        halt += client.speed.cost_s(op.payload)
        work += client.timing.typ_s(op.cmd)
    return halt, work


def next_wait(client: LoaderClient, ops: Sequence[Op], queued: int) -> float:
    """How long to let the loader run: until it has issued the last program queued; the flash
    then works through it, and the erase issued just ahead of it, while the host feeds the
    next one. Until the erase queued after it as well only when that pays (`_wait_for_erase`):
    the loader issues that erase at the program's last page, so waiting for it keeps the host
    idle for the whole program (measured, 2 MiB on MX25R6435F through the J-Link OB profile:
    1.04 s per block with the wait, 0.72 s without), but after a small program (a block that
    blank pages split) the wait is short and the erase keeps the flash busy while the host
    writes. Without a program, until buffers free up. With everything queued, until the flash
    is idle: one stop at the end instead of one for the last program and one for the end."""
    hdr = client.header
    assert hdr is not None
    halted = client.halted_s()
    line = Timeline(client, ops, resume_s=halted)
    unissued = [op for op in ops[:queued] if op.index is not None and op.index >= hdr.done_seq]
    programs = [op for op in unissued if op.is_program]
    if queued == len(ops) and (not programs or line.free.get(programs[-1].index, 0.0) <= halted):
        # All of it queued and the last program goes out as soon as the core runs again: one
        # stop, at the end. (When an earlier program must end first, stop when the loader takes
        # the last one instead, and time the end from there.)
        rest = sum(client.timing.typ_s(op.cmd) for op in unissued if op.is_flash)
        left = max(0.0, max(line.end, max(line.issued_until, halted) + rest) - halted)
        # a stop too early costs a whole stop, one a little late only its lateness
        return left * 1.05 + min(0.2 * left, client.speed.stop_s) + 0.001
    if programs:
        last = programs[-1].index
        target = line.issue.get(last, 0.0)
        if unissued[-1].cmd.op == mb.OP_ERASE and _wait_for_erase(
                client, ops, queued, line, target, unissued[-1]):
            last = unissued[-1].index
            target = line.issue.get(last, 0.0)
        if line.free.get(last, 0.0) <= 0 and target - halted <= _MARGIN_S:
            # overdue (the estimates were short) or due at once: look again a little later
            return max(_MARGIN_S, 0.02 * line.end)
    elif unissued and unissued[-1].is_flash:  # erases to get going before the data
        target = line.issue.get(unissued[-1].index, 0.0)
    else:
        target = line.issued_until - client.timing.program_s(client.timing.page)
    # the timeline counts from the stop; feeding since then took the halted time
    return max(0.0, target - halted) * 1.03 + _MARGIN_S


def _wait_for_erase(client: LoaderClient, ops: Sequence[Op], queued: int, line: Timeline,
                    program_issue: float, erase: Op) -> bool:
    """Let the loader run on until it has issued the erase queued after the last program, when
    that costs less than it saves: waiting w more seconds (the host idle; the flash is busy
    from the program's issue to its end, w + one page) against the flash idling through the
    next halt (h: writing the next block's data) for lack of that erase (e seconds of work):
    wait when 2 w + page < min(h, e), and only when the flash, not the link, holds up the next
    block (e and its programs take longer than h): else the flash catches up while the host
    writes the blocks after it."""
    wait = line.issue.get(erase.index, 0.0) - program_issue
    before_erase = takewhile(lambda op: op.cmd.op != mb.OP_ERASE, ops[queued:])
    halt, work = _halt_and_work(client, (op for op in before_erase if op.is_program))
    erase_s = client.timing.erase_s(erase.cmd)
    page = client.timing.program_s(client.timing.page)
    return 2 * wait + page < min(halt, erase_s) and erase_s + work > halt
