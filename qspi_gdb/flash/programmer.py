"""The programmer: carries out a plan on one target through the RAM loader client.

Library core: `Programmer` works on any TargetLink (GDB/MI link, in-process virtual board),
emits typed progress events (a phase that fails emits PhaseFailed) and never reports a range
verified unless a CRC32 computed on the target matched. The jobs (`qspi_gdb.flash.jobs`) open
the target and fill the Result; the rules it obeys live in `qspi_gdb.flash.rules`.
"""

from __future__ import annotations

import os
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from qspi_gdb import log
from qspi_gdb.flash import kept as kept_bytes
from qspi_gdb.flash import rules
from qspi_gdb.flash.checks import (
    file_crc,
    image_checks,
    proven_unchanged,
    read_crcs,
    sector_sized,
)
from qspi_gdb.flash.journal import Journal
from qspi_gdb.flash.plan import Plan, SectorContent
from qspi_gdb.flash.plan import plan as make_plan
from qspi_gdb.flash.progress import (
    ERASING,
    PROGRAMMING,
    READING,
    VERIFYING,
    PhaseFailed,
    PhaseFinished,
    PhaseProgress,
    PhaseStarted,
    ProgressSink,
    ignore,
)
from qspi_gdb.flash.ranges import Range
from qspi_gdb.flash.rules import EraseRun
from qspi_gdb.flash.work import UnitsWritten, WorkDone
from qspi_gdb.inputs.detect import apply_chip
from qspi_gdb.inputs.flash_config import FlashConfig
from qspi_gdb.inputs.image import Image
from qspi_gdb.inputs.sfdp import SfdpError
from qspi_gdb.inputs.sfdp_decode import parse_sfdp, required_length
from qspi_gdb.loader import loader_elf as packaged_loader
from qspi_gdb.loader import mailbox as mb
from qspi_gdb.loader.client import LoaderClient
from qspi_gdb.loader.config import loader_config, probe_config
from qspi_gdb.loader.pipeline import EraseStep, ProgramStep

_log = log.get_logger(__name__)

SFDP_PREFIX = 512  # bytes of SFDP space read with the probing INIT (connect)


class _Phase:
    """Progress of one phase: started/progress/finished events with byte counts."""

    def __init__(self, sink: ProgressSink, name: str, total: int):
        self.sink, self.name, self.total, self.done = sink, name, total, 0
        self.started = time.monotonic()
        sink(PhaseStarted(name, total))

    def add(self, n: int) -> None:
        self.done = min(self.total, self.done + n)
        self.sink(PhaseProgress(self.name, self.done, self.total))

    def finish(self) -> None:
        self.sink(PhaseFinished(self.name, self.total, time.monotonic() - self.started))

    def fail(self, exc: BaseException) -> None:
        self.sink(PhaseFailed(self.name, str(exc) or type(exc).__name__))


@contextmanager
def _phase(sink: ProgressSink, name: str, total: int) -> Iterator[_Phase]:
    phase = _Phase(sink, name, total)
    try:
        yield phase
    except BaseException as exc:  # Ctrl-C too: the phase did not finish
        phase.fail(exc)
        raise
    phase.finish()


def expected_bytes(image: Image, contents: Sequence[SectorContent], r: Range) -> bytes:
    """What the flash must hold in r after writing: rewritten units' final bytes, else image."""
    out = bytearray(b"\xff" * r.length)
    filled = bytearray(r.length)
    for seg in image.segments:
        lo, hi = max(seg.offset, r.offset), min(seg.end, r.end)
        if lo < hi:
            out[lo - r.offset:hi - r.offset] = seg.data[lo - seg.offset:hi - seg.offset]
            filled[lo - r.offset:hi - r.offset] = b"\x01" * (hi - lo)
    for content in contents:
        lo, hi = max(content.offset, r.offset), min(content.offset + len(content.data), r.end)
        if lo < hi:
            out[lo - r.offset:hi - r.offset] = content.data[lo - content.offset:hi - content.offset]
            filled[lo - r.offset:hi - r.offset] = b"\x01" * (hi - lo)
    if 0 in filled:
        raise AssertionError(f"verify range {r} is not fully known")  # plan guarantees it
    return bytes(out)


# -- the core ---------------------------------------------------------------------------------


@dataclass
class FlashOutcome:
    plan: Plan
    contents: list[SectorContent]
    bytes_programmed: int
    pages_programmed: int
    pages_skipped_blank: int  # pages of rewritten units left all 0xFF: erased, not programmed
    bytes_sent: int  # program data written to target RAM (LZ4 blocks counted packed)
    verified: list[dict]  # {offset, length, crc32}
    mismatched: list[dict]  # {offset, length, expected, actual}


