"""`cj-batching serve-metrics`: the batching counters in Prometheus text format."""

from __future__ import annotations

import argparse
import threading
from typing import Any

from cj_batching.cli._arguments import add_flags_option
from cj_batching.cli._common import UsageError, load_settings, open_resolver
from cj_batching.cli._flag_file import flag_file
from cj_batching.cli._terminal import write
from cj_batching.metrics import BatchingMetrics
from cj_batching.metrics_server import serve_metrics

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Register `serve-metrics`."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "serve-metrics",
        help="expose the batching metrics for Prometheus (until Ctrl-C)",
        description="Serve the cj_llm_* metrics (and the process collectors) at "
        "http://HOST:PORT/metrics, following the flag file like a replica does (so "
        "cj_llm_batching_flags_info shows the version it would serve). In a service, "
        "call cj_batching.serve_metrics() instead.",
    )
    parser.add_argument("--port", type=int, default=9108, help="TCP port (default 9108; 0: any)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback only)"
    )
    add_flags_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, *, stop: threading.Event | None = None) -> int:
    """Serve until interrupted (or until `stop` is set, for tests)."""
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port: {args.port} is not a TCP port; allowed: 0..65535")
    settings = load_settings(args.flags)
    flag_file(settings, args.flags)
    with open_resolver(settings, BatchingMetrics()):
        try:
            server = serve_metrics(args.port, args.host)
        except OSError as exc:
            message = f"cannot listen on {args.host}:{args.port}: {exc.strerror}"
            raise UsageError(message) from None
        write(f"serving metrics at {server.url} (Ctrl-C to stop)")
        try:
            (stop or threading.Event()).wait()
        finally:
            server.close()
    return 0
