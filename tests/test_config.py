"""Flash configuration: presets, nrfutil JSON, nrfjprog ini/TOML, CLI overrides, detection."""

import json

import pytest

from qspi_gdb.errors import TargetError, UsageError
from qspi_gdb.inputs.boards import BOARDS, Pins
from qspi_gdb.inputs.config_files import (
    load_config_file,
    parse_nrfjprog_ini,
    parse_nrfjprog_toml,
    parse_nrfutil_json,
)
from qspi_gdb.inputs.config_values import CustomInstruction, cli_layer, parse_jedec_id
from qspi_gdb.inputs.detect import apply_chip
from qspi_gdb.inputs.flash_config import ConfigWarning, build_config
from qspi_gdb.inputs.parts import (
    IS25WP256_SFDP,
    MT25QU256A_SFDP,
    MX25R6435F_BFPT,
    MX25R6435F_SFDP,
    wrap_bfpt,
)
from qspi_gdb.inputs.sfdp_decode import parse_sfdp

# The nrfutil ext-mem JSON, verbatim.
SEED_JSON = """{"firmware_config": {"peripheral": "QSPI"},
 "pins": {"sck": 17, "csn": 18, "io0": 13, "io1": 14, "io2": 15, "io3": 16},
 "flash_size": 33554432, "sck_frequency": 8000000, "address_mode": "MODE32BIT",
 "readoc": "READ4IO", "writeoc": "PP4IO", "pp_size": "PPSIZE256",
 "sck_delay": 0, "rx_delay": 0, "page_size": 4096}"""

# pynrfjprog QspiDefault.ini (structure and values of the shipped file).
QSPI_DEFAULT_INI = """; nrfjprog QSPI configuration file.

[DEFAULT_CONFIGURATION]
; Define the capacity of the flash memory device in bytes.
MemSize = 0x800000
ReadMode = READ4IO
WriteMode = PP4IO
AddressMode = BIT24
Frequency = M16
SpiMode = MODE0
SckDelay = 0x80
RxDelay = 2
CustomInstructionIO2Level = LEVEL_LOW
CustomInstructionIO3Level = LEVEL_HIGH
; For nRF53, QSPI pins are not configurable and these values are ignored.
CSNPin = 17
CSNPort = 0
SCKPin = 19
SCKPort = 0
DIO0Pin = 20
DIO0Port = 0
DIO1Pin = 21
DIO1Port = 0
DIO2Pin = 22
DIO2Port = 0
DIO3Pin = 23
DIO3Port = 0
WIPIndex = 0
PPSize = PAGE256
InitializationCustomInstruction =  0x06
InitializationCustomInstruction =  0x01, [0x40, 0, 0x2]
RetainRAM = 1
"""

QSPI_TOML = """
[log]
    [log.dll]
        level = "TRACE"
[qspi]
    mem_size = 0x800000
    read_mode = "READ4IO"
    write_mode = "PP4IO"
    address_mode = "BIT24"
    frequency = "M16"
    spi_mode = "MODE0"
    rx_delay = 2
    wip_index = 0
    page_program_size = "PAGE256"
    retain_ram = true
    [qspi.sck]
        delay = 0x80
        pin = 19
        port = 0
    [qspi.csn]
        pin = 17
        port = 0
    [qspi.dio0]
        pin = 20
        port = 0
    [qspi.dio1]
        pin = 21
        port = 0
    [qspi.dio2]
        pin = 22
        port = 0
    [qspi.dio3]
        pin = 23
        port = 0
    [qspi.custom]
        io2_level = "LEVEL_LOW"
        io3_level = "LEVEL_HIGH"
        instructions =  [
            {command=0x06, data=[]},
            {command=0x01, data=[0x40, 0, 0x2]}
        ]
"""

