"""The OpenFeature provider core shared by the file and memory providers: flagd-core
evaluation over the last good document, with every failure mapped to an error code."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode, OpenFeatureError
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider, FeatureProvider, Metadata
from openfeature.provider.in_memory_provider import InMemoryProvider
from openfeature.provider.no_op_provider import NoOpProvider

from flags.loading import CheckedDocument
from flags.validation import Problem

__all__ = ["FlagdEvaluatingProvider", "evaluates_in_process"]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")
_Object = Sequence[FlagValueType] | Mapping[str, FlagValueType]


class FlagdEvaluatingProvider(AbstractProvider):
    """Evaluates flagd documents in-process with `FlagdCore`; subclasses supply documents.

    Resolve methods never raise: flagd-core's OpenFeature errors keep their code, any
    other exception becomes GENERAL, and with no document loaded yet the answer is
    PROVIDER_NOT_READY; the caller's default comes back in every case.
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self._name = name
        self._core = FlagdCore()
        self._loaded = False
        self._document: Mapping[str, Any] | None = None
        self._warnings: tuple[Problem, ...] = ()
        self._not_ready_message = "no flag document loaded yet"
        self._swap_lock = threading.Lock()

    def get_metadata(self) -> Metadata:
        return Metadata(name=self._name)

    @property
    def flag_set_metadata(self) -> Mapping[str, float | int | str | bool]:
        """The loaded document's flag-set `metadata` (e.g. its `version`)."""
        return self._core.get_flag_set_metadata()

    @property
    def document(self) -> Mapping[str, Any] | None:
        """The document in use (the last good one), or None before the first."""
        return self._document

    @property
    def warnings(self) -> tuple[Problem, ...]:
        """The warnings of the document in use (empty before the first)."""
        return self._warnings

    def _install(self, checked: CheckedDocument) -> list[str]:
        """Swap in a validated document; return the keys of the flags that changed.

        The new flags are loaded into a fresh `FlagdCore` and swapped in whole: loading
        (flagd-core pastes $evaluators in as text) holds that core's lock, so doing it on the
        live core would stall every evaluation for as long as the load takes.
        """
        with self._swap_lock:
            core = FlagdCore()
            if self._document is not None:  # the old flags first, to learn what changed
                core.set_flags(_copy(self._document))
            changed = core.set_flags_and_get_changed_keys(_copy(checked.document))
            self._core = core
            self._loaded = True
            self._document = checked.document
            self._warnings = checked.warnings
            return sorted(changed)

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return self._resolve(
            self._core.resolve_boolean_value, flag_key, default_value, evaluation_context
        )

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._resolve(
            self._core.resolve_string_value, flag_key, default_value, evaluation_context
        )

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return self._resolve(
            self._core.resolve_integer_value, flag_key, default_value, evaluation_context
        )

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._resolve(
            self._core.resolve_float_value, flag_key, default_value, evaluation_context
        )

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: _Object,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[_Object]:
        return self._resolve(
            self._core.resolve_object_value, flag_key, default_value, evaluation_context
        )

    def _resolve(
        self,
        evaluate: Any,
        flag_key: str,
        default_value: _T,
        context: EvaluationContext | None,
    ) -> FlagResolutionDetails[_T]:
        if not self._loaded:
            return _error(default_value, ErrorCode.PROVIDER_NOT_READY, self._not_ready_message)
        try:
            result: FlagResolutionDetails[_T] = evaluate(flag_key, default_value, context)
        except OpenFeatureError as exc:
            return _error(default_value, exc.error_code, exc.error_message)
        except Exception as exc:  # flagd-core/json-logic bugs must not reach the caller
            _log.debug("flag evaluation failed", extra={"flag_key": flag_key}, exc_info=True)
            return _error(default_value, ErrorCode.GENERAL, f"{type(exc).__name__}: {exc}")
        return result


def _copy(document: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy for flagd-core, which mutates what it is given (defaultVariant ->
    default_variant); validated documents are plain JSON, and a JSON round trip copies
    them ~1.5x faster than copy.deepcopy."""
    copied: dict[str, Any] = json.loads(json.dumps(document))
    return copied


def _error(default: _T, code: ErrorCode, message: str | None) -> FlagResolutionDetails[_T]:
    return FlagResolutionDetails(
        value=default, reason=Reason.ERROR, error_code=code, error_message=message
    )


def evaluates_in_process(provider: FeatureProvider) -> bool:
    """Whether `provider` answers from memory (no I/O), so calling it inline is safe.

    The resolver runs every other provider in a worker thread with a timeout.
    """
    return isinstance(provider, FlagdEvaluatingProvider | NoOpProvider | InMemoryProvider)
