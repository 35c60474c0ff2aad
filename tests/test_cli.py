"""The command line, as an Ops engineer uses it: output, JSON, exit codes, usage errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from cj_batching.cli import main

from .documents import batching_document

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ROOT / "flags.yaml"
SHIPPED_VERSION = yaml.safe_load(FLAGS.read_text())["metadata"]["version"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def explain_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    code, out, _ = run(capsys, "explain", "--flags", str(FLAGS), "--json", *argv)
    assert code == 0
    result: dict[str, object] = json.loads(out)
    return result


# --- explain -----------------------------------------------------------------------------


def test_quickstart_explain_shows_every_link(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        *("explain", "--batch-id", "42", "--source", "eng5_runner", "--provider", "anthropic"),
        *("--flags", str(FLAGS)),
    )
    assert code == 0
    for link in (
        "as a replica starting now would",
        f"flagd-file (READY) {FLAGS}, version {SHIPPED_VERSION}",
        "1 override  none",
        "2 flag      llm-batching-mode: variant provider_batch_api",
        "3 default   serial_bundle",
        "4 guardrail anthropic may use",
        "=> provider_batch_api (decided by flag)",
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
    assert result["flags"] == {
        "provider": "flagd-file",
        "status": "READY",
        "path": str(FLAGS),
        "version": SHIPPED_VERSION,
        "problems": [],
    }


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


def test_explain_without_the_settings_file_falls_back_and_says_why(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A replica starting with no flag file uses the env default: explain shows exactly that.
    monkeypatch.setenv("CJ_ASSESSMENT_SERVICE_FLAGS_FILE", str(tmp_path / "flags.yaml"))
    code, out, _ = run(capsys, "explain", "--batch-id", "1")
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


@pytest.mark.parametrize("source", ["bso", "ELS-typo"])
def test_explain_warns_on_an_unknown_source(
    capsys: pytest.CaptureFixture[str], source: str
) -> None:
    code, out, err = run(
        capsys, "explain", "--batch-id", "1", "--source", source, "--flags", str(FLAGS)
    )
    assert code == 0
    assert "=> serial_bundle (decided by default)" in out
    assert f"warning: cj_source {source.lower()!r} is not a known source" in err
    assert "counted as 'other'" in err


def test_explain_warns_on_an_unknown_request_type(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "explain", "--batch-id", "1", "--request-type", "cj_retyr", "--flags", str(FLAGS)
    )
    assert code == 0
    assert "request type 'cj_retyr' is not one CJ sends (cj_comparison, cj_retry)" in err


def test_known_sources_pass_silently(capsys: pytest.CaptureFixture[str]) -> None:
    _, _, err = run(
        capsys, "explain", "--batch-id", "1", "--source", " BOS ", "--flags", str(FLAGS)
    )
    assert err == ""


# --- usage errors: one line, exit 2, never a traceback -----------------------------------


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    return path


def _device(tmp_path: Path) -> Path:
    path = tmp_path / "device.yaml"
    path.symlink_to("/dev/zero")
    return path


USAGE_ERRORS = [
    (["rollout", "--sources", ""], "--sources: give at least one source"),
    (["rollout", "--sources", " , "], "--sources: give at least one source"),
    (["rollout", "--source", ""], "--source: give at least one source"),
    (["rollout", "--source", "els", "--flags", "x.txt"], "--flags: 'x.txt': unsupported extension"),
    (["rollout", "--source", "els", "--flags", ""], "--flags: empty path"),
    (["rollout", "--source", "els", "--batches", "0"], "--batches: 0 must be in 1..10000000"),
    (["rollout", "--source", "els", "--batches", "ten"], "--batches: 'ten' is not a whole number"),
    (["rollout", "--source", "els", "--first-batch-id", "b-7"], "not a numeric batch id"),
    (["rollout", "--source", "els", "--first-batch-id", "-1"], "cj_batch_id"),
    (
        ["rollout", "--source", "els", "--first-batch-id", str(10**18 - 5), "--batches", "10"],
        "must be in 0..10**18-1",
    ),
    (["rollout", "--source", "bad source"], "cj_source: 'bad source' is not allowed"),
    (["rollout", "--source", "els", "--provider", "azure"], "llm_provider: 'azure'"),
    (["rollout"], "one of the arguments --source --sources is required"),
    (["explain"], "the following arguments are required: --batch-id"),
    (["explain", "--batch-id", ""], "cj_batch_id: '' is not a usable batch id"),
    (["explain", "--batch-id", "1", "--flags", "flags.toml"], "unsupported extension '.toml'"),
    (["explain", "--batch-id", "1", "--flags", "missing.yaml"], "missing.yaml: does not exist"),
    (["explain", "--batch-id", "1", "--source", "bad source"], "cj_source: 'bad source'"),
    (["explain", "--batch-id", "1", "--source", ""], "--source: '': give a source, e.g. els"),
    (["explain", "--batch-id", "1", "--source", " "], "--source: ' ': give a source, e.g. els"),
    (["explain", "--batch-id", "1", "--provider", "azure"], "is not a known LLM provider"),
    (["explain", "--batch-id", "1", "--override", "turbo"], "mode: 'turbo' is not a batching mode"),
    (["show", "--flags", "missing.yaml"], "missing.yaml: does not exist"),
    (["show", "--flags", "."], "--flags: '.': unsupported extension"),
    (["validate", "missing.yaml"], "missing.yaml: does not exist"),
    (["validate", "flags.toml"], "unsupported extension '.toml'"),
    (["validate", FLAGS.name, "--against", "missing.yaml"], "does not exist"),
    (["diff", "missing.yaml", "other.yaml"], "missing.yaml: does not exist"),
    (["diff", "a.yaml"], "the following arguments are required: NEW"),
    (["diff", "a.yaml", "b.yaml", "--batches", "-3"], "--batches: -3 must be in 1.."),
    (["watch", "--flags", "missing.yaml"], "missing.yaml: does not exist"),
    (["serve-metrics", "--port", "70000"], "--port: 70000 is not a TCP port"),
    (["completion", "cmd.exe"], "invalid choice: 'cmd.exe'"),
    (["nonsense"], "invalid choice: 'nonsense'"),
    ([], "the following arguments are required: COMMAND"),
]


@pytest.mark.parametrize(("argv", "message"), USAGE_ERRORS, ids=lambda v: " ".join(v)[:50])
def test_bad_arguments_are_one_line_usage_errors(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(ROOT)  # flags.yaml is here; missing.yaml is not
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert message in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("cj-batching")
    assert "Traceback" not in err


NOT_FILES = {"FIFO": (_fifo, "is a FIFO (named pipe), not a regular file")}
NOT_FILES["device"] = (_device, "is a character device, not a regular file")


def _commands(path: Path) -> dict[str, list[str]]:
    return {
        "explain": ["explain", "--batch-id", "1", "--flags", str(path)],
        "rollout": ["rollout", "--source", "els", "--flags", str(path)],
        "show": ["show", "--flags", str(path)],
        "validate": ["validate", str(path)],
        "validate --against": ["validate", str(FLAGS), "--against", str(path)],
        "diff": ["diff", str(FLAGS), str(path)],
        "watch": ["watch", "--flags", str(path)],
    }


def _run_bounded(argv: list[str]) -> int:
    """main(argv) in a thread: a hang fails the test instead of hanging the suite."""
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(main(argv)), daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), f"{argv} did not return within 10 s"
    return result[0]


@pytest.mark.parametrize("kind", NOT_FILES)
@pytest.mark.parametrize("command", _commands(Path("x.yaml")))
def test_a_named_fifo_or_device_is_a_usage_error_not_a_hang(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kind: str, command: str
) -> None:
    make, what = NOT_FILES[kind]
    path = make(tmp_path)
    assert _run_bounded(_commands(path)[command]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {what}" in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("command", ["explain", "rollout", "show", "validate", "watch"])
def test_a_fifo_as_the_settings_flag_file_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    command: str,
) -> None:
    path = _fifo(tmp_path)
    monkeypatch.setenv("CJ_ASSESSMENT_SERVICE_FLAGS_FILE", str(path))
    argv = {"explain": ["--batch-id", "1"], "rollout": ["--source", "els"]}.get(command, [])
    assert _run_bounded([command, *argv]) == 2
    assert f"{path}: is a FIFO (named pipe), not a regular file" in capsys.readouterr().err


def test_a_directory_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "flags.yaml"
    path.mkdir()
    code, _, err = run(capsys, "show", "--flags", str(path))
    assert code == 2
    assert f"{path}: is a directory, not a regular file" in err


def test_a_symlink_to_a_fifo_says_it_is_a_symlink(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    link = tmp_path / "flags.yaml"
    link.symlink_to(_fifo(tmp_path))
    assert _run_bounded(["show", "--flags", str(link)]) == 2
    assert (
        capsys.readouterr()
        .err.rstrip()
        .endswith(
            f"{link}: is a FIFO (named pipe), not a regular file (a symlink to "
            f"{str(tmp_path / 'pipe.yaml')!r})"
        )
    )


def test_a_dangling_symlink_names_its_target(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    link = tmp_path / "flags.yaml"
    link.symlink_to("flags.v7.yaml")
    code, _, err = run(capsys, "show", "--flags", str(link))
    assert code == 2
    assert err.rstrip().endswith(f"{link}: is a symlink to 'flags.v7.yaml', which does not exist")


def test_invalid_settings_are_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CJ_ASSESSMENT_SERVICE_LLM_BATCHING_MODE", "turbo")
    code, _, err = run(capsys, "explain", "--batch-id", "1")
    assert code == 2
    assert "CJ_ASSESSMENT_SERVICE_LLM_BATCHING_MODE='turbo' (from the environment)" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.startswith("cj-batching 0.")


@pytest.mark.parametrize(
    "command", ["show", "explain", "validate", "diff", "rollout", "watch", "completion"]
)
def test_help(capsys: pytest.CaptureFixture[str], command: str) -> None:
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    assert "usage: cj-batching" in out


# --- validate ----------------------------------------------------------------------------


def test_validate_the_shipped_flags(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", str(FLAGS))
    assert code == 0
    assert out == f"{FLAGS}: valid (2 flag(s), version {SHIPPED_VERSION})\n"


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


def test_validate_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    doc = batching_document(version="v2")
    doc["flags"]["llm-batching-mode"]["defaultVariant"] = "fast"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    code, out, _ = run(capsys, "validate", str(bad), "--json")
    result = json.loads(out)
    assert code == 1
    assert (result["valid"], result["flags"], result["against"]) == (False, None, None)
    (problem,) = result["problems"]
    assert problem["path"] == "/flags/llm-batching-mode/defaultVariant"
    assert problem["severity"] == "error"
    code, out, _ = run(capsys, "validate", str(FLAGS), "--json")
    result = json.loads(out)
    assert (code, result["valid"], result["version"], result["flags"]) == (
        0,
        True,
        SHIPPED_VERSION,
        2,
    )
    assert result["problems"] == []


@pytest.fixture
def live(tmp_path: Path) -> Path:
    path = tmp_path / "flags.yaml"
    path.write_text(yaml.safe_dump(batching_document(version="2026-11-25.9")))
    return path


def _validate_against(
    capsys: pytest.CaptureFixture[str], live: Path, document: dict[str, object]
) -> tuple[int, list[dict[str, str]]]:
    new = live.with_name("flags.new.yaml")
    new.write_text(yaml.safe_dump(document))
    code, out, _ = run(capsys, "validate", str(new), "--against", str(live), "--json")
    problems: list[dict[str, str]] = json.loads(out)["problems"]
    return code, problems


def test_against_a_new_version_passes_without_warnings(
    capsys: pytest.CaptureFixture[str], live: Path
) -> None:
    document = batching_document(batch_api_share=30, version="2026-11-25.10")
    assert _validate_against(capsys, live, document) == (0, [])


def test_against_warns_when_the_content_changed_but_not_the_version(
    capsys: pytest.CaptureFixture[str], live: Path
) -> None:
    code, problems = _validate_against(
        capsys, live, batching_document(batch_api_share=30, version="2026-11-25.9")
    )
    (warning,) = problems
    assert (code, warning["severity"], warning["path"]) == (0, "warning", "/metadata/version")
    assert (
        "still '2026-11-25.9' as in the live file although the flags changed" in warning["message"]
    )


def test_against_warns_when_the_version_goes_backwards(
    capsys: pytest.CaptureFixture[str], live: Path
) -> None:
    code, problems = _validate_against(
        capsys, live, batching_document(batch_api_share=30, version="2026-11-25.8")
    )
    (warning,) = problems
    assert code == 0
    assert "'2026-11-25.8' is older than the live file's '2026-11-25.9'" in warning["message"]


def test_against_warns_when_nothing_changed(capsys: pytest.CaptureFixture[str], live: Path) -> None:
    code, problems = _validate_against(capsys, live, batching_document(version="2026-11-25.9"))
    (warning,) = problems
    assert (code, warning["path"]) == (0, "/")
    assert "nothing changed" in warning["message"]


def test_against_tells_an_int_from_a_float(capsys: pytest.CaptureFixture[str], live: Path) -> None:
    """1 == 1.0 in Python, not in a flag document: a change the version must follow."""
    old = batching_document(version="2026-11-25.9")
    old["metadata"]["priority"] = 1
    live.write_text(yaml.safe_dump(old))
    new = batching_document(version="2026-11-25.9")
    new["metadata"]["priority"] = 1.0
    code, problems = _validate_against(capsys, live, new)
    assert code == 0
    assert [(p["path"], p["message"].split(" as in")[0]) for p in problems] == [
        ("/metadata/version", "still '2026-11-25.9'")
    ]


def test_a_boolean_version_is_no_version(capsys: pytest.CaptureFixture[str], live: Path) -> None:
    """The service reads `version: true` as no version; so does the publishing check."""
    document = batching_document()
    document["metadata"]["version"] = True
    code, problems = _validate_against(capsys, live, document)
    assert code == 0
    assert {(p["path"], p["message"].split(":")[0]) for p in problems} >= {
        ("/metadata/version", "no version")
    }


def test_validate_warns_when_the_mode_flag_is_missing(
    capsys: pytest.CaptureFixture[str], live: Path
) -> None:
    document = batching_document(version="2026-11-26.1")
    document["flags"]["other-flag"] = document["flags"].pop("llm-batching-mode")
    code, problems = _validate_against(capsys, live, document)
    (warning,) = problems
    assert (code, warning["path"]) == (0, "/flags/llm-batching-mode")
    assert "the mode flag is missing: every batch gets the env default" in warning["message"]


def test_against_text_output(capsys: pytest.CaptureFixture[str], live: Path) -> None:
    new = live.with_name("flags.new.yaml")
    new.write_text(yaml.safe_dump(batching_document(batch_api_share=30, version="2026-11-25.9")))
    code, out, _ = run(capsys, "validate", str(new), "--against", str(live))
    assert code == 0
    assert out.splitlines()[0] == (f"{new}: valid (1 flag(s), version 2026-11-25.9; 1 warning(s))")
    assert f"against {live} (version 2026-11-25.9): 2 change(s)" in out
    assert "  /metadata/version: warning: still '2026-11-25.9'" in out


def test_strict_fails_on_a_warning(capsys: pytest.CaptureFixture[str], live: Path) -> None:
    new = live.with_name("flags.new.yaml")
    new.write_text(yaml.safe_dump(batching_document(batch_api_share=30, version="2026-11-25.9")))
    code, out, _ = run(capsys, "validate", str(new), "--against", str(live), "--strict")
    assert code == 1
    assert out.startswith(f"{new}: invalid under --strict")
    code, out, _ = run(capsys, "validate", str(new), "--against", str(live), "--strict", "--json")
    assert (code, json.loads(out)["valid"]) == (1, False)


def test_strict_passes_a_clean_new_version(capsys: pytest.CaptureFixture[str], live: Path) -> None:
    new = live.with_name("flags.new.yaml")
    new.write_text(yaml.safe_dump(batching_document(batch_api_share=30, version="2026-11-26.1")))
    assert run(capsys, "validate", str(new), "--against", str(live), "--strict")[0] == 0


def test_against_an_invalid_live_file_warns(capsys: pytest.CaptureFixture[str], live: Path) -> None:
    broken = batching_document(version="2026-11-25.9")
    broken["flags"]["llm-batching-mode"]["defaultVariant"] = "fast"
    live.write_text(yaml.safe_dump(broken))
    code, problems = _validate_against(capsys, live, batching_document(version="2026-11-26.1"))
    (warning,) = problems
    assert code == 0
    assert "is itself invalid" in warning["message"]


# --- output hygiene ----------------------------------------------------------------------

FORGED = "x\n2026-11-25T10:15:02.114Z accepted version good (initial)\x1b[2J\u202e\udc80"
KEY = "key\x1b[2J\u202e\udc80"  # the flagd schema refuses a newline in a flag key


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    """A valid flag file whose flag key and version carry ESC, a bidi override and a lone
    surrogate (JSON allows all of them in strings), the version a newline too."""
    document = batching_document(version=FORGED)
    document["flags"][KEY] = {
        "state": "ENABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": "on",
    }
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(document))  # ensure_ascii: \\udc80 stays an escape in the file
    return path


@pytest.mark.parametrize(
    "argv",
    [
        ["show", "--flags"],
        ["explain", "--batch-id", "1", "--flags"],
        ["validate"],
        ["diff", str(FLAGS)],
        ["rollout", "--source", "els", "--batches", "10", "--flags"],
    ],
    ids=lambda argv: argv[0],
)
def test_text_from_a_flag_file_is_escaped(
    capsys: pytest.CaptureFixture[str], hostile: Path, argv: list[str]
) -> None:
    code, out, err = run(capsys, *argv, str(hostile))
    assert code == 0, err
    assert "\x1b" not in out + err
    assert "\u202e" not in out + err
    assert "\udc80" not in out + err
    assert not any(line.startswith("2026-11-25T10:15:02.114Z") for line in out.splitlines())
    out.encode("ascii", "backslashreplace")  # nothing unencodable left
    if argv[0] in ("show", "diff"):
        assert "key\\x1b[2J\\u202e\\udc80" in out


def test_json_output_escapes_everything(capsys: pytest.CaptureFixture[str], hostile: Path) -> None:
    code, out, _ = run(capsys, "show", "--flags", str(hostile), "--json")
    assert code == 0
    assert out.isascii()
    assert json.loads(out)["version"] == FORGED


def test_output_never_crashes_on_an_ascii_terminal(hostile: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cj_batching", "show", "--flags", str(hostile)],
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "ascii"},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert b"\\udc80" in done.stdout


# --- completion and the installed script -------------------------------------------------


def test_bash_completion_completes_commands_and_options(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    code, script, _ = run(capsys, "completion", "bash")
    assert code == 0
    path = tmp_path / "cj-batching.bash"
    path.write_text(script)

    def complete(*words: str) -> set[str]:
        line = " ".join(f"'{word}'" for word in words)
        probe = (
            f"source {path}; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; "
            '_shtab_cj_batching; printf "%s\\n" "${COMPREPLY[@]}"'
        )
        done = subprocess.run(
            [bash, "-c", probe], capture_output=True, text=True, timeout=30, check=True
        )
        return set(done.stdout.split())

    assert {"show", "diff", "validate", "explain", "rollout", "watch"} <= complete(
        "cj-batching", ""
    )
    assert "--against" in complete("cj-batching", "validate", "--")
    assert "--batches" in complete("cj-batching", "diff", "--")


@pytest.mark.parametrize("shell", ["zsh", "tcsh"])
def test_other_shells_get_a_script(capsys: pytest.CaptureFixture[str], shell: str) -> None:
    code, script, _ = run(capsys, "completion", shell)
    assert code == 0
    assert "validate" in script
    assert "--against" in script


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
