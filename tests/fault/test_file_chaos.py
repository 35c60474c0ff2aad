"""The flags file through 220 versions, good and bad, while 4 threads resolve without a
cache: every answer comes from a good version, never goes back, and every bad version is
rejected with exactly one error log.

The scenario runs once (a module fixture that never raises: it records what went wrong);
each property of it is a test of its own, so one failure does not hide the others.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from openfeature.event import EventDetails, ProviderEvent
from prometheus_client import CollectorRegistry

from cj_batching import BatchContext, BatchingMetrics, LLMBatchingMode, configure
from flags import MAX_DOCUMENT_BYTES
from flags.testing import EventRecorder, wait_until, write_atomically
from tests.conftest import make_settings
from tests.documents import MODES, allow_list_flag, mode_flag
from tests.helpers import counter_total

pytestmark = pytest.mark.fault

POLL = 0.02
THREADS = 4
WAIT = 5.0  # bound on one version being observed (one poll, the settle re-read, events)
# One cycle of 11 versions, repeated 20 times: 5 good ways to publish, 6 bad versions.
CYCLE = (
    "malformed",
    "good",
    "truncated",  # an in-place write caught half-way...
    "good-in-place",  # ...then completed: the good version it was meant to be
    "deleted",
    "good-symlink",  # flags.yaml becomes a symlink into a ..data directory
    "good-symlink",  # the ..data link is swapped atomically (a ConfigMap update)
    "oversize",
    "alias-bomb",
    "fifo",  # a named pipe renamed over the file: must not block the watcher
    "good",
)
VERSIONS = 20 * len(CYCLE)
BAD = {"malformed", "truncated", "deleted", "oversize", "alias-bomb", "fifo"}
# What the rejection of each bad kind must say (malformed rotates through four reasons).
REASON = {
    "truncated": "syntax error",
    "deleted": "file not found",
    "oversize": "byte limit",
    "alias-bomb": "aliases",
    "fifo": "is a FIFO (named pipe), not a regular file",
    "malformed": "",
}


def version_name(index: int) -> str:
    return f"chaos-{index:03d}"


def version_index(name: str | None) -> int:
    assert name is not None, "an answer without a flag set version"
    assert name.startswith("chaos-"), name
    return int(name.removeprefix("chaos-"))


def mode_of(index: int) -> LLMBatchingMode:
    """The mode version `index` declares: any answer can be checked against its version."""
    return LLMBatchingMode(MODES[index % len(MODES)])


def good_text(index: int) -> str:
    """JSON inside the .yaml file, so any truncation of it is a syntax error; what differs
    between versions (the mode, the version) comes last."""
    doc = {
        "flags": {
            "llm-batch-api-allowed-providers": allow_list_flag("openai", "anthropic"),
            "llm-batching-mode": mode_flag(default_variant=mode_of(index).value),
        },
        "metadata": {"version": version_name(index)},
    }
    return json.dumps(doc, indent=1)


def malformed_text(index: int) -> str:
    """Bad in four rotating ways; each names its own version, so serving it would show."""
    good = json.loads(good_text(index))
    flag = good["flags"]["llm-batching-mode"]
    match index % 4:
        case 0:  # syntax
            return good_text(index)[:-2] + ",,}"
        case 1:  # structure: a flag without variants
            del flag["variants"]
        case 2:  # semantics: the default variant does not exist
            flag["defaultVariant"] = "nope"
        case _:  # batching: a mode typo only this domain's checks know
            flag["variants"] = {"turbo": "provider_batchapi_TYPO"}
            flag["defaultVariant"] = "turbo"
    return json.dumps(good)


def oversize_text(index: int) -> str:
    head = good_text(index) + "\n"
    return head + "#" * (5 * 1024 * 1024 - len(head))


def alias_bomb_text(index: int) -> str:
    lines = [f"metadata: {{version: {version_name(index)}}}", "a: &a [lol, lol, lol, lol, lol]"]
    for level in range(1, 10):
        previous, name = chr(ord("a") + level - 1), chr(ord("a") + level)
        lines.append(f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]")
    lines.append("flags: {}")
    return "\n".join(lines) + "\n"


@dataclass
class Answer:
    version: int
    mode: LLMBatchingMode
    decided_by: str
    flag_error: str | None


class Publisher:
    """Writes each version the way its kind says and waits until the provider has
    observed it (accepted: CONFIGURATION_CHANGED with its version; rejected: ERROR)."""

    def __init__(self, directory: Path, recorder: EventRecorder) -> None:
        self.path = directory / "flags.yaml"
        self._directory = directory
        self._events = recorder

    def _wait_accepted(self, index: int, after: int) -> None:
        name = version_name(index)

        def is_it(details: EventDetails) -> bool:
            return details.metadata.get("version") == name

        self._events.wait_for(
            ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, after=after, where=is_it, timeout=WAIT
        )

    def _wait_rejected(self, after: int) -> EventDetails:
        return self._events.wait_for(ProviderEvent.PROVIDER_ERROR, after=after, timeout=WAIT)

    def publish(self, index: int, kind: str) -> str | None:
        """Publish version `index`; return the rejection message of a bad one."""
        mark = self._events.mark()
        if kind == "truncated":
            return self._in_place(index, mark)
        if kind == "good-in-place":
            return None  # completed by the truncated step before it
        if kind == "good":
            write_atomically(self.path, good_text(index))
        elif kind == "good-symlink":
            self._symlink(index)
        elif kind == "deleted":
            self.path.unlink()
        elif kind == "malformed":
            write_atomically(self.path, malformed_text(index))
        elif kind == "oversize":
            write_atomically(self.path, oversize_text(index))
        elif kind == "alias-bomb":
            write_atomically(self.path, alias_bomb_text(index))
        elif kind == "fifo":
            staged = self._directory / f".fifo-{index:03d}"
            os.mkfifo(staged)
            os.replace(staged, self.path)
        else:
            raise AssertionError(kind)
        if kind in BAD:
            return self._wait_rejected(mark).message or ""
        self._wait_accepted(index, mark)
        return None

    def _in_place(self, index: int, mark: int) -> str:
        """Rewrite the file in place into version index+1 and hold it half-written until
        the provider has rejected what it read; then finish the write (the next, good
        version). The old and the new version share their first part, so the half-written
        file appears in one step (a truncate), with no other state a reader could catch."""
        assert not self.path.is_symlink()
        old, new = self.path.read_bytes(), good_text(index + 1).encode()
        cut = next(i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b)
        assert 0 < cut < len(new)
        with self.path.open("r+b") as handle:
            handle.truncate(cut)  # the file now holds new[:cut]: a truncated document
            rejection = self._wait_rejected(mark).message or ""
            completed = self._events.mark()
            handle.seek(cut)
            handle.write(new[cut:])
        self._wait_accepted(index + 1, completed)
        return rejection

    def _symlink(self, index: int) -> None:
        """Kubernetes' ConfigMap layout: flags.yaml -> ..data/flags.yaml, ..data -> a
        directory per version; ..data is swapped by renaming a new link over it."""
        target = self._directory / f"..{index:03d}"
        target.mkdir()
        (target / "flags.yaml").write_text(good_text(index))
        data_link = self._directory / "..data"
        new_link = self._directory / "..data.tmp"
        new_link.symlink_to(target.name)
        os.replace(new_link, data_link)
        if not self.path.is_symlink():
            new_file_link = self._directory / "flags.yaml.tmp"
            new_file_link.symlink_to(Path("..data") / "flags.yaml")
            os.replace(new_file_link, self.path)


class _ErrorLogs(logging.Handler):
    """The provider's log records (a module fixture cannot use caplog)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Chaos:
    """What the scenario did and saw."""

    plan: list[str]
    good_versions: set[int]
    answers: list[list[Answer]] = field(default_factory=list)
    thread_errors: list[BaseException] = field(default_factory=list)
    rejections: list[tuple[int, str, str]] = field(default_factory=list)
    error_logs: list[int] = field(default_factory=list)  # provider ERROR records per version
    events: Counter[object] = field(default_factory=Counter)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    alive: list[bool] = field(default_factory=list)
    logs: list[logging.LogRecord] = field(default_factory=list)
    failure: BaseException | None = None  # the scenario stopped early (publishing timed out)

    @property
    def bad_count(self) -> int:
        return sum(kind in BAD for kind in self.plan)

    @property
    def last(self) -> int:
        return max(self.good_versions)

    @property
    def flat(self) -> list[Answer]:
        return [answer for thread_answers in self.answers for answer in thread_answers]


