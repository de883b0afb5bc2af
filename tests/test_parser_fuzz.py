"""The parsers under arbitrary input (issue 12): Intel HEX and ELF files, nrfutil JSON, nrfjprog
ini and TOML configs, SFDP tables and the loader's status words either parse or raise one of
the typed errors of `qspi_gdb.errors` (rendered as one line with its exit code) — never a
bare ValueError, KeyError, IndexError, struct.error or UnicodeError, which the command line
would report as an internal error (exit 1)."""

from __future__ import annotations

import json
import struct
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from intelhex import IntelHex

from qspi_gdb.errors import QspiGdbError
from qspi_gdb.inputs.config_files import (
    load_config_file,
    parse_nrfjprog_ini,
    parse_nrfjprog_toml,
    parse_nrfutil_json,
)
from qspi_gdb.inputs.image import load_image
from qspi_gdb.inputs.parts import PARTS
from qspi_gdb.inputs.sfdp_decode import parse_bfpt, parse_sfdp
from qspi_gdb.loader import mailbox as mb
from qspi_gdb.loader.status import error_for, status_text

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
XIP = 0x10000000
_DIR = Path(tempfile.mkdtemp(prefix="qspi-fuzz-"))


def typed_or_ok(call, *args, **kwargs):
    try:
        return call(*args, **kwargs)
    except QspiGdbError as exc:
        assert str(exc) and "\n" not in str(exc), repr(exc)
        return None


def as_file(name: str, data: bytes) -> Path:
    path = _DIR / name
    path.write_bytes(data)
    return path


# -- Intel HEX ---------------------------------------------------------------------------------

HEX_CHARS = st.text(alphabet="0123456789ABCDEFabcdef:\n \r", max_size=400)


@FUZZ
@given(HEX_CHARS)
def test_hex_text_of_hex_characters(text):
    typed_or_ok(load_image, as_file("fuzz.hex", text.encode()), xip_base=XIP)


def _good_hex() -> list[str]:
    ih = IntelHex()
    ih.frombytes(bytes(range(256)) * 4, offset=XIP + 0x1000)
    ih.start_addr = {"EIP": XIP + 0x1001}
    path = _DIR / "good.hex"
    ih.write_hex_file(str(path))
    return path.read_text().splitlines(keepends=True)


GOOD_HEX = _good_hex()


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(GOOD_HEX) - 1), st.integers(0, 60),
                          st.sampled_from("0123456789ABCDEF:G\n")), max_size=6),
       st.integers(0, len(GOOD_HEX)))
def test_hex_files_with_changed_characters_or_cut_short(edits, keep):
    lines = list(GOOD_HEX)
    for line, col, char in edits:
        text = lines[line]
        lines[line] = text[:col] + char + text[col + 1:]
    typed_or_ok(load_image, as_file("edited.hex", "".join(lines[:keep]).encode()), xip_base=XIP)


# -- ELF headers -------------------------------------------------------------------------------

ARM_ELF_HEADER = (b"\x7fELF\x01\x01\x01" + bytes(9) + struct.pack(
    "<HHIIIIIHHHHHH", 2, 40, 1, XIP, 52, 0, 0x05000200, 52, 32, 1, 40, 0, 0))


@FUZZ
@given(st.binary(max_size=300), st.integers(0, len(ARM_ELF_HEADER)))
def test_elf_files_with_a_random_tail_or_a_cut_header(tail, keep):
    typed_or_ok(load_image, as_file("fuzz.elf", ARM_ELF_HEADER[:keep] + tail), xip_base=XIP)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 51), st.integers(0, 255)), max_size=8),
       st.binary(min_size=0, max_size=128))
def test_elf_headers_with_changed_bytes(edits, body):
    header = bytearray(ARM_ELF_HEADER)
    for at, value in edits:
        header[at] = value
    typed_or_ok(load_image, as_file("edited.elf", bytes(header) + body), xip_base=XIP)


