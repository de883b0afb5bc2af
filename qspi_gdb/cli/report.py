"""Files a command writes besides its output: `--report FILE` (JUnit XML for CI: one test case
per command, a failure carries the error text) and `--layout FILE` (the plan as SVG,
`qspi_gdb.flash.plan_svg`).

A report file that already holds a qspi-gdb report gets the next command added as another
test case, so a CI job that runs several commands collects them in one file; any other
existing file is refused before the command runs (nothing is overwritten by accident).
"""

from __future__ import annotations

import json
import os
import socket
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

from qspi_gdb.errors import UsageError
from qspi_gdb.flash.jobs import check_output_file
from qspi_gdb.flash.plan import Plan
from qspi_gdb.flash.plan_svg import render_svg
from qspi_gdb.flash.result import Result

SUITE = "qspi-gdb"


def _existing_suites(path: Path) -> ET.Element | None:
    """The <testsuites> of an existing qspi-gdb report, None when there is no file yet."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        root = None
    if root is None or root.tag != "testsuites" or root.find(f"testsuite[@name='{SUITE}']") is None:
        raise UsageError(f"--report {path}: exists and is not a qspi-gdb JUnit report "
                         "(remove it or name another file)")
    return root


def report_in(argv: list[str]) -> str | None:
    """The --report FILE of a command line argparse refused (its report is promised too)."""
    for i, arg in enumerate(argv):
        if arg == "--report" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--report="):
            return arg.split("=", 1)[1]
    return None


def check_report(path: str | os.PathLike) -> Path:
    where = check_output_file(path, "--report")
    _existing_suites(where)
    return where


def _case(result: Result, name: str, summary: str) -> ET.Element:
    case = ET.Element("testcase", {"classname": f"{SUITE}.{result.command or 'usage'}",
                                   "name": name, "time": f"{result.seconds:.3f}"})
    if not result.ok and result.error:
        message = result.error["message"]
        failure = ET.SubElement(case, "failure", {
            "message": message, "type": f"exit {result.error['exit_code']}"})
        failure.text = message
    out = ET.SubElement(case, "system-out")
    out.text = (summary + "\n" if summary else "") + json.dumps(result.to_json(), sort_keys=True)
    return case


def write_report(path: str | os.PathLike, result: Result, name: str, summary: str = "") -> None:
    """Add this command as a test case to the JUnit file at path (created when missing)."""
    where = Path(path)
    root = _existing_suites(where)
    if root is None:
        root = ET.Element("testsuites", {"name": SUITE})
        ET.SubElement(root, "testsuite", {"name": SUITE, "hostname": socket.gethostname(),
                                          "timestamp": datetime.now(timezone.utc)
                                          .isoformat(timespec="seconds")})
    suite = root.find(f"testsuite[@name='{SUITE}']")
    suite.append(_case(result, name, summary))
    cases = suite.findall("testcase")
    failures = sum(1 for c in cases if c.find("failure") is not None)
    total_time = sum(float(c.get("time", "0")) for c in cases)
    for element in (root, suite):
        element.set("tests", str(len(cases)))
        element.set("failures", str(failures))
        element.set("errors", "0")
        element.set("skipped", "0")
        element.set("time", f"{total_time:.3f}")
    ET.indent(root)
    tmp = where.with_name(where.name + ".tmp")
    ET.ElementTree(root).write(tmp, encoding="utf-8", xml_declaration=True)
    os.replace(tmp, where)


def write_layout(path: str | os.PathLike, plan: Plan, *, done: bool) -> None:
    Path(path).write_text(render_svg(plan, done=done), encoding="utf-8")
