"""`cj-batching rollout`: proportions against declared weights, JSON, several sources."""

from __future__ import annotations

import fcntl
import json
import math
import os
import pty
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
import yaml

from cj_batching.cli import main

from .documents import batching_document, document, mode_flag

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
            "guardrail_downgrades",
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


GUARDED = ("--source", "eng5_runner", "--provider", "google", "--batches", "100")


def test_the_guardrail_shows_in_the_preview(capsys: pytest.CaptureFixture[str]) -> None:
    (result,) = rollout_json(capsys, *GUARDED, "--flags", str(ROOT / "flags.yaml"))
    assert result["modes"]["provider_batch_api"]["count"] == 0  # type: ignore[index]
    assert result["modes"]["serial_bundle"]["count"] == 100  # type: ignore[index]


def test_guardrail_downgrades_are_counted(capsys: pytest.CaptureFixture[str]) -> None:
    (result,) = rollout_json(capsys, *GUARDED, "--flags", str(ROOT / "flags.yaml"))
    assert result["guardrail_downgrades"] == 100


def test_an_allowed_provider_has_no_downgrades(capsys: pytest.CaptureFixture[str]) -> None:
    (result,) = rollout_json(
        capsys,
        "--source",
        "eng5_runner",
        "--provider",
        "openai",
        "--flags",
        str(ROOT / "flags.yaml"),
    )
    assert result["guardrail_downgrades"] == 0


def test_guardrail_downgrades_are_shown(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = rollout(capsys, *GUARDED, "--flags", str(ROOT / "flags.yaml"))
    assert code == 0
    assert "guardrail: 100 of 100 asked for provider_batch_api, which google may not use" in out


def test_the_downgrade_warning_is_logged_once_per_run(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = rollout(capsys, *GUARDED, "--flags", str(ROOT / "flags.yaml"))
    assert code == 0
    warnings = [line for line in err.splitlines() if "is not allowed for provider" in line]
    assert warnings == [
        "WARNING cj_batching.resolver.guardrail: provider_batch_api is not allowed for "
        "provider google; using serial_bundle"
    ]


def _run_with_stderr_on_a_terminal(*argv: str) -> str:
    """The CLI in a subprocess whose stderr is a pseudo-terminal; what it showed there."""
    primary, secondary = pty.openpty()
    # A fresh pseudo-terminal is 0 columns wide (tqdm then draws nothing): give it 80.
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "cj_batching", *argv],
            stdout=subprocess.DEVNULL,
            stderr=secondary,
            timeout=120,
            check=False,
        )
        os.close(secondary)
        secondary = -1
        shown = b""
        while select.select([primary], [], [], 0.5)[0]:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the terminal's other side is closed and drained
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(primary)
        if secondary != -1:
            os.close(secondary)
    assert done.returncode == 0
    return shown.decode(errors="replace")


LONG_RUN = ("rollout", "--source", "els", "--batches", "30000", "--flags", str(ROOT / "flags.yaml"))


def test_a_long_run_shows_progress_on_a_terminal() -> None:
    assert "rollout:" in _run_with_stderr_on_a_terminal(*LONG_RUN)


def test_no_progress_when_stderr_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = rollout(capsys, *LONG_RUN[1:])
    assert code == 0
    assert err == ""


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
        (["--sources", ""], "at least one source"),
        (["--source", "els", "--provider", "azure"], "llm_provider"),
    ],
)
def test_usage_errors(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, _, err = rollout(capsys, *argv, "--flags", str(ROOT / "flags.yaml"))
    assert code == 2
    assert message in err


def test_a_rule_on_one_batch_id_is_counted_exactly(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # No shortcut may skip ids when a rule reads the batch id: one id in 10 000 differs.
    one_id = {"if": [{"==": [{"var": "targetingKey"}, "5000"]}, "per_request", None]}
    path = tmp_path / "flags.yaml"
    path.write_text(yaml.safe_dump(document(mode_flag(one_id))))
    (result,) = rollout_json(capsys, "--source", "bos", "--batches", "10000", "--flags", str(path))
    assert result["modes"]["per_request"]["count"] == 1  # type: ignore[index]
    assert result["modes"]["serial_bundle"]["count"] == 9999  # type: ignore[index]


# Declared weights are per mode, whatever the variants are called and however often a
# mode comes back (flagd sums the buckets of a variant listed twice).
DECLARED = {
    "variants named for their role": (
        {"batch": "provider_batch_api", "bundle": "serial_bundle"},
        [["batch", 20], ["bundle", 80]],
        {"provider_batch_api": 20, "serial_bundle": 80},
    ),
    "the alias as a variant name": (
        {"provider_serial_bundle": "serial_bundle", "per_request": "per_request"},
        [["provider_serial_bundle", 70], ["per_request", 30]],
        {"serial_bundle": 70, "per_request": 30},
    ),
    "two variants of one mode": (
        {"a": "serial_bundle", "b": "serial_bundle", "per_request": "per_request"},
        [["a", 30], ["b", 50], ["per_request", 20]],
        {"serial_bundle": 80, "per_request": 20},
    ),
    "one variant listed twice": (
        {"per_request": "per_request", "serial_bundle": "serial_bundle"},
        [["per_request", 10], ["serial_bundle", 80], ["per_request", 10]],
        {"per_request": 20, "serial_bundle": 80},
    ),
}


def _split_file(tmp_path: Path, case: str) -> Path:
    variants, buckets, _ = DECLARED[case]
    path = tmp_path / "flags.yaml"
    path.write_text(yaml.safe_dump(document(mode_flag({"fractional": buckets}, variants=variants))))
    return path


@pytest.mark.parametrize("case", DECLARED)
def test_declared_weights_are_summed_per_mode(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, case: str
) -> None:
    path = _split_file(tmp_path, case)
    (result,) = rollout_json(capsys, "--source", "els", "--batches", "10", "--flags", str(path))
    assert result["declared_weights"] == DECLARED[case][2]


def test_the_declared_column_names_the_mode_of_a_renamed_variant(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = _split_file(tmp_path, "variants named for their role")
    code, out, _ = rollout(capsys, "--source", "els", "--batches", "10", "--flags", str(path))
    assert code == 0
    (row,) = [line for line in out.splitlines() if line.startswith("  provider_batch_api ")]
    assert row.endswith("   20.0% (weight 20)")
    assert "no fractional rule applies" not in out
