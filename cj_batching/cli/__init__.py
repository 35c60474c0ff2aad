"""The `cj-batching` command line: explain, validate, and the Ops tools."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from cj_batching.cli import explain, report, rollout, serve_metrics, validate, watch
from cj_batching.cli._common import UsageError

__all__ = ["main"]

_COMMANDS = (explain, validate, rollout, watch, serve_metrics, report)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (one sub-command per module)."""
    parser = argparse.ArgumentParser(
        prog="cj-batching",
        description="Inspect and operate the CJ LLM batching mode control. Settings come "
        "from CJ_ASSESSMENT_SERVICE_* environment variables (and .env).",
    )
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
    parser = build_parser()
    args = parser.parse_args(argv)
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        code: int = args.run(args)
    except UsageError as exc:
        print(f"cj-batching {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code
