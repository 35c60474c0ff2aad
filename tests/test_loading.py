"""Parsing flag documents: strict, safe YAML and JSON, size cap, every problem listed."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flags import (
    MAX_DOCUMENT_BYTES,
    DocumentError,
    Problem,
    check_document,
    load_document,
    parse_document,
    read_document_bytes,
)

GOOD_YAML = """
metadata: {version: 2026-11-25}
flags:
  f: {state: ENABLED, variants: {a: a}, defaultVariant: a}
"""


def test_yaml_timestamps_stay_strings() -> None:
    assert parse_document(GOOD_YAML, "yaml").document["metadata"]["version"] == "2026-11-25"


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


# --- the documents API: CheckedDocument and DocumentError ------------------------------


def test_a_valid_document_comes_back_checked_with_its_version() -> None:
    checked = parse_document(GOOD_YAML, "yaml", source="flags.yaml")
    assert checked.document["flags"]["f"]["defaultVariant"] == "a"
    assert (checked.warnings, checked.version) == ((), "2026-11-25")


def test_warnings_do_not_refuse_a_document() -> None:
    checked = parse_document(GOOD_YAML + "owner: ops\n", "yaml")
    (warning,) = checked.warnings
    assert (warning.path, warning.severity) == ("/owner", "warning")
    assert str(warning).startswith("/owner: warning: unknown top-level key 'owner'")


def test_document_error_lists_errors_first_then_warnings_with_the_version() -> None:
    text = "metadata: {version: v9}\nowner: ops\nflags:\n  f: {state: enabled, variants: {a: 1}}\n"
    with pytest.raises(DocumentError) as info:
        parse_document(text, "yaml", source="flags.yaml")
    error = info.value
    assert [p.severity for p in error.problems] == ["error", "warning"]
    assert error.errors == (error.problems[0],)
    assert error.warnings == (error.problems[1],)
    assert error.version == "v9"
    assert str(error) == (
        "flags.yaml: 1 error, 1 warning:\n"
        "  /flags/f/state: state must be 'ENABLED' or 'DISABLED'; got 'enabled'\n"
        "  /owner: warning: unknown top-level key 'owner', ignored by flagd; known: $schema, "
        "$evaluators, metadata, flags"
    )


def test_a_document_that_does_not_parse_has_no_version() -> None:
    with pytest.raises(DocumentError) as info:
        parse_document("metadata: {version: v9}\nflags: [", "yaml")
    assert info.value.version is None


def test_document_error_needs_an_error() -> None:
    with pytest.raises(ValueError, match="at least one error"):
        DocumentError("flags.yaml", [Problem("/x", "odd", "warning")])


def test_a_problem_about_the_whole_file_reads_as_one_line(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(DocumentError) as info:
        load_document(path)
    assert str(info.value) == f"{path}: file not found"


def test_invalid_utf8_is_a_problem_not_a_traceback() -> None:
    with pytest.raises(DocumentError, match=r"not valid UTF-8 \(byte 0xff at offset 11\)"):
        parse_document(b'{"flags": {\xff}}', "json")
    with pytest.raises(DocumentError, match="YAML syntax error"):
        parse_document(b"flags: {}\n# \xff\n", "yaml")


# --- infinities and NaN: refused alike in every spelling, wherever they are ---------------

NON_FINITE = "numbers must be finite"


@pytest.mark.parametrize(
    ("fmt", "spelling"),
    [
        ("json", "Infinity"),
        ("json", "-Infinity"),
        ("json", "NaN"),
        ("json", "1e999"),
        ("json", "-1e999"),
        ("yaml", ".inf"),
        ("yaml", "-.inf"),
        ("yaml", ".nan"),
        ("yaml", ".NaN"),
        ("yaml", "1e999"),
        ("yaml", "1.0e+999"),
    ],
)
@pytest.mark.parametrize(
    "where",
    ["metadata", "variant", "weight", "rule"],
)
def test_non_finite_numbers_are_refused_the_same_way(fmt: str, spelling: str, where: str) -> None:
    flag = {"state": "ENABLED", "variants": {"a": 1, "b": 2}, "defaultVariant": "a"}
    if where == "variant":
        flag["variants"]["b"] = "@"
    elif where == "weight":
        flag["targeting"] = {"fractional": [["a", "@"], ["b", 1]]}
    elif where == "rule":
        flag["targeting"] = {"if": [{">": [{"var": "n"}, "@"]}, "b", "a"]}
    document = {"flags": {"f": flag}, "metadata": {"limit": "@" if where == "metadata" else 1}}
    text = json.dumps(document).replace('"@"', spelling)
    with pytest.raises(DocumentError) as info:
        parse_document(text, fmt)  # type: ignore[arg-type]  # JSON text is YAML too
    path = {
        "metadata": "/metadata/limit",
        "variant": "/flags/f/variants/b",
        "weight": "/flags/f/targeting/fractional/0/1",
        "rule": "/flags/f/targeting/if/0/>/1",
    }[where]
    (problem,) = [p for p in info.value.errors if p.message.startswith(NON_FINITE)]
    assert problem.path == path
    assert problem.message.split(" (")[0] in {
        f"{NON_FINITE}; got {v}" for v in ("inf", "-inf", "nan")
    }


def test_non_finite_numbers_in_a_python_document_are_refused() -> None:
    document = {"flags": {"f": {"state": "ENABLED", "variants": {"a": float("inf")}}}}
    with pytest.raises(DocumentError, match=NON_FINITE):
        check_document(document)


def test_yaml_exponents_without_a_dot_are_numbers_as_in_yaml_1_2() -> None:
    text = "flags:\n  f: {state: ENABLED, variants: {small: 1e3, big: 2E+6}, defaultVariant: big}\n"
    variants = parse_document(text, "yaml").document["flags"]["f"]["variants"]
    assert variants == {"small": 1000.0, "big": 2_000_000.0}


# --- files that are not files: never blocking, always named -------------------------------


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _socket(path: Path) -> Path:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()
    return path


NOT_FILES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "fifo": (_fifo, "is a FIFO (named pipe), not a regular file"),
    "directory": (lambda p: (p.mkdir(), p)[1], "is a directory, not a regular file"),
    "socket": (_socket, "is a socket, not a regular file"),
    "character device": (lambda p: Path("/dev/null"), "is a character device"),
}


@pytest.mark.parametrize("kind", NOT_FILES)
def test_a_path_that_is_not_a_regular_file_is_named_without_blocking(
    tmp_path: Path, kind: str
) -> None:
    make, says = NOT_FILES[kind]
    path = make(tmp_path / "flags.yaml")
    started = time.monotonic()
    with pytest.raises(DocumentError) as info:
        read_document_bytes(path)
    assert time.monotonic() - started < 1  # a blocking open or read would hang for good
    assert str(info.value).startswith(f"{path}: {says}")


@pytest.mark.parametrize("target", ["fifo", "/dev/zero"])
def test_a_symlink_to_a_fifo_or_a_device_is_named(tmp_path: Path, target: str) -> None:
    pointed = _fifo(tmp_path / "pipe") if target == "fifo" else Path(target)
    link = tmp_path / "flags.yaml"
    link.symlink_to(pointed)
    with pytest.raises(DocumentError) as info:
        read_document_bytes(link)
    kind = "a FIFO (named pipe)" if target == "fifo" else "a character device"
    assert str(info.value).startswith(f"{link}: is a symlink to {kind}, not a regular file")


def test_a_dangling_symlink_says_where_it_points(tmp_path: Path) -> None:
    link = tmp_path / "flags.yaml"
    link.symlink_to(tmp_path / "gone.yaml")
    with pytest.raises(DocumentError, match=r"file not found \(a symlink to '.*gone.yaml'"):
        read_document_bytes(link)


def test_a_fifo_swapped_in_after_the_check_cannot_block_the_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kind is checked again on the opened file (a race with a rename)."""
    path = tmp_path / "flags.yaml"
    path.write_text(GOOD_YAML)
    real_stat = os.stat

    def stat_then_swap(target: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        result = real_stat(target, *args, **kwargs)
        if Path(target) == path:
            path.unlink()
            os.mkfifo(path)
        return result

    monkeypatch.setattr(os, "stat", stat_then_swap)
    with pytest.raises(DocumentError, match="is a FIFO"):
        read_document_bytes(path)
