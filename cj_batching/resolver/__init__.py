"""Resolving a batch's batching mode: the chain, its cache, the provider guardrail."""

from cj_batching.resolver.chain import ResolutionChain, flag_evaluation_context
from cj_batching.resolver.guardrail import (
    Guardrail,
    GuardrailVerdict,
    guardrail_fallback,
    is_allowed,
    parse_allow_list,
)
from cj_batching.resolver.resolver import BatchingModeResolver

__all__ = [
    "BatchingModeResolver",
    "Guardrail",
    "GuardrailVerdict",
    "ResolutionChain",
    "flag_evaluation_context",
    "guardrail_fallback",
    "is_allowed",
    "parse_allow_list",
]
