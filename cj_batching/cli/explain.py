"""`cj-batching explain`: every link of the resolution chain for one batch."""

from __future__ import annotations

import argparse
from typing import Any

from cj_batching.cli._arguments import add_flags_option, batch_id_argument, mode_argument
from cj_batching.cli._common import UsageError, load_settings, open_resolver, warn_unknown_context
from cj_batching.cli._flag_file import flag_file
from cj_batching.cli._terminal import write, write_json
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
        "default, provider guardrail) and show every link. The flag file is read and "
        "evaluated as a replica starting now would (a running replica that rejected this "
        "version still serves its last good one: see `cj-batching watch`).",
    )
    parser.add_argument(
        "--batch-id",
        required=True,
        metavar="ID",
        type=batch_id_argument,
        help="CJ batch id, the targeting key: an integer (01 and 1 are the same batch) or "
        "an opaque id of letters, digits and _ . : -",
    )
    parser.add_argument(
        "--source", metavar="S", default="els", help="cj_source: els (default), bos, eng5_runner"
    )
    parser.add_argument(
        "--provider", metavar="P", help="LLM provider (default: DEFAULT_LLM_PROVIDER)"
    )
    parser.add_argument(
        "--override",
        type=mode_argument,
        metavar="MODE",
        help="per-batch override (llm_batching_mode_override)",
    )
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
    """Resolve and print; 0 on success, UsageError on bad input."""
    settings = load_settings(args.flags)
    context = _context(args)
    flag_file(settings, args.flags)
    warn_unknown_context("explain", sources=[context.cj_source], request_type=context.request_type)
    with open_resolver(settings) as resolver:
        resolution = resolver.resolve(context)
        flags = _flag_source(resolver)
    if args.json:
        write_json(_as_json(context, resolution, flags))
    else:
        write(*_as_text(context, resolution, settings, flags))
    return 0


def _context(args: argparse.Namespace) -> BatchContext:
    # The library reads a blank source as els (CJ may send none); on the command line a
    # blank --source is a mistake (an unset variable, say), as it is for rollout.
    if not args.source.strip():
        raise UsageError(
            f"--source: {args.source!r}: give a source, e.g. els (the default when the "
            "option is left out), bos or eng5_runner"
        )
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
        source["version"] = provider.flag_set_metadata.get("version")
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
) -> list[str]:
    r = resolution
    return [
        f"batch {context.batch_key}: source {context.cj_source}, provider "
        f"{r.llm_provider.value}, request type {context.request_type}",
        "  (evaluated as a replica starting now would: the flags read once, no cache)",
        f"  flags       {_flags_line(flags)}",
        *(f"              problem: {problem}" for problem in flags.get("problems", [])),
        f"  1 override  {_override_line(context)}",
        f"  2 flag      {_flag_line(r, settings)}",
        f"  3 default   {settings.LLM_BATCHING_MODE.value} ({ENV_PREFIX}LLM_BATCHING_MODE)"
        + (" <- used" if r.decided_by == "default" else ""),
        f"  4 guardrail {_guardrail_line(r)}",
        f"=> {r.mode.value} (decided by {r.decided_by}"
        + (", downgraded by the guardrail)" if r.guardrail_applied else ")"),
    ]


def _flags_line(flags: dict[str, Any]) -> str:
    line = f"{flags['provider']} ({flags['status']})"
    if "path" in flags:
        line += f" {flags['path']}"
    if flags.get("version") is not None:
        line += f", version {flags['version']}"
    return line


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
