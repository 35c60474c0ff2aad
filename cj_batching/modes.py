"""The batching modes CJ can ask LPS for, the LLM providers, and their lenient parsing."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Self, cast

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from cj_batching._text import short_repr

__all__ = ["LLMBatchingMode", "LLMProviderType", "parse_mode", "parse_provider"]

# Early planning documents spelled the serial mode this way; the deployed platform's
# shared enum (CJ, LPS, the ENG5 runner) says `serial_bundle`. Accepted, never emitted.
_MODE_ALIASES = {"provider_serial_bundle": "serial_bundle"}


class _LenientEnum(StrEnum):
    """A str enum that parses case-insensitively, ignores blanks and knows aliases.

    `_missing_` is the hook both `Enum(value)` and pydantic validation go through, so
    env vars, overrides, flag values and CLI arguments all parse the same way.
    """

    @classmethod
    def _aliases(cls) -> dict[str, str]:
        return {}

    @classmethod
    def _kind(cls) -> str:
        """What a member is, for error messages ("a batching mode")."""
        return "a member"

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
            return cast(Self, member)
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

    @classmethod
    def parse(cls, value: object, *, field: str | None = None) -> Self:
        """The member `value` names; else a ValueError naming the field, value and choices."""
        member = cls.lookup(value)
        if member is None:
            where = f"{field}: " if field else ""
            raise ValueError(
                f"{where}{short_repr(value)} is not {cls._kind()}; allowed: {cls.allowed()}"
            )
        return member

    @classmethod
    def _validate(cls, value: object) -> Self:
        """`parse` for pydantic, which shows the field and the input value itself."""
        member = cls.lookup(value)
        if member is None:
            raise ValueError(f"not {cls._kind()}; allowed: {cls.allowed()}")
        return member

    @classmethod
    def __get_pydantic_core_schema__(
        cls, _source: Any, _handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        # Pydantic's own enum schema would list alias members twice in its errors and
        # bypass `allowed()`; one parser keeps env, overrides and flags saying the same.
        return core_schema.no_info_plain_validator_function(
            cls._validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda member: member.value, when_used="json"
            ),
        )


class LLMBatchingMode(_LenientEnum):
    """A *logical* batching selector that CJ sends to LPS as a hint.

    CJ decides whether and how much to batch; the LLM Provider Service implements the
    behaviour (its own queue modes) and may treat the hint as advisory. Values are the
    platform's wire spelling: LPS bundles only requests whose mode strings are equal.
    """

    PER_REQUEST = "per_request"
    SERIAL_BUNDLE = "serial_bundle"
    PROVIDER_BATCH_API = "provider_batch_api"
    # The name the first version used; an Enum alias, so it *is* SERIAL_BUNDLE.
    PROVIDER_SERIAL_BUNDLE = "serial_bundle"

    @classmethod
    def _aliases(cls) -> dict[str, str]:
        return _MODE_ALIASES

    @classmethod
    def _kind(cls) -> str:
        return "a batching mode"


class LLMProviderType(_LenientEnum):
    """The LLM providers LPS can route a comparison to."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GOOGLE = "google"
    OPENROUTER = "openrouter"
    MOCK = "mock"

    @classmethod
    def _kind(cls) -> str:
        return "a known LLM provider"


def parse_mode(value: object, *, field: str = "batching mode") -> LLMBatchingMode:
    """Parse a batching mode from any input; the error names the field, value and choices."""
    return LLMBatchingMode.parse(value, field=field)


def parse_provider(value: object, *, field: str = "LLM provider") -> LLMProviderType:
    """Parse an LLM provider from any input; the error names the field, value and choices."""
    return LLMProviderType.parse(value, field=field)
