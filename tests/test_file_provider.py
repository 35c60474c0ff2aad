"""FlagdFileProvider: hot reload by content, last good kept, once-per-version errors."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEvent
from openfeature.provider import FeatureProvider, ProviderStatus

import flags.file_provider as file_provider_module
from cj_batching import BatchContext, Settings, batching_flag_checks, configure
from flags import FlagdFileProvider
from flags.testing import EventRecorder, wait_until, write_atomically

from .documents import document, mode_flag

POLL = 0.02


def text(mode: str, version: str = "v1", fmt: str = "yaml") -> str:
    doc = document(mode_flag(default_variant=mode), version=version)
    return json.dumps(doc) if fmt == "json" else yaml.safe_dump(doc)


def answer(client: OpenFeatureClient) -> str:
    return client.get_string_value("llm-batching-mode", "fallback")


@pytest.fixture
def polls(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """`wait_polls(n)`: block until the watcher has read the file n more times."""
    condition = threading.Condition()
    count = 0
    real_read = file_provider_module.read_document_bytes

    def counting_read(path: Path) -> bytes:
        nonlocal count
        try:
            return real_read(path)
        finally:
            with condition:
                count += 1
                condition.notify_all()

    monkeypatch.setattr(file_provider_module, "read_document_bytes", counting_read)

    def wait_polls(n: int) -> None:
        with condition:
            target = count + n
            assert condition.wait_for(lambda: count >= target, timeout=5), "watcher stalled"

    return wait_polls


@pytest.fixture
def watch(
    bind: Callable[[FeatureProvider], OpenFeatureClient],
) -> Iterator[Callable[..., tuple[FlagdFileProvider, OpenFeatureClient, EventRecorder]]]:
    def _watch(
        path: Path, **kwargs: Any
    ) -> tuple[FlagdFileProvider, OpenFeatureClient, EventRecorder]:
        provider = FlagdFileProvider(path, POLL, **kwargs)
        client = bind(provider)
        return provider, client, EventRecorder(client)

    return _watch


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
def test_loads_yaml_and_json(tmp_path: Path, watch: Any, suffix: str) -> None:
    path = tmp_path / f"flags{suffix}"
    path.write_text(text("per_request", fmt="json" if suffix == ".json" else "yaml"))
    _, client, _ = watch(path)
    assert answer(client) == "per_request"
    assert client.get_provider_status() is ProviderStatus.READY


def test_unsupported_extension_is_refused_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unsupported extension '\.toml'"):
        FlagdFileProvider(tmp_path / "flags.toml")


@pytest.mark.parametrize("interval", [0, -1, 7200])
def test_poll_interval_is_validated(tmp_path: Path, interval: float) -> None:
    with pytest.raises(ValueError, match="poll_interval_seconds"):
        FlagdFileProvider(tmp_path / "flags.yaml", interval)


def test_atomic_rewrite_is_served_and_announced(tmp_path: Path, watch: Any) -> None:
    path = tmp_path / "flags.yaml"
    path.write_text(text("per_request"))
    _, client, events = watch(path)
    mark = events.mark()
    write_atomically(path, text("provider_batch_api", "v2"))
    details = events.wait_for(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, after=mark)
    assert details.flags_changed == ["llm-batching-mode"]
    assert details.metadata == {"path": str(path), "version": "v2", "warnings": 0}
    assert answer(client) == "provider_batch_api"


def with_warning(mode: str, version: str) -> str:
    """A good version with one warning (a top-level key flagd ignores)."""
    doc = document(mode_flag(default_variant=mode), version=version)
    return yaml.safe_dump({**doc, "owner": "cj-platform"})


def test_a_version_with_warnings_is_served_and_its_warnings_reported_once(
    tmp_path: Path,
    watch: Any,
    polls: Callable[[int], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "flags.yaml"
    path.write_text(text("per_request"))
    provider, client, events = watch(path)
    assert provider.warnings == ()
    mark = events.mark()
    with caplog.at_level(logging.WARNING, logger="flags.file_provider"):
        write_atomically(path, with_warning("provider_batch_api", "v2"))
        details = events.wait_for(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, after=mark)
        polls(5)
    assert details.metadata["warnings"] == 1
    assert answer(client) == "provider_batch_api"
    (warning,) = provider.warnings
    assert (warning.path, warning.severity) == ("/owner", "warning")
    assert provider.problems == ()
    logged = [r for r in caplog.records if "accepted with 1 warning" in r.getMessage()]
    assert len(logged) == 1
    assert logged[0].levelno == logging.WARNING
    assert logged[0].warnings == [str(warning)]  # type: ignore[attr-defined]


def test_a_rejected_version_is_named_in_the_event_and_on_the_provider(
    tmp_path: Path, watch: Any
) -> None:
    path = tmp_path / "flags.yaml"
    path.write_text(text("per_request"))
    provider, _, events = watch(path)
    mark = events.mark()
    write_atomically(
        path, yaml.safe_dump(document(mode_flag(default_variant="nope"), version="v7"))
    )
    details = events.wait_for(ProviderEvent.PROVIDER_ERROR, after=mark)
    assert details.metadata == {"path": str(path), "version": "v7"}
    assert provider.rejected_version == "v7"
    assert [p.severity for p in provider.problems] == ["error"]
    write_atomically(path, text("per_request", "v8"))
    events.wait_for(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, after=mark)
    assert (provider.rejected_version, provider.problems) == (None, ())


def test_copy_with_the_same_size_and_mtime_is_seen(tmp_path: Path, watch: Any) -> None:
    """Only the content tells these versions apart (an in-place `cp -p`/`rsync -a`)."""

    def version(default: str) -> str:
        variants = {"aaaa": "per_request", "bbbb": "provider_batch_api"}
        return yaml.safe_dump(document(mode_flag(default_variant=default, variants=variants)))

    path = tmp_path / "flags.yaml"
    path.write_text(version("aaaa"))
    before = path.stat()
    _, client, events = watch(path)
    assert answer(client) == "per_request"
    mark = events.mark()
    path.write_text(version("bbbb"))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
    )
    events.wait_for(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, after=mark)
    assert answer(client) == "provider_batch_api"


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        pytest.param("flags: [unclosed", "YAML syntax error", id="syntax"),
        pytest.param("flags: {x: {state: ENABLED}}", "variants", id="structure"),
        pytest.param(
            yaml.safe_dump(document(mode_flag(default_variant="nope"))), "nope", id="semantics"
        ),
        pytest.param("a: &a [1]\nb: *a\n", "aliases", id="yaml-alias"),
        pytest.param("x" * (1024 * 1024 + 1), "limit", id="over-1MiB"),
    ],
)
def test_bad_version_keeps_last_good_and_is_reported_once(
    tmp_path: Path,
    watch: Any,
    polls: Callable[[int], None],
    caplog: pytest.LogCaptureFixture,
    bad: str,
    problem: str,
) -> None:
    path = tmp_path / "flags.yaml"
    path.write_text(text("per_request"))
    provider, client, events = watch(path)
    mark = events.mark()
    with caplog.at_level(logging.ERROR, logger="flags.file_provider"):
        write_atomically(path, bad)
        details = events.wait_for(ProviderEvent.PROVIDER_ERROR, after=mark)
        polls(5)  # the watcher keeps polling the same bad version...
    assert problem in (details.message or "")
    assert problem in str(provider.problems)
    assert answer(client) == "per_request"  # ...while serving the last good flags
    rejected = [r for r in caplog.records if "rejected" in r.getMessage()]
    assert len(rejected) == 1
    assert [kind for kind, _ in events.events[mark:]].count(ProviderEvent.PROVIDER_ERROR) == 1


def test_recovers_on_the_next_good_version(tmp_path: Path, watch: Any) -> None:
    path = tmp_path / "flags.yaml"
    path.write_text(text("per_request"))
    provider, client, events = watch(path)
    mark = events.mark()
    write_atomically(path, "flags: [")
    events.wait_for(ProviderEvent.PROVIDER_ERROR, after=mark)
    assert client.get_provider_status() is ProviderStatus.ERROR
    write_atomically(path, text("provider_batch_api", "v3"))
    events.wait_for(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, after=mark)
    wait_until(lambda: client.get_provider_status() is ProviderStatus.READY, what="READY")
    assert answer(client) == "provider_batch_api"
    assert provider.problems == ()


def test_deleted_file_keeps_last_good_and_recovers(tmp_path: Path, watch: Any) -> None:
    path = tmp_path / "flags.yaml"
    path.write_text(text("per_request"))
    _, client, events = watch(path)
    mark = events.mark()
    path.unlink()
    details = events.wait_for(ProviderEvent.PROVIDER_ERROR, after=mark)
    assert "file not found" in (details.message or "")
    assert answer(client) == "per_request"
    write_atomically(path, text("per_request", "v2"))
    events.wait_for(ProviderEvent.PROVIDER_READY, after=mark)


@pytest.mark.parametrize("initial", [None, "flags: {", "flags: {f: {state: on, variants: {}}}"])
def test_starting_on_a_missing_or_bad_file_recovers_when_fixed(
    tmp_path: Path,
    watch: Any,
    initial: str | None,
) -> None:
    path = tmp_path / "flags.yaml"
    if initial is not None:
        path.write_text(initial)
    _, client, events = watch(path)
    assert client.get_provider_status() is ProviderStatus.ERROR
    details = client.get_string_details("llm-batching-mode", "fallback")
    assert (details.value, details.error_code) == ("fallback", "PROVIDER_NOT_READY")
    mark = events.mark()
    write_atomically(path, text("per_request"))
    events.wait_for(ProviderEvent.PROVIDER_READY, after=mark)
    assert answer(client) == "per_request"


def test_domain_checks_reject_a_mode_typo(tmp_path: Path, watch: Any) -> None:
    path = tmp_path / "flags.yaml"
    path.write_text(text("per_request"))
    checks = batching_flag_checks(Settings(_env_file=None))
    _, client, events = watch(path, checks=checks)
    mark = events.mark()
    typo = document(mode_flag(default_variant="x", variants={"x": "provider_batchapi"}))
    write_atomically(path, yaml.safe_dump(typo))
    details = events.wait_for(ProviderEvent.PROVIDER_ERROR, after=mark)
    assert "/flags/llm-batching-mode/variants/x" in (details.message or "")
    assert "'provider_batchapi' is not a batching mode" in (details.message or "")
    assert answer(client) == "per_request"


def test_shutdown_stops_and_joins_the_watcher(tmp_path: Path) -> None:
    path = tmp_path / "flags.yaml"
    path.write_text(text("per_request"))
    provider = FlagdFileProvider(path, POLL)
    provider.initialize(EvaluationContext())
    watchers = [t for t in threading.enumerate() if t.name == "flags-watch:flags.yaml"]
    assert watchers
    provider.shutdown()
    assert not any(t.is_alive() for t in watchers)


# --- files that are not files, at start-up and in the watcher ------------------------------

SHUTDOWN_BOUND = 2.0  # generous: the watcher stops within a poll interval


def make_fifo(path: Path) -> None:
    os.mkfifo(path)


def make_device_link(path: Path) -> None:
    path.symlink_to("/dev/zero")


def make_fifo_link(path: Path) -> None:
    os.mkfifo(path.with_name("pipe"))
    path.symlink_to(path.with_name("pipe"))


NOT_FILES = {
    "fifo": (make_fifo, "is a FIFO (named pipe)"),
    "symlink to /dev/zero": (make_device_link, "is a symlink to a character device"),
    "symlink to a fifo": (make_fifo_link, "is a symlink to a FIFO (named pipe)"),
}


@pytest.mark.parametrize("kind", NOT_FILES)
def test_starting_on_a_fifo_or_device_fails_fast_and_names_it(
    tmp_path: Path, watch: Any, kind: str
) -> None:
    make, says = NOT_FILES[kind]
    path = tmp_path / "flags.yaml"
    make(path)
    started = time.monotonic()
    provider, client, _ = watch(path)
    assert time.monotonic() - started < SHUTDOWN_BOUND
    assert client.get_provider_status() is ProviderStatus.ERROR
    details = client.get_string_details("llm-batching-mode", "fallback")
    assert (details.value, details.error_code) == ("fallback", "PROVIDER_NOT_READY")
    assert f"{path}: {says}, not a regular file" in (details.error_message or "")
    started = time.monotonic()
    provider.shutdown()
    assert time.monotonic() - started < SHUTDOWN_BOUND


@pytest.mark.parametrize("kind", NOT_FILES)
def test_configure_on_a_fifo_or_device_falls_back_to_the_env_default(
    tmp_path: Path, kind: str
) -> None:
    make, says = NOT_FILES[kind]
    path = tmp_path / "flags.yaml"
    make(path)
    settings = Settings(_env_file=None, FLAGS_FILE=path, LLM_BATCHING_MODE="per_request")
    started = time.monotonic()
    resolver = configure(settings, domain=f"test-{uuid.uuid4().hex}")
    try:
        resolution = resolver.resolve(BatchContext(1, "els", "openai"))
        assert time.monotonic() - started < SHUTDOWN_BOUND
        assert (resolution.mode.value, resolution.decided_by) == ("per_request", "default")
        assert resolution.flag_error == "PROVIDER_NOT_READY"
        provider = resolver.client.provider
        assert isinstance(provider, FlagdFileProvider)
        assert says in str(provider.problems)
    finally:
        resolver.close()
        started = time.monotonic()
        resolver.client.provider.shutdown()
        assert time.monotonic() - started < SHUTDOWN_BOUND


def swap_in(path: Path, make: Callable[[Path], None]) -> None:
    """Put a non-file at `path` by rename, as an editor or a deploy would swap files."""
    staged = path.with_name(f".staged-{uuid.uuid4().hex}")
    make(staged)
    os.replace(staged, path)


@pytest.mark.parametrize("kind", NOT_FILES)
def test_watcher_keeps_the_last_good_flags_when_a_fifo_or_device_replaces_the_file(
    tmp_path: Path, watch: Any, kind: str
) -> None:
    make, says = NOT_FILES[kind]
    path = tmp_path / "flags.yaml"
    path.write_text(text("per_request"))
    provider, client, events = watch(path)
    mark = events.mark()
    swap_in(path, make)
    details = events.wait_for(ProviderEvent.PROVIDER_ERROR, after=mark)
    assert f"{path}: {says}, not a regular file" in (details.message or "")
    assert details.metadata == {"path": str(path)}  # nothing was read: no version known
    assert answer(client) == "per_request"  # the last good flags
    assert client.get_provider_status() is ProviderStatus.ERROR
    mark = events.mark()
    write_atomically(path, text("provider_batch_api", "v2"))  # a good file renamed over it
    events.wait_for(ProviderEvent.PROVIDER_READY, after=mark)
    assert answer(client) == "provider_batch_api"
    started = time.monotonic()
    provider.shutdown()
    assert time.monotonic() - started < SHUTDOWN_BOUND
