"""OpenOCD / virtual-board process management: arguments, failure paths, nothing left behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from qspi_gdb.cli import main
from qspi_gdb.errors import TargetError, UsageError
from qspi_gdb.transport import session
from qspi_gdb.transport.gdb_link import ConnectError
from qspi_gdb.transport.openocd import (
    OpenOcd,
    interface_config,
    summarize_log,
    tcl_word,
)
from qspi_gdb.transport.ports import free_tcp_port
from qspi_gdb.transport.session import (
    TargetOptions,
    check_gdb_server,
    open_session,
    openocd_script,
)
from qspi_gdb.transport.virtual_board import VirtualBoardProcess

REPO = Path(__file__).resolve().parent.parent


def test_argv_binds_locally_and_disables_telnet_tcl_and_memory_map():
    argv = OpenOcd([("f", "target/nrf5340.cfg")]).argv(4242)
    commands = [argv[i + 1] for i, a in enumerate(argv) if a == "-c"]
    assert commands[0] == "bindto 127.0.0.1"
    assert {"telnet_port disabled", "tcl_port disabled", "gdb_report_data_abort enable",
            "gdb_memory_map disable", "gdb_port 4242"} <= set(commands)
    assert argv[-2:] == ["-f", "target/nrf5340.cfg"]


def test_scripts_per_connection_kind():
    real = TargetOptions(board="nrf5340dk", chip="nrf5340", virtual=False)
    assert openocd_script(real, None) == [("f", "board/nrf5340dk.cfg"),
                                          ("c", "adapter speed 4000")]
    probe = TargetOptions(board="nrf52840dk", chip="nrf52840", virtual=False,
                          interface="cmsis-dap")
    assert openocd_script(probe, None) == [
        ("f", "interface/cmsis-dap.cfg"), ("c", "transport select swd"),
        ("c", "adapter speed 4000"), ("f", "target/nrf52840.cfg")]
    own = TargetOptions(board="nrf5340dk", chip="nrf5340", virtual=False,
                        openocd_config=["my.cfg"])
    assert openocd_script(own, None) == [("f", "my.cfg")]


def test_interface_must_be_a_name():
    with pytest.raises(UsageError, match="--openocd-config"):
        interface_config("/tmp/x.cfg")


def test_gdb_server_address_is_checked():
    assert check_gdb_server("localhost:2331") == "localhost:2331"
    for bad in ("localhost", ":2331", "host:port", "host:70000"):
        with pytest.raises(UsageError):
            check_gdb_server(bad)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.skipif(not shutil.which("openocd"), reason="openocd not installed")
def test_bad_config_is_a_target_error_quoting_openocd():
    server = OpenOcd([("f", "no-such-file.cfg")], ready_timeout_s=10)
    with pytest.raises(TargetError, match="Can't find no-such-file.cfg"):
        server.start()
    assert server.pid is None


@pytest.mark.skipif(not shutil.which("openocd"), reason="openocd not installed")
def test_never_ready_times_out_and_kills_the_group():
    # A dummy adapter with no target: OpenOCD runs but never serves GDB.
    server = OpenOcd([("c", "adapter driver dummy"), ("c", "transport select jtag")],
                     ready_timeout_s=1.5)
    with pytest.raises(TargetError, match="did not open its GDB port"):
        server.start()
    assert server.pid is None


def test_free_port_is_usable():
    assert 0 < free_tcp_port() < 65536


def test_sim_that_cannot_start_is_reported():
    sim = VirtualBoardProcess("no-such-board", ready_timeout_s=20)
    with pytest.raises(UsageError, match="^unknown virtual board 'no-such-board'"):
        sim.start()
    assert sim.pid is None


@pytest.mark.integration
@pytest.mark.skipif(not shutil.which("openocd"), reason="openocd not installed")
def test_failure_right_after_ready_still_stops_openocd(monkeypatch):
    """Anything raised once OpenOCD runs (here: the log call) must not leave it behind."""
    import qspi_gdb.transport.openocd as module

    class Boom(Exception):
        pass

    def explode(*_a, **_k):
        raise Boom()

    with VirtualBoardProcess("sim-nrf5340dk") as sim:
        server = OpenOcd([*sim.openocd_script(), ("f", "target/nrf5340.cfg")])
        monkeypatch.setattr(module._log, "info", explode)
        with pytest.raises(Boom):
            server.start()
        assert server.pid is None and server._proc is None


# What OpenOCD 0.12 logs for a healthy session with a blank nRF5340 (the virtual board), up to
# GDB's connection: our readiness probe is rejected, the blank chip's lockup is cleared.
HEALTHY_BLANK_LOG = """\
Info : [nrf5340.cpuapp] target has 8 breakpoints, 4 watchpoints
Info : starting gdb server for nrf5340.cpuapp on 41183
Info : Listening on port 41183 for gdb connections
Info : accepting 'gdb' connection on tcp/41183
Error: attempted 'gdb' connection rejected
Error: [nrf5340.cpuapp] clearing lockup after double fault
Polling target nrf5340.cpuapp failed, trying to reexamine
Info : [nrf5340.cpuapp] Cortex-M33 r0p4 processor detected
"""


def test_log_summary_drops_what_a_healthy_blank_target_logs():
    assert summarize_log(HEALTHY_BLANK_LOG, fallback=False) == ""
    assert summarize_log(HEALTHY_BLANK_LOG).endswith("Cortex-M33 r0p4 processor detected")
    failing = HEALTHY_BLANK_LOG + ("Info : accepting 'gdb' connection on tcp/41183\n"
                                   "Error: attempted 'gdb' connection rejected\n"
                                   "Error: Failed to read memory at 0xe000edf0\n")
    assert summarize_log(failing, fallback=False) == (
        "Error: attempted 'gdb' connection rejected | Error: Failed to read memory at 0xe000edf0")
    assert summarize_log("", fallback=False) == "" and summarize_log("") == "no output"


def test_log_summary_names_the_assertion_openocd_aborts_on():
    # OpenOCD 0.12's remote_bitbang driver asserts (SIGABRT) when the wire's socket closes
    aborted = HEALTHY_BLANK_LOG + (
        "openocd: src/jtag/drivers/remote_bitbang.c:196: remote_bitbang_read_sample: "
        "Assertion `!remote_bitbang_recv_buf_empty()' failed.\n")
    assert summarize_log(aborted, max_lines=2, fallback=False).endswith(
        "Assertion `!remote_bitbang_recv_buf_empty()' failed.")


class _FakeOpenOcd:
    log = HEALTHY_BLANK_LOG + "Error: Failed to read memory at 0xe000edf0\n"

    def __init__(self, script):
        self.gdb_address = "127.0.0.1:3333"

    def start(self):
        return self

    def close(self):
        pass

    def error_summary(self, max_lines=4, *, fallback=True):
        return summarize_log(self.log, max_lines, fallback=fallback)

    def stderr_text(self):
        return self.log

    def exit_status(self):
        return None


class _FakeGdbMi:
    def __init__(self, **_kw):
        pass

    start = close = lambda self: self

    def watch(self, *_args):
        pass


def _session_error(monkeypatch, raised: Exception) -> Exception:
    class Link:
        def __init__(self, *_a, **_kw):
            pass

        def connect(self, *_a, **_kw):
            raise raised

        def close(self):
            pass

    monkeypatch.setattr(session, "OpenOcd", _FakeOpenOcd)
    monkeypatch.setattr(session, "GdbMi", _FakeGdbMi)
    monkeypatch.setattr(session, "GdbLink", Link)
    options = TargetOptions(board="nrf5340dk", chip="nrf5340", virtual=False)
    with pytest.raises(type(raised)) as info:
        with open_session(options):
            pass
    return info.value


def test_openocd_errors_are_added_only_to_connection_failures(monkeypatch):
    connect = _session_error(monkeypatch, ConnectError("cannot connect to the GDB server"))
    assert str(connect) == ("cannot connect to the GDB server (OpenOCD: "
                            "Error: Failed to read memory at 0xe000edf0)")
    bad_elf = _session_error(monkeypatch, UsageError("x.elf: GDB cannot load it: not ELF"))
    assert str(bad_elf) == "x.elf: GDB cannot load it: not ELF"
    other = _session_error(monkeypatch, TargetError("gdb-multiarch exited"))
    assert str(other) == "gdb-multiarch exited"


def test_sim_refusing_its_input_is_a_usage_error_with_its_own_message(tmp_path):
    image = tmp_path / "small.img"
    image.write_bytes(b"\xff" * 1000)
    sim = VirtualBoardProcess("sim-nrf5340-32mb", image=image, ready_timeout_s=20)
    with pytest.raises(UsageError) as info:
        sim.start()
    message = str(info.value)
    assert message.startswith(f"--sim-image {image}: ") and "1000 bytes" in message
    assert "error:" not in message and "\n" not in message
    assert sim.pid is None


# -- issue 17: paths reach OpenOCD's Tcl quoted, user files resolved before it starts ---------


def test_tcl_word_keeps_any_path_one_literal_word():
    assert tcl_word("/tmp/qspi-sim-x1/board.sock") == "/tmp/qspi-sim-x1/board.sock"
    assert tcl_word("/tmp/x};exec touch /tmp/pwn;set y {/b.sock") == \
        '"/tmp/x\\};exec touch /tmp/pwn;set y \\{/b.sock"'
    assert tcl_word('a\\b"c$d[e]') == '"a\\\\b\\"c\\$d\\[e\\]"'
    with pytest.raises(UsageError, match="control character"):
        tcl_word("/tmp/a\nexec touch /tmp/pwn")


@pytest.mark.skipif(not shutil.which("openocd"), reason="openocd not installed")
def test_openocd_reads_quoted_words_and_config_paths_literally(tmp_path):
    """What OpenOCD's Jim Tcl makes of tcl_word(): the same text, nothing run."""
    words = [f"{tmp_path}/x}};exec touch {tmp_path}/pwn1;set y {{/b.sock",
             f'a\\b"c$d[exec touch {tmp_path}/pwn2]e]{{', "sp ace;#x", "a\\", "{a}"]
    odd_dir = tmp_path / "c};exec touch pwn3;set z {"
    odd_dir.mkdir()
    (odd_dir / "x.cfg").write_text("echo CONFIG-READ\n")
    script = [("c", f"set W{i} {tcl_word(w)}") for i, w in enumerate(words)]
    script += [("c", f"echo \"W{i}=[set W{i}]\"") for i in range(len(words))]
    script += [("f", str(odd_dir / "x.cfg")), ("c", "shutdown")]
    argv = OpenOcd(script).argv(0)
    argv[argv.index("gdb_port 0")] = "gdb_port disabled"
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=tmp_path)
    text = out.stdout + out.stderr
    for i, word in enumerate(words):
        assert f"W{i}={word}\n" in text
    assert "CONFIG-READ" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == [odd_dir.name]  # no pwn*


