"""`cj-batching explain`: every link of the resolution chain for one batch."""

from __future__ import annotations

import argparse
import json
from typing import Any

from cj_batching.cli._common import (
    UsageError,
    add_flags_option,
    load_settings,
    mode_argument,
    open_resolver,
)
from cj_batching.context import BatchContext
from cj_batching.overrides import BatchConfigOverrides
from cj_batching.resolution import Resolution
from cj_batching.resolver import BatchingModeResolver
from cj_batching.settings import ENV_PREFIX, Settings
from flags import FlagdFileProvider

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Register `explain`."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "explain",
        help="show how a batch's batching mode is decided",
        description="Resolve one CJ batch through the real chain (override, flag, env "
        "default, provider guardrail) and show every link.",
    )
    parser.add_argument("--batch-id", required=True, help="CJ batch id (the targeting key)")
    parser.add_argument("--source", default="els", help="cj_source: els, bos, eng5_runner...")
    parser.add_argument("--provider", help="LLM provider (default: DEFAULT_LLM_PROVIDER)")
    parser.add_argument(
        "--override",
        type=mode_argument,
        metavar="MODE",
        help="per-batch override (llm_batching_mode_override)",
    )
    parser.add_argument(
        "--request-type", default="cj_comparison", help="cj_comparison (default) or cj_retry"
    )
    add_flags_option(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Resolve and print; 0 on success, UsageError on bad input."""
    settings = load_settings(args.flags)
    context = _context(args)
    with open_resolver(settings) as resolver:
        resolution = resolver.resolve(context)
        flags = _flag_source(resolver)
    if args.json:
        print(json.dumps(_as_json(context, resolution, flags), indent=2))
    else:
        print(_as_text(context, resolution, settings, flags))
    return 0


def _context(args: argparse.Namespace) -> BatchContext:
    overrides = (
        BatchConfigOverrides(llm_batching_mode_override=args.override) if args.override else None
    )
    try:
        return BatchContext(
            cj_batch_id=args.batch_id,
            cj_source=args.source,
            llm_provider=args.provider,
            request_type=args.request_type,
            overrides=overrides,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _flag_source(resolver: BatchingModeResolver) -> dict[str, Any]:
    provider = resolver.client.provider
    source: dict[str, Any] = {
        "provider": provider.get_metadata().name,
        "status": resolver.client.get_provider_status().value,
    }
    if isinstance(provider, FlagdFileProvider):
        source["path"] = str(provider.path)
        source["problems"] = [str(problem) for problem in provider.problems]
    return source


def _as_json(
    context: BatchContext, resolution: Resolution, flags: dict[str, Any]
) -> dict[str, Any]:
    return {
        "cj_batch_id": context.batch_key,
        "cj_source": context.cj_source,
        "request_type": context.request_type,
        **resolution.to_dict(),
        "flags": flags,
    }


def _as_text(
    context: BatchContext, resolution: Resolution, settings: Settings, flags: dict[str, Any]
) -> str:
    r = resolution
    lines = [
        f"batch {context.batch_key}: source {context.cj_source}, provider "
        f"{r.llm_provider.value}, request type {context.request_type}",
        f"  flags       {flags['provider']} ({flags['status']})"
        + (f" {flags['path']}" if "path" in flags else ""),
        *(f"              problem: {problem}" for problem in flags.get("problems", [])),
        f"  1 override  {_override_line(context)}",
        f"  2 flag      {_flag_line(r, settings)}",
        f"  3 default   {settings.LLM_BATCHING_MODE.value} ({ENV_PREFIX}LLM_BATCHING_MODE)"
        + (" <- used" if r.decided_by == "default" else ""),
        f"  4 guardrail {_guardrail_line(r)}",
        f"=> {r.mode.value} (decided by {r.decided_by}"
        + (", downgraded by the guardrail)" if r.guardrail_applied else ")"),
    ]
    return "\n".join(lines)


def _override_line(context: BatchContext) -> str:
    mode = context.overrides.llm_batching_mode_override if context.overrides else None
    return f"{mode.value} <- used" if mode else "none"


def _flag_line(r: Resolution, settings: Settings) -> str:
    key = settings.LLM_BATCHING_FLAG_KEY
    if r.decided_by == "override":
        return f"{key}: not consulted (the override wins)"
    version = f", flag set version {r.flag_set_version}" if r.flag_set_version else ""
    if r.decided_by == "flag":
        return f"{key}: variant {r.flag_variant} (reason {r.flag_reason}{version}) <- used"
    error = f", error {r.flag_error}" if r.flag_error else ""
    return f"{key}: no decision (reason {r.flag_reason}{error}{version})"


def _guardrail_line(r: Resolution) -> str:
    if r.allowed_providers is None:
        return f"not needed ({r.requested_mode.value})"
    allowed = ", ".join(p.value for p in r.allowed_providers) or "any provider"
    listed = f"allow list from {r.allowed_providers_source}: {allowed}"
    if r.guardrail_applied:
        return f"{r.llm_provider.value} may not use provider_batch_api ({listed}) -> {r.mode.value}"
    return f"{r.llm_provider.value} may use provider_batch_api ({listed})"
