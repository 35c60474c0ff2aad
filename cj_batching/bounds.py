"""The bounds and defaults of every tunable value, as constrained types shared by
`Settings` and by whatever else accepts the same value (constructors, flag metadata), so
each bound and default is written once.

A bound is an `Annotated` type (pydantic constraints, plus for the LPS side the refusals
every number shares: no bools, no NaN or infinity). `Settings` fields are declared with
it, and code that takes the same value as an argument checks it with `check(...)`, so an
env variable and an argument accept the same values and explain a bad one the same way.
A new setting with an argument twin adds its type and its default here, then uses both.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, Final
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    StrictInt,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from cj_batching._text import short_repr
from flags.factory import bearer_token

__all__ = [
    "DEFAULT_CALLBACK_TOPIC",
    "DEFAULT_DEDUP_MAXSIZE",
    "DEFAULT_LLM_MODEL",
    "DEFAULT_LLM_TEMPERATURE",
    "DEFAULT_LPS_BACKOFF_INITIAL_SECONDS",
    "DEFAULT_LPS_BACKOFF_MAX_SECONDS",
    "DEFAULT_LPS_MAX_CONCURRENCY",
    "DEFAULT_LPS_MAX_RETRIES",
    "DEFAULT_LPS_QUEUE_FULL_COOLDOWN_SECONDS",
    "DEFAULT_LPS_TIMEOUT_SECONDS",
    "DEFAULT_LPS_URL",
    "MAX_COMPARISON_ITERATION",
    "MAX_REPLICATES",
    "MAX_RESULT_DEDUP_SIZE",
    "MIN_REPLICATES",
    "BackoffSeconds",
    "BatchSize",
    "BearerToken",
    "CallbackTopic",
    "ComparisonIteration",
    "GuardAlpha",
    "GuardErrorRateIncrease",
    "GuardMinResults",
    "GuardWaveMemory",
    "HiddenInputError",
    "LLMModelName",
    "LLMTemperature",
    "LPSAuthToken",
    "LPSBaseURL",
    "LPSMaxConcurrency",
    "LPSMaxRetries",
    "LPSTimeoutSeconds",
    "MaxComparisons",
    "MaxConcurrentBatches",
    "MaxTokens",
    "OFREPBaseURL",
    "PartialCompletionThreshold",
    "QueueFullCooldownSeconds",
    "ReportReplicates",
    "ResultDedupMaxsize",
    "check",
]

DEFAULT_LPS_URL: Final = "http://llm_provider_service:8080/api/v1"
DEFAULT_CALLBACK_TOPIC: Final = "huleedu.llm_provider.comparison_result.v1"
DEFAULT_LLM_MODEL: Final = "gpt-5.1"
DEFAULT_LLM_TEMPERATURE: Final = 0.1
DEFAULT_LPS_TIMEOUT_SECONDS: Final = 60.0
DEFAULT_LPS_MAX_RETRIES: Final = 3
DEFAULT_LPS_MAX_CONCURRENCY: Final = 50
DEFAULT_LPS_QUEUE_FULL_COOLDOWN_SECONDS: Final = 30.0
DEFAULT_LPS_BACKOFF_INITIAL_SECONDS: Final = 0.5
DEFAULT_LPS_BACKOFF_MAX_SECONDS: Final = 10.0
MAX_COMPARISON_ITERATION: Final = 2**31 - 1
"""The wave number fits the signed 32-bit integer column CJ stores it in."""


class HiddenInputError(ValueError):
    """A refusal whose input must not be shown next to it (it carries credentials)."""


def _refuse_bool(value: object) -> object:
    # pydantic's lax mode reads True as 1: for a count or a number of seconds that is a
    # mistake, not a value.
    if isinstance(value, bool):
        raise ValueError("a bool is not a number")
    return value


_NOT_BOOL: Final = BeforeValidator(_refuse_bool)


def _number(**constraints: Any) -> Any:
    return Field(allow_inf_nan=False, **constraints)


LPSTimeoutSeconds = Annotated[float, _NOT_BOOL, _number(gt=0, le=600)]
"""The total deadline of one LPS attempt (connect, send, whole answer), in seconds."""
LPSMaxRetries = Annotated[int, _NOT_BOOL, Field(ge=0, le=100)]
"""Retries after the first attempt."""
LPSMaxConcurrency = Annotated[int, _NOT_BOOL, Field(ge=1, le=1000)]
"""POSTs in flight at most, across every wave through one client."""
BackoffSeconds = Annotated[float, _NOT_BOOL, _number(ge=0, le=600)]
"""A backoff step or its cap, in seconds."""
QueueFullCooldownSeconds = Annotated[float, _NOT_BOOL, _number(ge=0, le=3600)]
"""How long at most new waves fail fast after LPS said its queue is full."""
LLMTemperature = Annotated[float, _NOT_BOOL, _number(ge=0, le=2)]
MaxTokens = Annotated[int, _NOT_BOOL, Field(gt=0, le=10_000_000)]
LLMModelName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]
CallbackTopic = Annotated[
    str, StringConstraints(min_length=1, max_length=249, pattern=r"^[A-Za-z0-9._-]+$")
]
"""A Kafka topic name: 1-249 characters from letters, digits and `. _ -`."""

BatchSize = Annotated[int, _NOT_BOOL, Field(ge=10, le=200)]
MaxConcurrentBatches = Annotated[int, _NOT_BOOL, Field(ge=1, le=5)]
PartialCompletionThreshold = Annotated[float, _NOT_BOOL, _number(ge=0.5, le=1.0)]
MaxComparisons = Annotated[int, _NOT_BOOL, Field(gt=0, le=10_000_000)]
ComparisonIteration = Annotated[StrictInt, Field(ge=0, le=MAX_COMPARISON_ITERATION)]
"""A batch's wave number: 0 for its first wave."""
"""A cap on one CJ batch's comparisons."""


