"""Which replica serves what, as a real Prometheus sees it: two `serve-metrics` processes
(two replicas, each following its own flag file) scraped by /usr/bin/prometheus."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from flags.testing import wait_until, write_atomically

from .documents import batching_document

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
pytestmark = pytest.mark.skipif(
    not Path(PROMETHEUS).is_file(), reason="prometheus (Debian package prometheus) is not installed"
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _start_replica(flags: Path) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CJ_ASSESSMENT_SERVICE_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cj_batching",
            "serve-metrics",
            "--port",
            "0",
            "--flags",
            str(flags),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.search(r"http://(127\.0\.0\.1:\d+)/metrics", line)
    assert found, line
    return process, found.group(1)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[dict[str, Path], str]]:
    """Replicas `a` (flags v1) and `b` (flags v2), and the Prometheus API scraping both."""
    files = {name: tmp_path / name / "flags.yaml" for name in ("a", "b")}
    processes: list[subprocess.Popen[str]] = []
    try:
        targets = {}
        for name, version in (("a", "v1"), ("b", "v2")):
            files[name].parent.mkdir()
            files[name].write_text(yaml.safe_dump(batching_document(version=version)))
            process, address = _start_replica(files[name])
            processes.append(process)
            targets[name] = address
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {
                    "job_name": "cj",
                    "static_configs": [
                        {"targets": [address], "labels": {"replica": name}}
                        for name, address in targets.items()
                    ],
                }
            ],
        }
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        listen = f"127.0.0.1:{_free_port()}"
        processes.append(
            subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={tmp_path / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'data'}",
                    f"--web.listen-address={listen}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        yield files, f"http://{listen}"
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def _query(api: str, query: str) -> list[dict[str, Any]]:
    try:
        with httpx.Client(trust_env=False, timeout=5) as http:
            response = http.get(f"{api}/api/v1/query", params={"query": query})
    except httpx.TransportError:  # Prometheus still starting
        return []
    if response.status_code != 200:
        return []
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def _served(api: str) -> dict[str, tuple[str, str]]:
    """{replica: (version, status)} from cj_llm_batching_flags_info."""
    return {
        series["metric"]["replica"]: (series["metric"]["version"], series["metric"]["status"])
        for series in _query(api, "cj_llm_batching_flags_info == 1")
    }


def test_prometheus_shows_which_replica_serves_what(fleet: tuple[dict[str, Path], str]) -> None:
    files, api = fleet
    expected = {"a": ("v1", "ready"), "b": ("v2", "ready")}
    wait_until(lambda: _served(api) == expected, timeout=30, what=f"{expected} in Prometheus")
    versions = _query(api, "count by (version) (cj_llm_batching_flags_info)")
    assert {series["metric"]["version"] for series in versions} == {"v1", "v2"}

    # Replica b rejects its next version: it keeps serving v2, now with status error.
    broken = batching_document(version="v3")
    broken["flags"]["llm-batching-mode"]["defaultVariant"] = "fast"
    write_atomically(files["b"], yaml.safe_dump(broken))
    expected = {"a": ("v1", "ready"), "b": ("v2", "error")}
    wait_until(lambda: _served(api) == expected, timeout=30, what=f"{expected} in Prometheus")
    rejected = _query(api, 'cj_llm_batching_flags_rejected_total{replica="b"}')
    assert [float(series["value"][1]) for series in rejected] == [1.0]
