"""The batching modes CJ can ask LPS for, the LLM providers, and their lenient parsing."""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from cj_batching._text import short_repr

__all__ = ["LLMBatchingMode", "LLMProviderType", "parse_mode", "parse_provider"]

# The deployed platform (its LPS and the ENG5 runner) spells the serial mode this way.
_MODE_ALIASES = {"serial_bundle": "provider_serial_bundle"}


class _LenientEnum(StrEnum):
    """A str enum that parses case-insensitively, ignores blanks and knows aliases.

    `_missing_` is the hook both `Enum(value)` and pydantic validation go through, so
    env vars, overrides, flag values and CLI arguments all parse the same way.
    """

    @classmethod
    def _aliases(cls) -> dict[str, str]:
        return {}

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        return cls.lookup(value)

    @classmethod
    def lookup(cls, value: object) -> Self | None:
        """The member `value` names (any case, blanks, aliases), or None."""
        if not isinstance(value, str):
            return None
        member = cls._value2member_map_.get(value)  # the canonical spelling: the hot path
        if member is not None:
            return member  # type: ignore[return-value]  # (a cast() call costs ~80 ns here)
        text = value.strip().lower()
        text = cls._aliases().get(text, text)
        for member in cls:
            if member.value == text:
                return member
        return None

    @classmethod
    def allowed(cls) -> str:
        """The accepted spellings, for error messages."""
        names = ", ".join(member.value for member in cls)
        aliases = ", ".join(f"{a} (= {t})" for a, t in cls._aliases().items())
        return f"{names}; also accepted: {aliases}" if aliases else names


class LLMBatchingMode(_LenientEnum):
    """A *logical* batching selector that CJ sends to LPS as a hint.

    CJ decides whether and how much to batch; the LLM Provider Service implements the
    behaviour (its own queue modes) and may treat the hint as advisory.
    """

    PER_REQUEST = "per_request"
    PROVIDER_SERIAL_BUNDLE = "provider_serial_bundle"
    PROVIDER_BATCH_API = "provider_batch_api"

    @classmethod
    def _aliases(cls) -> dict[str, str]:
        return _MODE_ALIASES


class LLMProviderType(_LenientEnum):
    """The LLM providers LPS can route a comparison to."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GOOGLE = "google"
    OPENROUTER = "openrouter"
    MOCK = "mock"


def parse_mode(value: object, *, field: str = "batching mode") -> LLMBatchingMode:
    """Parse a batching mode from any input; the error names the field, value and choices."""
    mode = LLMBatchingMode.lookup(value)
    if mode is None:
        raise ValueError(
            f"{field}: {short_repr(value)} is not a batching mode; "
            f"allowed: {LLMBatchingMode.allowed()}"
        )
    return mode


def parse_provider(value: object, *, field: str = "LLM provider") -> LLMProviderType:
    """Parse an LLM provider from any input; the error names the field, value and choices."""
    provider = LLMProviderType.lookup(value)
    if provider is None:
        raise ValueError(
            f"{field}: {short_repr(value)} is not a known LLM provider; "
            f"allowed: {LLMProviderType.allowed()}"
        )
    return provider
