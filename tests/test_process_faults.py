"""A process on the way to the target dies or stalls mid-command (issue 17): the real CLI as a
child process, the real OpenOCD, gdb-multiarch and virtual board; one of them is killed,
stopped or interrupted while the flash is being written.

What must hold: the command ends within seconds naming the process that died, every failure
after the first erase says the flash range may be partly written (exit 3, or 130 when
interrupted), the --json counters say what was really done, messages stay one short line, and
no process or temporary directory is left behind, even when qspi-gdb itself is killed.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from process_tree import alive, descendants

from qspi_gdb.transport.ports import port_accepts

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (shutil.which("openocd") and shutil.which("gdb-multiarch")),
                       reason="needs Debian openocd and gdb-multiarch"),
]

REPO = Path(__file__).resolve().parent.parent
BOARD = "sim-nrf52840dk"  # 8 MiB MX25R6435F: small flash file, quick to start
IMAGE_AT = 0x12100000  # flash offset 0x100000
CHILD_NAMES = {"board": "qspi_gdb.sim", "openocd": "openocd", "gdb": "gdb-multiarch"}


class Running:
    """qspi-gdb as a child process (--json); its stderr (JSON log lines: stderr is no TTY) is
    collected as it comes, so a test can act when a phase is under way."""

    def __init__(self, *argv: str, env: dict | None = None, cwd: Path = REPO):
        self.proc = subprocess.Popen([sys.executable, "-m", "qspi_gdb", *argv, "--json"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=env, cwd=cwd)
        self.lines: list[str] = []
        self.out: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(stream, into), daemon=True)
                         for stream, into in ((self.proc.stderr, self.lines),
                                              (self.proc.stdout, self.out))]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, into: list[str]) -> None:
        for line in stream:
            into.append(line)

    def logged(self) -> list[dict]:
        records = []
        for line in list(self.lines):
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records

    def wait_for_work(self, phase: str, timeout_s: float = 120, *, started: bool = False) -> None:
        """Until `phase` ("Erasing", "Programming", "Verifying") reported bytes done (started:
        until it began)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for record in self.logged():
                if record.get("event") == "progress" and record.get("phase") == phase and \
                        (record.get("done") or started):
                    return
            assert self.proc.poll() is None, "".join(self.lines)
            time.sleep(0.05)
        raise AssertionError(f"no {phase} progress within {timeout_s} s")

    def children(self) -> dict[str, int]:
        """The board, OpenOCD and gdb processes below it, by role."""
        return {role: pid for pid, argv in descendants(self.proc.pid).items()
                for role, name in CHILD_NAMES.items() if name in argv}

    def finish(self, timeout_s: float) -> tuple[int, dict | None, str]:
        """(exit code, --json object, stderr) once it ended within timeout_s."""
        try:
            self.proc.wait(timeout=timeout_s)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        for reader in self._readers:
            reader.join(5)
        lines = [line for line in self.out if line.startswith("{")]
        return self.proc.returncode, json.loads(lines[-1]) if lines else None, "".join(self.lines)


def error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("qspi-gdb: ")]
    assert len(lines) == 1, stderr
    return lines[0]


def assert_nothing_left(pids: dict[str, int]) -> None:
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert {role: pid for role, pid in pids.items() if alive(pid)} == {}


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "r256k.bin"
    path.write_bytes(random.Random(17).randbytes(256 * 1024))
    return path


def flash_args(image: Path, flash_file: Path) -> list[str]:
    return ["flash", f"{image}@0x{IMAGE_AT:08X}", "--board", BOARD, "--sim-image", str(flash_file)]


def erase_args(flash_file: Path) -> list[str]:
    return ["erase", f"0x{IMAGE_AT:08X}", "2M", "--board", BOARD, "--sim-image", str(flash_file)]


@pytest.mark.parametrize("command", ["flash", "erase"])
def test_openocd_killed_mid_write_ends_the_command_within_seconds_naming_it(command, image,
                                                                           tmp_path):
    flash_file = tmp_path / "f.img"
    run = Running(*(flash_args(image, flash_file) if command == "flash" else
                    erase_args(flash_file)))
    run.wait_for_work("Programming" if command == "flash" else "Erasing")
    children = run.children()
    os.kill(children["openocd"], signal.SIGKILL)
    killed = time.monotonic()
    code, result, err = run.finish(timeout_s=60)
    took = time.monotonic() - killed
    line = error_line(err)
    assert code == 3, err
    assert line.startswith("qspi-gdb: error: OpenOCD exited (killed by SIGKILL)"), line
    done = "written" if command == "flash" else "erased"
    assert line.endswith(f"; the flash range may be partly {done}"), line
    assert result["error"]["exit_code"] == 3 and result["bytes_erased"] > 0
    assert took < 30, f"noticed only after {took:.0f} s"  # the deadlines were minutes long
    assert_nothing_left(children)


