"""Settings name what is wrong: unknown CJ_ASSESSMENT_SERVICE_* names, and where a bad
value came from (the environment or .env)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from cj_batching import Settings, SettingsError

PREFIX = "CJ_ASSESSMENT_SERVICE_"


def warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "cj_batching.settings"]


def test_an_unknown_variable_gets_one_warning_naming_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(f"{PREFIX}LLM_BATCHING_MOD", "per_request")
    with caplog.at_level(logging.WARNING, logger="cj_batching.settings"):
        Settings(_env_file=None)
    (record,) = warnings(caplog)
    message = record.getMessage()
    assert (
        f"{PREFIX}LLM_BATCHING_MOD (from the environment) is not a cj-batching setting" in message
    )
    assert f"did you mean {PREFIX}LLM_BATCHING_MODE?" in message
    assert "per_request" not in message  # names only: a value may be a secret


def test_an_unknown_dotenv_name_is_named_with_its_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"{PREFIX}LPS_TOKEN=secret\nOTHER_SERVICE_X=1\n")
    with caplog.at_level(logging.WARNING, logger="cj_batching.settings"):
        Settings(_env_file=env_file)
    (record,) = warnings(caplog)
    assert f"{PREFIX}LPS_TOKEN (from .env file {env_file})" in record.getMessage()
    assert "secret" not in record.getMessage()


def test_known_names_in_any_case_pass_silently(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(f"{PREFIX}llm_batching_mode", "per_request")
    with caplog.at_level(logging.WARNING, logger="cj_batching.settings"):
        settings = Settings(_env_file=None)
    assert settings.LLM_BATCHING_MODE.value == "per_request"
    assert warnings(caplog) == []


def test_a_bad_environment_value_says_it_came_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(f"{PREFIX}LPS_MAX_RETRIES", "many")
    with pytest.raises(SettingsError, match=r"LPS_MAX_RETRIES='many' \(from the environment\)"):
        Settings(_env_file=None)


def test_a_bad_dotenv_value_says_it_came_from_dotenv(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"{PREFIX}LPS_MAX_RETRIES=many\n")
    with pytest.raises(SettingsError, match=rf"\(from .env file {env_file}\)"):
        Settings(_env_file=env_file)


def test_the_environment_wins_over_dotenv_in_the_message_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"{PREFIX}LPS_MAX_RETRIES=2\n")
    monkeypatch.setenv(f"{PREFIX}LPS_MAX_RETRIES", "many")
    with pytest.raises(SettingsError, match=r"\(from the environment\)"):
        Settings(_env_file=env_file)


@pytest.mark.parametrize("name", ["DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "LOG_LEVEL"])
def test_the_host_services_own_settings_pass_without_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    """The CJ service reads its own settings under the same prefix: no noise for them."""
    monkeypatch.setenv(f"{PREFIX}{name}", "x")
    with caplog.at_level(logging.WARNING, logger="cj_batching.settings"):
        Settings(_env_file=None)
    assert warnings(caplog) == []


@pytest.mark.parametrize("name", ["GUARD_ENABLE", "FLAGS_PATH", "RESOLUTION_TTL"])
def test_an_unknown_name_in_our_families_gets_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    monkeypatch.setenv(f"{PREFIX}{name}", "x")
    with caplog.at_level(logging.WARNING, logger="cj_batching.settings"):
        Settings(_env_file=None)
    (record,) = warnings(caplog)
    assert f"{PREFIX}{name} (from the environment)" in record.getMessage()
