"""Small text helpers: bounded reprs for error messages, escaping for output."""

from __future__ import annotations

__all__ = ["escape", "short_repr"]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def short_repr(value: object, limit: int = 80) -> str:
    """`repr(value)`, cut to `limit` characters so a 10 KB input cannot flood an error."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def escape(text: str) -> str:
    """`text` with every non-printable character (controls, format characters such as
    bidi overrides, line separators, lone surrogates) as a visible `\\x..`/`\\u....`
    escape, so text from a flag file can neither forge a line nor fail to encode."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escape_char(char) for char in text)


def _escape_char(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
