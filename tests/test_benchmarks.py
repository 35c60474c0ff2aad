"""The benchmarks keep running (their figures are read by people, not asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_benchmarks_run_and_report_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "resolve",
            "wave",
            "guard",
            "--quick",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    names = {figure["name"] for figure in json.loads(out.read_text())["figures"]}
    assert {
        "resolve.hit_vs_openfeature",
        "resolve.hit_vs_dict",
        "resolve.miss_with_allow_list",
        "resolve.miss_mode_flag_only",
        "wave.prepare_per_comparison",
        "guard.observe_vs_counter",
        "guard.diverts_vs_dict",
    } <= names
    for name in names:
        assert name in done.stdout  # one printed line per figure


def test_unknown_benchmark_is_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "nope" in done.stderr
