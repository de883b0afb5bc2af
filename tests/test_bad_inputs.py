"""Every kind of bad input a user can give, as one table (issue 12): each is refused with one
line naming the problem, the documented exit code, a valid --json object with ok: false, no
traceback, and the virtual board's flash file byte for byte as it was.

Most rows are refused before anything starts (the command line in-process); the rows only the
target can refuse (a JEDEC ID the chip does not answer, a GDB server that is closed or speaks
something else) run the real CLI with the real OpenOCD and gdb-multiarch.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from intelhex import IntelHex

from qspi_gdb.cli import main

REPO = Path(__file__).resolve().parent.parent
needs_tools = pytest.mark.skipif(not (shutil.which("openocd") and shutil.which("gdb-multiarch")),
                                 reason="needs Debian openocd and gdb-multiarch")
BOARD = "sim-nrf52840dk"  # 8 MiB MX25R6435F, XIP base 0x12000000
FLASH_SIZE = 8 << 20


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Every input file the table names, made once."""
    d = tmp_path_factory.mktemp("bad inputs")  # a space in every path, on purpose
    made: dict[str, Path] = {"dir": d}

    def put(name: str, data: bytes | str) -> None:
        path = d / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        made[name] = path

    put("app.bin", bytes(range(256)) * 32)
    put("empty.bin", b"")
    put("big.bin", bytes(64 * 1024))
    ih = IntelHex()
    ih.frombytes(bytes(range(256)) * 8, offset=0x12010000)
    hex_path = d / "good.hex"
    ih.write_hex_file(str(hex_path))
    lines = hex_path.read_text().splitlines(keepends=True)
    put("truncated.hex", "".join(lines[:-1]))
    put("garbage.hex", ":10000000ZZ\n" + "".join(lines))
    put("checksum.hex", "".join([lines[0], lines[1][:-3] + "00\n", *lines[2:]]))
    ih2 = IntelHex()
    ih2.frombytes(bytes(512), offset=0x12010400)
    ih2.write_hex_file(str(d / "overlap.hex"))
    made["overlap.hex"], made["good.hex"] = d / "overlap.hex", hex_path
    elf = Path(sys.executable).resolve().read_bytes()  # an x86-64 (not ARM) ELF
    put("x86.elf", elf[:65536] if len(elf) > 65536 else elf)
    put("cut.elf", b"\x7fELF\x01\x01\x01" + bytes(9) + b"\x02\x00\x28\x00")
    put("bad.json", '{"flash_size": ')
    put("unknown-key.json", json.dumps({"flash_size": 8388608, "flash_sise": 1}))
    put("contradict.json", json.dumps({"flash_size": 8388608, "address_mode": "MODE32BIT",
                                       "sck_frequency": -5}))
    put("bad.ini", "[DEFAULT_CONFIGURATION]\nMemSize = banana\n")
    put("garbage.ini", "this is not an ini file\n[[[\n")
    put("bad.toml", "flash_size = [1, \n")
    return made


