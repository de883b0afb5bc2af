"""SFDP decoder against the three public dumps (QSPI_FACTS.md section 5.6)."""

import pytest

from qspi_gdb.errors import TargetError
from qspi_gdb.inputs.parts import (
    IS25WP256_SFDP,
    MT25QU256A_SFDP,
    MX25R6435F_BFPT,
    MX25R6435F_SFDP,
    wrap_bfpt,
)
from qspi_gdb.inputs.sfdp import SfdpError
from qspi_gdb.inputs.sfdp_decode import (
    density_bytes,
    parse_bfpt,
    parse_sfdp,
    required_length,
)


def erase_table(sfdp):
    return {(e.size, e.opcode, e.typ_ms, e.max_ms, e.opcode_4b) for e in sfdp.bfpt.erase_types}


def test_mx25r6435f_bfpt_decodes_as_the_dk_part():
    s = parse_sfdp(MX25R6435F_SFDP)
    b = s.bfpt
    assert b.dwords[0] == 0xFFF120E5 and b.dwords[15] == 0xFFFFD0F0
    assert s.size == 8 << 20
    assert b.address_bytes == "3"
    assert b.erase_4k_supported and b.erase_4k_opcode == 0x20
    assert erase_table(s) == {
        (4096, 0x20, 48.0, 384.0, None),
        (32768, 0x52, 240.0, 1920.0, None),
        (65536, 0xD8, 480.0, 3840.0, None),
    }
    assert b.page_size == 256
    assert (b.page_program_typ_us, b.page_program_max_us) == (896.0, 5376.0)
    assert (b.chip_erase_typ_ms, b.chip_erase_max_ms) == (52000.0, 312000.0)
    assert b.qer == 2 and b.qer_name == "S1B6"
    assert b.enter_4b_bits is None and b.enter_4b_methods == ()
    assert b.deep_power_down == (0xB9, 0xAB)
    assert not s.four_byte_capable and s.four_byte_entry is None and s.four_byte_exit is None
    reads = {fr.mode: (fr.opcode, fr.mode_clocks, fr.wait_states) for fr in b.fast_reads}
    assert reads == {
        "1-1-2": (0x3B, 0, 8),
        "1-2-2": (0xBB, 0, 4),
        "1-1-4": (0x6B, 0, 8),
        "1-4-4": (0xEB, 2, 4),
    }


def test_is25wp256_dw1_says_3_byte_only_but_dw16_enters_4_byte_mode():
    s = parse_sfdp(IS25WP256_SFDP)
    assert (s.major, s.minor) == (1, 6)
    assert [(h.id, h.length_dwords, h.pointer) for h in s.headers] == [(0xFF00, 16, 0x30), (0x029D, 3, 0x80)]
    assert s.headers[1].name == "vendor 0x029D"
    assert s.size == 32 << 20
    assert s.bfpt.address_bytes == "3"
    assert s.bfpt.enter_4b_bits == 0xA9
    assert s.bfpt.enter_4b_methods == ("B7", "bank-register", "dedicated-4byte-opcodes")
    assert s.four_byte_table is None
    assert s.four_byte_capable
    assert s.four_byte_entry == "B7"
    assert s.four_byte_exit == "bank-register"  # DW16 exit methods: bank register, resets, power cycle
    assert erase_table(s) == {
        (4096, 0x20, 48.0, 384.0, None),
        (32768, 0x52, 160.0, 1280.0, None),
        (65536, 0xD8, 304.0, 2432.0, None),
    }
    assert s.bfpt.page_size == 256
    assert (s.bfpt.page_program_typ_us, s.bfpt.page_program_max_us) == (200.0, 1200.0)
    assert s.bfpt.chip_erase_typ_ms == 60000.0
    assert s.bfpt.qer_name == "S1B6"


