"""The plan as text, for `--dry-run` and people: what would be erased, kept, programmed,
skipped and verified, and the typical time."""

from __future__ import annotations

from typing import Sequence

from qspi_gdb.flash.plan import Plan, SectorOp
from qspi_gdb.flash.ranges import Range
from qspi_gdb.flash.rules import size_text


def render_plan(plan: Plan, max_lines: int = 40) -> str:
    """Human text for --dry-run."""
    img = plan.image
    lines = [
        f"Plan: {img.describe()}",
        f"  flash: {plan.part or 'unknown part'}, {size_text(plan.flash_size)}, "
        f"{'MODE32BIT' if plan.address_mode == 32 else 'MODE24BIT'}, erase {plan.erase_mode}",
    ]
    if plan.nothing_to_do:
        lines.append(f"  nothing to write: all {plan.sectors_unchanged} sector(s) already hold the image")
    if plan.chip_erase:
        lines.append(f"  erase: whole chip ({size_text(plan.flash_size)})")
    else:
        by_size = {}
        for op in plan.operations:
            by_size[op.erase] = by_size.get(op.erase, 0) + 1
        desc = ", ".join(f"{n} x {name}" for name, n in sorted(by_size.items())) or "nothing"
        lines.append(f"  erase: {desc} ({size_text(plan.bytes_erased)})")
    blank = plan.image_pages - plan.pages_to_program
    lines.append(
        f"  program: {plan.pages_to_program} page(s) of {plan.page_size} B with image data"
        + (f" ({blank} all-0xFF page(s) need no programming)" if blank else "")
    )
    if plan.fill_bytes:
        lines.append(
            f"  keep: {plan.fill_bytes} byte(s) outside the image in {len(plan.read_back)} range(s) "
            "are read back and written again"
        )
    if plan.crc_checked:
        lines.append(f"  unchanged (CRC32 matched, skipped): {plan.sectors_unchanged} sector(s)")
    else:
        lines.append("  unchanged sectors: not checked")
    lines.append("  verify (CRC32 on target): " + (", ".join(map(str, plan.verify)) or "nothing"))
    lines.append(
        f"  estimated typical time: {plan.estimate_typ_s:.2f} s "
        f"(erase {plan.erase_typ_s:.2f} s, program {plan.program_typ_s:.2f} s)"
    )
    op_lines = _op_lines(plan.operations)
    if op_lines:
        lines.append("  operations:")
        if len(op_lines) > max_lines:
            keep = max_lines // 2
            op_lines = op_lines[:keep] + [f"... {len(op_lines) - 2 * keep} more ..."] + op_lines[-keep:]
        lines.extend("    " + line for line in op_lines)
    return "\n".join(lines)


def _op_lines(ops: Sequence[SectorOp]) -> list[str]:
    """One line per op, runs of consecutive fully-covered ops of one kind folded into one."""
    lines: list[str] = []
    i = 0
    while i < len(ops):
        op = ops[i]
        j = i
        if not op.fills:
            while (
                j + 1 < len(ops)
                and not ops[j + 1].fills
                and ops[j + 1].erase == op.erase
                and ops[j + 1].offset == ops[j].offset + ops[j].size
            ):
                j += 1
        if j > i:
            span = Range(op.offset, ops[j].offset + ops[j].size - op.offset)
            lines.append(f"{span}  {j - i + 1} x erase {op.erase}, all image data")
        else:
            fills = f", keep {', '.join(map(str, op.fills))}" if op.fills else ""
            lines.append(f"{op.range}  erase {op.erase}, image {', '.join(map(str, op.image))}{fills}")
        i = j + 1
    return lines
