"""A library process for the live Prometheus test: serves a registry, records on command.

`python -m tests.result_recorder NAME` creates `BatchingMetrics` on a private registry,
serves it with `cj_batching.serve_metrics` on an ephemeral loopback port, prints the URL,
then for every `step` line on stdin records one step of results (`STEP`, the same in
every process: the numbers the test expects) and answers `ok`. It exits at end of input.
"""

from __future__ import annotations

import sys
import uuid
from typing import Any

from prometheus_client import CollectorRegistry

from cj_batching import BatchingMetrics, serve_metrics

from .callbacks import ArmProfile, CallbackSimulator, request_metadata

# Per step and mode: (response times in ms, how many of them are errors).
STEP: dict[str, tuple[list[int], int]] = {
    # p95 strictly inside a bucket: a rank that falls exactly on a bucket edge (19 of 20
    # at or below 2 s) lands in the next bucket or not by floating-point noise in
    # Prometheus' rate() extrapolation, which differs per process.
    "serial_bundle": ([1_500] * 19 + [1_800], 2),  # 10 % errors; p95 1.95 s in (1, 2]
    "provider_batch_api": ([8_000] * 10 + [25_000] * 10, 6),  # 30 %; p95 in (20, 30]
}


def step_events(name: str, step: int) -> list[dict[str, Any]]:
    """The envelopes one step records in process `name` (fresh event ids per step)."""
    events = []
    for mode, (times, errors) in STEP.items():
        ok = CallbackSimulator({mode: ArmProfile(success_rate=1.0)}, seed=step)
        failing = CallbackSimulator({mode: ArmProfile(success_rate=0.0)}, seed=step)
        for index, ms in enumerate(times):
            simulator = failing if index < errors else ok
            metadata = request_metadata(f"{name}-{step}", mode, index)
            correlation = uuid.uuid5(uuid.NAMESPACE_URL, f"{name}/{step}/{mode}/{index}")
            envelope = simulator.callback_for(metadata, correlation_id=str(correlation))
            envelope["data"]["response_time_ms"] = ms
            events.append(envelope)
    return events


def main() -> int:
    name = sys.argv[1]
    registry = CollectorRegistry()
    metrics = BatchingMetrics(registry)
    server = serve_metrics(registry=registry)
    print(server.url, flush=True)
    step = 0
    try:
        for line in sys.stdin:
            if line.strip() != "step":
                continue
            step += 1
            events = step_events(name, step)
            for envelope in events:
                metrics.record_result(envelope)
            metrics.record_result(events[0])  # a Kafka redelivery: counted once
            print("ok", flush=True)
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
