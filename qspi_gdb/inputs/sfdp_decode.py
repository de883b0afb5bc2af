"""JESD216 (SFDP) decoding: pure functions over the bytes read with RDSFDP (0x5A) into the
data of `qspi_gdb.inputs.sfdp`. Covers the SFDP header, the parameter headers, BFPT DWORDs 1-16
and the 4BAIT (ID 0xFF84). Field layouts follow JESD216B as implemented by Zephyr
`drivers/flash/jesd216.c` and Linux `drivers/mtd/spi-nor/sfdp.c` (see QSPI_FACTS.md section 5).
"""

from __future__ import annotations

import struct

from qspi_gdb.inputs.sfdp import (
    ID_4BAIT,
    ID_BFPT,
    SIGNATURE,
    Bfpt,
    EraseType,
    FastRead,
    FourByteAddressTable,
    ParameterHeader,
    Sfdp,
    SfdpError,
)

_ERASE_UNIT_MS = (1, 16, 128, 1000)
_CHIP_ERASE_UNIT_MS = (16, 256, 4000, 64000)


def _dwords(data: bytes) -> tuple[int, ...]:
    n = len(data) // 4
    return struct.unpack(f"<{n}I", data[: 4 * n])


def _fast_read(mode: str, half: int) -> FastRead:
    return FastRead(mode, opcode=half >> 8 & 0xFF, mode_clocks=half >> 5 & 0x7, wait_states=half & 0x1F)


def density_bytes(dw2: int) -> int:
    """DW2: bit 31 clear -> (value + 1) bits; set -> 2**value bits."""
    if dw2 & 0x80000000:
        exp = dw2 & 0x7FFFFFFF
        if exp < 3 or exp > 63:
            raise SfdpError(f"SFDP BFPT DW2 0x{dw2:08X}: density 2^{exp} bits is not a flash size")
        return (1 << exp) // 8
    return (dw2 + 1) // 8