IS25 = parse_sfdp(IS25WP256_SFDP)
MT25 = parse_sfdp(MT25QU256A_SFDP)
MX25R = parse_sfdp(MX25R6435F_SFDP)
ID_IS25 = bytes.fromhex("9D7019")
ID_MT25 = bytes.fromhex("20BB19")
ID_MX25R = bytes.fromhex("C22817")


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_seed_json_parses_verbatim():
    layer = parse_nrfutil_json(SEED_JSON, "ext.json")
    assert dict(layer.values) == {
        "pins": {"sck": 17, "csn": 18, "io0": 13, "io1": 14, "io2": 15, "io3": 16},
        "size": 32 << 20,
        "sck_frequency": 8_000_000,
        "address_mode": 32,
        "readoc": "READ4IO",
        "writeoc": "PP4IO",
        "pp_size": 256,
        "sck_delay": 0,
        "rx_delay": 0,
        "sector_size": 4096,
    }


def test_seed_case_on_the_32mb_virtual_board(tmp_path):
    layer = load_config_file(write(tmp_path, "ext.json", SEED_JSON))
    cfg = apply_chip(build_config("sim-nrf5340-32mb", [layer]), jedec_id=ID_IS25, sfdp=IS25)
    assert (cfg.chip, cfg.xip_base, cfg.virtual) == ("nrf5340", 0x10000000, True)
    assert cfg.size == 32 << 20 and cfg.address_mode == 32
    assert cfg.four_byte_entry == "B7"  # DW1 says 3-byte only; DW16 says B7h
    # DW16 says bank register; the loader leaves B7h's 4-byte mode with ISSI's EX4B 29h
    assert cfg.four_byte_exit == "29" and "IS25WP256" in cfg.sources["four_byte_exit"]
    assert cfg.quad_enable == "S1B6"
    assert cfg.part == "IS25WP256" and cfg.jedec_id == ID_IS25 and cfg.detected == "sfdp"
    assert cfg.erase_sizes == (4096, 65536)
    assert cfg.erase_spec(4096).time.typ_s == pytest.approx(0.048)
    assert cfg.erase_spec(65536).time.max_s == pytest.approx(2.432)
    assert cfg.page_program.typ_s == pytest.approx(200e-6)
    assert (cfg.sck_delay, cfg.rx_delay, cfg.pp_size, cfg.sector_size) == (0, 0, 256, 4096)
    assert cfg.sources["size"] == "SFDP" and cfg.sources["address_mode"].endswith("ext.json")
    json.dumps(cfg.to_json())
    assert any("MODE32BIT" in line for line in cfg.describe())


def test_mt25qu256a_needs_wren_before_b7():
    cfg = apply_chip(build_config("sim-nrf52840-32mb"), jedec_id=ID_MT25, sfdp=MT25)
    assert cfg.address_mode == 32 and cfg.four_byte_entry == "WREN+B7" and cfg.quad_enable == "none"
    assert cfg.four_byte_exit == "WREN+E9"
    assert cfg.xip_base == 0x12000000


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_every_preset_resolves_without_detection(board):
    cfg = apply_chip(build_config(board))
    assert cfg.detected == "assumed" and cfg.part == BOARDS[board].part
    assert cfg.size in (8 << 20, 32 << 20)
    assert cfg.address_mode == (32 if cfg.size > 1 << 24 else 24)
    assert cfg.erase_sizes == (4096, 65536) and cfg.chip_erase and cfg.page_program


def test_preset_part_is_only_an_assumption_detected_chip_wins():
    cfg = apply_chip(build_config("nrf5340dk"), jedec_id=ID_IS25, sfdp=IS25)
    assert cfg.part == "IS25WP256" and cfg.size == 32 << 20 and cfg.address_mode == 32


def test_config_size_contradicting_the_chip_names_both_values(tmp_path):
    zephyr_bug = SEED_JSON.replace("33554432", "67108864")  # Zephyr's nrf5340dk JSON: bits
    layer = load_config_file(write(tmp_path, "nrf5340dk_qspi_nrfutil_config.json", zephyr_bug))
    with pytest.raises(UsageError) as e:
        apply_chip(build_config("nrf5340dk", [layer]), jedec_id=ID_MX25R, sfdp=MX25R)
    msg = str(e.value)
    assert "nrf5340dk_qspi_nrfutil_config.json" in msg
    assert "67108864 (64 MiB)" in msg and "8388608 (8 MiB)" in msg and "size in bits" in msg
    assert "MX25R6435F" in msg and "C22817" in msg


