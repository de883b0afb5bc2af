"""Config-file and command-line parsers: each returns a ConfigLayer with FlashConfig field names.

Formats (README "Configuration formats"): the nrfutil `--x-ext-mem-config-file` JSON, nrfjprog's
`QspiDefault.ini` and the `[qspi]` table of its `config.toml`, and the CLI overrides. Malformed
input is a UsageError naming the file (or "command line") and the reason, on one line.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from qspi_gdb.errors import UsageError
from qspi_gdb.inputs.image import parse_int
from qspi_gdb.log import get_logger

log = get_logger(__name__)

READ_OPCODES = ("FASTREAD", "READ2O", "READ2IO", "READ4O", "READ4IO")
WRITE_OPCODES = ("PP", "PP2O", "PP4O", "PP4IO")
PIN_NAMES = ("sck", "csn", "io0", "io1", "io2", "io3")
NOT_CONNECTED = 0xFFFFFFFF  # nrfutil: pin not used
SCK_DELAY_MAX = 255  # IFCONFIG1.SCKDELAY is 8 bits
RX_DELAY_MAX = 7  # IFTIMING.RXDELAY is 3 bits


@dataclass(frozen=True)
class CustomInstruction:
    """A custom instruction sent after QSPI activation (nrfjprog InitializationCustomInstruction)."""

    opcode: int
    data: bytes = b""

    def to_json(self) -> dict:
        return {"opcode": f"0x{self.opcode:02X}", "data": self.data.hex()}


@dataclass(frozen=True)
class ConfigLayer:
    """Values one source gives, with canonical FlashConfig field names.

    `pins` is a partial dict name -> GPIO number | None. `pins_binding` False means the source
    documents its pins as ignored on nRF5340 (nrfjprog formats).
    """

    source: str
    values: Mapping[str, Any]
    board: str | None = None
    pins_binding: bool = True


def _err(source: str, message: str) -> UsageError:
    return UsageError(f"{source}: {message}")


def _enum(source: str, key: str, value: Any, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if not isinstance(value, str) or value.upper() not in allowed:
        raise _err(source, f"{key} {value!r} is not one of {', '.join(allowed)}")
    return value.upper()


def _int(source: str, key: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, bool):
        raise _err(source, f"{key} {value!r} is not a number")
    if isinstance(value, str):
        try:
            value = parse_int(value, key)
        except UsageError:
            raise _err(source, f"{key} {value!r} is not a number") from None
    if not isinstance(value, int):
        raise _err(source, f"{key} {value!r} is not a number")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise _err(source, f"{key} {value} is outside {lo}..{hi}")
    return value


def _named(source: str, key: str, value: Any, table: Mapping[str, int], expected: str) -> int:
    """The number a symbolic setting names (case and surrounding blanks ignored)."""
    text = str(value).strip().upper()
    if text not in table:
        raise _err(source, f"{key} {value!r} is not {expected}")
    return table[text]


def parse_address_mode(source: str, value: Any) -> int:
    table = {"MODE24BIT": 24, "BIT24": 24, "24": 24, "MODE32BIT": 32, "BIT32": 32, "32": 32}
    return _named(source, "address_mode", value, table, "MODE24BIT or MODE32BIT")


def parse_pp_size(source: str, value: Any) -> int:
    table = {"PPSIZE256": 256, "PAGE256": 256, "256": 256, "PPSIZE512": 512, "PAGE512": 512, "512": 512}
    return _named(source, "pp_size", value, table, "PPSIZE256 or PPSIZE512")


def parse_frequency(source: str, value: Any) -> int:
    """Hz from 8000000, '8M', '8MHz' or nrfjprog's 'M8'."""
    if isinstance(value, str):
        t = value.strip().upper().replace("HZ", "")
        m = re.fullmatch(r"M(2|4|8|16|32)", t)
        if m:
            return int(m.group(1)) * 1_000_000
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KM]?)", t)
        if not m:
            raise _err(source, f"sck_frequency {value!r} is not a frequency (e.g. 8000000 or 8M)")
        return int(float(m.group(1)) * {"": 1, "K": 1e3, "M": 1e6}[m.group(2)])
    return _int(source, "sck_frequency", value, 1)


