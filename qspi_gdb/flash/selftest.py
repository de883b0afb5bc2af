"""`selftest`: prove the tool on a board without losing its data, and print a report to paste
into an issue.

1. Connect and detect: JEDEC ID and SFDP, checked against the part table.
2. Pick scratch regions: 64 KiB at the end of the chip (or `--scratch`), and on parts over
   16 MiB also 16 KiB around the 16 MiB boundary. Read and keep them; if they hold data, refuse
   unless the user agreed (and then also keep a copy in a file until they are restored).
3. In each address mode the chip supports (24-bit, and 32-bit when it can enter 4-byte mode),
   write address-dependent patterns that cross page and sector boundaries (and, in 32-bit mode,
   the 16 MiB boundary) with the normal flash path (read-modify-write, CRC32 verify on the
   target), and read each one back byte for byte. The bytes written in 32-bit mode below
   16 MiB must read the same in 24-bit mode.
4. Time a 64 KiB write and a 64 KiB read.
5. Write the kept bytes back in the same mode that reached them and check them byte for byte.
Nothing outside the scratch regions is written. A failure still tries to put the kept bytes
back and says where the copy is when that fails too.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from qspi_gdb import log
from qspi_gdb.errors import QspiGdbError, UsageError, VerifyError
from qspi_gdb.flash.jobs import (
    OpenTarget,
    _programmer,
    check_output_file,
    preset_config,
)
from qspi_gdb.flash.options import TargetSpec
from qspi_gdb.flash.programmer import Programmer
from qspi_gdb.flash.progress import ProgressSink
from qspi_gdb.flash.ranges import Range
from qspi_gdb.flash.result import Result
from qspi_gdb.inputs import parts
from qspi_gdb.inputs.config_files import load_config_file
from qspi_gdb.inputs.config_values import cli_layer
from qspi_gdb.inputs.flash_config import FlashConfig, build_config
from qspi_gdb.inputs.image import Image, Segment, parse_int, to_flash_offset
from qspi_gdb.inputs.sfdp import SfdpError
from qspi_gdb.inputs.sfdp_decode import parse_sfdp

_log = log.get_logger(__name__)

KIB = 1024
MIB = 1024 * KIB
SCRATCH_SIZE = 64 * KIB
BOUNDARY = 16 * MIB  # the last byte 24-bit addressing reaches, plus one
BOUNDARY_WINDOW = Range(BOUNDARY - 8 * KIB, 16 * KIB)


@dataclass(frozen=True)
class SelftestOptions:
    scratch: str | int | None = None  # start of the 64 KiB scratch region (default: chip end)
    use_scratch: bool = False  # consent to use a scratch region that holds data
    backup: str | os.PathLike | None = None  # copy of non-blank scratch bytes (default name)


@dataclass
class _Step:
    name: str
    mode: int
    offset: int
    length: int
    ok: bool = False
    seconds: float = 0.0
    note: str = ""

    def line(self) -> str:
        status = "ok" if self.ok else "FAILED"
        note = f" ({self.note})" if self.note else ""
        return (f"  {self.mode}-bit  {self.name:<34} 0x{self.offset:08X}..0x"
                f"{self.offset + self.length:08X}  {status}{note}")


def pattern(offset: int, length: int, seed: int) -> bytes:
    """Bytes that differ at every address (a word of the offset mixed with the seed), so data
    landing at a wrong address or a lost page shows."""
    out = bytearray()
    first = offset & ~3
    for word in range(first, offset + length, 4):
        value = (word * 0x9E3779B1 ^ seed * 0x85EBCA77) & 0xFFFFFFFF
        out += value.to_bytes(4, "little")
    start = offset - first
    return bytes(out[start:start + length])


def _image(cfg: FlashConfig, pieces: list[tuple[int, bytes]], name: str) -> Image:
    segments = tuple(Segment(offset, data, offset) for offset, data in sorted(pieces))
    return Image(f"<selftest {name}>", "bin", segments, cfg.xip_base, address_kind="offset")


def _part_checks(cfg: FlashConfig, sfdp) -> list[tuple[str, bool, str]]:
    """(check, passed, detail): the chip's answers against the part table."""
    checks = []
    jedec = cfg.jedec_id.hex().upper() if cfg.jedec_id else "none"
    row = parts.by_jedec(cfg.jedec_id) if cfg.jedec_id else None
    checks.append(("JEDEC ID in the part table", row is not None,
                   f"{jedec} -> {row.name}" if row else f"{jedec} is not in the part table"))
    if sfdp is None:
        checks.append(("SFDP readable", False, "no usable SFDP (the part table was used)"))
        return checks
    checks.append(("SFDP readable", True, f"JESD216 rev {sfdp.major}.{sfdp.minor}"))
    if row is not None:
        checks.append(("SFDP size = part table size", sfdp.size == row.size,
                       f"SFDP {sfdp.size >> 20} MiB, table {row.size >> 20} MiB"))
        if row.sfdp_bytes is not None:
            bfpt_same = sfdp.bfpt.dwords == _table_bfpt(row)
            checks.append(("SFDP basic table = part table's copy", bfpt_same,
                           "identical" if bfpt_same else "differs (another revision?)"))
    checks.append(("4 KiB erase in SFDP", sfdp.erase_type(4096) is not None,
                   "20h" if sfdp.erase_type(4096) is not None else "missing"))
    return checks


