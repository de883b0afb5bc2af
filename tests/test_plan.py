"""The pure flash plan: table tests plus hypothesis properties over a fake NOR flash."""

import json
import random
import zlib
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qspi_gdb.errors import UsageError
from qspi_gdb.flash.checks import image_checks
from qspi_gdb.flash.plan import build_sector, erase_plan, plan
from qspi_gdb.flash.plan_text import render_plan
from qspi_gdb.flash.ranges import Range
from qspi_gdb.flash.estimate import PREFILL_BYTES, link_s_per_byte
from qspi_gdb.flash.rules import chip_erase_pays, resolve_range
from qspi_gdb.inputs.config_values import cli_layer
from qspi_gdb.inputs.detect import apply_chip
from qspi_gdb.inputs.flash_config import EraseSpec, Timing, build_config
from qspi_gdb.inputs.image import Image, Segment, image_from_segments
from qspi_gdb.inputs.parts import IS25WP256_SFDP, MX25R6435F_SFDP
from qspi_gdb.inputs.sfdp_decode import parse_sfdp

MIB = 1 << 20
IS25 = apply_chip(
    build_config("sim-nrf5340-32mb"), jedec_id=bytes.fromhex("9D7019"), sfdp=parse_sfdp(IS25WP256_SFDP)
)
MX25R = apply_chip(
    build_config("sim-nrf52840dk"),
    jedec_id=bytes.fromhex("C22817"),
    sfdp=parse_sfdp(MX25R6435F_SFDP),
)
SMALL = replace(MX25R, size=MIB)  # 1 MiB chip keeps the fake flash cheap


class FakeFlash:
    """NOR semantics: erase sets 0xFF, program ANDs. Records what was touched."""

    def __init__(self, content: bytes):
        self.mem = bytearray(content)
        self.erased: list[Range] = []
        self.programmed: list[Range] = []
        self.read: list[Range] = []

    def crcs(self, ranges):
        return [zlib.crc32(self.mem[r.offset : r.end]) for r in ranges]

    def run(self, p):
        # every kept byte is read back before anything is erased (as the programmer does)
        preserved = [[bytes(self.mem[r.offset : r.end]) for r in op.fills] for op in p.operations]
        if p.chip_erase:
            self.mem[:] = b"\xff" * len(self.mem)
            self.erased.append(Range(0, len(self.mem)))
        for op, kept in zip(p.operations, preserved):
            self.read.extend(op.fills)
            content = p.build(op, kept)
            if op.erase != "none":
                self.mem[op.offset : op.offset + op.size] = b"\xff" * op.size
                self.erased.append(op.range)
            for run in content.program:
                for i, b in enumerate(content.chunk(run)):
                    self.mem[run.offset + i] &= b
                self.programmed.append(run)
            assert zlib.crc32(self.mem[op.offset : op.offset + op.size]) == content.crc32


def overlay(base: bytes, image: Image) -> bytes:
    out = bytearray(base)
    for s in image.segments:
        out[s.offset : s.end] = s.data
    return bytes(out)


def seg_image(*pairs, xip_base=0x10000000):
    return image_from_segments(list(pairs), xip_base=xip_base, path="img")


def xip_image(offset, data, xip_base=0x10000000):
    """An image as load_image returns it for FILE@XIP_ADDRESS."""
    return Image(
        path="image.bin",
        kind="bin",
        segments=(Segment(offset, data, xip_base + offset),),
        xip_base=xip_base,
        given_address=xip_base + offset,
        address_kind="xip",
    )


# --------------------------------------------------------------------------- table tests


