"""Security properties as tests (issue 12): every listener qspi-gdb or its children open during
a flash is bound to 127.0.0.1 (read from /proc/net/tcp and tcp6 while it runs); the temporary
directories are private (0700) with the board's socket 0600, and gone afterwards; no code
builds a shell command (no shell=True, os.system, os.popen, or a command given as one string).
"""

from __future__ import annotations

import ast
import os
import random
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from process_tree import descendants

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "qspi_gdb"
needs_tools = pytest.mark.skipif(not (shutil.which("openocd") and shutil.which("gdb-multiarch")),
                                 reason="needs Debian openocd and gdb-multiarch")
LISTEN = "0A"


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    try:
        for fd in (Path(f"/proc/{pid}/fd")).iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    except OSError:
        pass
    return inodes


def listeners() -> dict[int, str]:
    """inode -> local address of every TCP socket in LISTEN state (IPv4 and IPv6)."""
    found = {}
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] != LISTEN:
                continue
            host, port = fields[1].split(":")
            found[int(fields[9])] = f"{_address(host, v6)}:{int(port, 16)}"
    return found


def _address(hex_host: str, v6: bool) -> str:
    raw = bytes.fromhex(hex_host)
    if not v6:
        return ".".join(str(b) for b in raw[::-1])
    words = [raw[i:i + 4][::-1] for i in range(0, 16, 4)]  # each 32-bit word little-endian
    return ":".join(b"".join(words)[i:i + 2].hex() for i in range(0, 16, 2))


@needs_tools
@pytest.mark.integration
def test_listeners_are_loopback_and_temporary_files_private_and_removed():
    tmp = Path(tempfile.mkdtemp(prefix="qsec-", dir="/tmp"))
    try:
        image = tmp / "app.bin"
        image.write_bytes(random.Random(3).randbytes(48 * 1024))
        env = {**os.environ, "TMPDIR": str(tmp)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "qspi_gdb", "flash", f"{image}@0x12010000", "--board",
             "sim-nrf52840dk", "--sim-image", str(tmp / "f.img"), "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=REPO)
        seen: dict[str, set[str]] = {}
        modes: dict[str, int] = {}
        while proc.poll() is None:
            pids = {proc.pid: "qspi-gdb", **descendants(proc.pid)}
            table = listeners()
            for pid, argv in pids.items():
                for inode in socket_inodes(pid) & table.keys():
                    seen.setdefault(table[inode], set()).add(argv.split(" ")[0])
            for entry in tmp.iterdir():
                if entry.name.startswith("qspi-"):
                    modes[entry.name] = stat.S_IMODE(entry.stat().st_mode)
                    sock = entry / "board.sock"
                    if sock.exists():
                        modes["board.sock"] = stat.S_IMODE(sock.stat().st_mode)
            time.sleep(0.05)
        assert proc.wait() == 0
        assert seen, "no listener seen during the flash"
        assert all(address.startswith("127.0.0.1:") for address in seen), seen
        assert any(name.startswith("qspi-sim-") for name in modes), modes
        for name, mode in modes.items():
            assert mode == (0o600 if name == "board.sock" else 0o700), (name, oct(mode))
        left = [p.name for p in tmp.iterdir() if p.name.startswith("qspi-")]
        assert left == []
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- no shell strings ----------------------------------------------------------------------------

_SUBPROCESS_CALLS = {"run", "Popen", "call", "check_call", "check_output", "spawn"}


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner = func.value.id if isinstance(func, ast.Attribute) and \
                isinstance(func.value, ast.Name) else ""
            yield node, owner, name


def test_no_code_builds_a_shell_command():
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node, owner, name in _calls(tree):
            where = f"{path.relative_to(REPO)}:{node.lineno}"
            if owner == "os" and name in ("system", "popen") or name.startswith("spawnl") or \
                    (owner == "os" and name.startswith(("exec", "spawn"))):
                problems.append(f"{where}: os.{name}")
            for kw in node.keywords:
                if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and
                                              kw.value.value is False):
                    problems.append(f"{where}: shell=...")
            if name in _SUBPROCESS_CALLS and owner in ("subprocess", "") and node.args:
                first = node.args[0]
                if isinstance(first, (ast.JoinedStr, ast.BinOp)) or (
                        isinstance(first, ast.Constant) and isinstance(first.value, str)):
                    problems.append(f"{where}: {name}() with a command string")
    assert problems == []


def test_the_shell_check_finds_what_it_looks_for():
    bad = ast.parse("import os, subprocess\nos.system('x')\nsubprocess.run('ls ' + p, shell=True)\n"
                    "subprocess.Popen(f'cat {p}')\n")
    names = [(owner, name) for _, owner, name in _calls(bad)]
    assert ("os", "system") in names and ("subprocess", "run") in names
    assert any(kw.arg == "shell" for node, _, _ in _calls(bad) for kw in node.keywords)
