"""One rule for batch ids everywhere: a numeric id is its integer, whatever the spelling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cj_batching import BatchContext
from cj_batching.cli import main

from .conftest import ResolverFactory
from .documents import batching_document

ROOT = Path(__file__).resolve().parent.parent
SPELLINGS = [1, "1", "01", " 1", "0001\n", "\t1 "]


@pytest.mark.parametrize("spelling", SPELLINGS, ids=repr)
def test_numeric_spellings_are_one_batch(spelling: int | str) -> None:
    context = BatchContext(spelling)
    assert context.cj_batch_id == 1
    assert context.batch_key == "1"
    assert context.cache_key == BatchContext(1).cache_key


def test_numeric_spellings_land_in_one_arm(make_resolver: ResolverFactory) -> None:
    resolver, _ = make_resolver(batching_document(batch_api_share=50))
    for batch_id in range(1, 200):
        modes = {
            resolver.resolve_uncached(BatchContext(spelling, "els")).mode
            for spelling in (batch_id, str(batch_id), f"0{batch_id}", f" {batch_id} ")
        }
        assert len(modes) == 1, batch_id


@pytest.mark.parametrize(
    ("raw", "kept"),
    [("b-7", "b-7"), ("B-7", "B-7"), (" batch.1 ", "batch.1"), ("1.0", "1.0"), ("0x1f", "0x1f")],
)
def test_other_ids_are_opaque_and_exact(raw: str, kept: str) -> None:
    assert BatchContext(raw).cj_batch_id == kept


@pytest.mark.parametrize("raw", ["\u0661", "1 2", "+1", "-1", "9" * 19, ""])
def test_unusable_ids_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="cj_batch_id"):
        BatchContext(raw)


def _explain_key(capsys: pytest.CaptureFixture[str], batch_id: str) -> str:
    flags = str(ROOT / "flags.yaml")
    assert main(["explain", "--batch-id", batch_id, "--flags", flags, "--json"]) == 0
    key: str = json.loads(capsys.readouterr().out)["cj_batch_id"]
    return key


def test_explain_normalises_like_the_library(capsys: pytest.CaptureFixture[str]) -> None:
    assert {_explain_key(capsys, spelling) for spelling in ("7", "07", " 7")} == {"7"}


def test_rollout_accepts_the_same_ids(capsys: pytest.CaptureFixture[str]) -> None:
    flags = str(ROOT / "flags.yaml")
    results = []
    for first in ("07", "7"):
        argv = ["rollout", "--source", "els", "--first-batch-id", first, "--batches", "50"]
        assert main([*argv, "--flags", flags, "--json"]) == 0
        results.append(json.loads(capsys.readouterr().out))
    assert results[0] == results[1]
