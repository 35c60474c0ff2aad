"""The provider guardrail: `provider_batch_api` only for providers on the allow list."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from cj_batching.modes import LLMBatchingMode, LLMProviderType

__all__ = ["guardrail_fallback", "is_allowed", "parse_allow_list"]


def is_allowed(provider: LLMProviderType, allowed: Collection[LLMProviderType]) -> bool:
    """Whether `provider` may use the provider batch API (an empty list allows all)."""
    return not allowed or provider in allowed


def guardrail_fallback(env_default: LLMBatchingMode) -> LLMBatchingMode:
    """The mode a refused batch-API request falls back to, as the deployed CJ does."""
    if env_default is LLMBatchingMode.PROVIDER_BATCH_API:
        return LLMBatchingMode.SERIAL_BUNDLE
    return env_default


def parse_allow_list(value: object) -> tuple[LLMProviderType, ...] | None:
    """Read the allow-list flag's object `{"providers": [names...]}`; None when malformed.

    flagd object flags hold JSON objects, not bare lists, hence the wrapper key. One
    unknown name makes the whole value invalid: a typo must not silently drop (or keep)
    a provider, so the caller falls back to the settings list and reports it. An empty
    list is invalid too: in the env setting it means "no restriction", and a kill switch
    edit that empties the flag must not turn into "allow everyone".
    """
    names = value.get("providers") if isinstance(value, Mapping) else None
    if not isinstance(names, list | tuple) or not names:
        return None
    parsed = [LLMProviderType.lookup(name) for name in names]
    if None in parsed:
        return None
    return tuple(dict.fromkeys(provider for provider in parsed if provider is not None))
