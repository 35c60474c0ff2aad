"""`cj-batching watch`: follow the flag file and report every version it accepts or rejects."""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import logging
import sys
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TextIO

from openfeature.event import EventDetails, ProviderEvent, ProviderEventDetails
from openfeature.provider import ProviderStatus

from cj_batching.cli._arguments import add_flags_option
from cj_batching.cli._common import load_settings
from cj_batching.cli._flag_file import flag_file
from cj_batching.cli._terminal import write, write_json
from cj_batching.flag_checks import batching_flag_checks
from flags import DocumentCheck, FlagdFileProvider, bind_provider

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Register `watch`."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "watch",
        help="follow the flag file; one line per accepted or rejected version",
        description="Watch the flag file exactly as the service does (same poll interval, "
        "same validation) and print one line per version: accepted (version, changed "
        "flags) or rejected (its version, every problem, and the version the service "
        "keeps serving, or that there are no good flags yet). Runs until Ctrl-C.",
    )
    add_flags_option(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object per line (per event)")
    parser.set_defaults(run=run)


def run(
    args: argparse.Namespace, *, stop: threading.Event | None = None, out: TextIO | None = None
) -> int:
    """Watch until interrupted (or until `stop` is set), printing to `out` (stdout)."""
    settings = load_settings(args.flags)
    path = flag_file(settings, args.flags) or settings.FLAGS_FILE
    if not args.verbose:  # every rejection is printed below; its log line would repeat it
        logging.getLogger("flags").setLevel(logging.CRITICAL)
    provider = _WatchedFileProvider(
        path, settings.FLAGS_POLL_INTERVAL_SECONDS, checks=batching_flag_checks(settings)
    )
    printer = _Printer(provider, sys.stdout if out is None else out, json=args.json)
    printer.watching(settings.FLAGS_POLL_INTERVAL_SECONDS)
    client = bind_provider(provider, f"cj-batching-watch-{uuid.uuid4().hex}")
    # Handlers first, then the initial line: an edit made as soon as that line shows must
    # not be missed. A provider in ERROR reports itself through the handler at once.
    client.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, printer.accepted)
    client.add_handler(ProviderEvent.PROVIDER_ERROR, printer.rejected)
    if client.get_provider_status() is ProviderStatus.READY:
        printer.initial()
    try:
        (stop or threading.Event()).wait()
    finally:
        provider.shutdown()
    return 0


_EVENT_KEY: Final = "cj_batching_watch_event"
_ANNOUNCED: Final = (ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, ProviderEvent.PROVIDER_ERROR)


@dataclass(frozen=True, slots=True)
class _Announced:
    """What the provider held when it emitted an event. Handlers run later, on
    OpenFeature's thread pool, when a newer version may already be in use."""

    at: datetime
    serving: str | None  # the version in use; None before the first good one
    loaded: bool
    warnings: tuple[str, ...]  # of the version in use
    problems: tuple[str, ...]  # of the newest version, when it was rejected
    rejected_version: str | None


class _WatchedFileProvider(FlagdFileProvider):
    """The service's file provider, each event it emits tagged with what it held then:
    the event itself carries only a count of warnings and a message."""

    def __init__(
        self, path: Path, poll_interval_seconds: float, *, checks: Sequence[DocumentCheck]
    ) -> None:
        super().__init__(path, poll_interval_seconds, checks=checks)
        self._announced: dict[int, _Announced] = {}
        self._numbers = itertools.count()
        self._announced_lock = threading.Lock()

    def emit(self, event: ProviderEvent, details: ProviderEventDetails) -> None:
        """Emit `details`, numbered, keeping what the provider holds now under the number."""
        if event in _ANNOUNCED:  # the events watch prints (READY would never be collected)
            number = next(self._numbers)
            with self._announced_lock:
                self._announced[number] = self.now()
            metadata = {**details.metadata, _EVENT_KEY: number}
            details = dataclasses.replace(details, metadata=metadata)
        super().emit(event, details)

    def announced(self, details: EventDetails) -> _Announced:
        """What the provider held when it emitted `details`; what it holds now for an
        event it did not emit (OpenFeature's report of a start in ERROR)."""
        number = details.metadata.get(_EVENT_KEY)
        with self._announced_lock:
            state = self._announced.pop(number, None) if isinstance(number, int) else None
        return state or self.now()

    def now(self) -> _Announced:
        """What the provider holds at this moment."""
        version = self.flag_set_metadata.get("version")
        return _Announced(
            at=datetime.now(UTC),
            serving=None if version is None else str(version),
            loaded=self.document is not None,
            warnings=tuple(str(problem) for problem in self.warnings),
            problems=tuple(str(problem) for problem in self.problems),
            rejected_version=self.rejected_version,
        )


