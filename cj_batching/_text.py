"""Small text helpers for error messages."""

from __future__ import annotations

__all__ = ["short_repr"]


def short_repr(value: object, limit: int = 80) -> str:
    """`repr(value)`, cut to `limit` characters so a 10 KB input cannot flood an error."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."
