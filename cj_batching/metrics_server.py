"""Serving a Prometheus registry over HTTP, on loopback unless told otherwise."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server

__all__ = ["MetricsServer", "serve_metrics"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MetricsServer:
    """A running exposition endpoint; `close()` stops it."""

    server: WSGIServer
    thread: Thread

    @property
    def url(self) -> str:
        """Where Prometheus scrapes: `http://HOST:PORT/metrics`."""
        host, port = self.server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
        name = f"[{name}]" if ":" in name else name  # an IPv6 literal
        return f"http://{name}:{port}/metrics"

    def close(self) -> None:
        """Stop serving and wait for the server thread."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def serve_metrics(
    port: int = 0, host: str = "127.0.0.1", registry: CollectorRegistry | None = None
) -> MetricsServer:
    """Expose `registry` (default: the global one) in Prometheus text format.

    Binds loopback by default: exposing metrics beyond the host is a deployment decision
    (pass `host="0.0.0.0"`). `port=0` picks a free port (see `MetricsServer.url`).
    """
    server, thread = start_http_server(
        port, addr=host, registry=REGISTRY if registry is None else registry
    )
    handle = MetricsServer(server, thread)
    _log.info("serving metrics", extra={"metrics_url": handle.url})
    return handle
