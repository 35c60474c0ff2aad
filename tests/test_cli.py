"""The command line, as an Ops engineer uses it: output, JSON, exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cj_batching.cli import main

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ROOT / "flags.yaml"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def explain_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    code, out, _ = run(capsys, "explain", "--flags", str(FLAGS), "--json", *argv)
    assert code == 0
    result: dict[str, object] = json.loads(out)
    return result


def test_quickstart_explain_shows_every_link(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "explain",
        "--batch-id",
        "42",
        "--source",
        "eng5_runner",
        "--provider",
        "anthropic",
        "--flags",
        str(FLAGS),
    )
    assert code == 0
    for link in (
        "1 override  none",
        "2 flag      llm-batching-mode: variant provider_batch_api",
        "3 default   serial_bundle",
        "4 guardrail anthropic may use",
        "=> provider_batch_api (decided by flag)",
        "version 2026-11-25.1",
    ):
        assert link in out


def test_explain_json(capsys: pytest.CaptureFixture[str]) -> None:
    result = explain_json(
        capsys, "--batch-id", "42", "--source", "eng5_runner", "--provider", "google"
    )
    assert result["mode"] == "serial_bundle"
    assert result["requested_mode"] == "provider_batch_api"
    assert result["decided_by"] == "flag"
    assert result["guardrail_applied"] is True
    assert result["flag_variant"] == "provider_batch_api"
    assert result["flag_reason"] == "TARGETING_MATCH"
    assert result["flag_error"] is None
    assert result["allowed_providers"] == ["openai", "anthropic"]
    assert result["cj_batch_id"] == "42"


def test_explain_override_accepts_alias(capsys: pytest.CaptureFixture[str]) -> None:
    result = explain_json(
        capsys, "--batch-id", "1", "--source", "eng5_runner", "--override", "SERIAL_BUNDLE"
    )
    assert (result["mode"], result["decided_by"]) == ("serial_bundle", "override")


def test_explain_with_env_default(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CJ_ASSESSMENT_SERVICE_LLM_BATCHING_MODE", "per_request")
    result = explain_json(capsys, "--batch-id", "1", "--source", "bos")
    assert (result["mode"], result["decided_by"], result["flag_reason"]) == (
        "per_request",
        "default",
        "DEFAULT",
    )


def test_explain_on_a_missing_flag_file_falls_back_and_says_why(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    code, out, _ = run(capsys, "explain", "--batch-id", "1", "--flags", str(tmp_path / "x.yaml"))
    assert code == 0
    assert "flagd-file (ERROR)" in out
    assert "file not found" in out
    assert "=> serial_bundle (decided by default)" in out


def test_explain_with_flags_provider_none(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CJ_ASSESSMENT_SERVICE_FLAGS_PROVIDER", "none")
    code, out, _ = run(capsys, "explain", "--batch-id", "1", "--source", "eng5_runner", "--json")
    result = json.loads(out)
    assert (code, result["decided_by"], result["flag_error"]) == (0, "default", None)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--source", "bad source"], "cj_source: 'bad source' is not allowed"),
        (["--provider", "azure"], "llm_provider: 'azure' is not a known LLM provider"),
        (["--override", "turbo"], "mode: 'turbo' is not a batching mode"),
    ],
)
def test_explain_bad_input_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    try:
        code = main(["explain", "--batch-id", "1", *argv])
    except SystemExit as exited:  # argparse rejects --override itself
        code = int(exited.code or 0)
    assert code == 2
    assert message in capsys.readouterr().err


def test_invalid_settings_are_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CJ_ASSESSMENT_SERVICE_LLM_BATCHING_MODE", "turbo")
    code, _, err = run(capsys, "explain", "--batch-id", "1")
    assert code == 2
    assert "CJ_ASSESSMENT_SERVICE_LLM_BATCHING_MODE='turbo'" in err


def test_validate_the_shipped_flags(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", str(FLAGS))
    assert code == 0
    assert "valid (2 flag(s), version 2026-11-25.1)" in out


def test_validate_defaults_to_the_settings_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CJ_ASSESSMENT_SERVICE_FLAGS_FILE", str(FLAGS))
    assert run(capsys, "validate")[0] == 0


def test_validate_lists_every_problem(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    doc = yaml.safe_load(FLAGS.read_text())
    flag = doc["flags"]["llm-batching-mode"]
    flag["defaultVariant"] = "missing"
    flag["variants"]["per_request"] = "per_reqest"
    doc["$evaluators"].pop("from_els")
    path = tmp_path / "flags.yaml"
    path.write_text(yaml.safe_dump(doc))
    code, out, _ = run(capsys, "validate", str(path))
    assert code == 1
    assert "/flags/llm-batching-mode/defaultVariant" in out
    assert "from_els" in out
    # The batching checks run only on structurally valid documents: fix and re-check.
    flag["defaultVariant"] = None
    doc["$evaluators"]["from_els"] = {"==": [1, 1]}
    path.write_text(yaml.safe_dump(doc))
    code, out, _ = run(capsys, "validate", str(path))
    assert code == 1
    assert (
        "/flags/llm-batching-mode/variants/per_request: 'per_reqest' is not a batching mode" in out
    )


@pytest.mark.parametrize("name", ["missing.yaml", "flags.toml", "."])
def test_validate_usage_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    if name.endswith(".toml"):
        path.write_text("x = 1")
    code, _, err = run(capsys, "validate", str(path))
    assert code == 2
    assert err.startswith("cj-batching validate: error:")


@pytest.mark.parametrize("command", ["explain", "validate"])
def test_help(capsys: pytest.CaptureFixture[str], command: str) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    assert "CJ_ASSESSMENT_SERVICE_FLAGS_FILE" in capsys.readouterr().out


def test_console_script_is_installed() -> None:
    script = shutil.which("cj-batching", path=str(Path(sys.executable).parent))
    assert script is not None
    done = subprocess.run(
        [
            script,
            "explain",
            "--batch-id",
            "42",
            "--source",
            "eng5_runner",
            "--provider",
            "anthropic",
            "--flags",
            str(FLAGS),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["mode"] == "provider_batch_api"