def test_mode32bit_on_a_3_byte_only_chip_is_refused(tmp_path):
    layer = parse_nrfutil_json(SEED_JSON.replace("33554432", "8388608"), "ext.json")
    with pytest.raises(
        UsageError, match=r"ext.json: address mode MODE32BIT, but MX25R6435F .*cannot enter 4-byte"
    ):
        apply_chip(build_config("nrf5340dk", [layer]), jedec_id=ID_MX25R, sfdp=MX25R)


def test_jedec_id_expected_mismatch_and_formats():
    cfg = build_config("sim-nrf5340-32mb", [cli_layer(jedec_id="C22817")])
    with pytest.raises(
        UsageError,
        match=r"JEDEC ID mismatch: expected C22817 \(command line\), chip answers 9D7019 \(IS25WP256\)",
    ):
        apply_chip(cfg, jedec_id=ID_IS25, sfdp=IS25)
    assert apply_chip(
        build_config("nrf5340dk", [cli_layer(jedec_id="c2 28 17")]), jedec_id=ID_MX25R, sfdp=MX25R
    )
    for text in ("C22817", "0xc22817", "C2:28:17", "c2-28-17"):
        assert parse_jedec_id(text) == ID_MX25R
    with pytest.raises(UsageError, match="3 hex bytes"):
        parse_jedec_id("C228")


@pytest.mark.parametrize("answer", [b"\xff\xff\xff", b"\x00\x00\x00"])
def test_no_chip_answering_is_a_target_error(answer):
    with pytest.raises(TargetError, match="no flash answers RDID"):
        apply_chip(build_config("nrf52840dk"), jedec_id=answer)


def test_unknown_chip_without_sfdp_needs_an_explicit_size():
    odd = bytes.fromhex("EF4017")
    with pytest.raises(UsageError, match="cannot tell the flash size"):
        apply_chip(build_config("nrf52840dk"), jedec_id=odd)
    cfg = apply_chip(build_config("nrf52840dk", [cli_layer(size="8M")]), jedec_id=odd)
    assert cfg.size == 8 << 20 and cfg.part is None and cfg.detected == "jedec-table"


def test_nrfjprog_ini_and_toml_agree(tmp_path):
    ini = load_config_file(write(tmp_path, "QspiDefault.ini", QSPI_DEFAULT_INI))
    toml = load_config_file(write(tmp_path, "config.toml", QSPI_TOML))
    expected = {
        "size": 8 << 20,
        "readoc": "READ4IO",
        "writeoc": "PP4IO",
        "address_mode": 24,
        "sck_frequency": 16_000_000,
        "spi_mode": 0,
        "sck_delay": 0x80,
        "rx_delay": 2,
        "wip_index": 0,
        "pp_size": 256,
        "custom_io2_level": False,
        "custom_io3_level": True,
        "pins": {"sck": 19, "csn": 17, "io0": 20, "io1": 21, "io2": 22, "io3": 23},
        "init_instructions": (CustomInstruction(0x06), CustomInstruction(0x01, bytes([0x40, 0, 2]))),
    }
    assert dict(ini.values) == expected
    assert dict(toml.values) == expected
    cfg = apply_chip(build_config("nrf52840dk", [ini]), jedec_id=ID_MX25R, sfdp=MX25R)
    assert cfg.init_instructions[1].data == b"\x40\x00\x02" and cfg.sck_frequency == 16_000_000


def test_nrfjprog_pins_are_ignored_on_nrf5340_like_nrfjprog_does():
    cfg = build_config("nrf5340dk", [parse_nrfjprog_ini(QSPI_DEFAULT_INI, "QspiDefault.ini")])
    assert cfg.pins == BOARDS["nrf5340dk"].pins


def test_nrfutil_pins_must_be_the_nrf5340_dedicated_ones():
    other = SEED_JSON.replace('"sck": 17', '"sck": 19')
    with pytest.raises(
        UsageError, match=r"x.json: nrf5340 QSPI uses fixed pins; config gives sck 19 \(must be 17\)"
    ):
        build_config("nrf5340dk", [parse_nrfutil_json(other, "x.json")])


