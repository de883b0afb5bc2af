"""Property tests: random command sequences on the NOR model match a tiny reference model.

The reference is written from the datasheet rules directly (sparse dict memory, WEL flag, busy
time, page wrap by index arithmetic, effects at completion) and shares no code with the model.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qspi_gdb.sim.nor import NorFlash
from qspi_gdb.sim.parts import PARTS

ERASES = {0x20: 4096, 0x52: 32768, 0xD8: 65536}
BASES = (0x0, 0xFF00, 0x1E98000, 0x1FFFF00)  # low, page/sector edges, above 16 MiB, chip end


class RefNor:
    def __init__(self, name: str) -> None:
        p = PARTS[name]
        self.size, self.page, self.t = p.size, p.page_size, p.timings
        self.en4b_wren = p.en4b_needs_wren
        self.has_4b = 0xB7 in p.commands
        self.exit_op = next((op for op, c in p.commands.items() if c.kind.name == "EX4B"), None)
        self.mem: dict[int, int] = {}
        self.wel = False
        self.four = False
        self.busy = 0.0
        self.pending = None

    def addr(self, a: int) -> int:
        return (a if self.four else a & 0xFFFFFF) % self.size

    def sr(self) -> int:
        return (1 if self.busy > 0 else 0) | (2 if self.wel else 0)

    def read(self, a: int, n: int) -> bytes:
        if self.busy > 0:
            return b"\xff" * n
        a = self.addr(a)
        return bytes(self.mem.get((a + i) % self.size, 0xFF) for i in range(n))

    def simple(self, op: int) -> None:
        if self.busy > 0:
            return
        if op == 0x06:
            self.wel = True
        elif op == 0x04:
            self.wel = False
        elif op == 0xB7 and self.has_4b:
            if self.en4b_wren and not self.wel:
                return
            self.four = True
            if self.en4b_wren:
                self.wel = False
        elif op == self.exit_op:
            if self.en4b_wren and not self.wel:
                return
            self.four = False
            if self.en4b_wren:
                self.wel = False

    def program(self, a: int, data: bytes) -> None:
        if self.busy > 0 or not self.wel or not data:
            return
        a = self.addr(a)
        base = a - a % self.page
        writes = {}
        for i, b in enumerate(data):
            writes[base + (a % self.page + i) % self.page] = b  # later bytes win
        n = min(len(data), self.page)
        self.busy = min(self.t.page_program_typ, self.t.byte_first_typ + self.t.byte_more_typ * (n - 1))

        def done() -> None:
            for k, b in writes.items():
                self.mem[k] = self.mem.get(k, 0xFF) & b

        self.pending = done

    def erase(self, op: int, a: int) -> None:
        if self.busy > 0 or not self.wel:
            return
        size = ERASES[op]
        base = self.addr(a) // size * size
        self.busy = self.t.erase_typ[size]
        self.pending = lambda: [self.mem.pop(k) for k in list(self.mem) if base <= k < base + size]

    def advance(self, dt: float) -> None:
        if self.busy > 0:
            self.busy -= dt
            if self.busy <= 1e-12:
                self.busy = 0.0
                self.pending()
                self.wel = False


def addr_bytes(ref: RefNor, a: int) -> bytes:
    return a.to_bytes(4, "big") if ref.four else (a & 0xFFFFFF).to_bytes(3, "big")


addresses = st.builds(lambda b, o: b + o, st.sampled_from(BASES), st.integers(0, 0x1FF))
ops = st.one_of(
    st.tuples(st.just("simple"), st.sampled_from([0x06, 0x06, 0x04, 0xB7, 0xE9, 0x29])),
    st.tuples(st.just("program"), addresses, st.binary(min_size=1, max_size=300)),
    st.tuples(st.just("erase"), st.sampled_from(sorted(ERASES)), addresses),
    st.tuples(st.just("read"), addresses, st.integers(1, 64)),
    st.tuples(st.just("advance"), st.sampled_from([0.0, 1e-5, 1e-4, 1e-3, 0.05, 0.5])),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(PARTS)), seq=st.lists(ops, min_size=1, max_size=40))
def test_random_sequences_match_reference(name, seq):
    chip = NorFlash.from_part(name)
    ref = RefNor(name)
    try:
        for op in seq:
            kind = op[0]
            if kind == "simple":
                chip.transfer(bytes([op[1]]))
                ref.simple(op[1])
            elif kind == "program":
                _, a, data = op
                chip.transfer(b"\x02" + addr_bytes(ref, a) + data)
                ref.program(a, data)
            elif kind == "erase":
                _, code, a = op
                chip.transfer(bytes([code]) + addr_bytes(ref, a))
                ref.erase(code, a)
            elif kind == "read":
                _, a, n = op
                assert chip.transfer(b"\x03" + addr_bytes(ref, a), n) == ref.read(a, n)
            else:
                chip.advance(op[1])
                ref.advance(op[1])
            assert chip.transfer(b"\x05", 1)[0] == ref.sr()
            assert chip.four_byte_mode == ref.four
        chip.advance(100.0)
        ref.advance(100.0)
        for k, v in ref.mem.items():
            assert chip.peek(k, 1)[0] == v
        for op in seq:  # and nothing else was touched
            if op[0] == "program":
                for a in (op[1], (op[1] & ~0xFF) % chip.size):
                    a %= chip.size
                    assert chip.peek(a, 1)[0] == ref.mem.get(a, 0xFF)
    finally:
        chip.close()


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(sorted(PARTS)), a=st.integers(0, 0xFFFFF), data=st.binary(min_size=1, max_size=256),
       n=st.integers(1, 300))
def test_every_read_command_agrees_with_plain_read(name, a, data, n):
    chip = NorFlash.from_part(name)
    try:
        chip.transfer(b"\x06")
        chip.transfer(b"\x02" + a.to_bytes(3, "big") + data)
        chip.advance(1.0)
        if chip.part.qe_mask:
            chip.transfer(b"\x06")
            chip.transfer(b"\x01\x40")
            chip.advance(1.0)
        expected = chip.transfer(b"\x03" + a.to_bytes(3, "big"), n)
        for op, cmd in chip.part.read_commands().items():
            width = 4 if cmd.addr.name == "FOUR" else 3
            got = chip.frame(op, address=a.to_bytes(width, "big"), addr_lines=cmd.addr_lines,
                             dummy_cycles=cmd.dummy, data_lines=cmd.data_lines, rx_len=n)
            assert got == expected, hex(op)
    finally:
        chip.close()