def parse_jedec_id(value: str | bytes, source: str = "--jedec-id") -> bytes:
    """'C22817', 'c2 28 17', '0xC22817', 'C2:28:17' -> b'\\xc2\\x28\\x17'."""
    if isinstance(value, (bytes, bytearray)):
        if len(value) != 3:
            raise _err(source, f"JEDEC ID {bytes(value).hex()} is not 3 bytes")
        return bytes(value)
    t = re.sub(r"[\s:_-]", "", str(value))
    if t[:2].lower() == "0x":
        t = t[2:]
    if not re.fullmatch(r"[0-9a-fA-F]{6}", t):
        raise _err(source, f"JEDEC ID {value!r} is not 3 hex bytes (e.g. C22817)")
    return bytes.fromhex(t)


def parse_spi_mode(source: str, value: Any) -> int:
    return _named(source, "spi_mode", value, {"MODE0": 0, "0": 0, "MODE3": 3, "3": 3}, "MODE0 or MODE3")


def parse_custom_instruction(source: str, text: str) -> CustomInstruction:
    """nrfjprog format: '0x06' or '0x01, [0x40, 0, 0x2]' (decimal, 0x hex or 0b binary)."""
    m = re.fullmatch(r"\s*([^,\[\]\s]+)\s*(?:,\s*\[([^\]]*)\]\s*)?", text)
    if not m:
        raise _err(
            source, f"InitializationCustomInstruction {text!r}: expected 'opcode' or 'opcode, [b0, b1, ...]'"
        )
    opcode = _int(source, "instruction opcode", m.group(1), 0, 255)
    data_text = (m.group(2) or "").strip()
    data = (
        [_int(source, "instruction data byte", b.strip(), 0, 255) for b in data_text.split(",")]
        if data_text
        else []
    )
    if len(data) > 8:
        raise _err(source, f"instruction 0x{opcode:02X} has {len(data)} data bytes; CINSTR carries at most 8")
    return CustomInstruction(opcode, bytes(data))


def _pin_value(source: str, key: str, value: Any) -> int | None:
    v = _int(source, key, value, 0, NOT_CONNECTED)
    if v == NOT_CONNECTED:
        return None
    if v > 63:
        raise _err(source, f"{key} {v} is not a GPIO number (port * 32 + pin, at most 63)")
    return v


# ----- nrfutil ext-mem JSON


NRFUTIL_KEYS = {
    "firmware_config",
    "pins",
    "flash_size",
    "sck_frequency",
    "address_mode",
    "readoc",
    "writeoc",
    "pp_size",
    "sck_delay",
    "rx_delay",
    "page_size",
    "board",  # qspi-gdb extension: the --board to use with this file
}


