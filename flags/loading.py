"""Read, parse and validate a flagd-format flag document from bytes or a file.

Parsing is strict on purpose: a flag file is production configuration, so the size is
capped, YAML goes through a safe loader without aliases (no alias bombs) or timestamps
(a `version: 2026-11-25` stays a string, as in JSON), and duplicate keys are errors
rather than silently taking the last one. Reading never blocks: only a regular file is
read, so a FIFO or a device at the flags path is an error, not a hung thread.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from flags.validation import Problem, validate_document
from flags.validation.limits import MAX_DOCUMENT_BYTES

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "CheckedDocument",
    "DocumentCheck",
    "DocumentError",
    "check_document",
    "document_format",
    "irregular_file_kind",
    "load_document",
    "parse_document",
    "read_document_bytes",
]

DocumentFormat = Literal["json", "yaml"]
DocumentCheck = Callable[[Mapping[str, Any]], list[Problem]]
"""An extra, caller-specific check run after `validate_document` (e.g. domain values)."""

_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


@dataclass(frozen=True, slots=True)
class CheckedDocument:
    """A document that passed validation: the data, its warnings and its version."""

    document: dict[str, Any]
    warnings: tuple[Problem, ...] = ()
    version: str | None = None


class DocumentError(ValueError):
    """A flag document that cannot be used: `problems` lists every reason (errors first,
    then warnings); raised only when at least one of them is an error."""

    def __init__(
        self, source: str, problems: Sequence[Problem], *, version: str | None = None
    ) -> None:
        ordered = sorted(problems, key=lambda problem: not problem.is_error)  # stable
        if not any(problem.is_error for problem in ordered):
            raise ValueError("DocumentError needs at least one error among its problems")
        self.source = source
        self.problems = ordered
        self.errors = tuple(problem for problem in ordered if problem.is_error)
        self.warnings = tuple(problem for problem in ordered if not problem.is_error)
        self.version = version
        super().__init__(_describe(source, self.errors, self.warnings))


def _describe(source: str, errors: Sequence[Problem], warnings: Sequence[Problem]) -> str:
    if len(errors) == 1 and not warnings:
        return f"{source}: {_line(errors[0])}"
    counts = _plural(len(errors), "error") + (
        f", {_plural(len(warnings), 'warning')}" if warnings else ""
    )
    lines = "".join(f"\n  {_line(problem)}" for problem in (*errors, *warnings))
    return f"{source}: {counts}:{lines}"


def _line(problem: Problem) -> str:
    """A problem as one line; one about the whole file needs no '/' in front."""
    return problem.message if problem.path == "" and problem.is_error else str(problem)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def document_format(path: Path) -> DocumentFormat:
    """JSON or YAML by file extension (`.json`, `.yaml`, `.yml`)."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    raise DocumentError(
        str(path), [Problem("", f"unsupported extension {suffix!r}; use .json, .yaml or .yml")]
    )


def read_document_bytes(path: Path) -> bytes:
    """The bytes of the regular file at `path`, never blocking, at most `MAX_DOCUMENT_BYTES`.

    A path that is missing or is not a regular file (a FIFO, a device, a directory, a socket,
    or a symlink to one) raises `DocumentError` saying what it is. The kind is checked before
    the file is opened (opening some devices has effects) and again on the opened file, which
    is opened with O_NONBLOCK: a FIFO swapped in between still cannot block the read.
    """
    source = str(path)
    try:
        kind = _not_regular(os.stat(path).st_mode)
        if kind is None:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
            try:
                kind = _not_regular(os.fstat(fd).st_mode)
                data = b"" if kind else _read_at_most(fd, MAX_DOCUMENT_BYTES + 1)
            finally:
                os.close(fd)
    except FileNotFoundError:
        raise DocumentError(source, [Problem("", _missing(path))]) from None
    except OSError as exc:
        raise DocumentError(source, [Problem("", f"cannot read: {exc.strerror}")]) from None
    if kind is not None:
        what = "is a symlink to" if path.is_symlink() else "is"
        message = f"{what} {kind}, not a regular file; point it at a flag file"
        raise DocumentError(source, [Problem("", message)])
    if len(data) > MAX_DOCUMENT_BYTES:
        message = f"file is over the {MAX_DOCUMENT_BYTES}-byte limit"
        raise DocumentError(source, [Problem("", message)])
    return data


