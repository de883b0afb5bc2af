"""GDB/MI session: line parsing, token matching, deadlines, typed errors.

The fake-GDB tests run a tiny script that speaks MI; the real tests run gdb-multiarch on an ELF
compiled here with arm-none-eabi-gcc (no target needed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

from qspi_gdb.errors import ConnectionLost, TargetError
from qspi_gdb.transport.gdbmi import (
    GdbError,
    GdbExited,
    GdbMi,
    GdbTimeout,
    mi_quote,
    parse_line,
)


def test_parse_result_with_token():
    record = parse_line('12^done,value="3"\n')
    assert (record.kind, record.message, record.token, record.payload) == (
        "result", "done", 12, {"value": "3"})


def test_parse_exec_and_notify_are_told_apart():
    assert parse_line('*stopped,reason="breakpoint-hit"').kind == "exec"
    assert parse_line('=thread-group-added,id="i1"').kind == "notify"
    assert parse_line("(gdb) ").kind == "prompt"
    assert parse_line('~"text\\n"').payload == "text\n"
    assert parse_line("not mi at all").kind == "output"


def test_parse_large_memory_read_fast_path_matches_pygdbmi():
    contents = "ab" * 70000
    line = f'7^done,memory=[{{begin="0x20000000",offset="0x00000000",end="0x20011170",contents="{contents}"}}]'
    record = parse_line(line)
    assert record.token == 7 and record.message == "done"
    assert record.payload["memory"][0]["contents"] == contents
    assert record.payload["memory"][0]["begin"] == "0x20000000"


def test_mi_quote_escapes():
    assert mi_quote('monitor echo "a\\b"') == '"monitor echo \\"a\\\\b\\""'


FAKE_GDB = r'''
import sys, time
out = sys.stdout
def say(s):
    out.write(s + "\n"); out.flush()
say("(gdb) ")
for line in sys.stdin:
    line = line.strip()
    token = ""
    while line and line[0].isdigit():
        token += line[0]; line = line[1:]
    if line.startswith("-gdb-exit"):
        say(token + "^exit"); break
    if line.startswith("-gdb-set"):
        say(token + "^done"); say("(gdb) "); continue
    if line == "-stray":
        say("999^done,value=\"old\"")          # a late answer to a command we gave up on
        say('~"console text\\n"')
        say('*stopped,reason="signal-received"')
        say(token + '^done,value="mine"'); say("(gdb) ")
    elif line == "-fail":
        say(token + '^error,msg="it broke",code="undefined-command"'); say("(gdb) ")
    elif line == "-slow":
        time.sleep(5)
    elif line == "-die":
        sys.stderr.write("fatal: fake gdb died\n"); sys.stderr.flush(); sys.exit(3)
    elif line == "-continue":
        say(token + "^running"); say('*running,thread-id="all"'); say("(gdb) ")
        time.sleep(0.2); say('*stopped,reason="signal-received",frame={addr="0x20000010"}')
'''


@pytest.fixture
def fake_gdb(tmp_path):
    script = tmp_path / "fake_gdb.py"
    script.write_text(FAKE_GDB)
    launcher = tmp_path / "gdb"
    launcher.write_text(f"#!/bin/sh\nexec {sys.executable} {script}\n")
    launcher.chmod(0o755)
    session = GdbMi(program=str(launcher), default_timeout_s=3)
    yield session.start()
    session.close()


def test_token_matching_skips_stray_results_and_keeps_stream_and_exec(fake_gdb):
    result = fake_gdb.command("-stray")
    assert result.payload == {"value": "mine"}
    assert result.console_text == "console text\n"
    assert fake_gdb.wait_stopped(1)["reason"] == "signal-received"


def test_error_record_is_a_typed_exception(fake_gdb):
    with pytest.raises(GdbError) as info:
        fake_gdb.command("-fail")
    assert isinstance(info.value, TargetError)
    assert info.value.code == "undefined-command" and "it broke" in str(info.value)


def test_deadline_raises_timeout_and_ends_the_process(fake_gdb):
    pid = fake_gdb.pid
    with pytest.raises(GdbTimeout):
        fake_gdb.command("-slow", timeout_s=0.3)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_gdb_death_is_reported_with_its_stderr(fake_gdb):
    with pytest.raises(GdbExited, match="fake gdb died"):
        fake_gdb.command("-die")


def test_resume_then_wait_for_stop(fake_gdb):
    assert fake_gdb.command("-continue").message == "running"
    assert fake_gdb.wait_stopped(2)["frame"]["addr"] == "0x20000010"
    with pytest.raises(GdbTimeout):
        fake_gdb.wait_stopped(0.2)


def test_messages_name_the_command_never_its_payload(fake_gdb):
    """A memory write carries up to 128 KiB of hex: a stall must not paste it into the error."""
    payload = "ab" * 65536
    with pytest.raises(GdbTimeout) as info:
        fake_gdb.command(f"-data-write-memory-bytes 0x20000000 {payload}", timeout_s=0.3)
    assert str(info.value) == "gdb: no answer before the deadline (command: " \
                              "-data-write-memory-bytes)"
    long_error = GdbError("x" * 5000, command='-interpreter-exec console "monitor reset halt"')
    assert len(str(long_error)) < 300
    assert str(long_error).endswith('(command: console "monitor reset halt")')


def test_a_watched_process_that_ends_fails_the_wait_at_once(fake_gdb):
    """OpenOCD (or a virtual board) behind GDB died: said within a fraction of a second,
    not at the end of a deadline sized for flash work."""
    status = {"code": None}
    fake_gdb.watch("OpenOCD", lambda: status["code"], lambda: "Error: probe unplugged")
    assert fake_gdb.command("-continue").message == "running"
    assert fake_gdb.wait_stopped(2)["reason"] == "signal-received"  # still running: fine
    status["code"] = -9
    started = time.monotonic()
    with pytest.raises(ConnectionLost) as info:
        fake_gdb.wait_stopped(600)
    assert time.monotonic() - started < 2
    assert str(info.value) == "OpenOCD exited (killed by SIGKILL): Error: probe unplugged"
    with pytest.raises(ConnectionLost):  # and every later command too
        fake_gdb.command("-stray")


def test_the_process_the_others_depend_on_is_named_when_both_end(fake_gdb):
    """A killed virtual board takes OpenOCD along, and OpenOCD's exit may be seen first."""
    board_seen_ended_at = time.monotonic() + 0.2
    fake_gdb.watch("the virtual board", lambda: -9 if time.monotonic() > board_seen_ended_at
                   else None)
    fake_gdb.watch("OpenOCD", lambda: -6)
    with pytest.raises(ConnectionLost, match=r"^the virtual board exited \(killed by SIGKILL\)$"):
        fake_gdb.command("-stray")


