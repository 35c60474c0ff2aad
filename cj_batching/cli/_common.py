"""Pieces the CLI commands share: settings with command-line overrides, a resolver."""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cj_batching.configure import configure
from cj_batching.modes import LLMBatchingMode, parse_mode
from cj_batching.resolver import BatchingModeResolver
from cj_batching.settings import Settings, SettingsError

__all__ = ["UsageError", "add_flags_option", "load_settings", "mode_argument", "open_resolver"]


class UsageError(Exception):
    """A command-line or configuration mistake: printed, exit status 2."""


def add_flags_option(parser: argparse.ArgumentParser) -> None:
    """`--flags PATH`: evaluate this flag file (implies CJ_..._FLAGS_PROVIDER=file)."""
    parser.add_argument(
        "--flags",
        type=Path,
        metavar="PATH",
        help="flag file to use (default: CJ_ASSESSMENT_SERVICE_FLAGS_FILE, flags.yaml)",
    )


def mode_argument(value: str) -> LLMBatchingMode:
    """argparse type for a batching mode (any case, aliases accepted)."""
    try:
        return parse_mode(value, field="mode")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def load_settings(flags: Path | None = None) -> Settings:
    """Settings from the environment, with `--flags` applied; UsageError when invalid."""
    try:
        settings = Settings()
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
    if flags is None:
        return settings
    update: dict[str, Any] = {"FLAGS_PROVIDER": "file", "FLAGS_FILE": flags}
    return settings.model_copy(update=update)


@contextmanager
def open_resolver(settings: Settings) -> Iterator[BatchingModeResolver]:
    """A resolver on a private domain whose provider is shut down afterwards."""
    resolver = configure(settings, domain=f"cj-batching-cli-{uuid.uuid4().hex}")
    try:
        yield resolver
    finally:
        resolver.close()
        resolver.client.provider.shutdown()
