"""Batching-specific checks of a flag document, run before a new version is accepted.

The `flags` package validates the flagd format; these checks add what only this domain
knows, so a typo such as `provider_batchapi` is refused at load time (the last good
flags stay in use) instead of surfacing as INVALID_MODE on every resolution.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cj_batching._text import short_repr
from cj_batching.guard.checks import guard_metadata_check
from cj_batching.modes import LLMBatchingMode, LLMProviderType
from cj_batching.resolver.guardrail import parse_allow_list
from cj_batching.settings import Settings
from flags import DocumentCheck, Problem

__all__ = ["batching_flag_checks"]


def batching_flag_checks(settings: Settings) -> list[DocumentCheck]:
    """The checks for the mode flag and the allow-list flag named in `settings`."""
    mode_key = settings.LLM_BATCHING_FLAG_KEY
    allow_key = settings.LLM_BATCH_API_ALLOWED_PROVIDERS_FLAG_KEY

    def check_mode_flag(document: Mapping[str, Any]) -> list[Problem]:
        return [
            Problem(
                path,
                f"{short_repr(value)} is not a batching mode; allowed: {LLMBatchingMode.allowed()}",
            )
            for path, value in _variants(document, mode_key)
            if LLMBatchingMode.lookup(value) is None
        ]

    def check_allow_list_flag(document: Mapping[str, Any]) -> list[Problem]:
        return [
            Problem(
                path,
                f"{short_repr(value)} is not an allow list; write "
                f'{{"providers": [...]}} with names from: {LLMProviderType.allowed()}',
            )
            for path, value in _variants(document, allow_key)
            if parse_allow_list(value) is None
        ]

    return [check_mode_flag, check_allow_list_flag, guard_metadata_check(settings)]


def _variants(document: Mapping[str, Any], flag_key: str) -> list[tuple[str, object]]:
    flag = document.get("flags", {}).get(flag_key)
    if not isinstance(flag, Mapping) or not isinstance(flag.get("variants"), Mapping):
        return []
    return [
        (f"/flags/{flag_key}/variants/{name}", value) for name, value in flag["variants"].items()
    ]
