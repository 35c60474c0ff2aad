"""The experiment report: exported result callbacks in, per source and arm outcomes out.

`ExperimentReport.from_files(paths, ReportOptions(...))` reads what `kcat -C ... -e`
exports (one envelope per line; `-` for stdin; gzip too) in one streaming pass and
compares every randomised arm with the control arm, with cluster-bootstrap intervals.
"""

from cj_batching.report.collect import MAX_SOURCES, ReportBuilder
from cj_batching.report.options import MAX_REPLICATES, MIN_REPLICATES, ReportOptions
from cj_batching.report.reader import STDIN, InputError, read_lines
from cj_batching.report.statistics import DEFAULT_REPLICATES, DEFAULT_SEED
from cj_batching.report.summary import ArmComparison, ArmSummary, BadLine, ExperimentReport

__all__ = [
    "DEFAULT_REPLICATES",
    "DEFAULT_SEED",
    "MAX_REPLICATES",
    "MAX_SOURCES",
    "MIN_REPLICATES",
    "STDIN",
    "ArmComparison",
    "ArmSummary",
    "BadLine",
    "ExperimentReport",
    "InputError",
    "ReportBuilder",
    "ReportOptions",
    "read_lines",
]