def parse_nrfutil_json(text: str, source: str = "nrfutil JSON") -> ConfigLayer:
    """nrfutil device --x-ext-mem-config-file JSON (QSPI peripheral only)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise _err(source, f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if not isinstance(doc, dict):
        raise _err(source, "malformed config: the top level must be a JSON object")
    unknown = sorted(set(doc) - NRFUTIL_KEYS)
    if unknown:
        log.warning("ignoring unknown keys in the nrfutil config", source=source, keys=unknown)
    fw = doc.get("firmware_config")
    if not isinstance(fw, dict) or "peripheral" not in fw:
        raise _err(source, 'missing "firmware_config": {"peripheral": "QSPI"}')
    if str(fw["peripheral"]).upper() != "QSPI":
        raise _err(
            source, f"peripheral {fw['peripheral']!r} is not supported: qspi-gdb drives the QSPI peripheral"
        )
    values: dict[str, Any] = {}
    pins = doc.get("pins")
    if pins is not None:
        if not isinstance(pins, dict):
            raise _err(source, '"pins" must be an object like {"sck": 17, "csn": 18, ...}')
        missing = [p for p in ("sck", "csn", "io0", "io1") if p not in pins]
        if missing:
            raise _err(source, f"pins: missing {', '.join(missing)}")
        values["pins"] = {p: _pin_value(source, f"pins.{p}", pins[p]) for p in PIN_NAMES if p in pins}
        for p in ("sck", "csn", "io0", "io1"):
            if values["pins"][p] is None:
                raise _err(source, f"pins.{p} must be connected")
    if "flash_size" in doc:
        values["size"] = _int(source, "flash_size", doc["flash_size"], 1)
    if "sck_frequency" in doc:
        values["sck_frequency"] = parse_frequency(source, doc["sck_frequency"])
    if "address_mode" in doc:
        values["address_mode"] = parse_address_mode(source, doc["address_mode"])
    if "readoc" in doc:
        values["readoc"] = _enum(source, "readoc", doc["readoc"], READ_OPCODES)
    if "writeoc" in doc:
        values["writeoc"] = _enum(source, "writeoc", doc["writeoc"], WRITE_OPCODES)
    if "pp_size" in doc:
        values["pp_size"] = parse_pp_size(source, doc["pp_size"])
    if "sck_delay" in doc:
        values["sck_delay"] = _int(source, "sck_delay", doc["sck_delay"], 0, SCK_DELAY_MAX)
    if "rx_delay" in doc:
        values["rx_delay"] = _int(source, "rx_delay", doc["rx_delay"], 0, RX_DELAY_MAX)
    if "page_size" in doc:
        values["sector_size"] = _int(source, "page_size", doc["page_size"], 1)
    board = doc.get("board")
    if board is not None and not isinstance(board, str):
        raise _err(source, f"board {board!r} is not a name")
    return ConfigLayer(source=source, values=values, board=board)


# ----- nrfjprog QspiDefault.ini

INI_SECTION = "DEFAULT_CONFIGURATION"


def _read_ini(text: str, source: str) -> dict[str, list[str]]:
    """Key -> list of values of [DEFAULT_CONFIGURATION]; repeated keys keep every value.

    configparser cannot keep repeated keys (InitializationCustomInstruction repeats), so this
    reads the simple format nrfjprog documents: ';'/'#' comments, [section], key = value.
    """
    section = None
    seen_section = False
    out: dict[str, list[str]] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in ";#":
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise _err(source, f"line {lineno}: malformed section header {line!r}")
            section = line[1:-1].strip()
            seen_section |= section == INI_SECTION
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise _err(source, f"line {lineno}: expected 'Key = value', got {line!r}")
        if section != INI_SECTION:
            continue
        value = re.split(r"\s[;#]", value, maxsplit=1)[0]  # trailing comment
        out.setdefault(key.strip(), []).append(value.strip())
    if not seen_section:
        raise _err(source, f"no [{INI_SECTION}] section (not an nrfjprog QSPI ini)")
    return out


INI_KEYS = {
    "MemSize",
    "ReadMode",
    "WriteMode",
    "AddressMode",
    "Frequency",
    "SpiMode",
    "SckDelay",
    "RxDelay",
    "CustomInstructionIO2Level",
    "CustomInstructionIO3Level",
    "WIPIndex",
    "PPSize",
    "InitializationCustomInstruction",
    "RetainRAM",
    "Board",
    *(f"{p}{kind}" for p in ("CSN", "SCK", "DIO0", "DIO1", "DIO2", "DIO3") for kind in ("Pin", "Port")),
}
_INI_PINS = {"sck": "SCK", "csn": "CSN", "io0": "DIO0", "io1": "DIO1", "io2": "DIO2", "io3": "DIO3"}


def _level(source: str, key: str, value: Any) -> bool:
    return _enum(source, key, value, ("LEVEL_HIGH", "LEVEL_LOW")) == "LEVEL_HIGH"


def parse_nrfjprog_ini(text: str, source: str = "nrfjprog ini") -> ConfigLayer:
    raw = _read_ini(text, source)
    unknown = sorted(set(raw) - INI_KEYS)
    if unknown:
        log.warning("ignoring unknown keys in the nrfjprog ini", source=source, keys=unknown)

    def one(key):
        vals = raw.get(key)
        if vals is None:
            return None
        if len(vals) > 1:
            raise _err(source, f"{key} is given {len(vals)} times")
        return vals[0]

    generic = {
        "MemSize": "mem_size",
        "ReadMode": "read_mode",
        "WriteMode": "write_mode",
        "AddressMode": "address_mode",
        "Frequency": "frequency",
        "SpiMode": "spi_mode",
        "SckDelay": "sck_delay",
        "RxDelay": "rx_delay",
        "WIPIndex": "wip_index",
        "PPSize": "page_program_size",
        "CustomInstructionIO2Level": "io2_level",
        "CustomInstructionIO3Level": "io3_level",
        "Board": "board",
    }
    flat = {name: one(key) for key, name in generic.items() if one(key) is not None}
    pins: dict[str, Any] = {}
    for p, prefix in _INI_PINS.items():
        pin, port = one(f"{prefix}Pin"), one(f"{prefix}Port")
        if pin is not None:
            pins[p] = (pin, port if port is not None else 0)
    instructions = [
        parse_custom_instruction(source, v) for v in raw.get("InitializationCustomInstruction", [])
    ]
    return _nrfjprog_layer(source, flat, pins, instructions)


def parse_nrfjprog_toml(text: str, source: str = "nrfjprog TOML") -> ConfigLayer:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise _err(source, f"malformed TOML: {e}") from None
    q = doc.get("qspi")
    if not isinstance(q, dict):
        raise _err(source, "no [qspi] table (not an nrfjprog config.toml with QSPI settings)")
    keys = (
        "mem_size",
        "read_mode",
        "write_mode",
        "address_mode",
        "frequency",
        "spi_mode",
        "rx_delay",
        "wip_index",
        "page_program_size",
    )
    flat = {k: q[k] for k in keys if k in q}
    if isinstance(doc.get("board"), str):
        flat["board"] = doc["board"]
    pins: dict[str, Any] = {}
    for p, table in (
        ("sck", "sck"),
        ("csn", "csn"),
        ("io0", "dio0"),
        ("io1", "dio1"),
        ("io2", "dio2"),
        ("io3", "dio3"),
    ):
        t = q.get(table)
        if t is None:
            continue
        if not isinstance(t, dict):
            raise _err(source, f"[qspi.{table}] must be a table")
        if "pin" in t:
            pins[p] = (t["pin"], t.get("port", 0))
        if table == "sck" and "delay" in t:
            flat["sck_delay"] = t["delay"]
    instructions = []
    custom = q.get("custom", {})
    if not isinstance(custom, dict):
        raise _err(source, "[qspi.custom] must be a table")
    for key in ("io2_level", "io3_level"):
        if key in custom:
            flat[key] = custom[key]
    for i, ins in enumerate(custom.get("instructions", [])):
        if not isinstance(ins, dict) or "command" not in ins:
            raise _err(source, f"qspi.custom.instructions[{i}] needs a 'command'")
        data = ins.get("data", [])
        if not isinstance(data, list) or len(data) > 8:
            raise _err(source, f"qspi.custom.instructions[{i}].data must be a list of at most 8 bytes")
        instructions.append(
            CustomInstruction(
                _int(source, "command", ins["command"], 0, 255),
                bytes(_int(source, "data byte", b, 0, 255) for b in data),
            )
        )
    return _nrfjprog_layer(source, flat, pins, instructions)


def _nrfjprog_layer(source: str, flat: dict, pins: dict, instructions: list) -> ConfigLayer:
    """Shared by the ini and TOML forms: nrfjprog names -> FlashConfig fields."""
    values: dict[str, Any] = {}
    if "mem_size" in flat:
        size = _int(source, "MemSize", flat["mem_size"], 0)
        if size == 0:
            raise _err(source, "MemSize is 0: the file says the board has no external memory")
        values["size"] = size
    if "read_mode" in flat:
        values["readoc"] = _enum(source, "ReadMode", flat["read_mode"], READ_OPCODES)
    if "write_mode" in flat:
        values["writeoc"] = _enum(source, "WriteMode", flat["write_mode"], WRITE_OPCODES)
    if "address_mode" in flat:
        values["address_mode"] = parse_address_mode(source, flat["address_mode"])
    if "frequency" in flat:
        f = flat["frequency"]
        if not (isinstance(f, str) and re.fullmatch(r"M(2|4|8|16|32)", f.strip().upper())):
            raise _err(source, f"Frequency {f!r} is not one of M2, M4, M8, M16, M32")
        values["sck_frequency"] = parse_frequency(source, f)
    if "spi_mode" in flat:
        values["spi_mode"] = parse_spi_mode(source, flat["spi_mode"])
    if "sck_delay" in flat:
        values["sck_delay"] = _int(source, "SckDelay", flat["sck_delay"], 0, SCK_DELAY_MAX)
    if "rx_delay" in flat:
        values["rx_delay"] = _int(source, "RxDelay", flat["rx_delay"], 0, RX_DELAY_MAX)
    if "wip_index" in flat:
        values["wip_index"] = _int(source, "WIPIndex", flat["wip_index"], 0, 7)
    if "page_program_size" in flat:
        values["pp_size"] = parse_pp_size(source, flat["page_program_size"])
    if "io2_level" in flat:
        values["custom_io2_level"] = _level(source, "CustomInstructionIO2Level", flat["io2_level"])
    if "io3_level" in flat:
        values["custom_io3_level"] = _level(source, "CustomInstructionIO3Level", flat["io3_level"])
    if pins:
        values["pins"] = {
            p: _int(source, f"{p} port", port, 0, 1) * 32 + _int(source, f"{p} pin", pin, 0, 31)
            for p, (pin, port) in pins.items()
        }
    if instructions:
        values["init_instructions"] = tuple(instructions)
    return ConfigLayer(source=source, values=values, board=flat.get("board"), pins_binding=False)


def load_config_file(path: str | Path) -> ConfigLayer:
    """Read an nrfutil JSON (.json), nrfjprog ini (.ini) or nrfjprog TOML (.toml) config."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: cannot read: {e}") from None
    suffix = path.suffix.lower()
    if suffix == ".json" or (suffix not in (".ini", ".toml") and text.lstrip().startswith("{")):
        return parse_nrfutil_json(text, f"{path}")
    if suffix == ".toml":
        return parse_nrfjprog_toml(text, f"{path}")
    if suffix == ".ini" or INI_SECTION in text:
        return parse_nrfjprog_ini(text, f"{path}")
    raise UsageError(f"{path}: unknown config format (use .json for nrfutil, .ini or .toml for nrfjprog)")