def parse_bfpt(data: bytes) -> Bfpt:
    """Decode a Basic Flash Parameter Table (at least the 9 DWORDs of JESD216 1.0)."""
    dw = _dwords(data)
    if len(dw) < 9:
        raise SfdpError(f"SFDP BFPT has {len(dw)} DWORDs; JESD216 needs at least 9")
    dw1 = dw[0]
    erase_4k_supported = (dw1 & 0x3) == 0x1
    addr_bits = dw1 >> 17 & 0x3
    if addr_bits == 3:
        raise SfdpError(f"SFDP BFPT DW1 0x{dw1:08X}: address bytes field 11b is reserved")
    address_bytes = {0: "3", 1: "3/4", 2: "4"}[addr_bits]

    fast_reads = []
    for bit, mode, dword, shift in (
        (16, "1-1-2", 3, 0),
        (20, "1-2-2", 3, 16),
        (22, "1-1-4", 2, 16),
        (21, "1-4-4", 2, 0),
    ):
        if dw1 >> bit & 1:
            fast_reads.append(_fast_read(mode, dw[dword] >> shift & 0xFFFF))
    if dw[4] & 0x01:
        fast_reads.append(_fast_read("2-2-2", dw[5] >> 16))
    if dw[4] & 0x10:
        fast_reads.append(_fast_read("4-4-4", dw[6] >> 16))

    # DW10 (JESD216A+): typical erase times and the max multiplier.
    times: dict[int, tuple[float, float]] = {}
    if len(dw) >= 10:
        dw10 = dw[9]
        mult = 2 * ((dw10 & 0xF) + 1)
        for i in range(4):
            v = dw10 >> (4 + 7 * i) & 0x7F
            typ = ((v & 0x1F) + 1) * _ERASE_UNIT_MS[v >> 5]
            times[i + 1] = (float(typ), float(typ * mult))
    erase_types = []
    for i in range(4):
        half = dw[7 + i // 2] >> (16 * (i % 2)) & 0xFFFF
        exp = half & 0xFF
        if exp == 0:
            continue
        typ_max = times.get(i + 1, (None, None))
        erase_types.append(
            EraseType(index=i + 1, size=1 << exp, opcode=half >> 8, typ_ms=typ_max[0], max_ms=typ_max[1])
        )

    extra: dict = {}
    if len(dw) >= 11:
        dw11 = dw[10]
        mult = 2 * ((dw11 & 0xF) + 1)
        pp_typ = ((dw11 >> 8 & 0x1F) + 1) * (64 if dw11 >> 13 & 1 else 8)
        ce_typ = ((dw11 >> 24 & 0x1F) + 1) * _CHIP_ERASE_UNIT_MS[dw11 >> 29 & 0x3]
        extra.update(
            page_size=1 << (dw11 >> 4 & 0xF),
            page_program_typ_us=float(pp_typ),
            page_program_max_us=float(pp_typ * mult),
            chip_erase_typ_ms=float(ce_typ),
            chip_erase_max_ms=float(ce_typ * mult),
        )
    if len(dw) >= 12:
        extra["suspend_resume"] = not dw[11] >> 31 & 1
    if len(dw) >= 14:
        dw14 = dw[13]
        if not dw14 >> 31 & 1:
            extra["deep_power_down"] = (dw14 >> 23 & 0xFF, dw14 >> 15 & 0xFF)
    if len(dw) >= 15:
        extra["qer"] = dw[14] >> 20 & 0x7
    if len(dw) >= 16:
        enter = dw[15] >> 24 & 0xFF
        exit_ = dw[15] >> 14 & 0x3FF
        # All-ones (unprogrammed) and zero both mean "no method declared" (Zephyr does so).
        if enter not in (0x00, 0xFF):
            extra["enter_4b_bits"] = enter
        if exit_ not in (0x000, 0x3FF):
            extra["exit_4b_bits"] = exit_

    return Bfpt(
        dwords=tuple(dw),
        erase_4k_supported=erase_4k_supported,
        erase_4k_opcode=(dw1 >> 8 & 0xFF) if erase_4k_supported else None,
        address_bytes=address_bytes,
        dtr=bool(dw1 >> 19 & 1),
        density_bytes=density_bytes(dw[1]),
        fast_reads=tuple(fast_reads),
        erase_types=tuple(erase_types),
        **extra,
    )


def parse_header(data: bytes) -> tuple[int, int, int, tuple[ParameterHeader, ...]]:
    """SFDP header + parameter headers -> (major, minor, access protocol, headers)."""
    if len(data) < 16:
        raise SfdpError(f"SFDP data is {len(data)} bytes; the header alone needs 16")
    if data[:4] != SIGNATURE:
        raise SfdpError(f"SFDP signature is {data[:4].hex(' ')}, expected 53 46 44 50 ('SFDP')")
    minor, major, nph, access = data[4], data[5], data[6], data[7]
    if major != 1:
        raise SfdpError(f"SFDP major revision {major} is not supported (expected 1)")
    count = nph + 1
    if len(data) < 8 + 8 * count:
        raise SfdpError(f"SFDP announces {count} parameter headers but only {len(data)} bytes were read")
    headers = []
    for i in range(count):
        h = data[8 + 8 * i : 16 + 8 * i]
        headers.append(
            ParameterHeader(
                id=h[7] << 8 | h[0],
                minor=h[1],
                major=h[2],
                length_dwords=h[3],
                pointer=h[4] | h[5] << 8 | h[6] << 16,
            )
        )
    if headers[0].id != ID_BFPT:
        raise SfdpError(f"first SFDP parameter header has ID 0x{headers[0].id:04X}, expected 0xFF00 (BFPT)")
    return major, minor, access, tuple(headers)


def required_length(prefix: bytes) -> int:
    """Bytes to read so every table is included, given at least the header + parameter headers.

    With only 8 bytes, returns the length of the header plus all parameter headers.
    """
    if len(prefix) < 8 or prefix[:4] != SIGNATURE:
        raise SfdpError(f"SFDP signature is {prefix[:4].hex(' ')}, expected 53 46 44 50 ('SFDP')")
    headers_end = 8 + 8 * (prefix[6] + 1)
    if len(prefix) < headers_end:
        return headers_end
    _, _, _, headers = parse_header(prefix)
    return max(headers_end, *(h.pointer + 4 * h.length_dwords for h in headers))


def parse_sfdp(data: bytes) -> Sfdp:
    """Decode a full SFDP image read from address 0."""
    major, minor, access, headers = parse_header(data)

    def table(h: ParameterHeader) -> bytes:
        end = h.pointer + 4 * h.length_dwords
        if end > len(data):
            raise SfdpError(
                f"SFDP table {h.name} at 0x{h.pointer:X} (+{4 * h.length_dwords} bytes) "
                f"lies past the {len(data)} bytes read"
            )
        return data[h.pointer : end]

    # Use the newest BFPT revision present (JESD216 allows several).
    bfpt_headers = [h for h in headers if h.id == ID_BFPT]
    bfpt_header = max(bfpt_headers, key=lambda h: (h.major, h.minor, h.length_dwords))
    bfpt = parse_bfpt(table(bfpt_header))

    four_bait = None
    for h in headers:
        if h.id == ID_4BAIT and h.length_dwords >= 2:
            dw1, dw2 = _dwords(table(h))[:2]
            four_bait = FourByteAddressTable(dw1, dw2)
            bfpt = _with_4b_erase_opcodes(bfpt, four_bait)
            break

    return Sfdp(
        major=major,
        minor=minor,
        access_protocol=access,
        headers=headers,
        bfpt=bfpt,
        four_byte_table=four_bait,
        raw=bytes(data),
    )


def _with_4b_erase_opcodes(bfpt: Bfpt, table: FourByteAddressTable) -> Bfpt:
    from dataclasses import replace

    types = tuple(replace(et, opcode_4b=table.erase_opcode(et.index)) for et in bfpt.erase_types)
    return replace(bfpt, erase_types=types)
