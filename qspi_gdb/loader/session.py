"""The running loader as a session: knows the mailbox (`qspi_gdb.loader.mailbox`), nothing
about GDB.

It talks to any `qspi_gdb.loader.target.TargetLink`: loads the loader ELF, finds the mailbox by
symbol (pyelftools), checks the greeting (magic, ABI version, build id, stack canary), and then
drives a loader that keeps running: commands go into the mailbox's ring while the core is
halted; `cycle(wait_s)` lets the core run for a while and halts it by request (a halt the
debugger acts on at once; the loader never halts itself unless it faults); each stop reads the
loader's status and the results of the commands it finished, and turns status codes into
typed errors (`qspi_gdb.loader.status`). The commands themselves: `qspi_gdb.loader.client`.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from elftools.elf.elffile import ELFFile

from qspi_gdb.errors import TargetError, UsageError
from qspi_gdb.loader import loader_elf
from qspi_gdb.loader import mailbox as mb
from qspi_gdb.loader.status import error_for
from qspi_gdb.loader.target import TargetLink
from qspi_gdb.loader.timing import (
    COMMAND_OVERHEAD_S,
    FlashTimes,
    LinkSpeed,
    ResumeDelay,
)
from qspi_gdb.log import get_logger

log = get_logger(__name__)

XPSR_THUMB = 0x01000000
_GREETING_WAIT_S = 0.001
_GREETING_DEADLINE_S = 2.0
_MIN_WAIT_S = 0.0002
_MIN_RUN_SHARE = 0.1  # a wait stretched by the loader's share of run time: at most 10 x,
_MAX_STRETCH_S = 1.0  # and by at most this much
# A running loader refreshes its time_us every heartbeat_us (1 ms); one that shows the same time
# after this much host time, over at least _FROZEN_STOPS stops that let it run _FROZEN_RUN_S in
# all, is not running (the target was reset, lost power or hangs): every wait on it would
# otherwise measure a clock that stands still, forever.
_FROZEN_WALL_S = 2.0
_FROZEN_STOPS = 3
_FROZEN_RUN_S = 0.02
# commands whose result words the host reads back (the others answer through status/buffers)
_RESULT_OPS = {mb.OP_INIT, mb.OP_READ_ID, mb.OP_CRC32, mb.OP_CINSTR, mb.OP_RDSR}


def _has_results(cmd: mb.Command) -> bool:  # its slot is read back (CF_PREFIX: sectors on)
    return cmd.op in _RESULT_OPS or (cmd.op == mb.OP_CRC_LIST and bool(cmd.flags & mb.CF_PREFIX))


@dataclass
class Greeting:
    chip: int
    abi_version: int
    build_id: int
    buffers: list[mb.BufferInfo]
    max_cmds: int
    max_dma: int
    stack_base: int


@dataclass
class Stats:
    stops: int = 0  # halts the host asked for, plus the ones below
    noticed_halts: int = 0  # halts the loader made itself (a fault): seen at the debugger's poll
    commands: int = 0
    bytes_to_target: int = 0
    bytes_from_target: int = 0
    bytes_sent: int = 0  # program data written to target RAM (LZ4 blocks counted packed)

    @property
    def calls(self) -> int:  # the name of earlier reports
        return self.stops


class LoaderSession:
    """The running loader on one target. Use start() first (loads the ELF and checks the
    greeting)."""

    def __init__(self, link: TargetLink, elf_path: str | PathLike | None = None, *,
                 chip: str | None = None) -> None:
        if elf_path is None:
            if chip is None:
                raise ValueError("give the loader ELF or the chip")
            elf_path = loader_elf(chip)
        self.link = link
        self.elf_path = Path(elf_path)
        self.chip = chip
        self.stats = Stats()
        self.compress = True  # send program data as LZ4 blocks where that saves bytes
        self.timing = FlashTimes()
        self.speed = LinkSpeed()
        self.greeting: Greeting | None = None
        self.header: mb.MailboxHeader | None = None
        self.free_mask = 0
        self._queued: dict[int, mb.Command] = {}  # ring index -> command not yet collected
        self._written = 0  # commands written into the ring
        self._seq = 0  # commands submitted
        self._host_gen = 0  # stops at which the host wrote commands
        self._fail_count = 0
        self._halted_at_us: int | None = None  # loader time at the last stop
        self._bytes_this_stop = 0
        self._aside = False  # data written this stop that is not a link-speed sample
        self._request_written = False  # this stop's commands are in the ring
        self._tail_bytes = 0  # data written after them at this stop (write_ahead)
        self.resume_delay = ResumeDelay()  # see cycle
        self._frozen: tuple[float, int, float] | None = None  # since time_us stood: (wall
        # time, stops, seconds the loader was let run)
        self._ran_s = 0.0  # how long the last stop let the loader run
        self._read_symbols()

    # -- ELF ---------------------------------------------------------------------------
    def _read_symbols(self) -> None:
        with open(self.elf_path, "rb") as f:
            elf = ELFFile(f)
            symtab = elf.get_section_by_name(".symtab")
            if symtab is None:
                raise UsageError(f"{self.elf_path}: no symbol table (is it the qspi loader?)")

            def sym(name: str):
                found = symtab.get_symbol_by_name(name)
                if not found:
                    raise UsageError(f"{self.elf_path}: symbol {name} missing (not a qspi loader)")
                return found[0]

            box = sym("qspi_mailbox")
            if box["st_size"] != mb.MAILBOX_SIZE:
                raise UsageError(
                    f"{self.elf_path}: mailbox is {box['st_size']} bytes, this qspi-gdb expects "
                    f"{mb.MAILBOX_SIZE} (ABI version mismatch)"
                )
            self.mailbox_addr = box["st_value"]
            self.entry = sym("qspi_loader_entry")["st_value"] & ~1
            self.fault_addr = sym("qspi_loader_fault_halt")["st_value"] & ~1
            stack = sym("ql_stack_mem")
            self.stack_top = stack["st_value"] + stack["st_size"]
            bid = sym("qspi_loader_build_id")
            self.build_id = self._read_elf_word(elf, bid["st_value"])

    @staticmethod
    def _read_elf_word(elf: ELFFile, addr: int) -> int:
        for sec in elf.iter_sections():
            start = sec["sh_addr"]
            if sec["sh_type"] == "SHT_PROGBITS" and start <= addr < start + sec["sh_size"]:
                off = addr - start
                return struct.unpack_from("<I", sec.data(), off)[0]
        raise UsageError("loader build id not found in the ELF's loaded sections")

    # -- the session ---------------------------------------------------------------------
    def start(self, *, load: bool = True) -> Greeting:
        """Load the ELF (unless load=False), start the loader and check its greeting."""
        if load:
            self.link.load_elf(self.elf_path)
        else:  # a greeting left from before must not pass for this one
            self.link.write_memory(self.mailbox_addr, b"\0" * 4)
        self.link.write_register("pc", self.entry)
        self.link.write_register("xpsr", XPSR_THUMB)
        self.link.write_register("sp", self.stack_top)
        self._queued.clear()
        self._fail_count = 0
        wait, waited = _GREETING_WAIT_S, 0.0
        while True:
            hdr = self._stop(self.link.run_for(wait), expect_greeting=False)
            waited += wait
            if hdr.magic == mb.MAGIC or waited >= _GREETING_DEADLINE_S:
                break
            wait *= 4
        self._check_greeting(hdr)
        raw = self.link.read_memory(self.mailbox_addr + mb.OFF_BUFFER,
                                    hdr.nbuffers * mb.BUFFER_SIZE)
        buffers = mb.unpack_buffers(raw, hdr.nbuffers)
        self.greeting = Greeting(hdr.chip, hdr.abi_version, hdr.build_id, buffers,
                                 hdr.max_cmds, hdr.max_dma, hdr.stack_base)
        self._written = self._seq = hdr.done_seq
        self._host_gen = hdr.host_seen
        self._fail_count = hdr.fail_count
        log.debug("loader greeting", chip=hdr.chip, build_id=f"{hdr.build_id:#010x}",
                  buffers=len(buffers), buffer_size=buffers[0].size if buffers else 0)
        return self.greeting

    def _check_greeting(self, hdr: mb.MailboxHeader) -> None:
        if hdr.magic != mb.MAGIC:
            raise TargetError(
                f"loader greeting missing (magic {hdr.magic:#010x}, expected {mb.MAGIC:#010x}):"
                " the loader did not run"
            )
        if hdr.abi_version != mb.ABI_VERSION:
            raise TargetError(
                f"loader speaks mailbox ABI {hdr.abi_version}, this qspi-gdb speaks "
                f"{mb.ABI_VERSION}: rebuild the loader or use the packaged one"
            )
        if hdr.build_id != self.build_id:
            raise TargetError(
                f"loader build id {hdr.build_id:#010x} on the target differs from the ELF's "
                f"{self.build_id:#010x}: the download did not arrive intact"
            )
        chips = {mb.CHIP_NRF52840: "nrf52840", mb.CHIP_NRF5340: "nrf5340"}
        if self.chip is not None and chips.get(hdr.chip) != self.chip:
            raise UsageError(f"loader is built for {chips.get(hdr.chip, hdr.chip)}, "
                             f"the board is {self.chip}")

    # -- the ring and the stop cycle -------------------------------------------------------
    def submit(self, cmds: Iterable[mb.Command]) -> int:
        """Queue commands (written at the next cycle); returns the ring index of the first."""
        first = self._seq
        for cmd in cmds:
            cmd.status = mb.ST_SKIPPED
            self._queued[self._seq] = cmd
            self._seq += 1
        if self._seq - self._collected_floor() > self.max_cmds:
            raise ValueError(f"at most {self.max_cmds} commands in flight")
        return first

    @property
    def done_seq(self) -> int:
        return self.header.done_seq if self.header else 0

    @property
    def unfinished(self) -> int:
        """Commands submitted the loader has not finished (or, flash work, started)."""
        return self._seq - self.done_seq

    def _collected_floor(self) -> int:
        return min(self._queued) if self._queued else self._seq

    @property
    def max_cmds(self) -> int:
        return self.greeting.max_cmds if self.greeting else mb.MAX_CMDS

    def cycle(self, wait_s: float) -> mb.MailboxHeader:
        """One stop: write what was queued, let the loader run `wait_s` (its time), halt it,
        read its status and collect what it finished. The core is halted afterwards.

        Data written behind the commands (`write_ahead`) may still be going to the target when
        GDB reports the core running: a server such as OpenOCD answers a write before it does
        it and resumes after. The core then runs that much later than the host's wall-time
        wait begins, so the wait is lengthened by that delay (`ResumeDelay`: learned from the
        loader's clock for the bytes written behind the commands)."""
        self.write_request()
        wait_s = max(wait_s, _MIN_WAIT_S)
        self._ran_s = wait_s
        tail = self._tail_bytes
        late = self.resume_delay.estimate(tail, self.speed) if tail else 0.0
        stopped_itself = self.link.run_for(wait_s + late)
        hdr = self._stop(stopped_itself)
        if tail and not stopped_itself and hdr.host_seen == self._host_gen:
            ran = mb.timer_span_s(hdr.time_us, hdr.resume_us)
            self.resume_delay.observe(tail, wait_s + late - ran, ran, late)
        log.debug("loader stop", waited_ms=round(wait_s * 1e3, 3),
                  late_ms=round(late * 1e3, 3), t_us=hdr.time_us, done=hdr.done_seq,
                  seq=self._seq, busy=hdr.busy)
        return hdr

    def stop_now(self) -> mb.MailboxHeader:
        """Halt the loader where it is (after an interrupt of the host) and read what it
        finished, so a report counts the work that really began."""
        self.link.halt()
        self._ran_s = 0.0
        return self._stop(False)

    def write_request(self) -> None:
        """The new commands into their ring slots: one write (two where the ring wraps); a
        slot's tag says it holds the command the loader waits for. `cycle` does it; a caller
        may do it earlier, to write data for later commands after it."""
        if self._written == self._seq:
            return
        n = self.max_cmds
        self._host_gen = (self._host_gen + 1) & 0xFFFFFFFF
        index = self._written
        while index < self._seq:
            end = min(self._seq, index + n - index % n)  # up to the ring's end
            for i in range(index, end):
                self._queued[i].gen = self._host_gen
            raw = b"".join(self._queued[i].pack(i) for i in range(index, end))
            self._write(self.mailbox_addr + mb.OFF_CMD + (index % n) * mb.CMD_SIZE, raw)
            index = end
        self.stats.commands += self._seq - self._written
        self._written = self._seq
        self._request_written = True

    def halted_s(self) -> float:
        """The target time the core has been halted since the last stop (estimated from what
        the host wrote since and the link's measured speed)."""
        return self.speed.stop_s + self.speed.cost_s(self._bytes_this_stop)

    def _write(self, addr: int, data: bytes) -> None:
        self._bytes_this_stop += len(data)
        if self._request_written:
            self._tail_bytes += len(data)
        self.link.write_memory(addr, data)

    def _stop(self, stopped_itself: bool, *, expect_greeting: bool = True) -> mb.MailboxHeader:
        self.stats.stops += 1
        if stopped_itself:
            self.stats.noticed_halts += 1
        raw = self.link.read_memory(self.mailbox_addr, mb.OFF_CMD)
        hdr = mb.MailboxHeader.unpack(raw)
        if stopped_itself:
            self._check_pc()
        if expect_greeting and hdr.magic != mb.MAGIC:
            raise TargetError(f"loader mailbox overwritten (magic {hdr.magic:#010x})")
        if hdr.magic == mb.MAGIC and hdr.canary != mb.CANARY:
            raise TargetError(f"loader stack overflowed (canary at {hdr.stack_base:#010x} is "
                              f"{hdr.canary:#010x})")
        previous = self.header
        if expect_greeting and previous is not None:
            self._check_heartbeat(previous, hdr)
        self.header = hdr
        self.free_mask = hdr.free_mask
        if (previous is not None and self._halted_at_us is not None and not self._aside
                and hdr.host_seen == self._host_gen and previous.host_seen != self._host_gen):
            self.speed.observe(mb.timer_span_s(hdr.resume_us, self._halted_at_us),
                               self._bytes_this_stop)
        self._halted_at_us = hdr.time_us
        self._bytes_this_stop, self._aside = 0, False
        self._request_written = False
        self._tail_bytes = 0
        if expect_greeting:
            self._collect(hdr)
        return hdr

    def _check_heartbeat(self, previous: mb.MailboxHeader, hdr: mb.MailboxHeader) -> None:
        """TargetError when the loader's clock has stood still for _FROZEN_WALL_S of host time
        over _FROZEN_STOPS stops that let it run _FROZEN_RUN_S: the loader no longer runs."""
        if hdr.time_us != previous.time_us:
            self._frozen = None
            return
        now = time.monotonic()
        since, stops, ran = self._frozen or (now, 0, 0.0)
        stops, ran = stops + 1, ran + self._ran_s
        self._frozen = (since, stops, ran)
        if stops >= _FROZEN_STOPS and ran >= _FROZEN_RUN_S and now - since >= _FROZEN_WALL_S:
            pc = self.link.read_register("pc")
            raise TargetError(f"the loader stopped running (its clock stood still for "
                              f"{now - since:.1f} s; PC {pc:#010x}): the target was reset, lost "
                              "power or hangs")

    def _check_pc(self) -> None:
        pc = self.link.read_register("pc")
        detail = ""
        try:
            xpsr = self.link.read_register("xpsr")
            cfsr, hfsr = struct.unpack("<2I", self.link.read_memory(0xE000ED28, 8))
            detail = f", IPSR {xpsr & 0x1FF}, CFSR {cfsr:#010x}, HFSR {hfsr:#010x}"
        except Exception:  # noqa: BLE001 - best-effort diagnostics only
            pass
        what = "in its fault handler" if pc == self.fault_addr else "at an unexpected place"
        raise TargetError(f"loader stopped {what} (PC {pc:#010x}{detail})")

    def _collect(self, hdr: mb.MailboxHeader) -> None:
        """Statuses and results of the commands the loader finished since the last stop."""
        done = [i for i in self._queued if i < hdr.done_seq]
        failed = None
        if hdr.fail_count != self._fail_count:
            self._fail_count = hdr.fail_count
            failed = hdr.fail_seq - 1
        wanted = [i for i in done if _has_results(self._queued[i]) or i == failed]
        for index, raw in self._read_slots(wanted):
            self._queued[index].unpack_results(raw)
        failed_gen = self._queued[failed].gen if failed in self._queued else None
        for index in done:
            cmd = self._queued.pop(index)
            if index == failed:
                continue
            if failed is not None and failed < index and cmd.gen == failed_gen:
                cmd.status = mb.ST_SKIPPED  # queued with the failing one
            elif not _has_results(cmd):
                cmd.status = mb.ST_OK

    def _read_slots(self, indices: Sequence[int]) -> list[tuple[int, bytes]]:
        n = self.max_cmds
        out = []
        for index in sorted(indices, key=lambda i: i % n):
            addr = self.mailbox_addr + mb.OFF_CMD + (index % n) * mb.CMD_SIZE
            out.append((index, self._read_target(addr, mb.CMD_SIZE)))
        return out

    def wait(self, last: int, estimate_s: float, limit_s: float) -> None:
        """Cycle until the loader finished command `last` (ring index): first after the
        estimate; then, when the loader got less run time than the host waited (its clock says
        how much: from taking up the request to the stop), the rest of the estimate stretched
        by that share; then in growing steps, none shorter than a stop costs (waiting that long
        more costs at most what another stop would). TargetError after `limit_s` of loader
        time."""
        start = self.header.time_us if self.header else 0
        wanted = estimate_s * 1.05
        wait = wanted + _MIN_WAIT_S
        more = max(0.1 * estimate_s, self.speed.stop_s, 0.001)
        first = True
        while self.done_seq <= last:
            hdr = self.cycle(wait)
            if hdr.done_seq > last:
                break
            if mb.timer_span_s(hdr.time_us, start) > limit_s:
                raise TargetError(f"the loader did not finish within {limit_s:.1f} s "
                                  f"({self.diagnose()})")
            ran = mb.timer_span_s(hdr.time_us, hdr.resume_us)
            short_run = first and hdr.host_seen == self._host_gen and 0 < ran < wanted
            first = False
            if short_run:  # a slow resume, or a target slower than real time
                rest = wanted - ran  # stretched, by at most _MAX_STRETCH_S: a target that
                # stopped running (its clock stands) is then found at the next stop
                wait = min(rest / max(ran / wait, _MIN_RUN_SHARE), rest + _MAX_STRETCH_S) + \
                    _MIN_WAIT_S
                continue
            wait, more = more, more * 1.5  # not yet: a little more, growing (stops cost)

    def diagnose(self) -> str:
        hdr = self.header
        if hdr is None:
            return "no mailbox read yet"
        return (f"mailbox state {hdr.state}, {hdr.done_seq}/{self._seq} commands done, last "
                f"status {hdr.last_status}, flash busy {hdr.busy}")

    def run(self, cmds: Sequence[mb.Command], *, check: bool = True) -> Sequence[mb.Command]:
        """Run `cmds` in order and wait for them (low level; statuses in each command)."""
        cmds = list(cmds)
        if not cmds:
            return cmds
        first = self.submit(cmds)
        # erase and program count as done once started (unless CF_SYNC)
        typ = sum(self.timing.typ_s(c) if c.flags & mb.CF_SYNC or c.op not in (
            mb.OP_ERASE, mb.OP_PROGRAM) else COMMAND_OVERHEAD_S for c in cmds)
        limit = 2.0 + 1.5 * sum(self.timing.max_s(c) for c in cmds)
        self.wait(first + len(cmds) - 1, typ, limit)
        if check:
            self.check(cmds)
        return cmds

    @staticmethod
    def check(cmds: Iterable[mb.Command]) -> None:
        for c in cmds:
            if c.status != mb.ST_OK:
                raise error_for(c.status, c)

    # -- commands --------------------------------------------------------------------------
