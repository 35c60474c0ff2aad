"""Everything the CLI writes to a terminal goes through here, escaped (`escape`).

A flag file is input from whoever can edit it: a flag key, variant or version holding an
ESC sequence, a newline or a bidi override must not repaint the terminal or forge a line
in `watch`, `explain` or any other command, and a lone surrogate (valid in a JSON
string, not encodable) must not crash the output. Text lines are escaped character by
character; JSON is written with `ensure_ascii`, which escapes the same characters.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, TextIO

from cj_batching._text import escape

__all__ = ["EscapingFormatter", "RepeatFilter", "StderrHandler", "escape", "write", "write_json"]

_REPEAT_MEMORY = 1024


def write(*lines: str, stream: TextIO | None = None) -> None:
    """Write each line, escaped, to `stream` (default: the current stdout)."""
    out = sys.stdout if stream is None else stream
    out.write("".join(f"{escape(line)}\n" for line in lines))
    out.flush()


def write_json(value: Any, *, stream: TextIO | None = None, indent: int | None = 2) -> None:
    """Write `value` as JSON (ASCII only, so nothing needs escaping); one line when
    `indent` is None."""
    out = sys.stdout if stream is None else stream
    out.write(json.dumps(value, indent=indent, ensure_ascii=True) + "\n")
    out.flush()


class EscapingFormatter(logging.Formatter):
    """Log lines to the terminal escaped like every other line (messages carry flag keys
    and problems from flag files); a traceback below the line stays as it is."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape(super().formatMessage(record))


class RepeatFilter(logging.Filter):
    """Lets each distinct WARNING-or-worse line through once per run.

    A preview resolves thousands of batches through the real chain, which warns on
    every guardrail downgrade; the command shows the count, the log says it once.
    """

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[tuple[str, int, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, record.getMessage())
        if key in self._seen:
            return False
        if len(self._seen) < _REPEAT_MEMORY:
            self._seen.add(key)
        return True


class StderrHandler(logging.Handler):
    """Writes to whatever `sys.stderr` is at the time (tests swap it per test)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)
