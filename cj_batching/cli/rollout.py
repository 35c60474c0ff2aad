"""`cj-batching rollout`: preview how a percentage rollout splits consecutive batches."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from cj_batching.cli._arguments import add_batch_range_options, add_flags_option
from cj_batching.cli._common import (
    UsageError,
    load_settings,
    open_resolver,
    progress_bar,
    warn_unknown_context,
)
from cj_batching.cli._flag_file import flag_file
from cj_batching.cli._terminal import write, write_json
from cj_batching.context import BatchContext
from cj_batching.flag_summary import split_mode_weights
from cj_batching.modes import LLMBatchingMode
from cj_batching.resolver import flag_evaluation_context
from cj_batching.rollout import RolloutPreview, evaluated_document, preview_rollout
from cj_batching.settings import Settings
from flags import flag_outcome

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Register `rollout`."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "rollout",
        help="preview which mode consecutive batch ids get (per source)",
        description="Resolve N consecutive batch ids through the real chain (each once, "
        "no cache) and print per mode the count, the share and how it was decided, next "
        "to the weights the flag file declares for that source (fractional rules, "
        "summed per mode), and "
        "how many batch-API requests the provider guardrail downgrades. A long run shows "
        "progress on stderr when it is a terminal.",
    )
    sources = parser.add_mutually_exclusive_group(required=True)
    sources.add_argument("--source", metavar="S", help="one cj_source, e.g. els")
    sources.add_argument(
        "--sources", metavar="S1,S2", help="several, comma-separated: els,bos,eng5_runner"
    )
    add_batch_range_options(parser)
    parser.add_argument(
        "--request-type",
        metavar="T",
        default="cj_comparison",
        help="cj_comparison (default) or cj_retry",
    )
    add_flags_option(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Preview every requested source and print the table (or JSON)."""
    settings = load_settings(args.flags)
    contexts = _contexts(args)
    flag_file(settings, args.flags)
    warn_unknown_context(
        "rollout",
        sources=[context.cj_source for context in contexts],
        request_type=contexts[0].request_type,
    )
    with (
        open_resolver(settings) as resolver,
        progress_bar(args.batches * len(contexts), "rollout") as progress,
    ):
        document = evaluated_document(resolver)
        previews = [
            preview_rollout(
                resolver,
                source=context.cj_source,
                provider=context.provider,
                batches=args.batches,
                first_batch_id=args.first_batch_id,
                request_type=context.request_type,
                declared_weights=_declared(document, settings, context),
                progress=progress,
            )
            for context in contexts
        ]
    if args.json:
        write_json({"results": [p.to_dict() for p in previews]})
    else:
        for number, preview in enumerate(previews):
            write(*([""] if number else []), *_table(preview))
    return 0


def _contexts(args: argparse.Namespace) -> list[BatchContext]:
    """One context per requested source, validated up front (usage errors, not halfway)."""
    names = [args.source] if args.source is not None else args.sources.split(",")
    names = [name for name in names if name.strip()]
    if not names:
        option = "--source" if args.source is not None else "--sources"
        raise UsageError(f"{option}: give at least one source, e.g. els,bos")
    try:
        BatchContext(args.first_batch_id + args.batches - 1)  # the last id must be usable
        contexts = [
            BatchContext(args.first_batch_id, name, args.provider, args.request_type)
            for name in names
        ]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return list({context.cj_source: context for context in contexts}.values())


def _declared(
    document: Mapping[str, Any] | None, settings: Settings, context: BatchContext
) -> dict[str, int] | None:
    if document is None:
        return None
    provider = context.provider or settings.DEFAULT_LLM_PROVIDER
    evaluation = flag_evaluation_context(context, provider)
    key = settings.LLM_BATCHING_FLAG_KEY
    outcome = flag_outcome(document, key, evaluation.attributes)
    if outcome is None or outcome.kind != "split":
        return None
    return split_mode_weights(document["flags"][key], outcome)


def _table(p: RolloutPreview) -> list[str]:
    last = p.first_batch_id + p.batches - 1
    total = sum((p.declared_weights or {}).values())
    lines = [
        f"source {p.source}, provider {p.provider.value}: {p.batches} batches "
        f"(ids {p.first_batch_id}..{last})",
        f"  {'mode':<24}{'count':>9}{'share':>9}   declared",
    ]
    for mode in LLMBatchingMode:
        weight = (p.declared_weights or {}).get(mode.value)
        declared = f"{weight / total:.1%} (weight {weight})" if weight is not None else ""
        lines.append(f"  {mode.value:<24}{p.modes[mode]:>9}{p.share(mode):>9.1%}   {declared}")
    decided = ", ".join(f"{name} {count}" for name, count in p.decided_by.items() if count)
    lines.append(f"  decided by: {decided}")
    if p.guardrail_downgrades:
        lines.append(
            f"  guardrail: {p.guardrail_downgrades} of {p.batches} asked for provider_batch_api, "
            f"which {p.provider.value} may not use: downgraded"
        )
    else:
        lines.append("  guardrail: no downgrades")
    if p.declared_weights is None:
        lines.append("  declared: no fractional rule applies to this source")
    return lines
