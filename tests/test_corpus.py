"""Real-world flagd documents (tests/corpus/, written from the flagd documentation's examples
of every operator) are accepted, and evaluate through our providers to what the docs say.

tests/corpus/cases.yaml holds the expectations; each case runs through the file provider
(reading the corpus file itself) and through the memory provider.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagEvaluationDetails
from openfeature.provider import FeatureProvider, ProviderStatus

from flags import FlagdFileProvider, FlagdMemoryProvider, load_document

CORPUS = Path(__file__).parent / "corpus"
DOCUMENTS = sorted(path for path in CORPUS.iterdir() if path.name != "cases.yaml")
CASES: list[dict[str, Any]] = yaml.safe_load((CORPUS / "cases.yaml").read_text())
CALLER_DEFAULTS: dict[type, Any] = {
    bool: False,
    int: -1,
    float: -1.5,
    str: "caller-default",
    dict: {"caller": "default"},
}
KINDS = {bool: "boolean", int: "integer", float: "float", str: "string", dict: "object"}


def test_the_corpus_covers_every_file_and_operator() -> None:
    assert {case["file"] for case in CASES} == {path.name for path in DOCUMENTS}
    text = " ".join(path.read_text() for path in DOCUMENTS)
    for operator in ("fractional", "sem_ver", "starts_with", "ends_with", "$ref", "DISABLED"):
        assert operator in text
    for comparison in ("'='", "'!='", "'<'", "'<='", "'>'", "'>='", "'^'", "'~'"):
        assert comparison.replace("'", '"') in (CORPUS / "semver.yaml").read_text()


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: path.name)
def test_every_corpus_document_is_accepted_without_warnings(path: Path) -> None:
    checked = load_document(path)
    assert checked.warnings == ()


Evaluate = Callable[[str, Any, EvaluationContext], FlagEvaluationDetails[Any]]


@pytest.fixture(params=["file", "memory"])
def evaluator_for(
    request: pytest.FixtureRequest, bind: Callable[[FeatureProvider], OpenFeatureClient]
) -> Callable[[str], tuple[OpenFeatureClient, dict[str, Any]]]:
    """A client over a corpus file, through the file or the memory provider."""

    def make(name: str) -> tuple[OpenFeatureClient, dict[str, Any]]:
        path = CORPUS / name
        document = load_document(path).document
        provider: FeatureProvider = (
            FlagdFileProvider(path) if request.param == "file" else FlagdMemoryProvider(document)
        )
        client = bind(provider)
        assert client.get_provider_status() is ProviderStatus.READY
        return client, document

    return make


def flag_type(document: dict[str, Any], flag: str) -> type:
    value = next(iter(document["flags"][flag]["variants"].values()))
    return dict if isinstance(value, dict) else type(value)


def evaluate(
    client: OpenFeatureClient, kind: type, flag: str, context: EvaluationContext
) -> FlagEvaluationDetails[Any]:
    method = getattr(client, f"get_{KINDS[kind]}_details")
    details: FlagEvaluationDetails[Any] = method(flag, CALLER_DEFAULTS[kind], context)
    return details


def case_id(case: dict[str, Any]) -> str:
    context = ",".join(f"{k}={v}" for k, v in (case.get("context") or {}).items())
    return f"{case['file']}:{case['flag']}:{context or 'shares' if 'shares' in case else context}"


POINT_CASES = [case for case in CASES if "shares" not in case]
SHARE_CASES = [case for case in CASES if "shares" in case]


@pytest.mark.parametrize("case", POINT_CASES, ids=[case_id(case) for case in POINT_CASES])
def test_corpus_case_evaluates_as_the_docs_say(
    case: dict[str, Any], evaluator_for: Callable[[str], tuple[OpenFeatureClient, dict[str, Any]]]
) -> None:
    client, document = evaluator_for(case["file"])
    kind = flag_type(document, case["flag"])
    context = EvaluationContext("user-1", case.get("context") or {})
    details = evaluate(client, kind, case["flag"], context)
    assert details.error_code is None, details.error_message
    expected = CALLER_DEFAULTS[kind] if case["value"] == "caller-default" else case["value"]
    assert (type(details.value), details.value) == (type(expected), expected)
    if "variant" in case:
        assert details.variant == case["variant"]
    if "reason" in case:
        assert details.reason == case["reason"]
    for key, value in (case.get("flag_metadata") or {}).items():
        assert details.flag_metadata[key] == value


@pytest.mark.parametrize("case", SHARE_CASES, ids=[case_id(case) for case in SHARE_CASES])
def test_corpus_split_serves_the_declared_shares_sticky_per_key(
    case: dict[str, Any], evaluator_for: Callable[[str], tuple[OpenFeatureClient, dict[str, Any]]]
) -> None:
    client, document = evaluator_for(case["file"])
    kind = flag_type(document, case["flag"])
    variants = document["flags"][case["flag"]]["variants"]
    domain = case.get("email_domain", "@example.org")
    contexts = [
        EvaluationContext(f"user-{i}", {"email": f"user{i}{domain}"}) for i in range(case["keys"])
    ]
    served = [evaluate(client, kind, case["flag"], context) for context in contexts]
    assert {details.error_code for details in served} == {None}
    counts = Counter(details.variant for details in served)
    for variant, share in case["shares"].items():
        measured = 100 * counts[variant] / case["keys"]
        assert abs(measured - share) <= case["tolerance"], (variant, measured)
        assert all(d.value == variants[d.variant] for d in served if d.variant == variant)
    again = [evaluate(client, kind, case["flag"], context).variant for context in contexts[:200]]
    assert again == [details.variant for details in served[:200]]  # sticky per key
