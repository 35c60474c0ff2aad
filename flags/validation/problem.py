"""`Problem`: one finding about a flag document, an error (refused) or a warning (served)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = ["Problem", "Severity", "errors_first"]

Severity = Literal["error", "warning"]
"""`error`: the flag would fail or behave otherwise than it reads, so the document is
refused; `warning`: flagd-core evaluates it as written, but it is worth a look (e.g. the
official flagd schema rejects it)."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a flag document."""

    path: str  # JSON pointer, e.g. "/flags/llm-batching-mode/defaultVariant"; "" for the root
    message: str  # what is wrong, the offending value and what is allowed
    severity: Severity = "error"

    def __post_init__(self) -> None:
        if self.severity not in ("error", "warning"):
            raise ValueError(f"severity: {self.severity!r} is not 'error' or 'warning'")

    @property
    def is_error(self) -> bool:
        """Whether this problem refuses the document."""
        return self.severity == "error"

    def __str__(self) -> str:
        label = "warning: " if self.severity == "warning" else ""
        return f"{self.path or '/'}: {label}{self.message}"


def errors_first(problems: Iterable[Problem]) -> list[Problem]:
    """Distinct problems, errors before warnings, each group sorted by path then message."""
    return sorted(set(problems), key=lambda p: (not p.is_error, p.path, p.message))