def _table_bfpt(row) -> tuple[int, ...] | None:
    try:
        return parse_sfdp(row.sfdp_bytes).bfpt.dwords
    except SfdpError:  # a table image that does not parse is a difference
        return None


def _mode_config(target: TargetSpec, mode: int) -> FlashConfig:
    """The preset with the address mode stated, as `address_mode` in a config file would."""
    layers = [load_config_file(target.config_file)] if target.config_file else []
    if target.jedec_id:
        layers.append(cli_layer(jedec_id=target.jedec_id))
    layers.append(cli_layer(address_mode=f"MODE{mode}BIT"))
    return build_config(target.board, layers)


def _scratch(options: SelftestOptions, cfg: FlashConfig, reach: int) -> Range:
    if options.scratch is None:
        return Range(reach - SCRATCH_SIZE, SCRATCH_SIZE)
    offset, _ = to_flash_offset(parse_int(options.scratch, "--scratch"), xip_base=cfg.xip_base)
    if offset % SCRATCH_SIZE or offset + SCRATCH_SIZE > reach:
        raise UsageError(f"--scratch {options.scratch}: flash offset 0x{offset:08X} must be a "
                         f"multiple of 64 KiB with 64 KiB of flash behind it (below "
                         f"0x{reach:08X})")
    return Range(offset, SCRATCH_SIZE)


def _reach(cfg: FlashConfig, mode: int) -> int:
    return cfg.size if mode == 32 else min(cfg.size, BOUNDARY)


def _clip(r: Range, end: int, start: int = 0) -> Range | None:
    lo, hi = max(r.offset, start), min(r.end, end)
    return Range(lo, hi - lo) if lo < hi else None


class _Run:
    """One selftest on a connected programmer: what each scratch region held at the start
    (`kept`) and holds now (`now`), the steps, the figures."""

    def __init__(self, programmer: Programmer, cfg: FlashConfig) -> None:
        self.programmer = programmer
        self.cfg = cfg
        self.kept: dict[Range, bytes] = {}
        self.now: dict[Range, bytearray] = {}
        self.steps: list[_Step] = []
        self.speeds: dict[str, float] = {}
        self.restored: list[Range] = []  # pieces written back and checked

    def keep(self, r: Range) -> None:
        self.kept[r] = self.programmer.read(r.offset, r.length)
        self.now[r] = bytearray(self.kept[r])

    def _region(self, offset: int, length: int) -> Range:
        return next(r for r in self.kept if r.offset <= offset and offset + length <= r.end)

    def holds(self, offset: int, length: int, source: dict) -> bytes:
        r = self._region(offset, length)
        return bytes(source[r][offset - r.offset:offset - r.offset + length])

    def write(self, name: str, mode: int, offset: int, data: bytes, *,
              check: Range | None = None, timed: bool = False, read_back: bool = True) -> None:
        """Write with the normal flash path (CRC32 verify on the target), then (read_back)
        read `check` (default: what was written) and compare it byte for byte."""
        step = _Step(name, mode, offset, len(data))
        self.steps.append(step)
        started = time.monotonic()
        outcome = self.programmer.flash(_image(self.cfg, [(offset, data)], name), force=True)
        step.seconds = time.monotonic() - started
        r = self._region(offset, len(data))
        self.now[r][offset - r.offset:offset - r.offset + len(data)] = data
        if outcome.mismatched:
            step.note = f"CRC32 differs at 0x{outcome.mismatched[0]['offset']:08X}"
            raise VerifyError(f"selftest: {name} ({mode}-bit): the flash does not hold what "
                              f"was written ({step.note})")
        if read_back:
            self.expect(step, check or Range(offset, len(data)), timed=timed)
        else:
            step.ok, step.note = True, "CRC32 on the target"

    def expect(self, step: _Step, r: Range, *, timed: bool = False) -> None:
        want = self.holds(r.offset, r.length, self.now)
        started = time.monotonic()
        back = self.programmer.read(r.offset, r.length)
        read_s = time.monotonic() - started
        if back != want:
            first = next(i for i, (a, b) in enumerate(zip(back, want)) if a != b)
            step.note = f"read back differs first at 0x{r.offset + first:08X}"
            raise VerifyError(f"selftest: {step.name} ({step.mode}-bit): {step.note}")
        step.ok = True
        if timed:
            self.speeds[f"write_{step.mode}bit_kBps"] = round(step.length / step.seconds / 1e3, 1)
            self.speeds[f"read_{step.mode}bit_kBps"] = round(r.length / read_s / 1e3, 1)

    def restore(self, pieces: list[Range], mode: int) -> None:
        for piece in pieces:
            if piece in self.restored:
                continue
            self.write("write the saved bytes back", mode, piece.offset,
                       self.holds(piece.offset, piece.length, self.kept), read_back=False)
            self.restored.append(piece)


