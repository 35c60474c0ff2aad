"""`ReportBuilder`: result events in, one pass, bounded state per arm and batch, a report out.

Nothing of an event is kept but what the statistics need: per result its response
time, turnaround and batch (12 bytes, in typed arrays), per batch its size, successes,
cost and where it is filed (a few hundred bytes), plus the bounded window of recent
event ids. Bad lines are counted (the first few kept with their position), redelivered
events counted once, and nothing a file contains can stop the report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from cj_batching.report.analysis import arm_order, compare, summarise
from cj_batching.report.options import ReportOptions
from cj_batching.report.reader import InputError, check_readable, read_lines
from cj_batching.report.statistics import Replicates
from cj_batching.report.summary import ArmComparison, ArmSummary, BadLine, ExperimentReport
from cj_batching.report.tally import ArmKey, ArmTally
from cj_batching.results import (
    MAX_EVENT_BYTES,
    SUCCESS,
    UNKNOWN,
    RecentIds,
    ResultEnvelope,
    ResultEventError,
    arm_of,
    parse_result_event,
)

__all__ = ["ReportBuilder", "ReportOptions"]

MAX_SOURCES: Final = 64
"""Distinct sources reported one by one; any further source counts as `other` (so a
hostile file cannot grow the report without bound)."""
_OTHER_SOURCE: Final = "other"
_MAX_UINT32: Final = 2**32 - 1
_FEW_BATCHES: Final = 20
_PLACE_KEYS: Final = (
    "cj_llm_batching_mode",
    "cj_llm_batching_decided_by",
    "cj_source",
    "cj_batch_id",
)
_RawPlace = tuple[Any, ...]


_Place = tuple[ArmTally | None, int | None]


class ReportBuilder:
    """Feed result events (lines, envelopes or whole files), then `build()` the report.

    For a notebook reading a live consumer: `builder.add_line(message.value())` per
    Kafka message, `builder.build()` whenever a look is wanted (building does not
    consume the builder).
    """

    def __init__(self, options: ReportOptions | None = None) -> None:
        self.options = options or ReportOptions()
        self._arms: dict[ArmKey, ArmTally] = {}
        self._sources: set[str] = set()
        self._batch_arm: dict[str, ArmKey] = {}
        self._places: dict[_RawPlace, _Place] = {}
        self._recent = RecentIds(self.options.dedup_maxsize)
        self._bad: list[BadLine] = []
        self.results = 0
        self.bad_lines = 0
        self.duplicates = 0
        self.filtered_out = 0
        self.batches_in_several_arms = 0
        self._first: datetime | None = None
        self._last: datetime | None = None

    def add_file(self, path: str | Path) -> None:
        """Every line of `path` (`-`: stdin; gzip content is decompressed).

        `InputError` when the file cannot be opened; a file that breaks off while being
        read (a truncated .gz) counts as one bad line, and what came before it is kept.
        """
        name = str(path)
        check_readable(path)
        number = 0
        try:
            for number, line in read_lines(path):
                if line is None:
                    message = f"longer than {MAX_EVENT_BYTES:,} bytes, skipped"
                    self._bad_line(name, number, "not_json", message)
                else:
                    self.add_line(line, file=name, line_number=number)
        except InputError as exc:
            self._bad_line(name, number + 1, "unreadable", f"{exc}; the rest of the file is lost")

    @staticmethod
    def check_file(path: str | Path) -> None:
        """`InputError` now for a file `add_file` could not open (missing, a directory)."""
        check_readable(path)

    def add_line(self, line: bytes | str, *, file: str = "-", line_number: int = 0) -> bool:
        """One exported message; False (and counted as bad or duplicate) when not used."""
        try:
            event = parse_result_event(line)
        except ResultEventError as exc:
            self._bad_line(file, line_number, exc.reason, str(exc))
            return False
        return self.add_event(event)

    def add_event(self, event: ResultEnvelope) -> bool:
        """One parsed event; False for a redelivery or one the filters leave out."""
        if not self._recent.first_time(event.event_id.int):  # an int hashes in C, a UUID not
            self.duplicates += 1
            return False
        result = event.data
        options = self.options
        requested = result.requested_at
        if (options.since is not None and requested < options.since) or (
            options.until is not None and requested >= options.until
        ):
            self.filtered_out += 1
            return False
        metadata = result.request_metadata
        get = metadata.get
        key: _RawPlace = (
            get("cj_llm_batching_mode"),
            get("cj_llm_batching_decided_by"),
            get("cj_source"),
            get("cj_batch_id"),
        )
        raw: _RawPlace | None = key
        try:
            place = self._places.get(key)
        except TypeError:  # an unhashable value in the metadata: never cached
            place, raw = None, None
        if place is None:
            place = self._place(metadata, raw)
        data, number = place
        if data is None:
            self.filtered_out += 1
            return False
        if number is None:
            number = data.new_batch()  # no batch id: a cluster of its own
        data.sizes[number] += 1
        outcome = result.outcome
        if outcome == SUCCESS:
            data.successes[number] += 1
        data.outcomes[outcome] = data.outcomes.get(outcome, 0) + 1
        data.cost[number] += result.cost_estimate
        data.response_ms.append(min(result.response_time_ms, _MAX_UINT32))
        data.turnaround_s.append(result.turnaround_seconds)
        data.batch_of.append(number)
        usage = result.token_usage
        data.prompt_tokens += usage.prompt_tokens
        data.completion_tokens += usage.completion_tokens
        self.results += 1
        if self._first is None or requested < self._first:
            self._first = requested
        if self._last is None or requested > self._last:
            self._last = requested
        return True

    def build(self) -> ExperimentReport:
        """The report over everything added so far."""
        options = self.options
        control = options.control.value
        summaries: dict[ArmKey, ArmSummary] = {}
        replicates: dict[ArmKey, Replicates | None] = {}
        for key in sorted(self._arms, key=arm_order):
            summaries[key], replicates[key] = summarise(key, self._arms[key], options)
        comparisons: list[ArmComparison] = []
        notes: list[str] = []
        for source in sorted({key[0] for key in summaries}):
            control_key = (source, control, "flag")
            treated = [
                key
                for key in summaries
                if key[0] == source and key[2] == "flag" and key[1] not in (control, UNKNOWN)
            ]
            if control_key not in summaries:
                if treated:
                    notes.append(
                        f"{source}: no flag-decided {control} arm to compare with "
                        f"(choose another with --control)"
                    )
                continue
            for key in treated:
                comparisons.append(
                    compare(
                        summaries[key],
                        summaries[control_key],
                        replicates[key],
                        replicates[control_key],
                    )
                )
        few = [
            f"{s.source}/{s.mode}"
            for s in summaries.values()
            if s.randomised and s.batches < _FEW_BATCHES
        ]
        if few:
            notes.append(
                f"fewer than {_FEW_BATCHES} batches in {', '.join(few)}: intervals are rough"
            )
        if self.batches_in_several_arms:
            notes.append(
                f"{self.batches_in_several_arms} batches have results in more than one arm "
                "(an override, or a flag edit that moved them); each arm counts its own"
            )
        return ExperimentReport(
            arms=tuple(summaries.values()),
            versus_control=tuple(comparisons),
            control=control,
            results=self.results,
            bad_lines=self.bad_lines,
            bad_line_examples=tuple(self._bad),
            duplicates=self.duplicates,
            filtered_out=self.filtered_out,
            batches_in_several_arms=self.batches_in_several_arms,
            requested_from=self._first,
            requested_until=self._last,
            replicates=options.replicates,
            seed=options.seed,
            notes=tuple(notes),
        )

    def add_lines(self, lines: Iterable[bytes | str], *, file: str = "-") -> None:
        """Several messages (e.g. a list of lines), numbered from 1."""
        for number, line in enumerate(lines, 1):
            if line.strip():
                self.add_line(line, file=file, line_number=number)

    def _source(self, source: str) -> str:
        if source in self._sources:
            return source
        if len(self._sources) >= MAX_SOURCES:
            return _OTHER_SOURCE
        self._sources.add(source)
        return source

    def _place(self, metadata: Mapping[str, Any], raw: _RawPlace | None) -> _Place:
        """Where results with this metadata go: their arm's sums (None when `--source`
        leaves them out) and their batch's number (None: no batch id). Cached per raw
        key: a batch's results share it, so the hot path is one dict probe."""
        arm = arm_of(metadata)
        sources = self.options.sources
        if sources is not None and arm.cj_source not in sources:
            place: _Place = (None, None)
        else:
            key = (self._source(arm.cj_source), arm.mode, arm.decided_by)
            data = self._arms.get(key)
            if data is None:
                data = self._arms[key] = ArmTally()
            batch_id = arm.cj_batch_id
            number = None if batch_id is None else data.batch_numbers.get(batch_id)
            if batch_id is not None and number is None:
                number = data.batch_numbers[batch_id] = data.new_batch()
                if self._batch_arm.setdefault(batch_id, key) != key:
                    self.batches_in_several_arms += 1
            place = (data, number)
        if raw is not None:
            self._places[raw] = place
        return place

    def _bad_line(self, file: str, line: int, reason: str, message: str) -> None:
        self.bad_lines += 1
        if len(self._bad) < self.options.bad_line_examples:
            self._bad.append(BadLine(file, line, reason, message))