def test_missing_program_is_a_target_error():
    with pytest.raises(GdbExited, match="cannot start"):
        GdbMi(program="/nonexistent/gdb").start()


needs_tools = pytest.mark.skipif(
    not (shutil.which("gdb-multiarch") and shutil.which("arm-none-eabi-gcc")),
    reason="gdb-multiarch / arm-none-eabi-gcc not installed",
)


@pytest.fixture(scope="module")
def arm_elf(tmp_path_factory):
    work = tmp_path_factory.mktemp("elf")
    source = work / "t.c"
    source.write_text(textwrap.dedent("""
        volatile unsigned mailbox[16] = {0x1234};
        void _start(void) { for (;;) __asm__("bkpt #0"); }
    """))
    elf = work / "t.elf"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-nostdlib", "-g",
                    "-Wl,-Ttext=0x20000000", "-Wl,-e,_start", "-o", str(elf), str(source)],
                   check=True)
    return elf


@needs_tools
@pytest.mark.integration
def test_real_gdb_session_without_target(arm_elf):
    with GdbMi() as gdb:
        gdb.command(f"-file-exec-and-symbols {mi_quote(str(arm_elf))}")
        size = gdb.command("-data-evaluate-expression sizeof(mailbox)").payload["value"]
        assert size == "64"
        address = gdb.command("-data-evaluate-expression &mailbox").payload["value"]
        assert "0x2000" in address
        assert "elf32-littlearm" in gdb.console("info files").console_text
        with pytest.raises(GdbError, match="No symbol"):
            gdb.command("-data-evaluate-expression no_such_symbol")
        with pytest.raises(GdbError) as info:
            gdb.command("-no-such-command")
        assert info.value.code == "undefined-command"
        # The session survives errors: the next command still gets its own answer.
        assert gdb.command("-data-evaluate-expression sizeof(mailbox)").payload["value"] == "64"
        pid = gdb.pid
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@needs_tools
@pytest.mark.integration
def test_real_gdb_connect_refused_is_typed():
    with GdbMi(default_timeout_s=20) as gdb:
        gdb.command("-gdb-set tcp auto-retry off")
        with pytest.raises(GdbError, match="(?i)connection refused|could not connect"):
            gdb.command("-target-select extended-remote 127.0.0.1:1")