def _rounds(run: _Run, target: TargetSpec, modes: list[int], regions: list[Range]) -> None:
    """Each address mode in turn: check what the previous mode left, write the patterns,
    write back what no later mode reaches (the last mode writes back the rest)."""
    for i, mode in enumerate(modes):
        if i:
            run.programmer.close()
            run.cfg = run.programmer.connect(_mode_config(target, mode))
        reach = _reach(run.cfg, mode)
        pieces = [p for r in regions if (p := _clip(r, reach))]
        if i:
            for piece in pieces:
                step = _Step(f"reads what {modes[i - 1]}-bit mode wrote", mode, piece.offset,
                             piece.length)
                run.steps.append(step)
                run.expect(step, piece)
        for piece in pieces:
            _patterns(run, mode, piece)
        later = max((_reach(run.cfg, m) for m in modes[i + 1:]), default=0)
        run.restore([p for r in regions if (p := _clip(r, reach, later))], mode)


def _patterns(run: _Run, mode: int, piece: Range) -> None:
    """Patterns inside one piece: all of it when it is a whole 64 KiB region (every page and
    sector boundary inside; timed), then 600 bytes across a sector boundary (the bytes around
    them are kept by read-modify-write: the two sectors are read back whole), and across 16 MiB
    when the piece spans it."""
    if piece.length >= SCRATCH_SIZE:
        run.write("64 KiB: every page and sector", mode, piece.offset,
                  pattern(piece.offset, piece.length, mode), timed=True)
    sector = run.cfg.sector_size
    inside = list(range(piece.offset + sector, piece.end, sector))
    crossings = []
    if BOUNDARY in inside:
        crossings.append((BOUNDARY, "across 16 MiB"))
    others = [b for b in inside if b != BOUNDARY]
    if others:
        crossings.insert(0, (others[len(others) // 2], "across a sector boundary"))
    for boundary, name in crossings:
        offset = boundary - 300
        around = Range(boundary - sector, 2 * sector)
        run.write(f"600 B {name}", mode, offset, pattern(offset, 600, mode + 0x100),
                  check=around)


def _restore_after_failure(run: _Run, regions: list[Range], backup: Path | None) -> None:
    """After a failure: write back what the current mode reaches; never hide the first error."""
    mode = run.cfg.address_mode or 24
    try:
        run.restore([p for r in regions if r in run.kept and (p := _clip(r, _reach(run.cfg,
                                                                                   mode)))], mode)
    except QspiGdbError as exc:
        where = f"; the saved bytes are in {backup}" if backup else " (it was blank before)"
        _log.error(f"selftest: could not write the scratch region back ({exc}){where}")


def selftest(target: TargetSpec, options: SelftestOptions, open_target: OpenTarget,
             progress: ProgressSink, result: Result) -> list[str]:
    """Run the self-test; returns the report lines. UsageError (nothing written) when a scratch
    region holds data and options.use_scratch is False; VerifyError/TargetError when writing,
    reading back or restoring fails (the saved bytes are written back first when possible).
    Part-table checks that differ are reported, not fatal: the flash path was proven."""
    if target.board is None and target.config_file is None:
        raise UsageError("selftest needs --board")
    first_cfg = preset_config(target)
    backup = check_output_file(options.backup, "--backup") if options.backup else None
    notes: list[str] = []
    run: _Run | None = None
    checks: list[tuple[str, bool, str]] = []
    regions: list[Range] = []
    modes: list[int] = []
    try:
        with _programmer(target, first_cfg, open_target, progress, result) as programmer:
            cfg = programmer.config
            can32 = cfg.four_byte_entry is not None and cfg.size > BOUNDARY
            modes = [32, 24] if can32 else [24]
            scratch = _scratch(options, cfg, _reach(cfg, modes[0]))
            regions = [scratch]
            if can32 and not scratch.offset < BOUNDARY < scratch.end:
                regions.append(BOUNDARY_WINDOW)
            checks = _part_checks(cfg, programmer.sfdp)
            if modes[0] != cfg.address_mode:
                programmer.close()
                cfg = programmer.connect(_mode_config(target, modes[0]))
            run = _Run(programmer, cfg)
            for r in regions:
                run.keep(r)
            holding = [r for r in regions if run.kept[r] != b"\xff" * r.length]
            if holding and not options.use_scratch:
                where = ", ".join(f"0x{r.offset:08X}..0x{r.end:08X}" for r in holding)
                raise UsageError(f"selftest: the scratch region {where} holds data; pass "
                                 "--yes-use-scratch to use it anyway (it is saved and written "
                                 "back), or --scratch ADDR for a blank 64 KiB")
            if holding:
                backup = backup or Path(f"qspi-gdb-scratch-{cfg.board}-{scratch.offset:08x}.bin")
                backup.write_bytes(b"".join(run.kept[r] for r in holding))
                notes.append(f"saved the scratch bytes to {backup} before writing")
            try:
                _rounds(run, target, modes, regions)
            except BaseException:
                _restore_after_failure(run, regions, backup if holding else None)
                raise
            if holding:
                os.unlink(backup)
                notes.append(f"scratch bytes written back and checked; removed {backup}")
    finally:
        result.selftest = _report_data(run, checks, regions, modes)
    differing = [name for name, ok, _ in checks if not ok]
    result.ok = True
    result.summary = ("Selftest passed: written, verified and restored in "
                      f"{' and '.join(f'{m}-bit' for m in modes)} mode"
                      + (f"; {len(differing)} part-table check(s) differ" if differing else ""))
    return _report_lines(result, run, checks, regions, modes) + notes


def _report_data(run: _Run | None, checks, regions: list[Range], modes: list[int]) -> dict:
    return {
        "address_modes": [f"{m}-bit" for m in modes],
        "scratch": [{"offset": r.offset, "length": r.length} for r in regions],
        "checks": [{"check": name, "ok": ok, "detail": detail} for name, ok, detail in checks],
        "steps": [vars(step).copy() for step in run.steps] if run else [],
        "speeds": dict(run.speeds) if run else {},
        "restored": run is not None and bool(run.kept) and all(_covered(r, run.restored)
                                                                for r in run.kept),
    }


def _covered(region: Range, pieces: list[Range]) -> bool:
    return sum(p.length for p in pieces if region.offset <= p.offset and p.end <= region.end) \
        == region.length


def _report_lines(result: Result, run: _Run, checks, regions: list[Range],
                  modes: list[int]) -> list[str]:
    """The report to paste into an issue."""
    probe = result.probe or {}
    lines = [
        f"  board {result.board}; probe "
        f"{probe.get('interface') or 'GDB server'}"
        f"{' serial ' + probe['serial'] if probe.get('serial') else ''}"
        f"{', %g kHz' % result.speed_khz if result.speed_khz else ''}",
        f"  flash: {result.part} JEDEC ID {result.jedec_id}, {(result.flash_size or 0) >> 20} "
        f"MiB, address modes tested: {', '.join(f'{m}-bit' for m in modes)}",
        "  scratch: " + ", ".join(f"0x{r.offset:08X}..0x{r.end:08X}" for r in regions),
        "part table checks:",
        *(f"  {'ok      ' if ok else 'DIFFERS '} {name}: {detail}" for name, ok, detail in checks),
        "steps (each written with CRC32 verify on the target, then read back):",
        *(step.line() for step in run.steps),
        "speed (wall time through the probe, loader stops included):",
        *(f"  {key.replace('_', ' ').replace('kBps', 'kB/s')}: {value}"
          for key, value in run.speeds.items()),
    ]
    return lines
