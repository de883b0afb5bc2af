"""The seeded fault campaign (`make faults`): qspi-gdb flashes a patterned virtual flash while
one fault is injected — in the virtual board (`qspi-gdb sim --fault`, through `qspi-gdb flash
--sim-fault`) or in the processes around it (SIGKILL of OpenOCD, gdb or the board, SIGINT or
SIGTERM to qspi-gdb, OpenOCD stopped) — in each phase (connect, read-back, erase, program,
verify) on each modelled part. Every case is judged from the outside: the exit code and the one
error line, the `--json` result, the flash file read directly (the image, and every byte
outside it against the pattern), the processes left behind; a case that did not end in a
verified image is run again without the fault, and that re-run must complete.

    .venv/bin/python tests/faults/campaign.py            # the full campaign (>= 200 faults)
    .venv/bin/python tests/faults/campaign.py --quick    # one fault per kind and phase

Writes `faults.jsonl` (one object per case) and `faults.md` (the table) into --out (default
build/faults) and prints the table. Exit status 1 when a goal is missed: a false success, a byte
outside the image changed, an orphan process, a re-run that failed, an unclean failure.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from process_tree import alive, descendants  # noqa: E402

BOARDS = {"MX25R6435F": ("sim-nrf52840dk", 8 << 20), "IS25WP256": ("sim-nrf5340-32mb", 32 << 20),
          "MT25QU256A": ("sim-nrf52840-32mb", 32 << 20)}
IMAGE_OFFSET = 0x10100  # partial first and last sectors: the bytes around it are kept (RMW)
IMAGE_SIZE = 20000
PHASES = ("connect", "read-back", "erase", "program", "verify")
# Each phase's board faults: (kind, the counter WHEN counts, ARG or None).
SIM_FAULTS = {
    "connect": [("dap-wait", "dap", 300), ("dap-fault", "dap", None), ("wire-drop", "dap", None),
                ("core-reset", "dap", None), ("power-loss", "dap", None)],
    "read-back": [("read-flip", "read", 2), ("dap-wait", "dap", 300), ("dap-fault", "dap", None),
                  ("core-reset", "read", None), ("power-loss", "read", None),
                  ("wire-drop", "read", None)],
    "erase": [("erase-fail", "erase", None), ("wip-stuck", "erase", None),
              ("core-reset", "erase", None), ("power-loss", "erase", None),
              ("wire-drop", "erase", None), ("dap-wait", "dap", 300), ("dap-fault", "dap", None)],
    "program": [("program-fail", "program", None), ("program-flip", "byte", 1),
                ("wip-stuck", "program", None), ("core-reset", "program", None),
                ("power-loss", "byte", None), ("wire-drop", "program", None),
                ("dap-wait", "dap", 300), ("dap-fault", "dap", None)],
    "verify": [("read-flip", "read", 1), ("core-reset", "read", None),
               ("power-loss", "read", None), ("wire-drop", "read", None),
               ("dap-wait", "dap", 300), ("dap-fault", "dap", None)],
}
HOST_FAULTS = ("kill-openocd", "kill-gdb", "kill-board", "sigint", "sigterm", "stop-openocd")
# The log line that says a phase is under way (qspi-gdb's JSON log on stderr).
PHASE_EVENTS = {"connect": ("openocd ready", None), "read-back": ("progress", "Reading flash"),
                "erase": ("progress", "Erasing"), "program": ("progress", "Programming"),
                "verify": ("progress", "Verifying")}
ROLES = {"board": "qspi_gdb.sim", "openocd": "openocd", "gdb": "gdb-multiarch"}
DOCUMENTED_EXIT = {2, 3, 4, 130}
RUN_TIMEOUT_S = 400


@dataclass
class Case:
    ident: str
    part: str
    phase: str
    kind: str
    seed: int
    spec: str | None = None  # a board fault: the --sim-fault text
    delay_s: float = 0.0  # a host fault: after the phase's first log line


@dataclass
class Outcome:
    case: dict
    injected: bool = False
    fired: dict | None = None
    exit: int | None = None
    ok: bool | None = None
    retries: int = 0  # second tries qspi-gdb made in the same run (its --json "retries")
    message: str = ""
    log_tail: str = ""  # the end of qspi-gdb's stderr when it did not succeed (for diagnosis)
    error_lines: int = 0
    traceback: bool = False
    hung: bool = False
    image_ok: bool = False
    outside_changed: int = 0
    orphans: list = field(default_factory=list)
    temp_left: list = field(default_factory=list)
    seconds: float = 0.0
    rerun_exit: int | None = None
    rerun_image_ok: bool | None = None
    rerun_outside_changed: int = 0
    journals_left: int = 0  # kept-bytes journals left after the last run succeeded (must be 0)
    verdict: str = ""


# --- the flash file -------------------------------------------------------------------------

def pattern(size: int) -> bytes:
    """The known contents around the image: no 0xFF runs, different in every 64 KiB."""
    block = bytes(((i * 167) ^ (i >> 8)) & 0xFF for i in range(65536))
    return b"".join(bytes(b ^ (n & 0x7F) for b in block[:256]) + block[256:]
                    for n in range(size // 65536))


def image_bytes(seed: int = 12) -> bytes:
    return random.Random(seed).randbytes(IMAGE_SIZE)


def compare(flash: Path, template: Path, image: bytes) -> tuple[bool, int]:
    """(the image is in place, bytes outside it that differ from the pattern)."""
    got, want = flash.read_bytes(), template.read_bytes()
    lo, hi = IMAGE_OFFSET, IMAGE_OFFSET + len(image)
    outside = sum(a != b for a, b in zip(got[:lo], want[:lo])) if got[:lo] != want[:lo] else 0
    if got[hi:] != want[hi:]:
        outside += sum(a != b for a, b in zip(got[hi:], want[hi:]))
    return got[lo:hi] == image, outside


# --- running qspi-gdb -----------------------------------------------------------------------

class Run:
    """qspi-gdb flash as a child process, its stderr JSON log read as it comes."""

    def __init__(self, argv: list[str], env: dict) -> None:
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env, cwd=REPO)
        self.err: list[str] = []
        self.out: list[str] = []
        self.threads = [threading.Thread(target=self._read, args=(s, into), daemon=True)
                        for s, into in ((self.proc.stderr, self.err), (self.proc.stdout, self.out))]
        for t in self.threads:
            t.start()

    @staticmethod
    def _read(stream, into: list[str]) -> None:
        for line in stream:
            into.append(line)

    def saw(self, event: str, phase: str | None) -> bool:
        for line in list(self.err):
            if not line.startswith("{"):
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("event") == event and (phase is None or record.get("phase") == phase):
                return True
        return False

    def children(self) -> dict[str, int]:
        return {role: pid for pid, argv in descendants(self.proc.pid).items()
                for role, name in ROLES.items() if name in argv}

    def finish(self, timeout_s: float) -> tuple[int, dict | None, str, bool]:
        hung = False
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            hung = True
            for pid in descendants(self.proc.pid):
                _signal(pid, signal.SIGKILL)
            self.proc.kill()
            self.proc.wait()
        for t in self.threads:
            t.join(5)
        objects = [line for line in self.out if line.startswith("{")]
        result = None
        if objects:
            try:
                result = json.loads(objects[-1])
            except ValueError:
                result = None
        return self.proc.returncode, result, "".join(self.err), hung


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def flash_argv(board: str, image: Path, flash: Path) -> list[str]:
    return [sys.executable, "-m", "qspi_gdb", "flash", f"{image}@0x{IMAGE_OFFSET:X}",
            "--board", board, "--sim-image", str(flash), "--json"]


def host_fault(run: Run, case: Case) -> bool:
    """Wait for the phase, then deliver the host fault; True when it was delivered."""
    event, phase = PHASE_EVENTS[case.phase]
    deadline = time.monotonic() + 200
    while not run.saw(event, phase):
        if run.proc.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    time.sleep(case.delay_s)
    if run.proc.poll() is not None:
        return False
    if case.kind in ("sigint", "sigterm"):
        _signal(run.proc.pid, signal.SIGINT if case.kind == "sigint" else signal.SIGTERM)
        return True
    role = {"kill-openocd": "openocd", "kill-gdb": "gdb", "kill-board": "board",
            "stop-openocd": "openocd"}[case.kind]
    pid = run.children().get(role)
    if pid is None:
        return False
    _signal(pid, signal.SIGSTOP if case.kind == "stop-openocd" else signal.SIGKILL)
    return True


def leftover_processes(timeout_s: float = 10.0) -> list[str]:
    """Processes still below this worker (its subreaper adopts what qspi-gdb left)."""
    me = os.getpid()
    deadline = time.monotonic() + timeout_s
    while True:
        left = {pid: argv for pid, argv in descendants(me).items() if alive(pid)}
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for pid in left:
        _signal(pid, signal.SIGCONT)
        _signal(pid, signal.SIGKILL)
    return [argv[:120] for argv in left.values()]


def run_case(case: Case, out: Path, templates: dict[str, Path], image_path: Path) -> Outcome:
    outcome = Outcome(case=asdict(case))
    board, _ = BOARDS[case.part]
    image = image_path.read_bytes()
    tmp = Path(tempfile.mkdtemp(prefix="qf-", dir="/tmp"))  # short: UNIX socket paths
    try:
        flash = tmp / "f.img"
        shutil.copyfile(templates[case.part], flash)
        state = tmp / "state"  # this case's kept-bytes journals (qspi_gdb.flash.journal)
        env = {**os.environ, "TMPDIR": str(tmp), "XDG_STATE_HOME": str(state)}
        argv = flash_argv(board, image_path, flash)
        fault_log = tmp / "faults.json"
        if case.spec:
            argv += ["--sim-fault", case.spec, "--sim-fault-seed", str(case.seed),
                     "--sim-fault-log", str(fault_log)]
        started = time.monotonic()
        run = Run(argv, env)
        if not case.spec:
            outcome.injected = host_fault(run, case)
        code, result, err, hung = run.finish(RUN_TIMEOUT_S)
        outcome.seconds = round(time.monotonic() - started, 2)
        if case.kind == "stop-openocd":
            for pid in descendants(os.getpid()):
                _signal(pid, signal.SIGCONT)
        outcome.orphans = leftover_processes()
        outcome.temp_left = sorted(p.name for p in tmp.iterdir()
                                   if p.name.startswith(("qspi-sim-", "qspi-gdb-openocd-")))
        if case.spec:
            try:
                report = json.loads(fault_log.read_text())
                outcome.fired = report["faults"][0]["fired"]
                outcome.injected = outcome.fired is not None
            except (OSError, ValueError, KeyError, IndexError):
                outcome.injected = False
        outcome.exit, outcome.hung = code, hung
        outcome.ok = result.get("ok") if result else None
        outcome.retries = len((result or {}).get("retries") or [])
        lines = [ln for ln in err.splitlines() if ln.startswith("qspi-gdb")]
        outcome.error_lines = len(lines)
        outcome.message = lines[-1] if lines else ""
        outcome.log_tail = err[-3000:] if code != 0 else ""
        outcome.traceback = "Traceback" in err
        outcome.image_ok, outcome.outside_changed = compare(flash, templates[case.part], image)
        if not (code == 0 and outcome.image_ok):
            rerun = Run(flash_argv(board, image_path, flash), env)
            outcome.rerun_exit, _, _, _ = rerun.finish(RUN_TIMEOUT_S)
            outcome.orphans += leftover_processes()
            outcome.rerun_image_ok, outcome.rerun_outside_changed = compare(
                flash, templates[case.part], image)
        if (outcome.rerun_exit if outcome.rerun_exit is not None else code) == 0:
            outcome.journals_left = len(list(state.glob("qspi-gdb/*")))
        outcome.verdict = verdict(outcome, result)
        return outcome
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def verdict(o: Outcome, result: dict | None) -> str:
    if o.exit == 0:
        if o.image_ok and o.outside_changed == 0 and o.ok is True:
            return "recovered"
        return "FALSE SUCCESS"
    # bytes outside the image a failure left changed must be in the journal, and the one line
    # must say where (the re-run restores them)
    told = not o.outside_changed or ("saved in" in o.message and "re-run" in o.message)
    clean = (o.exit in DOCUMENTED_EXIT and o.error_lines == 1 and not o.traceback and told
             and not o.hung and result is not None and result.get("ok") is False)
    return "failed cleanly" if clean else "UNCLEAN FAILURE"


# --- the cases ------------------------------------------------------------------------------

def calibrate(part: str, out: Path, templates: dict[str, Path], image_path: Path) -> dict:
    """A clean run: the board's counters where the phases begin and end."""
    board, _ = BOARDS[part]
    tmp = Path(tempfile.mkdtemp(prefix="qf-", dir="/tmp"))
    try:
        flash = tmp / "f.img"
        shutil.copyfile(templates[part], flash)
        log = tmp / "faults.json"
        argv = flash_argv(board, image_path, flash) + ["--sim-fault-log", str(log)]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                              env={**os.environ, "TMPDIR": str(tmp)}, cwd=REPO)
        if proc.returncode != 0:
            raise SystemExit(f"calibration run on {part} failed: {proc.stderr[-500:]}")
        return json.loads(log.read_text())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def ranges(cal: dict) -> dict[tuple[str, str], tuple[int, int]]:
    """(phase, unit) -> the counter values inside that phase on a clean run."""
    end, marks = cal["counters"], cal["marks"]
    first, erase, last = marks["first_command"], marks["first_erase"], marks["last_program"]
    return {
        ("connect", "dap"): (20, max(21, first["dap"] - 1)),
        ("read-back", "read"): (1, max(1, erase["read"])),
        ("read-back", "dap"): (first["dap"], erase["dap"]),
        ("erase", "erase"): (1, end["erase"]),
        ("erase", "dap"): (erase["dap"], last["dap"]),
        ("program", "program"): (1, end["program"]),
        ("program", "byte"): (1, end["byte"]),
        ("program", "dap"): (erase["dap"], last["dap"]),
        ("verify", "read"): (last["read"] + 1, max(last["read"] + 1, end["read"])),
        ("verify", "dap"): (last["dap"], end["dap"]),
    }


