"""Flash work done so far, counted as the loader accepts each piece (the programmer's tally,
copied into the Result however a command ends)."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from qspi_gdb.flash.plan import Plan


@dataclass
class WorkDone:
    """Flash work carried out so far, counted as the loader accepts each piece (not taken from
    the plan), so a command that fails half-way reports what really happened."""

    erase_units: int = 0  # 4 KiB sectors and 64 KiB blocks whose erase began
    bytes_erased: int = 0
    chip_erased: bool = False
    bytes_programmed: int = 0
    pages_programmed: int = 0
    sectors_written: int = 0  # sector_size units whose new contents were all sent

    def erased(self, n: int, unit: int) -> None:
        self.bytes_erased += n
        if unit:
            self.erase_units += n // unit
        else:
            self.chip_erased = True


class UnitsWritten:
    """How many sector_size units of the plan have all their program data sent, from the bytes
    programmed so far (the write sends the units' data in plan order)."""

    def __init__(self, the_plan: Plan, op_program: Sequence[int]):
        self.ends = list(itertools.accumulate(op_program))  # program bytes up to each unit
        self.units = list(itertools.accumulate(op.size // the_plan.sector_size
                                               for op in the_plan.operations))

    def upto(self, programmed: int) -> int:
        done = bisect.bisect_right(self.ends, programmed)
        return self.units[done - 1] if done else 0
