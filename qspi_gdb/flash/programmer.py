"""The programmer: joins image + flash config + plan + loader client + target link, and reports.

Library core: `Programmer` works on any TargetLink (GDB/MI link, in-process virtual board) and
emits typed progress events; it never reports success unless every written range was verified
with a CRC32 computed on the target (or verify was switched off, and then says so).
The `run_*` functions at the bottom are what the CLI subcommands call.
"""

from __future__ import annotations

import os
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

from qspi_gdb.inputs import flash_config as flashcfg
from qspi_gdb.inputs.config_files import load_config_file
from qspi_gdb.inputs.config_values import cli_layer
from qspi_gdb.inputs.detect import apply_chip
from qspi_gdb import log
from qspi_gdb.loader import loader_elf as packaged_loader
from qspi_gdb.errors import TargetError, UsageError, VerifyError
from qspi_gdb.inputs.image import Image, load_image, parse_int, to_flash_offset
from qspi_gdb.flash.plan import Plan, Range, SectorContent, image_checks, plan as make_plan
from qspi_gdb.flash.progress import (
    ERASING,
    PROGRAMMING,
    READING,
    VERIFYING,
    PhaseFinished,
    PhaseProgress,
    PhaseStarted,
    ProgressSink,
    ignore,
)
from qspi_gdb.cli.output import Result

_log = log.get_logger(__name__)


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


@contextmanager
def _phase(sink: ProgressSink, name: str, total: int) -> Iterator[_Phase]:
    phase = _Phase(sink, name, total)
    yield phase
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
    verified: list[dict]  # {offset, length, crc32}
    mismatched: list[dict]  # {offset, length, expected, actual}


