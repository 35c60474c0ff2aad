"""`cj-batching rollout`: preview how a percentage rollout splits consecutive batches."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

from cj_batching.cli._common import UsageError, add_flags_option, load_settings, open_resolver
from cj_batching.context import BatchContext
from cj_batching.modes import LLMBatchingMode
from cj_batching.resolver import BatchingModeResolver, flag_evaluation_context
from cj_batching.rollout import RolloutPreview, preview_rollout
from cj_batching.settings import Settings
from flags import FlagdEvaluatingProvider, declared_fractions

__all__ = ["add_parser", "run"]

_MAX_BATCHES = 10_000_000


def add_parser(commands: Any) -> None:
    """Register `rollout`."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "rollout",
        help="preview which mode consecutive batch ids get (per source)",
        description="Resolve N consecutive batch ids through the real chain (each once, "
        "no cache) and print per mode the count, the share and how it was decided, next "
        "to the weights the flag file declares for that source (fractional rules).",
    )
    sources = parser.add_mutually_exclusive_group(required=True)
    sources.add_argument("--source", help="one cj_source, e.g. els")
    sources.add_argument("--sources", help="several, comma-separated: els,bos,eng5_runner")
    parser.add_argument("--provider", help="LLM provider (default: DEFAULT_LLM_PROVIDER)")
    parser.add_argument("--batches", type=int, default=10_000, help="how many ids (10000)")
    parser.add_argument("--first-batch-id", type=int, default=1, help="first id (1)")
    parser.add_argument("--request-type", default="cj_comparison", help="cj_comparison")
    add_flags_option(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Preview every requested source and print the table (or JSON)."""
    if not 0 < args.batches <= _MAX_BATCHES:
        raise UsageError(f"--batches: {args.batches} must be in 1..{_MAX_BATCHES}")
    settings = load_settings(args.flags)
    sources = [s for s in (args.sources or args.source).split(",") if s.strip()]
    if not sources:
        raise UsageError("--sources: give at least one source, e.g. els,bos")
    with open_resolver(settings) as resolver:
        document = _flag_document(resolver)
        try:
            previews = [
                preview_rollout(
                    resolver,
                    source=source,
                    provider=args.provider,
                    batches=args.batches,
                    first_batch_id=args.first_batch_id,
                    request_type=args.request_type,
                    declared_weights=_declared(document, settings, source, args),
                )
                for source in sources
            ]
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps({"results": [p.to_dict() for p in previews]}, indent=2))
    else:
        print("\n\n".join(_table(p) for p in previews))
    return 0


def _flag_document(resolver: BatchingModeResolver) -> Mapping[str, Any] | None:
    """The document the resolver's in-process provider evaluates (None for remote flags):
    the declared weights then come from exactly the version the preview resolved."""
    provider = resolver.client.provider
    return provider.document if isinstance(provider, FlagdEvaluatingProvider) else None


def _declared(
    document: Mapping[str, Any] | None,
    settings: Settings,
    source: str,
    args: argparse.Namespace,
) -> dict[str, int] | None:
    if document is None:
        return None
    context = BatchContext(args.first_batch_id, source, args.provider, args.request_type)
    provider = context.provider or settings.DEFAULT_LLM_PROVIDER
    evaluation = flag_evaluation_context(context, provider)
    return declared_fractions(document, settings.LLM_BATCHING_FLAG_KEY, evaluation)


def _table(p: RolloutPreview) -> str:
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
    if p.declared_weights is None:
        lines.append("  declared: no fractional rule applies to this source")
    return "\n".join(lines)