@pytest.fixture
def flash_image(tmp_path) -> Path:
    """A virtual board's flash file with a known pattern; no refused command may change it."""
    path = tmp_path / "flash.img"
    path.write_bytes(bytes((i * 7 + (i >> 12)) & 0xFF for i in range(4096)) * (FLASH_SIZE // 4096))
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def evil_name(d: Path) -> Path:
    return d / "a b'c\"$(touch pwned).bin"


# (kind, argv with {placeholders}, exit code, words the message must hold)
TABLE = [
    ("missing file", ["flash", "{dir}/nope.bin@0x12000000"], 2, "no such file"),
    ("empty file", ["flash", "{empty.bin}@0x12000000"], 2, "empty"),
    ("directory as image", ["flash", "{dir}@0x12000000"], 2, "directory"),
    ("garbage .hex", ["flash", "{garbage.hex}"], 2, "garbage.hex"),
    ("truncated .hex", ["flash", "{truncated.hex}"], 2, "no end-of-file record"),
    ("bad .hex checksum", ["flash", "{checksum.hex}"], 2, "checksum"),
    ("overlapping images", ["flash", "{good.hex}", "{overlap.hex}"], 2, "overlap"),
    ("truncated .elf", ["flash", "{cut.elf}"], 2, "cut.elf"),
    ("non-ARM .elf", ["flash", "{x86.elf}"], 2, "x86.elf"),
    (".bin without an address", ["flash", "{app.bin}"], 2, "address"),
    ("unparsable address", ["flash", "{app.bin}@0xZZ"], 2, "not a number"),
    ("negative address", ["flash", "{app.bin}", "--addr", "-4096"], 2, "-4096"),
    ("huge address", ["flash", "{app.bin}@0xFFFFFFFFFFFF"], 2, "0xFFFFFFFFFFFF"),
    ("image past the chip end", ["flash", "{big.bin}@0x127F8000"], 2, "past the end"),
    ("16 MiB and more in 24-bit mode", ["flash", "{app.bin}@0x11000000", "--board",
                                        "sim-nrf5340-32mb", "--address-mode", "24"], 2, "24"),
    ("malformed JSON config", ["flash", "{app.bin}@0x12000000", "-c", "{bad.json}"], 2,
     "bad.json"),
    ("unknown key in a config", ["flash", "{app.bin}@0x12000000", "-c", "{unknown-key.json}"],
     2, "flash_sise"),
    ("contradictory config values", ["flash", "{app.bin}@0x12000000", "-c",
                                     "{contradict.json}"], 2, "contradict.json"),
    ("bad value in an ini config", ["flash", "{app.bin}@0x12000000", "-c", "{bad.ini}"], 2,
     "bad.ini"),
    ("malformed ini config", ["flash", "{app.bin}@0x12000000", "-c", "{garbage.ini}"], 2,
     "garbage.ini"),
    ("malformed TOML config", ["flash", "{app.bin}@0x12000000", "-c", "{bad.toml}"], 2,
     "bad.toml"),
    ("unknown board", ["flash", "{app.bin}@0x12000000", "--board", "nrf5340-dk"], 2,
     "unknown board"),
    ("unknown interface", ["flash", "{app.bin}@0x10000000", "--board", "nrf5340dk",
                           "--interface", "no-such-probe"], 2, "no-such-probe"),
    ("bad read range", ["read", "0x12000000", "0", "-o", "{dir}/out.bin"], 2, "length"),
    ("read past the chip end", ["read", "0x127FFFF0", "64", "-o", "{dir}/out.bin"], 2, "end"),
    ("unaligned erase range", ["erase", "0x12000100", "4096"], 2, "sector"),
    ("name with spaces, quotes and $()", ["flash", "{evil}@0x12000000"], 2, "no such file"),
    ("name with a leading dash", ["flash", "-evil.bin@0x12000000"], 2, "-evil.bin"),
    ("speed of 0 kHz", ["flash", "{app.bin}@0x12000000", "--speed", "0"], 2, "speed"),
]


def fill(argv: list[str], files: dict[str, Path]) -> list[str]:
    out = []
    for arg in argv:
        for name, path in {**files, "evil": evil_name(files["dir"])}.items():
            arg = arg.replace("{" + name + "}", str(path))
        out.append(arg)
    return out


def check_refusal(code: int, out: str, err: str, expected_code: int, words: str) -> str:
    assert code == expected_code, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("qspi-gdb")]
    assert len(lines) == 1, err
    result = json.loads(out.splitlines()[-1])
    assert result["ok"] is False and result["error"]["exit_code"] == expected_code
    assert words.lower() in lines[0].lower(), lines[0]
    assert "internal error" not in lines[0]
    return lines[0]


def test_the_table_has_at_least_25_kinds():
    assert len({kind for kind, *_ in TABLE}) >= 25


@pytest.mark.parametrize("kind, argv, code, words", TABLE, ids=[row[0] for row in TABLE])
def test_bad_input_is_refused_cleanly_and_the_flash_is_untouched(
        kind, argv, code, words, files, flash_image, capsys, monkeypatch):
    monkeypatch.chdir(files["dir"])
    argv = fill(argv, files)
    if "--board" not in argv:
        argv += ["--board", BOARD]
    uses_sim = any(a.startswith("sim-") for a in argv)
    if uses_sim:
        argv += ["--sim-image", str(flash_image)]
    if "sim-nrf5340-32mb" in argv:
        with open(flash_image, "r+b") as f:  # the 32 MiB part's file, the pattern repeated
            data = f.read()
            f.write(data * 3)
    before = digest(flash_image)
    try:
        got = main([*argv, "--json"])
    except SystemExit as exc:  # argparse's refusals end the program the same way
        got = exc.code
    captured = capsys.readouterr()
    check_refusal(got, captured.out, captured.err, code, words)
    assert digest(flash_image) == before
    assert not (files["dir"] / "pwned").exists()


# -- refusals only the target or the server can give -----------------------------------------


def run_cli(*argv: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qspi_gdb", *argv, "--json"], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


@needs_tools
@pytest.mark.integration
def test_a_jedec_id_the_chip_does_not_answer_is_refused_and_nothing_is_written(
        files, flash_image):
    before = digest(flash_image)
    done = run_cli("flash", f"{files['app.bin']}@0x12000000", "--board", BOARD,
                   "--sim-image", str(flash_image), "--jedec-id", "9D7019")
    line = check_refusal(done.returncode, done.stdout, done.stderr, 2, "JEDEC ID mismatch")
    assert "C22817" in line
    assert digest(flash_image) == before


@needs_tools
@pytest.mark.integration
def test_a_closed_gdb_server_is_a_connection_failure(files):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    done = run_cli("flash", f"{files['app.bin']}@0x10000000", "--board", "nrf5340dk",
                   "--gdb-server", f"127.0.0.1:{port}")
    check_refusal(done.returncode, done.stdout, done.stderr, 3, f"{port}")


@needs_tools
@pytest.mark.integration
def test_a_gdb_server_that_speaks_something_else_is_a_connection_failure(files):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    port = server.getsockname()[1]
    stop = threading.Event()

    def answer_http() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                try:
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass

    thread = threading.Thread(target=answer_http, daemon=True)
    thread.start()
    try:
        done = run_cli("flash", f"{files['app.bin']}@0x10000000", "--board", "nrf5340dk",
                       "--gdb-server", f"127.0.0.1:{port}")
        check_refusal(done.returncode, done.stdout, done.stderr, 3, "")
    finally:
        stop.set()
        thread.join(5)
        server.close()
