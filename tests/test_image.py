"""Image inputs: .bin@addr, .hex, .elf -> sorted flash-offset segments; bad inputs -> UsageError."""

import struct

import pytest
from intelhex import IntelHex

from qspi_gdb.errors import UsageError
from qspi_gdb.inputs.image import load_image, parse_int, split_spec, to_flash_offset

NRF5340 = 0x10000000
NRF52840 = 0x12000000


def build_elf(segments):
    """segments: list of (p_paddr, data, p_vaddr=None, memsz=None, p_type=1)."""
    ehsize, phentsize = 52, 32
    phoff = ehsize
    data_off = phoff + phentsize * len(segments)
    phdrs, blobs = b"", b""
    for seg in segments:
        paddr, data, vaddr, memsz, ptype = (*seg, None, None, None)[:5]
        ptype = 1 if ptype is None else ptype  # PT_LOAD
        vaddr = paddr if vaddr is None else vaddr
        memsz = len(data) if memsz is None else memsz
        offset = data_off + len(blobs)
        phdrs += struct.pack("<8I", ptype, offset, vaddr, paddr, len(data), memsz, 5, 4)
        blobs += data
    ident = b"\x7fELF" + bytes([1, 1, 1, 0]) + bytes(8)
    header = ident + struct.pack(
        "<HHIIIIIHHHHHH", 2, 40, 1, 0, phoff, 0, 0x05000200, ehsize, phentsize, len(segments), 40, 0, 0
    )
    return header + phdrs + blobs


@pytest.fixture
def blob(tmp_path):
    data = bytes(range(256)) * 7 + b"\x01\x02\x03"
    path = tmp_path / "zephyr.recovery.bin"
    path.write_bytes(data)
    return path, data


def write_hex(path, chunks):
    ih = IntelHex()
    for addr, data in chunks:
        for i, b in enumerate(data):
            ih[addr + i] = b
    ih.write_hex_file(str(path))
    return path


@pytest.mark.parametrize(
    "spec_addr, kind, offset",
    [
        (0x11E98000, "xip", 0x1E98000),  # the seed case: XIP address on nRF5340
        (0x1E98000, "offset", 0x1E98000),  # the same place as a raw flash offset
        (0x10000000, "xip", 0),
    ],
)
def test_bin_at_xip_address_or_offset(blob, spec_addr, kind, offset):
    path, data = blob
    img = load_image(f"{path}@0x{spec_addr:X}", xip_base=NRF5340)
    assert img.kind == "bin" and img.address_kind == kind and img.given_address == spec_addr
    assert [(s.offset, s.data, s.address) for s in img.segments] == [(offset, data, spec_addr)]
    assert img.size == len(data) and img.start == offset and img.end == offset + len(data)
    assert f"0x{spec_addr:08X}" in img.describe()


def test_bin_with_separate_addr_and_raw_offsets(blob):
    path, data = blob
    img = load_image(path, xip_base=NRF52840, addr="0x12001000")
    assert img.segments[0].offset == 0x1000 and img.address_kind == "xip"
    img = load_image(path, xip_base=NRF52840, addr=0x1000, raw_offsets=True)
    assert img.segments[0].offset == 0x1000 and img.address_kind == "offset"


def test_bin_address_problems(blob):
    path, _ = blob
    with pytest.raises(UsageError, match="needs an address"):
        load_image(path, xip_base=NRF5340)
    with pytest.raises(UsageError, match="address given twice"):
        load_image(f"{path}@0x1000", xip_base=NRF5340, addr=0x2000)
    with pytest.raises(UsageError, match="XIP window 0x10000000..0x17FFFFFF"):
        load_image(f"{path}@0x20000000", xip_base=NRF5340)
    with pytest.raises(UsageError, match="not a number"):
        load_image(path, xip_base=NRF5340, addr="0x12G")


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(UsageError, match="no such file") as e:
        load_image(tmp_path / "nope.bin@0x0", xip_base=NRF5340)
    assert "nope.bin" in str(e.value)
    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(UsageError, match="empty"):
        load_image(f"{tmp_path / 'empty.bin'}@0", xip_base=NRF5340)


def test_path_with_at_sign_is_not_an_address(tmp_path):
    path = tmp_path / "build@v2.hex"
    write_hex(path, [(0x10000000, b"abc")])
    img = load_image(path, xip_base=NRF5340)
    assert img.segments[0].offset == 0 and img.kind == "hex"


def test_file_really_named_with_at_address(tmp_path):
    path = tmp_path / "odd@0x100"
    path.write_bytes(b"abc")
    img = load_image(str(path), xip_base=NRF5340, addr=0x2000)
    assert img.segments[0].offset == 0x2000


def test_hex_many_segments_sorted_and_echoed(tmp_path):
    path = write_hex(
        tmp_path / "app.hex",
        [(0x10200000, b"\x11" * 40), (0x10000010, b"\x22" * 5), (0x11E98000, b"\x33" * 300)],
    )
    img = load_image(path, xip_base=NRF5340)
    assert [(s.offset, len(s.data), s.address) for s in img.segments] == [
        (0x10, 5, 0x10000010),
        (0x200000, 40, 0x10200000),
        (0x1E98000, 300, 0x11E98000),
    ]
    assert img.given_address is None and img.address_kind == "xip"


def test_hex_raw_offsets(tmp_path):
    path = write_hex(tmp_path / "raw.hex", [(0x1000, b"xyz")])
    img = load_image(path, xip_base=NRF5340, raw_offsets=True)
    assert img.segments[0].offset == 0x1000 and img.address_kind == "offset"
    with pytest.raises(UsageError, match="outside the QSPI XIP window"):
        load_image(path, xip_base=NRF5340)