def test_seed_case_plan():
    data = random.Random(1).randbytes(512583)
    p = plan(xip_image(0x1E98000, data), IS25)
    ops = p.operations
    assert ops[0].offset == 0x1E98000 and ops[-1].offset == 0x1F15000
    assert [op.erase for op in ops].count("64KB") == 7 and [op.erase for op in ops].count("4KB") == 14
    last = ops[-1]
    assert last.image == (Range(0x1F15000, 0x247),) and last.fills == (Range(0x1F15247, 0x1000 - 0x247),)
    assert p.fill_bytes == 0x1000 - 0x247
    assert p.image_pages == p.pages_to_program == -(-512583 // 256)
    assert p.verify == (Range(0x1E98000, 0x1F16000 - 0x1E98000),)
    assert p.sectors_written == 126 and p.sectors_erased == 21 and not p.crc_checked
    text = render_plan(p)
    assert "XIP address 0x11E98000 (flash offset 0x01E98000)" in text and "MODE32BIT" in text
    doc = json.loads(json.dumps(p.to_json()))
    assert doc["sectors_written"] == 126 and doc["fill_bytes"] == 3513 and len(doc["operations"]) == 21


def test_single_byte_in_single_page():
    p = plan(seg_image((0x1234, b"\x00")), SMALL)
    (op,) = p.operations
    assert (op.offset, op.size, op.erase) == (0x1000, 4096, "4KB")
    assert op.image == (Range(0x1234, 1),)
    assert op.fills == (Range(0x1000, 0x234), Range(0x1235, 0x2000 - 0x1235))
    assert op.pages == (Range(0x1200, 256),)
    content = build_sector(op, p.image, [b"\x11" * 0x234, b"\xff" * (0x2000 - 0x1235)], page_size=256)
    # page 0x1000.. holds preserved 0x11 bytes, page 0x1200 the image byte; the rest is blank
    assert content.program == (Range(0x1000, 0x300),)
    assert content.data[0x234] == 0x00 and content.crc32 == zlib.crc32(content.data)


def test_all_ff_image_pages_are_not_programmed():
    p = plan(seg_image((0, b"\xff" * 4096)), SMALL)
    (op,) = p.operations
    assert len(op.pages) == 16 and p.build(op).program == () and p.pages_to_program == 0
    assert "16 all-0xFF pages need no programming" in render_plan(p)


def test_auto_uses_64k_only_for_fully_rewritten_blocks_when_faster():
    img = seg_image((0x10000, bytes(0x10000)), (0x30000, bytes(0x8000)))
    p = plan(img, SMALL)
    assert [(op.offset, op.erase) for op in p.operations][:2] == [(0x10000, "64KB"), (0x30000, "4KB")]
    assert len(p.operations) == 1 + 8
    slow64 = replace(
        SMALL,
        erase=(EraseSpec(4096, 0x20, Timing(0.01, 0.1)), EraseSpec(65536, 0xD8, Timing(1.0, 4.0))),
    )
    assert {op.erase for op in plan(img, slow64).operations} == {"4KB"}
    assert {op.erase for op in plan(img, SMALL, erase_size=4096).operations} == {"4KB"}


def test_forced_64k_erase_reads_back_the_rest_of_the_block():
    p = plan(seg_image((0x21000, b"abc")), SMALL, erase_size=65536)
    (op,) = p.operations
    assert (op.offset, op.size, op.erase) == (0x20000, 65536, "64KB")
    assert op.fills == (Range(0x20000, 0x1000), Range(0x21003, 0x30000 - 0x21003))
    assert p.verify == (Range(0x20000, 0x10000),)


def test_chip_with_only_64k_erase():
    only64 = replace(SMALL, erase=(EraseSpec(65536, 0xD8, Timing(0.3, 2.0)),), sector_size=65536)
    p = plan(seg_image((0x1000, b"x")), only64)
    assert [(op.offset, op.size) for op in p.operations] == [(0, 65536)] and p.sector_size == 65536
    with pytest.raises(UsageError, match="no 4 KiB erase"):
        plan(seg_image((0x1000, b"x")), only64, erase_size=4096)


def test_chip_erase_only_when_asked():
    img = seg_image((0x1800, b"12345"))
    p = plan(img, SMALL, chip_erase=True)
    assert p.chip_erase and p.bytes_erased == MIB and p.erase_mode == "chip"
    (op,) = p.operations
    assert op.erase == "none" and op.fills == () and op.offset == 0x1000
    assert "whole chip" in render_plan(p)
    assert not plan(img, SMALL).chip_erase


# A 1 MiB chip whose chip erase (2 s) beats 16 block erases (16 x 0.48 s) but not 4 of them.
CHEAP_CHIP = replace(SMALL, chip_erase=Timing(2.0, 10.0))


def test_chip_erase_chosen_by_weight_when_every_sector_is_rewritten():
    data = random.Random(5).randbytes(MIB - 100)
    flash = FakeFlash(random.Random(6).randbytes(MIB))
    before = bytes(flash.mem)
    p = plan(seg_image((40, data)), CHEAP_CHIP, chip_erase=None, sector_crcs=flash.crcs)
    assert p.chip_erase and p.chip_erase_chosen and p.erase_mode == "chip"
    assert p.erase_typ_s == 2.0 and p.sectors_erased == 0 and p.bytes_erased == MIB
    # read-modify-write still keeps the 40 + 60 bytes around the image
    assert [r for op in p.operations for r in op.fills] == [Range(0, 40), Range(MIB - 60, 60)]
    flash.run(p)
    assert bytes(flash.mem) == overlay(before, seg_image((40, data)))
    assert "whole chip" in render_plan(p)
    # the same image with a chip erase forbidden, or slower than the blocks: sector plan
    assert not plan(seg_image((40, data)), CHEAP_CHIP, chip_erase=False).chip_erase
    assert not plan(seg_image((40, data)), SMALL, chip_erase=None).chip_erase


@pytest.mark.parametrize("probe, chip", [
    (None, True),  # link not known: the erase times alone (52 s < 128 x 0.48 s)
    ("cmsis-dap-hs", True),  # 8 MiB in ~28.5 s of link: the flash is the bottleneck
    ("jlink-ob", False),  # ~79 s of link: block erases hide in it, a chip erase adds 52 s
    ("gdb-server", False),  # probe unknown: chosen only where it pays on the slowest probe
])
def test_chip_erase_by_weight_weighs_the_probe_link(probe, chip):
    """A chip erase must end before the first page is programmed; the link overlaps it only
    by the loader's RAM buffers, while block erases go out ahead of the programs."""
    data = random.Random(8).randbytes(MX25R.size)
    link = None if probe is None else link_s_per_byte(probe, virtual=False)
    p = plan(seg_image((0, data)), MX25R, chip_erase=None, link_s_per_byte=link,
             prefill_bytes=PREFILL_BYTES)
    assert p.chip_erase is chip and p.chip_erase_chosen is chip
    assert p.sectors_erased == (0 if chip else MX25R.size // 65536)
    assert p.erase_typ_s == pytest.approx(52.0 if chip else 128 * 0.48, rel=0.01)


def test_chip_erase_pays_rule_both_ways():
    cheap = CHEAP_CHIP
    units = [Range(0, MIB)]
    # flash-bound: chip 2 + 10 = 12 s < max(8 + 10, 5) s
    assert chip_erase_pays(cheap, units, 8.0, program_s=10.0, transfer_s=5.0)
    # link-bound: chip 2 + (30 - 1) = 31 s > max(18, 30) s
    assert not chip_erase_pays(cheap, units, 8.0, program_s=10.0, transfer_s=30.0, prefill_s=1.0)
    # ... unless the buffers hold enough of it: 2 + (30 - 29) < 30
    assert chip_erase_pays(cheap, units, 8.0, program_s=0.0, transfer_s=30.0, prefill_s=29.0)
    # never when a unit is missing (the rest of the chip would be lost)
    assert not chip_erase_pays(cheap, [Range(0, MIB // 2)], 8.0)


def test_chip_erase_not_chosen_when_a_sector_would_be_lost():
    data = random.Random(7).randbytes(MIB)
    flash = FakeFlash(bytearray(data))
    flash.mem[5000] ^= 1  # one sector differs: the others are skipped as unchanged
    p = plan(seg_image((0, data)), CHEAP_CHIP, chip_erase=None, sector_crcs=flash.crcs)
    assert not p.chip_erase and len(p.operations) == 1
    # half the chip: not covered, never a chip erase (it would destroy the other half)
    p = plan(seg_image((0, data[: MIB // 2])), CHEAP_CHIP, chip_erase=None)
    assert not p.chip_erase


def test_block_erase_may_take_unchanged_sectors_along():
    """Two sectors of a block already hold the image (blank, as in a file system's free
    blocks): one 64 KiB erase (0.48 s) still beats 14 sector erases (14 x 0.048 s), and the
    blank sectors need no programming afterwards."""
    data = bytearray(random.Random(8).randbytes(0x10000))
    data[0x3000:0x5000] = b"\xff" * 0x2000
    flash = FakeFlash(b"\xff" * MIB)
    p = plan(seg_image((0x10000, bytes(data))), SMALL, sector_crcs=flash.crcs)
    assert [(op.offset, op.erase) for op in p.operations] == [(0x10000, "64KB")]
    assert p.sectors_unchanged == 0 and p.pages_to_program == 256 - 32
    flash.run(p)
    assert bytes(flash.mem[0x10000:0x20000]) == bytes(data)
    # three changed sectors only: 3 x 0.048 s < 0.48 s, sector erases
    few = bytes(data[:0x3000]) + b"\xff" * 0xD000
    p = plan(seg_image((0x10000, few)), SMALL, sector_crcs=FakeFlash(b"\xff" * MIB).crcs)
    assert [op.erase for op in p.operations] == ["4KB"] * 3


def test_blank_pages_are_counted_and_not_programmed():
    data = b"\x00" * 256 + b"\xff" * 1024 + b"\x01" * 256
    p = plan(seg_image((0, data)), SMALL)
    assert p.image_pages == 6 and p.pages_to_program == 2 and p.image_pages_blank == 4
    assert p.to_json()["pages_skipped_blank"] == 4
    (op,) = p.operations
    content = p.build(op, [b"\xff" * r.length for r in op.fills])
    assert content.program == (Range(0, 256), Range(1280, 256))


def test_skip_unchanged_sectors_by_crc():
    data = random.Random(2).randbytes(3 * 4096 + 100)
    img = seg_image((0x5000 - 50, data))
    flash = FakeFlash(overlay(b"\xff" * MIB, img))
    flash.mem[0x6000 + 7] ^= 0x01  # one sector differs
    p = plan(img, SMALL, sector_crcs=flash.crcs)
    assert p.crc_checked
    assert [op.offset for op in p.operations] == [0x6000]
    assert [r.offset for r in p.unchanged] == [0x4000, 0x5000, 0x7000, 0x8000]
    assert p.sectors_unchanged == 4 and p.sectors_written == 1
    assert [c.range.offset for c in p.unchanged_checks] == [0x5000 - 50, 0x5000, 0x7000, 0x8000]
    # a mapping works as well as a callable
    mapping = {c.range: c.crc32 for c in image_checks(img)}
    assert plan(img, SMALL, sector_crcs=mapping).nothing_to_do
    # --force rewrites everything and asks nothing
    forced = plan(img, SMALL, sector_crcs=lambda r: pytest.fail("asked for CRCs"), force=True)
    assert len(forced.operations) == 5 and not forced.crc_checked


def test_scattered_records_in_written_sectors_one_differs():
    # two records in one sector: the first already matches, the second does not
    img = seg_image((0x3010, b"same"), (0x3800, b"new!"), (0x5000, b"kept"))
    before = bytearray(random.Random(3).randbytes(MIB))
    before[0x3010:0x3014] = b"same"
    before[0x5000:0x5004] = b"kept"
    flash = FakeFlash(bytes(before))
    p = plan(img, SMALL, sector_crcs=flash.crcs)
    assert [op.offset for op in p.operations] == [0x3000] and p.unchanged == (Range(0x5000, 4096),)
    assert p.operations[0].fills == (
        Range(0x3000, 0x10),
        Range(0x3014, 0x3800 - 0x3014),
        Range(0x3804, 0x7FC),
    )
    flash.run(p)
    assert bytes(flash.mem) == overlay(bytes(before), img)


def test_erase_range_keeps_bytes_outside_it():
    before = random.Random(4).randbytes(MIB)
    flash = FakeFlash(before)
    p = erase_plan(SMALL, 0x10800, 0x20000, sector_crcs=flash.crcs)
    # both blocks have every sector rewritten: 64 KiB erases (0x10000..0x107FF read back); the
    # last, partly covered sector gets a 4 KiB erase
    assert [(op.offset, op.erase) for op in p.operations] == [
        (0x10000, "64KB"),
        (0x20000, "64KB"),
        (0x30000, "4KB"),
    ]
    assert p.read_back == (Range(0x10000, 0x800), Range(0x30800, 0x800))
    flash.run(p)
    expected = bytearray(before)
    expected[0x10800:0x30800] = b"\xff" * 0x20000
    assert bytes(flash.mem) == bytes(expected)
    assert not any(run.offset >= 0x11000 and run.end <= 0x30000 for run in flash.programmed)
    assert erase_plan(SMALL, 0x10800, 0x20000, sector_crcs=flash.crcs).nothing_to_do
    with pytest.raises(UsageError, match="must be positive"):
        erase_plan(SMALL, 0, 0)


def test_resolve_range_for_read_and_erase():
    assert resolve_range(IS25, "0x11E98000", "512583") == (Range(0x1E98000, 512583), "xip")
    assert resolve_range(IS25, 0x1E98000, "4K") == (Range(0x1E98000, 4096), "offset")
    with pytest.raises(UsageError, match=r"read 0x01FFF000..0x02000FFF \(XIP 0x11FFF000\) runs past the end"):
        resolve_range(IS25, 0x11FFF000, 0x2000, what="read")
    cfg24 = replace(IS25, address_mode=24)
    with pytest.raises(UsageError, match="MODE24BIT"):
        resolve_range(cfg24, 0xFFF000, 0x1001)
    assert resolve_range(cfg24, 0xFFF000, 0x1000)[0].end == 0x1000000
    with pytest.raises(UsageError, match="must be positive"):
        resolve_range(IS25, 0, 0)


def test_crc_callback_must_answer_every_range():
    with pytest.raises(ValueError, match="returned 0 CRCs"):
        plan(seg_image((0, b"a")), SMALL, sector_crcs=lambda r: [])


def test_build_sector_needs_the_read_back_data():
    p = plan(seg_image((0x10, b"a")), SMALL)
    with pytest.raises(ValueError, match="need read-back data"):
        p.build(p.operations[0])
    with pytest.raises(ValueError, match="is 0 bytes, expected 16"):
        p.build(p.operations[0], [b"", b"\xff" * (4096 - 17)])


@pytest.mark.parametrize(
    "offset, length, ok",
    [
        (0xFFFF00, 0x100, True),  # ends exactly at 16 MiB
        (0xFFFFFF, 1, True),
        (0xFFFFFF, 2, False),  # straddles
        (0x1000000, 1, False),
        (0x1E98000, 512583, False),  # the seed address
    ],
)
def test_16mib_boundary_in_24_bit_mode(offset, length, ok):
    cfg24 = apply_chip(build_config("sim-nrf5340-32mb", [cli_layer(address_mode="MODE24BIT")]))
    img = xip_image(offset, bytes(length))
    if ok:
        assert plan(img, cfg24).operations[-1].offset + 4096 <= 0x1000000
    else:
        with pytest.raises(UsageError) as e:
            plan(img, cfg24)
        msg = str(e.value)
        assert "MODE24BIT" in msg and "16 MiB" in msg and "\n" not in msg
        assert (
            f"flash offset 0x{max(offset, 0x1000000):08X} (XIP 0x{0x10000000 + max(offset, 0x1000000):08X})"
            in msg
        )


def test_straddling_16mib_in_32_bit_mode():
    p = plan(xip_image(0xFFF800, bytes(0x1000)), IS25)
    assert [op.offset for op in p.operations] == [0xFFF000, 0x1000000]


def test_3_byte_only_chip_beyond_16mib():
    no4b = replace(IS25, four_byte_entry=None)
    with pytest.raises(UsageError, match="only has 3-byte addressing"):
        plan(xip_image(0x1000000, b"x"), no4b)


@pytest.mark.parametrize("cfg", [IS25, MX25R], ids=["32MiB", "8MiB"])
def test_chip_end(cfg):
    size = cfg.size
    assert plan(xip_image(size - 256, bytes(256)), cfg).operations[-1].offset == size - 4096
    with pytest.raises(UsageError) as e:
        plan(xip_image(size - 256, bytes(257)), cfg)
    assert "past the end of" in str(e.value) and f"0x{size - 1:08X}" in str(e.value)
    assert cfg.part in str(e.value)


def test_overlapping_segments_name_both_ranges():
    img = Image(
        path="x.hex",
        kind="hex",
        segments=(Segment(0x100, bytes(0x100), 0x100), Segment(0x180, bytes(0x10), 0x180)),
        xip_base=0x10000000,
        address_kind="offset",
    )
    with pytest.raises(UsageError, match=r"overlap: 0x00000100..0x000001FF and 0x00000180..0x0000018F"):
        plan(img, SMALL)


def test_plan_needs_a_completed_config():
    with pytest.raises(ValueError, match="apply_chip"):
        plan(seg_image((0, b"a")), build_config("nrf52840dk"))


def test_bad_erase_size():
    with pytest.raises(UsageError, match="erase size 32768 is not auto"):
        plan(seg_image((0, b"a")), SMALL, erase_size=32768)


# --------------------------------------------------------------------------- properties


@st.composite
def images(draw, size=MIB):
    n = draw(st.integers(1, 8))
    # "scattered": small records close together, several per sector (like a .hex with records
    # inside already-written sectors); "spread": large segments anywhere on the chip
    scattered = draw(st.booleans())
    lo = draw(st.integers(0, size - 0x20000)) if scattered else 0
    hi, longest = (lo + 0x20000, 600) if scattered else (size, 40000)
    raw = []
    for _ in range(n):
        off = draw(st.integers(lo, hi - 1))
        length = draw(st.integers(1, min(longest, hi - off)))
        raw.append((off, length))
    segs, end = [], -1
    for off, length in sorted(raw):
        if off <= end:  # drop overlaps/touching ones to keep segments separate
            continue
        segs.append((off, length))
        end = off + length
    seed = draw(st.integers(0, 2**32))
    rng = random.Random(seed)
    pairs = []
    for off, length in segs:
        kind = rng.random()
        data = b"\xff" * length if kind < 0.1 else rng.randbytes(length)
        pairs.append((off, data))
    return seg_image(*pairs)


@st.composite
def flash_contents(draw, image):
    """Random old contents, sometimes already holding parts of the image."""
    seed = draw(st.integers(0, 2**32))
    rng = random.Random(seed)
    style = draw(st.sampled_from(["erased", "random", "partly-same"]))
    base = b"\xff" * MIB if style == "erased" else rng.randbytes(MIB)
    if style == "partly-same":
        mem = bytearray(base)
        for s in image.segments:
            if rng.random() < 0.7:
                mem[s.offset : s.end] = s.data
        base = bytes(mem)
    return base


PROPS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(
    data=st.data(), erase=st.sampled_from(["auto", 4096, 65536]), use_crc=st.booleans(), force=st.booleans()
)
def test_property_only_the_image_changes(data, erase, use_crc, force):
    img = data.draw(images())
    before = data.draw(flash_contents(img))
    flash = FakeFlash(before)
    p = plan(img, SMALL, sector_crcs=flash.crcs if use_crc else None, force=force, erase_size=erase)
    flash.run(p)
    assert bytes(flash.mem) == overlay(before, img)  # image written, every other byte kept

    # every erase/program/read stays inside sectors that hold image bytes
    touched = {c.range.offset // p.sector_size for c in p.checks}
    for r in flash.erased + flash.programmed + flash.read:
        for unit in range(r.offset // p.sector_size, (r.end - 1) // p.sector_size + 1):
            blk = unit * p.sector_size // 65536
            assert unit in touched or (
                erase == 65536 and any(t * p.sector_size // 65536 == blk for t in touched)
            )


@PROPS
@given(data=st.data(), erase=st.sampled_from(["auto", 4096, 65536]), use_crc=st.booleans())
def test_property_structure(data, erase, use_crc):
    img = data.draw(images())
    before = data.draw(flash_contents(img))
    flash = FakeFlash(before)
    p = plan(img, SMALL, sector_crcs=flash.crcs if use_crc else None, erase_size=erase)

    # each image byte is in exactly one program page, or in a sector left unchanged
    counts = bytearray(MIB)
    for op in p.operations:
        for pg in op.pages:
            assert pg.offset % p.page_size == 0 and pg.length == p.page_size
            for r in op.image:
                lo, hi = max(pg.offset, r.offset), min(pg.end, r.end)
                for i in range(lo, hi):
                    counts[i] += 1
    for r in p.unchanged:
        for c in p.checks:
            if r.offset <= c.range.offset < r.end:
                for i in range(c.range.offset, c.range.end):
                    counts[i] += 1
    for s in img.segments:
        assert set(counts[s.offset : s.end]) == {1}
    assert sum(counts) == img.size

    # each erased byte is image data or a fill: image + fills partition every erased unit
    units = []
    for op in p.operations:
        assert op.offset % op.size == 0 and op.size in (4096, 65536)
        parts = sorted(op.image + op.fills)
        pos = op.offset
        for r in parts:
            assert r.offset == pos and r.length > 0
            pos = r.end
        assert pos == op.offset + op.size
        units.append(op.range)
    units.sort()
    for a, b in zip(units, units[1:]):
        assert a.end <= b.offset

    # nothing erased when the flash already holds the image
    if use_crc and bytes(before) == overlay(before, img):
        assert p.nothing_to_do


@PROPS
@given(data=st.data(), use_crc=st.booleans())
def test_property_auto_chip_erase_keeps_everything_but_the_image(data, use_crc):
    if data.draw(st.booleans()):  # an image reaching into every sector: a chip erase pays off
        head, tail = data.draw(st.integers(0, 4095)), data.draw(st.integers(0, 4095))
        body = bytearray(random.Random(data.draw(st.integers(0, 99))).randbytes(MIB - head - tail))
        body[: data.draw(st.integers(0, 9000))] = b"\xff" * 9000  # blank pages too
        img = seg_image((head, bytes(body[: MIB - head - tail])))
    else:
        img = data.draw(images())
    before = data.draw(flash_contents(img))
    flash = FakeFlash(before)
    p = plan(img, CHEAP_CHIP, chip_erase=None, sector_crcs=flash.crcs if use_crc else None)
    flash.run(p)
    assert bytes(flash.mem) == overlay(before, img)


@PROPS
@given(data=st.data())
def test_property_chip_erase_leaves_only_the_image(data):
    img = data.draw(images())
    flash = FakeFlash(data.draw(flash_contents(img)))
    p = plan(img, SMALL, chip_erase=True, sector_crcs=flash.crcs)
    flash.run(p)
    assert bytes(flash.mem) == overlay(b"\xff" * MIB, img)


@settings(max_examples=200, deadline=None)
@given(
    offset=st.integers(0x1000000 - 0x3000, 0x1000000 + 0x1000),
    length=st.integers(1, 0x4000),
    mode=st.sampled_from([24, 32]),
)
def test_property_16mib_boundary(offset, length, mode):
    cfg = replace(IS25, address_mode=mode)
    img = xip_image(offset, bytes(length))
    if mode == 24 and offset + length > 0x1000000:
        with pytest.raises(UsageError, match="MODE24BIT"):
            plan(img, cfg)
    else:
        p = plan(img, cfg)
        top = max(op.offset + op.size for op in p.operations)
        assert top <= (0x1000000 if mode == 24 else cfg.size)


@settings(max_examples=200, deadline=None)
@given(offset=st.integers(IS25.size - 0x3000, IS25.size - 1), length=st.integers(1, 0x4000))
def test_property_chip_end(offset, length):
    img = xip_image(offset, bytes(length))
    if offset + length > IS25.size:
        with pytest.raises(UsageError, match="past the end"):
            plan(img, IS25)
    else:
        assert max(op.offset + op.size for op in plan(img, IS25).operations) <= IS25.size
