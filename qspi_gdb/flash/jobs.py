"""The commands as library functions: flash, verify, read, erase, info.

Each job takes typed options (`qspi_gdb.flash.options`), a function that opens the target
(`OpenTarget`: the command line passes one that starts OpenOCD or a virtual board, a script may
pass any TargetLink) and a progress sink, and fills a `Result` as it goes, so a failure still
reports what was done. Inputs are checked here, before the target is opened; the flash rules
themselves live in `qspi_gdb.flash.rules`. Jobs never start a process and never print.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

from qspi_gdb import log
from qspi_gdb.errors import (
    QspiGdbError,
    TargetError,
    UsageError,
    VerifyError,
    connection_lost,
)
from qspi_gdb.flash import retry, rules
from qspi_gdb.flash.chip_state import describe_network_core, network_core
from qspi_gdb.flash.estimate import (
    PREFILL_BYTES,
    Estimate,
    choose_profile,
    estimate,
    link_s_per_byte,
)
from qspi_gdb.flash.journal import Identity, open_journal
from qspi_gdb.flash.options import FlashOptions, ImageSpec, TargetSpec
from qspi_gdb.flash.plan import Plan
from qspi_gdb.flash.plan import plan as make_plan
from qspi_gdb.flash.plan_text import render_plan
from qspi_gdb.flash.programmer import Programmer, WorkDone
from qspi_gdb.flash.progress import ProgressSink
from qspi_gdb.flash.ranges import Range
from qspi_gdb.flash.result import Result
from qspi_gdb.inputs import boards
from qspi_gdb.inputs.config_files import load_config_file
from qspi_gdb.inputs.config_values import cli_layer
from qspi_gdb.inputs.detect import apply_chip
from qspi_gdb.inputs.flash_config import FlashConfig, build_config
from qspi_gdb.inputs.image import (
    Image,
    load_image,
    merge_images,
    parse_int,
    to_flash_offset,
)
from qspi_gdb.loader import check_loader_elf, loader_elf
from qspi_gdb.loader.target import TargetLink

_log = log.get_logger(__name__)

# Opens the target of a board for the loader ELF given (GDB loads its symbols) and yields the
# TargetLink to it; everything it started ends with the context.
OpenTarget = Callable[[boards.Board, Path], AbstractContextManager[TargetLink]]


# -- inputs ---------------------------------------------------------------------------------


def preset_config(target: TargetSpec) -> FlashConfig:
    """Board preset + config file + command-line overrides (before the chip is detected)."""
    layers = []
    if target.config_file:
        layers.append(load_config_file(target.config_file,
                                       allow_unknown_keys=target.allow_unknown_keys))
    if target.jedec_id or target.settings:
        layers.append(cli_layer(jedec_id=target.jedec_id, **target.settings))
    return build_config(target.board, layers)


ImageSpecs = ImageSpec | Sequence[ImageSpec]


def _image(specs: ImageSpecs, cfg: FlashConfig) -> Image:
    """One image file, or several merged into one (their data may not overlap)."""
    specs = [specs] if isinstance(specs, ImageSpec) else list(specs)
    return merge_images([load_image(spec.path, xip_base=cfg.xip_base, addr=spec.addr,
                                    raw_offsets=spec.raw_offsets, only_qspi=spec.only_qspi,
                                    kind=spec.kind)
                         for spec in specs])


def _assumed(cfg: FlashConfig) -> FlashConfig | None:
    """The configuration with the preset's usual part, or None when that contradicts an
    explicit setting (the chip present decides then)."""
    try:
        return apply_chip(cfg)
    except UsageError:
        return None


def planning_config(cfg: FlashConfig, command: str) -> FlashConfig:
    """The configuration a dry run plans with: the board preset's usual part, assumed."""
    try:
        return apply_chip(cfg)
    except UsageError as exc:
        raise UsageError(f"{command} --dry-run cannot plan with the board's usual flash part "
                         f"{cfg.part} (assumed, not detected): {exc}; the chip present decides "
                         "(`qspi-gdb info` shows it)") from None


def _precheck(image: Image, cfg: FlashConfig) -> None:
    """Refuse before starting anything what the stated flash cannot take (explicit size)."""
    explicit_size = not cfg.sources.get("size", "preset ").startswith("preset ")
    explicit_mode = not cfg.sources.get("address_mode", "preset ").startswith("preset ")
    assumed = _assumed(cfg)
    if assumed is None:
        return
    if explicit_size:
        rules.check_image(image, assumed)
    elif explicit_mode and assumed.address_mode == 24:
        # MODE24BIT stated: data at or above 16 MiB cannot be reached whatever the chip's size
        rules.check_image(image, replace(assumed, size=max(assumed.size, 1 << 32)))


