"""Checks of a new flag version before it is published: is it a new version of the live
one, and does it still drive the batching mode? Findings are warnings (the document
itself may be valid); `cj-batching validate NEW --against LIVE` prints them."""

from __future__ import annotations

import re

from cj_batching.settings import Settings
from flags import CheckedDocument, Problem, document_changes

__all__ = ["compare_versions", "publishing_warnings"]

_CHUNK = re.compile(r"(\d+)")
_VERSION = "/metadata/version"


def publishing_warnings(
    new: CheckedDocument, settings: Settings, live: CheckedDocument | None = None
) -> list[Problem]:
    """What is wrong with publishing `new` (over `live`, when given) though it validates:
    no mode flag, no version, and against `live`: nothing changed, the content changed
    but the version did not, or the version went backwards. Versions are those the
    service reads (`CheckedDocument.version`: `true` is no version)."""
    warnings = []
    key = settings.LLM_BATCHING_FLAG_KEY
    if key not in (new.document.get("flags") or {}):
        warnings.append(
            Problem(
                f"/flags/{key}",
                "the mode flag is missing: every batch gets the env default "
                f"({settings.LLM_BATCHING_MODE.value}) unless it has an override",
                "warning",
            )
        )
    version = new.version
    if version is None:
        warnings.append(
            Problem(
                _VERSION,
                "no version: set one (and bump it on every change) so logs, "
                "`cj-batching watch` and cj_llm_batching_flags_info tell versions apart",
                "warning",
            )
        )
    if live is None:
        return warnings
    live_version = live.version
    # Type-strict, as the service is: 1, 1.0 and true are three different values.
    changes = document_changes(live.document, new.document)
    same_content = all(change.path == _VERSION for change in changes)
    if same_content and version == live_version:
        message = "nothing changed: the same flags and version as the live file"
        warnings.append(Problem("", message, "warning"))
    elif not same_content and version == live_version and version is not None:
        warnings.append(
            Problem(
                _VERSION,
                f"still {version!r} as in the live file although the flags changed: bump it, "
                "or the service reports two different contents as one version",
                "warning",
            )
        )
    elif version and live_version and compare_versions(version, live_version) == -1:
        warnings.append(
            Problem(
                _VERSION,
                f"{version!r} is older than the live file's {live_version!r}: "
                "versions must only go forward (a roll-back too gets a new version)",
                "warning",
            )
        )
    return warnings


def compare_versions(a: str, b: str) -> int | None:
    """-1, 0 or 1 as version `a` is older than, equal to or newer than `b`, comparing
    digit runs as numbers (`2026-11-25.10` > `2026-11-25.9`); None when the two do not
    share a shape (e.g. `v2` and `2026-11-25.1`)."""
    left, right = _chunks(a), _chunks(b)
    for index, (x, y) in enumerate(zip(left, right)):  # noqa: B905 - prefixes compare
        if index % 2:  # a digit run
            if int(x) != int(y):
                return -1 if int(x) < int(y) else 1
        elif x != y:
            return None
    if len(left) == len(right):
        return 0
    return -1 if len(left) < len(right) else 1


def _chunks(version: str) -> list[str]:
    """Text and digit runs alternating, text first: `1.10` -> ['', '1', '.', '10']."""
    chunks = _CHUNK.split(version)
    return chunks[:-1] if len(chunks) > 1 and chunks[-1] == "" else chunks
