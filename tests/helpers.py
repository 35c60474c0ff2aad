"""Test helpers shared across files: metric read-back, a scripted provider, loop ticks,
CPU time with a cutoff."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType
from openfeature.provider import AbstractProvider, Metadata
from prometheus_client import CollectorRegistry


def counter_total(registry: CollectorRegistry, metric: str) -> float:
    """The sum of `metric`'s `_total` samples over all label values."""
    return sum(
        sample.value
        for family in registry.collect()
        if family.name == metric
        for sample in family.samples
        if sample.name == f"{metric}_total"
    )


def per_mode(registry: CollectorRegistry, metric: str) -> dict[str, float]:
    """`metric{batching_mode=...}` for every mode (each series must be exposed)."""
    values: dict[str, float] = {}
    for mode in ("per_request", "serial_bundle", "provider_batch_api"):
        value = registry.get_sample_value(metric, {"batching_mode": mode})
        assert value is not None, f"{metric}{{batching_mode={mode}}} is not exposed"
        values[mode] = value
    return values


def flag_errors(registry: CollectorRegistry, code: str) -> float:
    """`cj_llm_batching_flag_errors_total{error_code=code}` (0 when never recorded)."""
    value = registry.get_sample_value("cj_llm_batching_flag_errors_total", {"error_code": code})
    return value or 0.0


class ScriptedProvider(AbstractProvider):
    """A remote-style provider (not in-process, so the resolver's timeout applies) whose
    answers and start-up are scripted; counts the evaluations it receives."""

    def __init__(
        self,
        answer: Callable[[], FlagResolutionDetails[Any]],
        *,
        init_gate: threading.Event | None = None,
        fail_init: Exception | None = None,
    ) -> None:
        self._answer = answer
        self._init_gate = init_gate
        self._fail_init = fail_init
        self._lock = threading.Lock()
        self.calls = 0

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        if self._init_gate is not None:
            self._init_gate.wait(30)  # never set while a test runs: NOT_READY throughout
        if self._fail_init is not None:
            raise self._fail_init

    def get_metadata(self) -> Metadata:
        return Metadata(name="scripted")

    def _resolve(self) -> FlagResolutionDetails[Any]:
        with self._lock:
            self.calls += 1
        return self._answer()

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._resolve()

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return self._resolve()

    resolve_boolean_details = resolve_string_details  # type: ignore[assignment]
    resolve_integer_details = resolve_string_details  # type: ignore[assignment]
    resolve_float_details = resolve_string_details  # type: ignore[assignment]


@dataclass
class Ticks:
    """How often a background coroutine got to run (proof the loop was not blocked)."""

    count: int = 0


@asynccontextmanager
async def loop_ticks(interval: float = 0.01) -> AsyncIterator[Ticks]:
    """Count event-loop turns every `interval` seconds while the block runs."""
    ticks = Ticks()

    async def tick() -> None:
        while True:
            ticks.count += 1
            await asyncio.sleep(interval)

    task = asyncio.create_task(tick())
    try:
        yield ticks
    finally:
        task.cancel()


class CPUCutoff(BaseException):
    """A measured call ran past its cutoff (a BaseException, so that code under test that
    catches Exception cannot swallow it)."""


def cpu_seconds(call: Callable[[], object], *, cutoff: float | None = None) -> float:
    """CPU seconds the calling thread spent in `call()`: a loaded machine delays a test
    but does not make its own work cost more CPU, so bounds on this hold under load.

    With `cutoff` (main thread only: it takes a signal), the call is interrupted with
    CPUCutoff once the process has spent that much CPU on it, so a regression to a hang
    fails the test in seconds instead of stalling the suite for minutes.
    """
    armed = cutoff is not None and threading.current_thread() is threading.main_thread()
    if armed:

        def stop(signum: int, frame: object) -> None:
            raise CPUCutoff(f"still running after {cutoff:g} s of CPU")

        previous = signal.signal(signal.SIGPROF, stop)
        signal.setitimer(signal.ITIMER_PROF, cutoff or 0.0)
    started = time.thread_time()
    try:
        call()
    except CPUCutoff as exc:
        # A fresh traceback from here: the interrupted frames may have no line number,
        # which breaks pytest's report.
        raise CPUCutoff(str(exc)) from None
    finally:
        if armed:
            signal.setitimer(signal.ITIMER_PROF, 0)
            signal.signal(signal.SIGPROF, previous)
    return time.thread_time() - started
