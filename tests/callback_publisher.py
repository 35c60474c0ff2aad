"""The loopback LPS publishing result callbacks: every queued comparison gets one, in a file.

`CallbackPublisher` is a `default` behaviour for `tests.lps_server.LPSServer`: it queues
each comparison (202 with a queue id) and writes the result callback LPS would later
publish on Kafka as one JSONL line (what `kcat -C ... -e` exports), drawn by a seeded
`CallbackSimulator` from the request's echoed metadata, so a test chooses per mode the
success rate, latency and cost and the same requests always get the same callbacks.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

from .callbacks import CallbackSimulator, to_line
from .lps_server import RecordedRequest, Reply, accepted

__all__ = ["CallbackPublisher"]


class CallbackPublisher:
    """Queue every comparison and append its result callback to `path`."""

    def __init__(self, simulator: CallbackSimulator, path: Path) -> None:
        self.simulator = simulator
        self.path = path
        self._lock = threading.Lock()
        self._file = path.open("ab")
        self.published = 0

    def __call__(self, request: RecordedRequest) -> Reply:
        body = request.body
        metadata = body.get("metadata", {}) if isinstance(body, dict) else {}
        correlation_id = request.correlation_id or str(uuid.uuid4())
        # Draws keyed by the metadata alone (essays, batch, mode, wave), not by the
        # random correlation id: the same experiment gives the same results every run.
        rng = random.Random(f"{self.simulator.seed}:{json.dumps(metadata, sort_keys=True)}")
        queue_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        envelope = self.simulator.callback_for(
            metadata,
            correlation_id=correlation_id,
            request_id=queue_id,
            requested_at=datetime.now(UTC),
            rng=rng,
        )
        with self._lock:
            self._file.write(to_line(envelope))
            self._file.flush()
            self.published += 1
        return accepted(queue_id)

    def close(self) -> None:
        """Flush and close the file."""
        with self._lock:
            self._file.close()