class Programmer:
    """Flash work on one target through the RAM loader. connect() before anything else."""

    def __init__(self, link, *, chip: str, loader_elf: str | os.PathLike | None = None,
                 progress: ProgressSink = ignore):
        self.link = link
        self.progress = progress
        self.client = LoaderClient(link, loader_elf or packaged_loader(chip), chip=chip)
        self.config: FlashConfig | None = None
        self.sfdp = None
        # True once an erase or program went to the loader: from then on a failure may have
        # left the range partly written, whatever kind of error it is
        self.flash_touched = False
        # True once every erase and program of the command has finished on the chip
        self.flash_written = False
        self.work = WorkDone()
        self.kept_note = ""  # after a failed write: where the bytes outside the image are
        self.plan: Plan | None = None  # the plan of the last flash() (also when it failed)

    # -- connect: greeting, probe, detect, configure --------------------------------------------

    def connect(self, preset: FlashConfig) -> FlashConfig:
        """Load the loader, read JEDEC ID + SFDP with a probing configuration, fold the chip
        into the configuration (the chip wins; contradictions are errors) and initialise the
        loader with the result."""
        self.client.start()
        # the SFDP header, its parameter headers and, on most parts, every table fit in the
        # first SFDP_PREFIX bytes: read with INIT in one stop (a stop is a network round trip
        # or more with a remote GDB server); a longer SFDP is read again, as long as it needs
        probe = self.client.init(probe_config(preset), then_sfdp=SFDP_PREFIX)
        jedec = probe.jedec_id.to_bytes(3, "big")
        sfdp = None
        try:
            data = probe.sfdp
            for _ in range(2):  # the parameter headers, then the tables they point to
                need = required_length(data)
                if need <= len(data):
                    break
                data = self.client.sfdp(0, need)
            sfdp = parse_sfdp(data)
        except SfdpError as exc:
            _log.warning("no usable SFDP; using the part table", jedec_id=jedec.hex().upper(),
                         reason=str(exc))
        try:
            cfg = apply_chip(preset, jedec_id=jedec, sfdp=sfdp)
        except Exception:  # a refusal: the probing configuration off again (QSPI off)
            with suppress(Exception):
                self.client.deinit()
            raise
        # no DEINIT on the way on: INIT leaves the probing configuration itself
        for warning in cfg.warnings:  # e.g. PP4IO on a part whose 38h is 1-1-4 -> PP4O
            _log.warning("configuration adapted to the chip", message=str(warning))
        self.sfdp = sfdp
        init = self.client.init(loader_config(cfg))
        _log.info("flash detected", jedec_id=jedec.hex().upper(), part=cfg.part, size=cfg.size,
                  address_mode=cfg.address_mode, sck_hz=init.sck_hz)
        self.config = cfg
        return cfg

    def close(self) -> None:
        """Leave the flash as found (wait idle, restore the address mode, QSPI off) and the core
        too: the loader restores VTOR, its interrupt lines and the timer, and stays halted."""
        self.client.close()

    # -- CRCs ----------------------------------------------------------------------------------

    @property
    def _crc_sector(self) -> int:
        """The sector CRC_LIST sums by: the configured one (4 KiB before connect)."""
        return self.config.sector_size if self.config else 4096

    def crcs(self, ranges: Sequence[Range], phase: _Phase | None = None,
             image: Image | None = None) -> list[int | None]:
        """On-target CRC32 of each range (`checks.read_crcs`; image: the ranges are the image's,
        None for a whole sector whose first bytes differ from it)."""
        return read_crcs(self.client, self._crc_sector, ranges, phase.add if phase else None,
                         image)

    # -- flash ---------------------------------------------------------------------------------

    def flash(self, image: Image, *, verify: bool = True, force: bool = False,
              chip_erase: bool | None = None, compress: bool = True,
              journal: Journal | None = None,
              link_s_per_byte: float | None = None) -> FlashOutcome:
        """Plan, erase, program, verify. chip_erase: True erase the chip first (nothing outside
        the image kept), None let the plan choose it by weight (everything outside the image
        kept), False never. compress: send blocks that compress as LZ4 (the loader decodes and
        CRC-checks them). journal: the bytes kept around the image are saved in it before
        erasing, restored from it, proven and removed (`qspi_gdb.flash.kept`).
        link_s_per_byte: the probe link's cost per byte (`estimate.link_s_per_byte`), weighed
        by the plan's chip-erase choice with the loader's RAM buffers; None: not counted."""
        cfg = self._config()
        self.client.compress = compress
        if link_s_per_byte:  # the stream's first plans, before the link is measured
            self.client.speed.expected = 1 / link_s_per_byte
        self.flash_written = False  # a second try (flash.retry) writes again
        units_before, bytes_before = self.work.sectors_written, self.work.bytes_programmed
        sent_before = self.client.stats.bytes_sent
        checks = image_checks(image, rules.erase_unit(cfg))
        use_crcs = not force and chip_erase is not True
        read_total = (sum(c.range.length for c in checks) if use_crcs else 0)
        pre_read: dict[Range, int | None] = {}  # on-target CRCs read before anything was written

        def sector_crcs(ranges: Sequence[Range]) -> list[int | None]:
            values = self.crcs(ranges, reading, image)
            if journal is not None:
                values = journal.spoil(ranges, values)
            pre_read.update(zip(ranges, values))
            return values

        with _phase(self.progress, READING, read_total) as reading:
            the_plan = make_plan(
                image, cfg, force=force, chip_erase=chip_erase,
                sector_crcs=sector_crcs if use_crcs else None, link_s_per_byte=link_s_per_byte,
                prefill_bytes=sum(b.size for b in self.client.buffers()))
            self.plan = the_plan
            reading.total += the_plan.fill_bytes
            preserved: list[list[bytes]] = []
            for op in the_plan.operations:
                kept = kept_bytes.read_kept(self.client, self.crcs, op.fills)
                if journal is not None:
                    kept = journal.overlay(op.fills, kept)
                    journal.add(op.fills, kept)
                reading.add(sum(r.length for r in op.fills))
                preserved.append(kept)
        contents = [the_plan.build(op, kept) for op, kept in zip(the_plan.operations, preserved)]

        steps: list = []
        if the_plan.chip_erase:
            steps.append(EraseStep(0, cfg.size, 0))
        op_program: list[int] = []
        for op, content in zip(the_plan.operations, contents):
            if op.erase != "none":
                steps.append(EraseStep(op.offset, op.size, 4096 if op.erase == "4KB" else 65536))
            runs = [ProgramStep(r.offset, content.chunk(r)) for r in content.program]
            steps += runs
            op_program.append(sum(len(s.data) for s in runs))
        program_total = sum(op_program)
        page = the_plan.page_size
        proven = proven_unchanged(the_plan, pre_read)
        # The verify's CRC32s of ranges that are not one whole sector (CRC_LIST, which needs a
        # buffer) go with the last program: the stop that sees the flash idle has their results
        # (one stop fewer; with a remote GDB server, a network round trip or more)
        early = {r: mb.Command(mb.OP_CRC32, addr=r.offset, len=r.length)
                 for r in the_plan.verify if verify and steps and not proven(r)
                 and not sector_sized(r, self._crc_sector)}
        if steps:
            erasing = _Phase(self.progress, ERASING, the_plan.bytes_erased)
            programming = _Phase(self.progress, PROGRAMMING, program_total)
            written = UnitsWritten(the_plan, op_program)

            def on_erase(n: int, unit: int) -> None:
                self.work.erased(n, unit)
                erasing.add(n)

            def on_program(n: int) -> None:
                self.work.bytes_programmed += n
                self.work.pages_programmed = self.work.bytes_programmed // page
                self.work.sectors_written = units_before + written.upto(self.work.bytes_programmed - bytes_before)
                programming.add(n)

            if journal is not None and journal.entries:
                journal.save()  # on the disk before the first erase
            self.flash_touched = True
            try:
                self.client.write(steps, progress=on_program, erased=on_erase,
                                  then=list(early.values()))
            except BaseException as exc:
                erasing.fail(exc)
                programming.fail(exc)
                if journal is not None and journal.entries:
                    self.kept_note = kept_bytes.after_failure(
                        exc, self.client, self.crcs, self.reload, journal,
                        [(op, c) for op, c in zip(the_plan.operations, contents) if op.fills])
                raise
            self.work.sectors_written = units_before + the_plan.sectors_written
            erasing.done = erasing.total
            erasing.finish()
            programming.done = programming.total
            programming.finish()
        self.flash_written = True

        pages_programmed = sum(r.length // page for c in contents for r in c.program)
        outcome = FlashOutcome(
            plan=the_plan, contents=contents, bytes_programmed=program_total,
            pages_programmed=pages_programmed,
            pages_skipped_blank=sum(op.size // page for op in the_plan.operations)
            - pages_programmed,
            bytes_sent=self.client.stats.bytes_sent - sent_before,
            verified=[], mismatched=[])
        if verify:
            self._verify_ranges(image, the_plan.verify, contents, outcome, proven=proven,
                                read_early={r: cmd.result0 for r, cmd in early.items()})
        if journal is not None and not kept_bytes.settle(journal, self.crcs):
            _log.warning("the bytes around the image do not match the journal; restoring them",
                         journal=str(journal.path))  # e.g. a program failure the chip hid
            self.kept_note = kept_bytes.restore(
                self.client, self.crcs, self.reload, journal,
                [(op, c) for op, c in zip(the_plan.operations, contents) if op.fills])
        return outcome

    def reload(self) -> None:
        """Load and start the loader again (a reset lost it) with the detected configuration."""
        self.client.start()
        self.client.init(loader_config(self._config()))

    def _verify_ranges(self, image: Image, ranges: Sequence[Range],
                       contents: Sequence[SectorContent], outcome: FlashOutcome,
                       proven: Callable[[Range], bool] = lambda r: False,
                       read_early: Mapping[Range, int] | None = None) -> None:
        """CRC32 of each range on target vs the expected bytes. A range `proven` holds the image
        already (its pre-read CRCs matched and nothing was written there since) is not read
        again: those on-target CRCs are its verification. read_early: on-target CRCs read
        after the writing ended, with its last stop."""
        early = dict(read_early or {})
        again = [r for r in ranges if not proven(r) and r not in early]
        with _phase(self.progress, VERIFYING, sum(r.length for r in ranges)) as verifying:
            verifying.add(sum(r.length for r in ranges) - sum(r.length for r in again))
            read = dict(zip(again, self.crcs(again, verifying))) if again else {}
        read.update(early)
        for r in ranges:
            want = zlib.crc32(expected_bytes(image, contents, r))
            file_crc(r, want, read.get(r, want), outcome.verified, outcome.mismatched)

    # -- verify, read, erase, info -----------------------------------------------------------------

    def verify(self, image: Image) -> tuple[list[dict], list[dict]]:
        """Compare the flash with the image, sector by sector (CRC32 on target)."""
        cfg = self._config()
        rules.check_image(image, cfg)  # the same refusals as flash (past the end, 24-bit)
        checks = image_checks(image, rules.erase_unit(cfg))
        ranges = [c.range for c in checks]
        with _phase(self.progress, VERIFYING, sum(r.length for r in ranges)) as verifying:
            actual = self.crcs(ranges, verifying)
        good, bad = [], []
        for check, got in zip(checks, actual):
            file_crc(check.range, check.crc32, got, good, bad)
        return good, bad

    def read(self, offset: int, length: int, chunk: int = 64 * 1024) -> bytes:
        cfg = self._config()
        rules.check_range(cfg, Range(offset, length), "read")
        out = bytearray()
        with _phase(self.progress, READING, length) as reading:
            while len(out) < length:
                n = min(chunk, length - len(out))
                out += self.client.read(offset + len(out), n)
                reading.add(n)
        return bytes(out)

    def erase(self, runs: Sequence[EraseRun]) -> None:
        """Erase runs of whole erase units (`rules.erase_runs`), one after the other."""
        self.flash_touched = True
        with _phase(self.progress, ERASING, sum(run.length for run in runs)) as erasing:
            self.client.write([EraseStep(run.offset, run.length, run.block) for run in runs],
                              erased=self._counting_erase(erasing))
        self.flash_written = True

    def erase_chip(self) -> None:
        """Erase the whole chip (`rules.check_chip_erase` first)."""
        cfg = self._config()
        self.flash_touched = True
        with _phase(self.progress, ERASING, cfg.size) as erasing:
            self.client.write([EraseStep(0, cfg.size, 0)], erased=self._counting_erase(erasing))
        self.flash_written = True

    def _counting_erase(self, phase: _Phase) -> Callable[[int, int], None]:
        def erased(n: int, unit: int) -> None:
            self.work.erased(n, unit)
            phase.add(n)
        return erased

    def verify_erased(self, r: Range) -> tuple[list[dict], list[dict]]:
        """CRC32 on target of the range against all 0xFF, in 1 MiB ranges."""
        ranges = [Range(o, min(1 << 20, r.end - o)) for o in range(r.offset, r.end, 1 << 20)]
        with _phase(self.progress, VERIFYING, r.length) as verifying:
            actual = self.crcs(ranges, verifying)
        good, bad = [], []
        for piece, got in zip(ranges, actual):
            file_crc(piece, zlib.crc32(b"\xff" * piece.length), got, good, bad)
        return good, bad

    def info(self) -> dict:
        cfg = self._config()
        data = {
            "jedec_id": cfg.jedec_id.hex().upper() if cfg.jedec_id else None,
            "part": cfg.part,
            "size": cfg.size,
            "address_mode": cfg.address_mode,
            "detected": cfg.detected,
            "config": cfg.to_json(),
            "sfdp": self.sfdp.summary() if self.sfdp else None,
        }
        return data

    def _config(self) -> FlashConfig:
        if self.config is None:
            raise RuntimeError("Programmer.connect() first")
        return self.config

