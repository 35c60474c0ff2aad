"""docs/operations.md: every sh block runs as written; PromQL and YAML blocks are valid."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
RUNBOOK = ROOT / "docs" / "operations.md"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
# `uv run X` is X inside the project's environment; this test already runs in it.
_PRELUDE = 'uv() { if [ "$1" = run ]; then shift; "$@"; else command uv "$@"; fi; }\n'


def blocks(kind: str) -> list[str]:
    return [body for info, body in _BLOCK.findall(RUNBOOK.read_text()) if info == kind]


def test_runbook_has_runnable_blocks() -> None:
    assert len(blocks("sh")) >= 8
    assert len(blocks("promql")) >= 5


def test_every_shell_block_runs_as_written(tmp_path: Path) -> None:
    shutil.copy(ROOT / "flags.yaml", tmp_path / "flags.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CJ_ASSESSMENT_SERVICE_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    outputs = []
    for number, body in enumerate(blocks("sh"), 1):
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", _PRELUDE + body],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"block {number} failed:\n{body}\n{done.stdout}\n{done.stderr}"
        outputs.append(done.stdout)
    text = "\n".join(outputs)
    # The edits did what the runbook says they do.
    assert "=> per_request (decided by flag)" in text  # bos -> per_request
    assert "50.0% (weight 50)" in text  # the widened rollout
    assert "=> serial_bundle (decided by default)" in text  # state: DISABLED
    assert "anthropic may not use provider_batch_api" in text  # allow list without anthropic


def test_promql_queries_are_valid(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool (Debian package prometheus) is not installed")
    rules = {
        "groups": [
            {
                "name": "runbook",
                "rules": [
                    {"record": f"runbook:query{number}", "expr": " ".join(query.split())}
                    for number, query in enumerate(blocks("promql"))
                ],
            }
        ]
    }
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules))
    done = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_yaml_examples_parse() -> None:
    for body in blocks("yaml"):
        assert list(yaml.safe_load_all(body))
