"""What a command did, as data: the `Result` every job fills as it goes (so a failure still
reports what was done) and the command line prints as one summary line or as the `--json`
object (schema "qspi-gdb/result/1", README "The --json result")."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA = "qspi-gdb/result/1"


@dataclass
class Result:
    """One command's outcome. Offsets are flash offsets; sizes in bytes."""

    command: str  # flash | verify | read | erase | info | recover | selftest | probes
    ok: bool = False
    board: str | None = None
    part: str | None = None  # detected part name, when known
    jedec_id: str | None = None  # e.g. "9D7019"
    flash_size: int | None = None
    address_mode: str | None = None  # "24-bit" | "32-bit"
    image: dict | None = None  # qspi_gdb.inputs.image.Image.to_json()
    dry_run: bool = False
    sectors_erased: int = 0
    bytes_erased: int = 0
    chip_erased: bool = False
    sectors_written: int = 0
    pages_programmed: int = 0
    pages_skipped_blank: int = 0  # pages of rewritten sectors that stay all 0xFF: not programmed
    bytes_programmed: int = 0
    bytes_sent: int = 0  # program data moved into target RAM (LZ4 blocks counted packed)
    sectors_skipped_unchanged: int = 0
    bytes_skipped_unchanged: int = 0
    bytes_preserved: int = 0  # read-modify-write: bytes outside the image kept in erased sectors
    verify: str = "not run"  # "verified" | "not verified" | "mismatch" | "not run"
    verified_ranges: list[dict] = field(default_factory=list)  # {offset, length, crc32}
    mismatched_ranges: list[dict] = field(default_factory=list)  # {offset, length, expected, actual}
    range: dict | None = None  # read / erase: {offset, length} of the flash range
    bytes_read: int = 0
    output_file: str | None = None  # read: the file written (None: stdout, `-o -`)
    seconds: float = 0.0
    phase_seconds: dict[str, float] = field(default_factory=dict)
    retries: list[dict] = field(default_factory=list)  # flash: {attempt, reason} of each second try
    stops: int = 0  # times the loader was halted (by the host's request, or noticed halts)
    noticed_halts: int = 0  # halts the loader made itself (a fault): seen at the debugger's poll
    info: dict | None = None  # `info`: detected chip, SFDP summary
    plan: dict | None = None  # --dry-run: the plan
    reset: str | None = None  # --reset: how the target was reset ("sysresetreq", ...)
    error: dict | None = None  # {message, exit_code}
    warnings: list[str] = field(default_factory=list)  # configured values the chip overrode
    probe: dict | None = None  # {interface, serial, speed_khz}: how the target was reached
    speed_khz: float | None = None  # the SWD clock used (None: a GDB server chose it)
    recover: dict | None = None  # `recover`: per core, the erase and the access port before/after
    selftest: dict | None = None  # `selftest`: checks, patterns, speeds, restore
    summary: str | None = None  # the summary line of commands that describe themselves

    @property
    def verified(self) -> bool:
        return self.verify == "verified"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["schema"] = SCHEMA
        data["verified"] = self.verified
        image_bytes = (self.image or {}).get("bytes") or 0
        data["stops_per_mib"] = round(self.stops / (image_bytes / (1 << 20)), 2) \
            if image_bytes else None
        data["compression_ratio"] = round(self.bytes_programmed / self.bytes_sent, 3) \
            if self.bytes_sent else None
        return data
