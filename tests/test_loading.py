"""Parsing flag documents: strict, safe YAML and JSON, size cap, every problem listed."""

from __future__ import annotations

from pathlib import Path

import pytest

from flags import MAX_DOCUMENT_BYTES, DocumentError, load_document, parse_document

GOOD_YAML = """
metadata: {version: 2026-11-25}
flags:
  f: {state: ENABLED, variants: {a: a}, defaultVariant: a}
"""


def test_yaml_timestamps_stay_strings() -> None:
    assert parse_document(GOOD_YAML, "yaml")["metadata"]["version"] == "2026-11-25"


def test_yaml_alias_bomb_is_refused_quickly() -> None:
    bomb = (
        "a: &a [x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
            f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
            for i in range(9)
        )
        + "flags: *j\n"
    )
    with pytest.raises(DocumentError, match="aliases"):
        parse_document(bomb, "yaml")


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_duplicate_keys_are_refused(fmt: str) -> None:
    text = '{"flags": {}, "flags": {}}' if fmt == "json" else "flags: {}\nflags: {}\n"
    with pytest.raises(DocumentError, match="duplicate key 'flags'"):
        parse_document(text, fmt)  # type: ignore[arg-type]


def test_unsafe_yaml_tags_are_refused() -> None:
    with pytest.raises(DocumentError, match="YAML syntax error"):
        parse_document("flags: !!python/object/apply:os.system ['echo pwned']", "yaml")


def test_json_nan_is_refused() -> None:
    with pytest.raises(DocumentError, match="NaN is not valid JSON"):
        parse_document('{"flags": {}, "metadata": {"x": NaN}}', "json")


def test_deep_nesting_is_refused_without_crashing() -> None:
    with pytest.raises(DocumentError):
        parse_document("[" * 100_000 + "]" * 100_000, "json")


def test_oversized_document_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "flags.yaml"
    path.write_bytes(b"#" * (MAX_DOCUMENT_BYTES + 1))
    with pytest.raises(DocumentError, match="limit"):
        load_document(path)


def test_every_problem_is_listed() -> None:
    text = (
        "flags:\n  a: {state: ON, variants: {}}\n"
        "  b: {state: ENABLED, variants: {x: 1}, defaultVariant: y}\n"
    )
    with pytest.raises(DocumentError) as info:
        parse_document(text, "yaml", source="flags.yaml")
    paths = {problem.path for problem in info.value.problems}
    assert {"/flags/a/state", "/flags/a/variants", "/flags/b/defaultVariant"} <= paths
    assert str(info.value).startswith("flags.yaml: ")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="file not found"):
        load_document(tmp_path / "absent.yaml")
