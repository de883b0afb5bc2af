"""NOR chip model: one test per datasheet rule (see QSPI_FACTS.md §4, §5)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from qspi_gdb.sim.nor import NorFlash
from qspi_gdb.sim.parts import (
    PARTS,
    bfp_density_bytes,
    bfp_enter_4b,
    bfp_qer,
    bfp_read_dummy,
    sfdp_tables,
)

MiB = 1 << 20


def a3(addr: int) -> bytes:
    return (addr & 0xFFFFFF).to_bytes(3, "big")


def a4(addr: int) -> bytes:
    return addr.to_bytes(4, "big")


def wren(f: NorFlash) -> None:
    f.transfer(b"\x06")


def settle(f: NorFlash) -> None:
    f.advance(f.busy_remaining + 1e-9)
    assert not f.status & 1


def program(f: NorFlash, addr: int, data: bytes, *, addr4: bool = False) -> None:
    wren(f)
    f.transfer(b"\x02" + (a4(addr) if addr4 else a3(addr)) + data)
    settle(f)


def read(f: NorFlash, addr: int, n: int, *, addr4: bool = False) -> bytes:
    return f.transfer(b"\x03" + (a4(addr) if addr4 else a3(addr)), n)


@pytest.fixture(params=sorted(PARTS))
def chip(request):
    f = NorFlash.from_part(request.param)
    yield f
    f.close()


@pytest.fixture
def mx():
    f = NorFlash.from_part("mx25r6435f")
    yield f
    f.close()


# --- identity, SFDP ---------------------------------------------------------------------------


def test_rdid_and_sfdp_header(chip):
    assert chip.transfer(b"\x9f", 3) == chip.jedec_id
    assert chip.transfer(b"\x5a" + a3(0) + b"\x00", 8)[:4] == b"SFDP"
    assert chip.transfer(b"\x5a" + a3(0) + b"\x00", 256) == chip.part.sfdp


def test_sfdp_consistent_with_part(chip):
    bfp = sfdp_tables(chip.part.sfdp)[0xFF00]
    assert bfp_density_bytes(bfp) == chip.size
    for op, clocks in bfp_read_dummy(bfp).items():
        assert chip.part.commands[op].dummy == clocks
    assert (bfp_qer(bfp) == 0) == (chip.part.qe_mask is None)


def test_sfdp_images_byte_exact_from_the_facts_sheet():
    issi = PARTS["is25wp256"].sfdp
    assert issi[:0x18].hex() == "534644500601 01ff00060110300000ff9d05010380000002".replace(" ", "")
    assert issi[0x80:0x8C].hex() == "501950169ff9c0648fefffff"
    assert bfp_enter_4b(sfdp_tables(issi)[0xFF00]) == 0xA9
    micron = sfdp_tables(PARTS["mt25qu256a"].sfdp)
    assert micron[0xFF84].hex() == "ffe7ffff21dcffff"
    assert bfp_enter_4b(micron[0xFF00]) == 0x36
    mx = PARTS["mx25r6435f"].sfdp
    assert mx[:16].hex() == "53464450060100ff00060110300000ff"
    assert mx[0x30:0x34].hex() == "e520f1ff" and mx[0x6C:0x70].hex() == "f0d0ffff"


def test_timings_decoded_from_sfdp_match_the_facts_table():
    mx = PARTS["mx25r6435f"].timings
    assert mx.page_program_typ == pytest.approx(896e-6)
    assert mx.erase_typ == pytest.approx({4096: 0.048, 32768: 0.24, 65536: 0.48})
    assert mx.chip_erase_typ == pytest.approx(52.0) and mx.chip_erase_max == pytest.approx(312.0)
    issi = PARTS["is25wp256"].timings
    assert issi.page_program_typ == pytest.approx(200e-6)
    assert issi.erase_typ[65536] == pytest.approx(0.304)
    micron = PARTS["mt25qu256a"].timings
    assert micron.page_program_typ == pytest.approx(120e-6)
    assert micron.chip_erase_max == pytest.approx(2016.0)


# --- WEL, program, erase ----------------------------------------------------------------------


def test_wren_wrdi_set_and_clear_wel(chip):
    assert chip.transfer(b"\x05", 1) == b"\x00"
    wren(chip)
    assert chip.transfer(b"\x05", 1) == b"\x02"
    chip.transfer(b"\x04")
    assert chip.transfer(b"\x05", 1) == b"\x00"


def test_program_without_wel_does_nothing(chip):
    chip.transfer(b"\x02" + a3(0x100) + b"\x00\x00")
    assert chip.busy_remaining == 0.0
    assert read(chip, 0x100, 2) == b"\xff\xff"


def test_program_ands_bits_and_clears_wel_after(chip):
    program(chip, 0x100, b"\x0f\xf0")
    program(chip, 0x100, b"\x3c\xff")
    assert read(chip, 0x100, 2) == b"\x0c\xf0"
    assert chip.transfer(b"\x05", 1) == b"\x00"


def test_program_wraps_inside_its_page(chip):
    program(chip, 0x1FE, bytes([1, 2, 3, 4]))
    assert read(chip, 0x1FE, 2) == bytes([1, 2])
    assert read(chip, 0x100, 2) == bytes([3, 4])
    assert read(chip, 0x200, 1) == b"\xff"


def test_program_more_than_a_page_keeps_the_last_page(chip):
    data = bytes(range(256)) + b"\xaa\xbb"
    program(chip, 0x1000, data)
    expected = bytearray(data[2:])  # the last 256 bytes, starting at page offset 2
    assert read(chip, 0x1000, 256) == bytes(expected[-2:] + expected[:-2])


def test_program_not_on_byte_boundary_is_rejected(mx):
    wren(mx)
    mx.frame(0x02, address=a3(0x40), data=b"\x00\x00")  # fine, baseline
    settle(mx)
    wren(mx)
    mx.begin()
    mx.shift(b"\x02" + a3(0x80) + b"\x00")
    mx.end()
    settle(mx)
    assert read(mx, 0x40, 2) == b"\x00\x00"
    assert read(mx, 0x80, 1) == b"\x00"


@pytest.mark.parametrize("opcode,size", [(0x20, 4096), (0x52, 32768), (0xD8, 65536)])
def test_sector_and_block_erase_aligned_to_ff(chip, opcode, size):
    for addr in (size - 1, size, 2 * size - 1, 2 * size):
        program(chip, addr, b"\x00")
    wren(chip)
    chip.transfer(bytes([opcode]) + a3(size + 123))
    assert chip.status & 1
    assert chip.busy_remaining == pytest.approx(chip.part.timings.erase_typ[size])
    settle(chip)
    assert read(chip, size - 1, 1) == b"\x00"
    assert read(chip, size, 1) == b"\xff"
    assert read(chip, 2 * size - 1, 1) == b"\xff"
    assert read(chip, 2 * size, 1) == b"\x00"


def test_erase_needs_wel_and_exact_frame(chip):
    program(chip, 0, b"\x00")
    chip.transfer(b"\x20" + a3(0))
    assert chip.busy_remaining == 0.0
    wren(chip)
    chip.transfer(b"\x20" + a3(0) + b"\x00")  # CS# not right after the address: rejected
    assert chip.busy_remaining == 0.0 and chip.status & 2


def test_chip_erase_both_opcodes(chip):
    for op in (0x60, 0xC7):
        program(chip, 0, b"\x00")
        program(chip, chip.size - 1 if chip.size <= 16 * MiB else 0xFFFFFF, b"\x00")
        wren(chip)
        chip.transfer(bytes([op]))
        assert chip.busy_remaining == pytest.approx(chip.part.timings.chip_erase_typ)
        settle(chip)
        assert read(chip, 0, 1) == b"\xff"
        assert read(chip, 0xFFFFFF, 1) == b"\xff"


# --- busy -------------------------------------------------------------------------------------


def test_busy_ignores_everything_but_status_reads(chip):
    program(chip, 0x10, b"\x55")
    wren(chip)
    chip.transfer(b"\x20" + a3(0))
    busy = chip.busy_remaining
    assert chip.transfer(b"\x05", 2) == b"\x03\x03"
    assert chip.transfer(b"\x03" + a3(0x10), 1) == b"\xff"
    assert chip.transfer(b"\x9f", 3) == b"\xff\xff\xff"
    chip.transfer(b"\x04")  # WRDI ignored too
    assert chip.transfer(b"\x05", 1) == b"\x03"
    chip.advance(busy / 2)
    assert chip.status & 1
    chip.advance(busy / 2)
    assert chip.transfer(b"\x05", 1) == b"\x00"
    assert read(chip, 0x10, 1) == b"\xff"


def test_status_changes_within_one_long_rdsr_frame(mx):
    wren(mx)
    mx.transfer(b"\x02" + a3(0) + b"\x00")
    mx.begin()
    assert mx.shift(b"\x05\xff") == b"\xff\x03"
    mx.advance(1.0)
    assert mx.shift(b"\xff") == b"\x00"
    mx.end()


def test_wrsr_sets_qe_and_needs_wel(mx):
    mx.transfer(b"\x01\x40")
    assert mx.transfer(b"\x05", 1) == b"\x00"
    wren(mx)
    mx.transfer(b"\x01\x40\x00\x02")
    assert mx.status & 1
    settle(mx)
    assert mx.transfer(b"\x05", 1) == b"\x40"
    assert mx.transfer(b"\x15", 2) == b"\x00\x02"
    assert mx.quad_enabled


def test_wrsr_cannot_set_wip_or_wel(mx):
    wren(mx)
    mx.transfer(b"\x01\xff")
    settle(mx)
    assert mx.transfer(b"\x05", 1) == b"\xfc"


# --- reads ------------------------------------------------------------------------------------


def test_fast_read_dummy_byte(chip):
    program(chip, 0x300, b"\x12\x34\x56")
    assert chip.transfer(b"\x0b" + a3(0x300) + b"\x00", 3) == b"\x12\x34\x56"
    # without the dummy byte, the host reads 8 clocks early: one undriven byte first
    assert chip.transfer(b"\x0b" + a3(0x300), 3) == b"\xff\x12\x34"


def test_read_wraps_at_chip_end(chip):
    program(chip, 0, b"\xab")
    if chip.size > 16 * MiB:
        wren(chip) if chip.part.en4b_needs_wren else None
        chip.transfer(b"\xb7")
        assert read(chip, chip.size - 1, 2, addr4=True) == b"\xff\xab"
    else:
        assert read(chip, chip.size - 1, 2) == b"\xff\xab"


def test_multi_io_reads_with_sfdp_dummy_cycles(chip):
    data = bytes(range(40, 56))
    program(chip, 0x500, data)
    if chip.part.qe_mask:
        wren(chip)
        chip.transfer(b"\x01\x40")
        settle(chip)
    for op, cmd in chip.part.read_commands().items():
        if cmd.addr.name == "FOUR":
            continue
        got = chip.frame(op, address=a3(0x500), addr_lines=cmd.addr_lines,
                         dummy_cycles=cmd.dummy, data_lines=cmd.data_lines, rx_len=16)
        assert got == data, hex(op)


def test_dummy_mismatch_shifts_data(mx):
    program(mx, 0x600, bytes([0x12, 0x34, 0x56, 0x78]))
    wren(mx)
    mx.transfer(b"\x01\x40")
    settle(mx)
    # 1-4-4 expects 6 clocks; 7 clocks -> host misses one nibble
    got = mx.frame(0xEB, address=a3(0x600), addr_lines=4, dummy_cycles=7, data_lines=4, rx_len=3)
    assert got == bytes([0x23, 0x45, 0x67])
    got = mx.frame(0xEB, address=a3(0x600), addr_lines=4, dummy_cycles=5, data_lines=4, rx_len=3)
    assert got == bytes([0xF1, 0x23, 0x45])


def test_quad_commands_need_qe(mx):
    program(mx, 0x700, b"\x00\x11")
    assert mx.frame(0x6B, address=a3(0x700), dummy_cycles=8, data_lines=4, rx_len=2) == b"\xff\xff"
    wren(mx)
    mx.frame(0x38, address=a3(0x800), addr_lines=4, data=b"\x00", data_lines=4)
    assert mx.busy_remaining == 0.0  # not programmed
    wren(mx)
    mx.transfer(b"\x01\x40")
    settle(mx)
    assert mx.frame(0x6B, address=a3(0x700), dummy_cycles=8, data_lines=4, rx_len=2) == b"\x00\x11"
    wren(mx)
    mx.frame(0x38, address=a3(0x800), addr_lines=4, data=b"\x5a", data_lines=4)
    settle(mx)
    assert read(mx, 0x800, 1) == b"\x5a"


def test_micron_has_no_qe_bit_and_quad_always_works():
    f = NorFlash.from_part("mt25qu256a")
    program(f, 0x40, b"\x99")
    assert f.frame(0xEB, address=a3(0x40), addr_lines=4, dummy_cycles=10, data_lines=4, rx_len=1) == b"\x99"
    f.close()


def test_mx25r_has_no_pp4o_and_no_4byte_commands(mx):
    wren(mx)
    mx.frame(0x32, address=a3(0), data=b"\x00", data_lines=4)
    assert mx.busy_remaining == 0.0
    mx.transfer(b"\xb7")
    assert not mx.four_byte_mode
    assert mx.transfer(b"\x13" + a4(0), 1) == b"\xff"


# --- address modes ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["is25wp256", "mt25qu256a"])
def test_three_byte_mode_reaches_only_low_16mib(name):
    f = NorFlash.from_part(name)
    program(f, 0x1E98000, b"\x42")  # 3-byte mode: the chip sees 0xE98000
    assert f.peek(0xE98000, 1) == b"\x42" and f.peek(0x1E98000, 1) == b"\xff"
    f.close()


def test_issi_en4b_without_wren_and_ex4b_29h():
    f = NorFlash.from_part("is25wp256")
    f.transfer(b"\xb7")
    assert f.four_byte_mode
    assert f.transfer(b"\x16", 1) == b"\x80"
    program(f, 0x1E98000, b"\x42", addr4=True)
    assert f.peek(0x1E98000, 1) == b"\x42"
    f.transfer(b"\xe9")  # not ISSI's exit opcode: ignored
    assert f.four_byte_mode
    f.transfer(b"\x29")
    assert not f.four_byte_mode
    assert f.transfer(b"\x16", 1) == b"\x00"
    f.close()


def test_issi_bank_register_selects_upper_half_and_extadd():
    f = NorFlash.from_part("is25wp256")
    f.transfer(b"\x17\x01")
    program(f, 0x123, b"\x77")
    assert f.peek(0x1000123, 1) == b"\x77"
    f.transfer(b"\x17\x80")
    assert f.four_byte_mode
    assert read(f, 0x1000123, 1, addr4=True) == b"\x77"
    f.close()


def test_micron_en4b_needs_wren_and_ear():
    f = NorFlash.from_part("mt25qu256a")
    f.transfer(b"\xb7")
    assert not f.four_byte_mode
    wren(f)
    f.transfer(b"\xb7")
    assert f.four_byte_mode and not f.status & 2
    assert f.transfer(b"\x70", 1) == b"\x81"
    f.transfer(b"\xe9")
    assert f.four_byte_mode
    wren(f)
    f.transfer(b"\xe9")
    assert not f.four_byte_mode
    f.transfer(b"\xc5\x01")  # without WREN: ignored
    assert f.transfer(b"\xc8", 1) == b"\x00"
    wren(f)
    f.transfer(b"\xc5\x01")
    assert f.transfer(b"\xc8", 1) == b"\x01"
    program(f, 0x10, b"\x31")
    assert f.peek(0x1000010, 1) == b"\x31"
    f.close()


@pytest.mark.parametrize("name", ["is25wp256", "mt25qu256a"])
def test_dedicated_4byte_opcodes_work_in_3byte_mode(name):
    f = NorFlash.from_part(name)
    wren(f)
    f.transfer(b"\x12" + a4(0x1E98000) + b"\x24")
    settle(f)
    assert f.transfer(b"\x13" + a4(0x1E98000), 1) == b"\x24"
    assert f.transfer(b"\x0c" + a4(0x1E98000) + b"\x00", 1) == b"\x24"
    wren(f)
    f.transfer(b"\x21" + a4(0x1E98000))
    settle(f)
    assert f.peek(0x1E98000, 1) == b"\xff"
    f.close()


def test_four_address_bytes_to_a_3byte_chip_give_the_wrong_address():
    f = NorFlash.from_part("is25wp256")
    program(f, 0x019800, b"\x11\x22\x33\x44")
    # host thinks 4-byte: 01 E9 80 00; chip takes 01 E9 80 as the address, 00 as data out clock
    assert f.transfer(b"\x03" + a4(0x1E98000), 2) == f.peek(0x01E980 + 1, 2)
    f.close()


def test_reset_returns_to_power_up_state():
    f = NorFlash.from_part("is25wp256")
    f.transfer(b"\xb7")
    wren(f)
    f.transfer(b"\x99")  # RST without RSTEN: ignored
    assert f.four_byte_mode
    f.transfer(b"\x66")
    f.transfer(b"\x05", 1)  # RSTEN must be immediately followed by RST
    f.transfer(b"\x99")
    assert f.four_byte_mode
    f.transfer(b"\x66")
    f.transfer(b"\x99")
    assert not f.four_byte_mode and not f.status & 2
    f.close()


def test_reset_keeps_qe(mx):
    wren(mx)
    mx.transfer(b"\x01\x40")
    settle(mx)
    mx.transfer(b"\x66")
    mx.transfer(b"\x99")
    assert mx.quad_enabled


def test_power_on_reset_loses_volatile_state_not_contents():
    f = NorFlash.from_part("mt25qu256a")
    program(f, 0, b"\x00")
    wren(f)
    f.transfer(b"\xb7")
    f.power_on_reset()
    assert not f.four_byte_mode
    assert f.peek(0, 1) == b"\x00"
    f.close()


def test_micron_nvcr_selects_4byte_at_power_up():
    f = NorFlash.from_part("mt25qu256a")
    wren(f)
    f.transfer(b"\xb1\xfe\xff")
    settle(f)
    assert f.transfer(b"\xb5", 2) == b"\xfe\xff"
    f.power_on_reset()
    assert f.four_byte_mode
    f.close()


# --- deep power-down --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["is25wp256", "mt25qu256a"])
def test_deep_power_down_and_release(name):
    f = NorFlash.from_part(name)
    f.transfer(b"\xb9")
    assert f.transfer(b"\x9f", 3) == b"\xff\xff\xff"
    assert f.transfer(b"\x05", 1) == b"\xff"
    f.transfer(b"\xab")
    assert f.transfer(b"\x9f", 3) == b"\xff\xff\xff"  # still waking up
    f.advance(f.part.timings.dpd_exit)
    assert f.transfer(b"\x9f", 3) == f.jedec_id
    f.close()


def test_mx25r_wakes_on_any_cs_pulse(mx):
    mx.transfer(b"\xb9")
    mx.transfer(b"\x9f", 3)
    mx.advance(mx.part.timings.dpd_exit)
    assert mx.transfer(b"\x9f", 3) == mx.jedec_id
    assert mx.transfer(b"\xab\x00\x00\x00", 1) == b"\x17"


def test_unknown_opcode_is_ignored(chip):
    assert chip.transfer(b"\x77\x00", 4) == b"\xff" * 4


# --- backing store ----------------------------------------------------------------------------


def test_unknown_part_names_both():
    with pytest.raises(ValueError, match=r"'nope'.*mx25r6435f"):
        NorFlash.from_part("nope")


def test_backing_wrong_size_names_file_and_part(tmp_path):
    p = tmp_path / "img.bin"
    p.write_bytes(b"\xff" * 100)
    with pytest.raises(ValueError, match=r"img\.bin.*100.*IS25WP256"):
        NorFlash.from_part("is25wp256", p)


def test_backing_created_ff_filled_and_not_sparse(tmp_path):
    p = tmp_path / "img.bin"
    f = NorFlash.from_part("is25wp256", p)
    assert p.stat().st_size == 32 * MiB
    assert p.stat().st_blocks * 512 >= 32 * MiB  # really written, not a hole
    with open(p, "rb") as fh:
        fh.seek(17 * MiB)
        assert fh.read(16) == b"\xff" * 16
    f.close()


def test_backing_changes_visible_to_another_process_at_once(tmp_path):
    p = tmp_path / "img.bin"
    f = NorFlash.from_part("mx25r6435f", p)
    program(f, 0x1234, b"\x5a\xa5")
    code = f"f=open({str(p)!r},'rb'); f.seek(0x1234); print(f.read(2).hex())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "5aa5"
    f.close()
    g = NorFlash.from_part("mx25r6435f", os.fspath(p))
    assert read(g, 0x1234, 2) == b"\x5a\xa5"
    g.close()


def test_micron_qe_style_wrsr_sets_bp3_and_protects_the_top_8mib():
    f = NorFlash.from_part("mt25qu256a")
    wren(f)
    f.transfer(b"\x01\x40")  # "set QE" the Macronix way: on Micron this is BP3
    settle(f)
    assert f.part.protected_range(f.status) == (24 * MiB, 32 * MiB)
    wren(f)
    f.transfer(b"\x12" + a4(0x1E98000) + b"\x00")
    assert f.busy_remaining == 0.0 and f.peek(0x1E98000, 1) == b"\xff"
    assert f.transfer(b"\x70", 1) == b"\x92"  # ready, program error, protection error
    f.transfer(b"\x50")
    assert f.transfer(b"\x70", 1) == b"\x80"
    f.transfer(b"\xc7")  # chip erase refused while any BP bit is set
    assert f.busy_remaining == 0.0
    program(f, 0x1000, b"\x00")  # below the protected area: fine
    assert f.peek(0x1000, 1) == b"\x00"
    f.close()


def test_block_protect_bits_top_down(mx):
    wren(mx)
    mx.transfer(b"\x01\x08")  # BP1 -> N=2 -> top 128 KiB
    settle(mx)
    assert mx.part.protected_range(mx.status) == (mx.size - 0x20000, mx.size)
    program(mx, mx.size - 0x20000, b"\x00")
    assert mx.peek(mx.size - 0x20000, 1) == b"\xff"
    program(mx, mx.size - 0x20001, b"\x00")
    assert mx.peek(mx.size - 0x20001, 1) == b"\x00"
    wren(mx)
    mx.transfer(b"\xd8" + a3(mx.size - 0x10000))
    assert mx.busy_remaining == 0.0


def test_unknown_part_with_backing_names_the_file_too(tmp_path):
    with pytest.raises(ValueError, match=r"'w25q999'.*known parts.*img\.bin"):
        NorFlash.from_part("w25q999", tmp_path / "img.bin")
    assert not (tmp_path / "img.bin").exists()
