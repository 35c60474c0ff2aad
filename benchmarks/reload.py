"""Flag edit to first new answer: how long after an atomic edit of the flag file the
resolver returns the new mode, with the default poll interval (0.25 s).

Ours: `cj_batching.configure(settings)` with `FLAGS_FILE` in a temporary directory (a
`FlagdFileProvider`, polled by content, with the service's batching checks), asked
through `resolver.resolve()` (so the cache must be dropped by the change event too).
Baseline: the official `openfeature-provider-flagd` provider in FILE mode
(`FlagdProvider(resolver_type=ResolverType.FILE, offline_flag_source_path=...)`, mtime
polled every `deadline_ms`, 500 ms by default), asked through `get_string_details`.

Both watch the same file at the same time, so they see the same edits under the same
load. Each edit is the shipped `flags.yaml` with the ENG5 rule's variant flipped between
`provider_batch_api` and `per_request` and `metadata.version` bumped, written with
`flags.testing.write_atomically`; the clock starts just before the write and stops at
the first answer with the new mode (both are probed every millisecond). A random pause
(0-0.5 s, seeded) precedes each edit, so edits land at random phases of both pollers.
A flagd daemon, for comparison, polls its files every 1 s.
"""

from __future__ import annotations

import random
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Final

from benchmarks._measure import Figure, Run, percentile, progress
from benchmarks._setup import FLAGS_YAML, bench_settings, context, domain
from cj_batching import configure
from cj_batching.resolver import flag_evaluation_context
from flags import bind_provider
from flags.testing import write_atomically

__all__ = ["run"]

P95_LIMIT_SECONDS = 0.350
_PROBE_SECONDS = 0.001
_GIVE_UP_SECONDS = 5.0
_ENG5_RULE: Final = re.compile(
    r"(\$ref: from_eng5_runner\s*\n\s*- )(provider_batch_api|per_request)\b"
)
_VERSION: Final = re.compile(r'(\n  version: )"[^"\n]*"')
_MODES: Final = ("provider_batch_api", "per_request")


def _edit(text: str, index: int) -> tuple[str, str]:
    """The shipped file with the ENG5 variant and the version of edit `index`."""
    mode = _MODES[index % 2]
    edited, rules = _ENG5_RULE.subn(lambda m: f"{m.group(1)}{mode}", text)
    edited, versions = _VERSION.subn(lambda m: f'{m.group(1)}"bench-reload-{index}"', edited)
    if rules != 1 or versions != 1:
        raise RuntimeError(
            "flags.yaml no longer has exactly one ENG5 rule (`- $ref: from_eng5_runner` then "
            "a mode) and one metadata.version line: update benchmarks/reload.py"
        )
    return edited, mode


def _flagd_file_provider(path: Path) -> Any:
    from openfeature.contrib.provider.flagd import FlagdProvider
    from openfeature.contrib.provider.flagd.config import ResolverType

    return FlagdProvider(resolver_type=ResolverType.FILE, offline_flag_source_path=str(path))


def run(options: Run) -> list[Figure]:
    edits = options.pick(30, 6)
    rng = random.Random(20261125)
    shipped = FLAGS_YAML.read_text(encoding="utf-8")
    ours_latencies: list[float] = []
    flagd_latencies: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-reload-") as tmp:
        path = Path(tmp) / "flags.yaml"
        first, _ = _edit(shipped, 0)
        write_atomically(path, first)
        settings = bench_settings(FLAGS_PROVIDER="file", FLAGS_FILE=path)
        resolver = configure(settings, domain=domain("reload"))
        flagd = _flagd_file_provider(path)
        flagd_client = bind_provider(flagd, domain("reload-flagd"))
        ctx = context(42, "eng5_runner", "openai")
        evaluation_args = (settings.LLM_BATCHING_FLAG_KEY, settings.LLM_BATCHING_MODE.value)
        evaluation = flag_evaluation_context(ctx, ctx.provider or settings.DEFAULT_LLM_PROVIDER)

        def ours() -> str:
            return resolver.resolve(ctx).mode.value

        def theirs() -> str:
            return str(flagd_client.get_string_details(*evaluation_args, evaluation).value)

        try:
            if ours() != _MODES[0] or theirs() != _MODES[0]:
                raise RuntimeError(
                    f"before the first edit: ours {ours()!r}, flagd {theirs()!r}; "
                    f"expected {_MODES[0]!r} for {ctx}"
                )
            progress(f"reload: {edits} atomic edits, ours (0.25 s poll) and flagd FILE mode")
            for index in range(1, edits + 1):
                time.sleep(rng.uniform(0.0, 0.5))
                text, mode = _edit(shipped, index)
                started = time.perf_counter()
                write_atomically(path, text)
                ours_at, theirs_at = _wait_for(mode, ours, theirs, started)
                ours_latencies.append(ours_at - started)
                flagd_latencies.append(theirs_at - started)
        finally:
            resolver.close()
            resolver.client.provider.shutdown()
            _stop_flagd(flagd)
    details = {
        "edits": edits,
        "poll_interval_seconds": settings.FLAGS_POLL_INTERVAL_SECONDS,
        "flagd_poll_seconds": flagd.config.deadline_ms / 1000,
        "ours_seconds": ours_latencies,
        "flagd_seconds": flagd_latencies,
        "ours_max": max(ours_latencies),
        "flagd_max": max(flagd_latencies),
    }
    return [
        Figure(
            "reload.p50",
            percentile(ours_latencies, 0.50),
            percentile(flagd_latencies, 0.50),
            "s",
            "info",
            None,
            details,
        ),
        Figure(
            "reload.p95",
            percentile(ours_latencies, 0.95),
            percentile(flagd_latencies, 0.95),
            "s",
            "max",
            P95_LIMIT_SECONDS,
            details,
        ),
    ]


def _stop_flagd(provider: Any) -> None:
    """Shut the flagd provider down and wait for its file watcher to stop: it checks
    `active` only after its sleep, so it would otherwise poll once more and log a
    traceback for the temporary file that is about to disappear."""
    provider.shutdown()
    thread = getattr(getattr(provider.resolver, "connector", None), "thread", None)
    if thread is not None:
        thread.join(timeout=2.0)


def _wait_for(mode: str, ours: Any, theirs: Any, started: float) -> tuple[float, float]:
    """When each side first answered `mode` (inf if not within the give-up time)."""
    ours_at = theirs_at = float("inf")
    deadline = started + _GIVE_UP_SECONDS
    while True:
        if ours_at == float("inf") and ours() == mode:
            ours_at = time.perf_counter()
        if theirs_at == float("inf") and theirs() == mode:
            theirs_at = time.perf_counter()
        done = ours_at < float("inf") and theirs_at < float("inf")
        if done or time.perf_counter() >= deadline:
            return ours_at, theirs_at
        time.sleep(_PROBE_SECONDS)
