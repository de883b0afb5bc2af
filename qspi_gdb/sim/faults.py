"""Seeded fault injection for the virtual board (`qspi-gdb sim --fault KIND:WHEN[:ARG]`).

A fault is a KIND that happens WHEN a counter of the board reaches a value. The models count
at their natural points and consult the plan there:

- the debug port (`dap`): every DPACC/APACC transaction;
- the NOR chip (`nor`): every command frame at CS# rise (`cmd`), every array read (`read`),
  erase (`erase`) and program command (`program`), every byte a program command carries
  (`byte`).

WHEN is `UNIT=N` (fires when the counter reaches N, counting from 1) or `UNIT=LO-HI` (a value
drawn from the range with the seed). ARG is a count whose meaning depends on the kind (bits,
transactions, commands). Everything random (the drawn WHEN, which bits flip, the undefined bits
a power loss leaves) comes from `--fault-seed`, so a run can be repeated.

The kinds and what they do are in `KINDS`; how each model acts on them is in the model
(`nor.py`, `dap.py`, `wire.py`, `board.py`), each citing its source.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

UNITS = {
    "dap": "DAP transactions",
    "cmd": "flash command frames",
    "read": "flash array reads",
    "erase": "erase commands",
    "program": "program commands",
    "byte": "bytes programmed",
}

# kind -> (what happens, default ARG, what ARG counts)
KINDS: dict[str, tuple[str, int, str]] = {
    "wip-stuck": ("the flash's next program or erase never ends: WIP stays 1 until power is "
                  "cycled", 1, "operations"),
    "program-fail": ("program commands fail: the part's fail bit is set and the page's bits "
                     "only partly take", 1, "commands"),
    "erase-fail": ("erase commands fail: the part's fail bit is set and the block is left "
                   "partly erased", 1, "commands"),
    "program-flip": ("weak cells: bits that should program to 0 stay 1 in the next program "
                     "command, with no fail bit", 1, "bits"),
    "read-flip": ("bits flip in the next array read (the array itself is intact)", 1, "bits"),
    "dap-wait": ("the debug port answers WAIT to the next ARG transactions", 200,
                 "transactions"),
    "dap-fault": ("the next ARG access-port transactions fail with a sticky error (the "
                  "JTAG-DP's FAULT)", 1, "transactions"),
    "core-reset": ("the core and peripherals reset (as SYSRESETREQ or a watchdog): a RAM "
                   "loader stops running", 1, "resets"),
    "power-loss": ("power is lost: a program or erase under way leaves a mix of old, new and "
                   "undefined bits, the chip and the MCU restart, RAM is undefined, the debug "
                   "connection drops", 1, "events"),
    "wire-drop": ("the debug connection closes (the probe's cable is pulled)", 1, "events"),
}


SHOTS = ("operations", "commands")  # ARG units that count the operations a fault strikes


_MARKS = {"cmd": "first_command", "erase": "first_erase", "program": "last_program"}


class FaultSpecError(ValueError):
    """A --fault text that does not parse; the message names the part at fault."""


@dataclass
class Fault:
    kind: str
    unit: str
    at: int
    arg: int
    spec: str
    rng: random.Random = field(repr=False)
    fired: dict | None = None  # the board's counters when it fired
    uses: int = 0  # how many times a model acted on it
    effects: list[str] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        """Uses left once fired: ARG of them when ARG counts operations, else one."""
        if self.fired is None:
            return 0
        return (self.arg if KINDS[self.kind][2] in SHOTS else 1) - self.uses

    def note(self, text: str) -> None:
        """What the fault did (for the report), kept short."""
        if len(self.effects) < 8:
            self.effects.append(text)

    def as_dict(self) -> dict:
        return {"spec": self.spec, "kind": self.kind, "unit": self.unit, "at": self.at,
                "arg": self.arg, "fired": self.fired, "uses": self.uses,
                "effects": list(self.effects)}


def parse_fault(text: str, index: int, seed: int) -> Fault:
    """`KIND:UNIT=N[-M][:ARG]` -> Fault (the drawn WHEN and the fault's own random stream come
    from the seed and the fault's position on the command line)."""
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise FaultSpecError(f"--fault {text}: expected KIND:UNIT=N[:ARG], e.g. "
                             "program-fail:program=3")
    kind, when = parts[0].strip().lower(), parts[1].strip().lower()
    if kind not in KINDS:
        raise FaultSpecError(f"--fault {text}: unknown kind {kind!r} (kinds: {', '.join(KINDS)})")
    unit, sep, value = when.partition("=")
    if not sep or unit not in UNITS:
        raise FaultSpecError(f"--fault {text}: WHEN is UNIT=N with UNIT one of "
                             f"{', '.join(UNITS)}")
    rng = random.Random(f"{seed}:{index}:{text}")
    low, dash, high = value.partition("-")
    try:
        lo, hi = int(low, 0), int(high, 0) if dash else int(low, 0)
    except ValueError:
        raise FaultSpecError(f"--fault {text}: {value!r} is not a count or a range LO-HI") from None
    if not 1 <= lo <= hi:
        raise FaultSpecError(f"--fault {text}: counts start at 1 (and LO <= HI)")
    at = rng.randint(lo, hi)
    arg = KINDS[kind][1]
    if len(parts) == 3:
        try:
            arg = int(parts[2], 0)
        except ValueError:
            arg = 0
        if arg < 1:
            raise FaultSpecError(f"--fault {text}: ARG ({KINDS[kind][2]}) must be a count >= 1")
    return Fault(kind, unit, at, arg, text, rng)


class FaultPlan:
    """The faults of one board run: counters, triggers, and the models' hooks.

    `count(unit, n)` is cheap when nothing is due (one comparison), so the debug port can call
    it for every transaction. A fault that comes due calls the handlers registered for its kind
    (`on`): immediate faults (a reset, a dropped wire) act there; the others wait until the
    model that owns them asks with `take(kind)` at its next natural point.
    """

    def __init__(self, specs: list[str] | tuple[str, ...] = (), seed: int = 0) -> None:
        self.seed = seed
        self.faults = [parse_fault(text, i, seed) for i, text in enumerate(specs)]
        self.counters = {unit: 0 for unit in UNITS}
        # the counters at the first flash command, the first erase and the last program:
        # where a host's phases begin and end, for a campaign that aims a fault at a phase
        self.marks: dict[str, dict[str, int]] = {}
        self._handlers: dict[str, list[Callable[[Fault], None]]] = {}
        self.after_fire: Callable[[], None] | None = None  # e.g. write the fault log
        self._next: dict[str, float] = {}
        self._update_next()

    def __bool__(self) -> bool:
        return bool(self.faults)

    def _update_next(self) -> None:
        self._next = {unit: min((f.at for f in self.faults if f.unit == unit and f.fired is None),
                                default=float("inf")) for unit in UNITS}

    def on(self, kind: str, handler: Callable[[Fault], None]) -> None:
        self._handlers.setdefault(kind, []).append(handler)

    def count(self, unit: str, n: int = 1) -> None:
        value = self.counters[unit] + n
        self.counters[unit] = value
        if unit in _MARKS and (unit == "program" or value == 1):
            self.marks[_MARKS[unit]] = dict(self.counters)
        if value >= self._next[unit]:
            self._fire(unit)

    def _fire(self, unit: str) -> None:
        due = [f for f in self.faults
               if f.unit == unit and f.fired is None and self.counters[unit] >= f.at]
        for fault in due:
            fault.fired = dict(self.counters)
        self._update_next()
        for fault in due:
            for handler in self._handlers.get(fault.kind, ()):
                handler(fault)
        if self.after_fire is not None:
            self.after_fire()

    def take(self, kind: str) -> Fault | None:
        """A fault of `kind` that has come due and still has uses left (one use is spent)."""
        for fault in self.faults:
            if fault.kind == kind and fault.remaining > 0:
                fault.uses += 1
                return fault
        return None

    def report(self) -> dict:
        return {"seed": self.seed, "counters": dict(self.counters), "marks": dict(self.marks),
                "faults": [f.as_dict() for f in self.faults]}


def flip_bits(data: bytes, rng: random.Random, nbits: int) -> tuple[bytes, list[int]]:
    """`data` with `nbits` distinct bits inverted (at most all of them); the bit positions."""
    total = len(data) * 8
    if not total:
        return data, []
    picks = rng.sample(range(total), min(nbits, total))
    out = bytearray(data)
    for bit in picks:
        out[bit // 8] ^= 0x80 >> (bit % 8)
    return bytes(out), sorted(picks)


def mixed_bits(old: bytes, new: bytes, rng: random.Random) -> bytes:
    """What an interrupted operation leaves where it wanted `new` over `old`: each bit that was
    to change is old, new, or undefined (either) — the datasheets promise nothing about such
    cells, and a later read need not even be stable; we freeze one draw."""
    changing = int.from_bytes(old, "big") ^ int.from_bytes(new, "big")
    took = rng.getrandbits(len(old) * 8) & changing
    return (int.from_bytes(old, "big") ^ took).to_bytes(len(old), "big")