@pytest.mark.parametrize("victim", ["gdb", "board"])
def test_gdb_or_board_killed_mid_write_says_partly_written_and_counts_the_work(victim, image,
                                                                              tmp_path):
    run = Running(*flash_args(image, tmp_path / "f.img"))
    run.wait_for_work("Programming")
    children = run.children()
    os.kill(children[victim], signal.SIGKILL)
    code, result, err = run.finish(timeout_s=60)
    line = error_line(err)
    assert code == 3, err
    name = "gdb-multiarch exited" if victim == "gdb" else "the virtual board exited"
    assert name in line and "killed by SIGKILL" in line, line
    assert line.endswith("; the flash range may be partly written"), line
    # a 64 KiB block was erased and pages were programmed before the kill
    assert result["bytes_erased"] >= 65536 and result["sectors_erased"] >= 1
    assert result["bytes_programmed"] > 0 and result["pages_programmed"] > 0
    assert_nothing_left(children)


@pytest.mark.parametrize("command", ["flash", "erase"])
def test_interrupt_mid_write_counts_the_work_done(command, image, tmp_path):
    flash_file = tmp_path / "f.img"
    run = Running(*(flash_args(image, flash_file) if command == "flash" else
                    erase_args(flash_file)))
    if command == "flash":
        run.wait_for_work("Programming")
    else:  # a second into erasing 2 MiB (~5 s on this board): blocks erased, more to come
        run.wait_for_work("Erasing", started=True)
        time.sleep(1.0)
    children = run.children()
    run.proc.send_signal(signal.SIGINT)
    code, result, err = run.finish(timeout_s=60)
    assert code == 130, err
    during = "erasing and programming" if command == "flash" else "erasing"
    assert error_line(err).startswith(f"qspi-gdb: interrupted while {during}: the flash range "
                                      "may be partly")
    assert result["bytes_erased"] > 0 and result["sectors_erased"] > 0
    if command == "flash":
        assert result["bytes_programmed"] > 0 and result["pages_programmed"] > 0
    assert_nothing_left(children)


def test_a_stalled_openocd_gives_a_short_message_without_payload(image, tmp_path):
    run = Running(*flash_args(image, tmp_path / "f.img"))
    run.wait_for_work("Programming")
    children = run.children()
    os.kill(children["openocd"], signal.SIGSTOP)
    try:
        code, result, err = run.finish(timeout_s=200)
    finally:
        if alive(children["openocd"]):
            os.kill(children["openocd"], signal.SIGCONT)
    line = error_line(err)
    assert code == 3, err
    assert len(line) < 300, line
    assert not re.search(r"[0-9a-f]{64}", line), line  # no hex payload of a memory write
    assert line.endswith("; the flash range may be partly written"), line
    assert len(result["error"]["message"]) < 300
    assert_nothing_left(children)


def test_kill_9_of_qspi_gdb_takes_its_processes_along_and_the_next_run_cleans_up(image):
    tmpdir = Path(tempfile.mkdtemp(prefix="q17-", dir="/tmp"))  # short: UNIX socket paths
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    try:
        run = Running(*flash_args(image, tmpdir / "f.img"), env=env)
        run.wait_for_work("Programming")
        children = run.children()
        port = next(int(r["gdb"].rsplit(":", 1)[1]) for r in run.logged()
                    if r.get("event") == "openocd ready")
        assert set(children) == {"board", "openocd", "gdb"}
        run.proc.kill()  # SIGKILL: no finally, no signal handler runs in qspi-gdb
        run.finish(timeout_s=30)
        assert_nothing_left(children)
        assert not port_accepts("127.0.0.1", port)
        # qspi-gdb-openocd-*, qspi-sim-* (and qspi-restore-*, GDB's scratch file, once a
        # large write went out): nobody removed them
        stale = sorted(p.name.split("-")[1] for p in tmpdir.iterdir() if p.is_dir())
        assert [name for name in stale if name != "restore"] == ["gdb", "sim"]
        for path in tmpdir.iterdir():
            if path.is_dir():
                assert path.stat().st_mode & 0o777 == 0o700
        # the next command that starts a board and OpenOCD removes what dead owners left
        nxt = Running("info", "--board", BOARD, env=env)
        code, _, err = nxt.finish(timeout_s=120)
        assert code == 0, err
        assert [p for p in tmpdir.iterdir() if p.is_dir()] == []
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
