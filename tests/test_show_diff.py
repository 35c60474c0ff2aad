"""`cj-batching show` and `diff`: the flag set in words, and what an edit moves."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cj_batching.cli import main

from .documents import allow_list_flag, batching_document, document, mode_flag, source_is

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ROOT / "flags.yaml"
SHIPPED = yaml.safe_load(FLAGS.read_text())


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, name: str, content: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


def shipped_with(edit: Any, version: str = "next") -> dict[str, Any]:
    """The shipped flags.yaml with `edit(mode_flag_if_list)` applied and a new version."""
    document = copy.deepcopy(SHIPPED)
    document["metadata"]["version"] = version
    edit(document["flags"]["llm-batching-mode"]["targeting"]["if"])
    return document


def set_weights(batch_api: int, serial: int) -> Any:
    def edit(rules: list[Any]) -> None:
        rules[5]["fractional"] = [["provider_batch_api", batch_api], ["serial_bundle", serial]]

    return edit


def reorder(rules: list[Any]) -> None:
    rules[5]["fractional"].reverse()


# --- show --------------------------------------------------------------------------------


def test_show_puts_the_rule_per_source_in_words(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "--flags", str(FLAGS))
    assert code == 0
    lines = out.splitlines()
    version = SHIPPED["metadata"]["version"]
    assert lines[0] == f"{FLAGS}: version {version}, flag set cj-batching, 2 flag(s), valid"
    assert "llm-batching-mode (the batching mode): ENABLED" in lines
    assert "  variants: per_request, serial_bundle, provider_batch_api" in lines
    assert "  default variant: none" in lines
    assert (
        "  els: 20 % provider_batch_api / 80 % serial_bundle, sticky per batch id "
        "(except provider mock: per_request)"
    ) in lines
    assert (
        "  bos: no rule matches: the env default (serial_bundle) "
        "(except provider mock: per_request)"
    ) in lines
    assert "  eng5_runner: provider_batch_api (except provider mock: per_request)" in lines
    assert "allow list for provider_batch_api: openai, anthropic (from the flag)" in lines


def test_show_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "--flags", str(FLAGS), "--json")
    result = json.loads(out)
    assert code == 0
    assert (result["valid"], result["version"]) == (True, SHIPPED["metadata"]["version"])
    assert result["env_default"] == "serial_bundle"
    mode, allow = result["flags"]
    assert (mode["key"], mode["role"], mode["state"]) == ("llm-batching-mode", "mode", "ENABLED")
    assert mode["default_variant"] is None
    rules = {rule["source"]: rule for rule in mode["rules"]}
    assert rules["els"]["kind"] == "split"
    assert rules["els"]["weights"] == {"provider_batch_api": 20, "serial_bundle": 80}
    assert rules["els"]["exceptions"] == [{"when": "provider mock", "text": "per_request"}]
    assert (rules["bos"]["kind"], rules["bos"]["variant"]) == ("default", None)
    assert (rules["eng5_runner"]["kind"], rules["eng5_runner"]["variant"]) == (
        "variant",
        "provider_batch_api",
    )
    assert (allow["key"], allow["role"]) == ("llm-batch-api-allowed-providers", "allow_list")
    assert result["allow_list"] == {
        "providers": ["openai", "anthropic"],
        "source": "flag",
        "note": None,
    }


def test_show_a_disabled_flag_and_the_settings_allow_list(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write(
        tmp_path, "flags.yaml", document(mode_flag({"if": [True, "per_request"]}, state="DISABLED"))
    )
    code, out, _ = run(capsys, "show", "--flags", str(path))
    assert code == 0
    assert "  els: disabled: the env default (serial_bundle)" in out
    assert "allow list for provider_batch_api: openai, anthropic (from the settings; no flag" in out


def test_show_a_rule_for_retries(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    retry = {"==": [{"var": "cj_request_type"}, "cj_retry"]}
    path = write(tmp_path, "flags.yaml", document(mode_flag({"if": [retry, "per_request", None]})))
    _, out, _ = run(capsys, "show", "--flags", str(path))
    assert (
        "  bos: no rule matches: the env default (serial_bundle) "
        "(except request type cj_retry: per_request)"
    ) in out
    assert (
        "  eng5_runner: no rule matches: the env default (serial_bundle) "
        "(except request type cj_retry: per_request)" in out
    )


def test_show_a_rule_that_fails_to_evaluate(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A rule flagd-core cannot evaluate (a division by zero) serves the env default:
    `show` says so instead of crashing."""
    failing = {"==": [{"/": [1, {"var": "cj_batch_size"}]}, 1]}
    rule = {"if": [failing, "per_request", None]}
    path = write(tmp_path, "flags.yaml", document(mode_flag(rule)))
    code, out, _ = run(capsys, "show", "--flags", str(path))
    assert code == 0
    assert "  els: the rule fails (" in out
    assert "): the env default (serial_bundle)" in out


