"""The batching flags in words (for `cj-batching show` and `diff`): per source, what the
mode flag gives (a split, a mode, the env default), and the allow list in use."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cj_batching.context import KNOWN_SOURCES, REQUEST_TYPES
from cj_batching.modes import LLMBatchingMode, LLMProviderType
from cj_batching.resolver import parse_allow_list
from cj_batching.settings import Settings
from flags import Outcome, flag_outcome

__all__ = [
    "AllowListSummary",
    "SourceRule",
    "allow_list_summary",
    "source_rules",
    "split_mode_weights",
]


@dataclass(frozen=True, slots=True)
class SourceRule:
    """What the mode flag gives one source's batches (for one provider, request type
    `cj_comparison`), and where other providers or retries differ."""

    source: str
    outcome: Outcome
    text: str
    exceptions: tuple[tuple[str, str], ...] = ()  # ("provider mock", "per_request"), ...

    def to_dict(self) -> dict[str, Any]:
        """The `show --json` shape of one rule."""
        outcome = self.outcome
        return {
            "source": self.source,
            "kind": outcome.kind,
            "variant": outcome.variant,
            "weights": _summed(outcome.weights) if outcome.kind == "split" else None,
            "text": self.text,
            "exceptions": [{"when": when, "text": text} for when, text in self.exceptions],
        }

    def line(self) -> str:
        """`els: 20 % provider_batch_api / 80 % serial_bundle, sticky per batch id`."""
        unless = "; ".join(f"{when}: {text}" for when, text in self.exceptions)
        return f"{self.source}: {self.text}" + (f" (except {unless})" if unless else "")


def source_rules(
    document: Mapping[str, Any],
    settings: Settings,
    sources: Sequence[str] = KNOWN_SOURCES,
    *,
    provider: LLMProviderType | None = None,
) -> list[SourceRule]:
    """The mode flag's rule for each source in words, for `provider` (default: the
    settings' default provider); empty without a mode flag."""
    key = settings.LLM_BATCHING_FLAG_KEY
    flag = (document.get("flags") or {}).get(key)
    if not isinstance(flag, Mapping):
        return []
    default_provider = provider or settings.DEFAULT_LLM_PROVIDER
    rules = []
    for source in sources:
        outcome = _outcome(document, key, source, default_provider, REQUEST_TYPES[0])
        others: list[tuple[str, Outcome]] = [
            (
                f"provider {provider.value}",
                _outcome(document, key, source, provider, REQUEST_TYPES[0]),
            )
            for provider in LLMProviderType
            if provider is not default_provider
        ]
        others += [
            (f"request type {kind}", _outcome(document, key, source, default_provider, kind))
            for kind in REQUEST_TYPES[1:]
        ]
        exceptions = tuple(
            (when, _words(other, flag, settings)) for when, other in others if other != outcome
        )
        rules.append(SourceRule(source, outcome, _words(outcome, flag, settings), exceptions))
    return rules


def _outcome(
    document: Mapping[str, Any],
    key: str,
    source: str,
    provider: LLMProviderType,
    request_type: str,
) -> Outcome:
    attributes = {
        "cj_source": source,
        "llm_provider": provider.value,
        "cj_request_type": request_type,
    }
    return flag_outcome(document, key, attributes) or Outcome("default")


def _words(outcome: Outcome, flag: Mapping[str, Any], settings: Settings) -> str:
    env_default = f"the env default ({settings.LLM_BATCHING_MODE.value})"
    if outcome.kind == "disabled":
        return f"disabled: {env_default}"
    if outcome.kind == "error":
        return f"the rule fails ({outcome.error}): {env_default}"
    if outcome.kind == "varies":
        return "depends on the batch id outside a fractional split (see cj-batching rollout)"
    if outcome.kind == "split":
        arms = " / ".join(
            f"{_percent(share)} % {_mode_text(flag, name)}"
            for name, share in outcome.shares().items()
        )
        sticky = (
            "sticky per batch id"
            if outcome.bucket_by is None
            else f"sticky per the value of {outcome.bucket_by!r}"
        )
        return f"{arms}, {sticky}"
    if outcome.variant is None:
        return f"no rule matches: {env_default}"
    text = _mode_text(flag, outcome.variant)
    return f"{text} (the default variant)" if outcome.kind == "default" else text