@pytest.mark.integration
@pytest.mark.skipif(not (shutil.which("openocd") and shutil.which("gdb-multiarch")),
                    reason="needs openocd and gdb-multiarch")
def test_tmpdir_holding_tcl_runs_nothing(tmp_path):
    """TMPDIR='/tmp/x};exec touch /tmp/pwn;set y {': the virtual board's socket lives there and
    its path goes to OpenOCD; the flash works and nothing is run."""
    base = Path(tempfile.mkdtemp(prefix="q17-", dir="/tmp"))  # short: UNIX socket paths
    try:
        evil = f"{base}/x}};exec touch {base}/pwn;set y {{"
        Path(evil).mkdir(parents=True)
        image = tmp_path / "i.bin"
        image.write_bytes(bytes(range(256)) * 16)
        done = subprocess.run(
            [sys.executable, "-m", "qspi_gdb", "flash", f"{image}@0x10000000", "--board",
             "sim-nrf5340dk"], env={**os.environ, "TMPDIR": evil}, cwd=REPO,
            capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr
        assert "verified 4 KiB" in done.stdout
        assert not (base / "pwn").exists()
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.integration
@pytest.mark.skipif(not (shutil.which("openocd") and shutil.which("gdb-multiarch")),
                    reason="needs openocd and gdb-multiarch")
def test_a_relative_openocd_config_is_found(tmp_path, monkeypatch, capsys):
    """OpenOCD runs in a temporary directory: `--openocd-config mycfg.cfg` is made absolute."""
    with VirtualBoardProcess("sim-nrf52840dk") as sim:
        (tmp_path / "mycfg.cfg").write_text(
            f"set SIM_SOCKET {tcl_word(str(sim.socket_path))}\n"
            "source [find interface/sim.cfg]\nsource [find target/nrf52840.cfg]\n")
        monkeypatch.chdir(tmp_path)
        code = main(["info", "--board", "sim-nrf52840dk", "--openocd-config", "mycfg.cfg"])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        assert "MX25R6435F" in captured.out
