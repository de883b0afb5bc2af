"""`qspi-gdb sim`: endpoint line, TCP port 0, several boards at once, clean exit on signals."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys

import pytest
from bitbang_client import read_idcode

from qspi_gdb.sim.cli import main as sim_main


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "qspi_gdb", "sim", *args], stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)


def _first_line(proc: subprocess.Popen) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    assert ready, "no endpoint printed"
    return proc.stdout.readline().strip()


def _idcode(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        return read_idcode(sock)


def _stop(proc: subprocess.Popen, sig: int) -> tuple[int, str]:
    try:
        os.killpg(proc.pid, sig)
        out, _ = proc.communicate(timeout=30)
        return proc.returncode, out
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def test_two_boards_on_free_tcp_ports_then_signals_end_them_cleanly():
    a = _start("--board", "sim-nrf52840dk")
    b = _start("--board", "sim-nrf5340-32mb", "--port", "0", "--json")
    try:
        line_a = _first_line(a)
        match = re.fullmatch(r"remote_bitbang 127\.0\.0\.1:(\d+)", line_a)
        assert match, line_a
        info = json.loads(_first_line(b))
        assert info["board"] == "sim-nrf5340-32mb" and info["sim_image"] is None
        host, port_b = info["remote_bitbang"].split(":")
        assert host == "127.0.0.1" and int(port_b) != int(match.group(1))
        assert _idcode(int(match.group(1))) == 0x2BA01477
        assert _idcode(int(port_b)) == 0x6BA02477
    finally:
        code_a, _ = _stop(a, signal.SIGINT)
        code_b, out_b = _stop(b, signal.SIGTERM)
    assert code_a == 0 and code_b == 0
    stats = json.loads(out_b.strip().splitlines()[-1])["stats"]
    assert stats["dap_transactions"] == 0  # an IDCODE scan is no DAP transaction
    assert "modelled_s" in stats


def test_unknown_board_is_a_usage_error(capsys):
    assert sim_main(["--board", "sim-nope"]) == 2
    assert "unknown virtual board" in capsys.readouterr().err


@pytest.mark.parametrize("rate", ["0", "-1", "nan", "5000"])
def test_a_time_rate_out_of_range_is_a_usage_error(rate, capsys):
    assert sim_main(["--board", "sim-nrf52840dk", "--time-rate", rate]) == 2
    assert "--time-rate" in capsys.readouterr().err


def test_port_and_socket_are_exclusive():
    with pytest.raises(SystemExit) as exc:
        sim_main(["--board", "sim-nrf52840dk", "--port", "1", "--socket", "/tmp/x"])
    assert exc.value.code == 2


def test_console_file_is_created_and_a_directory_is_refused(tmp_path, capsys):
    assert sim_main(["--board", "sim-nrf52840dk", "--console", str(tmp_path)]) == 2
    assert "--console" in capsys.readouterr().err
    console = tmp_path / "console.txt"
    proc = _start("--board", "sim-nrf5340dk", "--console", str(console))
    try:
        assert _first_line(proc).startswith("remote_bitbang 127.0.0.1:")
        assert console.exists() and console.read_bytes() == b""  # nothing transmitted yet
    finally:
        code, _ = _stop(proc, signal.SIGTERM)
    assert code == 0
