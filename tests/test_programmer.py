"""The programmer on the in-process virtual board (no OpenOCD/GDB: fast), plus its pure helpers.

Covers detection (the chip wins), read-modify-write, skip-unchanged, verify mismatch reporting,
erase steps and progress events. The same code runs through GDB/MI in test_e2e_flash.py.
"""

from __future__ import annotations

import random
import zlib

import pytest

from qspi_gdb.errors import UsageError
from qspi_gdb.flash.programmer import Programmer, expected_bytes
from qspi_gdb.flash.progress import PhaseFinished, PhaseStarted
from qspi_gdb.flash.ranges import Range
from qspi_gdb.flash.rules import erase_runs
from qspi_gdb.inputs import flash_config as flashcfg
from qspi_gdb.inputs.image import image_from_segments
from qspi_gdb.loader import mailbox as mb

board_mod = pytest.importorskip("qspi_gdb.sim.board")


class Rig:
    def __init__(self, board: str, config_layers=()):
        self.board = board_mod.Board(board)
        self.link = board_mod.InProcessLink(self.board)
        self.events = []
        self.preset = flashcfg.build_config(board, list(config_layers))
        self.programmer = Programmer(self.link, chip=self.preset.chip,
                                     progress=self.events.append)
        self.config = self.programmer.connect(self.preset)

    def flash_bytes(self, offset: int, n: int) -> bytes:
        return self.board.flash.peek(offset, n)

    def image(self, *segments):
        return image_from_segments(list(segments), xip_base=self.config.xip_base)


@pytest.fixture(scope="module")
def rig():
    r = Rig("sim-nrf5340-32mb")
    yield r
    r.board.close()


def test_detection_folds_in_the_chip_and_fixes_the_program_mode(rig):
    cfg = rig.config
    assert (cfg.part, cfg.size, cfg.address_mode) == ("IS25WP256", 32 << 20, 32)
    assert cfg.jedec_id == bytes.fromhex("9D7019") and cfg.detected == "sfdp"
    assert cfg.writeoc == "PP4O"  # the preset's PP4IO would garble addresses on this part


def test_flash_rmw_skip_and_verify(rig):
    rng = random.Random(1)
    around = rng.randbytes(3 * 4096)
    base = 0x1000000  # above 16 MiB: 4-byte addressing
    outcome = rig.programmer.flash(rig.image((base, around)))
    assert not outcome.mismatched and rig.flash_bytes(base, len(around)) == around

    patch = b"\x00\x11\x22\x33\x44"
    outcome = rig.programmer.flash(rig.image((base + 4096 + 100, patch)))
    expected = bytearray(around)
    expected[4096 + 100:4096 + 105] = patch
    assert rig.flash_bytes(base, len(around)) == bytes(expected)
    assert outcome.plan.sectors_erased == 1 and outcome.plan.fill_bytes == 4096 - 5
    assert [r["offset"] for r in outcome.verified] == [base + 4096]

    again = rig.programmer.flash(rig.image((base + 4096 + 100, patch)))
    assert again.plan.operations == () and again.plan.sectors_unchanged == 1
    assert again.bytes_programmed == 0 and not again.mismatched

    started = [e.phase for e in rig.events if isinstance(e, PhaseStarted)]
    finished = [e.phase for e in rig.events if isinstance(e, PhaseFinished)]
    assert {"Reading flash", "Erasing", "Programming", "Verifying"} <= set(started)
    assert sorted(started) == sorted(finished)


def test_verify_reports_the_differing_sector(rig):
    data = random.Random(2).randbytes(8192)
    rig.programmer.flash(rig.image((0x20000, data)))
    good, bad = rig.programmer.verify(rig.image((0x20000, data)))
    assert len(good) == 2 and bad == []
    flipped = bytearray(data)
    flipped[5000] ^= 1
    good, bad = rig.programmer.verify(rig.image((0x20000, bytes(flipped))))
    assert [b["offset"] for b in bad] == [0x21000] and len(good) == 1


def test_read_and_erase(rig):
    data = random.Random(3).randbytes(0x12000)
    rig.programmer.flash(rig.image((0x40000, data)))
    assert rig.programmer.read(0x40000 + 10, 100) == data[10:110]
    runs = erase_runs(rig.config, Range(0x40000, 0x11000))
    assert sum(run.units for run in runs) == 2  # one 64 KiB block and one 4 KiB sector
    rig.programmer.erase(runs)
    assert rig.flash_bytes(0x40000, 0x11000) == b"\xff" * 0x11000
    assert rig.flash_bytes(0x51000, 0x1000) == data[0x11000:]
    with pytest.raises(UsageError, match="runs past the end"):
        rig.programmer.read((32 << 20) - 4, 8)


