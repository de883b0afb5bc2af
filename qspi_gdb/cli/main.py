"""`qspi-gdb` command line: the top-level parser, logging set-up, error rendering, exit codes.

The subcommands' parsers come from `qspi_gdb.cli.commands` (each sets `func(args) -> int`, the
exit code). `qspi-gdb sim ...` runs the virtual board's own program (`python -m qspi_gdb.sim`)
as a child: the product never imports the virtual board.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import sys

from qspi_gdb import __version__, log
from qspi_gdb.cli import commands, demo
from qspi_gdb.cli.output import StdoutLost, write_stdout
from qspi_gdb.cli.report import report_in, write_report
from qspi_gdb.cli.run import internal_error_text
from qspi_gdb.errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    QspiGdbError,
    closest,
    did_you_mean,
)
from qspi_gdb.flash.result import Result
from qspi_gdb.transport.procgroup import spawn

# Global options that take a value (to find the command name behind them).
_VALUE_OPTIONS = ("--log-format",)
_INVALID_CHOICE = re.compile(r"invalid choice: '(?P<value>[^']*)' \(choose from (?P<choices>.*)\)")


class ArgumentError(Exception):
    """A command line argparse refused; rendered by main() as one line with exit code 2."""

    def __init__(self, prog: str, message: str):
        super().__init__(message)
        self.prog = prog
        self.message = message


class _Parser(argparse.ArgumentParser):
    """argparse, but a refused command line is one error line (no usage block) and exit 2,
    like every other usage error; subcommand parsers inherit this class."""

    def error(self, message: str):
        raise ArgumentError(self.prog, _with_suggestion(message))


def _with_suggestion(message: str) -> str:
    """argparse's 'invalid choice' (a command, --log-format ...) with the nearest choice."""
    match = _INVALID_CHOICE.search(message)
    if not match:
        return message
    choices = re.findall(r"'([^']*)'", match["choices"])
    hint = did_you_mean(match["value"], choices)
    if message.startswith("argument COMMAND:"):
        return f"unknown command '{match['value']}'{hint}; commands: {', '.join(choices)}"
    return message.replace(f"invalid choice: '{match['value']}'",
                           f"invalid choice: '{match['value']}'{hint}", 1) if hint else message


def option_names(parser: argparse.ArgumentParser) -> list[str]:
    """The long and short option names a parser documents (hidden aliases left out)."""
    return [name for action in parser._actions if action.help != argparse.SUPPRESS
            for name in action.option_strings]


def _unknown_option_hints(message: str, parser: argparse.ArgumentParser | None) -> str:
    """'unrecognized arguments: --erse' -> '... --erse (did you mean --erase?)'."""
    prefix = "unrecognized arguments: "
    if parser is None or not message.startswith(prefix):
        return message
    # compared without their dashes: every '--x' would look alike otherwise
    names = {name.lstrip("-") for name in option_names(parser) if name.startswith("--")}
    words = []
    for word in message[len(prefix):].split(" "):
        near = closest(word.split("=", 1)[0].lstrip("-"), names) if word.startswith("--") \
            else None
        words.append(f"{word} (did you mean --{near}?)" if near else word)
    return prefix + " ".join(words)


