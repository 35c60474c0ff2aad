"""The CLI's resolver over a document it has already read and validated (diff's OLD and
NEW): the document is evaluated as it is, never validated a second time."""

from __future__ import annotations

import pytest
from openfeature.evaluation_context import EvaluationContext

from cj_batching.cli._common import document_resolver
from cj_batching.settings import Settings
from flags import Problem, check_document

from .documents import document, mode_flag


def test_the_document_is_not_validated_again(monkeypatch: pytest.MonkeyPatch) -> None:
    checked = check_document(document(mode_flag(default_variant="per_request")))

    def validate(document: object) -> list[Problem]:
        raise AssertionError("validated again")

    monkeypatch.setattr("flags.loading.validate_document", validate)
    with document_resolver(checked, Settings()) as resolver:
        details = resolver.client.get_string_details(
            "llm-batching-mode", "d", EvaluationContext("1")
        )
    assert details.value == "per_request"
