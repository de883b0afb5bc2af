"""`make bench`: every benchmark of the project, one after the other.

Benchmarks print figures (and bench_flash writes bench.jsonl); they assert nothing. Speed goals
are judged from these figures, never by timed assertions in tests. Development tools: they live
beside the tests, outside the wheel.
"""

from __future__ import annotations

import sys

import bench_flash
import bench_wall
import bench_wire

BENCHMARKS = (
    (bench_wire, "debug wire: GDB restore/dump of 64 KiB through OpenOCD (test-bed wall clock)"),
    (bench_flash, "flashing: modelled time vs physical limit, stops per MiB, host wall time"),
    (bench_wall, "test-bed wall time, 2 MiB: this checkout against 12fe875 (issue 11)"),
)


def main() -> int:
    worst = 0
    for module, title in BENCHMARKS:
        print(f"== {title}", flush=True)
        worst = max(worst, int(module.main() or 0))
        print(flush=True)
    return worst


if __name__ == "__main__":
    sys.exit(main())
