"""Service settings from `CJ_ASSESSMENT_SERVICE_*` environment variables (and `.env`)."""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any

from dotenv import dotenv_values
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings import SettingsError as _SourceError

from cj_batching import bounds
from cj_batching._text import short_repr
from cj_batching.bounds import (
    DEFAULT_DEDUP_MAXSIZE,
    GuardAlpha,
    GuardErrorRateIncrease,
    GuardMinResults,
    GuardWaveMemory,
    ResultDedupMaxsize,
)
from cj_batching.modes import LLMBatchingMode, LLMProviderType, parse_provider
from flags import ProviderKind, irregular_file_kind

__all__ = ["ENV_PREFIX", "Settings", "SettingsError"]

ENV_PREFIX = "CJ_ASSESSMENT_SERVICE_"
_log = logging.getLogger(__name__)
_FLAG_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")  # short, printable: logged


class SettingsError(ValueError):
    """Invalid configuration; each line names the env variable, the value and what is allowed."""


class Settings(BaseSettings):
    """Everything the batching control reads from the environment, with production defaults."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        validate_default=True,
        allow_inf_nan=False,  # inf and nan are refused as such, not as out of range
    )

    LLM_BATCHING_MODE: LLMBatchingMode = Field(
        LLMBatchingMode.SERIAL_BUNDLE,
        description="The env default: the last link of the resolution chain.",
    )
    LLM_BATCH_API_ALLOWED_PROVIDERS: Annotated[list[LLMProviderType], NoDecode] = Field(
        default_factory=lambda: [LLMProviderType.OPENAI, LLMProviderType.ANTHROPIC],
        description="Providers allowed to use provider_batch_api (JSON list or comma-"
        "separated); empty means no restriction.",
    )
    DEFAULT_LLM_PROVIDER: LLMProviderType = Field(
        LLMProviderType.OPENAI, description="Provider used when a batch names none."
    )
    LLM_BATCHING_FLAG_KEY: str = Field("llm-batching-mode")
    LLM_BATCH_API_ALLOWED_PROVIDERS_FLAG_KEY: str = Field("llm-batch-api-allowed-providers")

    FLAGS_PROVIDER: ProviderKind = Field(
        "file", description="Where flags come from: file, none, ofrep or flagd."
    )
    FLAGS_FILE: Path = Field(Path("flags.yaml"), description="flagd-format file (file).")
    FLAGS_POLL_INTERVAL_SECONDS: float = Field(0.25, gt=0, le=60)
    FLAGS_EVALUATION_TIMEOUT_SECONDS: float = Field(
        0.5, gt=0, le=30, description="Bound on one remote flag evaluation (ofrep, flagd)."
    )
    FLAGS_OFREP_URL: bounds.OFREPBaseURL = Field(
        "http://localhost:8016", description="OFREP base URL."
    )
    FLAGS_OFREP_TOKEN: bounds.BearerToken = Field(
        None, description="OFREP bearer token (surrounding whitespace stripped; blank: none)."
    )
    FLAGS_FLAGD_HOST: str = Field("localhost", min_length=1)
    FLAGS_FLAGD_PORT: int = Field(8013, ge=1, le=65535)

    RESOLUTION_CACHE_TTL_SECONDS: float = Field(30.0, ge=0, le=86400)
    RESOLUTION_CACHE_MAXSIZE: int = Field(10_000, ge=1, le=10_000_000)

    # The LPS side: each type and default lives in cj_batching.bounds, shared with the
    # LPSClient constructor arguments of the same name.
    LLM_PROVIDER_SERVICE_URL: bounds.LPSBaseURL = Field(
        bounds.DEFAULT_LPS_URL, description="LPS base URL (checked at start-up)."
    )
    LLM_PROVIDER_CALLBACK_TOPIC: bounds.CallbackTopic = Field(
        bounds.DEFAULT_CALLBACK_TOPIC, description="Kafka topic LPS answers on."
    )
    DEFAULT_LLM_MODEL: bounds.LLMModelName = Field(
        bounds.DEFAULT_LLM_MODEL, description="model_override when a task sets none."
    )
    DEFAULT_LLM_TEMPERATURE: bounds.LLMTemperature = Field(
        bounds.DEFAULT_LLM_TEMPERATURE, description="temperature_override when a task sets none."
    )
    LPS_TIMEOUT_SECONDS: bounds.LPSTimeoutSeconds = Field(
        bounds.DEFAULT_LPS_TIMEOUT_SECONDS, description="Total deadline of one attempt."
    )
    LPS_MAX_RETRIES: bounds.LPSMaxRetries = Field(bounds.DEFAULT_LPS_MAX_RETRIES)
    LPS_MAX_CONCURRENCY: bounds.LPSMaxConcurrency = Field(
        bounds.DEFAULT_LPS_MAX_CONCURRENCY, description="Parallel POSTs at most."
    )
    LPS_QUEUE_FULL_COOLDOWN_SECONDS: bounds.QueueFullCooldownSeconds = Field(
        bounds.DEFAULT_LPS_QUEUE_FULL_COOLDOWN_SECONDS,
        description="After LPS's queue-full answer, new waves fail fast this long at most.",
    )
    LPS_AUTH_TOKEN: bounds.LPSAuthToken = Field(
        None, description="Bearer token for LPS (stripped; blank means none)."
    )

    # The rollout guard: flag metadata guard_* keys override these per flag set version.
    GUARD_ENABLED: bool = Field(
        True, description="Guard flag rollouts: pull a failing arm back to the control mode."
    )
    GUARD_MAX_ERROR_RATE_INCREASE: GuardErrorRateIncrease = Field(
        0.05, description="Largest tolerated error-rate increase of an arm over the control."
    )
    GUARD_MIN_RESULTS: GuardMinResults = Field(
        200, description="Results the arm and the control each need before the guard may trip."
    )
    GUARD_ALPHA: GuardAlpha = Field(
        0.01, description="Bound on the chance of tripping an arm no worse than the control."
    )
    GUARD_WAVE_MEMORY: GuardWaveMemory = Field(
        50_000, description="Waves remembered to measure failures that come in bundles."
    )

    RESULT_DEDUP_MAXSIZE: ResultDedupMaxsize = Field(
        DEFAULT_DEDUP_MAXSIZE,
        description="Recent result event ids remembered, so a Kafka redelivery is counted "
        "once (metrics and report).",
    )

    def __init__(self, **values: Any) -> None:
        files = values.get("_env_file", self.model_config.get("env_file"))
        _refuse_irregular_env_files(files)
        origins = _origins(values, self.model_config.get("env_file"))
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SettingsError(_describe_validation_error(exc, origins)) from None
        except _SourceError as exc:
            raise SettingsError(str(exc)) from None
        except UnicodeDecodeError as exc:  # raised while reading a .env file
            raise SettingsError(_undecodable_env_file(files, exc)) from None
        _warn_unknown(origins, type(self).model_fields)

    @field_validator("FLAGS_PROVIDER", mode="before")
    @classmethod
    def _lower_provider_kind(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("LLM_BATCHING_FLAG_KEY", "LLM_BATCH_API_ALLOWED_PROVIDERS_FLAG_KEY")
    @classmethod
    def _usable_flag_key(cls, value: str) -> str:
        if not _FLAG_KEY.fullmatch(value):
            raise ValueError(
                "a flag key is 1-128 characters from letters, digits and _ . : - "
                "(starting with a letter or digit)"
            )
        return value

    @field_validator("FLAGS_FILE")
    @classmethod
    def _known_flag_file_format(cls, value: Path) -> Path:
        if value.suffix.lower() not in (".yaml", ".yml", ".json"):
            raise ValueError("a flag file must end in .yaml, .yml or .json")
        return value

    @field_validator("LLM_BATCH_API_ALLOWED_PROVIDERS", mode="before")
    @classmethod
    def _split_provider_list(cls, value: object) -> object:
        """Accept a JSON list or a comma-separated string; blanks and duplicates drop out."""
        items = _split_list(value) if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            return value
        parsed = [parse_provider(item) for item in items if str(item).strip()]
        return list(dict.fromkeys(parsed))


def _split_list(text: str) -> object:
    text = text.strip()
    if not text.startswith("["):
        return text.split(",")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f'not a valid JSON list ({exc.msg}); use ["openai"] or openai,anthropic'
        ) from None


def _refuse_irregular_env_files(files: object) -> None:
    """pydantic-settings opens a FIFO or device named `.env` too, and that read blocks (or
    never ends): refuse it first, naming the file."""
    for path in _env_files(files):
        kind = irregular_file_kind(path)
        if kind is not None:
            raise SettingsError(f"{path}: is {kind}, not a regular file; a .env file must be one")


def _undecodable_env_file(files: object, exc: UnicodeDecodeError) -> str:
    """Which .env file is not UTF-8, and where: the decode error itself names no file."""
    for path in _env_files(files):
        try:
            if path.is_file():  # a FIFO or device was refused before anything was read
                path.read_bytes().decode("utf-8")
        except OSError:
            continue
        except UnicodeDecodeError as error:
            byte = error.object[error.start]
            return (
                f"{path}: not valid UTF-8 (byte 0x{byte:02x} at offset {error.start}); "
                "save the file as UTF-8"
            )
    return f"a .env file is not valid UTF-8 ({exc.reason} at offset {exc.start})"


def _env_files(files: object) -> Iterator[Path]:
    if isinstance(files, str | os.PathLike):
        yield Path(files)
    elif isinstance(files, list | tuple):
        for item in files:
            yield from _env_files(item)


_SECRET_FIELDS = frozenset({"FLAGS_OFREP_TOKEN", "LPS_AUTH_TOKEN"})


def _describe_validation_error(exc: ValidationError, origins: Mapping[str, str]) -> str:
    lines = ["invalid cj-batching settings:"]
    for error in exc.errors(include_url=False):
        field = str(error["loc"][0]) if error["loc"] else "?"
        hidden = field in _SECRET_FIELDS or isinstance(
            error.get("ctx", {}).get("error"), bounds.HiddenInputError
        )
        value = "'**********'" if hidden else short_repr(error["input"])
        message = str(error["msg"]).removeprefix("Value error, ")
        origin = origins.get(f"{ENV_PREFIX}{field}".upper())
        where = f" (from {origin})" if origin else ""
        lines.append(f"  {ENV_PREFIX}{field}={value}{where}: {message}")
    return "\n".join(lines)


def _origins(values: Mapping[str, Any], configured: object) -> dict[str, str]:
    """Where each `CJ_ASSESSMENT_SERVICE_*` name comes from, upper-cased as pydantic-
    settings matches them (case-insensitively): the environment wins over `.env`, and
    values given to `Settings(...)` win over both. Only names, never values: secrets."""
    origins: dict[str, str] = {}
    env_file = values.get("_env_file", configured)
    files = env_file if isinstance(env_file, list | tuple) else [env_file]
    for file in files:
        if file is None or str(file) == ".":  # "." is pydantic-settings' "unset"
            continue
        path = Path(file)
        try:
            names = dotenv_values(path) if path.is_file() else {}
        except (OSError, UnicodeDecodeError, ValueError):  # reported by pydantic-settings
            names = {}
        origins.update((name.upper(), f".env file {path}") for name in names)
    origins.update((name.upper(), "the environment") for name in os.environ)
    origins.update((f"{ENV_PREFIX}{name}".upper(), "the arguments") for name in values)
    return {name: origin for name, origin in origins.items() if name.startswith(ENV_PREFIX)}


# The host CJ service reads its own CJ_ASSESSMENT_SERVICE_* settings (database, Kafka,
# ...): only names that look like ours are worth a WARNING, i.e. a close match of a
# setting (a typo) or a name in one of this library's own families.
_OWN_FAMILIES = ("FLAGS_", "LPS_", "GUARD_", "RESOLUTION_", "RESULT_", "LLM_BATCH")


def _warn_unknown(origins: Mapping[str, str], fields: Mapping[str, object]) -> None:
    """One WARNING per `CJ_ASSESSMENT_SERVICE_*` name that looks like a setting of ours
    but is not one (a typo is otherwise silently ignored, and the default used); other
    unknown names belong to the host service and are only logged at DEBUG."""
    known = [name.upper() for name in fields]
    for name, origin in origins.items():
        short = name.removeprefix(ENV_PREFIX)
        if short in known or origin == "the arguments":
            continue
        # Compared without the shared prefix, which would make any two names look alike.
        close = difflib.get_close_matches(short, known, n=1, cutoff=0.8)
        if not close and not short.startswith(_OWN_FAMILIES):
            _log.debug("%s (from %s) is not a cj-batching setting", name, origin)
            continue
        hint = f"; did you mean {ENV_PREFIX}{close[0]}?" if close else ""
        _log.warning(
            "%s (from %s) is not a cj-batching setting and is ignored%s",
            name,
            origin,
            hint,
            extra={"setting": name, "setting_origin": origin},
        )
