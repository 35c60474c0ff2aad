"""Pieces the CLI commands share: the parser, argument types, settings with command-line
overrides, the flag file a command reads, a resolver, warnings."""

from __future__ import annotations

import argparse
import os
import stat
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from cj_batching.cli._terminal import write
from cj_batching.configure import configure
from cj_batching.context import KNOWN_SOURCES, REQUEST_TYPES, BatchContext
from cj_batching.flag_checks import batching_flag_checks
from cj_batching.metrics import BatchingMetrics
from cj_batching.modes import LLMBatchingMode, parse_mode
from cj_batching.resolver import BatchingModeResolver
from cj_batching.rollout import MAX_PREVIEW_BATCHES, Progress
from cj_batching.settings import Settings, SettingsError
from flags import (
    DocumentError,
    FlagdMemoryProvider,
    Problem,
    bind_provider,
    document_format,
    load_document,
)

__all__ = [
    "CommandParser",
    "FlagFile",
    "UsageError",
    "add_flags_option",
    "batch_id_argument",
    "batches_argument",
    "document_resolver",
    "flag_file",
    "load_flag_file",
    "load_settings",
    "mode_argument",
    "numeric_batch_id_argument",
    "open_resolver",
    "problem_severity",
    "progress_bar",
    "require_regular_file",
    "warn",
    "warn_unknown_context",
]


class UsageError(Exception):
    """A command-line or configuration mistake: printed on one line, exit status 2."""


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


def load_settings(flags: Path | None = None) -> Settings:
    """Settings from the environment (built once), with `--flags` applied; UsageError
    when invalid."""
    overrides: dict[str, Any] = {} if flags is None else {"FLAGS_PROVIDER": "file"}
    if flags is not None:
        overrides["FLAGS_FILE"] = flags
    try:
        return Settings(**overrides)
    except SettingsError as exc:
        raise UsageError(str(exc)) from None


def require_regular_file(path: Path, *, missing_ok: bool = False) -> None:
    """UsageError naming `path` and what it is unless it is a regular file (or, with
    `missing_ok`, absent). Only `stat`s the path: a FIFO or a device is never opened, so
    it cannot block."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if missing_ok:
            return
        raise UsageError(f"{path}: does not exist") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        raise UsageError(f"{path}: {_kind(mode)}, not a regular file")


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "is a directory"
    if stat.S_ISFIFO(mode):
        return "is a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "is a character device"
    if stat.S_ISBLK(mode):
        return "is a block device"
    if stat.S_ISSOCK(mode):
        return "is a socket"
    return "is a special file"


def flag_file(settings: Settings, named: Path | None) -> Path | None:
    """The flag file a resolving command reads, checked: a path the user named must be a
    regular file; the settings' file may be missing (the command then shows the env
    default, as a replica starting now would) but never a FIFO or a device. None when
    the settings use no flag file."""
    if named is not None:
        require_regular_file(named)
        return named
    if settings.FLAGS_PROVIDER != "file":
        return None
    require_regular_file(settings.FLAGS_FILE, missing_ok=True)
    return settings.FLAGS_FILE


@dataclass(frozen=True, slots=True)
class FlagFile:
    """A flag file read and validated as the service would (the batching checks too)."""

    path: Path
    document: Mapping[str, Any] | None  # None: the service would reject this version
    problems: tuple[Problem, ...] = ()  # why it would be rejected
    version: str | None = None  # metadata.version (of a rejected one too, when known)
    warnings: tuple[Problem, ...] = ()  # what the service accepts but flags as doubtful

    @property
    def valid(self) -> bool:
        """Whether the service would accept this version."""
        return self.document is not None


def load_flag_file(path: Path, settings: Settings) -> FlagFile:
    """Read and validate `path` (which must be a regular file: else UsageError)."""
    require_regular_file(path)
    try:
        document = load_document(path, checks=batching_flag_checks(settings))
    except DocumentError as exc:
        # `version` arrives with the flag-files work (flags.DocumentError.version).
        rejected = getattr(exc, "version", None)
        return FlagFile(path, None, tuple(exc.problems), rejected)
    metadata = document.get("metadata") or {}
    version = metadata.get("version") if isinstance(metadata, Mapping) else None
    return FlagFile(path, document, (), None if version is None else str(version))


def problem_severity(problem: Problem) -> str:
    """`error` or `warning` (documents' problems carry a severity once the flag-files
    work lands; until then every problem is an error)."""
    return str(getattr(problem, "severity", "error"))


@contextmanager
def open_resolver(
    settings: Settings, metrics: BatchingMetrics | None = None
) -> Iterator[BatchingModeResolver]:
    """A resolver on a private domain whose provider is shut down afterwards."""
    domain = f"cj-batching-cli-{uuid.uuid4().hex}"
    resolver = configure(settings, metrics=metrics, domain=domain)
    try:
        yield resolver
    finally:
        resolver.close()
        resolver.client.provider.shutdown()


@contextmanager
def document_resolver(
    document: Mapping[str, Any], settings: Settings
) -> Iterator[BatchingModeResolver]:
    """A resolver over `document` (already validated) on a private domain."""
    provider = FlagdMemoryProvider(document, checks=batching_flag_checks(settings))
    client = bind_provider(provider, f"cj-batching-cli-{uuid.uuid4().hex}")
    resolver = BatchingModeResolver(settings, client)
    try:
        yield resolver
    finally:
        resolver.close()
        provider.shutdown()


def batches_argument(value: str) -> int:
    """argparse type for how many batch ids a preview resolves."""
    try:
        batches = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if not 0 < batches <= MAX_PREVIEW_BATCHES:
        raise argparse.ArgumentTypeError(f"{batches} must be in 1..{MAX_PREVIEW_BATCHES}")
    return batches


@contextmanager
def progress_bar(total: int, what: str) -> Iterator[Progress]:
    """A progress bar on stderr, only when stderr is a terminal and only once a run
    has taken a moment (short runs print nothing)."""
    from tqdm import tqdm  # only the previews need it

    with tqdm(
        total=total,
        desc=what,
        unit=" batches",
        unit_scale=True,
        file=sys.stderr,
        disable=not sys.stderr.isatty(),
        delay=0.5,
        leave=False,
    ) as bar:

        def advance(done: int) -> None:
            bar.update(done)

        yield advance


def warn(command: str, message: str) -> None:
    """One escaped `cj-batching COMMAND: warning: ...` line on stderr."""
    write(f"cj-batching {command}: warning: {message}", stream=sys.stderr)


def warn_unknown_context(command: str, *, sources: list[str], request_type: str) -> None:
    """Warn about sources and request types the platform does not send (a typo such as
    `bso` is accepted by the library, evaluated as given and counted as `other`)."""
    known = ", ".join(KNOWN_SOURCES)
    for source in sources:
        if source not in KNOWN_SOURCES:
            warn(
                command,
                f"cj_source {source!r} is not a known source ({known}); it is evaluated "
                "as given and counted as 'other' in the metrics",
            )
    if request_type not in REQUEST_TYPES:
        warn(
            command,
            f"request type {request_type!r} is not one CJ sends ({', '.join(REQUEST_TYPES)}); "
            "it is evaluated as given",
        )
