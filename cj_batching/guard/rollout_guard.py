"""`RolloutGuard`: per source, a flag arm whose error rate regresses against the control
arm is pulled back to the control mode until the flag set version changes."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache

from cj_batching.guard.policy import GuardPolicy
from cj_batching.guard.result import ArmResult
from cj_batching.guard.sequential import Tally, regression_evidence
from cj_batching.metrics import BatchingMetrics, source_label
from cj_batching.modes import LLMBatchingMode
from cj_batching.settings import Settings

__all__ = ["GuardTrip", "RolloutGuard"]

_log = logging.getLogger("cj_batching.guard")

_Arm = tuple[str, LLMBatchingMode]  # (source label, mode)


@dataclass(frozen=True, slots=True)
class GuardTrip:
    """One tripped arm: the counts and the evidence at the moment it tripped."""

    cj_source: str
    mode: LLMBatchingMode
    control: LLMBatchingMode
    arm_results: int
    arm_failures: int
    control_results: int
    control_failures: int
    log_likelihood_ratio: float
    flag_set_version: str | None

    @property
    def arm_error_rate(self) -> float:
        """The arm's failures per result when it tripped."""
        return self.arm_failures / self.arm_results

    @property
    def control_error_rate(self) -> float:
        """The control's failures per result when the arm tripped."""
        return self.control_failures / self.control_results

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, also the `extra=` of the trip's log line."""
        return {
            "cj_source": self.cj_source,
            "batching_mode": self.mode.value,
            "control_mode": self.control.value,
            "arm_results": self.arm_results,
            "arm_failures": self.arm_failures,
            "arm_error_rate": self.arm_error_rate,
            "control_results": self.control_results,
            "control_failures": self.control_failures,
            "control_error_rate": self.control_error_rate,
            "log_likelihood_ratio": self.log_likelihood_ratio,
            "flag_set_version": self.flag_set_version,
        }


class _Experiment:
    """The statistics of one flag set version: a tally per (source, mode) and the
    recent waves' counts (bounded: an evicted wave's later results count as a new wave)."""

    __slots__ = ("arms", "log_threshold", "policy", "tallies", "version", "waves")

    def __init__(self, policy: GuardPolicy, version: str | None, wave_memory: int) -> None:
        self.tallies: dict[_Arm, Tally] = {}
        self.arms: dict[str, list[tuple[LLMBatchingMode, Tally]]] = {}  # non-control, by source
        self.waves: LRUCache[tuple[str, LLMBatchingMode, str], list[int]] = LRUCache(wave_memory)
        self.adopt(policy, version)

    def adopt(self, policy: GuardPolicy, version: str | None) -> None:
        self.policy = policy
        self.version = version
        self.log_threshold = math.log(1.0 / policy.alpha)
        self.arms = {}
        for (source, mode), tally in self.tallies.items():
            if mode is not policy.control:
                self.arms.setdefault(source, []).append((mode, tally))

    def add(self, result: ArmResult, tripped: Mapping[_Arm, GuardTrip]) -> list[GuardTrip]:
        """Count `result`; the arms of its source that trip because of it."""
        source, mode = result.cj_source, result.mode
        control = self.policy.control
        arm_key = (source, mode)
        tally = self.tallies.get(arm_key)
        if tally is None:
            tally = self.tallies[arm_key] = Tally()
            if mode is not control:
                self.arms.setdefault(source, []).append((mode, tally))
        wave = None
        if result.wave is not None:
            wave_key = (source, mode, result.wave)
            try:
                wave = self.waves[wave_key]
            except KeyError:
                wave = self.waves[wave_key] = [0, 0]
        tally.add(result.failed, wave)
        if mode is not control:
            rival = self.tallies.get((source, control))
            if rival is None or arm_key in tripped:
                return []
            trip = self._judge(source, mode, tally, rival)
            return [] if trip is None else [trip]
        # A control result moves the comparison of every arm of its source.
        trips = []
        for arm_mode, arm in self.arms.get(source, ()):
            if (source, arm_mode) not in tripped:
                trip = self._judge(source, arm_mode, arm, tally)
                if trip is not None:
                    trips.append(trip)
        return trips

    def _judge(
        self, source: str, mode: LLMBatchingMode, arm: Tally, control: Tally
    ) -> GuardTrip | None:
        policy = self.policy
        if arm.results < policy.min_results or control.results < policy.min_results:
            return None
        # The tolerance first: it is a cheap division, and it rules out almost every
        # result of a healthy arm before the test's logarithms are computed.
        increase = arm.failures / arm.results - control.failures / control.results
        if increase <= policy.max_error_rate_increase:
            return None
        evidence = regression_evidence(arm, control, policy.max_error_rate_increase)
        if evidence.log_likelihood_ratio < self.log_threshold:
            return None
        return GuardTrip(
            cj_source=source,
            mode=mode,
            control=policy.control,
            arm_results=arm.results,
            arm_failures=arm.failures,
            control_results=control.results,
            control_failures=control.failures,
            log_likelihood_ratio=evidence.log_likelihood_ratio,
            flag_set_version=self.version,
        )