def test_nrf52840_pins_from_json_and_cli():
    cfg = build_config("nrf52840dk", [parse_nrfutil_json(SEED_JSON, "x.json")])
    assert cfg.pins == Pins(17, 18, 13, 14, 15, 16)
    cfg = build_config("nrf52840dk", [cli_layer(pins="sck=3,csn=4")])
    assert (cfg.pins.sck, cfg.pins.csn, cfg.pins.io0) == (3, 4, 20)


def test_quad_modes_need_io2_and_io3():
    no_io3 = SEED_JSON.replace('"io3": 16', '"io3": 4294967295')
    with pytest.raises(UsageError, match="io2/io3 are not connected"):
        build_config("nrf52840dk", [parse_nrfutil_json(no_io3, "x.json")])
    dual = no_io3.replace("READ4IO", "READ2IO").replace("PP4IO", "PP")
    assert build_config("nrf52840dk", [parse_nrfutil_json(dual, "x.json")]).pins.io3 is None


def test_precedence_preset_then_file_then_cli():
    layers = [
        parse_nrfutil_json(SEED_JSON, "x.json"),
        cli_layer(sck_frequency="32M", address_mode="MODE24BIT"),
    ]
    cfg = build_config("sim-nrf5340-32mb", layers)
    assert cfg.sck_frequency == 32_000_000 and cfg.address_mode == 24
    assert cfg.sources["sck_frequency"] == "command line" and cfg.sources["readoc"] == "x.json"
    assert cfg.sources["board"] == "preset sim-nrf5340-32mb"
    # 24-bit on a 32 MiB chip is allowed (the plan refuses data above 16 MiB)
    assert apply_chip(cfg, jedec_id=ID_IS25, sfdp=IS25).address_mode == 24


def test_board_from_config_file_or_required():
    layer = parse_nrfutil_json(SEED_JSON[:-1] + ', "board": "sim-nrf5340-32mb"}', "x.json")
    assert build_config(None, [layer]).board == "sim-nrf5340-32mb"
    with pytest.raises(UsageError, match="--board is required"):
        build_config(None, [parse_nrfutil_json(SEED_JSON, "x.json")])
    with pytest.raises(UsageError, match=r"unknown board 'nrf9160dk'.*; known: nrf52840dk, nrf5340dk"):
        build_config("nrf9160dk")
    with pytest.raises(UsageError) as exc:
        build_config("nrf5340-dk")
    assert str(exc.value).startswith("unknown board 'nrf5340-dk' (did you mean 'nrf5340dk'?); "
                                     "known: nrf52840dk, nrf5340dk, ")


def test_pp_size_larger_than_chip_page():
    cfg = build_config("sim-nrf5340-32mb", [cli_layer(pp_size="PPSIZE512")])
    with pytest.raises(UsageError, match="pp_size 512 exceeds the chip's 256-byte program page"):
        apply_chip(cfg, jedec_id=ID_IS25, sfdp=IS25)


def test_always_4_byte_chip():
    bfpt = bytearray(MX25R6435F_BFPT)
    bfpt[63] = 0x40  # DW16 enter-4-byte: always 4-byte
    sfdp = parse_sfdp(wrap_bfpt(bytes(bfpt)))
    assert apply_chip(build_config("nrf52840dk"), jedec_id=ID_MX25R, sfdp=sfdp).address_mode == 32
    with pytest.raises(UsageError, match="always uses 4-byte addresses"):
        apply_chip(build_config("nrf52840dk", [cli_layer(address_mode=24)]), jedec_id=ID_MX25R, sfdp=sfdp)


def _without_fast_reads(*dw1_bits):
    dw1 = int.from_bytes(MX25R6435F_BFPT[:4], "little")
    for bit in dw1_bits:
        dw1 &= ~(1 << bit)
    return parse_sfdp(wrap_bfpt(dw1.to_bytes(4, "little") + MX25R6435F_BFPT[4:]))


