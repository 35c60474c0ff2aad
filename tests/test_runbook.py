"""docs/operations.md: every sh block runs as written, in order, and after each one the
live flags.yaml has the version that block publishes and does what its section says;
every promql block passes promtool; every yaml block parses."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from cj_batching import BatchConfigOverrides, BatchContext, LLMBatchingMode, Resolution
from cj_batching.flag_checks import batching_flag_checks
from flags import load_document

from .conftest import ResolverFactory, make_settings

ROOT = Path(__file__).resolve().parent.parent
RUNBOOK = ROOT / "docs" / "operations.md"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_HEADING = re.compile(r"^## (.+)$", re.MULTILINE)
# `uv run X` is X inside the project's environment; this test already runs in it.
_PRELUDE = 'uv() { if [ "$1" = run ]; then shift; "$@"; else command uv "$@"; fi; }\n'

BATCH_API = LLMBatchingMode.PROVIDER_BATCH_API
SERIAL = LLMBatchingMode.SERIAL_BUNDLE
PER_REQUEST = LLMBatchingMode.PER_REQUEST
SHIPPED_VERSION = "2026-12-01.1"


@dataclass(frozen=True)
class Block:
    kind: str
    body: str
    section: str


def blocks(kind: str) -> list[str]:
    """The bodies of the runbook's `kind` blocks, in order (other tests read them too)."""
    return [block.body for block in sections(kind)]


def sections(kind: str) -> list[Block]:
    """The runbook's `kind` blocks with the section each one is in."""
    text = RUNBOOK.read_text()
    headings = [(match.start(), match.group(1)) for match in _HEADING.finditer(text)]
    found = []
    for match in _FENCE.finditer(text):
        section = next((h for start, h in reversed(headings) if start < match.start()), "")
        found.append(Block(match.group(1), match.group(2), section))
    return [block for block in found if block.kind == kind]


@dataclass
class State:
    """What the checks see after a block: its output, the live and previous documents."""

    output: str
    document: dict[str, Any]
    previous: dict[str, Any] | None
    resolve: Callable[..., Resolution]


Check = Callable[[State, "dict[str, State]"], None]


@dataclass(frozen=True)
class Step:
    section: str
    version: str
    check: Check
    changes: bool = True  # a change block leaves no flags.new.yaml and a fresh prev copy


def _without_version(document: dict[str, Any]) -> dict[str, Any]:
    copy = {**document, "metadata": dict(document["metadata"])}
    copy["metadata"].pop("version")
    return copy


def see_what_runs(state: State, _: dict[str, State]) -> None:
    assert "els: 20 % provider_batch_api / 80 % serial_bundle, sticky per batch id" in state.output
    assert state.resolve(42, "eng5_runner", "anthropic").mode is BATCH_API


def one_source(state: State, _: dict[str, State]) -> None:
    assert "bos: 10 000 of 10 000 move serial_bundle -> per_request" in state.output
    assert "=> per_request (decided by flag)" in state.output
    resolution = state.resolve(7, "bos", "openai")
    assert (resolution.mode, resolution.decided_by) == (PER_REQUEST, "flag")
    assert state.resolve(7, "eng5_runner", "openai").mode is BATCH_API  # the rest unchanged


def preview(state: State, _: dict[str, State]) -> None:
    assert "20.0% (weight 20)" in state.output
    assert '"guardrail_downgrades": 2000' in state.output  # eng5_runner on google


def widen(state: State, before: dict[str, State]) -> None:
    assert "none move the other way" in state.output
    assert "els: 50 % provider_batch_api / 50 % serial_bundle, sticky per batch id" in state.output
    narrow = before["Preview a percentage rollout"]
    for batch_id in range(1, 2001):  # nothing left the batch API: the arms stay clean
        if narrow.resolve(batch_id, "els", "openai").mode is BATCH_API:
            assert state.resolve(batch_id, "els", "openai").mode is BATCH_API


def roll_back(state: State, before: dict[str, State]) -> None:
    undone = before["Preview a percentage rollout"].document
    assert _without_version(state.document) == _without_version(undone)
    assert state.previous is not None
    assert state.previous["metadata"]["version"] == "2026-12-01.3"  # what was rolled back
    assert "els: 20 % provider_batch_api / 80 % serial_bundle" in state.output


def disable(state: State, _: dict[str, State]) -> None:
    assert "=> serial_bundle (decided by default)" in state.output
    assert state.document["flags"]["llm-batching-mode"]["state"] == "DISABLED"
    resolution = state.resolve(42, "eng5_runner", "anthropic")
    assert (resolution.mode, resolution.decided_by) == (SERIAL, "default")


def drop_provider(state: State, _: dict[str, State]) -> None:
    assert "anthropic may not use provider_batch_api" in state.output
    resolution = state.resolve(42, "els", "anthropic", override=BATCH_API)
    assert (resolution.mode, resolution.guardrail_applied) == (SERIAL, True)
    assert state.resolve(42, "els", "openai", override=BATCH_API).mode is BATCH_API