class RolloutGuard:
    """Watches flag-decided results per source and arm; trips an arm that fails more
    often than the control arm, so new resolutions of that arm get the control mode.

    Thread-safe: `observe` runs on the result consumer's thread while `diverts` is
    probed by every resolution (a dict lookup, no lock). A trip holds until
    `use_flag_set` sees a new flag set version (Ops acknowledge by editing the file);
    that resets the statistics too. `observe` never raises.
    """

    def __init__(self, settings: Settings, *, metrics: BatchingMetrics | None = None) -> None:
        self._settings_policy = GuardPolicy.from_settings(settings)
        self._wave_memory = settings.GUARD_WAVE_MEMORY
        self._metrics = metrics
        self._lock = threading.Lock()
        self._version: str | None = None
        self._experiment = _Experiment(self._settings_policy, None, self._wave_memory)
        # Replaced, never cleared, on a reset: `diverts` reads it without the lock.
        self._tripped: dict[_Arm, GuardTrip] = {}
        self._failed = False

    @property
    def policy(self) -> GuardPolicy:
        """The knobs in force (settings overlaid by the flag set's guard metadata)."""
        return self._experiment.policy

    @property
    def flag_set_version(self) -> str | None:
        """The flag set version the statistics belong to (None: none seen yet)."""
        return self._version

    def diverts(self, cj_source: str, mode: LLMBatchingMode) -> LLMBatchingMode | None:
        """The control mode when the guard has tripped `mode` for this source, else None."""
        tripped = self._tripped
        if not tripped:
            return None
        trip = tripped.get((source_label(cj_source), mode))
        return None if trip is None else trip.control

    def trips(self) -> tuple[GuardTrip, ...]:
        """The arms tripped under the current flag set version, oldest first."""
        with self._lock:
            return tuple(self._tripped.values())

    def counts(self) -> dict[tuple[str, LLMBatchingMode], tuple[int, int]]:
        """(results, failures) per (source label, mode) counted under this version."""
        with self._lock:
            return {
                arm: (tally.results, tally.failures)
                for arm, tally in self._experiment.tallies.items()
            }

    def observe(self, result: ArmResult) -> tuple[GuardTrip, ...]:
        """Count one comparison result (only flag-decided results count); trip the arm
        when the evidence says it regressed. Returns the arms this result tripped (the
        resolver then drops its cached resolutions). Never raises."""
        trips: list[GuardTrip] = []
        try:
            if result.decided_by != "flag":
                return ()
            with self._lock:
                experiment = self._experiment
                policy = experiment.policy
                if not policy.enabled:
                    return ()
                trips = experiment.add(result, self._tripped)
                for trip in trips:
                    self._tripped[trip.cj_source, trip.mode] = trip
                    # Under the lock, so a reset cannot slip between trip and gauge.
                    if self._metrics is not None:
                        self._metrics.record_guard_trip(trip.mode, trip.cj_source)
        except Exception:
            self._internal_failure()
            return ()
        for trip in trips:
            _announce(trip, policy)
        return tuple(trips)

    def use_flag_set(
        self, version: str | None, flag_metadata: Mapping[str, object] | None = None
    ) -> None:
        """Adopt the flag set `version` with its mode flag's metadata (the `guard_*`
        knobs). Same version: nothing (cheap enough for every fresh resolution). A new
        version releases every trip and restarts the statistics, except for the first
        version seen, which keeps what was counted before unless it changes the control
        or switches the guard off. None (a flag set without a version, or a failed
        evaluation) is never a change. Never raises."""
        if version is None or version == self._version:
            return
        try:
            self._switch(version, flag_metadata or {})
        except Exception:
            self._internal_failure()

    def _switch(self, version: str, flag_metadata: Mapping[str, object]) -> None:
        released: tuple[GuardTrip, ...] = ()
        with self._lock:
            if version == self._version:
                return
            previous, self._version = self._version, version
            policy, problems = self._settings_policy.with_metadata(flag_metadata)
            current = self._experiment
            if previous is None and policy.enabled and policy.control is current.policy.control:
                current.adopt(policy, version)
            else:
                released = tuple(self._tripped.values())
                self._experiment = _Experiment(policy, version, self._wave_memory)
                self._tripped = {}
                if self._metrics is not None:
                    self._metrics.record_guard_reset()
        if problems:
            _log.warning(
                "flag set %s: ignoring bad guard metadata (settings apply instead): %s",
                version,
                "; ".join(problems),
                extra={"flag_set_version": version, "problems": problems},
            )
        if previous is not None:
            _log.info(
                "rollout guard restarted for flag set version %s (was %s); %d tripped "
                "arm(s) released",
                version,
                previous,
                len(released),
                extra={
                    "flag_set_version": version,
                    "previous_flag_set_version": previous,
                    "released_arms": [f"{t.cj_source}/{t.mode.value}" for t in released],
                    **policy.to_dict(),
                },
            )

    def _internal_failure(self) -> None:
        if not self._failed:
            self._failed = True
            _log.exception("the rollout guard failed; further failures are silent")


def _announce(trip: GuardTrip, policy: GuardPolicy) -> None:
    increase = trip.arm_error_rate - trip.control_error_rate
    _log.warning(
        "rollout guard tripped: %s arm %s fails %.1f%% (%d of %d) against control %s "
        "%.1f%% (%d of %d), +%.1f points where %.1f are tolerated; new resolutions of "
        "this arm get %s until the flag set version changes",
        trip.cj_source,
        trip.mode.value,
        100 * trip.arm_error_rate,
        trip.arm_failures,
        trip.arm_results,
        trip.control.value,
        100 * trip.control_error_rate,
        trip.control_failures,
        trip.control_results,
        100 * increase,
        100 * policy.max_error_rate_increase,
        trip.control.value,
        extra={
            **trip.to_dict(),
            "error_rate_increase": increase,
            "max_error_rate_increase": policy.max_error_rate_increase,
            "alpha": policy.alpha,
        },
    )
