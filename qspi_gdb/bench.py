"""`make bench`: every benchmark of the project, one after the other.

Benchmarks print figures (and bench_flash writes bench.jsonl); they assert nothing. Speed goals
are judged from these figures, never by timed assertions in tests.
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = (
    ("qspi_gdb.bench_wire", "debug wire: GDB restore/dump of 64 KiB through OpenOCD (test-bed wall clock)"),
    ("qspi_gdb.bench_flash", "flashing: modelled time vs physical limit, stops per MiB, host wall time"),
)


def main() -> int:
    worst = 0
    for module_name, title in BENCHMARKS:
        print(f"== {title}", flush=True)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            print(f"   ({module_name} not available)")
            continue
        worst = max(worst, int(module.main() or 0))
        print(flush=True)
    return worst


if __name__ == "__main__":
    sys.exit(main())