def cli_layer(
    *,
    address_mode: str | int | None = None,
    size: str | int | None = None,
    sck_frequency: str | int | None = None,
    readoc: str | None = None,
    writeoc: str | None = None,
    pp_size: str | int | None = None,
    sck_delay: str | int | None = None,
    rx_delay: str | int | None = None,
    spi_mode: str | int | None = None,
    jedec_id: str | None = None,
    pins: str | Mapping[str, int] | None = None,
    sector_size: str | int | None = None,
) -> ConfigLayer:
    """CLI overrides (None = not given). pins: 'sck=19,csn=17,io0=20,...' or a mapping."""
    s = "command line"
    v: dict[str, Any] = {}
    if address_mode is not None:
        v["address_mode"] = parse_address_mode(s, address_mode)
    if size is not None:
        v["size"] = _int(s, "--size", size, 1)
    if sck_frequency is not None:
        v["sck_frequency"] = parse_frequency(s, sck_frequency)
    if readoc is not None:
        v["readoc"] = _enum(s, "--readoc", readoc, READ_OPCODES)
    if writeoc is not None:
        v["writeoc"] = _enum(s, "--writeoc", writeoc, WRITE_OPCODES)
    if pp_size is not None:
        v["pp_size"] = parse_pp_size(s, pp_size)
    if sck_delay is not None:
        v["sck_delay"] = _int(s, "--sck-delay", sck_delay, 0, SCK_DELAY_MAX)
    if rx_delay is not None:
        v["rx_delay"] = _int(s, "--rx-delay", rx_delay, 0, RX_DELAY_MAX)
    if spi_mode is not None:
        v["spi_mode"] = parse_spi_mode(s, spi_mode)
    if jedec_id is not None:
        v["expected_jedec_id"] = parse_jedec_id(jedec_id)
    if sector_size is not None:
        v["sector_size"] = _int(s, "--sector-size", sector_size, 1)
    if pins is not None:
        if isinstance(pins, str):
            parsed = {}
            for item in pins.split(","):
                name, sep, num = item.partition("=")
                name = name.strip().lower()
                if not sep or name not in PIN_NAMES:
                    raise _err(s, f"--pins {pins!r}: expected e.g. sck=19,csn=17,io0=20,io1=21,io2=22,io3=23")
                parsed[name] = _pin_value(s, f"--pins {name}", num.strip())
            pins = parsed
        v["pins"] = dict(pins)
    return ConfigLayer(source=s, values=v)