def test_mt25qu256a_has_a_4bait_and_needs_wren_before_b7():
    s = parse_sfdp(MT25QU256A_SFDP)
    assert [(h.id, h.major, h.minor, h.length_dwords, h.pointer) for h in s.headers] == [
        (0xFF00, 1, 6, 16, 0x30),
        (0xFF84, 1, 0, 2, 0x80),
    ]
    assert s.size == 32 << 20
    assert s.bfpt.address_bytes == "3/4"
    assert s.bfpt.enter_4b_bits == 0x36
    assert s.bfpt.enter_4b_methods == (
        "WREN+B7",
        "extended-address-register",
        "nv-config-register",
        "dedicated-4byte-opcodes",
    )
    assert s.four_byte_entry == "WREN+B7" and s.four_byte_exit == "WREN+E9"
    t = s.four_byte_table
    assert (t.dw1, t.dw2) == (0xFFFFE7FF, 0xFFFFDC21)
    assert set(t.instructions) >= {"READ", "FAST_READ", "PP", "PP_1_1_4", "PP_1_4_4", "READ_1_4_4"}
    assert [t.erase_opcode(i) for i in (1, 2, 3, 4)] == [0x21, 0xDC, None, None]
    assert erase_table(s) == {
        (4096, 0x20, 48.0, 480.0, 0x21),
        (65536, 0xD8, 160.0, 1600.0, 0xDC),
        (32768, 0x52, 112.0, 1120.0, None),
    }
    assert s.bfpt.qer == 0 and s.bfpt.qer_name == "none"
    assert (s.bfpt.page_program_typ_us, s.bfpt.page_program_max_us) == (120.0, 2880.0)
    assert (s.bfpt.chip_erase_typ_ms, s.bfpt.chip_erase_max_ms) == (84000.0, 2016000.0)


@pytest.mark.parametrize("dump", [IS25WP256_SFDP, MT25QU256A_SFDP, MX25R6435F_SFDP])
def test_required_length_covers_every_table(dump):
    assert required_length(dump[:8]) == 8 + 8 * (dump[6] + 1)
    assert required_length(dump[: required_length(dump[:8])]) == len(dump)


def test_summary_is_json_and_describe_names_the_entry_method():
    import json

    s = parse_sfdp(IS25WP256_SFDP)
    summary = json.loads(json.dumps(s.summary()))
    assert summary["four_byte_entry"] == "B7"
    assert summary["quad_enable"] == "S1B6"
    assert summary["page_size"] == 256
    assert [e["size"] for e in summary["erase_types"]] == [4096, 32768, 65536]
    text = "\n".join(s.describe())
    assert "4-byte mode for nRF QSPI: B7" in text and "32 MiB" in text


def test_density_both_encodings():
    assert density_bytes(0x03FFFFFF) == 8 << 20
    assert density_bytes(0x80000000 | 34) == 2 << 30


def test_old_9_dword_bfpt_has_no_times():
    b = parse_bfpt(MX25R6435F_BFPT[:36])
    assert b.page_size is None and b.qer is None and b.enter_4b_bits is None
    assert {e.typ_ms for e in b.erase_types} == {None}


def test_4_byte_only_dw1_without_dw16_means_always_4byte():
    bfpt = bytearray(MX25R6435F_BFPT[:36])
    bfpt[2] = (bfpt[2] & ~0x06) | 0x04  # DW1 bits 18:17 = 10b
    s = parse_sfdp(wrap_bfpt(bytes(bfpt)))
    assert s.bfpt.address_bytes == "4" and s.four_byte_entry == "always-4byte"


@pytest.mark.parametrize(
    "data, message",
    [
        (b"SFDX" + bytes(12), "signature"),
        (b"SFDP\x06\x02\x00\xff" + bytes(8), "major revision 2"),
        (b"SFDP\x06\x01\x00\xff" + bytes([0x84, 0, 1, 2, 16, 0, 0, 0xFF]), "expected 0xFF00"),
        (IS25WP256_SFDP[:0x50], "past the"),
        (b"SFDP", "16"),
    ],
)
def test_malformed_sfdp_is_a_target_error(data, message):
    with pytest.raises(SfdpError, match=message) as e:
        parse_sfdp(data)
    assert isinstance(e.value, TargetError)