# -- config files ------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12)
NRFUTIL_KEYS = ("flash_size", "address_mode", "readoc", "writeoc", "pp_size", "page_size",
                "sck_frequency", "sck_delay", "rx_delay", "spi_mode", "pins", "jedec_id",
                "instructions")


@FUZZ
@given(st.text(max_size=200))
def test_json_text(text):
    typed_or_ok(parse_nrfutil_json, text)


@FUZZ
@given(st.dictionaries(st.sampled_from(NRFUTIL_KEYS), JSON_VALUES, max_size=6))
def test_json_objects_with_known_keys_and_any_values(obj):
    typed_or_ok(parse_nrfutil_json, json.dumps(obj))


@FUZZ
@given(st.text(max_size=300))
def test_ini_text(text):
    typed_or_ok(parse_nrfjprog_ini, text)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["MemSize", "ReadMode", "WriteMode", "AddressMode",
                                           "Frequency", "SckDelay", "CustomInstructions",
                                           "PageSize", "CSN", "SCK", "IO0", "Unknown"]),
                          st.text(alphabet="0123456789xXabcdefABCDEF-, ;=", max_size=12)),
                max_size=8))
def test_ini_files_with_known_keys_and_any_values(pairs):
    text = "[DEFAULT_CONFIGURATION]\n" + "".join(f"{k} = {v}\n" for k, v in pairs)
    typed_or_ok(parse_nrfjprog_ini, text)


@FUZZ
@given(st.text(max_size=300))
def test_toml_text(text):
    typed_or_ok(parse_nrfjprog_toml, text)


@FUZZ
@given(st.binary(max_size=200), st.sampled_from([".json", ".ini", ".toml", ".cfg"]))
def test_config_files_of_any_bytes(data, suffix):
    typed_or_ok(load_config_file, as_file(f"fuzz{suffix}", data))


# -- SFDP --------------------------------------------------------------------------------------

DUMPS = [p.sfdp_bytes for p in PARTS if p.sfdp_bytes]


@FUZZ
@given(st.binary(max_size=300))
def test_sfdp_of_random_bytes(data):
    typed_or_ok(parse_sfdp, b"SFDP" + data)
    typed_or_ok(parse_bfpt, data)


@FUZZ
@given(st.sampled_from(DUMPS),
       st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255)), min_size=1, max_size=6),
       st.integers(0, 512))
def test_real_sfdp_tables_with_changed_bytes_or_cut_short(dump, edits, keep):
    data = bytearray(dump)
    for at, value in edits:
        if at < len(data):
            data[at] = value
    typed_or_ok(parse_sfdp, bytes(data[:keep]))


# -- loader status words -------------------------------------------------------------------------

WORD = st.integers(0, 2**32 - 1)


@FUZZ
@given(WORD, WORD, WORD, WORD, WORD, WORD)
def test_any_status_word_becomes_a_typed_error_with_one_line(status, op, addr, length, r0, r1):
    cmd = mb.Command(op=op, addr=addr, len=length)
    names = [name for name, _ in mb.CMD_FIELDS]  # the slot's words, as the C header has them
    words = [0] * len(names)
    for name, value in (("status", status), ("result0", r0), ("result1", r1)):
        words[names.index(name)] = value
    cmd.unpack_results(struct.pack(f"<{len(words)}I", *words))
    err = error_for(cmd.status, cmd)
    assert isinstance(err, QspiGdbError)
    assert str(err).startswith("loader: ") and "\n" not in str(err)
    assert status_text(status)


@FUZZ
@given(st.binary(min_size=mb.HEADER_WORDS * 4, max_size=mb.HEADER_WORDS * 4 + 64))
def test_any_mailbox_header_unpacks(raw):
    header = mb.MailboxHeader.unpack(raw)
    assert header.magic == struct.unpack_from("<I", raw)[0]
