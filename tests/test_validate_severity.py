"""`cj-batching validate` and `watch` with errors and warnings: exit codes and `--strict`."""

from __future__ import annotations

import argparse
import io
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from cj_batching.cli import main, watch
from flags.testing import wait_until, write_atomically

from .documents import batching_document

FLAGS = Path(__file__).resolve().parent.parent / "flags.yaml"
VERSION = yaml.safe_load(FLAGS.read_text())["metadata"]["version"]


def shipped() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(FLAGS.read_text())
    return document


def with_warnings(document: dict[str, Any]) -> dict[str, Any]:
    """Two constructs flagd serves as written but its schema rejects."""
    document["owner"] = "cj-platform"
    document["$evaluators"]["from_els"] = {"?:": [{"==": [{"var": "cj_source"}, "els"]}, True]}
    return document


def write(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "flags.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def validate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    code = main(["validate", *args])
    return code, capsys.readouterr().out.splitlines()


def test_warnings_alone_exit_0_and_are_all_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, with_warnings(shipped()))
    code, lines = validate(capsys, str(path))
    assert code == 0
    assert lines[0] == f"{path}: valid (2 flag(s), version {VERSION}; 2 warning(s))"
    assert lines[1].startswith("  /$evaluators/from_els: warning: operator '?:'")
    assert lines[2].startswith("  /owner: warning: unknown top-level key 'owner'")
    assert len(lines) == 3


def test_strict_turns_warnings_into_a_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, with_warnings(shipped()))
    code, lines = validate(capsys, "--strict", str(path))
    assert code == 1
    assert lines[0] == (
        f"{path}: invalid under --strict (2 flag(s), version {VERSION}; 2 warning(s))"
    )
    assert len(lines) == 3


def test_strict_passes_a_document_without_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = validate(capsys, "--strict", str(FLAGS))
    assert code == 0
    assert lines == [f"{FLAGS}: valid (2 flag(s), version {VERSION})"]


def test_an_error_exits_1_and_lists_errors_before_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = with_warnings(shipped())
    document["flags"]["llm-batching-mode"]["defaultVariant"] = "turbo"
    path = write(tmp_path, document)
    code, lines = validate(capsys, str(path))
    assert code == 1
    assert lines[0] == f"{path}: invalid (1 error(s), 2 warning(s))"
    assert lines[1].startswith("  /flags/llm-batching-mode/defaultVariant: defaultVariant 'turbo'")
    assert all(": warning: " in line for line in lines[2:])
    assert len(lines) == 4


def test_a_batching_alias_is_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = shipped()
    document["flags"]["llm-batching-mode"]["variants"]["serial_bundle"] = "provider_serial_bundle"
    code, lines = validate(capsys, str(write(tmp_path, document)))
    assert code == 0
    assert lines[1] == (
        "  /flags/llm-batching-mode/variants/serial_bundle: warning: 'provider_serial_bundle' "
        "is read as serial_bundle, which is what CJ sends: write serial_bundle"
    )


def test_help_documents_strict(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--strict treat warnings as errors" in text
    assert "Exit status: 0 valid (warnings allowed), 1 invalid" in text
    assert "Errors make the service refuse the file; warnings" in text


def test_watch_shows_the_warnings_of_an_accepted_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CJ_ASSESSMENT_SERVICE_FLAGS_POLL_INTERVAL_SECONDS", "0.02")
    path = tmp_path / "flags.yaml"
    path.write_text(yaml.safe_dump(batching_document(version="v1")))
    out, stop = io.StringIO(), threading.Event()
    args = argparse.Namespace(flags=path, verbose=0, json=False)
    thread = threading.Thread(target=watch.run, args=(args,), kwargs={"stop": stop, "out": out})
    thread.start()
    try:
        wait_until(lambda: "accepted version v1 (initial)" in out.getvalue(), what="initial")
        assert "warning(s)" not in out.getvalue()
        write_atomically(path, yaml.safe_dump({**batching_document(version="v2"), "owner": "x"}))
        line = wait_until(
            lambda: next((ln for ln in out.getvalue().splitlines() if "version v2" in ln), None),
            what="the v2 line",
        )
    finally:
        stop.set()
        thread.join(5)
    assert "accepted version v2 (1 warning(s)): flags changed: none; " in line
    assert line.endswith(
        "; /owner: warning: unknown top-level key 'owner', ignored by flagd; known: $schema, "
        "$evaluators, metadata, flags"
    )