def _loader_path(target: TargetSpec, cfg: FlashConfig) -> Path:
    if target.loader is None:
        return loader_elf(cfg.chip)
    check_loader_elf(target.loader)
    return Path(target.loader).absolute()  # GDB may not share our working directory


def _address(text: str | int, cfg: FlashConfig, what: str = "address") -> int:
    offset, _kind = to_flash_offset(parse_int(text, what), xip_base=cfg.xip_base)
    return offset


def check_output_file(output: str | os.PathLike, option: str = "--output") -> Path:
    """A file a command writes (read -o FILE, --report, --layout): refused before connecting
    when it cannot be written."""
    path = Path(output)
    if path.is_dir():
        raise UsageError(f"{option} {output}: is a directory (name a file)")
    parent = path.absolute().parent
    if not parent.is_dir():
        raise UsageError(f"{option} {output}: no such directory {parent}")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"{option} {output}: directory {parent} is not writable")
    return path


# -- the connected programmer ---------------------------------------------------------------


@contextmanager
def _programmer(target: TargetSpec, cfg: FlashConfig, open_target: OpenTarget,
                progress: ProgressSink, result: Result) -> Iterator[Programmer]:
    """Open the target, start the loader, detect the chip; on the way out leave the chip in the
    address mode it had (also after errors) and reset the core when asked. The work done is
    copied into the result however the command ends, and an error after the flash was touched
    says what state the flash range is in."""
    loader = _loader_path(target, cfg)
    board = boards.find_board(cfg.board)
    result.board = cfg.board
    with open_target(board, loader) as link:
        programmer = Programmer(link, chip=cfg.chip, loader_elf=loader, progress=progress)
        try:
            detected = retry.connect(programmer, cfg)
            result.part, result.flash_size = detected.part, detected.size
            result.jedec_id = detected.jedec_id.hex().upper() if detected.jedec_id else None
            result.address_mode = f"{detected.address_mode}-bit"
            result.warnings = [str(w) for w in detected.warnings]
            try:
                yield programmer
            except BaseException as exc:
                if programmer.kept_note and not isinstance(exc, QspiGdbError):
                    exc.add_note(programmer.kept_note)  # Ctrl-C: its message says where
                if connection_lost(exc) is None:  # nobody to ask once a process is gone
                    _close_quietly(programmer)  # restore the chip's address mode on errors too
                raise
            programmer.close()
            if target.reset:
                result.reset = link.reset(halt=False) or "reset"
        except QspiGdbError as exc:
            lost = connection_lost(exc)
            state = "" if isinstance(exc, VerifyError) else _flash_state(programmer, result)
            if not state and lost in (None, exc):
                raise
            # a refusal after erasing/programming began is no longer "nothing written"; a
            # process that ended is the whole story (diagnostics could not be read from it)
            reason = lost or exc
            raise TargetError(f"{reason}; {state}" if state else str(reason)) from exc
        finally:
            result.stops = programmer.client.stats.stops
            result.noticed_halts = programmer.client.stats.noticed_halts
            _fill_work(result, programmer.work)


def _flash_state(programmer: Programmer, result: Result) -> str:
    """What a failure leaves in the flash range, for its message ("" when nothing was
    touched): partly written, or written (and verified or not) when the failure came later."""
    if not programmer.flash_touched:
        return ""
    done = "erased" if result.command == "erase" else "written"
    if not programmer.flash_written:
        kept = f"; {programmer.kept_note}" if programmer.kept_note else ""
        return f"the flash range may be partly {done}{kept}"
    if result.verify == "verified":
        return f"the flash range was {done} and verified"
    return f"the flash range was {done} but not verified"


def _close_quietly(programmer: Programmer) -> None:
    """Deinit after a failure: leave the chip in the address mode it had (an application that
    expects 3-byte mode must still boot); a failure here must not hide the original error."""
    try:
        programmer.close()
    except Exception as exc:  # noqa: BLE001 - logged, the original error is what matters
        _log.warning("could not restore the flash's address mode after the error", error=str(exc))


def _fill_work(result: Result, work: WorkDone) -> None:
    """The erase and program work done, as the programmer counted it (also after a failure)."""
    result.sectors_erased = work.erase_units
    result.bytes_erased = work.bytes_erased
    result.chip_erased = work.chip_erased
    result.sectors_written = work.sectors_written
    result.pages_programmed = work.pages_programmed
    result.bytes_programmed = work.bytes_programmed


