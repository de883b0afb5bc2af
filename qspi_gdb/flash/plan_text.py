"""The plan as text, for `--dry-run` and people: what would be erased (where), kept, programmed,
skipped and verified, on which flash (detected or only assumed), and the estimated time. Sizes
in B / KiB / MiB throughout."""

from __future__ import annotations

from typing import Sequence

from qspi_gdb.flash.estimate import Estimate
from qspi_gdb.flash.plan import Plan, SectorOp
from qspi_gdb.flash.ranges import Range, merge
from qspi_gdb.flash.rules import chip_text, size_text
from qspi_gdb.inputs.flash_config import FlashConfig

ERASE_NAMES = {"4KB": "sector of 4 KiB", "64KB": "block of 64 KiB"}


def plural(n: int, word: str) -> str:
    """'1 page', '2,048 pages'; a word with ' of ' takes the plural before it."""
    head, sep, tail = word.partition(" of ")
    return f"{n:,} {head}{'' if n == 1 else 's'}{sep}{tail}"


def ranges_text(ranges: Sequence[Range], limit: int = 4) -> str:
    """'0x00001000..0x00002FFF, 0x00010000..0x0001FFFF' (merged; long lists shortened)."""
    merged = merge(list(ranges))
    shown = ", ".join(map(str, merged[:limit]))
    return shown + (f" and {len(merged) - limit} more" if len(merged) > limit else "")


def render_plan(plan: Plan, cfg: FlashConfig | None = None, estimate: Estimate | None = None,
                max_lines: int = 40, *, checks_unchanged: bool = True) -> str:
    """Human text for --dry-run. cfg: the configuration the plan was made with (it says
    whether the chip was detected or assumed); estimate: the time it would take;
    checks_unchanged: the flash will skip sectors that hold the image (not with --force or a
    chip erase)."""
    img = plan.image
    flash = chip_text(cfg) if cfg is not None else f"{plan.part or 'unknown part'} " \
        f"({size_text(plan.flash_size)})"
    if img.files:  # several image files: one line each
        lines = [f"Plan: {len(img.files)} files, {img.size:,} bytes"]
        lines += [f"  {f.describe()}" for f in img.files]
    else:
        lines = [f"Plan: {img.describe()}"]
    lines.append(f"  flash: {flash}, {'MODE32BIT' if plan.address_mode == 32 else 'MODE24BIT'}")
    if plan.nothing_to_do:
        lines.append(f"  nothing to write: all {plural(plan.sectors_unchanged, 'sector')} "
                     "already hold the image")
    if plan.chip_erase:
        lines.append(f"  erase: the whole chip ({size_text(plan.flash_size)})")
    else:
        by_size: dict[str, int] = {}
        for op in plan.operations:
            by_size[op.erase] = by_size.get(op.erase, 0) + 1
        units = " + ".join(plural(n, ERASE_NAMES.get(name, name))
                           for name, n in sorted(by_size.items(), key=lambda kv: kv[0] != "64KB"))
        where = ranges_text([op.range for op in plan.operations])
        lines.append(f"  erase: {where}: {units} ({size_text(plan.bytes_erased)})" if units
                     else "  erase: nothing")
    blank = plan.image_pages - plan.pages_to_program
    lines.append(
        f"  program: {plural(plan.pages_to_program, f'page of {size_text(plan.page_size)}')} "
        "with image data"
        + (f" ({plural(blank, 'all-0xFF page')} need no programming)" if blank else "")
    )
    if plan.fill_bytes:
        lines.append(
            f"  keep: {size_text(plan.fill_bytes)} outside the image in "
            f"{plural(len(plan.read_back), 'range')}, read back and written again")
    if plan.crc_checked:
        lines.append(f"  unchanged (CRC32 matched, skipped): {plural(plan.sectors_unchanged, 'sector')}")
    elif checks_unchanged and not plan.chip_erase:
        lines.append("  unchanged sectors: checked on the target when flashing (CRC32); a dry "
                     "run cannot know them, so this plan rewrites every sector")
    else:
        lines.append("  unchanged sectors: not checked (every sector is rewritten)")
    verify_bytes = sum(r.length for r in plan.verify)
    lines.append(f"  verify (CRC32 on target): {ranges_text(plan.verify) or 'nothing'}"
                 + (f" ({size_text(verify_bytes)})" if verify_bytes else ""))
    if estimate is not None:
        lines.append(f"  {estimate.text()}")
    op_lines = _op_lines(plan.operations)
    if op_lines:
        lines.append("  operations:")
        if len(op_lines) > max_lines:
            keep = max_lines // 2
            op_lines = op_lines[:keep] + [f"... {len(op_lines) - 2 * keep} more ..."] + op_lines[-keep:]
        lines.extend("    " + line for line in op_lines)
    return "\n".join(lines)


def _op_lines(ops: Sequence[SectorOp]) -> list[str]:
    """One line per op, runs of consecutive units wholly covered by image data and erased
    the same way folded into one."""

    def whole(op: SectorOp) -> bool:
        return sum(r.length for r in op.image) == op.size

    lines: list[str] = []
    i = 0
    while i < len(ops):
        op = ops[i]
        j = i
        if whole(op):
            while (
                j + 1 < len(ops)
                and whole(ops[j + 1])
                and ops[j + 1].erase == op.erase
                and ops[j + 1].offset == ops[j].offset + ops[j].size
            ):
                j += 1
        erase = ERASE_NAMES.get(op.erase)
        what = f"erase {plural(j - i + 1, erase)}" if erase else "erased by the chip erase"
        if j > i or whole(op):
            span = Range(op.offset, ops[j].offset + ops[j].size - op.offset)
            lines.append(f"{span}  {what}, all image data")
        else:
            image = ", ".join(map(str, op.image))
            keep = f", keep {', '.join(map(str, op.fills))}" if op.fills else ""
            lines.append(f"{op.range}  {what}, image {image}{keep}")
        i = j + 1
    return lines
