"""One qspi-gdb at a time per target (issue 17): a second command on the same virtual board
flash file or the same probe is refused at once with one line naming the holder's PID (exit 2,
nothing written), or waits with --wait-lock; the lock dies with its holder."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_process_faults import Running, error_line

from qspi_gdb.cli import main
from qspi_gdb.transport.locks import board_file_lock, probe_lock

REPO = Path(__file__).resolve().parent.parent
needs_tools = pytest.mark.skipif(not (shutil.which("openocd") and shutil.which("gdb-multiarch")),
                                 reason="needs Debian openocd and gdb-multiarch")


@pytest.fixture
def lock_dir(private_runtime) -> Path:
    """Locks of this test only (the real per-user directory may hold other runs' locks)."""
    return private_runtime


@pytest.mark.integration
@needs_tools
def test_a_second_flash_of_the_same_flash_file_is_refused_then_waits_its_turn(lock_dir,
                                                                              tmp_path):
    flash_file = tmp_path / "f.img"
    first, second, third = (tmp_path / f"{name}.bin" for name in ("first", "second", "third"))
    for n, path in enumerate((first, second, third)):
        # the first long enough to be still running when the third one asks for the lock
        path.write_bytes(random.Random(n).randbytes((512 if n == 0 else 64) * 1024))
    common = ["--board", "sim-nrf52840dk", "--sim-image", str(flash_file)]
    a = Running("flash", f"{first}@0x12100000", *common, env=dict(os.environ))
    try:
        # the report started the second command half a second later; here: once A holds it
        lock_file = board_file_lock(flash_file).path
        deadline = time.monotonic() + 60
        while not (lock_file.exists() and lock_file.read_text().strip() == str(a.proc.pid)):
            assert time.monotonic() < deadline and a.proc.poll() is None
            time.sleep(0.05)
        # another spelling of the same file is the same flash
        relative = os.path.relpath(flash_file, REPO)
        b = Running("flash", f"{second}@0x12100000", "--board", "sim-nrf52840dk", "--sim-image",
                    relative, env=dict(os.environ))
        code, result, err = b.finish(timeout_s=30)
        assert code == 2, err
        assert error_line(err) == (
            f"qspi-gdb: error: the virtual board's flash file {flash_file} is in use by another "
            f"qspi-gdb (PID {a.proc.pid}); wait for it to finish or pass --wait-lock SECONDS")
        assert result["error"]["exit_code"] == 2 and result["bytes_erased"] == 0
        c = Running("flash", f"{third}@0x12100000", *common, "--wait-lock", "300",
                    env=dict(os.environ))
        code_a, result_a, err_a = a.finish(timeout_s=240)
        assert code_a == 0 and result_a["verified"] is True, err_a
        code_c, result_c, err_c = c.finish(timeout_s=240)
        assert code_c == 0 and result_c["verified"] is True, err_c
        assert any(r.get("event", "").startswith(
            f"waiting up to 300 s for the virtual board's flash file {flash_file}, in use by "
            f"PID {a.proc.pid}") for r in c.logged())
    finally:
        for run in (a, locals().get("c")):
            if run is not None and run.proc.poll() is None:
                run.proc.kill()
    assert flash_file.read_bytes()[0x100000:0x110000] == third.read_bytes()


def test_a_probe_in_use_is_refused_before_openocd_starts(lock_dir, capsys):
    with probe_lock("jlink"):
        assert main(["info", "--board", "nrf5340dk", "--json"]) == 2
        captured = capsys.readouterr()
        message = (f"the jlink probe is in use by another qspi-gdb (PID {os.getpid()}); wait "
                   "for it to finish or pass --wait-lock SECONDS")
        assert captured.err.splitlines()[-1] == f"qspi-gdb: error: {message}"
        assert '"exit_code": 2' in captured.out
    with probe_lock("cmsis-dap", "0240000034"):
        code = main(["erase", "0x10000000", "4096", "--board", "nrf5340dk", "--interface",
                     "cmsis-dap", "--serial", "0240000034", "--wait-lock", "0.5"])
        err = capsys.readouterr().err
        assert code == 2
        assert err.splitlines()[-1] == (
            "qspi-gdb: error: the probe with serial 0240000034 is still in use by another "
            f"qspi-gdb (PID {os.getpid()}) after --wait-lock 0.5")


def test_a_lock_dies_with_its_holder(lock_dir, tmp_path):
    flash_file = tmp_path / "f.img"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from qspi_gdb.transport.locks import board_file_lock\n"
         "board_file_lock(sys.argv[1]).acquire()\nprint('locked', flush=True)\ntime.sleep(600)",
         str(flash_file)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        while holder.stdout.readline().strip() != "locked":  # after structlog's debug line
            assert holder.poll() is None
        lock = board_file_lock(flash_file)
        with pytest.raises(Exception, match=f"in use by another qspi-gdb \\(PID {holder.pid}\\)"):
            lock.acquire()
        holder.kill()  # SIGKILL: no clean-up ran
        holder.wait()
        lock.acquire()  # the kernel dropped the dead holder's lock
        lock.release()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    mode = (lock_dir / "qspi-gdb").stat().st_mode & 0o777
    assert mode == 0o700
