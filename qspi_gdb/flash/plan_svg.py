"""The plan as a picture (`--layout plan.svg`): the chip's address space with the image, and
what happens to each sector in colour, zoomed to the touched region.

`sector_states()` classifies every sector of the plan (pure, tested on its own); `render_svg()`
draws them: an overview bar of the whole chip (its outline, the image, the 16 MiB line that
3-byte addressing cannot cross) and below it the touched region one cell per sector, 64 KiB
erase blocks outlined, with a legend and counts. Built with the standard library's ElementTree,
so names from the user (the image path) are escaped and the file is always well-formed XML.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass

from qspi_gdb.flash.plan import ERASED, Plan, SectorOp, image_bytes
from qspi_gdb.flash.ranges import Range, clip
from qspi_gdb.flash.rules import BLOCK, size_text

SVG_NS = "http://www.w3.org/2000/svg"
LIMIT_24BIT = 16 << 20  # what 3-byte addresses reach

# state -> (fill colour, legend text). Order = legend order.
STATES: dict[str, tuple[str, str]] = {
    "write": ("#3182bd", "erase + write (image only)"),
    "keep": ("#fd8d3c", "erase + write, bytes outside the image kept (read-modify-write)"),
    "blank": ("#c7e9c0", "erase only: the image is all 0xFF here, no page programmed"),
    "unchanged": ("#31a354", "skipped: already holds the image (CRC32 on target)"),
    "erase": ("#969696", "erased by the chip erase, nothing written"),
    "untouched": ("#ffffff", "not touched"),
}

WIDTH = 960
MARGIN = 30
BAR_Y = 96
BAR_H = 22
GRID_Y = 190
LABEL_W = 190  # row labels left of the grid
GRID_RIGHT = WIDTH - MARGIN - 56  # room for the 16 MiB label right of the grid


@dataclass(frozen=True)
class Sector:
    offset: int
    state: str
    note: str  # tooltip text


def _op_state(plan: Plan, op: SectorOp, sector: Range) -> tuple[str, str]:
    inside = clip(op.image, sector.offset, sector.end)
    kept = sum(r.length for r in clip(op.fills, sector.offset, sector.end))
    image_len = sum(r.length for r in inside)
    if kept:
        return "keep", f"{image_len} image bytes, {kept} bytes kept"
    if image_len and all(set(image_bytes(plan.image, r)) == {ERASED} for r in inside):
        return "blank", f"{image_len} image bytes, all 0xFF"
    if not image_len:
        return "erase", "erased, no image bytes"
    return "write", f"{image_len} image bytes"


def sector_states(plan: Plan, region: Range | None = None) -> list[Sector]:
    """Every sector (plan.sector_size) of region (default: the touched region) with its state."""
    region = region or touched_region(plan)
    step = plan.sector_size
    ops = {}
    for op in plan.operations:
        for base in range(op.offset, op.offset + op.size, step):
            ops[base] = op
    unchanged = {r.offset for r in plan.unchanged}
    out = []
    for base in range(region.offset, region.end, step):
        if base in ops:
            state, note = _op_state(plan, ops[base], Range(base, step))
            if ops[base].erase == "64KB":
                note += "; erased as one 64 KiB block"
        elif base in unchanged:
            state, note = "unchanged", "CRC32 matched, left alone"
        elif plan.chip_erase:
            state, note = "erase", "erased by the chip erase"
        else:
            state, note = "untouched", "not touched"
        out.append(Sector(base, state, note))
    return out


def touched_region(plan: Plan) -> Range:
    """The 64 KiB blocks holding anything the plan erases, writes or checks."""
    spans = [op.range for op in plan.operations] + list(plan.unchanged)
    spans += [Range(s.offset, len(s.data)) for s in plan.image.segments]
    if not spans:
        return Range(0, min(BLOCK, plan.flash_size))
    lo = min(r.offset for r in spans) // BLOCK * BLOCK
    hi = -(-max(r.end for r in spans) // BLOCK) * BLOCK
    return Range(lo, min(hi, plan.flash_size) - lo)


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs) -> ET.Element:
    element = ET.SubElement(parent, tag, {k.rstrip("_").replace("_", "-"): str(v)
                                          for k, v in attrs.items()})
    if text is not None:
        element.text = text
    return element


def _hex(n: int) -> str:
    return f"0x{n:08X}"


def render_svg(plan: Plan, *, done: bool = False) -> str:
    """The SVG text. done: the plan was carried out (title says "Flashed", not "Plan")."""
    region = touched_region(plan)
    sectors = sector_states(plan, region)
    cols = 16 if len(sectors) <= 16 * 64 else 64
    rows = -(-len(sectors) // cols)
    cell_w = (GRID_RIGHT - MARGIN - LABEL_W) / cols
    cell_h = 14 if rows <= 64 else 6
    legend_y = GRID_Y + rows * cell_h + 30
    height = legend_y + 22 * len(STATES) + 30

    svg = ET.Element("svg", {"xmlns": SVG_NS, "width": str(WIDTH), "height": str(height),
                             "viewBox": f"0 0 {WIDTH} {height}", "font-family": "sans-serif",
                             "font-size": "12"})
    _el(svg, "title", f"qspi-gdb {'flash layout' if done else 'plan'}: {plan.image.path}")
    _el(svg, "rect", class_="background", x=0, y=0, width=WIDTH, height=height, fill="#ffffff")
    _header(svg, plan, done)
    _overview(svg, plan, region)
    _grid(svg, plan, sectors, cols, cell_w, cell_h, region)
    _legend(svg, sectors, legend_y, plan)
    ET.indent(svg)
    return ET.tostring(svg, encoding="unicode", xml_declaration=True) + "\n"


def _header(svg: ET.Element, plan: Plan, done: bool) -> None:
    mode = "MODE32BIT (4-byte addresses)" if plan.address_mode == 32 else "MODE24BIT (3-byte)"
    _el(svg, "text", f"{'Flashed' if done else 'Plan (dry run, nothing written)'}: "
        f"{plan.image.describe()}", x=MARGIN, y=24, font_size=14, font_weight="bold")
    _el(svg, "text", f"{plan.part or 'unknown part'}, {size_text(plan.flash_size)}, {mode}, "
        f"erase {plan.erase_mode}, XIP base {_hex(plan.xip_base)}; skip-unchanged "
        f"{'checked on the target' if plan.crc_checked else 'not checked'}",
        x=MARGIN, y=44)


def _overview(svg: ET.Element, plan: Plan, region: Range) -> None:
    """The whole chip: outline, image segments, the 16 MiB line, the zoomed region."""
    g = _el(svg, "g", class_="overview")
    span = WIDTH - 2 * MARGIN
    scale = span / plan.flash_size

    def x(offset: int) -> float:
        return MARGIN + offset * scale

    _el(g, "text", "whole chip (flash offsets)", x=MARGIN, y=BAR_Y - 10)
    if plan.chip_erase:
        _el(g, "rect", class_="chip-erase", x=MARGIN, y=BAR_Y, width=span, height=BAR_H,
            fill=STATES["erase"][0])
    for seg in plan.image.segments:
        _el(g, "rect", class_="image", x=f"{x(seg.offset):.2f}", y=BAR_Y,
            width=f"{max(len(seg.data) * scale, 1.5):.2f}", height=BAR_H, fill="#08306b")
    _el(g, "rect", class_="chip-outline", x=MARGIN, y=BAR_Y, width=span, height=BAR_H,
        fill="none", stroke="#000000", stroke_width=1.5)
    _el(g, "text", "0x00000000", x=MARGIN, y=BAR_Y + BAR_H + 14)
    _el(g, "text", f"{_hex(plan.flash_size)} ({size_text(plan.flash_size)})",
        x=WIDTH - MARGIN, y=BAR_Y + BAR_H + 14, text_anchor="end")
    if plan.flash_size > LIMIT_24BIT:
        lx = x(LIMIT_24BIT)
        _el(g, "line", class_="limit-16mib", x1=f"{lx:.2f}", y1=BAR_Y - 6, x2=f"{lx:.2f}",
            y2=BAR_Y + BAR_H + 6, stroke="#e31a1c", stroke_width=2, stroke_dasharray="4 2")
        _el(g, "text", "16 MiB: end of 3-byte addressing", x=f"{lx:.2f}", y=BAR_Y - 10,
            text_anchor="middle", fill="#e31a1c")
    # the zoomed region, and the lines that lead from it to the grid below
    zx, zw = x(region.offset), max(region.length * scale, 2.0)
    _el(g, "rect", class_="zoom-region", x=f"{zx:.2f}", y=BAR_Y - 3, width=f"{zw:.2f}",
        height=BAR_H + 6, fill="none", stroke="#e6550d", stroke_width=1.5)
    grid_left, grid_right = MARGIN + LABEL_W, GRID_RIGHT
    _el(g, "polygon", class_="zoom-lines", fill="#fdd0a2", fill_opacity=0.35,
        points=f"{zx:.2f},{BAR_Y + BAR_H + 3} {zx + zw:.2f},{BAR_Y + BAR_H + 3} "
        f"{grid_right},{GRID_Y - 22} {grid_left},{GRID_Y - 22}")


def _grid(svg: ET.Element, plan: Plan, sectors: list[Sector], cols: int, cell_w: float,
          cell_h: int, region: Range) -> None:
    g = _el(svg, "g", class_="sectors")
    step = plan.sector_size
    _el(g, "text", f"touched region {_hex(region.offset)}..{_hex(region.end - 1)} "
        f"({size_text(region.length)}), one cell per {size_text(step)} sector",
        x=MARGIN + LABEL_W, y=GRID_Y - 8)
    left = MARGIN + LABEL_W
    for i, sector in enumerate(sectors):
        row, col = divmod(i, cols)
        if col == 0 and (cell_h >= 12 or row % 8 == 0):
            _el(g, "text", f"{_hex(sector.offset)} (XIP {_hex(plan.xip_base + sector.offset)})",
                x=left - 6, y=GRID_Y + row * cell_h + min(cell_h, 12) - 2, text_anchor="end",
                font_size=10 if cell_h >= 12 else 8)
        rect = _el(g, "rect", class_=f"sector {sector.state}",
                   x=f"{left + col * cell_w:.2f}", y=GRID_Y + row * cell_h,
                   width=f"{cell_w:.2f}", height=cell_h, fill=STATES[sector.state][0],
                   stroke="#bdbdbd", stroke_width=0.5)
        _el(rect, "title", f"{_hex(sector.offset)} (XIP {_hex(plan.xip_base + sector.offset)}): "
            f"{sector.state}: {sector.note}")
    for op in plan.operations:  # 64 KiB block erases: one outline per block
        if op.erase == "64KB":
            first = (op.offset - region.offset) // step
            row, col = divmod(first, cols)
            _el(g, "rect", class_="block-erase", x=f"{left + col * cell_w:.2f}",
                y=GRID_Y + row * cell_h, width=f"{cell_w * op.size // step:.2f}",
                height=cell_h, fill="none", stroke="#000000", stroke_width=1.5)
    if region.offset < LIMIT_24BIT < region.end:
        row, col = divmod((LIMIT_24BIT - region.offset) // step, cols)
        y = GRID_Y + row * cell_h
        _el(g, "line", class_="limit-16mib", x1=f"{left + col * cell_w:.2f}", y1=y,
            x2=GRID_RIGHT + 4, y2=y, stroke="#e31a1c", stroke_width=2.5)
        _el(g, "text", "16 MiB", x=GRID_RIGHT + 6, y=y + 4, fill="#e31a1c")


def _legend(svg: ET.Element, sectors: list[Sector], y: int, plan: Plan) -> None:
    g = _el(svg, "g", class_="legend")
    counts = Counter(s.state for s in sectors)
    for i, (state, (colour, text)) in enumerate(STATES.items()):
        row_y = y + 22 * i
        _el(g, "rect", class_=f"legend-key {state}", x=MARGIN, y=row_y, width=16, height=12,
            fill=colour, stroke="#636363")
        _el(g, "text", f"{text}: {counts.get(state, 0)} sector(s)", x=MARGIN + 24,
            y=row_y + 11)
    note = ("64 KiB blocks erased in one go are outlined in black"
            if any(op.erase == "64KB" for op in plan.operations) else "")
    if note:
        _el(g, "text", note, x=MARGIN, y=y + 22 * len(STATES) + 8, font_style="italic")