class _Printer:
    """Formats provider events as lines (or JSON objects); events arrive on OpenFeature's
    thread pool, so writes are serialised and each event is told with what the provider
    held when it emitted it."""

    def __init__(self, provider: _WatchedFileProvider, out: TextIO, *, json: bool) -> None:
        self._provider = provider
        self._out = out
        self._json = json
        self._lock = threading.Lock()

    def watching(self, interval: float) -> None:
        path = str(self._provider.path)
        self._emit(
            {"event": "watching", "path": path, "poll_interval_seconds": interval},
            f"watching {path} every {interval:g}s (Ctrl-C to stop)",
            stamp=False,
        )

    def initial(self) -> None:
        now = self._provider.now()
        warnings = list(now.warnings)
        self._emit(
            {
                "event": "accepted",
                "initial": True,
                "version": now.serving,
                "flags_changed": [],
                "warnings": len(warnings),
                "problems": warnings,
            },
            f"accepted version {now.serving} (initial){_listed(warnings)}",
            at=now.at,
        )

    def accepted(self, details: EventDetails) -> None:
        announced = self._provider.announced(details)
        version = details.metadata.get("version")
        changed = list(details.flags_changed or [])
        warnings = list(announced.warnings)
        noted = f" ({len(warnings)} warning(s))" if warnings else ""
        self._emit(
            {
                "event": "accepted",
                "initial": False,
                "version": version,
                "flags_changed": changed,
                "warnings": len(warnings),
                "problems": warnings,
            },
            f"accepted version {version}{noted}: flags changed: {', '.join(changed) or 'none'}"
            + _listed(warnings),
            at=announced.at,
        )

    def rejected(self, details: EventDetails) -> None:
        # The event names the rejected version when the document got as far as having
        # one; OpenFeature's report of a start in ERROR carries nothing, so the provider
        # stands in.
        announced = self._provider.announced(details)
        version = details.metadata.get("version") or announced.rejected_version
        problems = list(announced.problems) or _message_lines(details)
        serving = announced.serving if announced.loaded else None
        kept = (
            f"keeping the last good flags, version {serving}"
            if announced.loaded
            else "no good flags yet: the service uses the env default"
        )
        named = f"version {version}" if version is not None else "a version"
        self._emit(
            {"event": "rejected", "version": version, "serving": serving, "problems": problems},
            f"REJECTED {named} ({kept}): {'; '.join(problems)}",
            at=announced.at,
        )

    def _emit(
        self, record: dict[str, Any], line: str, *, at: datetime | None = None, stamp: bool = True
    ) -> None:
        moment = (at or datetime.now(UTC)).isoformat(timespec="milliseconds")
        now = moment.replace("+00:00", "Z")
        with self._lock:
            if self._json:
                write_json({"time": now, **record}, stream=self._out, indent=None)
            else:
                write(f"{now} {line}" if stamp else line, stream=self._out)


def _message_lines(details: EventDetails) -> list[str]:
    """The problems an event's message lists, one per line; never empty."""
    text = details.message or ""
    return [part.strip() for part in text.splitlines() if part.strip()] or ["unknown problem"]


def _listed(warnings: list[str]) -> str:
    """The warnings, on the same line as the version they belong to."""
    return f"; {'; '.join(warnings)}" if warnings else ""
