"""OpenFeature plumbing for flagd-format flag documents: providers, validation, helpers.

Knows nothing about batching: any flagd document, any flag.
"""

from flags.binding import bind_provider
from flags.evaluator import FlagdEvaluatingProvider, evaluates_in_process
from flags.factory import PROVIDER_KINDS, ProviderKind, bearer_token, make_provider
from flags.file_provider import FlagdFileProvider
from flags.inspection import declared_fractions
from flags.loading import (
    MAX_DOCUMENT_BYTES,
    CheckedDocument,
    DocumentCheck,
    DocumentError,
    check_document,
    document_format,
    load_document,
    parse_document,
    read_document_bytes,
)
from flags.memory_provider import FlagdMemoryProvider
from flags.validation import Problem, Severity, validate_document

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "PROVIDER_KINDS",
    "CheckedDocument",
    "DocumentCheck",
    "DocumentError",
    "FlagdEvaluatingProvider",
    "FlagdFileProvider",
    "FlagdMemoryProvider",
    "Problem",
    "ProviderKind",
    "Severity",
    "bearer_token",
    "bind_provider",
    "check_document",
    "declared_fractions",
    "document_format",
    "evaluates_in_process",
    "load_document",
    "make_provider",
    "parse_document",
    "read_document_bytes",
    "validate_document",
]