def test_show_a_rule_that_tests_the_batch_id(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rule = {"if": [{"starts_with": [{"var": "targetingKey"}, "1"]}, "per_request", None]}
    path = write(tmp_path, "flags.yaml", document(mode_flag(rule)))
    _, out, _ = run(capsys, "show", "--flags", str(path))
    assert "  els: depends on the batch id outside a fractional split" in out


def test_show_a_custom_bucketing_expression(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    split = {"fractional": [{"var": "cj_source"}, ["per_request", 1], ["serial_bundle", 3]]}
    path = write(tmp_path, "flags.yaml", document(mode_flag(split)))
    _, out, _ = run(capsys, "show", "--flags", str(path))
    assert (
        "  els: 25 % per_request / 75 % serial_bundle, sticky per the value of {'var': 'cj_source'}"
        in out
    )


def test_show_json_sums_the_weights_of_a_variant_listed_twice(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    split = {"fractional": [["per_request", 10], ["serial_bundle", 80], ["per_request", 10]]}
    path = write(tmp_path, "flags.yaml", document(mode_flag(split)))
    _, out, _ = run(capsys, "show", "--flags", str(path), "--json")
    (mode,) = json.loads(out)["flags"]
    assert mode["rules"][0]["weights"] == {"per_request": 20, "serial_bundle": 80}


def test_show_without_the_mode_flag(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path, "flags.yaml", document(allow_list=allow_list_flag("openai")))
    code, out, _ = run(capsys, "show", "--flags", str(path))
    assert code == 0
    assert "no flag llm-batching-mode: every batch gets the env default (serial_bundle)" in out
    assert "allow list for provider_batch_api: openai (from the flag)" in out


def test_show_an_invalid_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    broken = batching_document()
    broken["flags"]["llm-batching-mode"]["defaultVariant"] = "fast"
    path = write(tmp_path, "flags.yaml", broken)
    code, out, _ = run(capsys, "show", "--flags", str(path))
    assert code == 1
    assert "invalid" in out.splitlines()[0]
    assert "a running service keeps its last good flags" in out
    assert "/flags/llm-batching-mode/defaultVariant" in out
    code, out, _ = run(capsys, "show", "--flags", str(path), "--json")
    assert (code, json.loads(out)["valid"]) == (1, False)


def _allow_list_per_source(targeting: Any) -> dict[str, Any]:
    allow = {
        "state": "ENABLED",
        "variants": {
            "openai_only": {"providers": ["openai"]},
            "anthropic_only": {"providers": ["anthropic"]},
            "google_only": {"providers": ["google"]},
        },
        "defaultVariant": "google_only",
        "targeting": targeting,
    }
    return document(mode_flag(default_variant="serial_bundle"), allow)


def test_show_an_allow_list_split_by_an_expression(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bucket_by = {"cat": [{"var": "cj_source"}, "-arm"]}
    split = {"fractional": [bucket_by, ["openai_only", 50], ["anthropic_only", 50]]}
    path = write(tmp_path, "flags.yaml", _allow_list_per_source(split))
    code, out, err = run(capsys, "show", "--flags", str(path))
    assert (code, err) == (0, "")
    assert (
        "allow list for provider_batch_api: differs per batch id "
        "(llm-batch-api-allowed-providers splits batches: see cj-batching explain)"
    ) in out.splitlines()


def test_show_the_allow_list_of_the_first_known_source_whatever_the_hash_seed(
    tmp_path: Path,
) -> None:
    """The sources' lists differ: show takes els's (KNOWN_SOURCES order), not whichever a
    set of outcomes yields first (which PYTHONHASHSEED decides)."""
    rule = {"if": [source_is("bos"), "anthropic_only", source_is("els"), "openai_only", None]}
    path = write(tmp_path, "flags.yaml", _allow_list_per_source(rule))
    command = [sys.executable, "-m", "cj_batching", "show", "--json", "--flags", str(path)]
    seen = set()
    for seed in ("0", "1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        allow_list = json.loads(done.stdout)["allow_list"]
        seen.add((tuple(allow_list["providers"]), allow_list["source"], allow_list["note"]))
    assert seen == {(("openai",), "flag", "differs per source or batch: see cj-batching explain")}


def test_show_reads_the_settings_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    assert run(capsys, "show")[0] == 0


# --- diff --------------------------------------------------------------------------------


def diff_json(
    capsys: pytest.CaptureFixture[str], old: Path, new: Path, *argv: str
) -> dict[str, Any]:
    code, out, err = run(capsys, "diff", str(old), str(new), "--json", *argv)
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


def moves(result: dict[str, Any], source: str) -> dict[tuple[str, str], int]:
    return {(m["from"], m["to"]): m["count"] for m in result["moves"] if m["source"] == source}


def test_widening_a_split_moves_batches_one_way_only(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    new = write(tmp_path, "flags.new.yaml", shipped_with(set_weights(50, 50)))
    result = diff_json(capsys, FLAGS, new, "--batches", "4000")
    els = moves(result, "els")
    assert list(els) == [("serial_bundle", "provider_batch_api")]
    # 30 % of all ids change arm, give or take sampling noise (sigma ~29 of 4 000)
    assert 1100 < els[("serial_bundle", "provider_batch_api")] < 1300
    assert moves(result, "bos") == moves(result, "eng5_runner") == {}


def test_reordering_variants_reshuffles(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    new = write(tmp_path, "flags.new.yaml", shipped_with(reorder))
    els = moves(diff_json(capsys, FLAGS, new, "--source", "els"), "els")
    assert set(els) == {
        ("serial_bundle", "provider_batch_api"),
        ("provider_batch_api", "serial_bundle"),
    }
    assert all(count > 500 for count in els.values())  # a reshuffle, not a rounding error


def test_diff_json_shape(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    new = write(tmp_path, "flags.new.yaml", shipped_with(set_weights(50, 50), version="v-new"))
    result = diff_json(capsys, FLAGS, new, "--batches", "500", "--source", "els", "--source", "bos")
    assert set(result) == {"version", "changes", "batches", "moves"}
    assert result["version"] == {"old": SHIPPED["metadata"]["version"], "new": "v-new"}
    assert result["batches"] == 500
    weights = "/flags/llm-batching-mode/targeting/if/5/fractional"
    assert result["changes"] == [
        {"path": "/metadata/version", "old": SHIPPED["metadata"]["version"], "new": "v-new"},
        {"path": f"{weights}/0/1", "old": 20, "new": 50},
        {"path": f"{weights}/1/1", "old": 80, "new": 50},
    ]
    assert all(set(move) == {"source", "from", "to", "count"} for move in result["moves"])
    assert {move["source"] for move in result["moves"]} == {"els"}


def test_diff_text(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    new = write(tmp_path, "flags.new.yaml", shipped_with(set_weights(50, 50), version="v-new"))
    code, out, _ = run(capsys, "diff", str(FLAGS), str(new), "--batches", "2000")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"{FLAGS} -> {new}: version {SHIPPED['metadata']['version']} -> v-new"
    assert "  ~ /flags/llm-batching-mode/targeting/if/5/fractional/0/1: 20 -> 50" in lines
    assert (
        "    -> 50 % provider_batch_api / 50 % serial_bundle, sticky per batch id "
        "(except provider mock: per_request)" in lines
    )
    assert "moves over batch ids 1..2 000, provider openai:" in lines
    (els,) = [line for line in lines if line.startswith("  els: ") and "move" in line]
    assert els.endswith(
        "of 2 000 move serial_bundle -> provider_batch_api; none move the other way"
    )
    assert "  bos: none of 2 000 move" in lines


def test_diff_of_identical_files(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "diff", str(FLAGS), str(FLAGS), "--batches", "100")
    assert code == 0
    assert "no changes: the two documents are the same" in out
    assert "rules per source: unchanged" in out


def test_diff_shows_an_inserted_rule_at_its_index(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def bos_per_request(rules: list[Any]) -> None:
        rules[6:6] = [source_is("bos"), "per_request"]

    new = write(tmp_path, "flags.new.yaml", shipped_with(bos_per_request))
    result = diff_json(capsys, FLAGS, new, "--batches", "100")
    rules = "/flags/llm-batching-mode/targeting/if"
    assert {"path": f"{rules}/6", "old": None, "new": source_is("bos")} in result["changes"]
    assert {"path": f"{rules}/7", "old": None, "new": "per_request"} in result["changes"]
    assert moves(result, "bos") == {("serial_bundle", "per_request"): 100}


def test_diff_applies_the_guardrail_of_each_version(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    document = copy.deepcopy(SHIPPED)
    document["flags"]["llm-batch-api-allowed-providers"]["variants"]["allowed"]["providers"] = [
        "openai"
    ]
    new = write(tmp_path, "flags.new.yaml", document)
    result = diff_json(capsys, FLAGS, new, "--provider", "anthropic", "--batches", "200")
    assert moves(result, "eng5_runner") == {("provider_batch_api", "serial_bundle"): 200}
    assert {
        "path": "/flags/llm-batch-api-allowed-providers/variants/allowed/providers/1",
        "old": "anthropic",
        "new": None,
    } in result["changes"]


def test_diff_with_an_invalid_new_file_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    broken = copy.deepcopy(SHIPPED)
    broken["flags"]["llm-batching-mode"]["defaultVariant"] = "fast"
    new = write(tmp_path, "flags.new.yaml", broken)
    code, out, _ = run(capsys, "diff", str(FLAGS), str(new))
    assert code == 1
    assert "NEW cannot be compared until it validates" in out
    assert "/flags/llm-batching-mode/defaultVariant" in out
    code, out, _ = run(capsys, "diff", str(FLAGS), str(new), "--json")
    assert (code, json.loads(out)["error"]) == (1, "NEW is invalid")


def test_diff_warns_on_an_unknown_source(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "diff", str(FLAGS), str(FLAGS), "--source", "bso", "--batches", "10")
    assert code == 0
    assert "cj_source 'bso' is not a known source" in err


def test_diff_counts_a_single_moved_id(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    one_id = {"if": [{"==": [{"var": "targetingKey"}, "5000"]}, "per_request", None]}
    old = write(tmp_path, "flags.yaml", document(mode_flag(None), version="v1"))
    new = write(tmp_path, "flags.new.yaml", document(mode_flag(one_id), version="v2"))
    result = diff_json(capsys, old, new, "--source", "bos")
    assert moves(result, "bos") == {("serial_bundle", "per_request"): 1}