class Programmer:
    """Flash work on one target through the RAM loader. connect() before anything else."""

    def __init__(self, link, *, chip: str, loader_elf: str | os.PathLike | None = None,
                 progress: ProgressSink = ignore):
        from qspi_gdb.loader.client import LoaderClient

        self.link = link
        self.progress = progress
        self.client = LoaderClient(link, loader_elf or packaged_loader(chip), chip=chip)
        self.config: flashcfg.FlashConfig | None = None
        self.sfdp = None
        # True once an erase or program went to the loader: from then on a failure may have
        # left the range partly written, whatever kind of error it is
        self.flash_touched = False

    # -- connect: greeting, probe, detect, configure --------------------------------------------

    def connect(self, preset: flashcfg.FlashConfig) -> flashcfg.FlashConfig:
        """Load the loader, read JEDEC ID + SFDP with a probing configuration, fold the chip
        into the configuration (the chip wins; contradictions are errors) and initialise the
        loader with the result."""
        from qspi_gdb.loader.config import loader_config, probe_config
        from qspi_gdb.inputs.sfdp import SfdpError
        from qspi_gdb.inputs.sfdp_decode import parse_sfdp, required_length

        self.client.start()
        probe = self.client.init(probe_config(preset))
        jedec = probe.jedec_id.to_bytes(3, "big")
        sfdp = None
        try:
            head = self.client.sfdp(0, 8)
            need = required_length(head)
            prefix = self.client.sfdp(0, need)
            need = required_length(prefix)
            data = prefix if need <= len(prefix) else self.client.sfdp(0, need)
            sfdp = parse_sfdp(data)
        except SfdpError as exc:
            _log.warning("no usable SFDP; using the part table", jedec_id=jedec.hex().upper(),
                         reason=str(exc))
        self.client.deinit()
        cfg = apply_chip(preset, jedec_id=jedec, sfdp=sfdp)
        for warning in cfg.warnings:  # e.g. PP4IO on a part whose 38h is 1-1-4 -> PP4O
            _log.warning("configuration adapted to the chip", message=str(warning))
        self.sfdp = sfdp
        init = self.client.init(loader_config(cfg))
        _log.info("flash detected", jedec_id=jedec.hex().upper(), part=cfg.part, size=cfg.size,
                  address_mode=cfg.address_mode, sck_hz=init.sck_hz)
        self.config = cfg
        return cfg

    def close(self) -> None:
        """Leave the flash as found: wait idle, restore the address mode, QSPI off."""
        self.client.deinit()

    # -- CRCs ----------------------------------------------------------------------------------

    def crcs(self, ranges: Sequence[Range], phase: _Phase | None = None) -> list[int]:
        """On-target CRC32 of each range: runs of whole sectors with CRC_LIST, the rest with
        CRC32 commands queued several per call."""
        from qspi_gdb.loader import mailbox as mb

        sector = self.config.sector_size if self.config else 4096
        out: dict[int, int] = {}
        i = 0
        singles: list[int] = []
        while i < len(ranges):
            r = ranges[i]
            if r.offset % sector or r.length != sector:
                singles.append(i)
                i += 1
                continue
            j = i
            while (j + 1 < len(ranges) and ranges[j + 1].length == sector
                   and ranges[j + 1].offset == ranges[j].offset + sector):
                j += 1
            for k, value in enumerate(self.client.crc_list(r.offset, sector, j - i + 1)):
                out[i + k] = value
            if phase:
                phase.add((j - i + 1) * sector)
            i = j + 1
        per_call = self.client.greeting.max_cmds if self.client.greeting else 16
        for start in range(0, len(singles), per_call):
            batch = singles[start:start + per_call]
            cmds = [mb.Command(mb.OP_CRC32, addr=ranges[k].offset, len=ranges[k].length)
                    for k in batch]
            for k, cmd in zip(batch, self.client.run(cmds)):
                out[k] = cmd.result0
                if phase:
                    phase.add(ranges[k].length)
        return [out[k] for k in range(len(ranges))]

    # -- flash ---------------------------------------------------------------------------------

    def flash(self, image: Image, *, verify: bool = True, force: bool = False,
              chip_erase: bool = False) -> FlashOutcome:
        from qspi_gdb.loader.client import EraseStep, ProgramStep

        cfg = self._config()
        checks = image_checks(image, 4096 if cfg.erase_spec(4096) else 65536)
        use_crcs = not force and not chip_erase
        read_total = (sum(c.range.length for c in checks) if use_crcs else 0)
        pre_read: dict[Range, int] = {}  # on-target CRCs read before anything was written

        def sector_crcs(ranges: Sequence[Range]) -> list[int]:
            values = self.crcs(ranges, reading)
            pre_read.update(zip(ranges, values))
            return values

        with _phase(self.progress, READING, read_total) as reading:
            the_plan = make_plan(
                image, cfg, force=force, chip_erase=chip_erase,
                sector_crcs=sector_crcs if use_crcs else None)
            reading.total += the_plan.fill_bytes
            preserved: list[list[bytes]] = []
            for op in the_plan.operations:
                kept = []
                for r in op.fills:
                    kept.append(self.client.read(r.offset, r.length))
                    reading.add(r.length)
                preserved.append(kept)
        contents = [the_plan.build(op, kept) for op, kept in zip(the_plan.operations, preserved)]

        steps: list = []
        if chip_erase:
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
        if steps:
            erasing = _Phase(self.progress, ERASING, the_plan.bytes_erased)
            programming = _Phase(self.progress, PROGRAMMING, program_total)
            tracker = _EraseTracker(the_plan, op_program, erasing)
            tracker.advance(0)

            def on_program(n: int) -> None:
                programming.add(n)
                tracker.advance(programming.done)

            self.flash_touched = True
            self.client.write(steps, progress=on_program)
            erasing.done = erasing.total
            erasing.finish()
            programming.done = programming.total
            programming.finish()

        outcome = FlashOutcome(
            plan=the_plan, contents=contents, bytes_programmed=program_total,
            pages_programmed=sum(r.length // page for c in contents for r in c.program),
            verified=[], mismatched=[])
        if verify:
            self._verify_ranges(image, the_plan.verify, contents, outcome,
                                proven=_proven_unchanged(the_plan, pre_read))
        return outcome

    def _verify_ranges(self, image: Image, ranges: Sequence[Range],
                       contents: Sequence[SectorContent], outcome: FlashOutcome,
                       proven: Callable[[Range], bool] = lambda r: False) -> None:
        """CRC32 of each range on target vs the expected bytes. A range `proven` holds the image
        already (its pre-read CRCs matched and nothing was written there since) is not read
        again: those on-target CRCs are its verification."""
        again = [r for r in ranges if not proven(r)]
        with _phase(self.progress, VERIFYING, sum(r.length for r in ranges)) as verifying:
            verifying.add(sum(r.length for r in ranges) - sum(r.length for r in again))
            read = dict(zip(again, self.crcs(again, verifying))) if again else {}
        for r in ranges:
            want = zlib.crc32(expected_bytes(image, contents, r))
            got = read.get(r, want)
            want = zlib.crc32(expected_bytes(image, contents, r))
            entry = {"offset": r.offset, "length": r.length}
            if got == want:
                outcome.verified.append({**entry, "crc32": f"0x{got:08X}"})
            else:
                outcome.mismatched.append({**entry, "expected": f"0x{want:08X}",
                                           "actual": f"0x{got:08X}"})

    # -- verify, read, erase, info -----------------------------------------------------------------

    def verify(self, image: Image) -> tuple[list[dict], list[dict]]:
        """Compare the flash with the image, sector by sector (CRC32 on target)."""
        cfg = self._config()
        flashcfg_checks = image_checks(image, 4096 if cfg.erase_spec(4096) else 65536)
        from qspi_gdb.flash.plan import _check_image  # same refusals as flash (past the end, 24-bit)

        _check_image(image, cfg)
        ranges = [c.range for c in flashcfg_checks]
        with _phase(self.progress, VERIFYING, sum(r.length for r in ranges)) as verifying:
            actual = self.crcs(ranges, verifying)
        good, bad = [], []
        for check, got in zip(flashcfg_checks, actual):
            entry = {"offset": check.range.offset, "length": check.range.length}
            if got == check.crc32:
                good.append({**entry, "crc32": f"0x{got:08X}"})
            else:
                bad.append({**entry, "expected": f"0x{check.crc32:08X}", "actual": f"0x{got:08X}"})
        return good, bad

    def read(self, offset: int, length: int, chunk: int = 64 * 1024) -> bytes:
        cfg = self._config()
        if length <= 0:
            raise UsageError(f"read length {length} must be positive")
        if offset + length > cfg.size:
            raise UsageError(f"read 0x{offset:08X}+0x{length:X} goes past the end of the "
                             f"{cfg.part or 'flash'} ({cfg.size} bytes)")
        _check_24bit(cfg, offset + length)
        out = bytearray()
        with _phase(self.progress, READING, length) as reading:
            while len(out) < length:
                n = min(chunk, length - len(out))
                out += self.client.read(offset + len(out), n)
                reading.add(n)
        return bytes(out)

    def erase(self, offset: int | None, length: int | None) -> tuple[int, int, bool]:
        """Erase [offset, offset+length) (sector aligned) or, with offset None, the chip.
        Returns (units erased, bytes erased, chip erased)."""
        from qspi_gdb.loader.client import EraseStep

        cfg = self._config()
        self.flash_touched = True
        if offset is None:
            with _phase(self.progress, ERASING, cfg.size) as erasing:
                self.client.erase_chip(cfg.size)
                erasing.add(cfg.size)
            return 0, cfg.size, True
        steps = erase_steps(cfg, offset, length)
        with _phase(self.progress, ERASING, length) as erasing:
            for step in steps:
                self.client.erase([step])
                erasing.add(step.length)
        units = sum(step.length // step.block for step in steps)
        return units, length, False

    def verify_erased(self, offset: int, length: int) -> tuple[list[dict], list[dict]]:
        """CRC32 on target of [offset, offset+length) against all 0xFF, in 1 MiB ranges."""
        ranges = [Range(o, min(1 << 20, offset + length - o))
                  for o in range(offset, offset + length, 1 << 20)]
        with _phase(self.progress, VERIFYING, length) as verifying:
            actual = self.crcs(ranges, verifying)
        good, bad = [], []
        for r, got in zip(ranges, actual):
            want = zlib.crc32(b"\xff" * r.length)
            entry = {"offset": r.offset, "length": r.length}
            if got == want:
                good.append({**entry, "crc32": f"0x{got:08X}"})
            else:
                bad.append({**entry, "expected": f"0x{want:08X}", "actual": f"0x{got:08X}"})
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

    def _config(self) -> flashcfg.FlashConfig:
        if self.config is None:
            raise RuntimeError("Programmer.connect() first")
        return self.config


def _proven_unchanged(the_plan: Plan, pre_read: Mapping[Range, int]) -> Callable[[Range], bool]:
    """A verify range is proven when it overlaps no unit the plan writes and every image check
    inside it had a pre-read CRC equal to the image's (so the target holds exactly the image
    there: the skip-unchanged read already was the CRC32 verification on target)."""
    written = [op.range for op in the_plan.operations]
    if the_plan.chip_erase:
        return lambda r: False

    def proven(r: Range) -> bool:
        if any(w.offset < r.end and r.offset < w.end for w in written):
            return False
        inside = [c for c in the_plan.checks if r.offset <= c.range.offset and c.range.end <= r.end]
        return bool(inside) and sum(c.range.length for c in inside) == r.length and all(
            c.range in pre_read and pre_read[c.range] & 0xFFFFFFFF == c.crc32 for c in inside)

    return proven


class _EraseTracker:
    """Erase progress while one pipelined write interleaves erases and programs: when the
    bytes programmed pass the program data of unit k, unit k+1's erase has been issued."""

    def __init__(self, the_plan: Plan, op_program: Sequence[int], phase: _Phase):
        self.sizes = [op.size if op.erase != "none" else 0 for op in the_plan.operations]
        self.ends = []
        total = 0
        for n in op_program:
            total += n
            self.ends.append(total)
        self.phase = phase
        self.reported = 0

    def advance(self, programmed: int) -> None:
        issued = sum(1 for end in self.ends if end <= programmed) + 1
        erased = sum(self.sizes[:issued])
        if erased > self.reported:
            self.phase.add(erased - self.reported)
            self.reported = erased


def erase_steps(cfg: flashcfg.FlashConfig, offset: int, length: int) -> list:
    """Sector-aligned range -> 4 KiB head, 64 KiB middle (when the chip has it and it is
    faster), 4 KiB tail."""
    from qspi_gdb.loader.client import EraseStep

    small = 4096 if cfg.erase_spec(4096) else 65536
    if length <= 0 or offset % small or length % small:
        raise UsageError(f"erase range 0x{offset:08X}+0x{length:X} must be whole "
                         f"{small // 1024} KiB sectors (offset and length multiples of "
                         f"0x{small:X})")
    end = offset + length
    if end > cfg.size:
        raise UsageError(f"erase 0x{offset:08X}+0x{length:X} goes past the end of the "
                         f"{cfg.part or 'flash'} ({cfg.size} bytes)")
    _check_24bit(cfg, end)
    big, e4, e64 = 65536, cfg.erase_spec(4096), cfg.erase_spec(65536)
    use_big = e64 is not None and (e4 is None or e64.time.typ_s < 16 * e4.time.typ_s)
    steps = []
    pos = offset
    while pos < end:
        if use_big and pos % big == 0 and end - pos >= big:
            n = (end - pos) // big * big
            steps.append(EraseStep(pos, n, big))
        else:
            stop = min(end, (pos // big + 1) * big) if use_big else end
            steps.append(EraseStep(pos, stop - pos, small))
            n = stop - pos
        pos += n
    return steps


def _check_24bit(cfg: flashcfg.FlashConfig, end: int) -> None:
    if end > flashcfg.MIB16 and cfg.address_mode != 32:
        raise UsageError(f"0x{end - 1:08X} is at or above 16 MiB but the address mode is "
                         f"MODE24BIT ({cfg.sources.get('address_mode', 'config')}): use MODE32BIT")


# -- CLI adapters (qspi_gdb.cli.commands) -------------------------------------------------------------


def preset_config(args) -> flashcfg.FlashConfig:
    """Board preset + config file + CLI overrides (before the chip is detected)."""
    layers = []
    if getattr(args, "config", None):
        layers.append(load_config_file(args.config))
    if getattr(args, "jedec_id", None):
        layers.append(cli_layer(jedec_id=args.jedec_id))
    return flashcfg.build_config(getattr(args, "board", None), layers)


def _image(args, cfg: flashcfg.FlashConfig) -> Image:
    return load_image(args.image, xip_base=cfg.xip_base, addr=args.addr,
                      raw_offsets=args.raw_offsets, only_qspi=args.only_qspi)


def _assumed(cfg: flashcfg.FlashConfig) -> flashcfg.FlashConfig | None:
    """The configuration with the preset's usual part, or None when that contradicts an
    explicit setting (the chip present decides then)."""
    try:
        return apply_chip(cfg)
    except UsageError:
        return None


def _precheck(image: Image, cfg: flashcfg.FlashConfig) -> None:
    """Refuse before starting anything what the stated flash cannot take (explicit size)."""
    explicit_size = not cfg.sources.get("size", "preset ").startswith("preset ")
    assumed = _assumed(cfg)
    if explicit_size and assumed is not None:
        from qspi_gdb.flash.plan import _check_image

        _check_image(image, assumed)


def _target_options(args, cfg: flashcfg.FlashConfig):
    from qspi_gdb.transport.session import TargetOptions

    return TargetOptions(board=cfg.board, chip=cfg.chip, virtual=cfg.virtual,
                         gdb_server=args.gdb_server, interface=args.interface,
                         openocd_config=args.openocd_config, sim_image=args.sim_image)


def _loader_path(args) -> str | None:
    if args.loader and not Path(args.loader).is_file():
        raise UsageError(f"{args.loader}: no such loader ELF")
    return args.loader


@contextmanager
def _programmer(args, cfg: flashcfg.FlashConfig, progress: ProgressSink,
                result: Result) -> Iterator[Programmer]:
    from qspi_gdb.transport.session import open_session

    loader = _loader_path(args)
    result.board = cfg.board
    with open_session(_target_options(args, cfg),
                      elf=loader or packaged_loader(cfg.chip)) as session:
        programmer = Programmer(session.link, chip=cfg.chip, loader_elf=loader,
                                progress=progress)
        detected = programmer.connect(cfg)
        result.part, result.flash_size = detected.part, detected.size
        result.jedec_id = detected.jedec_id.hex().upper() if detected.jedec_id else None
        result.address_mode = f"{detected.address_mode}-bit"
        result.warnings = [str(w) for w in detected.warnings]
        try:
            yield programmer
        except UsageError as exc:
            _close_quietly(programmer)
            if not programmer.flash_touched:
                raise
            # a refusal after erasing/programming began is no longer "nothing written"
            raise TargetError(f"{exc}; the flash range may be partly written") from exc
        except Exception:
            _close_quietly(programmer)  # restore the chip's address mode on errors too
            raise
        finally:
            result.stops = programmer.client.stats.calls
        programmer.close()
        if getattr(args, "reset", False):
            session.link.reset(halt=False)


def _close_quietly(programmer: Programmer) -> None:
    """Deinit after a failure: leave the chip in the address mode it had (an application that
    expects 3-byte mode must still boot); a failure here must not hide the original error."""
    try:
        programmer.close()
    except Exception as exc:  # noqa: BLE001 - logged, the original error is what matters
        _log.warning("could not restore the flash's address mode after the error", error=str(exc))


def run_flash(args, progress: ProgressSink, result: Result) -> None:
    cfg = preset_config(args)
    image = _image(args, cfg)
    result.image = image.to_json()
    if args.dry_run:
        assumed = _assumed(cfg)
        if assumed is None:
            raise UsageError("--dry-run cannot plan: the configuration contradicts the board's "
                             "usual flash part, so only the chip present can decide; run "
                             "`qspi-gdb info` first")
        the_plan = make_plan(image, assumed, force=args.force, chip_erase=args.chip_erase)
        _fill_plan_counts(result, the_plan)
        result.dry_run = True
        result.plan = the_plan.to_json()
        result.ok = True
        if not args.json:
            print(the_plan.render(), flush=True)
        return
    _precheck(image, cfg)
    with _programmer(args, cfg, progress, result) as programmer:
        outcome = programmer.flash(image, verify=not args.no_verify, force=args.force,
                                   chip_erase=args.chip_erase)
        _fill_plan_counts(result, outcome.plan)
        result.pages_programmed = outcome.pages_programmed
        result.bytes_programmed = outcome.bytes_programmed
        result.verified_ranges = outcome.verified
        result.mismatched_ranges = outcome.mismatched
        if args.no_verify:
            result.verify = "not verified"
        elif outcome.mismatched:
            result.verify = "mismatch"
            first = outcome.mismatched[0]
            raise VerifyError(f"verify failed after writing: {len(outcome.mismatched)} range(s) "
                              f"differ, first at flash offset 0x{first['offset']:08X} "
                              f"(CRC32 {first['actual']}, expected {first['expected']})")
        else:
            result.verify = "verified"
    result.ok = True


def _fill_plan_counts(result: Result, the_plan: Plan) -> None:
    result.sectors_erased = the_plan.sectors_erased
    result.bytes_erased = the_plan.bytes_erased
    result.chip_erased = the_plan.chip_erase
    result.sectors_written = the_plan.sectors_written
    result.sectors_skipped_unchanged = the_plan.sectors_unchanged
    result.bytes_skipped_unchanged = sum(c.range.length for c in the_plan.unchanged_checks)
    result.bytes_preserved = the_plan.fill_bytes
    if result.dry_run or not result.pages_programmed:
        result.pages_programmed = the_plan.image_pages
        result.bytes_programmed = sum(len(op.pages) * the_plan.page_size
                                      for op in the_plan.operations)


def run_verify(args, progress: ProgressSink, result: Result) -> None:
    cfg = preset_config(args)
    image = _image(args, cfg)
    result.image = image.to_json()
    _precheck(image, cfg)
    with _programmer(args, cfg, progress, result) as programmer:
        good, bad = programmer.verify(image)
    result.verified_ranges, result.mismatched_ranges = good, bad
    if bad:
        result.verify = "mismatch"
        first = bad[0]
        raise VerifyError(f"flash differs from {image.path}: {len(bad)} sector(s), first at "
                          f"flash offset 0x{first['offset']:08X} (CRC32 {first['actual']}, "
                          f"image {first['expected']})")
    result.verify = "verified"
    result.ok = True


def _address(text: str, cfg: flashcfg.FlashConfig, what: str = "address") -> int:
    offset, _kind = to_flash_offset(parse_int(text, what), xip_base=cfg.xip_base)
    return offset


def run_read(args, progress: ProgressSink, result: Result) -> None:
    cfg = preset_config(args)
    offset = _address(args.address, cfg)
    length = parse_int(args.length, "length")
    if length <= 0:
        raise UsageError(f"length {args.length} must be positive")
    output = Path(args.output)
    if output.parent and not output.parent.is_dir():
        raise UsageError(f"{output.parent}: no such directory")
    with _programmer(args, cfg, progress, result) as programmer:
        data = programmer.read(offset, length)
    output.write_bytes(data)
    result.bytes_read = len(data)
    result.output_file = str(output)
    result.ok = True


def run_erase(args, progress: ProgressSink, result: Result) -> None:
    cfg = preset_config(args)
    offset = None if args.all else _address(args.address, cfg)
    length = None if args.all else parse_int(args.length, "length")
    if args.dry_run:
        assumed = _assumed(cfg)
        if assumed is None:
            raise UsageError("--dry-run cannot plan: the configuration contradicts the board's "
                             "usual flash part")
        result.dry_run = True
        if args.all:
            _refuse_unverifiable_chip_erase(assumed)
            result.chip_erased, result.bytes_erased = True, assumed.size
        else:
            steps = erase_steps(assumed, offset, length)
            result.sectors_erased = sum(s.length // s.block for s in steps)
            result.bytes_erased = length
        result.ok = True
        return
    with _programmer(args, cfg, progress, result) as programmer:
        if offset is not None:
            erase_steps(programmer.config, offset, length)  # refuse before erasing anything
        else:
            _refuse_unverifiable_chip_erase(programmer.config)
        units, erased, chip = programmer.erase(offset, length)
        result.sectors_erased, result.bytes_erased, result.chip_erased = units, erased, chip
        good, bad = programmer.verify_erased(0 if chip else offset, erased)
    result.verified_ranges, result.mismatched_ranges = good, bad
    if bad:
        result.verify = "mismatch"
        raise VerifyError(f"erase did not leave 0xFF: {len(bad)} range(s) differ, first at "
                          f"flash offset 0x{bad[0]['offset']:08X}")
    result.verify = "verified"
    result.ok = True


def _refuse_unverifiable_chip_erase(cfg: flashcfg.FlashConfig) -> None:
    """In 24-bit mode the part of a chip above 16 MiB cannot be read back, so a chip erase
    could not be verified: refuse it before erasing anything."""
    if cfg.size > flashcfg.MIB16 and cfg.address_mode != 32:
        raise UsageError(f"erase --all: the {cfg.size >> 20} MiB chip cannot be verified above "
                         f"16 MiB in 24-bit address mode; use MODE32BIT")


def run_info(args, progress: ProgressSink, result: Result) -> None:
    cfg = preset_config(args)
    with _programmer(args, cfg, progress, result) as programmer:
        info = programmer.info()
        lines = programmer.config.describe()
        if programmer.sfdp is not None:
            lines += programmer.sfdp.describe()
        else:
            lines.append("SFDP: none (part table or configuration used)")
    result.info = info
    result.ok = True
    if not args.json:
        print("\n".join(lines), flush=True)
