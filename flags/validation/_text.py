"""Message helpers shared by the checks: short reprs, JSON pointers, "did you mean"."""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Collection, Iterable
from typing import Final

from flags.validation.limits import MAX_SUGGESTED_NAME, MAX_SUGGESTION_STEPS

__all__ = ["Suggestions", "join", "pointer", "show"]

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist = 3, 4, 4
_REPR.maxstring, _REPR.maxother = 60, 60
_CUTOFF: Final = 0.6  # difflib's default similarity for a close match
# A choice longer than this can never reach the cutoff against a name of at most
# MAX_SUGGESTED_NAME characters (difflib's ratio is at most 2 x shorter / total length).
_MAX_CHOICE: Final = int(MAX_SUGGESTED_NAME * (2 / _CUTOFF - 1))


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


class Suggestions:
    """' (did you mean 'x'?)' hints for one validation, within a budget for the whole
    document: each word is looked up once per set of choices, and once the budget is
    spent the remaining mistakes get no hint (their problems are still reported)."""

    def __init__(self, budget: int = MAX_SUGGESTION_STEPS) -> None:
        self._left = budget
        self._choices: dict[int, tuple[Collection[str], list[str], int]] = {}
        self._found: dict[tuple[int, str], str] = {}

    def __call__(self, word: object, choices: Collection[str]) -> str:
        """The hint for `word` among `choices`, or '' (none close, or the budget spent)."""
        if not isinstance(word, str) or len(word) > MAX_SUGGESTED_NAME:
            return ""
        # Keyed by identity: the choices are a module constant or the document's evaluators,
        # alive for the whole validation (and held here, so an id is never reused).
        key = id(choices)
        if key not in self._choices:
            usable = [choice for choice in choices if len(choice) <= _MAX_CHOICE]
            self._choices[key] = (choices, usable, sum(map(len, usable)))
        _, usable, size = self._choices[key]
        if (key, word) not in self._found:
            cost = max(1, len(word)) * size
            if cost > self._left:
                return ""
            self._left -= cost
            close = difflib.get_close_matches(word, usable, n=1, cutoff=_CUTOFF)
            self._found[key, word] = f" (did you mean {close[0]!r}?)" if close else ""
        return self._found[key, word]
