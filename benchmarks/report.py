"""`cj-batching report` over 1 000 000 result events: time against `json.loads`, and memory.

The input is a JSONL file as `kcat -C ... -e` writes it: 24 000 distinct callbacks from
the test simulator (a 20/80 rollout of 2 000 batches of 12 comparisons, realistic
envelopes of ~1.2 KB), repeated with fresh event ids and batch ids up to the count, so
every event is counted (no duplicates) and the batches number about 83 000.

Ours: `ExperimentReport.from_files([path])` (read, parse, aggregate, the bootstrap:
1 000 replicates) in a child process, so its peak RSS (VmHWM) is its own; numpy and
the package are imported before the baseline reading (their code is not data).
Baseline: `json.loads` of every line of the same file, read the same way, in this
process, run before and after the child (the mean of the two, so drift hits both).
Memory: the child's VmHWM after the report minus its VmRSS before reading.
`results.dedup_memory` is informational: the RSS of `RecentIds` holding 1 000 000 ids.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Final

from benchmarks._measure import Figure, Run, progress, rss_bytes
from benchmarks._setup import REPO
from cj_batching.results import RecentIds
from tests.callbacks import ArmProfile, CallbackSimulator, to_line

__all__ = ["run"]

OVER_JSON_LOADS: Final = 4.0
RSS_LIMIT_MB: Final = 200.0
_BASE_BATCHES: Final = 2_000

_CHILD: Final = """
import json, sys, time
import numpy
from cj_batching.report import ExperimentReport

def status(field):
    with open("/proc/self/status", encoding="ascii") as lines:
        return next(int(l.split()[1]) * 1024 for l in lines if l.startswith(field))

before = status("VmRSS:")
started = time.perf_counter()
report = ExperimentReport.from_files([sys.argv[1]])
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "rss_before": before, "peak": status("VmHWM:"),
                  "results": report.results, "bad_lines": report.bad_lines,
                  "duplicates": report.duplicates, "arms": len(report.arms),
                  "batches": sum(arm.batches for arm in report.arms)}))
"""


def _write_events(path: Path, count: int, base_batches: int = _BASE_BATCHES) -> int:
    """`count` distinct events in `path` from `base_batches` simulated batches of 12,
    repeated with fresh ids; returns the file's size in bytes."""
    profiles = {
        "serial_bundle": ArmProfile(),
        "provider_batch_api": ArmProfile(success_rate=0.85, turnaround_s=3600, cost_usd=0.001),
    }
    simulator = CallbackSimulator(profiles, seed=2026)
    base = list(
        simulator.experiment(
            batches=base_batches, weights={"serial_bundle": 80, "provider_batch_api": 20}
        )
    )
    templates = [
        (
            to_line(envelope),
            envelope["event_id"].encode(),
            f'"cj_batch_id":"{envelope["data"]["request_metadata"]["cj_batch_id"]}"'.encode(),
        )
        for envelope in base
    ]
    with path.open("wb") as out:
        for number in range(count):
            line, event_id, batch = templates[number % len(templates)]
            copy = number // len(templates)
            if copy:
                fresh = str(uuid.UUID(int=(copy << 64) | number, version=4)).encode()
                line = line.replace(event_id, fresh, 1)
                line = line.replace(batch, batch[:-1] + b"-" + str(copy).encode() + b'"', 1)
            out.write(line)
    return path.stat().st_size


def _json_loads_seconds(path: Path) -> float:
    loads = json.loads
    started = time.perf_counter()
    with path.open("rb") as lines:
        for line in lines:
            loads(line)
    return time.perf_counter() - started


def _report_in_child(path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _dedup_memory_mb(ids: int) -> float:
    gc.collect()
    before = rss_bytes()
    recent = RecentIds(ids)
    for number in range(ids):
        recent.first_time(uuid.UUID(int=number << 32 | 7).int)
    gc.collect()
    grown = rss_bytes() - before
    del recent
    return grown / 1e6


def run(options: Run) -> list[Figure]:
    count = options.pick(1_000_000, 100_000)
    with tempfile.TemporaryDirectory(prefix="bench-report-") as folder:
        path = Path(folder) / "results.jsonl"
        progress(f"report: writing {count:,} result events")
        size = _write_events(path, count)
        progress(
            f"report: json.loads baseline, report in a child, baseline again ({size / 1e6:,.0f} MB)"
        )
        first = _json_loads_seconds(path)
        child = _report_in_child(path)
        second = _json_loads_seconds(path)
    baseline = (first + second) / 2
    growth_mb = (child["peak"] - child["rss_before"]) / 1e6
    details = {
        "events": count,
        "file_mb": size / 1e6,
        "report_seconds": child["seconds"],
        "json_loads_seconds": [first, second],
        "per_event_report_seconds": child["seconds"] / count,
        "per_event_json_loads_seconds": baseline / count,
        "results": child["results"],
        "bad_lines": child["bad_lines"],
        "duplicates": child["duplicates"],
        "arms": child["arms"],
        "batches": child["batches"],
        "rss_before_mb": child["rss_before"] / 1e6,
        "peak_rss_mb": child["peak"] / 1e6,
    }
    if child["results"] != count:
        raise RuntimeError(f"report counted {child['results']:,} of {count:,} events: {details}")
    progress("report: RecentIds with 1,000,000 ids")
    dedup_mb = _dedup_memory_mb(1_000_000)
    return [
        Figure(
            "report.vs_json_loads",
            child["seconds"],
            baseline,
            "s",
            "ratio",
            OVER_JSON_LOADS,
            details,
        ),
        Figure("report.rss_growth", growth_mb, None, "MB", "max", RSS_LIMIT_MB, details),
        Figure(
            "results.dedup_memory",
            dedup_mb,
            None,
            "MB",
            "info",
            None,
            {"ids": 1_000_000, "per_id_bytes": dedup_mb * 1e6 / 1_000_000},
        ),
    ]