@pytest.fixture(scope="module")
def chaos(tmp_path_factory: pytest.TempPathFactory) -> Chaos:
    plan = [CYCLE[i % len(CYCLE)] for i in range(VERSIONS)]
    indices = list(range(1, VERSIONS + 1))
    good = {0} | {i for i, kind in zip(indices, plan, strict=True) if kind not in BAD}
    run = Chaos(plan, good, answers=[[] for _ in range(THREADS)])
    directory = tmp_path_factory.mktemp("chaos")
    path = directory / "flags.yaml"
    path.write_text(good_text(0))
    settings = make_settings(
        FLAGS_FILE=path,
        FLAGS_POLL_INTERVAL_SECONDS=POLL,
        RESOLUTION_CACHE_TTL_SECONDS=0,
    )
    logs = _ErrorLogs()
    logger = logging.getLogger("flags.file_provider")
    level = logger.level
    logger.addHandler(logs)
    logger.setLevel(logging.INFO)
    resolver = configure(
        settings, metrics=BatchingMetrics(run.registry), domain=f"chaos-{uuid.uuid4().hex}"
    )
    recorder = EventRecorder(resolver.client)
    publisher = Publisher(directory, recorder)
    stop = threading.Event()

    def traffic(thread: int) -> None:
        batch_id = thread * 1_000
        try:
            while not stop.is_set():
                batch_id += 1
                resolution = resolver.resolve(BatchContext(batch_id, "bos", "openai"))
                run.answers[thread].append(
                    Answer(
                        version_index(resolution.flag_set_version),
                        resolution.mode,
                        resolution.decided_by,
                        resolution.flag_error,
                    )
                )
        except BaseException as exc:
            run.thread_errors.append(exc)

    threads = [threading.Thread(target=traffic, args=(t,), daemon=True) for t in range(THREADS)]
    try:
        first = resolver.resolve(BatchContext(1, "bos", "openai"))
        assert first.flag_set_version == "chaos-000"
        for thread in threads:
            thread.start()
        wait_until(lambda: all(run.answers), what="traffic to start")
        for index, kind in zip(indices, plan, strict=True):
            logged = len(logs.records)
            rejection = publisher.publish(index, kind)
            if rejection is not None:
                run.rejections.append((index, kind, rejection))
            # The provider logs before it emits the event we waited for: a version's log
            # is in by now, and a repeat of it would land in the next version's count.
            run.error_logs.append(sum(_is_error_log(r) for r in logs.records[logged:]))
        wait_until(
            lambda: all(a and a[-1].version == run.last for a in run.answers),
            timeout=WAIT,
            what=f"every thread to serve version {run.last}",
        )
    except BaseException as exc:  # recorded: the tests below say what it broke
        run.failure = exc
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        resolver.close()
        resolver.client.provider.shutdown()
        logger.removeHandler(logs)
        logger.setLevel(level)
    run.alive = [thread.is_alive() for thread in threads]
    run.events = Counter(kind for kind, _ in recorder.events)
    run.logs = logs.records
    flat = run.flat
    print(  # the run's numbers, for the record (shown with -s)
        f"\nchaos: {VERSIONS} versions {dict(Counter(plan))}; {len(flat)} answers checked "
        f"({[len(a) for a in run.answers]} per thread) from "
        f"{len({a.version for a in flat})} versions; {sum(run.error_logs)} error logs for "
        f"{run.bad_count} bad versions"
    )
    return run


