"""Flash benchmark on the virtual boards, on the honest clock (`python tests/bench/bench_flash.py`;
prints, asserts nothing).

Each case flashes an image through the real OpenOCD and gdb-multiarch onto a virtual board whose
modelled clock charges what a real probe pays (`python -m qspi_gdb.sim --probe-profile`, see
README "Performance"), and writes one JSON object per case x probe profile to bench.jsonl:

- honest_s: the modelled time of the flash job (read flash for skip-unchanged, erase, program,
  verify), read from the loader's timer (a TIMER peripheral on the board clock); it starts
  once connected (loader running, flash identified) and ends with the verify;
- connect_s: the connect before it on the same timer (the loader's greeting, INIT with SFDP,
  INIT with the final configuration); session_s: the board's modelled time of the whole
  debugger session, from the first halt to the last resume (GDB's handshake, the loader's
  download, connect, the job, the loader's exit): what a user of the probe waits for besides
  OpenOCD's and GDB's own start;
- limit_s: the physical lower bound, max(link, flash work): link = the programmed bytes as SWD
  words (46 clocks each, 54 with the J-Link driver's idle clocks) plus the USB exchanges that
  driver needs to carry them (a 101-transfer packet each for CMSIS-DAP, a 256-transaction batch
  for J-Link); flash work = the part's typical times for erasing what the plan erases at the
  cheapest 4 KiB / 64 KiB granularity (or one chip erase when the image covers the chip) and
  programming every programmed page (the row's `chip_erase`; `plan_chip_erase` is what the
  product chose, weighing the probe link). The remote profile has the same probe, so the same limit;
- limit_swd_only_s, ratio_swd_only, raw_swd_only_s: the same with the link term in SWD clocks
  alone, as issue 11 words its limit (the clock it asks for charges the USB exchanges too, and
  no transfer through these drivers avoids them, so limit_s counts them);
- ratio = honest_s / limit_s; stops (halts the host asked for), noticed_halts (halts the
  target made itself: the debugger notices them only at its 100 ms poll), round_trips (USB
  exchanges of the whole session, connect included), network_exchanges (remote profile: GDB
  packets that crossed the 10 ms network), bytes_sent (program data moved into target RAM,
  LZ4 blocks counted packed), wall_s (test-bed wall time of the flash job: not a product
  figure), pacing_lag_s (modelled time the test bed could not keep up with wall time).

Cases: 512 KiB and 8 MiB random images on each part (IS25WP256 on sim-nrf5340-32mb and
MT25QU256A on sim-nrf52840-32mb at 32 MHz SCK above 16 MiB; MX25R6435F on sim-nrf5340dk at its
preset's 8 MHz), an unchanged re-flash of each 512 KiB image, a realistic compressible 4 MiB
image on MT25QU256A (`images.realistic_image`; raw_swd_s = the SWD time of its uncompressed
bytes), for the CMSIS-DAP and J-Link profiles; and the remote 10 ms profile for the 512 KiB
images and the realistic one (vs_local = its honest_s / the CMSIS-DAP honest_s of the case;
session_vs_local the same for session_s).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import images

from qspi_gdb import log
from qspi_gdb.connect import Connection, target_options
from qspi_gdb.errors import QspiGdbError
from qspi_gdb.flash.estimate import link_s_per_byte
from qspi_gdb.flash.programmer import Programmer
from qspi_gdb.inputs import flash_config as flashcfg
from qspi_gdb.inputs.boards import find_board
from qspi_gdb.inputs.config_values import cli_layer
from qspi_gdb.inputs.image import image_from_segments
from qspi_gdb.loader.mailbox import timer_span_s
from qspi_gdb.sim.nethop import GdbHopProxy
from qspi_gdb.sim.parts import get_part
from qspi_gdb.sim.probe import SWD_CLOCKS, get_profile
from qspi_gdb.transport.openocd import OpenOcd
from qspi_gdb.transport.session import TargetOptions, open_session, openocd_script
from qspi_gdb.transport.virtual_board import VirtualBoardProcess

MIB = 1 << 20
LOCAL_PROFILES = ("cmsis-dap-hs", "jlink-ob")
REMOTE_PROFILE = "remote-10ms"
# (board of inputs.boards, image offset, QSPI SCK the bench asks for; None = the preset's)
BOARDS = (
    ("sim-nrf5340-32mb", 16 << 20, 32_000_000),  # IS25WP256: above 16 MiB (4-byte mode)
    ("sim-nrf52840-32mb", 16 << 20, 32_000_000),  # MT25QU256A
    ("sim-nrf5340dk", 0, None),  # MX25R6435F, the DKs' 8 MiB part
)
SIZES = (("512KiB", 512 << 10), ("8MiB", 8 << 20))
REALISTIC = ("realistic-4MiB", "sim-nrf52840-32mb", 16 << 20, 32_000_000, 4 << 20)


# -- the physical limit ---------------------------------------------------------------------

def swd_only_s(profile_name: str, nbytes: int) -> float:
    """The payload's SWD clocks alone (46 per word, 54 with J-Link's idle clocks): issue 11's
    literal link term, without the USB exchanges the honest clock also charges."""
    p = get_profile(profile_name)
    return math.ceil(nbytes / 4) * p.transaction_clocks(True, 0) / p.adapter_hz


def link_s(profile_name: str, nbytes: int) -> float:
    """SWD words of the payload plus the USB exchanges the driver needs to carry them."""
    p = get_profile(profile_name)
    seconds = swd_only_s(profile_name, nbytes)
    if p.batch:
        words = math.ceil(nbytes / 4)
        per_word = p.transaction_clocks(True, 0)
        extra = p.batch_idle_clocks + (SWD_CLOCKS if p.write_check else 0)
        seconds += math.ceil(words / p.batch) * extra / p.adapter_hz
        full, rest = divmod(words, p.batch)
        seconds += full * p.exchange_s(p.batch * per_word + extra)
        if rest:
            seconds += p.exchange_s(rest * per_word + extra)
    return seconds


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


def flash_work(outcome, part: str, flash_size: int) -> tuple[float, float, float, bool]:
    """(lower bound of the flash work, erase part, program part, chip erase used)."""
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
    covers_chip = sum(blocks.values()) * 4096 >= flash_size
    if covers_chip and timings.chip_erase_typ < erase:
        return timings.chip_erase_typ + program, timings.chip_erase_typ, program, True
    return erase + program, erase, program, False


# -- one case -------------------------------------------------------------------------------

def _timer_us(programmer: Programmer) -> int:
    header = programmer.client.header
    return header.time_us if header is not None else 0


def _flash(link, preset, image, profile: str) -> dict:
    programmer = Programmer(link, chip=preset.chip)
    cfg = programmer.connect(preset)
    stats = programmer.client.stats
    stops0, noticed0 = stats.stops, stats.noticed_halts
    t0_us, wall0 = _timer_us(programmer), time.monotonic()
    entry_us = programmer.client.header.entry_us if programmer.client.header else t0_us
    # the product's choice with the probe known (as `flash --interface` gives it)
    outcome = programmer.flash(image, link_s_per_byte=link_s_per_byte(profile, virtual=True))
    wall = time.monotonic() - wall0
    honest = timer_span_s(_timer_us(programmer), t0_us)
    programmer.close()
    if outcome.mismatched:
        raise SystemExit("verify failed")
    return {"cfg": cfg, "outcome": outcome, "honest": honest, "wall": wall,
            "stops": stats.stops - stops0, "noticed": stats.noticed_halts - noticed0,
            "connect": timer_span_s(t0_us, entry_us),
            "sck": programmer.client.header.sck_hz if programmer.client.header else 0}


def run_case(case: str, board: str, offset: int, data: bytes, profile: str, workdir: Path,
             *, flash_file: Path, sck_hz: int | None = None,
             sck_delay: int | None = None) -> dict:
    layers = [cli_layer(sck_frequency=sck_hz, sck_delay=sck_delay)] \
        if sck_hz or sck_delay is not None else []
    preset = flashcfg.build_config(board, layers)
    image = image_from_segments([(offset, data)], xip_base=preset.xip_base, path=case)
    remote = get_profile(profile).network_rtt_s > 0
    if not remote:
        options = replace(target_options(find_board(board), Connection(sim_image=flash_file)),
                          sim_args=["--probe-profile", profile])
        with open_session(options) as session:
            done = _flash(session.link, preset, image, profile)
        sim_stats = (session.board_process.stats or {}).get("stats", {})
    else:
        done, sim_stats = _remote_flash(board, preset, image, profile, workdir, flash_file)
    outcome, cfg = done["outcome"], done["cfg"]
    work, erase_s, program_s, chip = flash_work(outcome, cfg.part, cfg.size)
    payload = link_s(profile, outcome.bytes_programmed)
    limit = max(work, payload)
    swd_limit = max(work, swd_only_s(profile, outcome.bytes_programmed))
    return {
        "case": case, "board": board, "part": cfg.part, "profile": profile,
        "image_bytes": len(data), "honest_s": round(done["honest"], 4),
        "limit_s": round(limit, 4), "ratio": round(done["honest"] / limit, 3) if limit else None,
        "stops": done["stops"], "noticed_halts": done["noticed"],
        "round_trips": int(sim_stats.get("usb_round_trips", 0)),
        "network_exchanges": int(sim_stats.get("network_exchanges", 0)),
        "bytes_programmed": outcome.bytes_programmed, "bytes_sent": outcome.bytes_sent,
        "compression": round(outcome.bytes_programmed / outcome.bytes_sent, 2)
        if outcome.bytes_sent else None,
        "wall_s": round(done["wall"], 2), "connect_s": round(done["connect"], 4),
        "session_s": round(float(sim_stats.get("debug_session_s", 0.0)), 4),
        "pacing_lag_s": round(float(sim_stats.get("pacing_lag_s", 0.0)), 3),
        "flash_busy_s": round(float(sim_stats.get("flash_busy_s", 0.0)), 4),
        "sck_hz": done["sck"], "sck_delay": cfg.sck_delay, "link_s": round(payload, 4),
        "erase_limit_s": round(erase_s, 4),
        "program_limit_s": round(program_s, 4), "chip_erase": chip,
        "plan_chip_erase": outcome.plan.chip_erase,
        "raw_swd_s": round(link_s(profile, len(data)), 4),
        # issue 11's limit read literally: the link term in SWD clocks only (no USB exchanges)
        "limit_swd_only_s": round(swd_limit, 4),
        "ratio_swd_only": round(done["honest"] / swd_limit, 3) if swd_limit else None,
        "raw_swd_only_s": round(swd_only_s(profile, len(data)), 4),
    }


def _remote_flash(board, preset, image, profile, workdir: Path, flash_file: Path):
    """The product through --gdb-server: virtual board -> OpenOCD -> a 10 ms network hop
    (a proxy reporting GDB's packets to the board's clock) -> gdb-multiarch."""
    hop = workdir / "hop.sock"
    sim = VirtualBoardProcess(board, image=flash_file, workdir=workdir,
                              extra_args=["--probe-profile", profile, "--hop-socket", str(hop)])
    row = find_board(board)
    with sim:
        base = TargetOptions(board=board, chip=row.chip, virtual=True)
        with OpenOcd(openocd_script(base, sim)) as openocd:
            with GdbHopProxy(openocd.gdb_address, hop, rtt_s=get_profile(profile).network_rtt_s) \
                    as proxy:
                options = replace(target_options(row, Connection(gdb_server=proxy.address)))
                with open_session(options) as session:
                    done = _flash(session.link, preset, image, profile)
    return done, (sim.stats or {}).get("stats", {})


# -- the matrix -----------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tests/bench/bench_flash.py",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="512 KiB and realistic cases only (no 8 MiB: those take minutes)")
    parser.add_argument("--output", default="bench.jsonl", help="JSON lines file")
    parser.add_argument("--board", action="append", default=None,
                        help="only these boards (repeatable)")
    parser.add_argument("--profile", action="append", default=None,
                        help="only these probe profiles (repeatable)")
    parser.add_argument("--size", action="append", default=None, choices=[c for c, _ in SIZES],
                        help="only these random image sizes (repeatable)")
    parser.add_argument("--no-realistic", action="store_true", help="skip the realistic image")
    parser.add_argument("--case", action="append", default=None,
                        help="only these cases (repeatable): 512KiB, 512KiB-unchanged, 8MiB, "
                        f"{REALISTIC[0]}")
    parser.add_argument("--sck", metavar="HZ", type=int,
                        help="QSPI SCK for every case (default: the bench's choice per board); "
                        "e.g. what a faster clock would give the DK's part")
    parser.add_argument("--sck-delay", metavar="N", type=int,
                        help="IFCONFIG1.SCKDELAY for every case (default: the preset's)")
    parser.add_argument("--trace", metavar="FILE",
                        help="write the product's debug log there as JSON lines (each loader "
                        "stop: \"pipeline stop\" with the loader's timeline, what was queued, "
                        "the wait); where a row's time goes")
    args = parser.parse_args(argv)
    if args.trace:
        log.configure(2, fmt="json", stream=open(args.trace, "w"))
    else:
        log.configure(0, json_lines=True, stream=open("/dev/null", "w"))  # the table is the output
    sizes = SIZES[:1] if args.quick else SIZES
    if args.size:
        sizes = tuple(s for s in SIZES if s[0] in args.size)
    boards = [b for b in BOARDS if not args.board or b[0] in args.board]
    profiles = [p for p in (*LOCAL_PROFILES, REMOTE_PROFILE)
                if not args.profile or p in args.profile]
    rows: list[dict] = []
    started = time.monotonic()
    out = open(args.output, "w")

    def record(row: dict) -> None:
        rows.append(row)
        out.write(json.dumps(row) + "\n")
        out.flush()
        _print_row(row, header=len(rows) == 1)

    def attempt(case, board, offset, data, profile, tmp, flash_file, sck):
        if args.case and case not in args.case:
            return None
        try:
            row = run_case(case, board, offset, data, profile, tmp, flash_file=flash_file,
                           sck_hz=args.sck or sck, sck_delay=args.sck_delay)
        except (QspiGdbError, OSError) as exc:  # one failed case still leaves the others
            print(f"{case} on {board} ({profile}): failed: {exc}", flush=True)
            return None
        local = next((r for r in rows if r["case"] == case and r["board"] == board
                      and r["profile"] == "cmsis-dap-hs"), None)
        if local and profile == REMOTE_PROFILE:
            row["vs_local"] = round(row["honest_s"] / local["honest_s"], 3)
            if local["session_s"]:
                row["session_vs_local"] = round(row["session_s"] / local["session_s"], 3)
        if case.endswith("-unchanged"):
            full = next((r for r in rows if r["case"] == case[:-len("-unchanged")]
                         and r["board"] == board and r["profile"] == profile), None)
            if full:
                row["vs_full"] = round(row["honest_s"] / full["honest_s"], 4)
                if full["session_s"]:
                    row["session_vs_full"] = round(row["session_s"] / full["session_s"], 4)
        record(row)
        return row

    with tempfile.TemporaryDirectory(prefix="qspi-bench-") as tmp_name:
        tmp = Path(tmp_name)
        for profile in profiles:
            remote = profile == REMOTE_PROFILE
            for board, offset, sck in boards:
                for case, size in sizes:
                    if remote and size > (512 << 10):
                        continue  # the remote profile: the 512 KiB cases
                    data = images.random_image(size, f"{board}-{size}")
                    flash_file = tmp / f"{board}-{case}-{profile}.flash"
                    attempt(case, board, offset, data, profile, tmp, flash_file, sck)
                    if size == 512 << 10 and not remote:
                        attempt(f"{case}-unchanged", board, offset, data, profile, tmp,
                                flash_file, sck)
            name, board, offset, sck, size = REALISTIC
            if not args.no_realistic and any(b[0] == board for b in boards):
                attempt(name, board, offset, images.realistic_image(size), profile, tmp,
                        tmp / f"{name}-{profile}.flash", sck)
    out.close()
    print(f"wrote {len(rows)} cases to {args.output} in {time.monotonic() - started:.0f} s "
          "of wall time")
    return 0


def _print_row(row: dict, header: bool = False) -> None:
    if header:
        print(f"{'case':<18} {'board':<18} {'profile':<13} {'honest s':>9} {'limit s':>8} "
              f"{'ratio':>6} {'stops':>5} {'noticed':>7} {'USB RT':>7} {'sent':>9} "
              f"{'wall s':>7}  notes")
    ratio = "-" if row["ratio"] is None else f"{row['ratio']:.3f}"
    notes = []
    for key in ("vs_local", "session_vs_local", "vs_full", "session_vs_full"):
        if key in row:
            notes.append(f"{key} {row[key]}")
    notes.append(f"connect {row['connect_s']:.3f} s, session {row['session_s']:.3f} s")
    if row["case"].startswith("realistic"):
        notes.append(f"raw SWD {row['raw_swd_s']:.3f} s, {row['compression']}:1")
    if row.get("plan_chip_erase"):
        notes.append("chip erase")
    elif row["chip_erase"]:
        notes.append("block erases (the limit counts a chip erase)")
    print(f"{row['case']:<18} {row['board']:<18} {row['profile']:<13} {row['honest_s']:>9.3f} "
          f"{row['limit_s']:>8.3f} {ratio:>6} {row['stops']:>5} {row['noticed_halts']:>7} "
          f"{row['round_trips']:>7} {row['bytes_sent']:>9} {row['wall_s']:>7.1f}  "
          f"{', '.join(notes)}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