def irregular_file_kind(path: Path) -> str | None:
    """What `path` is when it exists but is not a regular file (e.g. "a FIFO (named
    pipe)"), following symlinks; None for a regular file or a missing path. Reading such
    a path may block (a FIFO) or never end (a device)."""
    try:
        return _not_regular(os.stat(path).st_mode)
    except OSError:
        return None


def _not_regular(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in _FILE_KINDS if test(mode)), "not a regular file")


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(fd, limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _missing(path: Path) -> str:
    if path.is_symlink():
        return f"file not found (a symlink to {os.readlink(path)!r}, which does not exist)"
    return "file not found"


def parse_document(
    data: bytes | str,
    fmt: DocumentFormat,
    *,
    source: str = "<document>",
    checks: Sequence[DocumentCheck] = (),
) -> CheckedDocument:
    """Parse and validate a whole document; raise `DocumentError` listing every problem."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise DocumentError(source, [Problem("", f"over the {MAX_DOCUMENT_BYTES}-byte limit")])
    try:
        document = _parse_json(data) if fmt == "json" else _parse_yaml(data)
    except UnicodeDecodeError as exc:
        message = f"not valid UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
        raise DocumentError(source, [Problem("", message)]) from None
    except (ValueError, RecursionError) as exc:
        raise DocumentError(source, [Problem("", _syntax_message(fmt, exc))]) from None
    return check_document(document, source=source, checks=checks)


def check_document(
    document: object, *, source: str = "<document>", checks: Sequence[DocumentCheck] = ()
) -> CheckedDocument:
    """Validate a parsed document whole; raise `DocumentError` when any problem is an error.

    `checks` run only on a document without errors (they may assume its structure).
    """
    problems = validate_document(document)
    if not any(problem.is_error for problem in problems) and isinstance(document, Mapping):
        for check in checks:
            problems.extend(check(document))
    version = _version(document)
    if not isinstance(document, Mapping):
        raise DocumentError(source, problems or [Problem("", "not a mapping")], version=version)
    if any(problem.is_error for problem in problems):
        raise DocumentError(source, problems, version=version)
    warnings = tuple(problem for problem in problems if not problem.is_error)
    return CheckedDocument(dict(document), warnings, version)


def _version(document: object) -> str | None:
    """The document's `metadata.version` as text, when it has a scalar one."""
    metadata = document.get("metadata") if isinstance(document, Mapping) else None
    value = metadata.get("version") if isinstance(metadata, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return str(value)


def load_document(path: Path, *, checks: Sequence[DocumentCheck] = ()) -> CheckedDocument:
    """Read, parse and validate the flag file at `path`."""
    return parse_document(
        read_document_bytes(path), document_format(path), source=str(path), checks=checks
    )


def _syntax_message(fmt: DocumentFormat, exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply to parse"
    text = " ".join(str(exc).split())
    separator = " " if text.startswith("at line ") else ": "  # YAML names the spot
    return f"{fmt.upper()} syntax error{separator}{text}"


def _parse_yaml(data: bytes | str) -> object:
    # PyYAML is imported on first use: ~40 ms of start-up a JSON file or an in-memory
    # document never needs (docs/performance.md, "Import time").
    from flags._yaml import parse_yaml

    return parse_yaml(data)


def _parse_json(data: bytes | str) -> object:
    # NaN and Infinity parse to floats here, so that the validator refuses them (at their
    # path, with one message) the same way as 1e999 and YAML's .inf and .nan.
    return json.loads(data, object_pairs_hook=_unique_keys, parse_constant=float)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result
