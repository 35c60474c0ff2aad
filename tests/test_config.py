"""Modes, providers, settings, overrides and batch contexts: parsing and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from cj_batching import (
    BatchConfigOverrides,
    BatchContext,
    LLMBatchingMode,
    LLMProviderType,
    Settings,
    SettingsError,
    get_effective_batching_mode,
    parse_mode,
    parse_provider,
)

from .conftest import make_settings

ENV = "CJ_ASSESSMENT_SERVICE_"


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ("per_request", LLMBatchingMode.PER_REQUEST),
        ("  PROVIDER_BATCH_API ", LLMBatchingMode.PROVIDER_BATCH_API),
        ("Provider_Serial_Bundle", LLMBatchingMode.SERIAL_BUNDLE),
        ("serial_bundle", LLMBatchingMode.SERIAL_BUNDLE),
        (" SERIAL_BUNDLE\n", LLMBatchingMode.SERIAL_BUNDLE),
        ("provider_serial_bundle", LLMBatchingMode.SERIAL_BUNDLE),
        (" PROVIDER_SERIAL_BUNDLE ", LLMBatchingMode.SERIAL_BUNDLE),
    ],
)
def test_modes_parse_leniently_everywhere(text: str, mode: LLMBatchingMode) -> None:
    assert parse_mode(text) is mode
    assert LLMBatchingMode(text) is mode
    assert BatchConfigOverrides(llm_batching_mode_override=text).llm_batching_mode_override is mode  # type: ignore[arg-type]
    assert make_settings(LLM_BATCHING_MODE=text).LLM_BATCHING_MODE is mode


def test_canonical_values_are_emitted() -> None:
    assert LLMBatchingMode("provider_serial_bundle").value == "serial_bundle"
    assert [m.value for m in LLMBatchingMode] == [
        "per_request",
        "serial_bundle",
        "provider_batch_api",
    ]
    assert [p.value for p in LLMProviderType] == [
        "openai",
        "anthropic",
        "google",
        "openrouter",
        "mock",
    ]


@pytest.mark.parametrize("bad", ["", "batch", "provider batch api", None, 3, "x" * 10_000])
def test_bad_mode_error_names_field_value_and_choices(bad: object) -> None:
    with pytest.raises(ValueError, match="override") as info:
        parse_mode(bad, field="override")
    message = str(info.value)
    assert "per_request, serial_bundle, provider_batch_api" in message
    assert "provider_serial_bundle (= serial_bundle)" in message
    assert len(message) < 300  # a 10 KB value is cut, not echoed


def test_old_member_name_is_the_same_member() -> None:
    assert LLMBatchingMode.PROVIDER_SERIAL_BUNDLE is LLMBatchingMode.SERIAL_BUNDLE
    assert len(LLMBatchingMode) == 3


def test_bad_provider_error() -> None:
    with pytest.raises(
        ValueError,
        match=r"llm_provider: 'azure' is not a known LLM provider; "
        r"allowed: openai, anthropic, google, openrouter, mock",
    ):
        parse_provider("azure", field="llm_provider")


def test_settings_defaults() -> None:
    settings = make_settings()
    assert settings.LLM_BATCHING_MODE is LLMBatchingMode.SERIAL_BUNDLE
    assert settings.LLM_BATCH_API_ALLOWED_PROVIDERS == [
        LLMProviderType.OPENAI,
        LLMProviderType.ANTHROPIC,
    ]
    assert settings.DEFAULT_LLM_PROVIDER is LLMProviderType.OPENAI
    assert settings.LLM_BATCHING_FLAG_KEY == "llm-batching-mode"
    assert settings.LLM_BATCH_API_ALLOWED_PROVIDERS_FLAG_KEY == "llm-batch-api-allowed-providers"
    assert ("file", Path("flags.yaml")) == (settings.FLAGS_PROVIDER, settings.FLAGS_FILE)
    assert settings.FLAGS_POLL_INTERVAL_SECONDS == 0.25
    assert (settings.RESOLUTION_CACHE_TTL_SECONDS, settings.RESOLUTION_CACHE_MAXSIZE) == (
        30,
        10_000,
    )


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV}LLM_BATCHING_MODE", "Serial_Bundle")
    monkeypatch.setenv(f"{ENV}DEFAULT_LLM_PROVIDER", "ANTHROPIC")
    monkeypatch.setenv(f"{ENV}FLAGS_PROVIDER", "none")
    monkeypatch.setenv(f"{ENV}RESOLUTION_CACHE_TTL_SECONDS", "2.5")
    settings = Settings()
    assert settings.LLM_BATCHING_MODE is LLMBatchingMode.SERIAL_BUNDLE
    assert settings.DEFAULT_LLM_PROVIDER is LLMProviderType.ANTHROPIC
    assert settings.FLAGS_PROVIDER == "none"
    assert settings.RESOLUTION_CACHE_TTL_SECONDS == 2.5


def test_settings_from_dotenv_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"{ENV}LLM_BATCHING_MODE=per_request\n")
    assert Settings(_env_file=env_file).LLM_BATCHING_MODE is LLMBatchingMode.PER_REQUEST


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('["openai", "google"]', ["openai", "google"]),
        ("openai, GOOGLE ,mock", ["openai", "google", "mock"]),
        ("openai,openai", ["openai"]),
        ("", []),
        ("[]", []),
        ("  ", []),
    ],
)
def test_allowed_providers_accept_json_or_commas(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: list[str]
) -> None:
    monkeypatch.setenv(f"{ENV}LLM_BATCH_API_ALLOWED_PROVIDERS", raw)
    assert [p.value for p in Settings().LLM_BATCH_API_ALLOWED_PROVIDERS] == expected


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        (
            "LLM_BATCHING_MODE",
            "turbo",
            "not a batching mode; allowed: per_request, serial_bundle, provider_batch_api",
        ),
        ("LLM_BATCH_API_ALLOWED_PROVIDERS", "openai,azure", "openai, anthropic, google"),
        ("LLM_BATCH_API_ALLOWED_PROVIDERS", "[openai", '["openai"] or openai,anthropic'),
        ("DEFAULT_LLM_PROVIDER", "azure", "allowed: openai, anthropic"),
        ("FLAGS_PROVIDER", "redis", "'file', 'none', 'ofrep' or 'flagd'"),
        ("FLAGS_POLL_INTERVAL_SECONDS", "0", "greater than 0"),
        ("RESOLUTION_CACHE_TTL_SECONDS", "abc", "valid number"),
        ("RESOLUTION_CACHE_MAXSIZE", "-5", "greater than or equal to 1"),
        ("LLM_BATCHING_FLAG_KEY", "", "a flag key is 1-128 characters"),
        ("LLM_BATCHING_FLAG_KEY", "bad key", "a flag key is 1-128 characters"),
        ("FLAGS_FILE", "flags.toml", "must end in .yaml, .yml or .json"),
        ("FLAGS_OFREP_URL", "flagd:8016", "must be an absolute http:// or https:// URL"),
    ],
)
def test_invalid_setting_names_env_var_value_and_allowed(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, allowed: str
) -> None:
    monkeypatch.setenv(f"{ENV}{name}", value)
    with pytest.raises(SettingsError) as info:
        Settings()
    message = str(info.value)
    assert f"{ENV}{name}={value!r}" in message
    assert allowed in message


def test_secret_settings_are_masked_in_errors_and_reprs() -> None:
    with pytest.raises(SettingsError) as info:
        make_settings(FLAGS_OFREP_TOKEN=987654321)
    assert f"{ENV}FLAGS_OFREP_TOKEN='**********'" in str(info.value)
    assert "987654321" not in str(info.value)
    assert "s3cret-token" not in repr(make_settings(FLAGS_OFREP_TOKEN="s3cret-token"))


def test_flags_provider_kind_is_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV}FLAGS_PROVIDER", " None ")
    assert Settings().FLAGS_PROVIDER == "none"


def test_settings_are_immutable() -> None:
    settings = make_settings()
    with pytest.raises(ValidationError):
        settings.LLM_BATCHING_MODE = LLMBatchingMode.PER_REQUEST  # type: ignore[misc]


# --- overrides and the flag-free helper ------------------------------------------------


def test_effective_mode_without_override_is_env_default() -> None:
    settings = make_settings()
    assert get_effective_batching_mode(settings, None) is LLMBatchingMode.SERIAL_BUNDLE
    assert get_effective_batching_mode(settings, BatchConfigOverrides(batch_size=50)) is (
        LLMBatchingMode.SERIAL_BUNDLE
    )


def test_effective_mode_with_override() -> None:
    overrides = BatchConfigOverrides(llm_batching_mode_override=LLMBatchingMode.PER_REQUEST)
    assert get_effective_batching_mode(make_settings(), overrides) is LLMBatchingMode.PER_REQUEST


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("batch_size", 9),
        ("batch_size", 201),
        ("max_concurrent_batches", 0),
        ("max_concurrent_batches", 6),
        ("partial_completion_threshold", 0.49),
        ("partial_completion_threshold", 1.01),
        ("llm_batching_mode_override", "turbo"),
        ("llm_batching_mod_override", "per_request"),
    ],
)
def test_override_bounds(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        BatchConfigOverrides(**{field: value})  # type: ignore[arg-type]


def test_override_bounds_are_inclusive() -> None:
    BatchConfigOverrides(batch_size=10, max_concurrent_batches=5, partial_completion_threshold=0.5)
    BatchConfigOverrides(batch_size=200, max_concurrent_batches=1, partial_completion_threshold=1)


# --- batch contexts --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "normalised"),
    [
        ("els", "els"),
        ("  BOS ", "bos"),
        ("", "els"),
        ("   ", "els"),
        ("ENG5_Runner", "eng5_runner"),
        ("new-service", "new-service"),
    ],
)
def test_source_is_normalised(source: str, normalised: str) -> None:
    assert BatchContext(1, source).cj_source == normalised


@pytest.mark.parametrize(
    "source",
    ["x" * 10_000, "bad\nsource", "\x00", "é-service", "a b", "-leading", None],
)
def test_absurd_sources_get_a_clear_error(source: object) -> None:
    with pytest.raises(ValueError, match="cj_source") as info:
        BatchContext(1, source)  # type: ignore[arg-type]
    assert len(str(info.value)) < 300


@pytest.mark.parametrize(
    ("provider", "parsed"),
    [
        ("OpenAI", LLMProviderType.OPENAI),
        (LLMProviderType.MOCK, LLMProviderType.MOCK),
        (None, None),
    ],
)
def test_provider_is_parsed(provider: object, parsed: LLMProviderType | None) -> None:
    assert BatchContext(1, llm_provider=provider).llm_provider is parsed  # type: ignore[arg-type]


@pytest.mark.parametrize("provider", ["azure", "", "x" * 10_000, "\x07"])
def test_unknown_provider_gets_a_clear_error(provider: str) -> None:
    with pytest.raises(ValueError, match=r"llm_provider.*allowed: openai"):
        BatchContext(1, llm_provider=provider)


@pytest.mark.parametrize(
    ("batch_id", "key"), [(42, "42"), (" 42 ", "42"), ("batch-7a", "batch-7a"), (0, "0")]
)
def test_batch_ids(batch_id: int | str, key: str) -> None:
    assert BatchContext(batch_id).batch_key == key


@pytest.mark.parametrize(
    "batch_id", ["", "  ", "a" * 129, "x\ny", True, 4.2, None, b"42", -1, 10**18]
)
def test_unusable_batch_ids_get_a_clear_error(batch_id: object) -> None:
    with pytest.raises(ValueError, match="cj_batch_id"):
        BatchContext(batch_id)  # type: ignore[arg-type]


def test_request_type_is_normalised_and_checked() -> None:
    assert BatchContext(1, request_type=" CJ_RETRY ").request_type == "cj_retry"
    with pytest.raises(ValueError, match="request_type"):
        BatchContext(1, request_type="")


def test_context_is_frozen() -> None:
    context = BatchContext(1)
    with pytest.raises(AttributeError):
        context.cj_source = "bos"  # type: ignore[misc]


@pytest.mark.parametrize("metadata", [None, [], "llm_batching_mode_hint", 42])
def test_envelope_metadata_that_is_not_a_mapping_gives_no_override(metadata: object) -> None:
    from cj_batching import overrides_from_envelope_metadata

    assert overrides_from_envelope_metadata(metadata) is None  # type: ignore[arg-type]


def test_an_ofrep_url_with_credentials_is_refused_without_showing_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(f"{ENV}FLAGS_OFREP_URL", "http://cj:hunter2@flagd:8016")
    with pytest.raises(SettingsError) as info:
        Settings(_env_file=None)
    text = str(info.value)
    assert f"{ENV}FLAGS_OFREP_URL='**********' (from the environment): must not carry" in text
    assert "FLAGS_OFREP_TOKEN" in text
    assert "hunter2" not in text
