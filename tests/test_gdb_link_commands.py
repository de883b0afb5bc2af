"""Which GDB commands GdbLink sends (unit test: a recording stand-in for GdbMi): large writes
through a scratch file and `restore`, small ones and unsafe scratch paths as hex, a warning of
`restore` is a failure, registers written by number, the memory map declared before connecting."""

from __future__ import annotations

from pathlib import Path

import pytest

from qspi_gdb.errors import TargetError
from qspi_gdb.transport import gdb_link
from qspi_gdb.transport.gdb_link import RESTORE_MIN, SCRATCH_PREFIX, GdbLink
from qspi_gdb.transport.gdbmi import MiResult


class RecordingGdb:
    """Answers every command with ^done; remembers the commands and what `restore` read."""

    def __init__(self, restore_log: list[str] | None = None) -> None:
        self.commands: list[str] = []
        self.restored: list[tuple[int, bytes]] = []
        self.restore_log = restore_log or []

    def command(self, command: str, timeout_s: float | None = None) -> MiResult:
        self.commands.append(command)
        if command.startswith("-data-list-register-names"):
            return MiResult("done", {"register-names": ["r0", "r1", "", "pc", "xPSR"]})
        if command.startswith("-data-read-memory-bytes 0xe000edf0"):
            return MiResult("done", {"memory": [{"begin": "0xe000edf0",
                                                 "contents": "00000200"}]})  # S_HALT
        return MiResult("done")

    def console(self, text: str, timeout_s: float | None = None) -> MiResult:
        self.commands.append(text)
        if text.startswith("restore "):
            _, path, _, addr = text.split()
            self.restored.append((int(addr, 16), Path(path).read_bytes()))
            return MiResult("done", log=list(self.restore_log))
        return MiResult("done")


@pytest.fixture(autouse=True)
def private_tmp(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    return tmp_path


def test_large_writes_go_through_restore_and_small_ones_as_hex(private_tmp):
    gdb = RecordingGdb()
    link = GdbLink(gdb, monitor=False)
    big = bytes(range(256)) * (3 * gdb_link.CHUNK // 256 // 2)  # 1.5 chunks
    link.write_memory(0x20008000, big)
    link.write_memory(0x20000000, b"\x01\x02")
    assert gdb.restored == [(0x20008000, big[:gdb_link.CHUNK]),
                            (0x20008000 + gdb_link.CHUNK, big[gdb_link.CHUNK:])]
    assert gdb.commands[-1] == "-data-write-memory-bytes 0x20000000 0102"
    assert link.bytes_written == len(big) + 2
    scratch = [p for p in private_tmp.iterdir() if p.name.startswith(SCRATCH_PREFIX)]
    assert len(scratch) == 1 and scratch[0].stat().st_mode & 0o777 == 0o700
    link.close()
    assert not any(p.name.startswith(SCRATCH_PREFIX) for p in private_tmp.iterdir())


def test_a_warning_of_restore_is_a_failed_write():
    gdb = RecordingGdb(restore_log=["warning: Unable to write target memory.\n"])
    link = GdbLink(gdb, monitor=False)
    with pytest.raises(TargetError, match=r"writing 4096 bytes at 0x20008000 failed: warning"):
        link.write_memory(0x20008000, bytes(RESTORE_MIN))
    link.close()


def test_a_scratch_path_gdb_cannot_name_falls_back_to_hex(tmp_path, monkeypatch):
    spaced = tmp_path / "my dir"
    spaced.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(spaced))
    gdb = RecordingGdb()
    link = GdbLink(gdb, monitor=False)
    link.write_memory(0x20008000, bytes(RESTORE_MIN))
    assert gdb.restored == []
    assert gdb.commands[-1].startswith("-data-write-memory-bytes 0x20008000 0000")
    link.close()


def test_registers_are_written_by_number():
    gdb = RecordingGdb()
    link = GdbLink(gdb, monitor=False)
    link.write_register("PC", 0x20000101)
    link.write_register("xpsr", 0x1_0100_0000)
    assert gdb.commands[-2:] == ["-data-write-register-values x 3 0x20000101",
                                 "-data-write-register-values x 4 0x1000000"]


def test_the_memory_map_is_declared_before_connecting():
    gdb = RecordingGdb()
    GdbLink(gdb, monitor=False).connect("127.0.0.1:3333")
    select = next(i for i, c in enumerate(gdb.commands) if c.startswith("-target-select"))
    assert gdb.commands.index("mem 0x0 0xe0100000 rw") < select
    assert gdb.commands.index("-gdb-set mem inaccessible-by-default on") < select
