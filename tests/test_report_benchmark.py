"""benchmarks/report.py keeps working: its input is what it says, its child counts it all."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.report import _report_in_child, _write_events


def test_the_benchmark_input_is_distinct_valid_events(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    _write_events(path, 1_000, base_batches=20)  # 240 templates: copies get fresh ids
    lines = path.read_bytes().splitlines()
    events = [json.loads(line) for line in lines]
    assert len({e["event_id"] for e in events}) == len(lines) == 1_000
    batches = {e["data"]["request_metadata"]["cj_batch_id"] for e in events}
    assert len(batches) > 20  # copies are new batches too


def test_the_child_reports_every_event_and_its_memory(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    _write_events(path, 1_000, base_batches=20)
    child = _report_in_child(path)
    assert (child["results"], child["bad_lines"], child["duplicates"]) == (1_000, 0, 0)
    assert child["peak"] >= child["rss_before"] > 0
