"""The shipped Prometheus rules (deploy/prometheus/): valid, unit-tested with promtool,
and built on the series the library really exposes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from cj_batching import BatchingMetrics

RULES_DIR = Path(__file__).resolve().parent.parent / "deploy" / "prometheus"
RULES = RULES_DIR / "cj-batching-rollout.rules.yml"
RULE_TESTS = RULES_DIR / "cj-batching-rollout.rules.test.yml"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool (Debian package prometheus) is not installed on PATH")
    return subprocess.run(
        [promtool, *args],
        cwd=RULES_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_rules_pass_promtool_check() -> None:
    done = _promtool("check", "rules", RULES.name)
    assert done.returncode == 0, done.stdout + done.stderr


def test_rule_unit_tests_pass() -> None:
    # Alerts on a regression across two replicas, none on equal arms, on low volume or
    # on non-randomised results; the guard's trip alert fires and clears with the gauge.
    done = _promtool("test", "rules", RULE_TESTS.name)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_guard_gauge_the_alert_reads_is_exposed_with_its_labels() -> None:
    registry = CollectorRegistry()
    BatchingMetrics(registry)
    labels = {
        frozenset(sample.labels)
        for family in registry.collect()
        for sample in family.samples
        if sample.name == "cj_llm_batching_guard_tripped"
    }
    assert labels == {frozenset({"batching_mode", "cj_source"})}
    assert "cj_llm_batching_guard_tripped" in RULES.read_text()
