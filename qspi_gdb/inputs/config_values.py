"""Configuration values: the ConfigLayer every source produces (FlashConfig field names), the
parsers of single values shared by the config files and the command line, and the command-line
layer itself. Malformed input is a UsageError naming the source and the reason, on one line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from qspi_gdb.errors import UsageError, did_you_mean
from qspi_gdb.inputs.boards import PIN_NAMES
from qspi_gdb.inputs.image import parse_int

READ_OPCODES = ("FASTREAD", "READ2O", "READ2IO", "READ4O", "READ4IO")
WRITE_OPCODES = ("PP", "PP2O", "PP4O", "PP4IO")
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


def setting_error(source: str, message: str) -> UsageError:
    return UsageError(f"{source}: {message}")


def parse_enum(source: str, key: str, value: Any, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if not isinstance(value, str) or value.upper() not in allowed:
        hint = did_you_mean(value.upper(), allowed) if isinstance(value, str) else ""
        raise setting_error(source, f"{key} {value!r} is not one of {', '.join(allowed)}{hint}")
    return value.upper()


def parse_setting_int(source: str, key: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, bool):
        raise setting_error(source, f"{key} {value!r} is not a number")
    if isinstance(value, str):
        try:
            value = parse_int(value, key)
        except UsageError:
            raise setting_error(source, f"{key} {value!r} is not a number") from None
    if not isinstance(value, int):
        raise setting_error(source, f"{key} {value!r} is not a number")
    if lo is not None and hi is not None and not lo <= value <= hi:
        raise setting_error(source, f"{key} {value} is outside {lo}..{hi}")
    if lo is not None and value < lo:
        raise setting_error(source, f"{key} {value} must be at least {lo}")
    if hi is not None and value > hi:
        raise setting_error(source, f"{key} {value} must be at most {hi}")
    return value


MIN_FLASH_SIZE = 4096  # one erase sector


def parse_size(source: str, key: str, value: Any) -> int:
    """A flash size: a power of two of at least one 4 KiB sector (NOR parts come so)."""
    size = parse_setting_int(source, key, value)
    if size < MIN_FLASH_SIZE or size & (size - 1):
        raise setting_error(source, f"{key} {value} must be a power of two of at least "
                                    f"{MIN_FLASH_SIZE} (bytes)")
    return size


def _named(source: str, key: str, value: Any, table: Mapping[str, int], expected: str) -> int:
    """The number a symbolic setting names (case and surrounding blanks ignored)."""
    text = str(value).strip().upper()
    if text not in table:
        hint = did_you_mean(text, [k for k in table if not k.isdigit()])
        raise setting_error(source, f"{key} {value!r} is not {expected}{hint}")
    return table[text]


_ADDRESS_MODES = {"MODE24BIT": 24, "BIT24": 24, "24": 24, "MODE32BIT": 32, "BIT32": 32, "32": 32}
_PP_SIZES = {"PPSIZE256": 256, "PAGE256": 256, "256": 256, "PPSIZE512": 512, "PAGE512": 512,
             "512": 512}
_SPI_MODES = {"MODE0": 0, "0": 0, "MODE3": 3, "3": 3}


def parse_address_mode(source: str, value: Any) -> int:
    return _named(source, "address_mode", value, _ADDRESS_MODES, "MODE24BIT or MODE32BIT")


def parse_pp_size(source: str, value: Any) -> int:
    return _named(source, "pp_size", value, _PP_SIZES, "PPSIZE256 or PPSIZE512")


def parse_frequency(source: str, value: Any, key: str = "sck_frequency") -> int:
    """Hz from 8000000, '8M', '8MHz' or nrfjprog's 'M8'."""
    if isinstance(value, str):
        t = value.strip().upper().replace("HZ", "")
        m = re.fullmatch(r"M(2|4|8|16|32)", t)
        if m:
            return int(m.group(1)) * 1_000_000
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KM]?)", t)
        if not m:
            raise setting_error(source, f"{key} {value!r} is not a frequency (e.g. 8000000 or 8M)")
        return int(float(m.group(1)) * {"": 1, "K": 1e3, "M": 1e6}[m.group(2)])
    return parse_setting_int(source, key, value, 1)


def parse_jedec_id(value: str | bytes, source: str = "--jedec-id") -> bytes:
    """'C22817', 'c2 28 17', '0xC22817', 'C2:28:17' -> b'\\xc2\\x28\\x17'."""
    if isinstance(value, (bytes, bytearray)):
        if len(value) != 3:
            raise setting_error(source, f"JEDEC ID {bytes(value).hex()} is not 3 bytes")
        return bytes(value)
    t = re.sub(r"[\s:_-]", "", str(value))
    if t[:2].lower() == "0x":
        t = t[2:]
    if not re.fullmatch(r"[0-9a-fA-F]{6}", t):
        raise setting_error(source, f"JEDEC ID {value!r} is not 3 hex bytes (e.g. C22817)")
    return bytes.fromhex(t)