def test_readoc_the_chip_does_not_announce_falls_back_with_a_warning():
    sfdp = _without_fast_reads(21)  # DW1 bit 21: no 1-4-4 read
    cfg = apply_chip(build_config("nrf52840dk", [cli_layer(readoc="READ4IO")]), jedec_id=ID_MX25R, sfdp=sfdp)
    assert cfg.readoc == "READ4O"
    (w,) = cfg.warnings
    assert (w.setting, w.configured, w.used, w.source) == ("readoc", "READ4IO", "READ4O", "command line")
    assert str(w) == (
        "readoc READ4IO is not supported by MX25R6435F (JEDEC ID C22817) "
        "(SFDP announces no 1-4-4 fast read); using READ4O"
    )
    # the default READ4IO is replaced too, but silently: the user asked for nothing
    cfg = apply_chip(build_config("nrf52840dk"), jedec_id=ID_MX25R, sfdp=sfdp)
    assert cfg.readoc == "READ4O" and cfg.warnings == () and "1-4-4" in cfg.sources["readoc"]


def test_read_fallback_never_adds_data_lines():
    # io2/io3 not connected: a dual read the chip lacks falls back to FASTREAD, never to quad
    dual = SEED_JSON.replace('"io3": 16', '"io3": 4294967295')
    dual = dual.replace("READ4IO", "READ2IO").replace("PP4IO", "PP").replace("33554432", "8388608")
    dual = dual.replace("MODE32BIT", "MODE24BIT")
    sfdp = _without_fast_reads(16, 20)  # no 1-1-2, no 1-2-2
    cfg = apply_chip(build_config("nrf52840dk", [parse_nrfutil_json(dual, "d.json")]), jedec_id=ID_MX25R, sfdp=sfdp)
    assert cfg.readoc == "FASTREAD" and not cfg.quad
    assert [str(w) for w in cfg.warnings][0].startswith("readoc READ2IO is not supported by MX25R6435F")


# ---------------------------------------------------------------- program modes per part


def test_seed_json_on_is25wp256_programs_with_pp4o_and_warns(tmp_path):
    layer = load_config_file(write(tmp_path, "ext.json", SEED_JSON))
    cfg = apply_chip(build_config("sim-nrf5340-32mb", [layer]), jedec_id=ID_IS25, sfdp=IS25)
    assert (cfg.readoc, cfg.writeoc) == ("READ4IO", "PP4O")
    assert cfg.warnings == (
        ConfigWarning(
            "writeoc", "PP4IO", "PP4O", "not supported by IS25WP256 (38h is 1-1-4 on ISSI parts)", str(layer.source)
        ),
    )
    assert str(cfg.warnings[0]) == (
        "writeoc PP4IO is not supported by IS25WP256 (38h is 1-1-4 on ISSI parts); using PP4O"
    )
    assert cfg.sources["writeoc"].startswith("chip (PP4IO not supported by IS25WP256")
    assert cfg.sources["readoc"] == str(layer.source)
    assert cfg.to_json()["warnings"][0]["message"] == str(cfg.warnings[0])
    assert any("write PP4O  [chip (PP4IO" in line for line in cfg.describe())


def test_is25wp256_default_pp4io_is_replaced_silently():
    cfg = apply_chip(build_config("sim-nrf5340-32mb"), jedec_id=ID_IS25, sfdp=IS25)
    assert cfg.writeoc == "PP4O" and cfg.warnings == ()
    assert cfg.sources["writeoc"].startswith("chip (PP4IO")
    # assumed part (no detection, e.g. --dry-run): the same choice
    assert apply_chip(build_config("sim-nrf5340-32mb")).writeoc == "PP4O"


def test_mx25r6435f_keeps_pp4io():
    json_8m = SEED_JSON.replace("33554432", "8388608").replace("MODE32BIT", "MODE24BIT")
    cfg = apply_chip(
        build_config("nrf5340dk", [parse_nrfutil_json(json_8m, "x.json")]), jedec_id=ID_MX25R, sfdp=MX25R
    )
    assert (cfg.readoc, cfg.writeoc, cfg.warnings) == ("READ4IO", "PP4IO", ())


def test_mt25qu256a_keeps_pp4io():
    cfg = apply_chip(
        build_config("sim-nrf52840-32mb", [parse_nrfutil_json(SEED_JSON, "x.json")]), jedec_id=ID_MT25, sfdp=MT25
    )
    assert (cfg.readoc, cfg.writeoc, cfg.warnings) == ("READ4IO", "PP4IO", ())
    assert apply_chip(build_config("sim-nrf52840-32mb", [cli_layer(writeoc="PP2O")]), jedec_id=ID_MT25).writeoc == "PP2O"


