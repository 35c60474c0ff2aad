"""`cj-batching show`: the flag set at a glance, as the service would load it."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from cj_batching.cli._arguments import add_flags_option
from cj_batching.cli._common import load_settings
from cj_batching.cli._flag_file import FlagFile, load_flag_file, problem_severity
from cj_batching.cli._terminal import write, write_json
from cj_batching.flag_summary import allow_list_summary, source_rules
from cj_batching.settings import Settings

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Register `show`."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "show",
        help="the flag set at a glance: version, flags, rules per source, allow list",
        description="Read and validate the flag file as the service would, then show its "
        "version, each flag's state, variants and default, the mode flag's rule per "
        "source in words (for the default provider; where other providers or retries "
        "differ, it says so) and the provider allow list. Exit status: 0 shown, 1 the "
        "file is invalid (every problem listed), 2 usage error.",
    )
    add_flags_option(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Show the file; 1 when the service would reject it."""
    settings = load_settings(args.flags)
    flags = load_flag_file(args.flags or settings.FLAGS_FILE, settings)
    if args.json:
        write_json(_as_json(flags, settings))
    else:
        write(*_as_text(flags, settings))
    return 0 if flags.valid else 1


def _as_json(flags: FlagFile, settings: Settings) -> dict[str, Any]:
    result: dict[str, Any] = {
        "path": str(flags.path),
        "valid": flags.valid,
        "version": flags.version,
        "problems": [
            {"path": p.path or "/", "message": p.message, "severity": problem_severity(p)}
            for p in flags.problems
        ],
    }
    if flags.document is None:
        return result
    document = flags.document
    metadata = _metadata(document)
    return {
        **result,
        "flag_set_id": metadata.get("flagSetId"),
        "env_default": settings.LLM_BATCHING_MODE.value,
        "evaluated_for": {
            "llm_provider": settings.DEFAULT_LLM_PROVIDER.value,
            "cj_request_type": "cj_comparison",
        },
        "flags": [
            {
                "key": key,
                "role": _role(key, settings),
                "state": flag.get("state"),
                "variants": flag.get("variants"),
                "default_variant": flag.get("defaultVariant"),
                **(
                    {"rules": [rule.to_dict() for rule in source_rules(document, settings)]}
                    if key == settings.LLM_BATCHING_FLAG_KEY
                    else {}
                ),
            }
            for key, flag in _flags(document).items()
        ],
        "allow_list": allow_list_summary(document, settings).to_dict(),
    }


def _as_text(flags: FlagFile, settings: Settings) -> list[str]:
    if flags.document is None:
        rejected = f" version {flags.version}" if flags.version else ""
        return [
            f"{flags.path}: invalid{rejected} ({len(flags.problems)} problem(s)): a running "
            "service keeps its last good flags; one starting now uses the env default",
            *(f"  {problem}" for problem in flags.problems),
        ]
    document = flags.document
    metadata = _metadata(document)
    flag_set = f", flag set {metadata['flagSetId']}" if metadata.get("flagSetId") else ""
    version = flags.version or "none (set metadata.version)"
    lines = [
        f"{flags.path}: version {version}{flag_set}, {len(_flags(document))} flag(s), valid",
        f"rules for provider {settings.DEFAULT_LLM_PROVIDER.value}, request type "
        f"cj_comparison; env default {settings.LLM_BATCHING_MODE.value}",
    ]
    if settings.LLM_BATCHING_FLAG_KEY not in _flags(document):
        lines.append(
            f"no flag {settings.LLM_BATCHING_FLAG_KEY}: every batch gets the env default "
            f"({settings.LLM_BATCHING_MODE.value}) unless it has an override"
        )
    for key, flag in _flags(document).items():
        role = {"mode": " (the batching mode)", "allow_list": " (the allow list)"}
        lines.append(f"{key}{role.get(_role(key, settings) or '', '')}: {flag.get('state')}")
        lines.append(f"  variants: {', '.join(map(str, flag.get('variants') or {}))}")
        default = flag.get("defaultVariant")
        lines.append(f"  default variant: {default if default is not None else 'none'}")
        if key == settings.LLM_BATCHING_FLAG_KEY:
            lines.extend(f"  {rule.line()}" for rule in source_rules(document, settings))
    lines.append(
        f"allow list for provider_batch_api: {allow_list_summary(document, settings).line()}"
    )
    return lines


def _flags(document: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return dict(document.get("flags") or {})


def _metadata(document: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = document.get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}


def _role(key: str, settings: Settings) -> str | None:
    if key == settings.LLM_BATCHING_FLAG_KEY:
        return "mode"
    if key == settings.LLM_BATCH_API_ALLOWED_PROVIDERS_FLAG_KEY:
        return "allow_list"
    return None
