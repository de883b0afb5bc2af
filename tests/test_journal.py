"""The kept-bytes journal (`qspi_gdb.flash.journal`) and the kept-bytes logic around it
(`qspi_gdb.flash.kept`): pure host logic, the target replaced by a fake client."""

from __future__ import annotations

import json
import os
import stat
import zlib

import pytest

from qspi_gdb.errors import ConnectionLost, TargetError, UsageError
from qspi_gdb.flash import kept
from qspi_gdb.flash.journal import SPOILED_CRC, Identity, Journal, open_journal, parse
from qspi_gdb.flash.plan import SectorContent, SectorOp
from qspi_gdb.flash.ranges import Range
from qspi_gdb.inputs.image import Image, Segment
from qspi_gdb.rundir import state_dir

ME = Identity("sim-nrf52840dk", "virtual flash file /tmp/f.img", "C22817")


def image(data: bytes = b"\x01" * 100, offset: int = 0x10100) -> Image:
    return Image("img.bin", "bin", (Segment(offset, data, offset),), 0x12000000)


def saved(tmp_path, entries=None, identity=ME, img=None) -> Journal:
    j = open_journal(identity, img or image(), where=tmp_path)
    j.add([Range(o, len(d)) for o, d in (entries or {0x10000: b"\xaa" * 0x100}).items()],
          list((entries or {0x10000: b"\xaa" * 0x100}).values()))
    j.save()
    return j


def test_state_dir_is_private(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "deep" / "state"))
    where = state_dir()
    assert where == tmp_path / "deep" / "state" / "qspi-gdb"
    assert stat.S_IMODE(where.stat().st_mode) == 0o700