@pytest.mark.parametrize(
    "board, jedec_id, sfdp, configured, used",
    [
        ("nrf52840dk", ID_MX25R, MX25R, "PP4O", "PP4IO"),  # same lines, the one Macronix has
        ("nrf52840dk", ID_MX25R, MX25R, "PP2O", "PP"),  # never more lines than configured
        ("sim-nrf5340-32mb", ID_IS25, IS25, "PP2O", "PP"),
        ("sim-nrf5340-32mb", ID_IS25, IS25, "PP", "PP"),
    ],
)
def test_write_mode_fallback(board, jedec_id, sfdp, configured, used):
    cfg = apply_chip(build_config(board, [cli_layer(writeoc=configured)]), jedec_id=jedec_id, sfdp=sfdp)
    assert cfg.writeoc == used
    assert [(w.configured, w.used) for w in cfg.warnings] == ([] if used == configured else [(configured, used)])


def test_unknown_part_keeps_the_configured_modes():
    unknown = bytes.fromhex("EF4017")
    layers = [cli_layer(size="8M", writeoc="PP4IO", readoc="READ4IO")]
    cfg = apply_chip(build_config("nrf52840dk", layers), jedec_id=unknown)
    assert (cfg.part, cfg.readoc, cfg.writeoc, cfg.warnings) == (None, "READ4IO", "PP4IO", ())
    # with an SFDP that announces every fast read: still nothing to replace
    cfg = apply_chip(build_config("nrf52840dk", layers), jedec_id=unknown, sfdp=MX25R)
    assert (cfg.part, cfg.readoc, cfg.writeoc, cfg.warnings) == (None, "READ4IO", "PP4IO", ())


def test_part_table_program_modes_match_the_modelled_parts():
    """Host table and virtual-board models must agree on which nRF program opcodes work."""
    from qspi_gdb.inputs.parts import by_jedec
    from qspi_gdb.sim.parts import PARTS as SIM_PARTS

    nrf_writes = {"PP": (0x02, 1, 1), "PP2O": (0xA2, 1, 2), "PP4O": (0x32, 1, 4), "PP4IO": (0x38, 4, 4)}
    nrf_reads = {"FASTREAD": (0x0B, 1, 1), "READ2O": (0x3B, 1, 2), "READ2IO": (0xBB, 2, 2),
                 "READ4O": (0x6B, 1, 4), "READ4IO": (0xEB, 4, 4)}  # fmt: skip
    for sim in SIM_PARTS.values():
        host = by_jedec(sim.jedec_id)

        def executes(shape):
            cmd = sim.commands.get(shape[0])
            return cmd is not None and (cmd.addr_lines, cmd.data_lines) == shape[1:]

        assert host.write_modes == {m for m, shape in nrf_writes.items() if executes(shape)}, sim.name
        assert host.read_modes == {m for m, shape in nrf_reads.items() if executes(shape)}, sim.name
        if sim.size > 1 << 24:  # 4-byte capable: the exit opcode the loader will send exists
            assert (host.ex4b_opcode or 0xE9) in sim.commands, sim.name


def test_part_table_and_modelled_parts_decode_to_the_same_chip():
    """The model's SFDP is the part table's image; the host decoder must read the
    same BFPT, 4-byte table and size from the image the virtual chip answers RDSFDP with."""
    from qspi_gdb.inputs.parts import by_jedec
    from qspi_gdb.sim.parts import PARTS as SIM_PARTS

    for sim in SIM_PARTS.values():
        host = by_jedec(sim.jedec_id)
        answered = parse_sfdp(sim.sfdp)
        assert answered.bfpt == parse_sfdp(host.sfdp_bytes).bfpt, sim.name
        assert answered.four_byte_table == parse_sfdp(host.sfdp_bytes).four_byte_table, sim.name
        assert host.size == sim.size == answered.size, sim.name


def test_sector_size_must_be_an_nrf_erase():
    with pytest.raises(UsageError, match="erase page size 32768"):
        build_config("nrf52840dk", [cli_layer(sector_size=32768)])


