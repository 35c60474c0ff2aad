"""`cj-batching watch`: one line (or JSON object) per accepted or rejected version."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cj_batching.cli import build_parser, watch
from flags.testing import wait_until, write_atomically

from .documents import batching_document

Output = Callable[[], list[str]]
Watcher = Callable[..., Output]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "flags.yaml"


@pytest.fixture
def start_watch(path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Watcher]:
    """Start `cj-batching watch [ARGS]` on `path` in a thread; stop it after the test."""
    monkeypatch.setenv("CJ_ASSESSMENT_SERVICE_FLAGS_POLL_INTERVAL_SECONDS", "0.02")
    monkeypatch.setenv("CJ_ASSESSMENT_SERVICE_FLAGS_FILE", str(path))
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(*argv: str) -> Output:
        out = io.StringIO()  # written by the watcher's threads under its own lock
        args = build_parser().parse_args(["watch", *argv])
        thread = threading.Thread(target=watch.run, args=(args,), kwargs={"stop": stop, "out": out})
        thread.start()
        threads.append(thread)
        return lambda: out.getvalue().splitlines()

    yield start
    stop.set()
    for thread in threads:
        thread.join(5)
        assert not thread.is_alive()


def wait_for_line(output: Output, text: str) -> str:
    return wait_until(
        lambda: next((line for line in output() if text in line), None),
        what=f"a line with {text!r}",
    )


def write(path: Path, document: dict[str, Any]) -> None:
    write_atomically(path, yaml.safe_dump(document))


def bad(version: str) -> dict[str, Any]:
    document = batching_document(version=version)
    document["flags"]["llm-batching-mode"]["defaultVariant"] = "fast"
    return document


def test_reports_accepted_and_rejected_versions(path: Path, start_watch: Watcher) -> None:
    write(path, batching_document(version="v1"))
    output = start_watch()
    initial = wait_for_line(output, "accepted version v1 (initial)")
    stamp = initial.split(" ")[0]
    assert stamp[:4].isdigit()
    assert stamp.endswith("Z")  # UTC
    write(path, batching_document(batch_api_share=30, version="v2"))
    assert "flags changed: llm-batching-mode" in wait_for_line(output, "accepted version v2")
    write(path, bad("v3"))
    rejected = wait_for_line(output, "REJECTED")
    assert "/flags/llm-batching-mode/defaultVariant" in rejected
    assert "keeping the last good flags, version v2" in rejected
    write(path, batching_document(version="v4"))
    wait_for_line(output, "accepted version v4")
    assert sum("REJECTED" in line for line in output()) == 1  # once per bad version


def test_names_the_rejected_version(path: Path, start_watch: Watcher) -> None:
    write(path, batching_document(version="v1"))
    output = start_watch()
    wait_for_line(output, "accepted version v1")
    write(path, bad("v2"))
    assert "REJECTED version v2 (keeping the last good flags, version v1)" in wait_for_line(
        output, "REJECTED"
    )


def test_says_no_good_flags_yet_when_there_never_were(path: Path, start_watch: Watcher) -> None:
    write(path, bad("v1"))
    output = start_watch()
    rejected = wait_for_line(output, "REJECTED")
    assert "no good flags yet: the service uses the env default" in rejected
    write(path, batching_document(version="v2"))
    wait_for_line(output, "accepted version v2")


def test_reports_a_missing_file(path: Path, start_watch: Watcher) -> None:
    write(path, batching_document(version="v1"))
    output = start_watch()
    wait_for_line(output, "accepted version v1")
    path.unlink()
    rejected = wait_for_line(output, "REJECTED")
    assert "file not found" in rejected
    assert "keeping the last good flags, version v1" in rejected


def test_waits_for_a_settings_file_that_does_not_exist_yet(
    path: Path, start_watch: Watcher
) -> None:
    output = start_watch()
    assert "no good flags yet" in wait_for_line(output, "REJECTED")
    write(path, batching_document(version="v1"))
    wait_for_line(output, "accepted version v1")


def test_json_lines(path: Path, start_watch: Watcher) -> None:
    write(path, batching_document(version="v1"))
    output = start_watch("--json")
    wait_until(lambda: len(output()) >= 2, what="the watching and initial lines")
    write(path, bad("v2"))
    wait_until(lambda: len(output()) >= 3, what="the rejected line")
    watching, initial, rejected = (json.loads(line) for line in output()[:3])
    assert watching["event"] == "watching"
    assert watching["path"] == str(path)
    assert initial["event"] == "accepted"
    assert (initial["initial"], initial["version"]) == (True, "v1")
    assert rejected["event"] == "rejected"
    assert rejected["serving"] == "v1"
    assert any("/flags/llm-batching-mode/defaultVariant" in p for p in rejected["problems"])
    assert all(line.isascii() and "time" in json.loads(line) for line in output())


def test_a_version_cannot_forge_a_line(path: Path, start_watch: Watcher) -> None:
    write(path, batching_document(version="v1"))
    output = start_watch()
    wait_for_line(output, "accepted version v1")
    forged = "v2\n2026-01-01T00:00:00.000Z accepted version v9 (initial)\x1b[2J"
    write(path, batching_document(batch_api_share=30, version=forged))
    line = wait_for_line(output, "accepted version v2")
    assert line.endswith("flags changed: llm-batching-mode")
    assert "\\n2026-01-01T00:00:00.000Z accepted version v9 (initial)\\x1b[2J" in line
    assert not any(entry.startswith("2026-01-01") for entry in output())


# Handlers run on OpenFeature's thread pool, so one may run after the next version is in
# use. These hold a version's handler until the file's next version has been accepted.
def _hold_until_serving(
    monkeypatch: pytest.MonkeyPatch, handler: str, held: str, then: str
) -> threading.Event:
    """Delay `_Printer.<handler>` for version `held` until the provider serves `then`;
    the returned event is set once that handler has been reached."""
    reached = threading.Event()
    original = getattr(watch._Printer, handler)

    def delayed(printer: Any, details: Any) -> None:
        if details.metadata.get("version") == held:
            reached.set()
            provider = printer._provider
            wait_until(
                lambda: provider.flag_set_metadata.get("version") == then,
                what=f"version {then} in use",
            )
        original(printer, details)

    monkeypatch.setattr(watch._Printer, handler, delayed)
    return reached


def with_a_warning(version: str) -> dict[str, Any]:
    document = batching_document(version=version)
    document["flags"]["llm-batching-mode"]["variants"]["serial_bundle"] = "provider_serial_bundle"
    return document


def test_an_accepted_line_lists_the_warnings_of_its_own_version(
    path: Path, start_watch: Watcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    reached = _hold_until_serving(monkeypatch, "accepted", held="v2", then="v3")
    write(path, batching_document(version="v1"))
    output = start_watch()
    wait_for_line(output, "accepted version v1")
    write(path, with_a_warning("v2"))
    assert reached.wait(5)
    write(path, batching_document(batch_api_share=30, version="v3"))
    assert "(1 warning(s))" not in wait_for_line(output, "accepted version v3")
    line = wait_for_line(output, "accepted version v2")
    assert "(1 warning(s))" in line
    assert "is read as serial_bundle" in line


def test_a_rejected_line_names_the_version_served_then(
    path: Path, start_watch: Watcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    reached = _hold_until_serving(monkeypatch, "rejected", held="v2", then="v3")
    write(path, batching_document(version="v1"))
    output = start_watch()
    wait_for_line(output, "accepted version v1")
    write(path, bad("v2"))
    assert reached.wait(5)
    write(path, batching_document(version="v3"))
    line = wait_for_line(output, "REJECTED version v2")
    assert "keeping the last good flags, version v1" in line
    assert "/flags/llm-batching-mode/defaultVariant" in line