STEPS = [
    Step("See what runs", SHIPPED_VERSION, see_what_runs, changes=False),
    Step("Change the mode for one source", "2026-12-01.2", one_source),
    Step("Preview a percentage rollout", "2026-12-01.2", preview, changes=False),
    Step("Widen a rollout", "2026-12-01.3", widen),
    Step("Roll back", "2026-12-01.4", roll_back),
    Step("Kill switches", "2026-12-01.5", disable),
    Step("Kill switches", "2026-12-01.6", drop_provider),
]


def test_every_shell_block_has_a_step() -> None:
    assert [block.section for block in sections("sh")] == [step.section for step in STEPS]


def test_the_shipped_file_has_the_version_the_runbook_starts_from() -> None:
    shipped = yaml.safe_load((ROOT / "flags.yaml").read_text())
    assert shipped["metadata"]["version"] == SHIPPED_VERSION


def test_every_shell_block_runs_as_written_and_does_what_it_says(
    tmp_path: Path, make_resolver: ResolverFactory
) -> None:
    shutil.copy(ROOT / "flags.yaml", tmp_path / "flags.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CJ_ASSESSMENT_SERVICE_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    settings = make_settings()
    seen: dict[str, State] = {}
    version = SHIPPED_VERSION
    for number, (block, step) in enumerate(zip(sections("sh"), STEPS, strict=True), 1):
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", _PRELUDE + block.body],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        where = f"block {number} ({block.section}):\n{block.body}\n{done.stdout}\n{done.stderr}"
        assert done.returncode == 0, where
        # No warning (a typo'd source, an unknown setting) or stray log line, except the
        # guardrail's, which a preview of a refused provider logs once.
        unexpected = [e for e in done.stderr.splitlines() if "is not allowed for provider" not in e]
        assert unexpected == [], where
        document = load_document(
            tmp_path / "flags.yaml", checks=batching_flag_checks(settings)
        ).document
        assert document["metadata"]["version"] == step.version, where
        previous = None
        if step.changes:
            assert not (tmp_path / "flags.new.yaml").exists(), where
            previous = yaml.safe_load((tmp_path / "flags.prev.yaml").read_text())
            if step.section != "Roll back":  # a fresh copy of the version it replaced
                assert previous["metadata"]["version"] == version, where
        resolver, _ = make_resolver(document)

        def resolve(
            batch_id: int,
            source: str,
            provider: str,
            *,
            override: LLMBatchingMode | None = None,
            resolver: Any = resolver,
        ) -> Resolution:
            overrides = BatchConfigOverrides(llm_batching_mode_override=override)
            context = BatchContext(batch_id, source, provider, overrides=overrides)
            result: Resolution = resolver.resolve_uncached(context)
            return result

        state = State(done.stdout, document, previous, resolve)
        step.check(state, seen)
        seen.setdefault(step.section, state)
        version = step.version


def test_promql_queries_are_valid(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool (Debian package prometheus) is not installed")
    queries = blocks("promql")
    assert len(queries) >= 5
    rules = {
        "groups": [
            {
                "name": "runbook",
                "rules": [
                    {"record": f"runbook:query{number}", "expr": " ".join(query.split())}
                    for number, query in enumerate(queries)
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


_REFERENCE = re.compile(r"\bsee\s+\*([^*]+)\*")
_ANY_HEADING = re.compile(r"^#{2,4} (.+)$", re.MULTILINE)


@pytest.mark.parametrize(
    "path", [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.name
)
def test_every_section_a_page_points_to_exists(path: Path) -> None:
    text = path.read_text()
    headings = set(_ANY_HEADING.findall(text))
    named = {" ".join(title.split()) for title in _REFERENCE.findall(text)}
    assert named <= headings, f"no such section: {sorted(named - headings)}"


_LOOP_STEP = re.compile(r"^#\s+(\d+)\. (.*)$", re.MULTILINE)
_COMMAND = re.compile(r"((?:cp|mv|uv run) [^(`]*?)\s*(?:\(|$)")


def _header_steps() -> dict[int, str]:
    """flags.yaml's change loop: step number -> its command ('' when it names none)."""
    header = (ROOT / "flags.yaml").read_text().split("\n\n")[0]
    steps = {}
    for number, text in _LOOP_STEP.findall(header):
        command = _COMMAND.search(text)
        steps[int(number)] = " ".join(command.group(1).split()) if command else ""
    return steps


def _runbook_steps() -> dict[int, str]:
    """The runbook's change loop: step number -> its command line."""
    (loop,) = [block.body for block in sections("text") if block.section.startswith("The change")]
    steps = {}
    for line in loop.splitlines():
        command, _, comment = line.partition("#")
        number = re.match(r"\s*(\d+)\.", comment)
        assert number, line
        steps[int(number.group(1))] = " ".join(command.split())
    return steps


def test_the_flag_file_numbers_the_change_loop_as_the_runbook_does() -> None:
    """flags.yaml's header and the runbook (whose bullets say "Step 5") share one loop."""
    header, runbook = _header_steps(), _runbook_steps()
    assert sorted(header) == sorted(runbook)
    for number, command in header.items():
        assert runbook[number].startswith(command), (number, command, runbook[number])