def test_hex_bad_checksum_names_the_file(tmp_path):
    path = write_hex(tmp_path / "bad.hex", [(0x10000000, b"\x00" * 16)])
    lines = path.read_text().splitlines()
    rec = lines[1]
    lines[1] = rec[:-2] + f"{(int(rec[-2:], 16) + 1) & 0xFF:02X}"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UsageError, match=r"bad\.hex: bad Intel HEX: .*[Cc]hecksum") as e:
        load_image(path, xip_base=NRF5340)
    assert "\n" not in str(e.value)


def test_hex_overlapping_records_name_both_ranges(tmp_path):
    path = tmp_path / "overlap.hex"
    path.write_text(
        ":020000041000EA\n"
        ":10000000000102030405060708090A0B0C0D0E0F78\n"
        ":10000800000102030405060708090A0B0C0D0E0F70\n"
        ":00000001FF\n"
    )
    with pytest.raises(UsageError) as e:
        load_image(path, xip_base=NRF5340)
    msg = str(e.value)
    assert "line 3" in msg and "0x10000008..0x10000017" in msg and "0x10000000..0x1000000F" in msg


def test_merged_hex_with_internal_flash_part(tmp_path):
    path = write_hex(tmp_path / "merged.hex", [(0x0, b"\xaa" * 64), (0x10001000, b"\xbb" * 64)])
    with pytest.raises(UsageError) as e:
        load_image(path, xip_base=NRF5340)
    assert "0x00000000..0x0000003F" in str(e.value) and "--only-qspi" in str(e.value)
    img = load_image(path, xip_base=NRF5340, only_qspi=True)
    assert [(s.offset, len(s.data)) for s in img.segments] == [(0x1000, 64)]
    assert img.skipped == ((0x0, 64),)


def test_hex_entirely_outside_with_only_qspi_is_still_an_error(tmp_path):
    path = write_hex(tmp_path / "internal.hex", [(0x0, b"\xaa" * 4)])
    with pytest.raises(UsageError, match="no data inside"):
        load_image(path, xip_base=NRF5340, only_qspi=True)


def test_elf_pt_load_at_paddr(tmp_path):
    path = tmp_path / "app.elf"
    path.write_bytes(
        build_elf(
            [
                (0x12000100, b"code" * 8),
                (0x12000120, b"data", 0x20000000),  # LMA in flash, VMA in RAM: placed at paddr
                (0x20001000, b"", None, 0x100),  # .bss: no file data, ignored
            ]
        )
    )
    img = load_image(path, xip_base=NRF52840)
    # the two loadable chunks touch, so they become one segment
    assert [(s.offset, s.data) for s in img.segments] == [(0x100, b"code" * 8 + b"data")]
    assert img.kind == "elf"


def test_elf_overlapping_segments(tmp_path):
    path = tmp_path / "bad.elf"
    path.write_bytes(build_elf([(0x10000000, b"a" * 32), (0x10000010, b"b" * 32)]))
    with pytest.raises(UsageError, match=r"overlap: 0x10000000..0x1000001F and 0x10000010..0x1000002F"):
        load_image(path, xip_base=NRF5340)


def test_elf_outside_window_listed(tmp_path):
    path = tmp_path / "merged.elf"
    path.write_bytes(build_elf([(0x00000000, b"v" * 8), (0x10000000, b"q" * 8)]))
    with pytest.raises(UsageError, match="0x00000000..0x00000007"):
        load_image(path, xip_base=NRF5340)


def test_garbage_elf(tmp_path):
    path = tmp_path / "junk.elf"
    path.write_bytes(b"\x7fELF" + b"\x00" * 10)
    with pytest.raises(UsageError, match="junk.elf"):
        load_image(path, xip_base=NRF5340)


def test_kind_sniffed_without_suffix(tmp_path):
    path = tmp_path / "image"
    path.write_bytes(build_elf([(0x10000000, b"zz")]))
    assert load_image(path, xip_base=NRF5340).kind == "elf"


def test_hex_refuses_an_address(tmp_path):
    path = write_hex(tmp_path / "a.hex", [(0x10000000, b"a")])
    with pytest.raises(UsageError, match="carries its own addresses"):
        load_image(f"{path}@0x1000", xip_base=NRF5340)


@pytest.mark.parametrize(
    "text, value",
    [("0x11E98000", 0x11E98000), ("4096", 4096), ("32M", 32 << 20), ("64K", 65536), ("0x1_000", 0x1000)],
)
def test_parse_int(text, value):
    assert parse_int(text) == value


@pytest.mark.parametrize("text", ["01", "0100", "007K"])
def test_parse_int_refuses_a_leading_zero(text):
    # found by the ini fuzz test: int(..., 0) raised a bare ValueError for "01"
    with pytest.raises(UsageError, match="leading zero"):
        parse_int(text)
    assert parse_int("00") == 0 and parse_int("0") == 0


def test_split_spec_and_offsets():
    assert split_spec("a.bin@0x100") == ("a.bin", 0x100)
    assert split_spec("a@b.bin") == ("a@b.bin", None)
    assert to_flash_offset(0x11E98000, xip_base=NRF5340) == (0x1E98000, "xip")
    assert to_flash_offset(0x13000000, xip_base=NRF52840) == (0x1000000, "xip")
    assert to_flash_offset(0x1000000, xip_base=NRF52840) == (0x1000000, "offset")
    with pytest.raises(UsageError):
        to_flash_offset(0x8000000, xip_base=NRF5340)