def _fill_plan_counts(result: Result, the_plan: Plan, *, would_do: bool = False) -> None:
    """What the plan found (sectors already holding the image, bytes kept around it) and, for
    a dry run (would_do), the work it would do."""
    result.sectors_skipped_unchanged = the_plan.sectors_unchanged
    result.bytes_skipped_unchanged = sum(c.range.length for c in the_plan.unchanged_checks)
    result.bytes_preserved = the_plan.fill_bytes
    if would_do:
        result.sectors_erased = the_plan.sectors_erased
        result.bytes_erased = the_plan.bytes_erased
        result.chip_erased = the_plan.chip_erase
        result.sectors_written = the_plan.sectors_written
        result.pages_programmed = the_plan.pages_to_program
        result.pages_skipped_blank = the_plan.image_pages_blank
        result.bytes_programmed = the_plan.pages_to_program * the_plan.page_size


# -- the jobs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedFlash:
    """What `flash` carried out (or, for a dry run, would carry out): the plan, the flash
    configuration it was made for (detected, or for a dry run assumed) and, for a dry run, the
    time estimate."""

    plan: Plan
    config: FlashConfig
    estimate: Estimate | None = None
    checks_unchanged: bool = True  # sectors holding the image are skipped (not with --force)

    def text(self) -> str:
        return render_plan(self.plan, self.config, self.estimate,
                           checks_unchanged=self.checks_unchanged)


def flash(target: TargetSpec, image_spec: ImageSpecs, options: FlashOptions,
          open_target: OpenTarget, progress: ProgressSink, result: Result) -> PlannedFlash:
    """Write one image, or several merged into one plan, and verify it (unless options.verify
    is False); with options.dry_run only plan it, connecting to nothing."""
    cfg = preset_config(target)
    image = _image(image_spec, cfg)
    result.image = image.to_json()
    if options.dry_run:
        assumed = planning_config(cfg, "flash")
        board = boards.find_board(assumed.board)
        virtual = bool(board and board.virtual)
        the_plan = make_plan(image, assumed, force=options.force, chip_erase=options.chip_erase,
                             link_s_per_byte=link_s_per_byte(options.probe, virtual=virtual),
                             prefill_bytes=PREFILL_BYTES)
        profile, reason = choose_profile(options.probe, virtual=virtual)
        crc_check = not (options.force or options.chip_erase)
        est = estimate(the_plan, assumed, profile, reason, crc_check=crc_check)
        _fill_plan_counts(result, the_plan, would_do=True)
        result.dry_run = True
        result.plan = {**the_plan.to_json(), "flash": rules.chip_text(assumed),
                       "detected": False, "estimate": est.to_json()}
        result.ok = True
        return PlannedFlash(the_plan, assumed, est, checks_unchanged=crc_check)
    _precheck(image, cfg)
    board = boards.find_board(cfg.board)
    link_cost = link_s_per_byte(options.probe, virtual=bool(board and board.virtual))
    with _programmer(target, cfg, open_target, progress, result) as programmer:
        jedec = programmer.config.jedec_id
        identity = Identity(programmer.config.board, options.target_id or f"board {cfg.board}",
                            jedec.hex().upper() if jedec else "unknown")
        tries = retry.Attempts()
        try:
            outcome = retry.flash(
                programmer, image,
                lambda first: open_journal(identity, image,
                                           discard=first and options.discard_journal),
                verify=options.verify, force=options.force, chip_erase=options.chip_erase,
                compress=options.compress, attempts=tries, link_s_per_byte=link_cost)
        finally:
            result.retries = tries.retries
        _fill_plan_counts(result, tries.first_plan or outcome.plan)
        result.pages_skipped_blank = tries.pages_skipped_blank
        result.bytes_sent = programmer.client.stats.bytes_sent
        result.verified_ranges = outcome.verified
        result.mismatched_ranges = outcome.mismatched
        if not options.verify:
            result.verify = "not verified"
        elif outcome.mismatched:
            result.verify = "mismatch"
            first = outcome.mismatched[0]
            raise VerifyError(f"verify failed after writing: {len(outcome.mismatched)} range(s) "
                              f"differ, first at flash offset 0x{first['offset']:08X} "
                              f"(CRC32 {first['actual']}, expected {first['expected']})"
                              + (f"; {programmer.kept_note}" if programmer.kept_note else ""))
        else:
            result.verify = "verified"
        done = programmer.config
    result.ok = True
    return PlannedFlash(outcome.plan, done)


