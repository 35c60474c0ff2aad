"""The CLI's parser and argument types: each refuses a bad value with a one-line usage
error naming the option, the value and what is allowed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from cj_batching.cli._terminal import write
from cj_batching.context import BatchContext
from cj_batching.modes import LLMBatchingMode, parse_mode
from cj_batching.rollout import MAX_PREVIEW_BATCHES
from flags import DocumentError, document_format

__all__ = [
    "CommandParser",
    "add_batch_range_options",
    "add_flags_option",
    "batch_id_argument",
    "batches_argument",
    "flags_path",
    "mode_argument",
    "numeric_batch_id_argument",
]


class CommandParser(argparse.ArgumentParser):
    """argparse with one-line, escaped usage errors (exit 2) instead of a usage block."""

    def error(self, message: str) -> NoReturn:
        write(f"{self.prog}: error: {message} (see {self.prog} --help)", stream=sys.stderr)
        self.exit(2)


def add_flags_option(parser: argparse.ArgumentParser) -> None:
    """`--flags PATH`: evaluate this flag file (implies CJ_..._FLAGS_PROVIDER=file)."""
    parser.add_argument(
        "--flags",
        type=flags_path,
        metavar="PATH",
        help="flag file to use (default: CJ_ASSESSMENT_SERVICE_FLAGS_FILE, flags.yaml); "
        "it must exist",
    )


def add_batch_range_options(parser: argparse.ArgumentParser) -> None:
    """`--provider`, `--batches N` and `--first-batch-id K`: which consecutive batch ids
    a preview resolves, for which provider (shared by `rollout` and `diff`)."""
    parser.add_argument(
        "--provider", metavar="P", help="LLM provider (default: DEFAULT_LLM_PROVIDER)"
    )
    parser.add_argument(
        "--batches",
        type=batches_argument,
        default=10_000,
        metavar="N",
        help="how many ids (10000)",
    )
    parser.add_argument(
        "--first-batch-id",
        type=numeric_batch_id_argument,
        default=1,
        metavar="K",
        help="first id (1); 01 and 1 are the same batch",
    )


def flags_path(value: str) -> Path:
    """argparse type for a flag file path: not empty, a .yaml/.yml/.json name."""
    if not value.strip():
        raise argparse.ArgumentTypeError("empty path; give a flag file such as flags.yaml")
    path = Path(value)
    try:
        document_format(path)
    except DocumentError as exc:
        raise argparse.ArgumentTypeError(f"{value!r}: {exc.problems[0].message}") from None
    return path


def mode_argument(value: str) -> LLMBatchingMode:
    """argparse type for a batching mode (any case, aliases accepted)."""
    try:
        return parse_mode(value, field="mode")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def batch_id_argument(value: str) -> int | str:
    """argparse type for a CJ batch id, normalised by the one rule `BatchContext` applies
    (`01`, ` 1` and `1` are batch 1)."""
    try:
        return BatchContext(value).cj_batch_id
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def numeric_batch_id_argument(value: str) -> int:
    """argparse type for the first of a run of consecutive (integer) batch ids."""
    batch_id = batch_id_argument(value)
    if not isinstance(batch_id, int):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a numeric batch id; previews walk consecutive integer ids"
        )
    return batch_id


def batches_argument(value: str) -> int:
    """argparse type for how many batch ids a preview resolves."""
    try:
        batches = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if not 0 < batches <= MAX_PREVIEW_BATCHES:
        raise argparse.ArgumentTypeError(f"{batches} must be in 1..{MAX_PREVIEW_BATCHES}")
    return batches
