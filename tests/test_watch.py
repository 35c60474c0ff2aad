"""`cj-batching watch`: one line per accepted or rejected version."""

from __future__ import annotations

import argparse
import io
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from cj_batching.cli import watch
from flags.testing import wait_until, write_atomically

from .documents import batching_document

Output = Callable[[], list[str]]


@pytest.fixture
def watching(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Path, Output]]:
    monkeypatch.setenv("CJ_ASSESSMENT_SERVICE_FLAGS_POLL_INTERVAL_SECONDS", "0.02")
    path = tmp_path / "flags.yaml"
    path.write_text(yaml.safe_dump(batching_document(version="v1")))
    out = io.StringIO()  # written by the watcher's threads under its own lock
    stop = threading.Event()
    args = argparse.Namespace(flags=path, verbose=0)
    thread = threading.Thread(target=watch.run, args=(args,), kwargs={"stop": stop, "out": out})
    thread.start()

    def output() -> list[str]:
        return out.getvalue().splitlines()

    yield path, output
    stop.set()
    thread.join(5)
    assert not thread.is_alive()


def wait_for_line(output: Output, text: str) -> str:
    return wait_until(
        lambda: next((line for line in output() if text in line), None),
        what=f"a line with {text!r}",
    )


def test_reports_accepted_and_rejected_versions(watching: tuple[Path, Output]) -> None:
    path, output = watching
    initial = wait_for_line(output, "accepted version v1 (initial)")
    stamp = initial.split(" ")[0]
    assert stamp[:4].isdigit()
    assert stamp.endswith("Z")  # UTC
    write_atomically(path, yaml.safe_dump(batching_document(batch_api_share=30, version="v2")))
    assert "flags changed: llm-batching-mode" in wait_for_line(output, "accepted version v2")
    doc = batching_document(version="v3")
    doc["flags"]["llm-batching-mode"]["defaultVariant"] = "fast"
    write_atomically(path, yaml.safe_dump(doc))
    rejected = wait_for_line(output, "REJECTED")
    assert "/flags/llm-batching-mode/defaultVariant" in rejected
    assert "keeping the last good flags" in rejected
    write_atomically(path, yaml.safe_dump(batching_document(version="v4")))
    wait_for_line(output, "accepted version v4")
    assert sum("REJECTED" in line for line in output()) == 1  # once per bad version


def test_reports_a_missing_file(watching: tuple[Path, Output]) -> None:
    path, output = watching
    wait_for_line(output, "accepted version v1")
    path.unlink()
    assert "file not found" in wait_for_line(output, "REJECTED")
