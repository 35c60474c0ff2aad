"""`cj-batching rollout`: proportions against declared weights, JSON, several sources."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from cj_batching.cli import main

from .documents import batching_document

ROOT = Path(__file__).resolve().parent.parent


def rollout(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["rollout", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def rollout_json(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, object]]:
    code, out, _ = rollout(capsys, *argv, "--json")
    assert code == 0
    results: list[dict[str, object]] = json.loads(out)["results"]
    return results


@pytest.mark.parametrize("share", [5, 20, 50])
def test_split_matches_the_declared_weights(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    share: int,
) -> None:
    path = tmp_path / "flags.yaml"
    path.write_text(yaml.safe_dump(batching_document(batch_api_share=share)))
    (result,) = rollout_json(capsys, "--source", "els", "--batches", "20000", "--flags", str(path))
    assert result["declared_weights"] == {
        "provider_batch_api": share,
        "serial_bundle": 100 - share,
    }
    modes = result["modes"]
    assert isinstance(modes, dict)
    observed = modes["provider_batch_api"]["share"]
    expected = share / 100
    sigma = math.sqrt(expected * (1 - expected) / 20000)
    assert abs(observed - expected) < 5 * sigma
    assert modes["provider_batch_api"]["count"] + modes["serial_bundle"]["count"] == 20000
    assert result["decided_by"] == {"override": 0, "flag": 20000, "default": 0, "guard": 0}


def test_json_shape_for_several_sources(capsys: pytest.CaptureFixture[str]) -> None:
    results = rollout_json(
        capsys,
        "--sources",
        "els,bos,eng5_runner",
        "--provider",
        "anthropic",
        "--batches",
        "500",
        "--first-batch-id",
        "1000",
        "--flags",
        str(ROOT / "flags.yaml"),
    )
    assert [r["source"] for r in results] == ["els", "bos", "eng5_runner"]
    for result in results:
        assert set(result) == {
            "source",
            "provider",
            "batches",
            "modes",
            "decided_by",
            "declared_weights",
        }
        assert (result["provider"], result["batches"]) == ("anthropic", 500)
        modes = result["modes"]
        assert isinstance(modes, dict)
        assert set(modes) == {"per_request", "serial_bundle", "provider_batch_api"}
        assert sum(m["count"] for m in modes.values()) == 500
        assert math.isclose(sum(m["share"] for m in modes.values()), 1.0)
    bos, eng5 = results[1], results[2]
    assert bos["declared_weights"] is None
    assert bos["decided_by"] == {"override": 0, "flag": 0, "default": 500, "guard": 0}
    assert eng5["modes"]["provider_batch_api"]["count"] == 500  # type: ignore[index]


def test_the_guardrail_shows_in_the_preview(capsys: pytest.CaptureFixture[str]) -> None:
    (result,) = rollout_json(
        capsys,
        "--source",
        "eng5_runner",
        "--provider",
        "google",
        "--batches",
        "100",
        "--flags",
        str(ROOT / "flags.yaml"),
    )
    assert result["modes"]["provider_batch_api"]["count"] == 0  # type: ignore[index]
    assert result["modes"]["serial_bundle"]["count"] == 100  # type: ignore[index]


def test_same_ids_same_arms_across_runs(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("--source", "els", "--batches", "3000", "--flags", str(ROOT / "flags.yaml"))
    assert rollout_json(capsys, *argv) == rollout_json(capsys, *argv)


def test_human_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = rollout(
        capsys, "--source", "els", "--batches", "1000", "--flags", str(ROOT / "flags.yaml")
    )
    assert code == 0
    assert "source els, provider openai: 1000 batches (ids 1..1000)" in out
    assert "20.0% (weight 20)" in out
    assert "decided by: flag 1000" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--source", "els", "--batches", "0"], "--batches: 0 must be in 1.."),
        (["--source", "bad source"], "cj_source"),
        (["--sources", ","], "at least one source"),
        (["--source", "els", "--provider", "azure"], "llm_provider"),
    ],
)
def test_usage_errors(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, _, err = rollout(capsys, *argv, "--flags", str(ROOT / "flags.yaml"))
    assert code == 2
    assert message in err
