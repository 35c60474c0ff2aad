"""Message helpers shared by the checks: short reprs, JSON pointers, "did you mean"."""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Collection, Iterable

__all__ = ["join", "pointer", "show", "suggest"]

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist = 3, 4, 4
_REPR.maxstring, _REPR.maxother = 60, 60
# difflib compares the word with every choice; past this many choices a suggestion costs
# more than it helps (a document with 20 000 evaluators must still validate in linear time).
_MAX_SUGGESTION_CHOICES = 500


def show(value: object) -> str:
    """A short repr for messages: at most 80 characters, and cheap even for huge values."""
    try:
        text = _REPR.repr(value)
    except Exception:  # a hostile __repr__ must not break validation
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else f"{text[:77]}..."


def join(path: str, key: object) -> str:
    """`path` plus one JSON-pointer segment (escaped as RFC 6901 says)."""
    return f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}"


def pointer(parts: Iterable[object]) -> str:
    """The JSON pointer of a sequence of keys and indices."""
    return "".join(join("", part) for part in parts)


def suggest(word: object, choices: Collection[str]) -> str:
    """' (did you mean 'x'?)' for a close choice, else ''."""
    if not isinstance(word, str) or len(choices) > _MAX_SUGGESTION_CHOICES:
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
