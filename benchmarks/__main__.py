"""`python -m benchmarks [NAME ...] [--quick] [--json PATH]`: measure the speed claims.

Each figure prints one line: name, our median, the baseline's median (measured in the
same run), the ratio, the target and PASS / MISS (INFO: reported, no target). Progress
notes go to stderr. The exit status is 0 when every benchmark ran (misses included),
1 with --fail-on-miss and a MISS, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from benchmarks._measure import Benchmark, Figure, Run, header, machine

BENCHMARKS: Final = {
    "resolve": "resolve() cache hit vs OpenFeature and vs a dict; cache miss vs bare evaluations",
    "wave": "preparing a 10 000-comparison wave (metadata + counters) vs plain dicts",
    "reload": "flag file edit to first new answer: ours vs openfeature-provider-flagd FILE mode",
    "distinct_ids": "1 000 000 distinct batch ids: cache size and RSS growth",
    "lps": "perform_comparisons of 2 000 tasks vs plain httpx posts to a loopback LPS",
    "guard": "rollout guard: observe() per result vs a counter inc, diverts() vs dict.get",
    "report": "cj-batching report over 1 000 000 result events vs json.loads; peak RSS growth",
}


def _parser() -> argparse.ArgumentParser:
    names = "\n".join(f"  {name:<13} {text}" for name, text in BENCHMARKS.items())
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure cj-batching's speed claims, each against a baseline in the same run.",
        epilog=f"benchmarks (default: all, in this order):\n{names}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: fewer repetitions, edits, ids, tasks and events (same code paths; "
        "figures are noisier; 1M ids and 1M result events become 100 000)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    parser.add_argument(
        "--fail-on-miss", action="store_true", help="exit with status 1 if a target is missed"
    )
    return parser


def _load(name: str) -> Benchmark:
    module = importlib.import_module(f"benchmarks.{name}")
    benchmark: Benchmark = module.run
    return benchmark


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    names = list(dict.fromkeys(args.names)) or list(BENCHMARKS)
    options = Run(quick=args.quick)
    started = time.perf_counter()
    figures: list[Figure] = []
    seconds: dict[str, float] = {}
    print(header(), flush=True)
    for name in names:
        began = time.perf_counter()
        for figure in _load(name)(options):
            figures.append(figure)
            print(figure.line(), flush=True)
        seconds[name] = time.perf_counter() - began
    elapsed = time.perf_counter() - started
    misses = [figure.name for figure in figures if figure.passed is False]
    passes = sum(1 for figure in figures if figure.passed)
    print(
        f"{len(figures)} figures: {passes} PASS, {len(misses)} MISS"
        f"{' (' + ', '.join(misses) + ')' if misses else ''}; "
        f"{'quick' if args.quick else 'full'} run took {elapsed:.0f} s",
        flush=True,
    )
    if args.json is not None:
        report = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": "python -m benchmarks " + " ".join(sys.argv[1:] if argv is None else argv),
            "quick": args.quick,
            "machine": machine(),
            "seconds": {**seconds, "total": elapsed},
            "figures": [figure.record() for figure in figures],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return 1 if misses and args.fail_on_miss else 0


if __name__ == "__main__":
    sys.exit(main())
