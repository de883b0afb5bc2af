"""Test-bed wall time of a 2 MiB random image on `sim-nrf52840-32mb`: this checkout against an
older commit (issue 11 compares with 12fe875, where it measured 72 s), measured in one run on
the same machine, old and new alternating so that a load change on the machine hits both.

Each run is the command a user types (`python -m qspi_gdb flash IMAGE --addr 0x13000000 --board
sim-nrf52840-32mb`) from a directory outside the checkout, with PYTHONPATH set to the tree under
test; the old tree comes from `git archive`. Prints each run, the means and the per-pair ratios;
asserts nothing (a test-bed figure: real probes do not pay the test wire's round trips).

    python tests/bench/bench_wall.py [--old REV] [--pairs N]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OLD_DEFAULT = "12fe875"  # main when issue 11 measured 72 s for this case
BOARD = "sim-nrf52840-32mb"
ADDRESS = "0x13000000"  # above 16 MiB: 4-byte addressing
SIZE = 2 * 1024 * 1024


def _export(rev: str, into: Path) -> Path | None:
    """The tree of `rev` (None when this checkout has no such commit, e.g. a shallow clone)."""
    try:
        tar = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", rev],
                             capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        archive.extractall(into, filter="data")
    return into


def _flash(tree: Path, image: Path, cwd: Path) -> tuple[float, bool]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "qspi_gdb", "--no-progress", "-q", "flash", str(image), "--addr",
         ADDRESS, "--board", BOARD, "--json"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    return time.perf_counter() - start, proc.returncode == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tests/bench/bench_wall.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", default=OLD_DEFAULT, help="the commit to compare with")
    parser.add_argument("--pairs", type=int, default=3, help="old/new runs (alternating)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-wall-") as tmp:
        work = Path(tmp)
        old = _export(args.old, work / "old")
        if old is None:
            print(f"skipped: commit {args.old} is not in this checkout's history")
            return 0
        image = work / "r2m.bin"
        image.write_bytes(random.Random(2).randbytes(SIZE))
        trees = {"old": old, "new": REPO}
        times: dict[str, list[float]] = {"old": [], "new": []}
        for pair in range(args.pairs):
            for name in ("old", "new"):
                seconds, ok = _flash(trees[name], image, work)
                print(f"pair {pair + 1} {name:3} ({args.old if name == 'old' else 'HEAD'}): "
                      f"{seconds:6.1f} s{'' if ok else '  FAILED'}", flush=True)
                if not ok:
                    return 1
                times[name].append(seconds)
    mean = {name: sum(v) / len(v) for name, v in times.items()}
    ratios = [new / old for old, new in zip(times["old"], times["new"])]
    print(f"2 MiB random on {BOARD}, {args.pairs} pairs in one run on this machine: "
          f"old {mean['old']:.1f} s, new {mean['new']:.1f} s, mean ratio "
          f"{mean['new'] / mean['old']:.3f} (per pair: "
          f"{', '.join(f'{r:.2f}' for r in ratios)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
