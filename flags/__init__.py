"""OpenFeature plumbing for flagd-format flag documents: providers, validation, helpers.

Knows nothing about batching: any flagd document, any flag.
"""

from flags.binding import bind_provider
from flags.evaluation import EVALUATION_TIMEOUT, FlagAnswer, FlagEvaluator
from flags.evaluator import FlagdEvaluatingProvider, evaluates_in_process
from flags.factory import PROVIDER_KINDS, ProviderKind, bearer_token, make_provider
from flags.file_provider import FlagdFileProvider
from flags.inspection import Change, Outcome, OutcomeKind, document_changes, flag_outcome
from flags.loading import (
    MAX_DOCUMENT_BYTES,
    CheckedDocument,
    DocumentCheck,
    DocumentError,
    check_document,
    document_format,
    irregular_file_kind,
    load_document,
    parse_document,
    read_document_bytes,
)
from flags.memory_provider import FlagdMemoryProvider
from flags.validation import Problem, Severity, validate_document

__all__ = [
    "EVALUATION_TIMEOUT",
    "MAX_DOCUMENT_BYTES",
    "PROVIDER_KINDS",
    "Change",
    "CheckedDocument",
    "DocumentCheck",
    "DocumentError",
    "FlagAnswer",
    "FlagEvaluator",
    "FlagdEvaluatingProvider",
    "FlagdFileProvider",
    "FlagdMemoryProvider",
    "Outcome",
    "OutcomeKind",
    "Problem",
    "ProviderKind",
    "Severity",
    "bearer_token",
    "bind_provider",
    "check_document",
    "document_changes",
    "document_format",
    "evaluates_in_process",
    "flag_outcome",
    "irregular_file_kind",
    "load_document",
    "make_provider",
    "parse_document",
    "read_document_bytes",
    "validate_document",
]