def make_cases(quick: bool, total: int, seed: int, calibration: dict[str, dict]) -> list[Case]:
    rng = random.Random(seed)
    combos = [(phase, kind, unit, arg) for phase in PHASES
              for kind, unit, arg in SIM_FAULTS[phase]]
    if quick:  # every board fault once, and one host fault of each process in some phase
        combos += [("program", "kill-openocd", None, None), ("erase", "kill-gdb", None, None),
                   ("verify", "kill-board", None, None), ("read-back", "sigint", None, None),
                   ("program", "sigterm", None, None)]
    else:
        combos += [(phase, kind, None, None) for phase in PHASES for kind in HOST_FAULTS]
    parts = list(BOARDS)
    cases: list[Case] = []
    rounds = 1 if quick else max(1, -(-total // (len(combos) - len(PHASES))))
    for r in range(rounds):
        for i, (phase, kind, unit, arg) in enumerate(combos):
            if kind == "stop-openocd" and r > 0:
                continue  # each waits out a deadline: once per phase is enough
            part = parts[(i + r) % len(parts)]
            s = rng.randrange(1 << 30)
            case = Case(f"{r:02d}-{i:03d}-{part}-{phase}-{kind}", part, phase, kind, s)
            if unit is not None:
                lo, hi = ranges(calibration[part])[(phase, unit)]
                case.spec = f"{kind}:{unit}={lo}-{max(lo, hi)}" + (f":{arg}" if arg else "")
            else:
                case.delay_s = round(rng.uniform(0.0, 0.4), 3)
            cases.append(case)
    return cases


# --- the table ------------------------------------------------------------------------------

COLUMNS = ("injected", "recovered", "of them by a second try", "failed cleanly", "false successes",
           "bytes changed outside the image", "kept bytes journaled for the re-run",
           "orphan processes", "re-run success")


def tally(outcomes: list[Outcome], key) -> dict[str, dict]:
    rows: dict[str, Counter] = {}
    for o in outcomes:
        for name in (key(o), "all"):
            row = rows.setdefault(name, Counter())
            row["cases"] += 1
            row["injected"] += o.injected
            row["recovered"] += o.verdict == "recovered"
            row["of them by a second try"] += o.verdict == "recovered" and o.retries > 0
            row["failed cleanly"] += o.verdict == "failed cleanly"
            row["unclean"] += o.verdict == "UNCLEAN FAILURE"
            row["false successes"] += o.verdict == "FALSE SUCCESS"
            # what stays changed when the tool is done: after the re-run where there was one
            # (a fault that kills the link between the erase of a partly covered sector and
            # the programming of its kept bytes leaves them in the journal for the re-run)
            final = o.rerun_outside_changed if o.rerun_exit is not None else o.outside_changed
            row["bytes changed outside the image"] += final
            row["kept bytes journaled for the re-run"] += o.outside_changed
            row["journals left"] += o.journals_left
            row["orphan processes"] += len(o.orphans)
            if o.rerun_exit is not None:
                row["reruns"] += 1
                row["rerun ok"] += o.rerun_exit == 0 and bool(o.rerun_image_ok)
    return rows


def table(outcomes: list[Outcome]) -> str:
    lines = []
    for title, key in (("kind", lambda o: o.case["kind"]), ("phase", lambda o: o.case["phase"]),
                       ("part", lambda o: o.case["part"])):
        rows = tally(outcomes, key)
        lines.append(f"| {title} | cases | " + " | ".join(COLUMNS) + " |")
        lines.append("|---" * (len(COLUMNS) + 2) + "|")
        for name in [n for n in rows if n != "all"] + ["all"]:
            r = rows[name]
            rerun = f"{r['rerun ok']}/{r['reruns']}" + (
                f" ({100 * r['rerun ok'] // r['reruns']} %)" if r["reruns"] else "")
            cells = [r["cases"], r["injected"], r["recovered"], r["of them by a second try"],
                     r["failed cleanly"] + (0 if not r["unclean"] else 0),
                     r["false successes"], r["bytes changed outside the image"],
                     r["kept bytes journaled for the re-run"], r["orphan processes"], rerun]
            label = f"**{name}**" if name == "all" else name
            lines.append(f"| {label} | " + " | ".join(str(c) for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def goals_met(outcomes: list[Outcome]) -> list[str]:
    r = tally(outcomes, lambda o: "x")["all"]
    missed = []
    for name in ("false successes", "bytes changed outside the image", "orphan processes",
                 "unclean", "journals left"):
        if r[name]:
            missed.append(f"{name}: {r[name]}")
    if r["rerun ok"] != r["reruns"]:
        missed.append(f"re-runs: {r['rerun ok']}/{r['reruns']}")
    return missed


# --- main -----------------------------------------------------------------------------------

def _worker_init() -> None:
    """Orphans of a qspi-gdb that died are adopted by this worker, so they can be counted."""
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="one fault per kind and phase (the subset `make test` runs)")
    parser.add_argument("--count", type=int, default=200, help="at least this many faults")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "build" / "faults")
    parser.add_argument("--only", help="run only cases whose id contains this text")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    image_path = args.out / "image.bin"
    image_path.write_bytes(image_bytes())
    templates = {}
    for part, (_, size) in BOARDS.items():
        templates[part] = args.out / f"pattern-{part}.img"
        if not templates[part].exists() or templates[part].stat().st_size != size:
            templates[part].write_bytes(pattern(size))
    started = time.monotonic()
    _worker_init()
    with ProcessPoolExecutor(max_workers=args.jobs, initializer=_worker_init) as pool:
        calibration = dict(zip(BOARDS, pool.map(calibrate, BOARDS, [args.out] * 3,
                                                [templates] * 3, [image_path] * 3)))
        cases = make_cases(args.quick, args.count, args.seed, calibration)
        if args.only:
            cases = [c for c in cases if args.only in c.ident]
        print(f"{len(cases)} cases on {len(BOARDS)} parts, {args.jobs} at a time", flush=True)
        futures = [pool.submit(run_case, c, args.out, templates, image_path) for c in cases]
        outcomes = []
        with open(args.out / "faults.jsonl", "w") as jsonl:
            for future in futures:
                o = future.result()
                outcomes.append(o)
                jsonl.write(json.dumps(asdict(o)) + "\n")
                jsonl.flush()
                mark = "" if o.verdict in ("recovered", "failed cleanly") else "  <-- " + o.verdict
                print(f"{o.case['ident']:<52} {o.verdict:<15} exit {o.exit} "
                      f"{o.seconds:6.1f}s {o.message[:90]}{mark}", flush=True)
    text = table(outcomes)
    minutes = (time.monotonic() - started) / 60
    summary = (f"{len(outcomes)} faults (seed {args.seed}) in {minutes:.1f} min; "
               f"image {IMAGE_SIZE} bytes at flash offset 0x{IMAGE_OFFSET:X} of a patterned "
               "flash")
    (args.out / "faults.md").write_text(summary + "\n\n" + text)
    print("\n" + summary + "\n\n" + text)
    missed = goals_met(outcomes)
    (args.out / "summary.json").write_text(json.dumps(
        {"cases": len(outcomes), "missed": missed,
         "totals": dict(tally(outcomes, lambda o: "x")["all"])}))
    if missed:
        print("goals missed: " + "; ".join(missed))
        return 1
    print("goals met: 0 false successes, 0 bytes outside the image changed, 0 orphans, "
          "every re-run completed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
