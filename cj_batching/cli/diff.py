"""`cj-batching diff OLD NEW`: what an edit changes, and which batches it moves."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import Any

from cj_batching.cli._arguments import add_batch_range_options, flags_path
from cj_batching.cli._common import (
    UsageError,
    document_resolver,
    load_settings,
    progress_bar,
    warn_unknown_context,
)
from cj_batching.cli._flag_file import FlagFile, load_flag_file
from cj_batching.cli._terminal import write, write_json
from cj_batching.context import KNOWN_SOURCES, BatchContext
from cj_batching.flag_summary import source_rules
from cj_batching.modes import LLMProviderType
from cj_batching.moves import Move, count_moves
from cj_batching.settings import Settings
from flags import Change, document_changes

__all__ = ["add_parser", "run"]

_VALUE_CHARS = 70


def add_parser(commands: Any) -> None:
    """Register `diff`."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "diff",
        help="what an edit changes, and how many batches move between modes",
        description="Compare two flag files (typically the live flags.yaml and your "
        "edited copy): every changed value (flags, states, variants, rules, weights, "
        "allow list), the mode flag's rule per source in words before and after, and, "
        "per source, how many of N consecutive batch ids get another mode, resolved "
        "through the real chain under both versions. Widening a split moves batches one "
        "way only; reordering or renaming reshuffles them. Exit status: 0 compared "
        "(changed or not), 1 NEW (or OLD) is invalid, 2 usage error.",
    )
    parser.add_argument("old", type=flags_path, metavar="OLD", help="the flags in use")
    parser.add_argument("new", type=flags_path, metavar="NEW", help="the edited flags")
    parser.add_argument(
        "--source",
        action="append",
        metavar="S",
        help="a cj_source to count moves for (repeatable; default: els, bos, eng5_runner)",
    )
    add_batch_range_options(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Compare; 1 when either file would be rejected."""
    settings = load_settings()
    contexts = _contexts(args)
    old, new = load_flag_file(args.old, settings), load_flag_file(args.new, settings)
    if old.checked is None or new.checked is None:
        return _invalid(args, old if old.checked is None else new)
    sources = [context.cj_source for context in contexts]
    warn_unknown_context("diff", sources=sources, request_type="cj_comparison")
    changes = document_changes(old.checked.document, new.checked.document)
    moves: list[Move] = []
    with (
        document_resolver(old.checked, settings) as before,
        document_resolver(new.checked, settings) as after,
        progress_bar(2 * args.batches * len(contexts), "diff") as progress,
    ):
        for context in contexts:
            moves += count_moves(
                before,
                after,
                source=context.cj_source,
                provider=context.provider,
                batches=args.batches,
                first_batch_id=args.first_batch_id,
                progress=progress,
            )
    if args.json:
        write_json(
            {
                "version": {"old": old.version, "new": new.version},
                "changes": [change.to_dict() for change in changes],
                "batches": args.batches,
                "moves": [move.to_dict() for move in moves],
            }
        )
    else:
        provider = contexts[0].provider or settings.DEFAULT_LLM_PROVIDER
        write(
            f"{old.path} -> {new.path}: version {old.version} -> {new.version}",
            *_changes_text(changes),
            *_rules_text(old.checked.document, new.checked.document, settings, provider),
            f"moves over batch ids {_number(args.first_batch_id)}.."
            f"{_number(args.first_batch_id + args.batches - 1)}, provider {provider.value}:",
            *(f"  {_moves_line(c.cj_source, args.batches, moves)}" for c in contexts),
        )
    return 0


def _contexts(args: argparse.Namespace) -> list[BatchContext]:
    """One context per requested source (validated up front: usage errors, not halfway)."""
    try:
        BatchContext(args.first_batch_id + args.batches - 1)  # the last id must be usable
        contexts = [
            BatchContext(args.first_batch_id, source, args.provider)
            for source in args.source or KNOWN_SOURCES
        ]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return list({context.cj_source: context for context in contexts}.values())


def _invalid(args: argparse.Namespace, flags: FlagFile) -> int:
    which = "NEW" if flags.path == args.new else "OLD"
    if args.json:
        write_json(
            {
                "error": f"{which} is invalid",
                "path": str(flags.path),
                "problems": [str(problem) for problem in flags.problems],
            }
        )
    else:
        write(
            f"{flags.path}: invalid ({len(flags.problems)} problem(s)); {which} cannot be "
            "compared until it validates",
            *(f"  {problem}" for problem in flags.problems),
            stream=sys.stdout,
        )
    return 1


def _changes_text(changes: list[Change]) -> list[str]:
    if not changes:
        return ["no changes: the two documents are the same"]
    lines = [f"{len(changes)} change(s):"]
    for change in changes:
        if change.kind == "added":
            lines.append(f"  + {change.path}: {_value(change.new)}")
        elif change.kind == "removed":
            lines.append(f"  - {change.path}: {_value(change.old)}")
        else:
            lines.append(f"  ~ {change.path}: {_value(change.old)} -> {_value(change.new)}")
    return lines


def _rules_text(
    old: Mapping[str, Any], new: Mapping[str, Any], settings: Settings, provider: LLMProviderType
) -> list[str]:
    before = {rule.source: rule.line() for rule in source_rules(old, settings, provider=provider)}
    after = {rule.source: rule.line() for rule in source_rules(new, settings, provider=provider)}
    lines = []
    for source in dict.fromkeys([*before, *after]):
        if before.get(source) != after.get(source):
            lines.append(f"  {before.get(source, f'{source}: (no mode flag)')}")
            new_rule = after.get(source, "(no mode flag)").removeprefix(f"{source}: ")
            lines.append(f"    -> {new_rule}")
    if not lines:
        return ["rules per source: unchanged"]
    header = f"rules that change (provider {provider.value}):"
    return [header, *lines]


def _moves_line(source: str, batches: int, moves: list[Move]) -> str:
    mine = [move for move in moves if move.source == source]
    if not mine:
        return f"{source}: none of {_number(batches)} move"
    total = sum(move.count for move in mine)
    parts = ", ".join(
        f"{_number(move.count)} {move.from_mode.value} -> {move.to_mode.value}" for move in mine
    )
    if len(mine) == 1:
        (move,) = mine
        return (
            f"{source}: {_number(total)} of {_number(batches)} move {move.from_mode.value} -> "
            f"{move.to_mode.value}; none move the other way"
        )
    return f"{source}: {_number(total)} of {_number(batches)} move: {parts}"


def _number(value: int) -> str:
    return f"{value:,}".replace(",", " ")


def _value(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _VALUE_CHARS else f"{text[: _VALUE_CHARS - 3]}..."