def test_erase_runs_use_blocks_only_for_whole_aligned_blocks(rig):
    steps = erase_runs(rig.config, Range(0xF000, 0x22000))
    assert [(s.offset, s.length, s.block) for s in steps] == [
        (0xF000, 0x1000, 4096), (0x10000, 0x20000, 65536), (0x30000, 0x1000, 4096)]
    with pytest.raises(UsageError, match="whole 4 KiB sectors"):
        erase_runs(rig.config, Range(0x100, 0x1000))


def test_expected_bytes_prefers_rewritten_units_over_image():
    from qspi_gdb.flash.plan import SectorContent

    image = image_from_segments([(0x1000, b"\x01" * 16)])
    unit = SectorContent(offset=0x1000, data=b"\x02" * 4096, program=(), crc32=0)
    assert expected_bytes(image, [unit], Range(0x1000, 32)) == b"\x02" * 32
    assert expected_bytes(image, [], Range(0x1000, 16)) == b"\x01" * 16
    assert zlib.crc32(expected_bytes(image, [unit], Range(0x1000, 4096))) == \
        zlib.crc32(b"\x02" * 4096)


def test_unchanged_reflash_counts_the_pre_read_as_verification(rig, monkeypatch):
    data = random.Random(4).randbytes(3 * 4096 + 100)
    base = 0x60000
    rig.programmer.flash(rig.image((base, data)))
    reads = []
    real = rig.programmer.crcs
    monkeypatch.setattr(rig.programmer, "crcs",
                        lambda ranges, phase=None, image=None:
                            reads.append(list(ranges)) or real(ranges, phase, image))
    again = rig.programmer.flash(rig.image((base, data)))
    assert again.plan.operations == () and not again.mismatched
    assert len(reads) == 1  # the skip-unchanged read only: no second pass over the flash
    assert [(v["offset"], v["length"]) for v in again.verified] == [(base, len(data))]
    assert again.verified[0]["crc32"] == f"0x{zlib.crc32(data):08X}"

    # one changed sector: the written unit is read back, and only the merged range holding it,
    # by a CRC32 queued behind the writing (its last stop has the result: no read pass after)
    changed = bytearray(data)
    changed[4096 + 7] ^= 0xFF
    reads.clear()
    crc_cmds = []
    write = rig.programmer.client.write
    monkeypatch.setattr(rig.programmer.client, "write", lambda *a, then=(), **k: (
        crc_cmds.extend(then), write(*a, then=then, **k))[1])
    third = rig.programmer.flash(rig.image((base, bytes(changed))))
    assert third.plan.sectors_written == 1 and not third.mismatched
    assert len(reads) == 1  # the skip-unchanged read
    assert [(c.op, c.addr, c.len) for c in crc_cmds] == [(mb.OP_CRC32, base, len(data))]
    assert [(v["offset"], v["length"], v["crc32"]) for v in third.verified] == [
        (base, len(data), f"0x{zlib.crc32(bytes(changed)):08X}")]
    assert crc_cmds[0].result0 == zlib.crc32(bytes(changed))
    assert rig.flash_bytes(base, len(data)) == bytes(changed)


def test_the_skip_unchanged_read_stops_at_the_first_bytes_where_they_differ(rig, monkeypatch):
    """A sector changed in its first page is proven changed by that page; one changed only
    behind it is read whole; both are rewritten, the unchanged one is not."""
    data = random.Random(5).randbytes(3 * 4096)
    base = 0x70000
    rig.programmer.flash(rig.image((base, data)))
    changed = bytearray(data)
    changed[3] ^= 0xFF  # sector 0: in its first page
    changed[2 * 4096 - 1] ^= 0xFF  # sector 1: at its end
    answers = []
    real = rig.programmer.client.crc_list_prefixed
    monkeypatch.setattr(rig.programmer.client, "crc_list_prefixed",
                        lambda *a: answers.extend(real(*a)) or answers)
    again = rig.programmer.flash(rig.image((base, bytes(changed))))
    assert answers[0] is None and answers[1] == zlib.crc32(data[4096:8192])
    assert answers[2] == zlib.crc32(data[8192:])
    assert [op.offset for op in again.plan.operations] == [base, base + 4096]
    assert not again.mismatched and rig.flash_bytes(base, len(data)) == bytes(changed)


def test_a_phase_that_fails_emits_phase_failed_and_not_finished(rig, monkeypatch):
    from qspi_gdb.errors import TargetError
    from qspi_gdb.flash.progress import PROGRAMMING, PhaseFailed

    def broken_write(*_args, **_kwargs):
        raise TargetError("the probe went away")

    monkeypatch.setattr(rig.programmer.client, "write", broken_write)
    rig.events.clear()
    with pytest.raises(TargetError):
        rig.programmer.flash(rig.image((0x200000, b"\x5a" * 4096)), force=True)
    failed = [e for e in rig.events if isinstance(e, PhaseFailed)]
    assert [e.phase for e in failed] == ["Erasing", PROGRAMMING]
    assert failed[0].message == "the probe went away"
    assert not [e for e in rig.events if isinstance(e, PhaseFinished) and e.phase == PROGRAMMING]
