"""A seeded simulator of LPS result callbacks, for tests and benchmarks.

Each mode gets an `ArmProfile` (success rate, response time, turnaround, cost, tokens).
Batches differ from one another as real ones do (a batch-level random effect on the
success odds and on latency), so comparisons within a batch are correlated: exactly
what an honest interval has to account for. Every draw is seeded: the same seed gives
the same envelopes, and `callback_for` derives each comparison's draws from its
metadata, so the order requests arrive in does not matter.

    simulator = CallbackSimulator({"serial_bundle": ArmProfile(), ...}, seed=7)
    lines = [to_line(e) for e in simulator.experiment(batches=300, weights=...)]
"""

from __future__ import annotations

import json
import math
import random
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "EVENT_TYPE",
    "ArmProfile",
    "CallbackSimulator",
    "foreign_envelope",
    "request_metadata",
    "to_line",
]

EVENT_TYPE = "huleedu.llm_provider.comparison_result.v1"
_START = datetime(2026, 2, 2, 8, 0, tzinfo=UTC)


@dataclass(frozen=True)
class ArmProfile:
    """How one mode behaves: medians for times, means for cost (errors cost nothing)."""

    success_rate: float = 0.95
    response_ms: float = 2_000.0
    response_spread: float = 0.4  # sigma of log(response time) within a batch
    turnaround_s: float = 30.0
    cost_usd: float = 0.002
    prompt_tokens: int = 2_000
    completion_tokens: int = 200
    error_codes: tuple[str, ...] = ("TIMEOUT", "RATE_LIMIT", "EXTERNAL_SERVICE_ERROR")


