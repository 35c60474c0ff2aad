"""Reading exported callback topics: one JSON envelope per line, plain, gzip or stdin."""

from __future__ import annotations

import gzip
import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Final, cast

from cj_batching.results import MAX_EVENT_BYTES

__all__ = ["STDIN", "InputError", "Line", "check_readable", "read_lines"]

STDIN: Final = "-"
_CHUNK: Final = 1 << 20
_GZIP_MAGIC: Final = b"\x1f\x8b"
Line = tuple[int, bytes | None]
"""A line number (1-based) and the line without its newline; None for a line longer
than `MAX_EVENT_BYTES`, which is skipped without being held in memory."""


class InputError(OSError):
    """A file that cannot be read (missing, a directory, not gzip): a usage error."""


def check_readable(path: str | Path) -> None:
    """Raise `InputError` now for a file that cannot be opened, before a long read starts."""
    if str(path) == STDIN:
        return
    target = Path(path)
    if not target.exists():
        raise InputError(f"{path}: no such file")
    if target.is_dir():
        raise InputError(f"{path}: is a directory, not a JSONL file")
    try:
        with target.open("rb"):
            pass
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from None


def read_lines(path: str | Path) -> Iterator[Line]:
    """Every line of `path` (`-` is stdin; gzip content, e.g. a `.gz` file, is decompressed).

    Streams in bounded memory: a line longer than an event may be is reported as None
    and skipped to its end. Blank lines are skipped (kcat's `-e` ends with one).
    """
    check_readable(path)
    with _open(path) as stream:
        try:
            yield from _lines(stream)
        except (OSError, EOFError) as exc:  # a truncated or corrupt .gz
            raise InputError(f"{path}: {exc}") from None


@contextmanager
def _open(path: str | Path) -> Iterator[BinaryIO]:
    """The file (or stdin) as bytes, decompressed when it starts with gzip's magic number
    (so `kcat ... | gzip` output works by content, whatever its name)."""
    if str(path) == STDIN:
        stream: BinaryIO = sys.stdin.buffer
        owned = None
    else:
        stream = owned = Path(path).open("rb")  # noqa: SIM115  (closed in finally)
    try:
        if isinstance(stream, io.BufferedReader) and stream.peek(2)[:2] == _GZIP_MAGIC:
            with gzip.GzipFile(fileobj=stream) as unzipped:
                yield cast(BinaryIO, unzipped)
        else:
            yield stream
    finally:
        if owned is not None:
            owned.close()


def _lines(stream: BinaryIO) -> Iterator[Line]:
    number = 0
    while True:
        line = stream.readline(MAX_EVENT_BYTES + 2)
        if not line:
            return
        number += 1
        if not line.endswith(b"\n") and len(line) > MAX_EVENT_BYTES:
            while line and not line.endswith(b"\n"):  # skip the rest, chunk by chunk
                line = stream.readline(_CHUNK)
            yield number, None
            continue
        line = line.rstrip(b"\r\n")
        if line.strip():
            yield number, line
