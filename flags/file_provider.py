"""`FlagdFileProvider`: a flagd-format file, hot-reloaded by content, last good kept."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode, ProviderNotReadyError

from flags.evaluator import FlagdEvaluatingProvider
from flags.loading import (
    CheckedDocument,
    DocumentCheck,
    DocumentError,
    document_format,
    parse_document,
    read_document_bytes,
)
from flags.validation import Problem

__all__ = ["FlagdFileProvider"]

_log = logging.getLogger(__name__)
_SETTLE_SECONDS = 0.05
_JOIN_SECONDS = 5.0


class FlagdFileProvider(FlagdEvaluatingProvider):
    """Evaluates the flagd document in `path` (JSON or YAML) and follows its edits.

    Every `poll_interval_seconds` the file is read and compared by content, so a copy
    that keeps an old mtime (`cp -p`, `rsync -a`) is seen; reading a flag file of a few
    KB and hashing it costs ~20 µs, so polling by content is free at 4 Hz. A changed
    file is re-read after a short settle delay, then parsed and validated whole before
    it replaces the flags in use. A bad version (syntax, structure, semantics, size,
    missing, not a regular file) keeps the last good flags, emits PROVIDER_ERROR and logs
    once; the next good version emits PROVIDER_CONFIGURATION_CHANGED (and PROVIDER_READY
    after an error), and logs its warnings once. Reading never blocks (a FIFO or a device
    at the path is a bad version), so `shutdown()` returns within its join bound.
    """

    def __init__(
        self,
        path: str | Path,
        poll_interval_seconds: float = 0.25,
        *,
        checks: Sequence[DocumentCheck] = (),
        name: str = "flagd-file",
    ) -> None:
        if not 0 < poll_interval_seconds <= 3600:
            raise ValueError(
                f"poll_interval_seconds: {poll_interval_seconds!r} must be > 0 and <= 3600"
            )
        super().__init__(name)
        self._path = Path(path)
        self._format = document_format(self._path)
        self._interval = poll_interval_seconds
        self._checks = tuple(checks)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: bytes | None = None
        self._problems: tuple[Problem, ...] = ()
        self._rejected_version: str | None = None
        self._not_ready_message = f"{self._path}: not loaded yet"

    @property
    def path(self) -> Path:
        """The watched file."""
        return self._path

    @property
    def problems(self) -> tuple[Problem, ...]:
        """The errors of the newest version when it was rejected; empty while it is in use."""
        return self._problems

    @property
    def rejected_version(self) -> str | None:
        """The `metadata.version` of the newest version when it was rejected (None when it
        is in use, or when the rejected file has no readable version)."""
        return self._rejected_version

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        """Load the file, start watching it; raise (status ERROR) when it is unusable."""
        self._poll(announce=False)
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._watch, name=f"flags-watch:{self._path.name}", daemon=True
            )
            self._thread.start()
        if not self._loaded:
            raise ProviderNotReadyError(self._not_ready_message)

    def shutdown(self) -> None:
        """Stop the watcher thread and wait for it."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(_JOIN_SECONDS)
            if thread.is_alive():
                _log.warning(
                    "flag file watcher did not stop", extra={"flags_path": str(self._path)}
                )

    def _watch(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._poll(announce=True)
            except Exception:  # the watcher must outlive any surprise; it retries next poll
                _log.exception("flag file watcher failed", extra={"flags_path": str(self._path)})

    def _poll(self, *, announce: bool) -> None:
        try:
            data = read_document_bytes(self._path)
        except DocumentError as error:
            fingerprint = str(error).encode()
            if fingerprint != self._seen:
                self._seen = fingerprint
                self._reject(error, announce=announce)
            return
        fingerprint = hashlib.blake2b(data, digest_size=16).digest()
        if fingerprint == self._seen or (announce and not self._settled(data)):
            return
        self._seen = fingerprint
        try:
            checked = parse_document(
                data, self._format, source=str(self._path), checks=self._checks
            )
        except DocumentError as error:
            self._reject(error, announce=announce)
        else:
            self._accept(checked, announce=announce)

    def _settled(self, data: bytes) -> bool:
        """Whether the file still holds `data` a moment later (not caught mid-write)."""
        if self._stop.wait(min(_SETTLE_SECONDS, self._interval / 2)):
            return False
        try:
            return read_document_bytes(self._path) == data
        except DocumentError:
            return False

    def _reject(self, error: DocumentError, *, announce: bool) -> None:
        self._problems = error.errors
        self._rejected_version = error.version
        if not self._loaded:
            self._not_ready_message = f"no valid flag document: {error}"
        kept = "keeping the last good flags" if self._loaded else "no flags loaded"
        problems = [str(problem) for problem in error.problems]
        _log.error(
            "flag file rejected (%s): %s",
            kept,
            "; ".join(problems),
            extra={
                "flags_path": str(self._path),
                "flag_set_version": error.version,
                "problems": problems,
            },
        )
        if announce:
            metadata: dict[str, bool | str | int | float] = {"path": str(self._path)}
            if error.version is not None:
                metadata["version"] = error.version
            self.emit_provider_error(
                ProviderEventDetails(
                    message=str(error), error_code=ErrorCode.PARSE_ERROR, metadata=metadata
                )
            )

    def _accept(self, checked: CheckedDocument, *, announce: bool) -> None:
        recovering = bool(self._problems) or not self._loaded
        changed = self._install(checked)
        self._problems = ()
        self._rejected_version = None
        metadata: dict[str, bool | str | int | float] = {
            "path": str(self._path),
            "warnings": len(checked.warnings),
        }
        if checked.version is not None:
            metadata["version"] = checked.version
        extra = {
            "flags_path": str(self._path),
            "flag_set_version": checked.version,
            "flags_changed": changed,
        }
        _log.info("flag file accepted", extra=extra)
        if checked.warnings:
            warnings = [str(problem) for problem in checked.warnings]
            _log.warning(
                "flag file accepted with %d warning(s): %s",
                len(warnings),
                "; ".join(warnings),
                extra={**extra, "warnings": warnings},
            )
        if announce:
            details = ProviderEventDetails(flags_changed=changed, metadata=metadata)
            if recovering:
                self.emit_provider_ready(details)
            self.emit_provider_configuration_changed(details)
