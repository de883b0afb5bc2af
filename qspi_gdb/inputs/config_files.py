"""Config-file parsers: the nrfutil `--x-ext-mem-config-file` JSON, nrfjprog's
`QspiDefault.ini` and the `[qspi]` table of its `config.toml` (README "Configuration formats").
Each returns a ConfigLayer with FlashConfig field names; malformed input is a UsageError naming
the file and the reason, on one line. Configs are strict: a key this version does not know (a
typo such as `flash_sise`) is an error naming the file, the key and the nearest known key, so a
command never runs with defaults in place of what was meant; `allow_unknown_keys` (a file
written for a newer version) turns that into a warning.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

from qspi_gdb.errors import UsageError, did_you_mean
from qspi_gdb.inputs.boards import PIN_NAMES
from qspi_gdb.inputs.config_values import (
    READ_OPCODES,
    RX_DELAY_MAX,
    SCK_DELAY_MAX,
    WRITE_OPCODES,
    ConfigLayer,
    CustomInstruction,
    parse_address_mode,
    parse_custom_instruction,
    parse_enum,
    parse_frequency,
    parse_pin,
    parse_pp_size,
    parse_setting_int,
    parse_size,
    parse_spi_mode,
    setting_error,
)
from qspi_gdb.log import get_logger

log = get_logger(__name__)


def check_keys(source: str, keys, known, *, where: str = "", allow_unknown: bool = False) -> None:
    """Refuse keys that are not in `known` (where: 'pins.' etc. for the message), naming each
    with the nearest known key; with allow_unknown, warn and ignore them instead."""
    unknown = sorted(k for k in keys if k not in known)
    if not unknown:
        return
    if allow_unknown:
        log.warning("ignoring unknown keys (--allow-unknown-keys)", source=source,
                    keys=[f"{where}{k}" for k in unknown])
        return
    named = ", ".join(f'"{where}{k}"'
                      f'{did_you_mean(where + k, [where + n for n in sorted(known)], quote=chr(34))}'
                      for k in unknown)
    raise setting_error(source, f"unknown key{'s' if len(unknown) > 1 else ''} {named}; "
                        "--allow-unknown-keys ignores keys of newer versions with a warning")


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


def parse_nrfutil_json(text: str, source: str = "nrfutil JSON", *,
                      allow_unknown_keys: bool = False) -> ConfigLayer:
    """nrfutil device --x-ext-mem-config-file JSON (QSPI peripheral only)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise setting_error(source, f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if not isinstance(doc, dict):
        raise setting_error(source, "malformed config: the top level must be a JSON object")
    check_keys(source, doc, NRFUTIL_KEYS, allow_unknown=allow_unknown_keys)
    fw = doc.get("firmware_config")
    if not isinstance(fw, dict) or "peripheral" not in fw:
        raise setting_error(source, 'missing "firmware_config": {"peripheral": "QSPI"}')
    check_keys(source, fw, {"peripheral"}, where="firmware_config.",
               allow_unknown=allow_unknown_keys)
    if str(fw["peripheral"]).upper() != "QSPI":
        raise setting_error(
            source, f"peripheral {fw['peripheral']!r} is not supported: qspi-gdb drives the QSPI peripheral"
        )
    values: dict[str, Any] = {}
    pins = doc.get("pins")
    if pins is not None:
        if not isinstance(pins, dict):
            raise setting_error(source, '"pins" must be an object like {"sck": 17, "csn": 18, ...}')
        check_keys(source, pins, PIN_NAMES, where="pins.", allow_unknown=allow_unknown_keys)
        missing = [p for p in ("sck", "csn", "io0", "io1") if p not in pins]
        if missing:
            raise setting_error(source, f"pins: missing {', '.join(missing)}")
        values["pins"] = {p: parse_pin(source, f"pins.{p}", pins[p]) for p in PIN_NAMES if p in pins}
        for p in ("sck", "csn", "io0", "io1"):
            if values["pins"][p] is None:
                raise setting_error(source, f"pins.{p} must be connected")
    if "flash_size" in doc:
        values["size"] = parse_size(source, "flash_size", doc["flash_size"])
    if "sck_frequency" in doc:
        values["sck_frequency"] = parse_frequency(source, doc["sck_frequency"])
    if "address_mode" in doc:
        values["address_mode"] = parse_address_mode(source, doc["address_mode"])
    if "readoc" in doc:
        values["readoc"] = parse_enum(source, "readoc", doc["readoc"], READ_OPCODES)
    if "writeoc" in doc:
        values["writeoc"] = parse_enum(source, "writeoc", doc["writeoc"], WRITE_OPCODES)
    if "pp_size" in doc:
        values["pp_size"] = parse_pp_size(source, doc["pp_size"])
    if "sck_delay" in doc:
        values["sck_delay"] = parse_setting_int(source, "sck_delay", doc["sck_delay"], 0, SCK_DELAY_MAX)
    if "rx_delay" in doc:
        values["rx_delay"] = parse_setting_int(source, "rx_delay", doc["rx_delay"], 0, RX_DELAY_MAX)
    if "page_size" in doc:
        values["sector_size"] = parse_setting_int(source, "page_size", doc["page_size"], 1)
    board = doc.get("board")
    if board is not None and not isinstance(board, str):
        raise setting_error(source, f"board {board!r} is not a name")
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
                raise setting_error(source, f"line {lineno}: malformed section header {line!r}")
            section = line[1:-1].strip()
            seen_section |= section == INI_SECTION
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise setting_error(source, f"line {lineno}: expected 'Key = value', got {line!r}")
        if section != INI_SECTION:
            continue
        value = re.split(r"\s[;#]", value, maxsplit=1)[0]  # trailing comment
        out.setdefault(key.strip(), []).append(value.strip())
    if not seen_section:
        raise setting_error(source, f"no [{INI_SECTION}] section (not an nrfjprog QSPI ini)")
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
    return parse_enum(source, key, value, ("LEVEL_HIGH", "LEVEL_LOW")) == "LEVEL_HIGH"


def parse_nrfjprog_ini(text: str, source: str = "nrfjprog ini", *,
                      allow_unknown_keys: bool = False) -> ConfigLayer:
    raw = _read_ini(text, source)
    check_keys(source, raw, INI_KEYS, allow_unknown=allow_unknown_keys)

    def one(key):
        vals = raw.get(key)
        if vals is None:
            return None
        if len(vals) > 1:
            raise setting_error(source, f"{key} is given {len(vals)} times")
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


_TOML_PIN_TABLES = {"sck": "sck", "csn": "csn", "io0": "dio0", "io1": "dio1", "io2": "dio2",
                    "io3": "dio3"}
_TOML_KEYS = {"mem_size", "read_mode", "write_mode", "address_mode", "frequency", "spi_mode",
              "rx_delay", "wip_index", "page_program_size", "retain_ram", "custom",
              *_TOML_PIN_TABLES.values()}


def parse_nrfjprog_toml(text: str, source: str = "nrfjprog TOML", *,
                        allow_unknown_keys: bool = False) -> ConfigLayer:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise setting_error(source, f"malformed TOML: {e}") from None
    q = doc.get("qspi")
    if not isinstance(q, dict):
        raise setting_error(source, "no [qspi] table (not an nrfjprog config.toml with QSPI settings)")
    check_keys(source, q, _TOML_KEYS, where="qspi.", allow_unknown=allow_unknown_keys)
    flat = {k: q[k] for k in _TOML_KEYS - {"custom", "retain_ram", *_TOML_PIN_TABLES.values()}
            if k in q}
    if isinstance(doc.get("board"), str):
        flat["board"] = doc["board"]
    pins: dict[str, Any] = {}
    for p, table in _TOML_PIN_TABLES.items():
        t = q.get(table)
        if t is None:
            continue
        if not isinstance(t, dict):
            raise setting_error(source, f"[qspi.{table}] must be a table")
        check_keys(source, t, {"pin", "port", *(("delay",) if table == "sck" else ())},
                   where=f"qspi.{table}.", allow_unknown=allow_unknown_keys)
        if "pin" in t:
            pins[p] = (t["pin"], t.get("port", 0))
        if table == "sck" and "delay" in t:
            flat["sck_delay"] = t["delay"]
    instructions = []
    custom = q.get("custom", {})
    if not isinstance(custom, dict):
        raise setting_error(source, "[qspi.custom] must be a table")
    check_keys(source, custom, {"io2_level", "io3_level", "instructions"}, where="qspi.custom.",
               allow_unknown=allow_unknown_keys)
    for key in ("io2_level", "io3_level"):
        if key in custom:
            flat[key] = custom[key]
    for i, ins in enumerate(custom.get("instructions", [])):
        if not isinstance(ins, dict) or "command" not in ins:
            raise setting_error(source, f"qspi.custom.instructions[{i}] needs a 'command'")
        check_keys(source, ins, {"command", "data"}, where=f"qspi.custom.instructions[{i}].",
                   allow_unknown=allow_unknown_keys)
        data = ins.get("data", [])
        if not isinstance(data, list) or len(data) > 8:
            raise setting_error(source, f"qspi.custom.instructions[{i}].data must be a list of at most 8 bytes")
        instructions.append(
            CustomInstruction(
                parse_setting_int(source, "command", ins["command"], 0, 255),
                bytes(parse_setting_int(source, "data byte", b, 0, 255) for b in data),
            )
        )
    return _nrfjprog_layer(source, flat, pins, instructions)


def _nrfjprog_layer(source: str, flat: dict, pins: dict, instructions: list) -> ConfigLayer:
    """Shared by the ini and TOML forms: nrfjprog names -> FlashConfig fields."""
    values: dict[str, Any] = {}
    if "mem_size" in flat:
        if parse_setting_int(source, "MemSize", flat["mem_size"]) == 0:
            raise setting_error(source, "MemSize is 0: the file says the board has no external memory")
        values["size"] = parse_size(source, "MemSize", flat["mem_size"])
    if "read_mode" in flat:
        values["readoc"] = parse_enum(source, "ReadMode", flat["read_mode"], READ_OPCODES)
    if "write_mode" in flat:
        values["writeoc"] = parse_enum(source, "WriteMode", flat["write_mode"], WRITE_OPCODES)
    if "address_mode" in flat:
        values["address_mode"] = parse_address_mode(source, flat["address_mode"])
    if "frequency" in flat:
        f = flat["frequency"]
        if not (isinstance(f, str) and re.fullmatch(r"M(2|4|8|16|32)", f.strip().upper())):
            raise setting_error(source, f"Frequency {f!r} is not one of M2, M4, M8, M16, M32")
        values["sck_frequency"] = parse_frequency(source, f)
    if "spi_mode" in flat:
        values["spi_mode"] = parse_spi_mode(source, flat["spi_mode"])
    if "sck_delay" in flat:
        values["sck_delay"] = parse_setting_int(source, "SckDelay", flat["sck_delay"], 0, SCK_DELAY_MAX)
    if "rx_delay" in flat:
        values["rx_delay"] = parse_setting_int(source, "RxDelay", flat["rx_delay"], 0, RX_DELAY_MAX)
    if "wip_index" in flat:
        values["wip_index"] = parse_setting_int(source, "WIPIndex", flat["wip_index"], 0, 7)
    if "page_program_size" in flat:
        values["pp_size"] = parse_pp_size(source, flat["page_program_size"])
    if "io2_level" in flat:
        values["custom_io2_level"] = _level(source, "CustomInstructionIO2Level", flat["io2_level"])
    if "io3_level" in flat:
        values["custom_io3_level"] = _level(source, "CustomInstructionIO3Level", flat["io3_level"])
    if pins:
        values["pins"] = {
            p: parse_setting_int(source, f"{p} port", port, 0, 1) * 32 + parse_setting_int(source, f"{p} pin", pin, 0, 31)
            for p, (pin, port) in pins.items()
        }
    if instructions:
        values["init_instructions"] = tuple(instructions)
    return ConfigLayer(source=source, values=values, board=flat.get("board"), pins_binding=False)


def load_config_file(path: str | Path, *, allow_unknown_keys: bool = False) -> ConfigLayer:
    """Read an nrfutil JSON (.json), nrfjprog ini (.ini) or nrfjprog TOML (.toml) config.
    allow_unknown_keys: ignore keys this version does not know, with a warning (else an
    error)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a leading BOM (Windows editors) is fine
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: cannot read: {e}") from None
    suffix = path.suffix.lower()
    if suffix == ".json" or (suffix not in (".ini", ".toml") and text.lstrip().startswith("{")):
        return parse_nrfutil_json(text, f"{path}", allow_unknown_keys=allow_unknown_keys)
    if suffix == ".toml":
        return parse_nrfjprog_toml(text, f"{path}", allow_unknown_keys=allow_unknown_keys)
    if suffix == ".ini" or INI_SECTION in text:
        return parse_nrfjprog_ini(text, f"{path}", allow_unknown_keys=allow_unknown_keys)
    raise UsageError(f"{path}: unknown config format (use .json for nrfutil, .ini or .toml for nrfjprog)")
