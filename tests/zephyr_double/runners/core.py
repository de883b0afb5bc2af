"""A test double of the part of Zephyr's `runners.core` that qspi_gdb.integrations.zephyr_runner
uses, written from its documented contract (Zephyr is not on PyPI): RunnerCaps, RunnerConfig,
FileType, and ZephyrBinaryRunner whose add_parser() adds the common flags its capabilities
allow before the runner's own do_add_parser(), create() -> do_create(), run() -> do_run()."""

from __future__ import annotations

import abc
import argparse
import enum
import logging
from dataclasses import dataclass, field
from typing import NamedTuple


class FileType(enum.Enum):
    OTHER = 0
    HEX = 1
    BIN = 2
    ELF = 3


@dataclass
class RunnerCaps:
    commands: set = field(default_factory=lambda: {"flash", "debug", "debugserver", "attach"})
    dev_id: bool = False
    flash_addr: bool = False
    erase: bool = False
    reset: bool = False
    extload: bool = False
    tool_opt: bool = False
    file: bool = False
    hide_load_files: bool = False
    rtt: bool = False
    dry_run: bool = False


class RunnerConfig(NamedTuple):
    build_dir: str
    board_dir: str
    elf_file: str | None
    exe_file: str | None
    hex_file: str | None
    bin_file: str | None
    uf2_file: str | None
    file: str | None
    file_type: FileType = FileType.OTHER
    gdb: str | None = None
    openocd: str | None = None
    openocd_search: list = []
    rtt_address: int | None = None


class _Toggle(argparse.Action):
    """--reset / --no-reset style pairs: one dest, None unless given."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, not option_string.startswith("--no-"))


class ZephyrBinaryRunner(abc.ABC):
    def __init__(self, cfg: RunnerConfig):
        self.cfg = cfg
        self.logger = logging.getLogger(f"runners.{self.name()}")

    @classmethod
    @abc.abstractmethod
    def name(cls) -> str: ...

    @classmethod
    def capabilities(cls) -> RunnerCaps:
        return RunnerCaps()

    @classmethod
    def dev_id_help(cls) -> str:
        return "device identifier"

    @classmethod
    def add_parser(cls, parser: argparse.ArgumentParser) -> None:
        caps = cls.capabilities()
        hidden = argparse.SUPPRESS
        parser.add_argument("-i", "--dev-id", dest="dev_id",
                            help=cls.dev_id_help() if caps.dev_id else hidden)
        parser.add_argument("--dt-flash", default=False, help=hidden)
        parser.add_argument("-f", "--file", help="file to flash" if caps.file else hidden)
        parser.add_argument("-t", "--file-type", choices=["hex", "bin", "elf"],
                            help="type of the file" if caps.file else hidden)
        parser.add_argument("--elf-file", help=hidden)
        parser.add_argument("--hex-file", help=hidden)
        parser.add_argument("--bin-file", help=hidden)
        parser.add_argument("--erase", "--no-erase", nargs=0, action=_Toggle,
                            help="mass erase first" if caps.erase else hidden)
        parser.add_argument("--reset", "--no-reset", nargs=0, action=_Toggle,
                            help="reset after flashing" if caps.reset else hidden)
        parser.add_argument("--extload", help=hidden)
        parser.add_argument("-O", "--tool-opt", dest="tool_opt", default=[], action="append",
                            help=hidden)
        parser.add_argument("--rtt-address", help=hidden)
        cls.do_add_parser(parser)

    @classmethod
    @abc.abstractmethod
    def do_add_parser(cls, parser): ...

    @classmethod
    def create(cls, cfg: RunnerConfig, args: argparse.Namespace) -> ZephyrBinaryRunner:
        caps = cls.capabilities()
        if args.dev_id and not caps.dev_id:
            raise ValueError("--dev-id is not supported")
        if args.erase and not caps.erase:
            raise ValueError("--erase is not supported")
        return cls.do_create(cfg, args)

    @classmethod
    @abc.abstractmethod
    def do_create(cls, cfg, args): ...

    def run(self, command: str, **kwargs) -> None:
        if command not in self.capabilities().commands:
            raise ValueError(f"runner {self.name()} does not implement {command}")
        self.do_run(command, **kwargs)

    @abc.abstractmethod
    def do_run(self, command, **kwargs): ...


def get_runner_cls(name: str) -> type[ZephyrBinaryRunner]:
    for cls in ZephyrBinaryRunner.__subclasses__():
        if cls.name() == name:
            return cls
    raise ValueError(f"unknown runner {name!r}")