@dataclass
class CallbackSimulator:
    """Builds valid callback envelopes (JSON-ready dicts) for chosen per-mode behaviour.

    `batch_effect` is the standard deviation of a batch's shift of the success log-odds;
    `latency_batch_effect` that of log(response time): 0 makes comparisons independent.
    """

    profiles: Mapping[str, ArmProfile]
    seed: int
    batch_effect: float = 0.5
    latency_batch_effect: float = 0.3
    start: datetime = _START
    provider: str = "openai"
    model: str = "gpt-5.1"
    _batch_shifts: dict[str, tuple[float, float]] = field(default_factory=dict, repr=False)

    def callback_for(
        self,
        metadata: Mapping[str, Any],
        *,
        correlation_id: str | None = None,
        request_id: str | None = None,
        requested_at: datetime | None = None,
        rng: random.Random | None = None,
    ) -> dict[str, Any]:
        """The callback for one request carrying `metadata` (its mode picks the profile).

        Its draws come from `rng`, else from a generator seeded with the metadata and
        `correlation_id` (so the same request always gets the same callback).
        """
        mode = str(metadata.get("cj_llm_batching_mode", "serial_bundle"))
        if mode == "provider_serial_bundle":
            mode = "serial_bundle"
        profile = self.profiles[mode]
        batch_id = str(metadata.get("cj_batch_id", ""))
        if rng is None:
            key = json.dumps(dict(metadata), sort_keys=True, default=str)
            rng = random.Random(f"{self.seed}:{key}:{correlation_id}")
        success_shift, latency_shift = self._shifts(batch_id)
        odds = _logit(profile.success_rate) + success_shift
        success = rng.random() < 1 / (1 + math.exp(-odds))
        response_ms = round(
            profile.response_ms * math.exp(latency_shift + rng.gauss(0.0, profile.response_spread))
        )
        turnaround = profile.turnaround_s * math.exp(latency_shift + rng.gauss(0.0, 0.3))
        sent = requested_at or self.start
        correlation = correlation_id or str(uuid.UUID(int=rng.getrandbits(128), version=4))
        completed = sent + timedelta(seconds=max(turnaround, response_ms / 1000))
        prompt = round(profile.prompt_tokens * rng.uniform(0.8, 1.2))
        completion = round(profile.completion_tokens * rng.uniform(0.5, 1.5)) if success else 0
        data: dict[str, Any] = {
            "request_id": request_id or str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "correlation_id": correlation,
            "winner": None,
            "justification": None,
            "confidence": None,
            "error_detail": None,
            "provider": self.provider,
            "model": self.model,
            "response_time_ms": response_ms,
            "token_usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
            "cost_estimate": profile.cost_usd * rng.uniform(0.5, 1.5) if success else 0.0,
            "requested_at": _iso(sent),
            "completed_at": _iso(completed),
            "trace_id": None,
            "request_metadata": {
                **metadata,
                "resolved_provider": self.provider,
                "resolved_model": self.model,
                "queue_processing_mode": "per_request",
            },
        }
        if success:
            data["winner"] = rng.choice(("Essay A", "Essay B"))
            data["justification"] = "Essay A argues its position with clearer evidence."
            data["confidence"] = rng.choice((2.0, 3.0, 3.5, 4.0, 5.0))
        else:
            data["error_detail"] = {
                "error_code": rng.choice(profile.error_codes),
                "message": "the provider did not answer in time",
                "correlation_id": correlation,
                "timestamp": _iso(completed),
                "service": "llm_provider_service",
                "operation": "process_comparison",
                "details": {"provider": self.provider},
                "stack_trace": None,
                "trace_id": None,
                "span_id": None,
            }
        return {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "event_type": EVENT_TYPE,
            "event_timestamp": _iso(completed),
            "source_service": "llm_provider_service",
            "schema_version": 1,
            "correlation_id": correlation,
            "data_schema_uri": None,
            "metadata": {},
            "data": data,
        }

    def batch(
        self,
        batch_id: int | str,
        mode: str,
        *,
        comparisons: int = 12,
        source: str = "els",
        decided_by: str = "flag",
        iteration: int = 0,
        requested_at: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """The callbacks of one wave of `comparisons` comparisons of one batch."""
        sent = requested_at or self.start
        rng = random.Random(f"{self.seed}:{batch_id}:{mode}:{source}:{decided_by}:{iteration}")
        return [
            self.callback_for(
                request_metadata(
                    batch_id, mode, index, source=source, decided_by=decided_by, iteration=iteration
                ),
                requested_at=sent,
                rng=rng,
            )
            for index in range(comparisons)
        ]

    def experiment(
        self,
        *,
        batches: int,
        weights: Mapping[str, int],
        comparisons: int = 12,
        source: str = "els",
        first_batch_id: int = 1,
        spacing: timedelta = timedelta(seconds=20),
    ) -> Iterator[dict[str, Any]]:
        """A rollout: each batch drawn into a mode by `weights`, decided by the flag."""
        rng = random.Random(self.seed)
        modes, counts = list(weights), list(weights.values())
        for number in range(batches):
            mode = rng.choices(modes, counts)[0]
            sent = self.start + number * spacing
            yield from self.batch(
                first_batch_id + number,
                mode,
                comparisons=comparisons,
                source=source,
                requested_at=sent,
            )

    def _shifts(self, batch_id: str) -> tuple[float, float]:
        shifts = self._batch_shifts.get(batch_id)
        if shifts is None:
            rng = random.Random(f"{self.seed}:batch:{batch_id}")
            shifts = (rng.gauss(0.0, self.batch_effect), rng.gauss(0.0, self.latency_batch_effect))
            self._batch_shifts[batch_id] = shifts
        return shifts


def request_metadata(
    batch_id: int | str,
    mode: str,
    index: int = 0,
    *,
    source: str = "els",
    decided_by: str = "flag",
    iteration: int = 0,
    request_type: str = "cj_comparison",
) -> dict[str, Any]:
    """The metadata CJ sends with one comparison (as `build_request_metadata` makes it)."""
    return {
        "essay_a_id": f"essay-{index:04d}-a",
        "essay_b_id": f"essay-{index:04d}-b",
        "cj_batch_id": str(batch_id),
        "cj_source": source,
        "cj_llm_batching_mode": mode,
        "cj_request_type": request_type,
        "cj_llm_batching_decided_by": decided_by,
        "comparison_iteration": iteration,
    }


def foreign_envelope(seed: int = 0) -> dict[str, Any]:
    """A valid callback for a request this library did not send (no cj_* keys)."""
    simulator = CallbackSimulator({"serial_bundle": ArmProfile(success_rate=1.0)}, seed=seed)
    envelope = simulator.callback_for({"cj_batch_id": "x"})
    envelope["data"]["request_metadata"] = {"essay_a_id": "a", "essay_b_id": "b"}
    return envelope


def to_line(envelope: Mapping[str, Any]) -> bytes:
    """One JSONL line, as `kcat -C ... -e` writes a message."""
    return json.dumps(envelope, separators=(",", ":")).encode() + b"\n"


def _logit(p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
