"""The guard's knobs: settings, flag metadata `guard_*` keys, and the flag-document check
that refuses bad guard metadata before a version goes live."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from cj_batching import GuardPolicy, LLMBatchingMode, SettingsError, batching_flag_checks
from cj_batching.cli import main
from cj_batching.guard import METADATA_KEYS, parse_guard_metadata
from flags import DocumentError, check_document, validate_document

from . import documents
from .conftest import make_settings
from .documents import allow_list_flag, batching_document, mode_flag

ROOT = Path(__file__).resolve().parent.parent
MODE_FLAG = "llm-batching-mode"


# --- settings ----------------------------------------------------------------------------


def test_settings_defaults() -> None:
    settings = make_settings()
    assert settings.GUARD_ENABLED is True
    assert settings.GUARD_MAX_ERROR_RATE_INCREASE == 0.05
    assert settings.GUARD_MIN_RESULTS == 200
    assert settings.GUARD_ALPHA == 0.01
    assert settings.GUARD_WAVE_MEMORY == 50_000


def test_the_default_control_is_the_env_default_mode() -> None:
    policy = GuardPolicy.from_settings(make_settings(LLM_BATCHING_MODE="per_request"))
    assert policy.control is LLMBatchingMode.PER_REQUEST


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("GUARD_MAX_ERROR_RATE_INCREASE", "1.5", "less than 1"),
        ("GUARD_MAX_ERROR_RATE_INCREASE", "0", "greater than 0"),
        ("GUARD_MIN_RESULTS", "5", "greater than or equal to 10"),
        ("GUARD_ALPHA", "0.5", "less than or equal to 0.2"),
        ("GUARD_ENABLED", "maybe", "valid boolean"),
        ("GUARD_WAVE_MEMORY", "0", "greater than or equal to 1"),
    ],
)
def test_bad_settings_name_the_variable_the_value_and_the_bound(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(f"CJ_ASSESSMENT_SERVICE_{name}", value)
    with pytest.raises(SettingsError) as raised:
        make_settings()
    assert f"CJ_ASSESSMENT_SERVICE_{name}='{value}'" in str(raised.value)
    assert message in str(raised.value)


# --- flag metadata -------------------------------------------------------------------------


def test_every_knob_has_a_metadata_key() -> None:
    assert set(METADATA_KEYS) == {f"guard_{name}" for name in GuardPolicy.__dataclass_fields__}


def test_metadata_values_are_parsed() -> None:
    values, problems = parse_guard_metadata(
        {
            "guard_enabled": False,
            "guard_control": "Per_Request",
            "guard_max_error_rate_increase": 0.1,
            "guard_min_results": 500,
            "guard_alpha": 0.001,
        }
    )
    assert problems == []
    assert values == {
        "enabled": False,
        "control": LLMBatchingMode.PER_REQUEST,
        "max_error_rate_increase": 0.1,
        "min_results": 500,
        "alpha": 0.001,
    }


def test_other_metadata_keys_are_not_the_guards() -> None:
    assert parse_guard_metadata({"version": "1", "flagSetId": "x", "owner": "ops"}) == ({}, [])


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("guard_min_results", "200", "'200' is not allowed; use an integer >= 10 and <= 10000000"),
        ("guard_min_results", 200.5, "200.5 is not allowed; use an integer"),
        ("guard_min_results", True, "True is not allowed; use an integer"),
        ("guard_max_error_rate_increase", 5, "5 is not allowed; use a fraction > 0 and < 1"),
        ("guard_max_error_rate_increase", float("nan"), "nan is not allowed; use a fraction"),
        ("guard_alpha", 0.3, "0.3 is not allowed; use a probability > 0 and <= 0.2"),
        ("guard_enabled", "yes", "'yes' is not allowed; use true or false"),
        ("guard_control", "batch_api", "'batch_api' is not allowed; use a batching mode: per_"),
        ("guard_min_result", 100, "unknown guard setting (did you mean guard_min_results?)"),
    ],
)
def test_bad_metadata_is_described(key: str, value: object, message: str) -> None:
    values, problems = parse_guard_metadata({key: value})
    assert values == {}
    ((where, text),) = problems
    assert where == key
    assert text.startswith(message)


@pytest.mark.parametrize(
    ("setting", "key", "inside", "beyond"),
    [
        ("GUARD_ALPHA", "guard_alpha", 0.2, 0.21),
        ("GUARD_MIN_RESULTS", "guard_min_results", 10, 9),
        ("GUARD_MAX_ERROR_RATE_INCREASE", "guard_max_error_rate_increase", 0.999, 1.0),
    ],
)
def test_settings_and_metadata_share_each_bound(
    setting: str, key: str, inside: float, beyond: float
) -> None:
    make_settings(**{setting: inside})
    assert parse_guard_metadata({key: inside})[1] == []
    with pytest.raises(SettingsError):
        make_settings(**{setting: beyond})
    assert parse_guard_metadata({key: beyond})[1] != []


def test_policy_with_metadata_keeps_settings_for_bad_keys() -> None:
    base = GuardPolicy.from_settings(make_settings())
    policy, problems = base.with_metadata({"guard_min_results": 0, "guard_alpha": 0.05})
    assert (policy.min_results, policy.alpha) == (200, 0.05)
    assert problems == [
        "guard_min_results: 0 is not allowed; use an integer >= 10 and <= 10000000, e.g. 200"
    ]


# --- the document check ---------------------------------------------------------------------


def guarded_document(**metadata: Any) -> dict[str, Any]:
    document = batching_document()
    document["flags"][MODE_FLAG]["metadata"] = metadata
    return document


def problems(document: dict[str, Any]) -> list[str]:
    try:
        check_document(document, checks=batching_flag_checks(make_settings()))
    except DocumentError as exc:
        return [str(problem) for problem in exc.problems]
    return []


def test_good_guard_metadata_passes_flagd_validation_and_ours() -> None:
    document = guarded_document(
        guard_max_error_rate_increase=0.05,
        guard_min_results=200,
        guard_control="serial_bundle",
        guard_alpha=0.01,
        guard_enabled=True,
    )
    assert validate_document(document) == []  # the official flagd schema included
    assert problems(document) == []


def test_bad_guard_metadata_is_refused_with_path_value_and_allowed() -> None:
    assert problems(guarded_document(guard_max_error_rate_increase=5)) == [
        f"/flags/{MODE_FLAG}/metadata/guard_max_error_rate_increase: 5 is not allowed; use a "
        "fraction > 0 and < 1, e.g. 0.05 for 5 points"
    ]


def test_guard_metadata_of_the_flag_set_is_checked_too() -> None:
    # flagd merges flag-set metadata into every flag's: it would reach the guard.
    document = batching_document()
    document["metadata"]["guard_min_results"] = 3
    assert problems(document) == [
        "/metadata/guard_min_results: 3 is not allowed; use an integer >= 10 and <= 10000000, "
        "e.g. 200"
    ]


def test_a_control_no_variant_answers_is_refused() -> None:
    variants = {"serial_bundle": "serial_bundle", "provider_batch_api": "provider_batch_api"}
    flag = mode_flag(default_variant="serial_bundle", variants=variants)
    flag["metadata"] = {"guard_control": "per_request"}
    document = documents.document(flag)
    assert problems(document) == [
        f"/flags/{MODE_FLAG}/metadata/guard_control: per_request is not the value of any "
        "variant of this flag, so the guard would never see a control result; variants give: "
        "provider_batch_api, serial_bundle"
    ]


def test_guard_metadata_without_a_flag_set_version_is_refused() -> None:
    document = guarded_document(guard_min_results=100)
    del document["metadata"]
    assert problems(document) == [
        f"/flags/{MODE_FLAG}/metadata/guard_min_results: guard settings need a flag-set "
        "metadata.version: the guard applies them, and releases its trips, when the version "
        "changes"
    ]


def test_documents_without_guard_metadata_are_untouched() -> None:
    document = batching_document()
    del document["metadata"]
    assert problems(document) == []


def test_other_flags_metadata_is_not_the_guards() -> None:
    allow_list = allow_list_flag("openai")
    allow_list["metadata"] = {"guard_alpha": 7}
    document = documents.document(mode_flag(default_variant="serial_bundle"), allow_list)
    assert problems(document) == []


def test_validate_refuses_bad_guard_metadata_in_a_flag_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = yaml.safe_load((ROOT / "flags.yaml").read_text())
    flag = copy.deepcopy(document["flags"][MODE_FLAG])
    flag["metadata"] = {"guard_min_results": "200", "guard_alpa": 0.01}
    document["flags"][MODE_FLAG] = flag
    path = tmp_path / "flags.yaml"
    path.write_text(yaml.safe_dump(document))
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert (
        f"/flags/{MODE_FLAG}/metadata/guard_min_results: '200' is not allowed; use an integer"
        in out
    )
    assert f"/flags/{MODE_FLAG}/metadata/guard_alpa: unknown guard setting (did you mean" in out


def test_a_policy_built_by_hand_is_validated_too() -> None:
    with pytest.raises(ValueError, match=r"^min_results \(guard_min_results\): 0 is not allowed"):
        GuardPolicy(
            enabled=True,
            control=LLMBatchingMode.SERIAL_BUNDLE,
            max_error_rate_increase=0.05,
            min_results=0,
            alpha=0.01,
        )


def test_guard_enabled_false_in_settings_wins_over_metadata() -> None:
    """GUARD_ENABLED=false is the operator's word: a flag file cannot switch it back on."""
    policy = GuardPolicy.from_settings(make_settings(GUARD_ENABLED=False))
    enabled, _ = policy.with_metadata({"guard_enabled": True})
    assert enabled.enabled is False


def test_metadata_may_switch_a_guard_off() -> None:
    policy = GuardPolicy.from_settings(make_settings())
    disabled, _ = policy.with_metadata({"guard_enabled": False})
    assert disabled.enabled is False
