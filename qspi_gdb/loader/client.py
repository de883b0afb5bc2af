"""Host side of the loader protocol: knows the mailbox (`qspi_gdb.loader.mailbox`), nothing
about GDB.

It talks to any `qspi_gdb.loader.target.TargetLink`: loads the loader ELF, finds the mailbox by
symbol (pyelftools), checks the greeting (magic, ABI version, build id, stack canary) before the
first command, queues commands and turns status codes into typed errors
(`qspi_gdb.loader.status`). One "call" = write the queued commands, set PC to the loader's entry,
resume, wait for the `bkpt`. `write()` streams erase/program work (`qspi_gdb.loader.pipeline`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

from elftools.elf.elffile import ELFFile

from qspi_gdb.errors import TargetError, UsageError
from qspi_gdb.loader import loader_elf
from qspi_gdb.loader import mailbox as mb
from qspi_gdb.loader.pipeline import (
    BusyEstimates,
    EraseStep,
    LinkSpeed,
    ProgramStep,
    stream,
)
from qspi_gdb.loader.status import error_for
from qspi_gdb.loader.target import TargetLink
from qspi_gdb.log import get_logger

log = get_logger(__name__)

XPSR_THUMB = 0x01000000
# The loader's own times where the config leaves a t_*_us field at 0 (QL_DEF_* in the header),
# seconds: the host's deadlines assume what the loader will wait for.
_DEFAULT_MAX_S = {"page": mb.DEF_PAGE_MAX_US / 1e6, "4k": mb.DEF_4K_MAX_US / 1e6,
                  "64k": mb.DEF_64K_MAX_US / 1e6, "chip": mb.DEF_CHIP_MAX_US / 1e6,
                  "wrsr": mb.DEF_WRSR_MAX_US / 1e6}
_DEFAULT_TYP_S = {"page": mb.DEF_PAGE_TYP_US / 1e6, "4k": mb.DEF_4K_TYP_US / 1e6,
                  "64k": mb.DEF_64K_TYP_US / 1e6, "chip": mb.DEF_CHIP_TYP_US / 1e6}
_CALL_SLACK_S = 2.0


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
class InitResult:
    jedec_id: int  # 0xMMTTCC
    sck_hz: int
    addr4_before: bool


@dataclass
class Stats:
    calls: int = 0
    commands: int = 0
    bytes_to_target: int = 0
    bytes_from_target: int = 0


@dataclass
class _Timing:
    typ: dict[str, float] = field(default_factory=lambda: dict(_DEFAULT_TYP_S))
    max: dict[str, float] = field(default_factory=lambda: dict(_DEFAULT_MAX_S))
    sck_hz: int = 8_000_000
    page: int = 256


class LoaderClient:
    """The loader on one target. Use start() first (loads the ELF and checks the greeting)."""

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
        self._seq = 0
        self._entered = False
        self.timing = _Timing()
        self._pending_s = 0.0  # max time of flash work left running by the last call
        # measured link speed and flash busy times, kept across write() calls
        self.speed = LinkSpeed()
        self.busy = BusyEstimates()
        self.greeting: Greeting | None = None
        self.header: mb.MailboxHeader | None = None
        self.free_mask = 0
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
            self.halt_addr = sym("qspi_loader_halt")["st_value"] & ~1
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

    # -- calls ---------------------------------------------------------------------------
    def start(self, *, load: bool = True) -> Greeting:
        """Load the ELF (unless load=False), run the loader once and check its greeting."""
        if load:
            self.link.load_elf(self.elf_path)
        self._entered = False
        self.call([], timeout_s=_CALL_SLACK_S, check_seq=False)
        hdr = self.header
        assert hdr is not None
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
        raw = self.link.read_memory(self.mailbox_addr + mb.OFF_BUFFER,
                                    hdr.nbuffers * mb.BUFFER_SIZE)
        buffers = mb.unpack_buffers(raw, hdr.nbuffers)
        self.greeting = Greeting(hdr.chip, hdr.abi_version, hdr.build_id, buffers,
                                 hdr.max_cmds, hdr.max_dma, hdr.stack_base)
        self.free_mask = hdr.free_mask
        self._seq = hdr.done_seq
        log.debug("loader greeting", chip=hdr.chip, build_id=f"{hdr.build_id:#010x}",
                  buffers=len(buffers), buffer_size=buffers[0].size if buffers else 0)
        return self.greeting

    def _enter(self) -> None:
        self.link.write_register("pc", self.entry)
        if not self._entered:
            # first call: thread mode, Thumb, our stack (later calls start from the loader's
            # own halt, where all of that is already true)
            self.link.write_register("xpsr", XPSR_THUMB)
            self.link.write_register("sp", self.stack_top)
            self._entered = True

    def call(self, cmds: Sequence[mb.Command], *, timeout_s: float | None = None,
              check: bool = True, check_seq: bool = True) -> Sequence[mb.Command]:
        max_cmds = self.greeting.max_cmds if self.greeting else mb.MAX_CMDS
        if len(cmds) > max_cmds:
            raise ValueError(f"at most {max_cmds} commands per call")
        if cmds or check_seq:
            self._seq = (self._seq + 1) & 0xFFFFFFFF
            payload = struct.pack("<2I", self._seq, len(cmds)) + b"".join(c.pack() for c in cmds)
            self.link.write_memory(self.mailbox_addr + mb.OFF_SEQ, payload)
        if timeout_s is None:
            timeout_s = self._call_timeout(cmds)
        self._enter()
        self.link.resume()
        try:
            self.link.wait_halt(timeout_s)
        except TargetError as exc:
            raise TargetError(f"{exc}; {self._diagnose()}") from exc
        self.stats.calls += 1
        self.stats.commands += len(cmds)
        raw = self.link.read_memory(self.mailbox_addr, mb.OFF_CMD + len(cmds) * mb.CMD_SIZE)
        hdr = mb.MailboxHeader.unpack(raw)
        self.header = hdr
        # A completed call is proven by the mailbox (magic and done_seq); only then is the PC
        # not worth a read. Anything else: where did it stop?
        if not check_seq or hdr.magic != mb.MAGIC or hdr.done_seq != self._seq:
            pc = self.link.read_register("pc")
            if pc != self.halt_addr:
                self._raise_stopped_elsewhere(pc)
            if check_seq:
                raise TargetError(
                    f"loader mailbox inconsistent after a call (magic {hdr.magic:#010x}, "
                    f"done_seq {hdr.done_seq} != seq {self._seq})"
                )
        if hdr.magic == mb.MAGIC and hdr.canary != mb.CANARY:
            raise TargetError(f"loader stack overflowed (canary at {hdr.stack_base:#010x} is "
                              f"{hdr.canary:#010x})")
        for i, c in enumerate(cmds):
            off = mb.OFF_CMD + i * mb.CMD_SIZE
            c.unpack_results(raw[off:off + mb.CMD_SIZE])
        self.free_mask = hdr.free_mask
        if check:
            for c in cmds:
                if c.status != mb.ST_OK:
                    raise error_for(c.status, c)
        return cmds

    def _diagnose(self) -> str:
        """PC, IPSR and mailbox state of a loader that did not come back in time."""
        parts = []
        try:
            pc = self.link.read_register("pc")
            xpsr = self.link.read_register("xpsr")
            parts.append(f"loader PC {pc:#010x}, IPSR {xpsr & 0x1FF}")
            hdr = mb.MailboxHeader.unpack(self.link.read_memory(self.mailbox_addr, mb.OFF_SEQ))
            parts.append(f"mailbox state {hdr.state}, done_seq {hdr.done_seq}/{self._seq}, "
                         f"last status {hdr.last_status}, flash busy {hdr.busy}")
        except Exception as exc:  # noqa: BLE001 - diagnostics must not hide the time-out
            parts.append(f"no further diagnostics ({exc})")
        return "; ".join(parts)

    def _raise_stopped_elsewhere(self, pc: int) -> None:
        detail = ""
        try:
            xpsr = self.link.read_register("xpsr")
            cfsr, hfsr = struct.unpack("<2I", self.link.read_memory(0xE000ED28, 8))
            detail = f", IPSR {xpsr & 0x1FF}, CFSR {cfsr:#010x}, HFSR {hfsr:#010x}"
        except Exception:  # noqa: BLE001 - best-effort diagnostics only
            pass
        what = "in its fault handler" if pc == self.fault_addr else "at an unexpected place"
        raise TargetError(f"loader stopped {what} (PC {pc:#010x}{detail})")

    # -- time-outs -----------------------------------------------------------------------
    def _est_max_s(self, c: mb.Command) -> float:
        t = self.timing
        xfer = (c.len * 8) / max(t.sck_hz, 1) * 2
        if c.op == mb.OP_ERASE:
            if c.arg == mb.ERASE_CHIP:
                return t.max["chip"]
            block = 4096 if c.arg == mb.ERASE_4K else 65536
            return (c.len // block + 1) * t.max["4k" if block == 4096 else "64k"]
        if c.op == mb.OP_PROGRAM:
            return (c.len // t.page + 2) * (t.max["page"] + 256 * 8 / max(t.sck_hz, 1))
        if c.op in (mb.OP_READ, mb.OP_CRC32, mb.OP_CRC_LIST, mb.OP_SFDP):
            return xfer + 0.001 * (c.len // 4096 + 1)
        if c.op == mb.OP_INIT:
            return 1.0 + t.max["64k"] + 10 * t.max["wrsr"]
        if c.op == mb.OP_CINSTR:
            return t.max["64k"] if c.flags & mb.CF_WIPWAIT else t.max["wrsr"]
        return 0.05

    def _call_timeout(self, cmds: Sequence[mb.Command]) -> float:
        total = self._pending_s + sum(self._est_max_s(c) for c in cmds)
        last = next((c for c in reversed(cmds) if c.op in (mb.OP_ERASE, mb.OP_PROGRAM)), None)
        self._pending_s = self._est_max_s(last) if last is not None else 0.0
        if any(c.op in (mb.OP_WAIT_IDLE, mb.OP_DEINIT) for c in cmds):
            self._pending_s = 0.0
        return _CALL_SLACK_S + 1.5 * total

    # -- commands --------------------------------------------------------------------------
    def run(self, cmds: Sequence[mb.Command], *, check: bool = True) -> Sequence[mb.Command]:
        """One call running `cmds` in order (low level; statuses in each command)."""
        return self.call(cmds, check=check)

    def init(self, config: mb.LoaderConfig) -> InitResult:
        self.link.write_memory(self.mailbox_addr + mb.OFF_CONFIG, config.pack())
        t = self.timing
        t.sck_hz = config.sck_hz
        t.page = config.page_bytes
        for key, typ, mx in (("page", config.t_page_typ_us, config.t_page_max_us),
                             ("4k", config.t_4k_typ_us, config.t_4k_max_us),
                             ("64k", config.t_64k_typ_us, config.t_64k_max_us),
                             ("chip", config.t_chip_typ_us, config.t_chip_max_us)):
            if typ:
                t.typ[key] = typ / 1e6
            if mx:
                t.max[key] = mx / 1e6
        if config.t_wrsr_max_us:
            t.max["wrsr"] = config.t_wrsr_max_us / 1e6
        (cmd,) = self.call([mb.Command(mb.OP_INIT)])
        t.sck_hz = cmd.result1 or t.sck_hz
        assert self.header is not None
        return InitResult(cmd.result0, cmd.result1, bool(self.header.addr4_before))

    def deinit(self) -> None:
        self.call([mb.Command(mb.OP_DEINIT)])

    def wait_idle(self) -> None:
        self.call([mb.Command(mb.OP_WAIT_IDLE)])

    def read_id(self) -> int:
        (cmd,) = self.call([mb.Command(mb.OP_READ_ID)])
        return cmd.result0

    def rdsr(self) -> int:
        (cmd,) = self.call([mb.Command(mb.OP_RDSR)])
        return cmd.result0

    def cinstr(self, opcode: int, tx: bytes = b"", *, length: int | None = None,
               wren: bool = False, wipwait: bool = False) -> bytes:
        """Raw custom instruction: opcode + `length` data bytes (tx padded with 0); returns the
        bytes received in the data phase."""
        n = len(tx) if length is None else length
        if n > 8 or len(tx) > n:
            raise ValueError("a custom instruction carries at most 8 data bytes")
        data = tx.ljust(8, b"\0")
        a0, a1 = struct.unpack("<2I", data)
        flags = (mb.CF_WREN if wren else 0) | (mb.CF_WIPWAIT if wipwait else 0)
        (cmd,) = self.call([mb.Command(mb.OP_CINSTR, flags, opcode, n, arg=a0, arg2=a1)])
        return struct.pack("<2I", cmd.result0, cmd.result1)[:n]

    def free_buffer(self, taken: int = 0) -> int:
        avail = self.free_mask & ~taken
        if not avail:
            # at most one buffer is ever in EasyDMA use: finish it
            self.call([mb.Command(mb.OP_WAIT_IDLE)])
            avail = self.free_mask & ~taken
            if not avail:
                raise TargetError("loader reports no free buffer")
        return (avail & -avail).bit_length() - 1

    def buffers(self) -> list[mb.BufferInfo]:
        if self.greeting is None:
            raise TargetError("loader not started")
        return self.greeting.buffers

    def sfdp(self, addr: int = 0, length: int = 256) -> bytes:
        b = self.free_buffer()
        buf = self.buffers()[b]
        self.call([mb.Command(mb.OP_SFDP, addr=addr, len=length, buf=b)])
        return self._read_target(buf.addr, length)

    def _read_target(self, addr: int, length: int) -> bytes:
        self.stats.bytes_from_target += length
        return self.link.read_memory(addr, length)

    def write_target(self, addr: int, data: bytes) -> None:
        self.stats.bytes_to_target += len(data)
        self.link.write_memory(addr, data)

    def read(self, offset: int, length: int) -> bytes:
        """Read flash [offset, offset+length) (any alignment) through the loader's buffers."""
        start = offset & ~3
        end = (offset + length + 3) & ~3
        out = bytearray()
        bufs = self.buffers()
        size = bufs[0].size
        pos = start
        while pos < end:
            cmds: list[mb.Command] = []
            taken = 0
            while pos < end and len(cmds) < len(bufs):
                avail = self.free_mask & ~taken
                if not avail:
                    break
                b = (avail & -avail).bit_length() - 1
                taken |= 1 << b
                n = min(size, end - pos)
                cmds.append(mb.Command(mb.OP_READ, addr=pos, len=n, buf=b))
                pos += n
            if not cmds:
                self.free_buffer()
                continue
            self.call(cmds)
            for c in cmds:
                out += self._read_target(bufs[c.buf].addr, c.len)
        return bytes(out[offset - start:offset - start + length])

    def crc32(self, offset: int, length: int) -> int:
        (cmd,) = self.call([mb.Command(mb.OP_CRC32, addr=offset, len=length)])
        return cmd.result0

    def crc_list(self, offset: int, sector_size: int, count: int) -> list[int]:
        """CRC-32 of `count` consecutive sectors starting at `offset`."""
        out: list[int] = []
        bufs = self.buffers()
        per_cmd = bufs[0].size // 4
        done = 0
        while done < count:
            cmds = []
            taken = 0
            while done < count and len(cmds) < self.greeting.max_cmds:  # type: ignore[union-attr]
                avail = self.free_mask & ~taken
                if not avail:
                    break
                b = (avail & -avail).bit_length() - 1
                taken |= 1 << b
                n = min(per_cmd, count - done)
                cmds.append(mb.Command(mb.OP_CRC_LIST, addr=offset + done * sector_size,
                                       len=n * sector_size, buf=b, arg=sector_size))
                done += n
            if not cmds:
                self.free_buffer()
                continue
            self.call(cmds)
            for c in cmds:
                n = c.len // sector_size
                out += struct.unpack(f"<{n}I", self._read_target(bufs[c.buf].addr, 4 * n))
        return out

    def write(self, steps: Sequence[EraseStep | ProgramStep],
              progress: Callable[[int], None] | None = None,
              erased: Callable[[int, int], None] | None = None) -> None:
        """Run erase/program steps as `qspi_gdb.loader.pipeline.stream` (progress, erased)."""
        stream(self, steps, progress, erased)

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

