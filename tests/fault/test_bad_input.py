"""Bad input at every edge, table-driven: settings, overrides, envelope hints, sources,
providers, request types and batch ids.

Each bad value gets a clear error that names the field and the value, cut to a sane
length, or the documented normalisation; nothing crashes; and whatever odd input is
accepted only ever shows up in the Prometheus labels as a member of its bounded set.
(tests/test_config.py has the basic cases; this file covers what it does not.)
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from cj_batching import (
    BatchConfigOverrides,
    BatchContext,
    BatchingMetrics,
    LLMBatchingMode,
    LLMProviderType,
    Settings,
    SettingsError,
    overrides_from_envelope_metadata,
)
from cj_batching.cli import main
from cj_batching.metrics import FLAG_ERROR_CODES
from cj_batching.metrics.results import TOKEN_KINDS
from cj_batching.resolution import DECIDED_BY
from cj_batching.results import OUTCOMES, REASONS, UNKNOWN
from flags import make_provider
from tests.conftest import ResolverFactory, make_settings
from tests.documents import batching_document, document, mode_flag

pytestmark = pytest.mark.fault

ENV = "CJ_ASSESSMENT_SERVICE_"
HUGE = "x" * 10_000
HUGE_UNICODE = "é" * 10_000
SANE = 400  # longest acceptable error line for one bad value


def shown(value: object) -> str:
    """The start of the value as an error message shows it (repr, possibly cut)."""
    return repr(value)[:40]


# --- settings ----------------------------------------------------------------------------

MODE_CHOICES = "not a batching mode; allowed: per_request, serial_bundle, provider_batch_api"
PROVIDER_CHOICES = "not a known LLM provider; allowed: openai, anthropic, google, openrouter, mock"
UNKNOWN_PROVIDER = "is not a known LLM provider; allowed: openai, anthropic"


@dataclass(frozen=True)
class Bad:
    field: str
    value: Any
    says: str  # what the message must tell about the allowed values


SETTINGS_CASES = [
    # wrong type, unknown enum member, unicode, control characters, 10 KB
    Bad("LLM_BATCHING_MODE", 3, MODE_CHOICES),
    Bad("LLM_BATCHING_MODE", None, MODE_CHOICES),
    Bad("LLM_BATCHING_MODE", ["per_request"], MODE_CHOICES),
    Bad("LLM_BATCHING_MODE", "pér_request", MODE_CHOICES),
    Bad("LLM_BATCHING_MODE", "per_request\x00", MODE_CHOICES),
    Bad("LLM_BATCHING_MODE", HUGE, MODE_CHOICES),
    Bad("LLM_BATCH_API_ALLOWED_PROVIDERS", 42, "valid list"),
    Bad("LLM_BATCH_API_ALLOWED_PROVIDERS", {"openai": True}, "valid list"),
    Bad("LLM_BATCH_API_ALLOWED_PROVIDERS", ["openai", 7], f"7 {UNKNOWN_PROVIDER}"),
    Bad("LLM_BATCH_API_ALLOWED_PROVIDERS", [None], f"None {UNKNOWN_PROVIDER}"),
    Bad("LLM_BATCH_API_ALLOWED_PROVIDERS", "openai;anthropic", UNKNOWN_PROVIDER),
    Bad("LLM_BATCH_API_ALLOWED_PROVIDERS", f"openai,{HUGE_UNICODE}", UNKNOWN_PROVIDER),
    Bad("DEFAULT_LLM_PROVIDER", None, PROVIDER_CHOICES),
    Bad("DEFAULT_LLM_PROVIDER", 3, PROVIDER_CHOICES),
    Bad("DEFAULT_LLM_PROVIDER", "\uff4f\uff50\uff45\uff4e\uff41\uff49", PROVIDER_CHOICES),
    Bad("DEFAULT_LLM_PROVIDER", "openai\x1b[0m", PROVIDER_CHOICES),
    Bad("LLM_BATCHING_FLAG_KEY", None, "valid string"),
    Bad("LLM_BATCHING_FLAG_KEY", 3, "valid string"),
    Bad("LLM_BATCH_API_ALLOWED_PROVIDERS_FLAG_KEY", "", "a flag key is 1-128 characters"),
    Bad("LLM_BATCHING_FLAG_KEY", "x" * 10_000, "a flag key is 1-128 characters"),
    Bad("LLM_BATCHING_FLAG_KEY", "flag\nkey", "a flag key is 1-128 characters"),
    Bad("LLM_BATCH_API_ALLOWED_PROVIDERS_FLAG_KEY", ["a"], "valid string"),
    Bad("FLAGS_PROVIDER", "redis", "'file', 'none', 'ofrep' or 'flagd'"),
    Bad("FLAGS_PROVIDER", None, "'file', 'none', 'ofrep' or 'flagd'"),
    Bad("FLAGS_FILE", 42, "not a valid path"),
    Bad("FLAGS_FILE", None, "not a valid path"),
    Bad("FLAGS_FILE", "flags.toml", "must end in .yaml, .yml or .json"),
    Bad("FLAGS_FILE", "flags", "must end in .yaml, .yml or .json"),
    Bad("FLAGS_OFREP_URL", "flagd:8016", "must be an absolute http:// or https:// URL"),
    # out of range, not a number, nan/inf
    Bad("FLAGS_POLL_INTERVAL_SECONDS", -0.5, "greater than 0"),
    Bad("FLAGS_POLL_INTERVAL_SECONDS", 61, "less than or equal to 60"),
    Bad("FLAGS_POLL_INTERVAL_SECONDS", "0.25s", "valid number"),
    Bad("FLAGS_POLL_INTERVAL_SECONDS", math.nan, "a finite number"),
    Bad("FLAGS_POLL_INTERVAL_SECONDS", math.inf, "a finite number"),
    Bad("FLAGS_EVALUATION_TIMEOUT_SECONDS", 0, "greater than 0"),
    Bad("FLAGS_EVALUATION_TIMEOUT_SECONDS", 31, "less than or equal to 30"),
    Bad("FLAGS_EVALUATION_TIMEOUT_SECONDS", "half a second", "valid number"),
    Bad("FLAGS_OFREP_URL", 42, "valid string"),
    Bad("FLAGS_OFREP_TOKEN", ["s3cret"], "valid string"),
    Bad("FLAGS_FLAGD_HOST", "", "at least 1 character"),
    Bad("FLAGS_FLAGD_HOST", 8013, "valid string"),
    Bad("FLAGS_FLAGD_PORT", 0, "greater than or equal to 1"),
    Bad("FLAGS_FLAGD_PORT", 65_536, "less than or equal to 65535"),
    Bad("FLAGS_FLAGD_PORT", "80a", "valid integer"),
    Bad("FLAGS_FLAGD_PORT", "\uff18\uff10\uff11\uff13", "valid integer"),
    Bad("FLAGS_FLAGD_PORT", 80.5, "fractional part"),
    Bad("RESOLUTION_CACHE_TTL_SECONDS", -1, "greater than or equal to 0"),
    Bad("RESOLUTION_CACHE_TTL_SECONDS", 86_401, "less than or equal to 86400"),
    Bad("RESOLUTION_CACHE_TTL_SECONDS", math.nan, "a finite number"),
    Bad("LPS_TIMEOUT_SECONDS", -math.inf, "a finite number"),
    Bad("RESOLUTION_CACHE_MAXSIZE", 0, "greater than or equal to 1"),
    Bad("RESOLUTION_CACHE_MAXSIZE", 10_000_001, "less than or equal to 10000000"),
    Bad("RESOLUTION_CACHE_MAXSIZE", 1.5, "fractional part"),
    Bad("RESOLUTION_CACHE_MAXSIZE", "1e3", "valid integer"),
    Bad("LLM_PROVIDER_SERVICE_URL", None, "valid string"),
    Bad("LLM_PROVIDER_SERVICE_URL", "lps:8080", "http:// or https://"),
    Bad("DEFAULT_LLM_MODEL", "", "at least 1 character"),
    Bad("DEFAULT_LLM_TEMPERATURE", 2.5, "less than or equal to 2"),
    Bad("DEFAULT_LLM_TEMPERATURE", True, "a bool is not a number"),
    Bad("LPS_QUEUE_FULL_COOLDOWN_SECONDS", -1, "greater than or equal to 0"),
    Bad("LPS_QUEUE_FULL_COOLDOWN_SECONDS", 3601, "less than or equal to 3600"),
    Bad("LLM_PROVIDER_CALLBACK_TOPIC", "", "at least 1 character"),
    Bad("LPS_TIMEOUT_SECONDS", 0, "greater than 0"),
    Bad("LPS_TIMEOUT_SECONDS", 601, "less than or equal to 600"),
    Bad("LPS_MAX_RETRIES", -1, "greater than or equal to 0"),
    Bad("LPS_MAX_RETRIES", 101, "less than or equal to 100"),
    Bad("LPS_MAX_RETRIES", "three", "valid integer"),
    Bad("LPS_MAX_CONCURRENCY", 0, "greater than or equal to 1"),
    Bad("LPS_MAX_CONCURRENCY", 1001, "less than or equal to 1000"),
    Bad("LPS_AUTH_TOKEN", 5, "valid string"),
    Bad("GUARD_ENABLED", "maybe", "valid boolean"),
    Bad("GUARD_ENABLED", None, "valid boolean"),
    Bad("GUARD_MAX_ERROR_RATE_INCREASE", 0, "greater than 0"),
    Bad("GUARD_MAX_ERROR_RATE_INCREASE", 1, "less than 1"),
    Bad("GUARD_MAX_ERROR_RATE_INCREASE", math.nan, "a finite number"),
    Bad("GUARD_MAX_ERROR_RATE_INCREASE", "5 %", "valid number"),
    Bad("GUARD_MIN_RESULTS", 9, "greater than or equal to 10"),
    Bad("GUARD_MIN_RESULTS", 10_000_001, "less than or equal to 10000000"),
    Bad("GUARD_MIN_RESULTS", 200.5, "fractional part"),
    Bad("GUARD_ALPHA", 0, "greater than 0"),
    Bad("GUARD_ALPHA", 0.5, "less than or equal to 0.2"),
    Bad("GUARD_ALPHA", math.inf, "a finite number"),
    Bad("GUARD_WAVE_MEMORY", 0, "greater than or equal to 1"),
    Bad("GUARD_WAVE_MEMORY", 10_000_001, "less than or equal to 10000000"),
    Bad("RESULT_DEDUP_MAXSIZE", 0, "greater than or equal to 1"),
    Bad("RESULT_DEDUP_MAXSIZE", 10_000_001, "less than or equal to 10000000"),
    Bad("RESULT_DEDUP_MAXSIZE", 1.5, "fractional part"),
]
SECRETS = {"FLAGS_OFREP_TOKEN", "LPS_AUTH_TOKEN"}


def test_every_setting_has_bad_values_in_the_table() -> None:
    assert {case.field for case in SETTINGS_CASES} == set(Settings.model_fields)


@pytest.mark.parametrize(
    "case", SETTINGS_CASES, ids=[f"{c.field}={shown(c.value)[:20]}" for c in SETTINGS_CASES]
)
def test_bad_setting_names_the_variable_the_value_and_what_is_allowed(case: Bad) -> None:
    with pytest.raises(SettingsError) as info:
        make_settings(**{case.field: case.value})
    message = str(info.value)
    line = next(line for line in message.splitlines() if f"{ENV}{case.field}=" in line)
    if case.field in SECRETS:
        assert f"{ENV}{case.field}='**********'" in line
        assert "s3cret" not in message
    else:
        assert f"{ENV}{case.field}={shown(case.value)}" in line
    assert case.says in line
    assert len(line) < SANE  # a 10 KB value is cut, not echoed


@pytest.mark.parametrize(
    ("name", "raw", "says"),
    [
        ("FLAGS_FLAGD_PORT", "", "valid integer"),
        ("LPS_MAX_RETRIES", "1.5", "valid integer"),
        ("LPS_MAX_CONCURRENCY", "0x10", "valid integer"),
        ("RESOLUTION_CACHE_TTL_SECONDS", "-1", "greater than or equal to 0"),
        ("FLAGS_EVALUATION_TIMEOUT_SECONDS", "inf", "a finite number"),
        ("FLAGS_EVALUATION_TIMEOUT_SECONDS", "nan", "a finite number"),
        ("FLAGS_POLL_INTERVAL_SECONDS", "Infinity", "a finite number"),
        ("LPS_TIMEOUT_SECONDS", "1e999", "a finite number"),
        ("LLM_BATCHING_MODE", "é" * 5_000, MODE_CHOICES),
        ("LLM_BATCH_API_ALLOWED_PROVIDERS", '["openai", 7]', f"7 {UNKNOWN_PROVIDER}"),
        ("LLM_BATCH_API_ALLOWED_PROVIDERS", '{"openai": true}', UNKNOWN_PROVIDER),
        ("LLM_BATCH_API_ALLOWED_PROVIDERS", "[" + '"openai",' * 2_000 + '"x"]', UNKNOWN_PROVIDER),
    ],
)
def test_bad_environment_value_names_the_variable_and_the_value(
    monkeypatch: pytest.MonkeyPatch, name: str, raw: str, says: str
) -> None:
    monkeypatch.setenv(f"{ENV}{name}", raw)
    with pytest.raises(SettingsError) as info:
        Settings(_env_file=None)
    message = str(info.value)
    assert f"{ENV}{name}={shown(raw)}" in message
    assert says in message
    assert len(message) < SANE + 40


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"CJ_ASSESSMENT_SERVICE_LLM_BATCHING_MODE=per_r\xffequest\n", id="bad byte"),
        pytest.param(b"CJ_ASSESSMENT_SERVICE_LLM_BATCHING_MODE=\xc3\n", id="truncated sequence"),
        pytest.param(
            "CJ_ASSESSMENT_SERVICE_LLM_BATCHING_MODE=per_request\n".encode("utf-16"), id="utf-16"
        ),
    ],
)
def test_a_dotenv_file_that_is_not_utf8_is_a_settings_error_naming_it(
    tmp_path: Path, content: bytes
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_bytes(content)
    with pytest.raises(SettingsError) as info:
        Settings(_env_file=env_file)
    message = str(info.value)
    assert message.startswith(f"{env_file}: not valid UTF-8 (byte 0x")
    assert "save the file as UTF-8" in message


@pytest.mark.parametrize("kind", ["fifo", "directory", "symlink-to-fifo"])
def test_a_dotenv_that_is_not_a_regular_file_is_refused_without_blocking(
    tmp_path: Path, kind: str
) -> None:
    """pydantic-settings would open a FIFO named .env and block on it: refused first."""
    env_file = tmp_path / ".env"
    if kind == "directory":
        env_file.mkdir()
    elif kind == "fifo":
        os.mkfifo(env_file)
    else:
        os.mkfifo(tmp_path / "pipe")
        env_file.symlink_to(tmp_path / "pipe")
    with pytest.raises(SettingsError) as info:
        Settings(_env_file=env_file)
    expected = "a directory" if kind == "directory" else "a FIFO (named pipe)"
    assert str(info.value) == (
        f"{env_file}: is {expected}, not a regular file; a .env file must be one"
    )


def test_the_cli_exits_2_on_a_dotenv_file_that_is_not_utf8(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_bytes(b"CJ_ASSESSMENT_SERVICE_FLAGS_FILE=fl\xe4gs.yaml\n")
    assert main(["explain", "--batch-id", "1"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "cj-batching explain: error: .env: not valid UTF-8 (byte 0xe4 at offset 35); "
        "save the file as UTF-8\n"
    )


TOKEN = "s3cret-t0ken"


@pytest.mark.parametrize("raw", [f"{TOKEN}\n", f"  {TOKEN}\r\n", f"\t{TOKEN} "])
def test_ofrep_token_whitespace_from_a_secret_file_is_stripped(raw: str) -> None:
    token = make_settings(FLAGS_OFREP_TOKEN=raw).FLAGS_OFREP_TOKEN
    assert token is not None
    assert token.get_secret_value() == TOKEN


@pytest.mark.parametrize("raw", ["", "  ", "\n"])
def test_a_blank_ofrep_token_means_no_token(raw: str) -> None:
    assert make_settings(FLAGS_OFREP_TOKEN=raw).FLAGS_OFREP_TOKEN is None


@pytest.mark.parametrize(
    "raw",
    [f"{TOKEN} extra", f"{TOKEN}\nline2", f"{TOKEN}\x00", "tökén", 'abc"def', "abc\\def"],
)
def test_an_ofrep_token_with_inner_whitespace_is_refused_without_showing_it(raw: str) -> None:
    with pytest.raises(SettingsError) as info:
        make_settings(FLAGS_OFREP_TOKEN=raw)
    message = str(info.value)
    assert f"{ENV}FLAGS_OFREP_TOKEN='**********' (from the arguments): a bearer token is" in (
        message
    )
    assert "(RFC 6750), without inner whitespace" in message
    assert TOKEN not in message
    assert "tökén" not in message


def test_the_ofrep_provider_sends_the_stripped_token() -> None:
    provider = make_provider("ofrep", url="http://127.0.0.1:9", token=f"  {TOKEN}\n")
    headers = provider.headers_factory()  # type: ignore[attr-defined]
    assert headers == {"Authorization": f"Bearer {TOKEN}"}


def test_make_provider_refuses_a_token_with_inner_whitespace_without_showing_it() -> None:
    with pytest.raises(ValueError, match="without inner whitespace") as info:
        make_provider("ofrep", url="http://127.0.0.1:9", token=f"{TOKEN} x")
    assert TOKEN not in str(info.value)


def test_every_bad_setting_is_listed_at_once() -> None:
    with pytest.raises(SettingsError) as info:
        make_settings(
            LLM_BATCHING_MODE="turbo", FLAGS_FLAGD_PORT=0, LPS_MAX_RETRIES=-4, FLAGS_FILE=None
        )
    lines = str(info.value).splitlines()
    assert len(lines) == 5  # the heading and one line per bad variable
    for name in ("LLM_BATCHING_MODE", "FLAGS_FLAGD_PORT", "LPS_MAX_RETRIES", "FLAGS_FILE"):
        assert any(line.strip().startswith(f"{ENV}{name}=") for line in lines)


# --- per-batch overrides and envelope hints ----------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("batch_size", "ten"),
        ("batch_size", 10.5),
        ("batch_size", True),
        ("batch_size", HUGE),
        ("max_concurrent_batches", math.nan),
        ("max_concurrent_batches", "2 batches"),
        ("max_concurrent_batches", [2]),
        ("partial_completion_threshold", "high"),
        ("partial_completion_threshold", math.nan),
        ("partial_completion_threshold", math.inf),
        ("llm_batching_mode_override", 3),
        ("llm_batching_mode_override", ["per_request"]),
        ("llm_batching_mode_override", "pér_request"),
        ("llm_batching_mode_override", "per_request\x00"),
        ("llm_batching_mode_override", HUGE_UNICODE),
    ],
)
def test_bad_override_names_the_field_and_the_value(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as info:
        BatchConfigOverrides(**{field: value})
    message = str(info.value)
    assert field in message
    assert f"input_value={repr(value)[:10]}" in message
    assert len(message) < SANE


MODE_HINT = "llm_batching_mode_hint"


@pytest.mark.parametrize(
    "hint",
    [
        "turbo",
        "provider_batchapi_TYPO",
        3,
        True,
        3.5,
        b"per_request",
        ["per_request"],
        {"mode": "per_request"},
        HUGE,
        HUGE_UNICODE,
        "pér_request",
        "per_request\x00",
        "\x1b[31mper_request\x1b[0m",
        "per\nrequest",
        "\u202eper_request",
    ],
)
def test_bad_hint_is_ignored_with_one_warning_naming_it(
    hint: object, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="cj_batching.overrides"):
        assert overrides_from_envelope_metadata({MODE_HINT: hint, "other": 1}) is None
    (record,) = caplog.records
    message = record.getMessage()
    assert MODE_HINT in message
    assert repr(hint)[:40] in message
    assert "allowed: per_request, serial_bundle, provider_batch_api" in message
    assert len(message) < SANE
    assert message.isprintable()  # control characters reach the log escaped, not raw


@pytest.mark.parametrize(
    ("metadata", "mode"),
    [
        ({MODE_HINT: " PER_REQUEST "}, LLMBatchingMode.PER_REQUEST),
        ({MODE_HINT: "serial_bundle\n"}, LLMBatchingMode.SERIAL_BUNDLE),
        ({MODE_HINT: LLMBatchingMode.PROVIDER_BATCH_API}, LLMBatchingMode.PROVIDER_BATCH_API),
        ({MODE_HINT: "\t"}, None),
        ({MODE_HINT: ""}, None),
        ({MODE_HINT: None}, None),
        ({"llm_batching_mode": "per_request"}, None),  # not the hint key
        (None, None),
    ],
)
def test_usable_or_absent_hints_are_normalised_silently(
    metadata: dict[str, Any] | None,
    mode: LLMBatchingMode | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="cj_batching.overrides"):
        overrides = overrides_from_envelope_metadata(metadata)
    assert (overrides.llm_batching_mode_override if overrides else None) is mode
    assert caplog.records == []


# --- batch contexts: sources, providers, request types, batch ids, overrides ---------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        # sources (empty means els; see the accepted table below)
        ({"cj_source": 3}, "cj_source"),
        ({"cj_source": b"els"}, "cj_source"),
        ({"cj_source": "els\x00"}, "cj_source"),
        ({"cj_source": "\u202eels"}, "cj_source"),
        ({"cj_source": "els\u200b"}, "cj_source"),
        ({"cj_source": "\uff45\uff4c\uff53"}, "cj_source"),
        ({"cj_source": "🙂"}, "cj_source"),
        ({"cj_source": "x" * 65}, "cj_source"),
        ({"cj_source": HUGE_UNICODE}, "cj_source"),
        # providers (None means the settings' default provider)
        ({"llm_provider": 3}, "llm_provider"),
        ({"llm_provider": True}, "llm_provider"),
        ({"llm_provider": b"openai"}, "llm_provider"),
        ({"llm_provider": "open ai"}, "llm_provider"),
        ({"llm_provider": "openai\x00"}, "llm_provider"),
        ({"llm_provider": "\uff4f\uff50\uff45\uff4e\uff41\uff49"}, "llm_provider"),
        ({"llm_provider": LLMBatchingMode.PER_REQUEST}, "llm_provider"),
        ({"llm_provider": "🙂" * 2_500}, "llm_provider"),
        # request types
        ({"request_type": None}, "request_type"),
        ({"request_type": 3}, "request_type"),
        ({"request_type": "cj_comparison\x00"}, "request_type"),
        ({"request_type": "\uff43\uff4a_retry"}, "request_type"),
        ({"request_type": HUGE}, "request_type"),
        # batch ids: str ids must match the documented pattern; other types are refused
        ({"cj_batch_id": "_x"}, "cj_batch_id"),
        ({"cj_batch_id": ".5"}, "cj_batch_id"),
        ({"cj_batch_id": "-1"}, "cj_batch_id"),
        ({"cj_batch_id": -1}, "cj_batch_id"),
        ({"cj_batch_id": 10**30}, "cj_batch_id"),
        ({"cj_batch_id": "1 2"}, "cj_batch_id"),
        ({"cj_batch_id": "١٢٣"}, "cj_batch_id"),
        ({"cj_batch_id": "\u212a1"}, "cj_batch_id"),
        ({"cj_batch_id": "42\x00"}, "cj_batch_id"),
        ({"cj_batch_id": "🙂"}, "cj_batch_id"),
        ({"cj_batch_id": HUGE}, "cj_batch_id"),
        ({"cj_batch_id": 42.0}, "cj_batch_id"),
        ({"cj_batch_id": math.nan}, "cj_batch_id"),
        ({"cj_batch_id": Decimal(42)}, "cj_batch_id"),
        ({"cj_batch_id": [42]}, "cj_batch_id"),
        ({"cj_batch_id": {"id": 42}}, "cj_batch_id"),
        # overrides must be a BatchConfigOverrides, not what it would be built from
        ({"overrides": "per_request"}, "overrides"),
        ({"overrides": {"llm_batching_mode_override": "per_request"}}, "overrides"),
        ({"overrides": LLMBatchingMode.PER_REQUEST}, "overrides"),
    ],
    ids=lambda value: shown(value)[:30] if isinstance(value, dict) else str(value),
)
def test_unusable_context_gets_a_value_error_naming_the_field(
    kwargs: dict[str, Any], field: str
) -> None:
    arguments = {"cj_batch_id": 1, **kwargs}
    with pytest.raises(ValueError, match=f"^{field}: ") as info:
        BatchContext(**arguments)
    message = str(info.value)
    assert repr(kwargs[field])[:40] in message
    assert len(message) < 300
    if field == "request_type" and isinstance(kwargs[field], str):  # examples that fit
        assert "e.g. cj_comparison, cj_retry" in message


SOURCES: list[tuple[str, str]] = [
    ("\t", "els"),
    ("ELS\r\n", "els"),
    (" Eng5_Runner ", "eng5_runner"),
    ("BOS", "bos"),
]
SOURCES += [("x" * 64, "x" * 64), ("new.svc:v2-beta", "new.svc:v2-beta")]
PROVIDERS: list[tuple[str | LLMProviderType | None, str | None]] = [
    (" OpenAI ", "openai"),
    ("MOCK\n", "mock"),
    (LLMProviderType.GOOGLE, "google"),
]
PROVIDERS += [(None, None)]
REQUEST_TYPES: list[tuple[str, str]] = [(" CJ_RETRY\n", "cj_retry"), ("custom-type", "custom-type")]
BATCH_IDS: list[tuple[int | str, str]] = [
    ("A", "A"),
    ("a" * 128, "a" * 128),
    ("9:9", "9:9"),
    ("BATCH.1-a_b", "BATCH.1-a_b"),
]
BATCH_IDS += [(0, "0"), (10**18 - 1, str(10**18 - 1)), ("42\n", "42")]


@pytest.mark.parametrize(("raw", "source"), SOURCES)
def test_odd_but_usable_sources_are_normalised(raw: str, source: str) -> None:
    assert BatchContext(1, raw).cj_source == source


@pytest.mark.parametrize(("raw", "provider"), PROVIDERS)
def test_odd_but_usable_providers_are_parsed(raw: Any, provider: str | None) -> None:
    parsed = BatchContext(1, llm_provider=raw).llm_provider
    assert (parsed.value if isinstance(parsed, LLMProviderType) else parsed) == provider


@pytest.mark.parametrize(("raw", "request_type"), REQUEST_TYPES)
def test_odd_but_usable_request_types_are_normalised(raw: str, request_type: str) -> None:
    assert BatchContext(1, request_type=raw).request_type == request_type


@pytest.mark.parametrize(("raw", "key"), BATCH_IDS)
def test_odd_but_usable_batch_ids_keep_a_string_key(raw: int | str, key: str) -> None:
    assert BatchContext(raw).batch_key == key


# --- whatever is accepted stays inside the bounded label sets ----------------------------

BOUNDED: dict[str, set[str]] = {
    "batching_mode": {mode.value for mode in LLMBatchingMode},
    "decided_by": set(DECIDED_BY),
    "cj_source": {"els", "bos", "eng5_runner", "other"},
    "llm_provider": {provider.value for provider in LLMProviderType},
    "error_code": set(FLAG_ERROR_CODES),
    "outcome": set(OUTCOMES),
    "reason": set(REASONS),
    "kind": set(TOKEN_KINDS),
}
# Result families also count results without (valid) batching keys, as `unknown`.
RESULT_EXTRA: dict[str, set[str]] = {"batching_mode": {UNKNOWN}, "decided_by": {UNKNOWN}}


def _series(registry: CollectorRegistry) -> Iterator[tuple[str, dict[str, str], float]]:
    for family in registry.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                yield sample.name, sample.labels, sample.value


def test_odd_inputs_only_ever_reach_bounded_label_values(
    make_resolver: ResolverFactory,
    metrics: BatchingMetrics,
    registry: CollectorRegistry,
) -> None:
    series_before = {(name, tuple(sorted(labels.items()))) for name, labels, _ in _series(registry)}
    hints = [" PER_REQUEST ", "serial_bundle\n", "provider_batch_api", "turbo", HUGE, 3, None]
    overrides = [overrides_from_envelope_metadata({MODE_HINT: hint}) for hint in hints]
    main, _ = make_resolver(batching_document())
    broken, _ = make_resolver(  # a flag that fails: INVALID_MODE and FLAG_NOT_FOUND
        document(mode_flag(default_variant="x", variants={"x": "provider_batchapi_TYPO"}))
    )
    resolved = 0
    for number, (raw_id, _) in enumerate(BATCH_IDS):
        for raw_source, _ in SOURCES:
            for raw_provider, _ in PROVIDERS:
                for raw_type, _ in REQUEST_TYPES:
                    for override in overrides:
                        context = BatchContext(raw_id, raw_source, raw_provider, raw_type, override)
                        resolution = main.resolve(context)
                        assert resolution.mode in LLMBatchingMode
                        resolution = broken.resolve(context)
                        assert resolution.decided_by in ("override", "default")
                        resolved += 2
                        metrics.record_requests(resolution.mode, number + 1)
                        metrics.record_batch_started(resolution.mode)
    odd_codes = ["", HUGE, HUGE_UNICODE, "général", "GENERAL\n", "\x00", "general", "TIMEOUT "]
    for code in odd_codes:
        metrics.record_flag_error(code)

    series = list(_series(registry))
    for name, labels, _ in series:
        for label, value in labels.items():
            extra = RESULT_EXTRA.get(label, set()) if "_comparison_" in name else set()
            assert value in BOUNDED[label] | extra, (name, label, value[:40])
    # Nothing new appeared: every series existed, at 0, before the first odd input.
    assert {(name, tuple(sorted(labels.items()))) for name, labels, _ in series} == series_before
    # ...and the odd inputs were really counted, in the catch-all values.
    assert registry.get_sample_value(
        "cj_llm_batching_flag_errors_total", {"error_code": "OTHER"}
    ) == len(odd_codes)
    fresh = sum(v for n, _, v in series if n == "cj_llm_batching_resolutions_total")
    others = sum(
        v
        for n, labels, v in series
        if n == "cj_llm_batching_resolutions_total" and labels["cj_source"] == "other"
    )
    assert 0 < others < fresh <= resolved
    assert registry.get_sample_value(
        "cj_llm_batching_flag_errors_total", {"error_code": "INVALID_MODE"}
    )
    assert registry.get_sample_value(
        "cj_llm_batching_guardrail_downgrades_total", {"llm_provider": "google"}
    )
