"""The `cj-batching` command line: see what runs, preview an edit, check it, follow it."""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from cj_batching.cli import (
    completion,
    diff,
    explain,
    report,
    rollout,
    serve_metrics,
    show,
    validate,
    watch,
)
from cj_batching.cli._arguments import CommandParser
from cj_batching.cli._common import UsageError
from cj_batching.cli._terminal import (
    EscapingFormatter,
    RepeatFilter,
    StderrHandler,
    write,
)

__all__ = ["build_parser", "main"]

_COMMANDS = (show, explain, validate, diff, rollout, watch, report, serve_metrics, completion)
_log = logging.getLogger("cj_batching.cli")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (one sub-command per module)."""
    parser = CommandParser(
        prog="cj-batching",
        description="See, preview, check and follow the CJ LLM batching mode flags. "
        "Settings come from CJ_ASSESSMENT_SERVICE_* environment variables (and .env). "
        "Exit status: 0 ok, 1 a negative answer (e.g. invalid flags), 2 usage error.",
    )
    parser.add_argument("--version", action="version", version=f"cj-batching {_version()}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log more (-v: info, -vv: debug) to stderr",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in _COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; exit status 0 ok, 1 a negative answer (e.g. invalid flags), 2 usage."""
    _tolerant_streams()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version or a usage error, already printed
        return exc.code if isinstance(exc.code, int) else 2
    _configure_logging(args.verbose)
    try:
        code: int = args.run(args)
    except UsageError as exc:  # our own text (values in it are repr'd): keep its lines
        write(*f"cj-batching {args.command}: error: {exc}".splitlines(), stream=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `cj-batching show | head`: the reader left, not our error
        _silence_stdout()
        return 1
    except Exception as exc:  # a bug: one line; -vv logs the traceback
        _log.debug("unexpected error", exc_info=True)
        message = f"{type(exc).__name__}: {exc}"
        write(f"cj-batching {args.command}: unexpected error: {message}", stream=sys.stderr)
        return 1
    return code


def _version() -> str:
    try:
        return version("cj-batching")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _tolerant_streams() -> None:
    """Never crash on text the terminal's encoding cannot show: escape it instead."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")


def _configure_logging(verbose: int) -> None:
    """One escaping, de-duplicating stderr handler on the root logger (replaced, not
    added, when `main` runs again in the same process)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(handler)
    handler = StderrHandler()
    handler.setFormatter(EscapingFormatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RepeatFilter())
    root.addHandler(handler)
    root.setLevel((logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)])


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)