def split_mode_weights(flag: Mapping[str, Any], outcome: Outcome) -> dict[str, int]:
    """A split's weights per mode (the value each variant names, not its name), summed
    when several buckets give one mode, in list order; a variant naming no mode (which
    the batching checks refuse) counts under its own name."""
    modes = [(_mode(flag, variant), variant, weight) for variant, weight in outcome.weights]
    return _summed([(variant if mode is None else mode.value, w) for mode, variant, w in modes])


def _summed(weights: Sequence[tuple[str, int]]) -> dict[str, int]:
    """Weights per variant, summed as flagd does when a variant has several buckets."""
    summed: dict[str, int] = {}
    for variant, weight in weights:
        summed[variant] = summed.get(variant, 0) + weight
    return summed


def _mode(flag: Mapping[str, Any], variant: str) -> LLMBatchingMode | None:
    return LLMBatchingMode.lookup((flag.get("variants") or {}).get(variant))


def _mode_text(flag: Mapping[str, Any], variant: str) -> str:
    """A variant as the mode it stands for (`fast -> per_request` when the names differ)."""
    mode = _mode(flag, variant)
    if mode is None:
        return variant
    return mode.value if mode.value == variant else f"{variant} -> {mode.value}"


def _percent(share: float) -> str:
    return f"{share * 100:.1f}".rstrip("0").rstrip(".")


@dataclass(frozen=True, slots=True)
class AllowListSummary:
    """The providers that may use `provider_batch_api`, and where the list comes from:
    `flag`, `settings` (the flag is absent, disabled or gives no variant) or `per_batch`
    (the flag gives each batch id its own list: no one list to show)."""

    providers: tuple[LLMProviderType, ...]
    source: Literal["flag", "settings", "per_batch"]
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The `show --json` shape of the allow list (`providers` null when per batch)."""
        per_batch = self.source == "per_batch"
        return {
            "providers": None if per_batch else [provider.value for provider in self.providers],
            "source": self.source,
            "note": self.note or None,
        }

    def line(self) -> str:
        """`openai, anthropic (from the flag)`."""
        if self.source == "per_batch":
            return f"differs per batch id ({self.note})"
        names = ", ".join(provider.value for provider in self.providers) or "any provider"
        where = "from the flag" if self.source == "flag" else "from the settings"
        return f"{names} ({where}{'; ' + self.note if self.note else ''})"


def allow_list_summary(document: Mapping[str, Any], settings: Settings) -> AllowListSummary:
    """The allow list a batch of the first known source would be judged against."""
    settings_list = tuple(settings.LLM_BATCH_API_ALLOWED_PROVIDERS)
    key = settings.LLM_BATCH_API_ALLOWED_PROVIDERS_FLAG_KEY
    flag = (document.get("flags") or {}).get(key)
    if not isinstance(flag, Mapping):
        return AllowListSummary(settings_list, "settings", f"no flag {key}")
    # A list in source order, not a set: the first source's outcome must be the one shown
    # (a set's order follows PYTHONHASHSEED), and a split's bucket_by may be a dict.
    outcome, *others = [
        _outcome(document, key, source, settings.DEFAULT_LLM_PROVIDER, REQUEST_TYPES[0])
        for source in KNOWN_SOURCES
    ]
    differs = any(other != outcome for other in others)
    note = "differs per source or batch: see cj-batching explain" if differs else ""
    if outcome.kind in ("split", "varies"):
        return AllowListSummary((), "per_batch", f"{key} splits batches: see cj-batching explain")
    if outcome.kind not in ("variant", "default") or outcome.variant is None:
        return AllowListSummary(settings_list, "settings", note or f"{key} gives no variant")
    parsed = parse_allow_list((flag.get("variants") or {}).get(outcome.variant))
    if parsed is None:
        return AllowListSummary(settings_list, "settings", f"{key} is not a valid allow list")
    return AllowListSummary(parsed, "flag", note)