def parse_spi_mode(source: str, value: Any) -> int:
    return _named(source, "spi_mode", value, _SPI_MODES, "MODE0 or MODE3")


def parse_custom_instruction(source: str, text: str) -> CustomInstruction:
    """nrfjprog format: '0x06' or '0x01, [0x40, 0, 0x2]' (decimal, 0x hex or 0b binary)."""
    m = re.fullmatch(r"\s*([^,\[\]\s]+)\s*(?:,\s*\[([^\]]*)\]\s*)?", text)
    if not m:
        raise setting_error(
            source, f"InitializationCustomInstruction {text!r}: expected 'opcode' or 'opcode, [b0, b1, ...]'"
        )
    opcode = parse_setting_int(source, "instruction opcode", m.group(1), 0, 255)
    data_text = (m.group(2) or "").strip()
    data = (
        [parse_setting_int(source, "instruction data byte", b.strip(), 0, 255) for b in data_text.split(",")]
        if data_text
        else []
    )
    if len(data) > 8:
        raise setting_error(source, f"instruction 0x{opcode:02X} has {len(data)} data bytes; CINSTR carries at most 8")
    return CustomInstruction(opcode, bytes(data))


def parse_pin(source: str, key: str, value: Any) -> int | None:
    v = parse_setting_int(source, key, value, 0, NOT_CONNECTED)
    if v == NOT_CONNECTED:
        return None
    if v > 63:
        raise setting_error(source, f"{key} {v} is not a GPIO number (port * 32 + pin, at most 63)")
    return v


# The command-line override of each FlashConfig setting, named after the nrfutil JSON key
# (README "Configuration formats"); messages about a command-line value name the option.
CLI_OPTIONS = {
    "size": "--flash-size",
    "address_mode": "--address-mode",
    "sck_frequency": "--sck-frequency",
    "readoc": "--readoc",
    "writeoc": "--writeoc",
    "pp_size": "--pp-size",
    "sck_delay": "--sck-delay",
    "rx_delay": "--rx-delay",
    "spi_mode": "--spi-mode",
    "sector_size": "--page-size",
    "pins": "--pins",
    "expected_jedec_id": "--jedec-id",
}


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
    """Command-line overrides (None = not given), keyword names as FlashConfig fields (the
    options are CLI_OPTIONS). pins: 'sck=19,csn=17,io0=20,...' or a mapping."""
    s = "command line"
    o = CLI_OPTIONS
    v: dict[str, Any] = {}
    if address_mode is not None:
        v["address_mode"] = _named(s, o["address_mode"], address_mode, _ADDRESS_MODES,
                                   "MODE24BIT or MODE32BIT")
    if size is not None:
        v["size"] = parse_size(s, o["size"], size)
    if sck_frequency is not None:
        v["sck_frequency"] = parse_frequency(s, sck_frequency, o["sck_frequency"])
    if readoc is not None:
        v["readoc"] = parse_enum(s, o["readoc"], readoc, READ_OPCODES)
    if writeoc is not None:
        v["writeoc"] = parse_enum(s, o["writeoc"], writeoc, WRITE_OPCODES)
    if pp_size is not None:
        v["pp_size"] = _named(s, o["pp_size"], pp_size, _PP_SIZES, "PPSIZE256 or PPSIZE512")
    if sck_delay is not None:
        v["sck_delay"] = parse_setting_int(s, o["sck_delay"], sck_delay, 0, SCK_DELAY_MAX)
    if rx_delay is not None:
        v["rx_delay"] = parse_setting_int(s, o["rx_delay"], rx_delay, 0, RX_DELAY_MAX)
    if spi_mode is not None:
        v["spi_mode"] = _named(s, o["spi_mode"], spi_mode, _SPI_MODES, "MODE0 or MODE3")
    if jedec_id is not None:
        v["expected_jedec_id"] = parse_jedec_id(jedec_id)
    if sector_size is not None:
        v["sector_size"] = parse_setting_int(s, o["sector_size"], sector_size, 1)
    if pins is not None:
        if isinstance(pins, str):
            parsed = {}
            for item in pins.split(","):
                name, sep, num = item.partition("=")
                name = name.strip().lower()
                if not sep or name not in PIN_NAMES:
                    raise setting_error(s, f"--pins {pins!r}: expected e.g. sck=19,csn=17,io0=20,io1=21,io2=22,io3=23")
                parsed[name] = parse_pin(s, f"--pins {name}", num.strip())
            pins = parsed
        v["pins"] = dict(pins)
    return ConfigLayer(source=s, values=v)
