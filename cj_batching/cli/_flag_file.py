"""The flag file a command reads: checked by `stat` before anything opens it (a FIFO or
a device must not block), then read and validated as the service would."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cj_batching.cli._common import UsageError
from cj_batching.flag_checks import batching_flag_checks
from cj_batching.settings import Settings
from flags import CheckedDocument, DocumentError, Problem, irregular_file_kind, load_document

__all__ = ["FlagFile", "flag_file", "load_flag_file", "require_regular_file"]


def require_regular_file(path: Path, *, missing_ok: bool = False) -> None:
    """UsageError naming `path` and what it is unless it is a regular file (or, with
    `missing_ok`, absent). Only `stat`s the path: a FIFO or a device is never opened, so
    it cannot block."""
    try:
        os.stat(path)
    except FileNotFoundError:
        if missing_ok:
            return
        target = _link_target(path)
        if target is not None:
            raise UsageError(f"{path}: is a symlink to {target!r}, which does not exist") from None
        raise UsageError(f"{path}: does not exist") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror})") from None
    kind = irregular_file_kind(path)  # the service's own words for what it refuses
    if kind is not None:
        target = _link_target(path)
        linked = f" (a symlink to {target!r})" if target is not None else ""
        raise UsageError(f"{path}: is {kind}, not a regular file{linked}")


def _link_target(path: Path) -> str | None:
    """Where the symlink `path` points (as written in it), or None for no symlink."""
    try:
        return os.readlink(path)
    except OSError:  # not a symlink (EINVAL), or gone since
        return None


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
    checked: CheckedDocument | None  # None: the service would reject this version
    problems: tuple[Problem, ...] = ()  # why it would be rejected
    rejected_version: str | None = None  # metadata.version of a rejected one, when known

    @property
    def valid(self) -> bool:
        """Whether the service would accept this version."""
        return self.checked is not None

    @property
    def document(self) -> Mapping[str, Any] | None:
        """The document the service would serve (None when it would reject it)."""
        return None if self.checked is None else self.checked.document

    @property
    def version(self) -> str | None:
        """metadata.version as the service reads it (of a rejected file too, when known)."""
        return self.rejected_version if self.checked is None else self.checked.version

    @property
    def warnings(self) -> tuple[Problem, ...]:
        """What the service accepts but flags as doubtful."""
        return () if self.checked is None else self.checked.warnings


def load_flag_file(path: Path, settings: Settings) -> FlagFile:
    """Read and validate `path` (which must be a regular file: else UsageError)."""
    require_regular_file(path)
    try:
        checked = load_document(path, checks=batching_flag_checks(settings))
    except DocumentError as exc:
        return FlagFile(path, None, tuple(exc.problems), exc.version)
    return FlagFile(path, checked)
