"""`cj-batching validate`: check a flag file the way the running service would."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cj_batching.cli._common import UsageError, load_settings
from cj_batching.flag_checks import batching_flag_checks
from flags import DocumentError, Problem, document_format, load_document

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Register `validate`."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "validate",
        help="check a flag file (exit 0 valid, 1 invalid, 2 usage error)",
        description="Parse and validate a flagd-format flag file whole: syntax, structure, "
        "semantics (variants, $refs, fractional weights), complexity bounds and the batching "
        "flags' values. Errors make the service refuse the file; warnings (e.g. what the "
        "official flagd schema rejects but flagd evaluates as written) do not. Every "
        "problem is listed. Exit status: 0 valid (warnings allowed), 1 invalid, 2 usage error.",
    )
    parser.add_argument(
        "path",
        nargs="?",
        type=Path,
        help="flag file (default: CJ_ASSESSMENT_SERVICE_FLAGS_FILE, flags.yaml)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="treat warnings as errors (exit 1 when there is any), e.g. in CI",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Validate and report."""
    settings = load_settings()
    path: Path = args.path or settings.FLAGS_FILE
    if not path.is_file():
        reason = "is not a file" if path.exists() else "does not exist"
        raise UsageError(f"{path} {reason}")
    try:
        document_format(path)
    except DocumentError as exc:
        raise UsageError(str(exc)) from None
    try:
        checked = load_document(path, checks=batching_flag_checks(settings))
    except DocumentError as exc:
        print(f"{path}: invalid ({_counts(exc.errors, exc.warnings)})")
        _list(exc.problems)
        return 1
    suffix = f", version {checked.version}" if checked.version is not None else ""
    summary = f"{len(checked.document['flags'])} flag(s){suffix}"
    if not checked.warnings:
        print(f"{path}: valid ({summary})")
        return 0
    strict: bool = args.strict
    verdict = "invalid under --strict" if strict else "valid"
    print(f"{path}: {verdict} ({summary}; {_counts((), checked.warnings)})")
    _list(checked.warnings)
    return 1 if strict else 0


def _counts(errors: Sequence[Problem], warnings: Sequence[Problem]) -> str:
    parts = [f"{len(errors)} error(s)"] if errors else []
    if warnings:
        parts.append(f"{len(warnings)} warning(s)")
    return ", ".join(parts)


def _list(problems: Sequence[Problem]) -> None:
    for problem in problems:
        print(f"  {problem}")
