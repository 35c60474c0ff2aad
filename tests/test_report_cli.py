"""`cj-batching report` as a researcher runs it: files, stdin, JSON, the picture, exit codes."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cj_batching.cli import main

from .callbacks import ArmProfile, CallbackSimulator, to_line

_PROFILES = {
    "serial_bundle": ArmProfile(),
    "provider_batch_api": ArmProfile(success_rate=0.8),
    "per_request": ArmProfile(),
}


@pytest.fixture
def export(tmp_path: Path) -> Path:
    """A rollout's callbacks, as `kcat -C ... -e` writes them (plus one bad line)."""
    simulator = CallbackSimulator(_PROFILES, seed=8)
    envelopes = simulator.experiment(
        batches=40, weights={"serial_bundle": 50, "provider_batch_api": 50}
    )
    path = tmp_path / "results.jsonl"
    path.write_bytes(b"".join(to_line(e) for e in envelopes) + b"not json\n")
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(["report", *args])
    except SystemExit as exit_:  # argparse's own usage errors
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_a_report_exits_0_and_names_the_arms(
    export: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, str(export))
    assert code == 0
    assert "source els" in out
    assert "versus serial_bundle (control)" in out
    assert "provider_batch_api" in out


def test_bad_lines_are_reported_with_their_line_numbers(
    export: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = run(capsys, str(export))
    assert "bad lines: 1;" in out
    assert f"{export}:481: not JSON" in out


def test_json_prints_one_object(export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(export), "--json")
    data = json.loads(out)
    assert code == 0
    assert data["bad_lines"] == 1
    assert [c["mode"] for c in data["versus_control"]] == ["provider_batch_api"]


def test_gzip_and_several_files_are_read(
    export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zipped = tmp_path / "more.jsonl.gz"
    zipped.write_bytes(gzip.compress(export.read_bytes()))
    _, out, _ = run(capsys, str(export), str(zipped), "--json")
    data = json.loads(out)
    assert data["duplicates"] == 480  # the same events twice: counted once
    assert data["bad_lines"] == 2


def test_stdin_is_read_for_a_dash(export: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cj_batching", "report", "-", "--json"],
        input=export.read_bytes(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["results"] == 480


def test_source_and_control_options(export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(
        capsys, str(export), "--json", "--source", "els", "--control", "provider_batch_api"
    )
    data = json.loads(out)
    assert data["control"] == "provider_batch_api"
    assert [(c["mode"], c["control"]) for c in data["versus_control"]] == [
        ("serial_bundle", "provider_batch_api")
    ]


def test_the_old_serial_spelling_is_accepted_as_control(
    export: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = run(capsys, str(export), "--json", "--control", "provider_serial_bundle")
    assert json.loads(out)["control"] == "serial_bundle"


def test_the_control_defaults_to_the_env_default_mode(
    export: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CJ_ASSESSMENT_SERVICE_LLM_BATCHING_MODE", "provider_batch_api")
    _, out, _ = run(capsys, str(export), "--json")
    assert json.loads(out)["control"] == "provider_batch_api"


def test_since_and_until_filter_by_request_time(
    export: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = run(
        capsys, str(export), "--json", "--since", "2026-02-02T08:05Z", "--until", "2026-02-02 08:10"
    )
    data = json.loads(out)
    assert data["results"] == 15 * 12  # a batch every 20 s
    assert data["requested_from"] == "2026-02-02T08:05:00Z"


def test_no_usable_result_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "junk.jsonl"
    path.write_text("junk\n[]\n")
    code, _, err = run(capsys, str(path))
    assert code == 1
    assert "no usable result in 1 file(s) (2 bad lines" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.jsonl"], "missing.jsonl: no such file"),
        (["{export}", "--since", "last tuesday"], "'last tuesday' is not a date or time"),
        (["{export}", "--control", "fastest"], "'fastest' is not a batching mode"),
        (["{export}", "--since", "2026-03-01", "--until", "2026-02-01"], "must be before until"),
        (["{export}", "--replicates", "10"], "--replicates: 10: Input should be greater"),
        (["{export}", "--source", " , "], "--source: ' , ': give at least one source"),
        (["-", "-"], "- (stdin) can be read only once"),
        (["{export}", "--plot", "picture.jpg"], "--plot: picture.jpg must end in .png"),
        (["{export}", "--plot", "no/such/dir/p.png"], "no/such/dir is not a directory"),
    ],
)
def test_usage_errors_exit_2_with_a_clear_message(
    export: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(export.parent)
    code, _, err = run(capsys, *(arg.format(export=export) for arg in args))
    assert code == 2
    assert message in err


def test_a_directory_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, str(tmp_path))
    assert code == 2
    assert "is a directory" in err


def test_plot_writes_a_png(
    export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    picture = tmp_path / "arms.png"
    code, _, err = run(capsys, str(export), "--plot", str(picture))
    assert code == 0
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert picture.stat().st_size > 20_000  # four panels, not an empty canvas
    assert f"wrote {picture}" in err


def test_plot_without_the_extra_names_it_and_exits_2(
    export: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    code, out, err = run(capsys, str(export), "--plot", str(tmp_path / "p.png"))
    assert code == 2
    assert "cj-batching[report]" in err
    assert out == ""  # refused before the files were read
    assert not (tmp_path / "p.png").exists()


def test_the_text_report_works_without_the_extra(
    export: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, out, _ = run(capsys, str(export))
    assert code == 0
    assert "versus serial_bundle" in out


def test_control_characters_in_a_file_name_are_shown_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "evil\x1b[2J.jsonl"
    path.write_bytes(
        b"junk\n" + to_line(CallbackSimulator(_PROFILES, seed=1).batch(1, "per_request")[0])
    )
    _, out, _ = run(capsys, str(path))
    assert "\x1b" not in out
    assert "evil\\x1b[2J.jsonl:1" in out


def test_help_explains_the_export_and_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "kcat -C -b BROKER -t huleedu.llm_provider.comparison_result.v1 -e" in out
    assert "0 a report, 1 no usable result, 2 usage error" in out
    assert "cluster bootstrap over batches" in out
