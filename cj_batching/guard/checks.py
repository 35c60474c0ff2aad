"""The flag-document check for the guard's `guard_*` metadata, run by `validate` and the
providers with the batching checks: a bad knob is refused before a version goes live."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cj_batching.guard.policy import METADATA_PREFIX, parse_guard_metadata
from cj_batching.modes import LLMBatchingMode
from cj_batching.settings import Settings
from flags import DocumentCheck, Problem

__all__ = ["guard_metadata_check"]


def guard_metadata_check(settings: Settings) -> DocumentCheck:
    """A check of the guard metadata reaching the mode flag named in `settings`.

    flagd merges the flag-set `metadata` into every flag's, so guard keys are read (and
    checked) in both places; the mode flag's own win.
    """
    mode_key = settings.LLM_BATCHING_FLAG_KEY

    def check_guard_metadata(document: Mapping[str, Any]) -> list[Problem]:
        flags = document.get("flags")
        flag = flags.get(mode_key) if isinstance(flags, Mapping) else None
        places = [("/metadata", document.get("metadata"))]
        if isinstance(flag, Mapping):
            places.append((f"/flags/{mode_key}/metadata", flag.get("metadata")))
        problems: list[Problem] = []
        merged: dict[str, Any] = {}
        where: dict[str, str] = {}
        for path, metadata in places:
            if not isinstance(metadata, Mapping):
                continue  # the flagd validation reports a malformed metadata block
            _, found = parse_guard_metadata(metadata)
            problems.extend(Problem(f"{path}/{key}", message) for key, message in found)
            for key, value in metadata.items():
                if isinstance(key, str) and key.startswith(METADATA_PREFIX):
                    merged[key], where[key] = value, f"{path}/{key}"
        if not merged:
            return problems
        set_metadata = document.get("metadata")
        if not (isinstance(set_metadata, Mapping) and set_metadata.get("version")):
            problems.append(
                Problem(
                    next(iter(where.values())),
                    "guard settings need a flag-set metadata.version: the guard applies "
                    "them, and releases its trips, when the version changes",
                )
            )
        problems.extend(_control_problems(flag, merged.get("guard_control"), where))
        return problems

    return check_guard_metadata


def _control_problems(flag: object, value: object, where: Mapping[str, str]) -> list[Problem]:
    """An explicit control the flag can never answer means the guard never compares."""
    control = LLMBatchingMode.lookup(value)
    if control is None or not isinstance(flag, Mapping):
        return []
    variants = flag.get("variants")
    if not isinstance(variants, Mapping):
        return []
    answers = {LLMBatchingMode.lookup(answer) for answer in variants.values()}
    if control in answers:
        return []
    offered = ", ".join(sorted(mode.value for mode in answers if mode is not None)) or "none"
    return [
        Problem(
            where["guard_control"],
            f"{control.value} is not the value of any variant of this flag, so the guard "
            f"would never see a control result; variants give: {offered}",
        )
    ]