@pytest.mark.parametrize(
    "text, message",
    [
        (
            '{"firmware_config": {"peripheral": "QSPI"}, "flash_size": }',
            r"bad.json: malformed JSON: .* line 1 column",
        ),
        ("[1, 2]", "top level must be a JSON object"),
        ('{"pins": {}}', "firmware_config"),
        ('{"firmware_config": {"peripheral": "SPIM0"}}', "'SPIM0' is not supported"),
        (SEED_JSON.replace('"MODE32BIT"', '"MODE48BIT"'), "address_mode 'MODE48BIT'"),
        (SEED_JSON.replace('"READ4IO"', '"READ8IO"'), "readoc 'READ8IO' is not one of"),
        (SEED_JSON.replace('"PPSIZE256"', '"PPSIZE1024"'), "pp_size"),
        (SEED_JSON.replace('"rx_delay": 0', '"rx_delay": 9'), "rx_delay 9 is outside 0..7"),
        (
            SEED_JSON.replace('"flash_size": 33554432', '"flash_size": "big"'),
            "flash_size 'big' is not a number",
        ),
        (SEED_JSON.replace('"csn": 18, ', ""), "pins: missing csn"),
    ],
)
def test_malformed_json_is_a_one_line_usage_error(tmp_path, text, message):
    with pytest.raises(UsageError, match=message) as e:
        build_config("sim-nrf5340-32mb", [load_config_file(write(tmp_path, "bad.json", text))])
    assert "\n" not in str(e.value) and "bad.json" in str(e.value)


@pytest.mark.parametrize(
    "text, message",
    [
        ("MemSize = 0x800000\n", r"no \[DEFAULT_CONFIGURATION\] section"),
        ("[DEFAULT_CONFIGURATION]\nMemSize 0x800000\n", "line 2: expected 'Key = value'"),
        ("[DEFAULT_CONFIGURATION\n", "line 1: malformed section header"),
        ("[DEFAULT_CONFIGURATION]\nReadMode = READ8\n", "ReadMode 'READ8' is not one of"),
        ("[DEFAULT_CONFIGURATION]\nFrequency = M64\n", "Frequency 'M64'"),
        ("[DEFAULT_CONFIGURATION]\nMemSize = 0\n", "MemSize is 0"),
        ("[DEFAULT_CONFIGURATION]\nMemSize = 1\nMemSize = 2\n", "MemSize is given 2 times"),
        (
            "[DEFAULT_CONFIGURATION]\nInitializationCustomInstruction = 0x01, [0x40\n",
            "InitializationCustomInstruction",
        ),
        ("[DEFAULT_CONFIGURATION]\nInitializationCustomInstruction = 0x1FF\n", "outside 0..255"),
        ("[DEFAULT_CONFIGURATION]\nDIO0Pin = 40\n", "io0 pin 40 is outside 0..31"),
    ],
)
def test_malformed_ini_is_a_one_line_usage_error(tmp_path, text, message):
    with pytest.raises(UsageError, match=message) as e:
        load_config_file(write(tmp_path, "QspiDefault.ini", text))
    assert "\n" not in str(e.value) and "QspiDefault.ini" in str(e.value)


def test_ini_binary_and_decimal_numbers():
    layer = parse_nrfjprog_ini(
        "[DEFAULT_CONFIGURATION]\nInitializationCustomInstruction = 0b00000110\n"
        "InitializationCustomInstruction = 1, [64, 0b0, 0X2]\n",
        "x.ini",
    )
    assert layer.values["init_instructions"] == (CustomInstruction(6), CustomInstruction(1, b"\x40\x00\x02"))


def test_malformed_toml(tmp_path):
    with pytest.raises(UsageError, match="malformed TOML"):
        load_config_file(write(tmp_path, "c.toml", "[qspi\nmem_size = 1"))
    with pytest.raises(UsageError, match=r"no \[qspi\] table"):
        parse_nrfjprog_toml("[log]\n", "c.toml")


def test_missing_config_file(tmp_path):
    with pytest.raises(UsageError, match="nope.json: no such file"):
        load_config_file(tmp_path / "nope.json")