def test_every_version_was_published_and_observed(chaos: Chaos) -> None:
    assert chaos.failure is None
    assert len(chaos.error_logs) == VERSIONS


def test_no_resolving_thread_raised_or_hung(chaos: Chaos) -> None:
    assert chaos.thread_errors == []
    assert chaos.alive == [False] * THREADS


def test_traffic_was_continuous(chaos: Chaos) -> None:
    assert len(chaos.flat) > 1_000
    assert all(len(answers) > 100 for answers in chaos.answers)


def test_no_thread_ever_saw_an_older_version_after_a_newer_one(chaos: Chaos) -> None:
    for thread_answers in chaos.answers:
        seen = [answer.version for answer in thread_answers]
        assert seen == sorted(seen)


def test_only_good_versions_were_served(chaos: Chaos) -> None:
    served = {answer.version for answer in chaos.flat}
    assert served <= chaos.good_versions, (
        f"answers from bad versions: {served - chaos.good_versions}"
    )


def test_every_answer_is_the_mode_its_version_declares(chaos: Chaos) -> None:
    wrong = [a for a in chaos.flat if a.mode is not mode_of(a.version) or a.decided_by != "flag"]
    assert wrong == []


def test_no_flag_evaluation_failed_even_during_bad_versions(chaos: Chaos) -> None:
    assert {answer.flag_error for answer in chaos.flat} == {None}
    assert counter_total(chaos.registry, "cj_llm_batching_flag_errors") == 0


def test_the_last_good_version_reached_every_thread(chaos: Chaos) -> None:
    assert all(answers and answers[-1].version == chaos.last for answers in chaos.answers)


def test_every_answer_was_a_fresh_counted_resolution(chaos: Chaos) -> None:
    # Cache TTL 0: every answer (and the first probe) was a fresh, counted resolution.
    resolutions = counter_total(chaos.registry, "cj_llm_batching_resolutions")
    assert resolutions == len(chaos.flat) + 1


def test_each_bad_version_logged_exactly_one_error_and_a_good_one_none(chaos: Chaos) -> None:
    assert chaos.error_logs == [int(kind in BAD) for kind in chaos.plan]
    assert sum(_is_error_log(r) for r in chaos.logs) == chaos.bad_count


def test_each_bad_version_emitted_one_error_event_and_each_good_one_a_change(
    chaos: Chaos,
) -> None:
    assert chaos.events[ProviderEvent.PROVIDER_ERROR] == chaos.bad_count
    changes = chaos.events[ProviderEvent.PROVIDER_CONFIGURATION_CHANGED]
    assert changes == len(chaos.good_versions) - 1


def test_each_rejection_names_its_reason(chaos: Chaos) -> None:
    assert len(chaos.rejections) == chaos.bad_count
    unexplained = [(i, kind, m) for i, kind, m in chaos.rejections if REASON[kind] not in m]
    assert unexplained == []


def _is_error_log(record: logging.LogRecord) -> bool:
    return record.name == "flags.file_provider" and record.levelno >= logging.ERROR


def test_the_oversize_version_is_really_over_the_cap() -> None:
    assert len(oversize_text(1).encode()) > MAX_DOCUMENT_BYTES
