"""`cj-batching validate`: check a flag file the way the running service would."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cj_batching.cli._common import UsageError, load_settings
from cj_batching.flag_checks import batching_flag_checks
from flags import DocumentError, document_format, load_document

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Register `validate`."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "validate",
        help="check a flag file (exit 0 valid, 1 invalid, 2 usage error)",
        description="Parse and validate a flagd-format flag file whole: syntax, structure, "
        "semantics (variants, $refs, fractional weights) and the batching flags' values. "
        "Exit status: 0 valid, 1 invalid (every problem listed), 2 usage error.",
    )
    parser.add_argument(
        "path",
        nargs="?",
        type=Path,
        help="flag file (default: CJ_ASSESSMENT_SERVICE_FLAGS_FILE, flags.yaml)",
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
        document = load_document(path, checks=batching_flag_checks(settings))
    except DocumentError as exc:
        print(f"{path}: invalid ({len(exc.problems)} problem(s))")
        for problem in exc.problems:
            print(f"  {problem}")
        return 1
    version = document.get("metadata", {}).get("version")
    suffix = f", version {version}" if version is not None else ""
    print(f"{path}: valid ({len(document['flags'])} flag(s){suffix})")
    return 0
