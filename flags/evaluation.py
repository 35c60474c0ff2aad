"""Bounded, normalised evaluation of one flag on an OpenFeature client.

OpenFeature has no evaluation timeout and lets provider exceptions surface as tracebacks
in its logs; a caller on a submission path needs an answer, always, and soon. In-process
providers (no I/O) answer inline; any other provider is asked in a worker thread and
given `timeout_seconds`. Every outcome comes back as a `FlagAnswer`; nothing raises.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Final, NamedTuple

from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagEvaluationDetails
from openfeature.provider.no_op_provider import PASSED_IN_DEFAULT

from flags.evaluator import evaluates_in_process

__all__ = ["EVALUATION_TIMEOUT", "FlagAnswer", "FlagEvaluator"]

EVALUATION_TIMEOUT: Final = "TIMEOUT"
"""The error code of an evaluation that did not answer within the bound."""

_NO_METADATA: Mapping[str, Any] = {}
# Evaluations of a remote provider in flight at once; each waits at most its timeout, and
# a hung provider ties up these threads, never the caller's.
_WORKERS: Final = 4


class FlagAnswer(NamedTuple):
    """One evaluation, normalised: `value` is the flag's answer only when `error` is None
    and `variant` is set (else it is the caller's default)."""

    value: object
    variant: str | None
    reason: str | None
    error: str | None = None
    message: str | None = None
    version: str | None = None  # the flag set's (or flag's) metadata "version"
    metadata: Mapping[str, Any] = _NO_METADATA  # the flag's metadata, as the provider gave it


class FlagEvaluator:
    """Evaluates flags on `client`, each answer bounded by `timeout_seconds`.

    Thread-safe. The worker threads (for providers that do I/O) start on first need;
    `close()` releases them and is idempotent.
    """

    def __init__(self, client: OpenFeatureClient, *, timeout_seconds: float) -> None:
        if not 0 < timeout_seconds <= 60:
            raise ValueError(f"timeout_seconds: {timeout_seconds!r} must be > 0 and <= 60")
        self._client = client
        self._timeout = timeout_seconds
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._in_process: tuple[object, bool] = (None, False)

    @property
    def client(self) -> OpenFeatureClient:
        """The client flags are evaluated on."""
        return self._client

    @property
    def in_process(self) -> bool:
        """Whether the bound provider answers from memory (checked once per provider)."""
        provider = self._client.provider
        if self._in_process[0] is not provider:
            self._in_process = (provider, evaluates_in_process(provider))
        return self._in_process[1]

    def evaluate(self, key: str, default: Any, context: EvaluationContext) -> FlagAnswer:
        """The flag's answer for `context`; a string flag when `default` is a str, else an
        object flag. Provider failures, exceptions and timeouts become error answers."""
        evaluate = (
            self._client.get_string_details
            if isinstance(default, str)
            else self._client.get_object_details
        )
        try:
            if self.in_process:
                return _normalise(evaluate(key, default, context))
            return _normalise(self._in_worker(evaluate, key, default, context))
        except FutureTimeout:
            message = f"no answer within {self._timeout:g}s"
            return FlagAnswer(default, None, "ERROR", EVALUATION_TIMEOUT, message)
        except Exception as exc:  # a hook or provider bug must not reach the caller
            return FlagAnswer(default, None, "ERROR", "GENERAL", f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        """Release the worker threads (idempotent; evaluations after it start new ones)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _in_worker(
        self, evaluate: Any, key: str, default: Any, context: EvaluationContext
    ) -> FlagEvaluationDetails[Any]:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="flags-eval")
            future = self._pool.submit(evaluate, key, default, context)
        try:
            result: FlagEvaluationDetails[Any] = future.result(self._timeout)
        except FutureTimeout:
            future.cancel()
            raise
        return result


def _normalise(details: FlagEvaluationDetails[Any]) -> FlagAnswer:
    metadata = details.flag_metadata or _NO_METADATA
    version = metadata.get("version")
    variant = details.variant
    if variant == PASSED_IN_DEFAULT:  # the no-op provider's "no flags" answer
        variant = None
    return FlagAnswer(
        value=details.value,
        variant=variant,
        reason=None if details.reason is None else str(details.reason),
        error=None if details.error_code is None else str(details.error_code),
        message=details.error_message,
        version=None if version is None else str(version),
        metadata=metadata,
    )
