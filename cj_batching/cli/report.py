"""`cj-batching report`: exported result callbacks in, the experiment per source and arm out."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cj_batching._text import short_repr
from cj_batching.cli._arguments import mode_argument
from cj_batching.cli._common import UsageError, load_settings
from cj_batching.cli._terminal import write
from cj_batching.report import (
    MAX_REPLICATES,
    MIN_REPLICATES,
    STDIN,
    ExperimentReport,
    InputError,
    ReportBuilder,
    ReportOptions,
)
from cj_batching.report.plot import PlotUnavailableError, require_matplotlib
from cj_batching.report.statistics import DEFAULT_REPLICATES, DEFAULT_SEED

__all__ = ["add_parser", "run"]

_OPTION_OF = {"sources": "--source", "dedup_maxsize": "CJ_ASSESSMENT_SERVICE_RESULT_DEDUP_MAXSIZE"}

_EPILOG = """\
Export the callback topic first, one JSON envelope per line:
  kcat -C -b BROKER -t huleedu.llm_provider.comparison_result.v1 -e > results.jsonl

Only randomised batches are compared: arms are compared among results whose mode the
flag decided (decided_by=flag); override-, default- and guard-decided results are
listed apart.
Intervals are 95% percentile intervals of a cluster bootstrap over batches (the batch is
the unit of randomisation). Exit status: 0 a report, 1 no usable result, 2 usage error.
"""


def add_parser(commands: Any) -> None:
    """Register `report`."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "report",
        help="compare the arms of a rollout from exported result callbacks",
        description="Read exported LPS result callbacks (JSONL, as `kcat -C ... -e` writes "
        "them; - for stdin; gzip too) in one streaming pass and show per source and arm the "
        "comparisons, batches, success rate, errors, response time and turnaround "
        "percentiles, mean cost and tokens, and each randomised arm against the control "
        "arm with 95% cluster-bootstrap intervals.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="JSONL file(s); - for stdin")
    parser.add_argument(
        "--source",
        action="append",
        metavar="S",
        help="only this cj_source (repeat, or comma-separate: els,bos); default: all",
    )
    parser.add_argument(
        "--control",
        type=mode_argument,
        metavar="MODE",
        help="the arm to compare with (default: CJ_ASSESSMENT_SERVICE_LLM_BATCHING_MODE)",
    )
    parser.add_argument(
        "--since",
        type=_moment,
        metavar="T",
        help="only comparisons requested at or after T (ISO 8601, e.g. 2026-02-01 or "
        "2026-02-01T08:00Z; no zone = UTC)",
    )
    parser.add_argument(
        "--until", type=_moment, metavar="T", help="only comparisons requested before T"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="PATH.png",
        help="also draw the report as a PNG (needs the extra: pip install 'cj-batching[report]')",
    )
    parser.add_argument(
        "--replicates",
        type=int,
        default=DEFAULT_REPLICATES,
        metavar="N",
        help=f"bootstrap replicates, {MIN_REPLICATES}..{MAX_REPLICATES} "
        f"(default {DEFAULT_REPLICATES})",
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"bootstrap seed (default {DEFAULT_SEED})"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Read every file, print the report; 0 with results, 1 without, UsageError on bad input."""
    options = _options(args)
    _check_inputs(args)
    builder = ReportBuilder(options)
    for path in args.files:
        try:
            builder.add_file(path)
        except InputError as exc:  # vanished since the check
            raise UsageError(str(exc)) from None
    report = builder.build()
    # Through the CLI's escaping writer: the report quotes values from the callbacks.
    write(*(report.to_json() if args.json else report.to_text()).splitlines())
    if report.results == 0:
        write(
            f"cj-batching report: no usable result in {len(args.files)} file(s) "
            f"({report.bad_lines:,} bad lines, {report.duplicates:,} duplicates, "
            f"{report.filtered_out:,} outside the filters)",
            stream=sys.stderr,
        )
        return 1
    if args.plot is not None:
        _plot(report, args.plot)
    return 0


def _options(args: argparse.Namespace) -> ReportOptions:
    settings = load_settings()
    try:
        return ReportOptions(
            control=args.control or settings.LLM_BATCHING_MODE,
            sources=None if args.source is None else ",".join(args.source),
            since=args.since,
            until=args.until,
            replicates=args.replicates,
            seed=args.seed,
            dedup_maxsize=settings.RESULT_DEDUP_MAXSIZE,
        )
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        option = _OPTION_OF.get(field, f"--{field}") if field else "--since/--until"
        message = str(error["msg"]).removeprefix("Value error, ")
        shown = f"{short_repr(error['input'])}: " if error["loc"] else ""
        raise UsageError(f"{option}: {shown}{message}") from None


def _check_inputs(args: argparse.Namespace) -> None:
    """Every usage problem before a long read: files, stdin twice, the plot path, matplotlib."""
    if args.files.count(STDIN) > 1:
        raise UsageError("- (stdin) can be read only once")
    for path in args.files:
        try:
            ReportBuilder.check_file(path)
        except InputError as exc:
            raise UsageError(str(exc)) from None
    if args.plot is not None:
        if args.plot.suffix.lower() != ".png":
            raise UsageError(f"--plot: {args.plot} must end in .png")
        if not args.plot.parent.is_dir():
            raise UsageError(f"--plot: {args.plot.parent} is not a directory")
        try:
            require_matplotlib()
        except PlotUnavailableError as exc:
            raise UsageError(f"--plot: {exc}") from None


def _plot(report: ExperimentReport, path: Path) -> None:
    try:
        report.plot(path)
    except OSError as exc:
        raise UsageError(f"--plot: cannot write {path}: {exc.strerror or exc}") from None
    write(f"cj-batching report: wrote {path}", stream=sys.stderr)


def _moment(text: str) -> datetime:
    """argparse type: an ISO 8601 date or date-time; without a zone it is UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{short_repr(text)} is not a date or time; use ISO 8601, e.g. 2026-02-01 or "
            "2026-02-01T08:00Z"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
