"""The resolution chain for one batch: per-batch override, then the batch's pin, then
the mode flag, then the env default; the kill switches (a DISABLED flag, a tripped
rollout guard) and the provider guardrail judge whichever answered."""

from __future__ import annotations

from datetime import UTC, datetime

from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import Reason

from cj_batching.context import BatchContext
from cj_batching.guard import RolloutGuard
from cj_batching.metrics import INVALID_MODE
from cj_batching.modes import LLMBatchingMode, LLMProviderType
from cj_batching.resolution import DecidedBy, Resolution
from cj_batching.resolver.guardrail import Guardrail
from cj_batching.resolver.trouble import FlagTrouble
from cj_batching.settings import Settings
from flags.evaluation import FlagAnswer, FlagEvaluator

__all__ = ["ResolutionChain", "flag_evaluation_context"]

_NOT_ASKED = FlagAnswer(None, None, None)
_DISABLED = Reason.DISABLED.value


class ResolutionChain:
    """Decides a batch's `Resolution` from scratch (no cache); never raises for flags."""

    def __init__(
        self,
        settings: Settings,
        evaluator: FlagEvaluator,
        trouble: FlagTrouble,
        guard: RolloutGuard | None = None,
    ) -> None:
        self._guard = guard
        self._default_mode = settings.LLM_BATCHING_MODE
        self._default_provider = settings.DEFAULT_LLM_PROVIDER
        self._mode_key = settings.LLM_BATCHING_FLAG_KEY
        self._evaluator = evaluator
        self._trouble = trouble
        self._guardrail = Guardrail(settings, evaluator, trouble)

    def decide(self, context: BatchContext) -> Resolution:
        """The batch's resolution through every link of the chain.

        An override always wins, kill switches included (a researcher's run stays as
        asked). A pin (the resolution stored at an earlier wave) keeps the batch's mode,
        `decided_by` and flag details, unless the mode flag is `state: DISABLED` (pins
        go back to the env default). The mode flag is evaluated even for a pinned batch,
        for exactly that switch; a flag that cannot be evaluated leaves the pin in
        place. A tripped rollout guard sends whatever would land in the failing arm of
        the batch's source, pins included, to the guard's control mode.
        """
        provider = context.provider or self._default_provider
        evaluation = flag_evaluation_context(context, provider)
        override, pin = context.cache_key[4], context.pinned
        if override is not None:
            return self._finish(override, "override", provider, evaluation, _NOT_ASKED)
        flag, mode = self._mode_flag(evaluation)
        guard = self._guard
        if guard is not None:
            guard.use_flag_set(flag.version, flag.metadata)
        if pin is not None and flag.reason != _DISABLED:
            requested, decided_by = pin.mode, pin.decided_by
        elif mode is not None:
            requested, decided_by, pin = mode, "flag", None
        else:
            requested, decided_by, pin = self._default_mode, "default", None
        # A pin that an override once decided is the researcher's choice: not diverted.
        control = None
        if guard is not None and decided_by != "override":
            control = guard.diverts(context.cj_source, requested)
        if control is not None:
            return self._finish(control, "guard", provider, evaluation, flag)
        return self._finish(requested, decided_by, provider, evaluation, flag, pin=pin)

    def _finish(
        self,
        requested: LLMBatchingMode,
        decided_by: DecidedBy,
        provider: LLMProviderType,
        evaluation: EvaluationContext,
        flag: FlagAnswer,
        *,
        pin: Resolution | None = None,
    ) -> Resolution:
        """The resolution for `requested`, judged by the guardrail; a pin keeps its own
        decision details."""
        verdict = self._guardrail.judge(requested, provider, evaluation)
        if pin is None:
            variant, reason, error = flag.variant, flag.reason, flag.error
            version, decided_at = flag.version or verdict.version, datetime.now(UTC)
        else:  # the decision is the pin's: its details, not this evaluation's
            variant, reason, error = pin.flag_variant, None, None
            version, decided_at = pin.flag_set_version, pin.decided_at
        return Resolution(
            mode=verdict.mode,
            decided_by=decided_by,
            requested_mode=requested,
            llm_provider=provider,
            guardrail_applied=verdict.applied,
            flag_variant=variant,
            flag_reason=reason,
            flag_error=error,
            flag_set_version=version,
            allowed_providers=verdict.allowed,
            allowed_providers_source=verdict.source,
            pinned=pin is not None,
            decided_at=decided_at,
        )

    def _mode_flag(
        self, evaluation: EvaluationContext
    ) -> tuple[FlagAnswer, LLMBatchingMode | None]:
        """The mode flag's answer, and its mode when it gave a usable one."""
        answer = self._evaluator.evaluate(self._mode_key, self._default_mode.value, evaluation)
        if answer.error:
            self._trouble.report(self._mode_key, answer.error, answer.message)
            return answer, None
        if answer.variant is None:  # no rule matched, or DISABLED: the env default
            return answer, None
        mode = LLMBatchingMode.lookup(answer.value)
        if mode is None:
            answer = answer._replace(error=INVALID_MODE)
            detail = f"variant {answer.variant!r} = {answer.value!r}"
            self._trouble.report(self._mode_key, INVALID_MODE, detail)
        return answer, mode


def flag_evaluation_context(context: BatchContext, provider: LLMProviderType) -> EvaluationContext:
    """What the flags see of a batch: its id as targeting key, source, provider, type."""
    return EvaluationContext(
        targeting_key=context.batch_key,
        attributes={
            "cj_source": context.cj_source,
            "llm_provider": provider.value,
            "cj_request_type": context.request_type,
        },
    )
