"""Start-up: importing what a resolve needs from cj_batching, against importing the three
libraries it cannot do without (pydantic_settings, openfeature, flagd-core).

Ours: `from cj_batching import BatchContext, BatchingModeResolver, Settings, configure`
(a bare `import cj_batching` loads nothing: the names are imported on first use). The
baseline: `import pydantic_settings, openfeature, openfeature.contrib.tools.flagd.core`.
Each sample is a fresh interpreter (`python -c`) timing only its import statement with
`time.perf_counter`, so interpreter start-up is left out; ours and the baseline alternate,
and each figure is the median.
"""

from __future__ import annotations

import statistics
import subprocess
import sys

from benchmarks._measure import Figure, Run, progress

__all__ = ["run"]

OURS = "from cj_batching import BatchContext, BatchingModeResolver, Settings, configure"
BASELINE = "import pydantic_settings, openfeature, openfeature.contrib.tools.flagd.core"
IMPORT_OVER_LIBRARIES = 1.3
_TIMED = "import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"


def _sample(statement: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", _TIMED.format(statement=statement)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return float(done.stdout.strip())


def run(options: Run) -> list[Figure]:
    samples = options.pick(21, 3)
    progress(f"imports: {samples} fresh interpreters each, alternating")
    _sample(OURS), _sample(BASELINE)  # warm the OS file cache and the .pyc files
    ours: list[float] = []
    baseline: list[float] = []
    for index in range(samples):
        pair = ((OURS, ours), (BASELINE, baseline))
        for statement, times in pair if index % 2 == 0 else pair[::-1]:
            times.append(_sample(statement))
    return [
        Figure(
            "imports.resolve_names",
            statistics.median(ours),
            statistics.median(baseline),
            "s",
            "ratio",
            IMPORT_OVER_LIBRARIES,
            details={
                "ours": OURS,
                "baseline": BASELINE,
                "samples": samples,
                "ours_min": min(ours),
                "baseline_min": min(baseline),
            },
        )
    ]
