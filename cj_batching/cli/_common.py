"""Pieces the CLI commands share: settings with command-line overrides, resolvers,
progress on a terminal, warnings."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cj_batching.cli._terminal import write
from cj_batching.configure import configure
from cj_batching.context import KNOWN_SOURCES, REQUEST_TYPES
from cj_batching.metrics import BatchingMetrics
from cj_batching.resolver import BatchingModeResolver
from cj_batching.rollout import Progress
from cj_batching.settings import Settings, SettingsError
from flags import CheckedDocument, FlagdMemoryProvider, bind_provider

__all__ = [
    "UsageError",
    "document_resolver",
    "load_settings",
    "open_resolver",
    "progress_bar",
    "warn",
    "warn_unknown_context",
]


class UsageError(Exception):
    """A command-line or configuration mistake: printed on one line, exit status 2."""


def load_settings(flags: Path | None = None) -> Settings:
    """Settings from the environment (built once), with `--flags` applied; UsageError
    when invalid."""
    overrides: dict[str, Any] = {}
    if flags is not None:
        overrides = {"FLAGS_PROVIDER": "file", "FLAGS_FILE": flags}
    try:
        return Settings(**overrides)
    except SettingsError as exc:
        raise UsageError(str(exc)) from None


@contextmanager
def open_resolver(
    settings: Settings, metrics: BatchingMetrics | None = None
) -> Iterator[BatchingModeResolver]:
    """A resolver on a private domain whose provider is shut down afterwards."""
    domain = f"cj-batching-cli-{uuid.uuid4().hex}"
    resolver = configure(settings, metrics=metrics, domain=domain)
    try:
        yield resolver
    finally:
        resolver.close()
        resolver.client.provider.shutdown()


@contextmanager
def document_resolver(
    document: CheckedDocument, settings: Settings
) -> Iterator[BatchingModeResolver]:
    """A resolver over `document` on a private domain. It was validated when it was
    loaded (`load_flag_file`, batching checks included), so it is not validated again:
    that is the whole cost model and schema check a second time."""
    provider = FlagdMemoryProvider(document)
    client = bind_provider(provider, f"cj-batching-cli-{uuid.uuid4().hex}")
    resolver = BatchingModeResolver(settings, client)
    try:
        yield resolver
    finally:
        resolver.close()
        provider.shutdown()


@contextmanager
def progress_bar(total: int, what: str) -> Iterator[Progress]:
    """A progress bar on stderr, only when stderr is a terminal and only once a run
    has taken a moment (short runs print nothing)."""
    from tqdm import tqdm  # only the previews need it

    with tqdm(
        total=total,
        desc=what,
        unit=" batches",
        unit_scale=True,
        file=sys.stderr,
        disable=not sys.stderr.isatty(),
        delay=0.5,
        leave=False,
    ) as bar:

        def advance(done: int) -> None:
            bar.update(done)

        yield advance


def warn(command: str, message: str) -> None:
    """One escaped `cj-batching COMMAND: warning: ...` line on stderr."""
    write(f"cj-batching {command}: warning: {message}", stream=sys.stderr)


def warn_unknown_context(command: str, *, sources: list[str], request_type: str) -> None:
    """Warn about sources and request types the platform does not send (a typo such as
    `bso` is accepted by the library, evaluated as given and counted as `other`)."""
    known = ", ".join(KNOWN_SOURCES)
    for source in sources:
        if source not in KNOWN_SOURCES:
            warn(
                command,
                f"cj_source {source!r} is not a known source ({known}); it is evaluated "
                "as given and counted as 'other' in the metrics",
            )
    if request_type not in REQUEST_TYPES:
        warn(
            command,
            f"request type {request_type!r} is not one CJ sends ({', '.join(REQUEST_TYPES)}); "
            "it is evaluated as given",
        )