def verify(target: TargetSpec, image_spec: ImageSpecs, open_target: OpenTarget,
           progress: ProgressSink, result: Result) -> None:
    """Compare the flash with an image, or several (CRC32 on target); VerifyError when they
    differ."""
    cfg = preset_config(target)
    image = _image(image_spec, cfg)
    result.image = image.to_json()
    _precheck(image, cfg)
    with _programmer(target, cfg, open_target, progress, result) as programmer:
        good, bad = programmer.verify(image)
    result.verified_ranges, result.mismatched_ranges = good, bad
    if bad:
        result.verify = "mismatch"
        first = bad[0]
        raise VerifyError(f"flash differs from {image.path}: {len(bad)} sector(s), first at "
                          f"flash offset 0x{first['offset']:08X} (CRC32 {first['actual']}, "
                          f"image {first['expected']})")
    result.verify = "verified"
    result.ok = True


def read(target: TargetSpec, address: str | int, length: str | int,
         output: str | os.PathLike | None, open_target: OpenTarget, progress: ProgressSink,
         result: Result) -> bytes:
    """Read LEN bytes at ADDR into the file `output` (replaced; None: into no file, the caller
    takes the returned bytes, e.g. to stdout); returns the bytes."""
    path = None if output is None else check_output_file(output)
    cfg = preset_config(target)
    r = Range(_address(address, cfg), parse_int(length, "length"))
    rules.check_stated_range(cfg, r, "read")  # before starting anything
    result.range = r.to_json()
    with _programmer(target, cfg, open_target, progress, result) as programmer:
        data = programmer.read(r.offset, r.length)
    if path is not None:
        try:
            path.write_bytes(data)
        except OSError as exc:
            raise UsageError(f"--output {output}: cannot write it: "
                             f"{exc.strerror or exc}") from exc
    result.bytes_read = len(data)
    result.output_file = str(path) if path is not None else None
    result.ok = True
    return data


def erase(target: TargetSpec, address: str | int | None, length: str | int | None,
          open_target: OpenTarget, progress: ProgressSink, result: Result, *,
          dry_run: bool = False) -> None:
    """Erase ADDR..ADDR+LEN (whole sectors) or, with address None, the whole chip; then check
    on the target that the range reads 0xFF."""
    if (address is None) != (length is None):
        raise UsageError("erase takes ADDR and LEN, or neither for the whole chip")
    cfg = preset_config(target)
    whole = address is None
    r = None if whole else Range(_address(address, cfg), parse_int(length, "length"))
    if r is not None:
        rules.check_stated_range(cfg, r, "erase", erase=True)  # before starting anything
        result.range = r.to_json()
    else:
        rules.check_stated_chip_erase(cfg)  # before starting anything
    if dry_run:
        assumed = planning_config(cfg, "erase")
        result.dry_run = True
        result.plan = {"flash": rules.chip_text(assumed), "detected": False}
        if whole:
            rules.check_chip_erase(assumed, whole_chip_verified=True)
            result.chip_erased, result.bytes_erased = True, assumed.size
            result.range = Range(0, assumed.size).to_json()
        else:
            runs = rules.erase_runs(assumed, r)
            result.plan["erase"] = [{"offset": run.offset, "length": run.length,
                                     "block": run.block} for run in runs]
            result.sectors_erased = sum(run.units for run in runs)
            result.bytes_erased = r.length
        result.ok = True
        return
    with _programmer(target, cfg, open_target, progress, result) as programmer:
        cfg = programmer.config
        if whole:
            rules.check_chip_erase(cfg, whole_chip_verified=True)  # before erasing anything
            result.range = Range(0, cfg.size).to_json()
            programmer.erase_chip()
            r = Range(0, cfg.size)
        else:
            runs = rules.erase_runs(cfg, r)  # refused before erasing anything
            programmer.erase(runs)
        good, bad = programmer.verify_erased(r)
    result.verified_ranges, result.mismatched_ranges = good, bad
    if bad:
        result.verify = "mismatch"
        raise VerifyError(f"erase did not leave 0xFF: {len(bad)} range(s) differ, first at "
                          f"flash offset 0x{bad[0]['offset']:08X}")
    result.verify = "verified"
    result.ok = True


def info(target: TargetSpec, open_target: OpenTarget, progress: ProgressSink,
         result: Result) -> list[str]:
    """Detect the flash; returns the human lines (each value with the layer it came from)."""
    cfg = preset_config(target)
    with _programmer(target, cfg, open_target, progress, result) as programmer:
        result.info = programmer.info()
        lines = programmer.config.describe()
        if programmer.sfdp is not None:
            lines += programmer.sfdp.describe()
        else:
            lines.append("SFDP: none (part table or configuration used)")
        network = network_core(programmer.link, cfg.chip)
        if network is not None:
            result.info["network_core"] = network
            lines.append(describe_network_core(network))
    result.ok = True
    return lines
