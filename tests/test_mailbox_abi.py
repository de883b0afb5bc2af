"""Drift test: loader_fw/include/qspi_mailbox.h (the ABI) vs qspi_gdb/mailbox.py (its mirror),
and both vs the committed loader ELFs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from qspi_gdb.loader import config as lc
from qspi_gdb.loader import loader_elf, mailbox, status

HEADER = Path(__file__).resolve().parents[1] / "loader_fw" / "include" / "qspi_mailbox.h"

_DEFINE = re.compile(r"^#define\s+QL_(\w+)\s+(0x[0-9A-Fa-f]+|\d+)u?\b", re.M)
_STRUCT = re.compile(r"struct\s+(ql_\w+)\s*\{(.*?)\};", re.S)
_FIELD = re.compile(r"^\s*(uint32_t|struct\s+ql_\w+)\s+(\w+)(?:\[(\w+)\])?;", re.M)


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def parse_header(text: str) -> tuple[dict[str, int], dict[str, tuple]]:
    text = _strip_comments(text)
    consts = {name: int(value, 0) for name, value in _DEFINE.findall(text)}
    structs = {}
    for name, body in _STRUCT.findall(text):
        fields = []
        for ctype, field, count in _FIELD.findall(body):
            n = 1
            if count:
                n = int(count, 0) if count[0].isdigit() else consts[count.removeprefix("QL_")]
            if ctype == "uint32_t":
                fields.append((field, n))
            else:
                fields.append((field, (ctype.split()[1], n)))
        # every declaration in the body must have been understood
        decls = [d for d in body.split(";") if d.strip()]
        assert len(decls) == len(fields), f"struct {name}: unparsed declarations"
        structs[name] = tuple(fields)
    return consts, structs


def _python_name(c_name: str) -> str:
    return "FOURB_" + c_name[3:] if c_name.startswith("4B_") else c_name


@pytest.fixture(scope="module")
def header():
    return parse_header(HEADER.read_text())


def test_every_constant_mirrored(header):
    consts, _ = header
    assert len(consts) > 60
    for name, value in consts.items():
        py = _python_name(name)
        assert hasattr(mailbox, py), f"QL_{name} missing in qspi_gdb/mailbox.py"
        assert getattr(mailbox, py) == value, f"QL_{name}: header {value:#x} != Python"


def test_no_extra_python_constants(header):
    consts, _ = header
    c_names = {_python_name(n) for n in consts}
    prefixes = ("OP_", "ST_", "CF_", "ERASE_", "STATE_", "BUF_", "ADDR_", "FOURB_", "QE_",
                "CFG_", "II_", "STAGE_", "CHIP_")
    for name in dir(mailbox):
        value = getattr(mailbox, name)
        if name.startswith(prefixes) and name.isupper() and isinstance(value, int):
            assert name in c_names, f"{name} exists in Python but not in the header"


def test_struct_layouts(header):
    _, structs = header
    assert set(structs) == set(mailbox.STRUCTS)
    for name, fields in structs.items():
        assert fields == mailbox.STRUCTS[name], f"struct {name} drifted"


def test_every_status_has_one_message(header):
    consts, _ = header
    codes = {v for k, v in consts.items() if k.startswith("ST_") and k != "ST_COUNT"}
    assert codes == set(range(consts["ST_COUNT"]))
    assert set(status.STATUS_MESSAGES) == codes
    assert {s.value for s in status.Status} == codes
    assert "unknown" in status.status_text(999)


def test_every_op_named(header):
    consts, _ = header
    ops = {v for k, v in consts.items() if k.startswith("OP_") and k != "OP_COUNT"}
    assert ops == set(mailbox.OP_NAMES) == set(range(consts["OP_COUNT"]))


def test_config_pack_size():
    cfg = lc.LoaderConfig(pins=(19, 17, 20, 21, 22, 23), flash_size=8 << 20,
                          init=(lc.InitInstruction(0x01, b"\x40\x00\x02", wren=True),))
    raw = cfg.pack()
    assert len(raw) == mailbox.CONFIG_SIZE
    init_off = mailbox.offset_of("ql_config", "init")
    assert raw[init_off:init_off + 12] == bytes.fromhex("01000000 03000000 01000000")


@pytest.mark.parametrize("chip", ["nrf52840", "nrf5340"])
def test_committed_elf_matches_abi(chip):
    """The mailbox symbol in the committed ELF has the size the Python mirror expects."""
    with open(loader_elf(chip), "rb") as f:
        elf = ELFFile(f)
        symtab = elf.get_section_by_name(".symtab")
        (sym,) = symtab.get_symbol_by_name("qspi_mailbox")
        assert sym["st_size"] == mailbox.MAILBOX_SIZE
        for name in ("qspi_loader_entry", "qspi_loader_build_id",
                     "qspi_loader_fault_halt", "ql_stack_mem"):
            assert symtab.get_symbol_by_name(name), name
