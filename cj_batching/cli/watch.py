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

from cj_batching.cli._common import add_flags_option, load_settings
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
        "flags) or rejected (every problem; the service keeps its last good flags). "
        "Runs until Ctrl-C.",
    )
    add_flags_option(parser)
    parser.set_defaults(run=run)


def run(
    args: argparse.Namespace, *, stop: threading.Event | None = None, out: TextIO | None = None
) -> int:
    """Watch until interrupted (or until `stop` is set), printing to `out` (stdout)."""
    settings = load_settings(args.flags)
    if not args.verbose:  # every rejection is printed below; its log line would repeat it
        logging.getLogger("flags").setLevel(logging.CRITICAL)
    provider = FlagdFileProvider(
        settings.FLAGS_FILE,
        settings.FLAGS_POLL_INTERVAL_SECONDS,
        checks=batching_flag_checks(settings),
    )
    printer = _Printer(provider, sys.stdout if out is None else out)
    printer.write(
        f"watching {provider.path} every {settings.FLAGS_POLL_INTERVAL_SECONDS:g}s (Ctrl-C to stop)"
    )
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
    """Formats provider events as lines; events arrive on OpenFeature's thread pool."""

    def __init__(self, provider: FlagdFileProvider, out: TextIO) -> None:
        self._provider = provider
        self._out = out
        self._lock = threading.Lock()

    def initial(self) -> None:
        version = self._provider.flag_set_metadata.get("version")
        self._line(f"accepted version {version} (initial){self._warnings()}")

    def accepted(self, details: EventDetails) -> None:
        version = details.metadata.get("version")
        changed = ", ".join(details.flags_changed or []) or "none"
        self._line(f"accepted version {version}: flags changed: {changed}{self._warnings()}")

    def _warnings(self) -> str:
        """The warnings of the version in use, if any, on the same line."""
        warnings = self._provider.warnings
        if not warnings:
            return ""
        return f"; {len(warnings)} warning(s): " + "; ".join(str(w) for w in warnings)

    def rejected(self, details: EventDetails) -> None:
        # The event's own message names that version's problems; the start-up report
        # carries none, so the provider's current problems stand in.
        text = details.message or "; ".join(str(p) for p in self._provider.problems)
        problems = "; ".join(part.strip() for part in text.splitlines())
        self._line(f"REJECTED (keeping the last good flags): {problems or 'unknown problem'}")

    def _line(self, text: str) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self.write(f"{stamp} {text}")

    def write(self, line: str) -> None:
        with self._lock:
            self._out.write(f"{line}\n")
            self._out.flush()
