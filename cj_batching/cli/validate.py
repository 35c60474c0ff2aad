"""`cj-batching validate`: check a flag file the way the running service would."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cj_batching.cli._arguments import flags_path
from cj_batching.cli._common import load_settings
from cj_batching.cli._flag_file import FlagFile, load_flag_file
from cj_batching.cli._terminal import write, write_json
from cj_batching.settings import Settings
from cj_batching.version_checks import publishing_warnings
from flags import Problem, document_changes

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Register `validate`."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "validate",
        help="check a flag file (exit 0 valid, 1 invalid, 2 usage error)",
        description="Parse and validate a flagd-format flag file whole: syntax, structure, "
        "semantics (variants, $refs, fractional weights), complexity bounds and the batching "
        "flags' values. Errors make the service refuse the file; warnings (what flagd "
        "evaluates as written though its schema rejects it, say) do not. "
        "Warns (exit status still 0) when the mode flag or metadata.version is missing, "
        "and with --against LIVE when the file is no new version of LIVE: nothing "
        "changed, the flags changed but the version did not, or the version went "
        "backwards. Exit status: 0 valid (warnings allowed), 1 invalid (every problem "
        "listed) or, with --strict, any warning, 2 usage error.",
    )
    parser.add_argument(
        "path",
        nargs="?",
        type=flags_path,
        help="flag file (default: CJ_ASSESSMENT_SERVICE_FLAGS_FILE, flags.yaml)",
    )
    parser.add_argument(
        "--against",
        type=flags_path,
        metavar="LIVE",
        help="the version in use (e.g. flags.yaml): warn unless PATH is a new version of it",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="treat warnings as errors (exit 1 when there is any), e.g. in CI",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Validate and report."""
    settings = load_settings()
    path: Path = args.path or settings.FLAGS_FILE
    flags = load_flag_file(path, settings)
    live = None if args.against is None else load_flag_file(args.against, settings)
    warnings = _warnings(flags, live, settings)
    strict: bool = args.strict
    if args.json:
        write_json(_as_json(flags, live, warnings, strict=strict))
    else:
        write(*_as_text(flags, live, warnings, strict=strict))
    return 0 if flags.valid and not (strict and warnings) else 1


def _warnings(flags: FlagFile, live: FlagFile | None, settings: Settings) -> list[Problem]:
    """The document's own warnings, then those of publishing it over `live`."""
    if flags.checked is None:
        return []
    warnings = list(flags.warnings)
    warnings += publishing_warnings(flags.checked, settings, None if live is None else live.checked)
    if live is not None and live.checked is None:
        warnings.append(
            Problem(
                "",
                f"the live file {live.path} is itself invalid, so this cannot be compared "
                "with the version the service serves (its last good one)",
                "warning",
            )
        )
    return warnings


def _as_text(
    flags: FlagFile, live: FlagFile | None, warnings: list[Problem], *, strict: bool
) -> list[str]:
    if flags.document is None:
        errors = sum(problem.is_error for problem in flags.problems)
        counts = f"{errors} error(s)"
        if len(flags.problems) > errors:
            counts += f", {len(flags.problems) - errors} warning(s)"
        return [f"{flags.path}: invalid ({counts})", *(f"  {p}" for p in flags.problems)]
    summary = f"{len(flags.document.get('flags') or {})} flag(s)"
    if flags.version is not None:
        summary += f", version {flags.version}"
    if warnings:
        summary += f"; {len(warnings)} warning(s)"
    verdict = "invalid under --strict" if strict and warnings else "valid"
    lines = [f"{flags.path}: {verdict} ({summary})"]
    if live is not None and live.document is not None:
        changes = document_changes(live.document, flags.document)
        lines.append(
            f"  against {live.path} (version {live.version}): {len(changes)} change(s)"
            + (f"; see cj-batching diff {live.path} {flags.path}" if changes else "")
        )
    lines.extend(f"  {problem.path or '/'}: warning: {problem.message}" for problem in warnings)
    return lines


def _as_json(
    flags: FlagFile, live: FlagFile | None, warnings: list[Problem], *, strict: bool
) -> dict[str, Any]:
    problems = [_problem(p, p.severity) for p in flags.problems]
    problems += [_problem(p, "warning") for p in warnings]
    against = None
    if live is not None:
        against = {"path": str(live.path), "valid": live.valid, "version": live.version}
        if live.document is not None and flags.document is not None:
            against["changes"] = len(document_changes(live.document, flags.document))
    return {
        "path": str(flags.path),
        "valid": flags.valid and not (strict and warnings),
        "version": flags.version,
        "flags": None if flags.document is None else len(flags.document.get("flags") or {}),
        "problems": problems,
        "against": against,
    }


def _problem(problem: Problem, severity: str) -> dict[str, str]:
    return {"path": problem.path or "/", "message": problem.message, "severity": severity}
