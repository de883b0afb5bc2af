"""Issue 16, through the real command line, without a target: the option names people already
type (west, nrfutil, pyOCD), global options anywhere, "did you mean", strict configs, the
flash-setting overrides, several images, honest dry-run figures, output control."""

from __future__ import annotations

import io
import json
import random
import re
import time
from pathlib import Path

import pytest
import structlog

from qspi_gdb import log
from qspi_gdb.cli import main
from qspi_gdb.cli.progress_view import ProgressView
from qspi_gdb.flash.progress import (
    ERASING,
    PROGRAMMING,
    PhaseFinished,
    PhaseProgress,
    PhaseStarted,
)

SIM = ["--board", "sim-nrf5340dk"]


@pytest.fixture(autouse=True)
def fresh_logging():
    yield
    structlog.reset_defaults()  # main() pointed structlog at this test's captured stderr


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.bin").write_bytes(random.Random("app").randbytes(65536))
    (tmp_path / "fs.bin").write_bytes(random.Random("fs").randbytes(32768))
    return tmp_path


def dry_run_json(capsys, *argv: str) -> dict:
    assert main([*argv, "--dry-run", "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def refusal(capsys, argv: list[str]) -> str:
    """A command line argparse or a job refuses: exit 2 and one error line, returned."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    errors = [line for line in capsys.readouterr().err.splitlines()
              if line.startswith("qspi-gdb")]
    assert len(errors) == 1, errors
    return errors[0]


# -- 1. option names ---------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", [["-i", "683123456"], ["--dev-id", "683123456"],
                                      ["--serial", "683123456"]])
def test_dash_i_is_the_probe_serial_as_in_zephyrs_runners(spelling, capsys, tmp_path):
    """-i/--dev-id (and issue 17's --serial, now a hidden alias) picks the probe; on a virtual
    board it names a running virtual board, and with none running it is refused before
    anything starts."""
    message = refusal(capsys, ["info", *SIM, *spelling])
    assert message.startswith("qspi-gdb: error: --dev-id 683123456: sim-nrf5340dk is a virtual "
                              "board and no virtual board with this serial number runs")
    assert message.endswith("or drop --dev-id")


def test_interface_has_no_short_form_and_serial_is_not_documented():
    from qspi_gdb.cli.main import build_parser, option_names

    flash = build_parser().commands["flash"]
    names = option_names(flash)
    assert "-i" in names and "--dev-id" in names and "--interface" in names
    assert "--serial" not in names  # hidden alias
    assert flash.parse_args(["x.bin", "-i", "SN1"]).serial == "SN1"
    assert flash.parse_args(["x.bin", "--serial", "SN1"]).serial == "SN1"


def test_erase_is_wests_chip_erase_and_verify_is_accepted(work, capsys):
    plan = dry_run_json(capsys, "flash", "app.bin@0x10010000", *SIM, "--erase", "--verify")
    assert plan["chip_erased"] is True and plan["plan"]["chip_erase"] is True
    assert dry_run_json(capsys, "flash", "app.bin@0x10010000", *SIM)["chip_erased"] is False
    message = refusal(capsys, ["flash", "app.bin@0x10010000", *SIM, "--verify", "--no-verify"])
    assert "--no-verify: not allowed with argument --verify" in message


def test_global_options_before_and_after_the_command(work, capsys):
    for argv in (["--json", "flash", "app.bin@0x10010000", *SIM, "--dry-run"],
                 ["flash", "app.bin@0x10010000", *SIM, "--dry-run", "--json"],
                 ["-q", "flash", "app.bin@0x10010000", *SIM, "--dry-run", "--json", "-v"],
                 ["--log-format", "json", "flash", "app.bin@0x10010000", *SIM, "--json",
                  "--dry-run", "--no-progress"]):
        assert main(argv) == 0, argv
        assert json.loads(capsys.readouterr().out)["dry_run"] is True
    from qspi_gdb.cli.main import _settle_output_options, build_parser

    args = build_parser().parse_args(["-v", "info", *SIM, "-v", "-q"])
    _settle_output_options(args)
    assert (args.verbose, args.quiet) == (2, True)
    args = build_parser().parse_args(["-q", "info", *SIM])  # absent after: kept from before
    _settle_output_options(args)
    assert (args.verbose, args.quiet, args.json) == (0, True, False)


@pytest.mark.parametrize("argv,expected", [
    (["flsh", "x.bin"], "qspi-gdb: error: unknown command 'flsh' (did you mean 'flash'?); "
     "commands: flash, verify, read, erase, info, gdb-script, probes, recover, selftest, sim, demo (see 'qspi-gdb --help')"),
    (["flash", "x.bin", *SIM, "--erse"], "qspi-gdb: error: unrecognized arguments: --erse "
     "(did you mean --erase?) (see 'qspi-gdb flash --help')"),
    (["info", *SIM, "--flash-sise", "8M"], "qspi-gdb: error: unrecognized arguments: "
     "--flash-sise (did you mean --flash-size?) 8M (see 'qspi-gdb info --help')"),
    (["--log-format", "jsn", "info"], "qspi-gdb: error: argument --log-format: invalid choice: "
     "'jsn' (did you mean 'json'?) (choose from 'console', 'plain', 'json') (see 'qspi-gdb info "
     "--help')"),
    (["flash", "x.bin@0x10000000", "--board", "nrf5340-dk", "--dry-run"],
     "qspi-gdb: error: unknown board 'nrf5340-dk' (did you mean 'nrf5340dk'?); known: "
     "nrf52840dk, nrf5340dk, sim-nrf52840dk, sim-nrf5340dk, sim-nrf5340-32mb, sim-nrf52840-32mb"),
    (["info", *SIM, "--readoc", "READ4"], "qspi-gdb: error: command line: --readoc 'READ4' is "
     "not one of FASTREAD, READ2O, READ2IO, READ4O, READ4IO (did you mean 'READ4O'?)"),
])
def test_did_you_mean(argv, expected, capsys):
    assert refusal(capsys, argv) == expected


def test_an_unknown_option_far_from_every_name_gets_no_guess(capsys):
    assert refusal(capsys, ["erase", "--bogus"]) == (
        "qspi-gdb: error: unrecognized arguments: --bogus (see 'qspi-gdb erase --help')")


# -- 2. strict configs ---------------------------------------------------------------------


CONFIGS = {
    "typo.json": ('{"firmware_config": {"peripheral": "QSPI"}, "flash_sise": 8388608, '
                  '"adress_mode": "MODE24BIT"}',
                  'typo.json: unknown keys "adress_mode" (did you mean "address_mode"?), '
                  '"flash_sise" (did you mean "flash_size"?)'),
    "pins.json": ('{"firmware_config": {"peripheral": "QSPI"}, "pins": {"sck": 17, "csn": 18, '
                  '"io0": 13, "io1": 14, "io22": 15}}',
                  'pins.json: unknown key "pins.io22" (did you mean "pins.io2"?)'),
    "typo.ini": ("[DEFAULT_CONFIGURATION]\nReadMod = READ4IO\n",
                 'typo.ini: unknown key "ReadMod" (did you mean "ReadMode"?)'),
    "typo.toml": ("[qspi]\nread_mode = 'READ4IO'\n[qspi.dio0]\npin = 13\nprot = 0\n",
                  'typo.toml: unknown key "qspi.dio0.prot" (did you mean "qspi.dio0.port"?)'),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_an_unknown_config_key_is_an_error_naming_file_key_and_nearest_key(name, work, capsys):
    text, message = CONFIGS[name]
    (work / name).write_text(text)
    never = work / "never.img"
    error = refusal(capsys, ["flash", "app.bin@0x10010000", *SIM, "-c", name,
                             "--sim-image", str(never)])
    assert error == (f"qspi-gdb: error: {message}; --allow-unknown-keys ignores keys of newer "
                     "versions with a warning")
    assert not never.exists()  # refused before anything started


def test_allow_unknown_keys_reads_a_newer_file_with_a_warning(work, capsys):
    (work / "newer.json").write_text('{"firmware_config": {"peripheral": "QSPI"}, '
                                     '"flash_size": 8388608, "compress": true}')
    assert main(["flash", "app.bin@0x10010000", *SIM, "-c", "newer.json", "--dry-run",
                 "--allow-unknown-keys", "--log-format", "json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert records == [{"event": "ignoring unknown keys (--allow-unknown-keys)",
                        "source": "newer.json", "keys": ["compress"], "level": "warning",
                        "timestamp": records[0]["timestamp"]}]


# -- 3. overrides of the config layers -------------------------------------------------------


def test_command_line_settings_override_the_config_file_named_as_its_keys(work, capsys):
    (work / "ext.json").write_text('{"firmware_config": {"peripheral": "QSPI"}, '
                                   '"address_mode": "MODE32BIT", "flash_size": 33554432}')
    big = work / "big.bin"
    big.write_bytes(bytes(4096))
    base = ["flash", "big.bin@0x11000000", "--board", "sim-nrf5340-32mb", "-c", "ext.json"]
    assert dry_run_json(capsys, *base)["plan"]["address_mode"] == 32
    error = refusal(capsys, [*base, "--address-mode", "MODE24BIT", "--dry-run"])
    assert error == ("qspi-gdb: error: big.bin: image data at flash offset 0x01000000 (XIP "
                     "0x11000000) is at or above 16 MiB but the address mode is MODE24BIT "
                     "(command line); 24-bit addresses reach only 0x00FFFFFF: use MODE32BIT")
    plan = dry_run_json(capsys, "flash", "app.bin@0x10010000", *SIM, "--page-size", "65536",
                        "--flash-size", "8M")["plan"]
    assert plan["sector_size"] == 65536 and plan["flash_size"] == 8 << 20
    assert refusal(capsys, ["info", *SIM, "--flash-size", "12345"]) == (
        "qspi-gdb: error: command line: --flash-size 12345 must be a power of two of at least "
        "4096 (bytes)")
    assert refusal(capsys, ["info", *SIM, "--pins", "sck=3"]).startswith(
        "qspi-gdb: error: command line: nrf5340 QSPI uses fixed pins; config gives sck 3")


def test_every_override_reaches_its_layer_with_the_command_line_as_source():
    from qspi_gdb.cli.main import build_parser
    from qspi_gdb.cli.options import target_spec
    from qspi_gdb.flash.jobs import preset_config

    args = build_parser().commands["info"].parse_args([
        "--board", "nrf52840dk", "--flash-size", "8M", "--address-mode", "MODE24BIT",
        "--readoc", "READ2IO", "--writeoc", "PP2O", "--pp-size", "PPSIZE256",
        "--page-size", "4096", "--sck-frequency", "16M", "--sck-delay", "10",
        "--rx-delay", "3", "--spi-mode", "MODE3", "--pins", "sck=3,csn=4,io0=5,io1=6",
        "--jedec-id", "C22817"])
    cfg = preset_config(target_spec(args))
    assert (cfg.size, cfg.address_mode, cfg.readoc, cfg.writeoc, cfg.pp_size, cfg.sector_size,
            cfg.sck_frequency, cfg.sck_delay, cfg.rx_delay, cfg.spi_mode) == (
        8 << 20, 24, "READ2IO", "PP2O", 256, 4096, 16_000_000, 10, 3, 3)
    assert (cfg.pins.sck, cfg.pins.csn, cfg.pins.io0, cfg.pins.io1) == (3, 4, 5, 6)
    for key in ("size", "address_mode", "readoc", "writeoc", "pp_size", "sector_size",
                "sck_frequency", "sck_delay", "rx_delay", "spi_mode", "pins",
                "expected_jedec_id"):
        assert cfg.sources[key] == "command line", key
    lines = "\n".join(cfg.describe())
    assert "read READ2IO  [command line]" in lines and "rx_delay 3  [command line]" in lines


# -- 4. honest figures, and what the dry run says about the chip ------------------------------


def test_dry_run_says_the_chip_is_assumed_and_names_the_probe_profile(work, capsys):
    assert main(["flash", "app.bin@0x10010000", "--board", "nrf5340dk", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "  flash: MX25R6435F (8 MiB, assumed from preset nrf5340dk, not detected), " \
           "MODE24BIT\n" in out
    assert re.search(r"  estimated time: [\d.]+ s with a jlink-ob probe \(the DK's on-board "
                     r"J-Link\): reading [\d.]+ s, erase \+ program [\d.]+ s \(flash busy "
                     r"[\d.]+ s, transfer [\d.]+ s, \d+ loader calls of \d+ ms each\), verify "
                     r"[\d.]+ s; from detection on, start-up not included\n", out), out
    assert "; MX25R6435F (8 MiB, assumed from preset nrf5340dk, not detected). Finished" in out
    for argv, profile in ((["--interface", "cmsis-dap"], "cmsis-dap-hs"),
                          (["--interface", "stlink"], "cmsis-dap-hs")):
        est = dry_run_json(capsys, "flash", "app.bin@0x10010000", "--board", "nrf5340dk",
                           *argv)["plan"]["estimate"]
        assert est["profile"] == profile
    est = dry_run_json(capsys, "flash", "app.bin@0x10010000", *SIM)["plan"]["estimate"]
    assert est["profile"] == "cmsis-dap-hs" and "virtual board" in est["profile_reason"]
    assert est["total_s"] == pytest.approx(est["read_s"] + est["write_s"] + est["verify_s"],
                                           abs=2e-3)


def test_units_are_kib_and_mib(work, capsys):
    assert main(["flash", "app.bin@0x10010000", "fs.bin@0x10100000", *SIM, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "64KB" not in out and "kB" not in out and "byte(s)" not in out
    assert "1 block of 64 KiB + 8 sectors of 4 KiB (96 KiB)" in out


def test_erase_dry_run_says_where_and_on_what(capsys):
    assert main(["erase", "0x10010000", "0x11000", *SIM, "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith(
        "Would erase 0x00010000..0x00020FFF (68 KiB: 1 block of 64 KiB + 1 sector of 4 KiB); "
        "MX25R6435F (8 MiB, assumed from preset sim-nrf5340dk, not detected). Finished in ")
    result = dry_run_json(capsys, "erase", "--all", *SIM)
    assert result["range"] == {"offset": 0, "length": 8 << 20} and result["chip_erased"]


def test_what_needs_no_target_is_refused_before_anything_starts(work, capsys):
    never = work / "never.img"
    (work / "cfg24.json").write_text('{"firmware_config": {"peripheral": "QSPI"}, '
                                     '"flash_size": 33554432, "address_mode": "MODE24BIT"}')
    started = time.monotonic()
    for argv, message in (
        (["erase", "--all", "--board", "sim-nrf5340-32mb", "-c", "cfg24.json"],
         "erase --all: the 32 MiB chip cannot be verified above 16 MiB in 24-bit address mode "
         "(cfg24.json); use MODE32BIT"),
        (["erase", "0x10001000", "0x800", *SIM], "erase range 0x00001000+0x800 must be whole "
         "4 KiB sectors (offset and length multiples of 0x1000)"),
        (["flash", "app.bin@0x10010000", "fs.bin@0x10018000", *SIM],
         "app.bin (flash offsets 0x00010000..0x0001FFFF) and fs.bin (0x00018000..0x0001FFFF) "
         "overlap at flash offset 0x00018000"),
        (["flash", "app.bin", "fs.bin", "--addr", "0x10010000", *SIM],
         "--addr 0x10010000 applies to one image; with several, give each .bin its address as "
         "FILE@ADDR"),
        (["read", "0x10010000", "16", "-o", "-", *SIM, "--json"],
         "read -o - writes the data on stdout, where --json would write the result object "
         "too: use -o FILE with --json"),
    ):
        assert refusal(capsys, [*argv, "--sim-image", str(never)]) == \
            f"qspi-gdb: error: {message}"
    assert time.monotonic() - started < 5 and not never.exists()


# -- 5. output control -------------------------------------------------------------------------


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_no_color_is_honoured(monkeypatch):
    stream = _Tty()
    monkeypatch.delenv("NO_COLOR", raising=False)
    log.configure(0, fmt="console", stream=stream)
    log.get_logger("t").warning("coloured")
    assert "\x1b[" in stream.getvalue()
    stream = _Tty()
    monkeypatch.setenv("NO_COLOR", "1")
    log.configure(0, fmt="console", stream=stream)
    log.get_logger("t").warning("plain")
    assert "\x1b[" not in stream.getvalue() and "plain" in stream.getvalue()


def test_error_line_not_red_with_no_color(monkeypatch, capsys):
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setattr("sys.stderr", _Tty())
    import sys

    assert main(["info", "--board", "nrf9999dk"]) == 2
    assert "\x1b[" not in sys.stderr.getvalue()
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setattr("sys.stderr", _Tty())
    assert main(["info", "--board", "nrf9999dk"]) == 2
    assert sys.stderr.getvalue().startswith("qspi-gdb: \x1b[1;31merror:")


def test_log_formats_and_quiet(monkeypatch):
    records = {}
    for fmt in ("plain", "json", "console"):
        stream = io.StringIO()
        log.configure(0, fmt=fmt, stream=stream)
        log.get_logger("t").info("openocd ready", pid=42)
        log.get_logger("t").debug("hidden")
        log.traffic(log.get_logger("t"), "gdb <-", line="-exec-continue")
        records[fmt] = stream.getvalue()
    assert re.fullmatch(r"\d\d:\d\d:\d\d info    openocd ready pid=42\n", records["plain"])
    assert json.loads(records["json"])["event"] == "openocd ready"
    assert "openocd ready" in records["console"] and "hidden" not in records["console"]
    stream = io.StringIO()
    log.configure(1, fmt="plain", stream=stream)
    log.get_logger("t").debug("step")
    log.traffic(log.get_logger("t"), "gdb <-", line="-exec-continue")
    assert "step" in stream.getvalue() and "gdb <-" not in stream.getvalue()  # -v
    stream = io.StringIO()
    log.configure(2, fmt="plain", stream=stream)
    log.traffic(log.get_logger("t"), "gdb <-", line="-exec-continue")
    assert "gdb <- line=-exec-continue" in stream.getvalue() and "_traffic" not in \
        stream.getvalue()  # -vv
    stream = io.StringIO()
    log.configure(0, fmt="plain", stream=stream, quiet=True)
    log.get_logger("t").info("openocd ready")
    log.get_logger("t").warning("careful")
    assert "openocd ready" not in stream.getvalue() and "careful" in stream.getvalue()


def test_progress_modes_follow_the_output_options():
    from qspi_gdb.cli.progress_view import progress_mode

    assert progress_mode("console", tty=True) == "bar"
    assert progress_mode("console", tty=False) == "lines"
    assert progress_mode("plain", tty=True) == "lines"
    assert progress_mode("json", tty=True) == "events"
    assert progress_mode("console", tty=True, quiet=True) == "off"
    assert progress_mode("json", tty=False, no_progress=True) == "off"


def test_every_running_phase_reports_at_a_steady_rate(monkeypatch):
    """Programming's frequent events must not swallow Erasing's (they share the pipeline):
    each phase is throttled on its own."""
    clock = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    stream = io.StringIO()
    view = ProgressView(stream, mode="lines", interval_s=1.0)
    view(PhaseStarted(ERASING, 8 << 16))
    view(PhaseStarted(PROGRAMMING, 8 << 16))
    for step in range(1, 41):  # 4 s: programming reports every 0.1 s, erasing every 0.4 s
        clock[0] += 0.1
        view(PhaseProgress(PROGRAMMING, step * 8192, 8 << 16))
        if step % 4 == 0:
            view(PhaseProgress(ERASING, step // 4 * 65536 // 2, 8 << 16))
    lines = stream.getvalue().splitlines()
    erasing = [line for line in lines if line.startswith("Erasing:")]
    programming = [line for line in lines if line.startswith("Programming:")]
    assert len(erasing) >= 4 and len(programming) >= 4, lines
    done = [int(re.match(r"Erasing: (\d+) KiB", line)[1]) for line in erasing[1:]]
    assert done == sorted(set(done)) and done[-1] >= 256  # news each time, up to the end


def test_a_phase_without_events_is_reported_again_by_the_heartbeat():
    """A chip erase gives no event for a minute: the log must not fall silent."""
    stream = io.StringIO()
    view = ProgressView(stream, mode="lines", interval_s=0.05, heartbeat=True)
    view(PhaseStarted(ERASING, 32 << 20))
    time.sleep(0.4)
    view(PhaseFinished(ERASING, 32 << 20, 0.4))
    view.close()
    lines = stream.getvalue().splitlines()
    assert len([line for line in lines if line.startswith("Erasing: 0 B / 32 MiB")]) >= 3
    assert lines[-1].startswith("Erasing: 32 MiB done in 0.40s")


def test_json_progress_events_carry_rate_and_time_and_no_absurd_rate():
    stream = io.StringIO()
    log.configure(0, fmt="json", stream=stream)
    view = ProgressView(io.StringIO(), mode="events")
    view(PhaseStarted(PROGRAMMING, 4096))
    view(PhaseFinished(PROGRAMMING, 4096, 0.0))
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [r["event"] for r in records] == ["progress", "progress"]
    assert records[-1]["rate_KiBps"] is None and records[-1]["finished"] is True
