"""Benchmark of the virtual board's debug wire: GDB `restore` / `dump` of 64 KiB of RAM through
the real OpenOCD, for both chips. Prints wall-clock throughput (a test-bed figure: real probes
do not pay remote_bitbang's round trip per scan) and the board's modelled time; asserts nothing.

    python tests/bench/bench_wire.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from qspi_gdb import log
from qspi_gdb.inputs.boards import find_board
from qspi_gdb.transport.openocd import OpenOcd
from qspi_gdb.transport.procgroup import kill_group
from qspi_gdb.transport.virtual_board import VirtualBoardProcess

BOARDS = ("sim-nrf52840dk", "sim-nrf5340dk")  # one virtual board per chip (inputs.boards)
SIZE = 64 * 1024
RAM_ADDR = 0x20004000  # above OpenOCD's work area

# GDB's embedded Python times each transfer, so process start-up is not counted.
_GDB_SCRIPT = """\
set pagination off
set confirm off
target extended-remote {address}
monitor halt
python import time
python t0 = time.perf_counter()
restore {data} binary {addr:#x}
python print("RESTORE_S=%f" % (time.perf_counter() - t0))
python t0 = time.perf_counter()
dump binary memory {back} {addr:#x} {end:#x}
python print("DUMP_S=%f" % (time.perf_counter() - t0))
detach
"""


def _measure(board: str, chip: str, workdir: Path) -> dict[str, float]:
    data = os.urandom(SIZE)
    (workdir / "data.bin").write_bytes(data)
    (workdir / "sim").mkdir()
    with VirtualBoardProcess(board, workdir=workdir / "sim") as sim, OpenOcd(
        [*sim.openocd_script(), ("f", f"target/{chip}.cfg")], workdir=workdir
    ) as openocd:
        script = workdir / "bench.gdb"
        script.write_text(_GDB_SCRIPT.format(
            address=openocd.gdb_address, data=workdir / "data.bin", back=workdir / "back.bin",
            addr=RAM_ADDR, end=RAM_ADDR + SIZE))
        proc = subprocess.Popen(["gdb-multiarch", "-nx", "-batch", "-x", str(script)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=300)
        finally:
            kill_group(proc)
    stats = (sim.stats or {}).get("stats", {})
    result = {"identical": float((workdir / "back.bin").read_bytes() == data)}
    for line in out.splitlines():
        for key in ("RESTORE_S", "DUMP_S"):
            if line.startswith(key + "="):
                result[key.lower()] = float(line.split("=", 1)[1])
    result["modelled_s"] = float(stats.get("modelled_s", 0.0))
    result["dap_transactions"] = float(stats.get("dap_transactions", 0))
    return result


def main() -> int:
    log.configure(0)
    print(f"virtual board debug wire: GDB restore/dump of {SIZE // 1024} KiB through OpenOCD "
          "(remote_bitbang over a UNIX socket; wall clock of this machine)")
    for board in BOARDS:
        chip = find_board(board).chip
        sys.stdout.flush()
        with tempfile.TemporaryDirectory(prefix="qspi-bench-") as tmp:
            try:
                r = _measure(board, chip, Path(tmp))
            except Exception as exc:  # a benchmark reports, it does not fail the build
                print(f"  {board:16s} failed: {exc}")
                continue
        if "restore_s" not in r or "dump_s" not in r:
            print(f"  {board:16s} no timing in GDB's output")
            continue
        print(f"  {board:16s} restore {SIZE / r['restore_s'] / 1000:6.1f} kB/s   "
              f"dump {SIZE / r['dump_s'] / 1000:6.1f} kB/s   "
              f"{'identical' if r['identical'] else 'MISMATCH'}   "
              f"(modelled {r['modelled_s']:.3f} s, {int(r['dap_transactions'])} DAP transactions "
              f"for the whole session)")
    print("  goal: >= 60 kB/s each way")
    return 0


if __name__ == "__main__":
    sys.exit(main())
