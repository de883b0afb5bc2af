"""Flash benchmark on the virtual boards (`python tests/bench/bench_flash.py`; prints, asserts nothing).

For 512 KiB and 8 MiB images on each 32 MiB part (IS25WP256 on sim-nrf5340-32mb, MT25QU256A on
sim-nrf52840-32mb) and the DK part (MX25R6435F on sim-nrf5340dk), through the real OpenOCD and
gdb-multiarch, it measures:
- modelled_s: the board's modelled time for the flash job (erase + program + verify), read from
  the loader's timer (a TIMER peripheral driven by the board clock) before and after;
- limit_s: the physical lower bound (DESIGN §4), max(SWD payload time, flash work time):
  payload = programmed bytes / 4 DAP transactions of ~46 adapter cycles each; flash work = the
  part's typical times (the modelled datasheet values, sim.parts.Timings) for erasing the blocks
  the plan erases at the cheapest granularity the nRF can issue (per 64 KiB block: one 64 KiB
  erase or its 4 KiB sectors, whichever is faster; or one chip erase followed by programming
  that can overlap only what fits in the loader's RAM buffers) + programming every programmed
  page (JESD216 program time of the bytes in it). QSPI transfer time is not in it;
- ratio = modelled_s / limit_s; stops_per_mib: loader stop/resume cycles per MiB of image;
- wall_s: host wall time of the flash job.
A final case re-flashes the unchanged 512 KiB image (nothing written: limit = reading the image
once over QSPI for the CRC).
Writes one JSON object per case to bench.jsonl (keys: case, board, part, image_bytes,
modelled_s, limit_s, ratio, stops_per_mib, wall_s) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from qspi_gdb import log
from qspi_gdb.connect import Connection, target_options
from qspi_gdb.errors import QspiGdbError
from qspi_gdb.flash.programmer import Programmer
from qspi_gdb.inputs import flash_config as flashcfg
from qspi_gdb.inputs.boards import find_board
from qspi_gdb.inputs.config_values import cli_layer
from qspi_gdb.inputs.image import image_from_segments
from qspi_gdb.sim.parts import get_part
from qspi_gdb.transport.session import open_session

ADAPTER_HZ = 4_000_000  # the virtual board's default modelled SWD clock
CYCLES_PER_WORD = 46  # one 32-bit DAP transaction on SWD (DESIGN §4)
# Cases: (board of inputs.boards, image offset, QSPI SCK the bench asks for; None = the
# preset's). The 32 MiB boards
# run at 32 MHz: the nRF52840's fastest SCK (32 MHz / 1), on the nRF5340 192 MHz / 6, and both
# 1.8 V parts (IS25WP256, MT25QU256A) read quad I/O far above that. The DK part stays at its
# preset (8 MHz, the DK's setting).
CASES = (
    ("sim-nrf5340-32mb", 16 << 20, 32_000_000),  # IS25WP256: image above 16 MiB (4-byte mode)
    ("sim-nrf52840-32mb", 16 << 20, 32_000_000),  # MT25QU256A
    ("sim-nrf5340dk", 0, None),  # MX25R6435F, the DKs' 8 MiB part
)
SIZES = (("512KiB", 512 << 10), ("8MiB", 8 << 20))


def payload_s(n: int) -> float:
    return (n + 3) // 4 * CYCLES_PER_WORD / ADAPTER_HZ


def qspi_read_s(n: int, sck_hz: int, lines: int = 4) -> float:
    return n * 8 / lines / sck_hz


def erase_limit_s(timings, blocks: dict[int, int]) -> float:
    """Cheapest 4K/64K erase of the sectors to erase: blocks maps a 64 KiB block offset to the
    number of its 4 KiB sectors to erase."""
    e4, e64 = timings.erase_typ.get(4096), timings.erase_typ.get(65536)
    total = 0.0
    for n in blocks.values():
        options = [n * e4] if e4 else []
        if e64:
            options.append(e64)
        total += min(options)
    return total


def flash_work(outcome, part: str, buffered_bytes: int) -> tuple[float, float, float]:
    """(lower bound of the flash job, erase part, program part) from the part's typical times."""
    timings = get_part(part).timings
    plan = outcome.plan
    blocks: dict[int, int] = {}
    for op in plan.operations:
        if op.erase != "none" or plan.chip_erase:
            for s in range(op.offset, op.offset + op.size, 4096):
                blocks[s - s % 65536] = blocks.get(s - s % 65536, 0) + 1
    page = plan.page_size
    program = 0.0
    for content in outcome.contents:
        for r in content.program:
            pos = r.offset
            while pos < r.offset + r.length:
                n = min(page - pos % page, r.offset + r.length - pos)
                program += timings.program_time(n, page)
                pos += n
    erase = erase_limit_s(timings, blocks)
    # A chip erase lets the host overlap only what the RAM buffers hold before programming.
    after_chip = timings.chip_erase_typ + max(
        program, payload_s(max(0, outcome.bytes_programmed - buffered_bytes)))
    block_bound = max(erase + program, payload_s(outcome.bytes_programmed))
    if after_chip < block_bound:
        return after_chip, timings.chip_erase_typ, program
    return block_bound, erase, program


