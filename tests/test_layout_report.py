"""`--layout plan.svg` (the plan as a picture) and `--report junit.xml` (JUnit for CI): the
sector classification, the SVG's structure, the JUnit file's structure, the README example."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import pytest
from readme_examples import readme_example

from qspi_gdb.cli.main import main
from qspi_gdb.flash.plan import image_checks, plan
from qspi_gdb.flash.plan_svg import (
    STATES,
    SVG_NS,
    render_svg,
    sector_states,
    touched_region,
)
from qspi_gdb.inputs.detect import apply_chip
from qspi_gdb.inputs.flash_config import build_config
from qspi_gdb.inputs.image import image_from_segments
from qspi_gdb.inputs.parts import IS25WP256_SFDP
from qspi_gdb.inputs.sfdp_decode import parse_sfdp

IS25 = apply_chip(build_config("sim-nrf5340-32mb"), jedec_id=bytes.fromhex("9D7019"),
                  sfdp=parse_sfdp(IS25WP256_SFDP))
S = 4096
LIMIT = 16 << 20
NS = {"svg": SVG_NS}
TOOLS = all(shutil.which(t) for t in ("openocd", "gdb-multiarch"))


def _image(offset: int, data: bytes):
    return image_from_segments([(offset, data)], xip_base=IS25.xip_base, path="img.bin")


def _mixed_plan():
    """Across the 16 MiB line: a partly covered first sector (keep), whole sectors (write), a
    64 KiB block of 0xFF (blank), and one sector whose CRC already matches (unchanged)."""
    start = LIMIT - 2 * S + 2048
    data = bytearray(os.urandom(2 * S - 2048 + 3 * 65536))
    blank_at = LIMIT + 65536 - start  # the second block after the line is all 0xFF
    data[blank_at:blank_at + 65536] = b"\xff" * 65536
    image = _image(start, bytes(data))
    same = LIMIT - S  # this sector already holds the image
    crcs = {c.range: (c.crc32 if c.range.offset == same else c.crc32 ^ 1)
            for c in image_checks(image, S)}
    return plan(image, IS25, sector_crcs=crcs)


def test_sector_states_name_each_kind_of_work():
    the_plan = _mixed_plan()
    states = {s.offset: s.state for s in sector_states(the_plan)}
    assert states[LIMIT - 2 * S] == "keep"  # image from +2048, the rest read back
    assert states[LIMIT - S] == "unchanged"
    assert states[LIMIT] == "write"
    assert all(states[LIMIT + 65536 + i * S] == "blank" for i in range(16))
    assert states[LIMIT + 2 * 65536] == "write"
    assert states[touched_region(the_plan).offset] == "untouched"
    assert set(states.values()) <= set(STATES)


def test_svg_has_the_chip_the_16mib_line_the_sectors_and_a_legend():
    the_plan = _mixed_plan()
    root = ET.fromstring(render_svg(the_plan, done=True))
    assert root.tag == f"{{{SVG_NS}}}svg"
    region = touched_region(the_plan)
    cells = root.findall(".//svg:g[@class='sectors']/svg:rect", NS)
    sectors = [c for c in cells if c.get("class").startswith("sector ")]
    assert len(sectors) == region.length // S
    by_state = {}
    for cell in sectors:
        by_state.setdefault(cell.get("class").split()[1], []).append(cell)
    assert {"keep", "unchanged", "write", "blank", "untouched"} <= set(by_state)
    assert len(by_state["blank"]) == 16
    assert by_state["keep"][0].get("fill") == STATES["keep"][0]
    assert "0x00FFE000 (XIP 0x10FFE000): keep" in by_state["keep"][0].find("svg:title", NS).text
    # chip outline and the 16 MiB line in the overview and in the zoomed grid
    assert root.find(".//svg:rect[@class='chip-outline']", NS) is not None
    assert len(root.findall(".//svg:line[@class='limit-16mib']", NS)) == 2
    assert root.find(".//svg:rect[@class='zoom-region']", NS) is not None
    assert len(root.findall(".//svg:rect[@class='block-erase']", NS)) >= 1
    legend = [t.text for t in root.findall(".//svg:g[@class='legend']/svg:text", NS)]
    assert any(text.startswith("erase only") and "16 sector(s)" in text for text in legend)
    assert len(root.findall(".//svg:g[@class='legend']/svg:rect", NS)) == len(STATES)
    assert root.find("svg:title", NS).text == "qspi-gdb flash layout: img.bin"


def test_svg_escapes_names_and_marks_a_chip_erase():
    image = image_from_segments([(0, b"\x01" * 100)], xip_base=IS25.xip_base,
                                path="a<b>&\"c\".bin")
    text = render_svg(plan(image, IS25, chip_erase=True))
    root = ET.fromstring(text)  # well-formed despite the name
    assert "a<b>&\"c\".bin" in root.find("svg:title", NS).text
    assert root.find(".//svg:rect[@class='chip-erase']", NS) is not None
    states = [c.get("class") for c in root.findall(".//svg:g[@class='sectors']/svg:rect", NS)]
    assert "sector erase" in states  # the rest of the zoomed block: erased, nothing written


def _cases(path: Path) -> list[ET.Element]:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "qspi-gdb"
    assert int(suite.get("tests")) == len(suite.findall("testcase"))
    return suite.findall("testcase")


def test_junit_report_one_case_per_command_with_the_error_text(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("app.bin").write_bytes(os.urandom(5000))
    common = ["--board", "sim-nrf5340-32mb", "--report", "junit.xml"]
    assert main(["flash", "app.bin@0x11E98000", "--dry-run", *common]) == 0
    assert main(["flash", "missing.bin@0x11E98000", "--dry-run", *common]) == 2
    cases = _cases(tmp_path / "junit.xml")
    assert [c.get("classname") for c in cases] == ["qspi-gdb.flash", "qspi-gdb.flash"]
    assert cases[0].find("failure") is None
    assert cases[0].get("name").startswith("qspi-gdb flash app.bin@0x11E98000 --dry-run")
    assert "Would erase" in cases[0].find("system-out").text
    failure = cases[1].find("failure")
    assert failure.get("type") == "exit 2"
    assert failure.get("message") == "missing.bin: no such file" == failure.text
    root = ET.parse(tmp_path / "junit.xml").getroot()
    assert (root.get("tests"), root.get("failures")) == ("2", "1")


def test_a_report_file_of_something_else_is_refused_before_anything_runs(tmp_path, capsys):
    other = tmp_path / "results.xml"
    other.write_text("<testsuites><testsuite name='pytest'/></testsuites>")
    code = main(["flash", "x.bin@0x10000000", "--board", "sim-nrf5340dk", "--dry-run",
                 "--report", str(other)])
    assert code == 2
    assert "is not a qspi-gdb JUnit report" in capsys.readouterr().err
    assert other.read_text() == "<testsuites><testsuite name='pytest'/></testsuites>"


@pytest.mark.integration
@pytest.mark.skipif(not TOOLS, reason="needs openocd and gdb-multiarch")
def test_readme_reports_example_runs(tmp_path):
    """README "Reports": a dry-run picture, a real flash with its layout and a JUnit report
    (a failing verify included) on a virtual board."""
    script = readme_example("Reports", "sh")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    (tmp_path / "zephyr.recovery.bin").write_bytes(os.urandom(20_000))
    (tmp_path / "other.bin").write_bytes(b"\x00" * 4096)
    run = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=240)
    assert run.returncode == 4, run.stderr  # the example ends with a verify that fails
    for name in ("plan.svg", "done.svg"):
        root = ET.parse(tmp_path / name).getroot()
        assert root.findall(".//svg:rect[@class='sector write']", NS)
    done = ET.parse(tmp_path / "done.svg").getroot()
    assert done.find("svg:title", NS).text.startswith("qspi-gdb flash layout")
    cases = _cases(tmp_path / "junit.xml")
    assert [c.get("classname").split(".")[1] for c in cases] == ["flash", "flash", "verify"]
    assert [c.find("failure") is not None for c in cases] == [False, False, True]
    assert cases[2].find("failure").get("type") == "exit 4"
    assert "flash differs from other.bin" in cases[2].find("failure").text
    image = (tmp_path / "zephyr.recovery.bin").read_bytes()
    flash = (tmp_path / "flash.img").read_bytes()
    assert zlib.crc32(flash[0x1E98000:0x1E98000 + len(image)]) == zlib.crc32(image)


def test_a_refused_command_line_is_a_failed_test_case_too(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as refused:
        main(["flash", "--board", "sim-nrf5340dk", "--bogus", "--report", "junit.xml"])
    assert refused.value.code == 2
    (case,) = _cases(tmp_path / "junit.xml")
    assert case.get("classname") == "qspi-gdb.flash"
    assert "arguments are required: IMAGE" in case.find("failure").get("message")
