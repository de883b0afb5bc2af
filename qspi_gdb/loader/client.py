"""The loader's commands, on a running loader session (`qspi_gdb.loader.session`): INIT and
DEINIT, JEDEC ID, SFDP, raw custom instructions, reads and CRC-32s through the loader's buffers,
and streamed erase/program work (`qspi_gdb.loader.pipeline`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from qspi_gdb.errors import TargetError
from qspi_gdb.loader import mailbox as mb
from qspi_gdb.loader.config import LoaderConfig
from qspi_gdb.loader.pipeline import EraseStep, ProgramStep, stream
from qspi_gdb.loader.session import LoaderSession
from qspi_gdb.loader.timing import DEFAULT_MAX_S


@dataclass
class InitResult:
    jedec_id: int  # 0xMMTTCC
    sck_hz: int
    addr4_before: bool
    sfdp: bytes = b""  # the start of the SFDP space, when init() was asked to read it too


class LoaderClient(LoaderSession):
    """The loader on one target and its commands. Use start() first."""

    def init(self, config: LoaderConfig, *, then_sfdp: int = 0) -> InitResult:
        """INIT with `config` (the loader first leaves a configuration it has: DEINIT is
        implied). then_sfdp: also read that many bytes of the SFDP space from address 0, in the
        same stop (skipped, and INIT's error raised, when INIT fails)."""
        self.link.write_memory(self.mailbox_addr + mb.OFF_CONFIG, config.pack())
        t = self.timing
        t.sck_hz, t.page = config.sck_hz, config.page_bytes
        t.read_lines = {0: 1, 1: 2, 2: 2, 3: 4, 4: 4}.get(config.readoc, 1)
        t.write_lines = {0: 1, 1: 2, 2: 4, 3: 4}.get(config.writeoc, 1)
        t.csn_gap_s = config.sck_delay / 16e6
        for key, typ, mx in (("page", config.t_page_typ_us, config.t_page_max_us),
                             ("4k", config.t_4k_typ_us, config.t_4k_max_us),
                             ("64k", config.t_64k_typ_us, config.t_64k_max_us),
                             ("chip", config.t_chip_typ_us, config.t_chip_max_us)):
            if typ:
                t.typ[key] = typ / 1e6
            t.max[key] = mx / 1e6 if mx else DEFAULT_MAX_S[key]
        t.max["wrsr"] = config.t_wrsr_max_us / 1e6 if config.t_wrsr_max_us else \
            DEFAULT_MAX_S["wrsr"]
        cmds = [mb.Command(mb.OP_INIT)]
        if then_sfdp:
            cmds.append(mb.Command(mb.OP_SFDP, addr=0, len=then_sfdp, buf=self.free_buffer()))
        cmd = self.run(cmds)[0]
        t.sck_hz = cmd.result1 or t.sck_hz
        assert self.header is not None
        sfdp = self._read_target(self.buffers()[cmds[1].buf].addr, then_sfdp) if then_sfdp \
            else b""
        return InitResult(cmd.result0, cmd.result1, bool(self.header.addr4_before), sfdp)

    def deinit(self) -> None:
        self.run([mb.Command(mb.OP_DEINIT)])

    def wait_idle(self) -> None:
        self.run([mb.Command(mb.OP_WAIT_IDLE)])

    def exit(self) -> None:
        """The loader leaves (flash idle, VTOR/NVIC/timer restored) and the core stays halted."""
        self.run([mb.Command(mb.OP_EXIT)])

    def close(self) -> None:
        """DEINIT (the flash back in the address mode it had, QSPI off), then EXIT."""
        self.run([mb.Command(mb.OP_DEINIT), mb.Command(mb.OP_EXIT)])

    def read_id(self) -> int:
        (cmd,) = self.run([mb.Command(mb.OP_READ_ID)])
        return cmd.result0

    def rdsr(self) -> int:
        (cmd,) = self.run([mb.Command(mb.OP_RDSR)])
        return cmd.result0

    def cinstr(self, opcode: int, tx: bytes = b"", *, length: int | None = None,
               wren: bool = False, wipwait: bool = False) -> bytes:
        """Raw custom instruction: opcode + `length` data bytes (tx padded with 0); returns the
        bytes received in the data phase."""
        n = len(tx) if length is None else length
        if n > 8 or len(tx) > n:
            raise ValueError("a custom instruction carries at most 8 data bytes")
        a0, a1 = struct.unpack("<2I", tx.ljust(8, b"\0"))
        flags = (mb.CF_WREN if wren else 0) | (mb.CF_WIPWAIT if wipwait else 0)
        (cmd,) = self.run([mb.Command(mb.OP_CINSTR, flags, opcode, n, arg=a0, arg2=a1)])
        return struct.pack("<2I", cmd.result0, cmd.result1)[:n]

    def buffers(self) -> list[mb.BufferInfo]:
        if self.greeting is None:
            raise TargetError("loader not started")
        return self.greeting.buffers

    def free_buffers(self) -> list[int]:
        """Buffers the host may write now: free of EasyDMA and of unfinished commands."""
        size = self.buffers()[0].size
        taken = 0
        for cmd in self._queued.values():
            for buf, off, length in cmd.buffer_ranges():
                start = max(buf, 0) * size + off
                for i in range(start // size, (start + max(length, 1) - 1) // size + 1):
                    taken |= 1 << i
        return [b.index for b in self.buffers() if self.free_mask & ~taken & (1 << b.index)]

    def free_buffer(self) -> int:
        """One free buffer, waiting for the flash if every buffer is taken."""
        free = self.free_buffers()
        if not free:
            self.wait_idle()
            free = self.free_buffers()
            if not free:
                raise TargetError("loader reports no free buffer")
        return free[0]

    def sfdp(self, addr: int = 0, length: int = 256) -> bytes:
        b = self.free_buffer()
        self.run([mb.Command(mb.OP_SFDP, addr=addr, len=length, buf=b)])
        return self._read_target(self.buffers()[b].addr, length)

    def _read_target(self, addr: int, length: int) -> bytes:
        self.stats.bytes_from_target += length
        return self.link.read_memory(addr, length)

    def write_target(self, addr: int, data: bytes, *, link_sample: bool = True) -> None:
        """link_sample=False: data that is not the stream's (a command's input words); its
        stop teaches the link speed nothing (a few KiB cost mostly round trips, and the first
        plans of a stream after it would take them for its rate)."""
        self.stats.bytes_to_target += len(data)
        self._aside |= not link_sample
        self._write(addr, data)

    def _each_buffer(self, count: int, command: Callable[[int, int], mb.Command],
                     collect: Callable[[mb.Command, mb.BufferInfo], None]) -> None:
        """Run `count` commands, each into a free buffer (command(i, buffer) builds number i),
        as many per round as there are free buffers; collect() reads each one's results."""
        done = 0
        while done < count:
            free = self.free_buffers()[:self.max_cmds] or [self.free_buffer()]
            cmds = [command(done + k, b) for k, b in enumerate(free[:count - done])]
            self.run(cmds)
            for c in cmds:
                collect(c, self.buffers()[c.buf])
            done += len(cmds)

    def read(self, offset: int, length: int) -> bytes:
        """Read flash [offset, offset+length) (any alignment) through the loader's buffers."""
        start, end = offset & ~3, (offset + length + 3) & ~3
        size = self.buffers()[0].size
        out = bytearray()
        self._each_buffer(
            -(-(end - start) // size),
            lambda i, b: mb.Command(mb.OP_READ, addr=start + i * size,
                                    len=min(size, end - start - i * size), buf=b),
            lambda c, buf: out.extend(self._read_target(buf.addr, c.len)))
        return bytes(out[offset - start:offset - start + length])

    def crc32(self, offset: int, length: int) -> int:
        (cmd,) = self.run([mb.Command(mb.OP_CRC32, addr=offset, len=length)])
        return cmd.result0

    def crc_list(self, offset: int, sector_size: int, count: int) -> list[int]:
        """CRC-32 of `count` consecutive sectors starting at `offset`."""
        per_cmd = self.buffers()[0].size // 4
        out: list[int] = []
        self._each_buffer(
            -(-count // per_cmd),
            lambda i, b: mb.Command(
                mb.OP_CRC_LIST, addr=offset + i * per_cmd * sector_size,
                len=min(per_cmd, count - i * per_cmd) * sector_size, buf=b, arg=sector_size),
            lambda c, buf: out.extend(struct.unpack(
                f"<{c.len // sector_size}I",
                self._read_target(buf.addr, 4 * (c.len // sector_size)))))
        return out

    def crc_list_prefixed(self, offset: int, sector_size: int, prefix: int,
                          expected: Sequence[int]) -> list[int | None]:
        """CRC-32 of consecutive sectors from `offset`, one per value in `expected` (the CRC-32
        each sector's first `prefix` bytes should have). A sector whose first bytes have
        another CRC is not read further: None (it differs from what was expected).

        Per buffer a CF_PREFIX command and its CF_REST go out together; the host waits for the
        first ones by their estimate, then for the rest by what they found (the sectors to
        read on), so a changed image and an unchanged one are each waited for about right."""
        per_cmd = self.buffers()[0].size // 4 * 32 // 33  # the words and their bitmap
        out: list[int | None] = []
        done = 0
        while done < len(expected):
            heads, rests, words = [], [], []
            for b in self.free_buffers()[:self.max_cmds // 2] or [self.free_buffer()]:
                part = expected[done:done + per_cmd]
                if not part:
                    break
                words.append((self.buffers()[b].addr, struct.pack(f"<{len(part)}I", *part)))
                for flag, group in ((mb.CF_PREFIX, heads), (mb.CF_REST, rests)):
                    group.append(mb.Command(mb.OP_CRC_LIST, flag, offset + done * sector_size,
                                            len(part) * sector_size, buf=b, arg=sector_size,
                                            arg2=prefix))
                done += len(part)
            for addr, data in words:
                self.write_target(addr, data, link_sample=False)
            first = self.submit(heads + rests)
            t = self.timing
            limit = 2.0 + 1.5 * sum(t.max_s(c) for c in heads + rests)
            # More than their estimate, by the words' link time and a stop's cost: through
            # the J-Link OB the first stop of an unchanged 512 KiB re-flash came before the
            # loader had run the estimate (~9 ms late in resuming, cause not found) and cost a
            # stop more; waiting a stop's cost longer costs at most what that stop would.
            late = self.speed.cost_s(sum(len(data) for _, data in words)) + self.speed.stop_s
            self.wait(first + len(heads) - 1, sum(t.typ_s(c) for c in heads) + late, limit)
            on = sum(c.result0 for c in heads if c.status == mb.ST_OK)
            full = rest = t.rests_s(on, sector_size, prefix)
            hdr = self.header
            assert hdr is not None
            if hdr.done_seq == first + len(heads):  # the rest began as the last prefix ended
                rest -= hdr.since_done_s
            self.wait(first + 2 * len(heads) - 1, max(rest, 0.1 * full), limit)
            self.check(heads + rests)
            for c in rests:
                n = c.len // sector_size
                raw = self._read_target(self.buffers()[c.buf].addr, mb.crc_list_bytes(c))
                values, bitmap = struct.unpack_from(f"<{n}I", raw), raw[4 * n:]
                out.extend(v if bitmap[k // 8] >> (k % 8) & 1 else None
                           for k, v in enumerate(values))
        return out

    def write(self, steps: Sequence[EraseStep | ProgramStep],
              progress: Callable[[int], None] | None = None,
              erased: Callable[[int, int], None] | None = None,
              then: Sequence[mb.Command] = ()) -> None:
        """Run erase/program steps as `qspi_gdb.loader.pipeline.stream` (progress, erased,
        then: bufferless commands to run when the flash is idle, e.g. the verify's CRC32s)."""
        stream(self, steps, progress, erased, then)

    def erase(self, ranges: Iterable[tuple[int, int, int]] | Iterable[EraseStep]) -> None:
        """Erase ranges (offset, length, block) and wait until the flash is done."""
        steps = [r if isinstance(r, EraseStep) else EraseStep(*r) for r in ranges]
        self.write(steps)

    def erase_chip(self, size: int) -> None:
        self.write([EraseStep(0, size, 0)])

    def program(self, offset: int, data: bytes,
                progress: Callable[[int], None] | None = None) -> None:
        """Program already-erased flash; any alignment (0xFF padding leaves bytes as they are)."""
        self.write([ProgramStep(offset, bytes(data))], progress=progress)