def _timer_us(programmer: Programmer) -> int:
    header = programmer.client.header
    return header.time_us if header is not None else 0


def run_case(case: str, board: str, offset: int, size: int, workdir: Path,
             *, reflash_of: Path | None = None, sck_hz: int | None = None) -> dict:
    flash_file = reflash_of or workdir / f"{board}-{case}.flash"
    layers = [cli_layer(sck_frequency=sck_hz)] if sck_hz else []
    preset = flashcfg.build_config(board, layers)
    data = random.Random(f"{board}-{size}").randbytes(size)
    image = image_from_segments([(offset, data)], xip_base=preset.xip_base, path=case)
    options = target_options(find_board(board), Connection(sim_image=flash_file))
    with open_session(options) as session:
        programmer = Programmer(session.link, chip=preset.chip)
        cfg = programmer.connect(preset)
        calls0, t0_us, wall0 = programmer.client.stats.calls, _timer_us(programmer), \
            time.monotonic()
        outcome = programmer.flash(image)
        wall = time.monotonic() - wall0
        stops = programmer.client.stats.calls - calls0
        modelled = ((_timer_us(programmer) - t0_us) & 0xFFFFFFFF) / 1e6
        greeting = programmer.client.greeting
        buffered = sum(b.size for b in greeting.buffers) if greeting else 0
        sck = programmer.client.header.sck_hz if programmer.client.header else cfg.sck_frequency
        programmer.close()
    if outcome.mismatched:
        raise SystemExit(f"{case} on {board}: verify failed")
    if outcome.plan.operations:
        limit, erase_s, program_s = flash_work(outcome, cfg.part, buffered)
    else:  # nothing to write: reading the image once over QSPI proves it
        limit, erase_s, program_s = qspi_read_s(size, sck), 0.0, 0.0
    return {
        "case": case, "board": board, "part": cfg.part, "image_bytes": size,
        "modelled_s": round(modelled, 4), "limit_s": round(limit, 4),
        "ratio": round(modelled / limit, 3) if limit else None,
        "stops_per_mib": round(stops / (size / (1 << 20)), 1),
        "wall_s": round(wall, 2),
        "sck_hz": sck, "payload_s": round(payload_s(outcome.bytes_programmed), 4),
        "erase_limit_s": round(erase_s, 4), "program_limit_s": round(program_s, 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tests/bench/bench_flash.py",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="512 KiB cases only")
    parser.add_argument("--output", default="bench.jsonl", help="JSON lines file")
    parser.add_argument("--sck-mhz", type=float, default=None,
                        help="QSPI SCK for every case (default: per board, see CASES); the CRC "
                        "passes (skip-unchanged check, verify) read the image over QSPI at it")
    parser.add_argument("--board", action="append", default=None,
                        help="only these boards (repeatable)")
    parser.add_argument("--size", action="append", default=None, choices=[c for c, _ in SIZES],
                        help="only these image sizes (repeatable)")
    args = parser.parse_args(argv)
    log.configure(0, json_lines=True, stream=open("/dev/null", "w"))  # the table is the output
    sizes = SIZES[:1] if args.quick else SIZES
    if args.size:
        sizes = tuple(s for s in SIZES if s[0] in args.size)
    boards = [b for b in CASES if not args.board or b[0] in args.board]
    forced_sck = int(args.sck_mhz * 1e6) if args.sck_mhz else None
    rows = []
    with tempfile.TemporaryDirectory(prefix="qspi-bench-") as tmp:
        workdir = Path(tmp)
        for board, offset, sck_hz in boards:
            for case, size in sizes:
                try:
                    rows.append(run_case(case, board, offset, size, workdir,
                                         sck_hz=forced_sck or sck_hz))
                except QspiGdbError as exc:  # one failed case still leaves the others' rows
                    print(f"{case} on {board}: failed: {exc}", flush=True)
                    continue
                _print_row(rows[-1], header=len(rows) == 1)
        if boards and ("512KiB", 512 << 10) in sizes:
            board, offset, sck_hz = boards[0]
            rows.append(run_case("512KiB-unchanged", board, offset, 512 << 10, workdir,
                                 reflash_of=workdir / f"{board}-512KiB.flash",
                                 sck_hz=forced_sck or sck_hz))
            _print_row(rows[-1])
    with open(args.output, "w") as out:
        for row in rows:
            out.write(json.dumps(row) + "\n")
    print(f"wrote {len(rows)} cases to {args.output}")
    return 0


def _print_row(row: dict, header: bool = False) -> None:
    if header:
        print(f"{'case':<17} {'board':<18} {'part':<11} {'bytes':>9} {'modelled s':>10} "
              f"{'limit s':>8} {'ratio':>6} {'stops/MiB':>9} {'wall s':>7} {'SCK MHz':>7}")
    ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
    print(f"{row['case']:<17} {row['board']:<18} {row['part']:<11} {row['image_bytes']:>9} "
          f"{row['modelled_s']:>10.3f} {row['limit_s']:>8.3f} {ratio:>6} "
          f"{row['stops_per_mib']:>9.1f} {row['wall_s']:>7.1f} {row['sck_hz'] / 1e6:>7.1f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