def _http_base_url(example: str, token_setting: str) -> Callable[[str], str]:
    """A validator of a service's base URL: absolute http(s), a host, no query, fragment
    or credentials (refused without showing them: a token has its own setting)."""

    def validate(value: str) -> str:
        text = value.strip()
        allowed = f"an absolute http:// or https:// URL with a host, e.g. {example}"
        if not text or any(char.isspace() for char in text):
            raise ValueError(f"must be {allowed}")
        try:
            parts = urlsplit(text)
            _ = parts.port  # an out-of-range or non-numeric port raises here
        except ValueError:
            raise ValueError(f"is not a valid URL; must be {allowed}") from None
        if parts.username is not None or parts.password is not None:
            raise HiddenInputError(f"must not carry credentials (set {token_setting} instead)")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be {allowed}")
        if parts.query or parts.fragment or text.endswith(("?", "#")):
            raise ValueError(f"must be {allowed}, without a query or fragment")
        return text

    return validate


LPSBaseURL = Annotated[str, AfterValidator(_http_base_url(DEFAULT_LPS_URL, "LPS_AUTH_TOKEN"))]
"""LPS's base URL; comparisons go to `{base}/comparison`."""

OFREPBaseURL = Annotated[
    str, AfterValidator(_http_base_url("http://flagd:8016", "FLAGS_OFREP_TOKEN"))
]
"""An OFREP server's base URL (flagd serves OFREP on port 8016)."""


def _bearer_token(value: object) -> object:
    # flags.bearer_token is the one rule for every token (make_provider applies it too):
    # surrounding whitespace stripped (secret files end in a newline), blank is none,
    # an RFC 6750 token or the value is refused unseen.
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    if not isinstance(text, str):
        return value  # not text: SecretStr's own validation says so
    token = bearer_token(text)
    return None if token is None else SecretStr(token)


BearerToken = Annotated[SecretStr | None, BeforeValidator(_bearer_token)]
"""A bearer token (LPS, OFREP): stripped; blank means none; never shown."""

LPSAuthToken = BearerToken
"""The LPS bearer token."""


# --- the rollout guard, results, the report ----------------------------------------------

# The rollout guard (cj_batching.guard). A fraction of results, so strictly inside 0..1.
GuardErrorRateIncrease = Annotated[float, Field(gt=0, lt=1)]
# Below ~10 results a rate is not a measurement; above 10 M the guard would never act.
GuardMinResults = Annotated[int, Field(ge=10, le=10_000_000)]
# The always-valid false-trip bound per source and arm; above 0.2 a guard is a coin flip.
GuardAlpha = Annotated[float, Field(gt=0, le=0.2)]
# Waves remembered for the cluster-robust variance (~100 bytes each).
GuardWaveMemory = Annotated[int, Field(ge=1, le=10_000_000)]

# Recent result event ids remembered against Kafka redeliveries (cj_batching.results):
# a bound, not a suggestion (the memory an id takes: docs/performance.md).
MAX_RESULT_DEDUP_SIZE: Final = 10_000_000
ResultDedupMaxsize = Annotated[int, _NOT_BOOL, Field(ge=1, le=MAX_RESULT_DEDUP_SIZE)]
DEFAULT_DEDUP_MAXSIZE: Final = 100_000
"""Ids remembered by default: Kafka redelivers what a consumer had not committed when it
restarted or lost its partitions, typically far fewer messages than this."""

# Bootstrap replicates of the experiment report (cj_batching.report): below 100 the 2.5 %
# tails rest on two or three values; above 100 000 a report takes minutes for nothing.
MIN_REPLICATES: Final = 100
MAX_REPLICATES: Final = 100_000
ReportReplicates = Annotated[int, Field(ge=MIN_REPLICATES, le=MAX_REPLICATES)]


@functools.cache
def _adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


def check(kind: Any, name: str, value: object, *, secret: bool = False) -> Any:
    """`value` validated (and normalised) as the bound `kind`, else a `ValueError` naming
    `name`, the value (hidden when `secret` or when it carries credentials) and why."""
    try:
        return _adapter(kind).validate_python(value)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        hidden = secret or any(
            isinstance(error.get("ctx", {}).get("error"), HiddenInputError) for error in errors
        )
        shown = f"the given {type(value).__name__} (hidden)" if hidden else short_repr(value)
        reason = "; ".join(str(error["msg"]).removeprefix("Value error, ") for error in errors)
        raise ValueError(f"{name}: {shown} is not valid: {reason}") from None
