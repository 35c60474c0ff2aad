"""FlagdMemoryProvider: the test provider, with rules written exactly like flags.yaml."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEvent
from openfeature.provider import FeatureProvider

from flags import CheckedDocument, DocumentError, FlagdMemoryProvider, Problem, check_document
from flags.testing import EventRecorder

from .documents import batching_document, document, mode_flag


def test_evaluates_flagd_rules(bind: Callable[[FeatureProvider], OpenFeatureClient]) -> None:
    client = bind(FlagdMemoryProvider(batching_document()))
    context = EvaluationContext("1", {"cj_source": "eng5_runner", "llm_provider": "openai"})
    details = client.get_string_details("llm-batching-mode", "x", context)
    assert (details.value, details.variant, details.reason) == (
        "provider_batch_api",
        "provider_batch_api",
        "TARGETING_MATCH",
    )
    assert details.flag_metadata["version"] == "test-1"


def test_update_swaps_and_announces_changed_keys(
    bind: Callable[[FeatureProvider], OpenFeatureClient],
) -> None:
    provider = FlagdMemoryProvider(batching_document())
    client = bind(provider)
    events = EventRecorder(client)
    mark = events.mark()
    changed = provider.update(document(mode_flag(default_variant="per_request"), version="v2"))
    assert changed == ["llm-batching-mode"]
    details = events.wait_for(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, after=mark)
    assert details.flags_changed == ["llm-batching-mode"]
    assert details.metadata == {"version": "v2", "warnings": 0}
    assert client.get_string_value("llm-batching-mode", "x", EvaluationContext("1")) == (
        "per_request"
    )


def test_invalid_update_raises_and_keeps_the_old_document(
    bind: Callable[[FeatureProvider], OpenFeatureClient],
) -> None:
    provider = FlagdMemoryProvider(document(mode_flag(default_variant="per_request")))
    client = bind(provider)
    with pytest.raises(DocumentError, match="defaultVariant"):
        provider.update(document(mode_flag(default_variant="missing")))
    assert client.get_string_value("llm-batching-mode", "x") == "per_request"


def test_warnings_are_kept_and_counted(
    bind: Callable[[FeatureProvider], OpenFeatureClient],
) -> None:
    provider = FlagdMemoryProvider(batching_document())
    events = EventRecorder(bind(provider))
    assert provider.warnings == ()
    mark = events.mark()
    provider.update({**document(mode_flag(default_variant="per_request")), "owner": "ops"})
    details = events.wait_for(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, after=mark)
    assert details.metadata["warnings"] == 1
    assert [problem.path for problem in provider.warnings] == ["/owner"]


def test_invalid_initial_document_raises() -> None:
    with pytest.raises(DocumentError, match="/flags/f/state"):
        FlagdMemoryProvider({"flags": {"f": {"state": "ON", "variants": {"a": 1}}}})


def test_caller_document_is_not_mutated() -> None:
    doc = document(mode_flag(default_variant="per_request"))
    before = repr(doc)
    FlagdMemoryProvider(doc)
    assert repr(doc) == before


def test_evaluator_exceptions_become_error_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    provider = FlagdMemoryProvider(document(mode_flag(default_variant="per_request")))

    def explode(*_args: object) -> None:
        raise RuntimeError("json-logic bug")

    monkeypatch.setattr(provider._core, "resolve_string_value", explode)
    details = provider.resolve_string_details("llm-batching-mode", "d")
    assert (details.value, details.reason, details.error_code) == ("d", "ERROR", "GENERAL")
    assert "RuntimeError: json-logic bug" in (details.error_message or "")


def test_flagd_core_errors_keep_their_code() -> None:
    provider = FlagdMemoryProvider(document(mode_flag(default_variant="per_request")))
    details = provider.resolve_string_details("no-such-flag", "d")
    assert (details.value, details.error_code) == ("d", "FLAG_NOT_FOUND")


def refuse_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    def validate(document: object) -> list[Problem]:
        raise AssertionError("validated again")

    monkeypatch.setattr("flags.loading.validate_document", validate)


def test_a_checked_document_is_not_validated_again(monkeypatch: pytest.MonkeyPatch) -> None:
    checked = check_document(document(mode_flag(default_variant="per_request")))
    refuse_validation(monkeypatch)
    provider = FlagdMemoryProvider(checked)
    assert provider.resolve_string_details("llm-batching-mode", "d").value == "per_request"


def test_a_checked_document_keeps_its_warnings() -> None:
    checked = check_document({**document(mode_flag(default_variant="per_request")), "x": 1})
    assert [problem.path for problem in FlagdMemoryProvider(checked).warnings] == ["/x"]


def test_an_update_to_a_checked_document_is_not_validated_again(
    bind: Callable[[FeatureProvider], OpenFeatureClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = FlagdMemoryProvider(batching_document())
    events = EventRecorder(bind(provider))
    checked = check_document(document(mode_flag(default_variant="per_request"), version="v2"))
    refuse_validation(monkeypatch)
    mark = events.mark()
    assert provider.update(checked) == ["llm-batching-mode"]
    details = events.wait_for(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, after=mark)
    assert details.metadata == {"version": "v2", "warnings": 0}


def test_checks_apply_to_mappings_not_to_checked_documents() -> None:
    def refuse(document: object) -> list[Problem]:
        return [Problem("/flags", "refused by the caller's check")]

    doc = document(mode_flag(default_variant="per_request"))
    with pytest.raises(DocumentError, match="refused by the caller's check"):
        FlagdMemoryProvider(doc, checks=[refuse])
    assert FlagdMemoryProvider(CheckedDocument(doc), checks=[refuse]).document == doc
