"""A real Prometheus scraping two library processes: the runbook's per-arm PromQL answers right.

Two separate processes each serve a `BatchingMetrics` registry (`cj_batching.serve_metrics`)
and record the same steps of results while `/usr/bin/prometheus`, started on loopback with
a temporary config and data directory, scrapes both. The runbook's queries for the error
ratio per arm and the p95 response time per mode must then give the values the recorded
results imply, summed across both processes. Skipped when the binary is missing.
"""

from __future__ import annotations

import math
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
import yaml

from cj_batching.metrics.results import RESPONSE_BUCKETS
from flags.testing import wait_until

from .result_recorder import STEP
from .test_runbook import blocks

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus (Debian package prometheus) is not installed"
)
_STEPS = 3
_PER_STEP = sum(len(times) for times, _ in STEP.values())


def _runbook_query(*needles: str) -> str:
    (query,) = [q for q in blocks("promql") if all(n in q for n in needles)]
    return " ".join(query.split())


ERROR_RATIO = _runbook_query('outcome!="success"', "cj_llm_comparison_results_total")
P95_RESPONSE = _runbook_query("histogram_quantile(0.95", "cj_llm_comparison_response_seconds")


def expected_quantile(q: float, observations: list[float], buckets: tuple[float, ...]) -> float:
    """What Prometheus' histogram_quantile gives for these observations (linear in a bucket)."""
    bounds = [*buckets, math.inf]
    cumulative = [sum(1 for x in observations if x <= bound) for bound in bounds]
    rank = q * len(observations)
    index = next(i for i, count in enumerate(cumulative) if count >= rank)
    lower = 0.0 if index == 0 else bounds[index - 1]
    below = 0 if index == 0 else cumulative[index - 1]
    return lower + (bounds[index] - lower) * (rank - below) / (cumulative[index] - below)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class _Recorder:
    """One library process (tests/result_recorder.py) and its metrics URL."""

    def __init__(self, name: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.result_recorder", name],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.url = self._read_line()
        assert self.url.startswith("http://127.0.0.1:"), self.url

    def _read_line(self) -> str:
        stdout: IO[str] | None = self.process.stdout
        assert stdout is not None
        return stdout.readline().strip()  # bounded by the process's own exit on error

    def step(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("step\n")
        self.process.stdin.flush()
        assert self._read_line() == "ok"

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def recorders() -> Iterator[list[_Recorder]]:
    started: list[_Recorder] = []
    try:
        started.extend(_Recorder(name) for name in ("replica-a", "replica-b"))
        yield started
    finally:
        for recorder in started:
            recorder.stop()


@pytest.fixture
def prometheus(tmp_path: Path, recorders: list[_Recorder]) -> Iterator[str]:
    """A Prometheus on 127.0.0.1 scraping both recorders every half second; its base URL."""
    targets = [r.url.removeprefix("http://").removesuffix("/metrics") for r in recorders]
    config = {
        "global": {"scrape_interval": "500ms", "evaluation_interval": "500ms"},
        "scrape_configs": [{"job_name": "cj", "static_configs": [{"targets": targets}]}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = _free_port()
    assert PROMETHEUS is not None
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(trust_env=False, timeout=2) as http:
            wait_until(
                lambda: _ready(http, base), timeout=30, interval=0.1, what="prometheus ready"
            )
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _ready(http: httpx.Client, base: str) -> bool:
    try:
        return http.get(f"{base}/-/ready").status_code == 200
    except httpx.TransportError:
        return False


def query(base: str, promql: str) -> list[dict[str, Any]]:
    with httpx.Client(trust_env=False, timeout=5) as http:
        response = http.get(f"{base}/api/v1/query", params={"query": promql})
    body = response.json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def scalar(base: str, promql: str) -> float:
    result = query(base, promql)
    return float(result[0]["value"][1]) if result else math.nan


def test_runbook_queries_over_two_live_processes(
    recorders: list[_Recorder], prometheus: str
) -> None:
    wait_until(
        lambda: scalar(prometheus, 'count(up{job="cj"} == 1)') == 2,
        timeout=30,
        interval=0.1,
        what="both library processes scraped",
    )
    for step in range(1, _STEPS + 1):
        for recorder in recorders:
            recorder.step()
        expected = step * _PER_STEP * len(recorders)  # the redelivered event counted once
        wait_until(
            lambda total=expected: (
                scalar(prometheus, "sum(cj_llm_comparison_results_total)") == total
            ),
            timeout=30,
            interval=0.1,
            what=f"step {step} scraped from both processes",
        )
    ratios = {
        sample["metric"]["batching_mode"]: float(sample["value"][1])
        for sample in query(prometheus, ERROR_RATIO)
        if sample["metric"].get("cj_source") == "els" and sample["metric"]["batching_mode"] in STEP
    }
    assert ratios == {
        mode: pytest.approx(errors / len(times)) for mode, (times, errors) in STEP.items()
    }
    p95 = {
        sample["metric"]["batching_mode"]: float(sample["value"][1])
        for sample in query(prometheus, P95_RESPONSE)
        if sample["metric"]["batching_mode"] in STEP
    }
    expected_p95 = {
        mode: expected_quantile(0.95, [ms / 1000 for ms in times], RESPONSE_BUCKETS)
        for mode, (times, _) in STEP.items()
    }
    assert expected_p95 == {"serial_bundle": 1.95, "provider_batch_api": 29.0}
    assert p95 == {mode: pytest.approx(value) for mode, value in expected_p95.items()}
