"""`cj-batching watch`: follow the flag file and report every version it accepts or rejects."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import uuid
from datetime import UTC, datetime
from typing import Any, TextIO

from openfeature.event import EventDetails, ProviderEvent
from openfeature.provider import ProviderStatus

from cj_batching.cli._arguments import add_flags_option
from cj_batching.cli._common import load_settings
from cj_batching.cli._flag_file import flag_file
from cj_batching.cli._terminal import write, write_json
from cj_batching.flag_checks import batching_flag_checks
from flags import FlagdFileProvider, bind_provider

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
    provider = FlagdFileProvider(
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


class _Printer:
    """Formats provider events as lines (or JSON objects); events arrive on OpenFeature's
    thread pool, so writes are serialised."""

    def __init__(self, provider: FlagdFileProvider, out: TextIO, *, json: bool) -> None:
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
        version = self._serving()
        self._emit(
            {"event": "accepted", "initial": True, "version": version, "flags_changed": []},
            f"accepted version {version} (initial)",
        )

    def accepted(self, details: EventDetails) -> None:
        version = details.metadata.get("version")
        changed = list(details.flags_changed or [])
        warnings = details.metadata.get("warnings")
        noted = f" ({warnings} warning(s): see cj-batching validate)" if warnings else ""
        self._emit(
            {
                "event": "accepted",
                "initial": False,
                "version": version,
                "flags_changed": changed,
                "warnings": warnings or 0,
            },
            f"accepted version {version}{noted}: flags changed: {', '.join(changed) or 'none'}",
        )

    def rejected(self, details: EventDetails) -> None:
        # The event names the rejected version when the document got as far as having
        # one; OpenFeature's report of a start in ERROR carries nothing, so the provider
        # stands in (`rejected_version` comes with the flag-files work).
        version = details.metadata.get("version") or getattr(
            self._provider, "rejected_version", None
        )
        problems = self._problems(details)
        serving = self._serving() if self._provider.document is not None else None
        kept = (
            f"keeping the last good flags, version {serving}"
            if self._provider.document is not None
            else "no good flags yet: the service uses the env default"
        )
        named = f"version {version}" if version is not None else "a version"
        self._emit(
            {"event": "rejected", "version": version, "serving": serving, "problems": problems},
            f"REJECTED {named} ({kept}): {'; '.join(problems)}",
        )

    def _problems(self, details: EventDetails) -> list[str]:
        problems = [str(problem) for problem in self._provider.problems]
        if not problems:
            text = details.message or ""
            problems = [part.strip() for part in text.splitlines() if part.strip()]
        return problems or ["unknown problem"]

    def _serving(self) -> str | None:
        version = self._provider.flag_set_metadata.get("version")
        return None if version is None else str(version)

    def _emit(self, record: dict[str, Any], line: str, *, stamp: bool = True) -> None:
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        with self._lock:
            if self._json:
                write_json({"time": now, **record}, stream=self._out, indent=None)
            else:
                write(f"{now} {line}" if stamp else line, stream=self._out)