def test_saved_file_is_private_and_round_trips(tmp_path):
    j = saved(tmp_path)
    assert stat.S_IMODE(os.stat(j.path).st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [j.path.name]  # no temporary file left
    again = open_journal(ME, image(), where=tmp_path)
    assert again.entries == {0x10000: b"\xaa" * 0x100}
    again.remove()
    assert not j.path.exists()


def test_no_journal_is_an_empty_one(tmp_path):
    j = open_journal(ME, image(), where=tmp_path)
    assert j.entries == {} and not j.path.exists()


def test_overlay_takes_journaled_bytes_and_add_merges(tmp_path):
    j = Journal(tmp_path / "j.json", ME, "x", {0x10000: b"\xaa" * 0x10})
    fills = [Range(0x0FFF8, 0x10), Range(0x10008, 0x10)]
    flash_says = [b"\xff" * 0x10, b"\xff" * 0x10]
    got = j.overlay(fills, flash_says)
    assert got[0] == b"\xff" * 8 + b"\xaa" * 8
    assert got[1] == b"\xaa" * 8 + b"\xff" * 8
    j.add(fills, got)
    assert j.entries == {0x0FFF8: b"\xff" * 8 + b"\xaa" * 0x10 + b"\xff" * 8}


def test_spoil_makes_journaled_sectors_mismatch(tmp_path):
    j = Journal(tmp_path / "j.json", ME, "x", {0x10000: b"\xaa" * 0x100})
    ranges = [Range(0x0F000, 0x1000), Range(0x10000, 0x1000), Range(0x11000, 0x1000)]
    assert j.spoil(ranges, [1, 2, 3]) == [1, SPOILED_CRC, 3]


def test_another_target_is_refused_nothing_changed(tmp_path):
    j = saved(tmp_path)
    other = Identity("sim-nrf52840dk", ME.target, "EF4018")
    with pytest.raises(UsageError, match="belongs to another target.*--discard-journal"):
        open_journal(other, image(), where=tmp_path)
    assert j.path.exists()


def test_another_image_is_refused(tmp_path):
    j = saved(tmp_path)
    with pytest.raises(UsageError, match="another image.*--discard-journal"):
        open_journal(ME, image(b"\x02" * 100), where=tmp_path)
    assert j.path.exists()


@pytest.mark.parametrize("damage", ["data", "file-crc", "not-json", "not-a-journal"])
def test_corrupt_journal_is_refused(tmp_path, damage):
    j = saved(tmp_path)
    body = json.loads(j.path.read_text())
    if damage == "data":
        body["entries"][0]["data"] = "qg==" + body["entries"][0]["data"][4:]
        body["crc32"] = zlib.crc32(json.dumps({k: v for k, v in body.items() if k != "crc32"},
                                              sort_keys=True).encode())
        text = json.dumps(body)
    elif damage == "file-crc":
        body["entries"][0]["offset"] += 1
        text = json.dumps(body)
    elif damage == "not-json":
        text = j.path.read_text()[:40]
    else:
        text = "{}"
    j.path.write_text(text)
    with pytest.raises(UsageError, match=f"{j.path} is corrupt.*--discard-journal"):
        open_journal(ME, image(), where=tmp_path)
    with pytest.raises(UsageError, match="corrupt"):
        parse(j.path, text)


def test_discard_deletes_it(tmp_path):
    j = saved(tmp_path)
    j.path.write_text("garbage")
    fresh = open_journal(ME, image(), discard=True, where=tmp_path)
    assert fresh.entries == {} and not j.path.exists()


# -- kept: settle and restore over a fake target -----------------------------------------------


class FakeFlash:
    """A flash as bytes; the client's write runs erase/program steps on it."""

    def __init__(self, size=0x20000, fail_writes=0, lost=False):
        self.mem = bytearray(b"\x55" * size)
        self.fail_writes, self.lost, self.reloads = fail_writes, lost, 0

    def crcs(self, ranges):
        return [zlib.crc32(bytes(self.mem[r.offset:r.end])) for r in ranges]

    def write(self, steps):
        if self.lost:
            raise ConnectionLost("OpenOCD ended")
        if self.fail_writes:
            self.fail_writes -= 1
            raise TargetError("loader gone")
        for s in steps:
            if hasattr(s, "data"):
                self.mem[s.offset:s.offset + len(s.data)] = s.data
            else:
                self.mem[s.offset:s.offset + s.length] = b"\xff" * s.length

    def reload(self):
        self.reloads += 1


def unit() -> tuple[SectorOp, SectorContent]:
    data = b"\x55" * 0x100 + b"\x01" * 0xF00
    op = SectorOp(offset=0x10000, size=0x1000, erase="4KB", image=(Range(0x10100, 0xF00),),
                  fills=(Range(0x10000, 0x100),), pages=())
    return op, SectorContent(0x10000, data, (Range(0x10000, 0x1000),), zlib.crc32(data))


def test_restore_rewrites_a_lost_sector_and_removes_the_journal(tmp_path):
    flash = FakeFlash(fail_writes=1)
    flash.mem[0x10000:0x11000] = b"\xff" * 0x1000  # erased, then the fault struck
    j = saved(tmp_path, {0x10000: b"\x55" * 0x100})
    note = kept.after_failure(TargetError("x"), flash, flash.crcs, flash.reload, j, [unit()])
    assert note == kept.RESTORED and flash.reloads == 1
    assert flash.mem[0x10000:0x10100] == b"\x55" * 0x100
    assert not j.path.exists()


def test_restore_gives_up_when_the_link_is_lost(tmp_path):
    flash = FakeFlash(lost=True)
    flash.mem[0x10000:0x11000] = b"\xff" * 0x1000
    j = saved(tmp_path, {0x10000: b"\x55" * 0x100})
    note = kept.after_failure(ConnectionLost("gone"), flash, flash.crcs, flash.reload, j,
                              [unit()])
    assert str(j.path) in note and "re-run" in note and j.path.exists()
    note = kept.after_failure(KeyboardInterrupt(), flash, flash.crcs, flash.reload, j, [unit()])
    assert "saved in" in note and j.path.exists()


def test_settle_keeps_a_journal_the_target_does_not_prove(tmp_path):
    flash = FakeFlash()
    j = saved(tmp_path, {0x10000: b"\xaa" * 0x100})
    assert not kept.settle(j, flash.crcs) and j.path.exists()
    flash.mem[0x10000:0x10100] = b"\xaa" * 0x100
    assert kept.settle(j, flash.crcs) and not j.path.exists()