def _dash_file_hint(message: str, argv: list[str], parser: argparse.ArgumentParser) -> str:
    """A file name that starts with '-' is read as an option (as by every Unix tool): say so,
    and how to pass it, instead of only "IMAGE is required"."""
    known = set(option_names(parser)) | {"-h", "--help"}
    for word in argv:
        name = word.split("=", 1)[0]
        if word.startswith("-") and word != "-" and name not in known and "." in word and \
                not word.startswith("--"):
            return (f"{message}; {word!r} starts with '-' and was read as an option: write "
                    f"./{word}, or put -- before the file names")
    return message


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="qspi-gdb",
        description="Program the external QSPI NOR flash of nRF52840 / nRF5340 boards\n"
        "through OpenOCD + GDB (or a virtual board).",
        epilog="exit codes: 0 success, 2 usage or bad input (nothing written),\n"
        "  3 connection or target failure, 4 verify mismatch, 130 interrupted.\n"
        "'qspi-gdb COMMAND --help' shows a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"qspi-gdb {__version__}")
    commands.add_global_options(parser, after_command=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.register(sub)
    demo_parser = sub.add_parser(
        "demo", help="flash the seed case onto a virtual board and show it verified",
        description="Create a 512,583-byte image, flash it at 0x11E98000 of the 32 MiB virtual "
        "nRF5340 board with the nrfutil JSON from examples/, verify it and read it back.")
    demo_parser.add_argument("--workdir", default="build/demo", help="where the image and the "
                             "virtual board's flash file go (default: build/demo)")
    demo_parser.add_argument("--keep-flash", dest="fresh", action="store_false",
                             help="keep the flash file of a previous run (shows skip-unchanged)")
    commands.add_global_options(demo_parser, after_command=True)
    demo_parser.set_defaults(func=_run_demo)
    parser.commands = dict(sub.choices)
    return parser


def _run_demo(args: argparse.Namespace) -> int:
    """The demo's commands get the output options it was given (-q, --log-format ...)."""
    passed = [*(["-v"] * args.verbose), *(["-q"] if args.quiet else []),
              "--log-format", args.log_format, *(["--no-progress"] if args.no_progress else [])]
    return demo.run_demo(lambda argv: main([*passed, *argv]), args.workdir, fresh=args.fresh)


def _command_index(argv: list[str], commands) -> int | None:
    """Where the command name is: the first word that is not a global option (or its value)."""
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
        elif arg in _VALUE_OPTIONS:
            skip = True
        elif not arg.startswith("-"):
            return i if arg in commands else None
    return None


def _sim_arguments(argv: list[str]) -> list[str] | None:
    """The virtual board's arguments when the command is `sim` (after top-level options)."""
    i = _command_index(argv, ("sim",))
    return argv[i + 1:] if i is not None else None


def run_sim(arguments: list[str]) -> int:
    """`qspi-gdb sim ...`: the virtual board's program as a child in our process group, so a
    terminal's Ctrl-C reaches it directly, and dying with us; we wait for it and pass its exit
    code on."""
    with spawn([sys.executable, "-m", "qspi_gdb.sim", *arguments], new_session=False) as child:
        forward = {sig: signal.signal(sig, lambda signum, _frame: child.send_signal(signum))
                   for sig in (signal.SIGTERM, signal.SIGHUP)}
        try:
            while True:
                try:
                    return child.wait()
                except KeyboardInterrupt:
                    continue  # the child got the same SIGINT and shuts down by itself
        finally:
            for sig, previous in forward.items():
                signal.signal(sig, previous)


def _standard_fds_open() -> None:
    """A closed stdin/stdout/stderr at start becomes /dev/null: otherwise the next file we
    open (a lock, a log) would get its number and the children would write into it."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)  # takes the lowest free number: this one


def main(argv: list[str] | None = None) -> int:
    _standard_fds_open()
    argv = sys.argv[1:] if argv is None else argv
    sim_arguments = _sim_arguments(argv)
    if sim_arguments is not None:
        return run_sim(sim_arguments)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except ArgumentError as exc:
        index = _command_index(argv, parser.commands)
        command = argv[index] if index is not None else ""
        # Unknown options are found by the top-level parser; the help to read is the command's.
        message = _unknown_option_hints(exc.message, parser.commands.get(command, parser))
        message = _dash_file_hint(message, argv, parser.commands.get(command, parser))
        if "--json" in argv:  # the result object is promised on every failure
            try:
                write_stdout(json.dumps(_usage_failure(command, message).to_json()) + "\n")
            except StdoutLost:
                pass  # the error line below still says it
        _report_refusal(argv, command, message)
        prog = f"{exc.prog} {command}" if exc.prog == parser.prog and command else exc.prog
        print(f"{exc.prog}: {_red('error:')} {message} (see '{prog} --help')",
              file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None  # as argparse itself exits
    _settle_output_options(args)
    log.configure(args.verbose, fmt=args.log_format, quiet=args.quiet)
    args.command_line = ["qspi-gdb", *argv]  # names the test case of --report
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:
        print(f"qspi-gdb: {_red(str(exc) or 'interrupted')}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except QspiGdbError as exc:
        print(f"qspi-gdb: {_red('error:')} {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:
        if args.verbose:
            raise
        print(f"qspi-gdb: {_red('error:')} {internal_error_text(exc)}", file=sys.stderr)
        return EXIT_INTERNAL


def _settle_output_options(args: argparse.Namespace) -> None:
    """Global options given before and after the command, as one set: -v counts add up; the
    log format defaults to json with --json, else console on a terminal, plain otherwise."""
    args.verbose = getattr(args, "verbose", 0) + getattr(args, "verbose_after", 0)
    if args.log_format is None:
        args.log_format = "json" if args.json else log.default_format()


def _red(text: str) -> str:
    """Bold red on a terminal (as the log's console renderer colours), plain otherwise or
    when NO_COLOR is set."""
    if log.colour_allowed(sys.stderr):
        return f"\033[1;31m{text}\033[0m"
    return text


def _usage_failure(command: str, message: str) -> Result:
    result = Result(command=command)
    result.error = {"message": message, "exit_code": EXIT_USAGE}
    return result


def _report_refusal(argv: list[str], command: str, message: str) -> None:
    """--report FILE on a refused command line: the refusal as a failed test case."""
    path = report_in(argv)
    if path:
        try:
            write_report(path, _usage_failure(command, message), shlex.join(["qspi-gdb", *argv]))
        except (QspiGdbError, OSError):
            pass  # the refusal itself is what the user must see
