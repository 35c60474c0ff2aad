"""Package boundaries and the public API a user imports."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "flags").rglob("*.py")), ids=lambda p: p.name)
def test_flags_knows_nothing_about_batching(path: Path) -> None:
    assert "cj_batching" not in _imports(path)


@pytest.mark.parametrize(
    ("package", "names"),
    [
        (
            "cj_batching",
            [
                "LLMBatchingMode",
                "LLMProviderType",
                "Settings",
                "BatchConfigOverrides",
                "get_effective_batching_mode",
                "BatchContext",
                "Resolution",
                "BatchingModeResolver",
                "configure",
                "RolloutGuard",
                "ArmResult",
            ],
        ),
        ("flags", ["FlagdFileProvider", "FlagdMemoryProvider", "validate_document", "Problem"]),
    ],
)
def test_public_api_is_importable_from_the_package_root(package: str, names: list[str]) -> None:
    module = importlib.import_module(package)
    for name in names:
        assert name in module.__all__
        assert getattr(module, name) is not None


@pytest.mark.parametrize("package", ["cj_batching", "flags"])
def test_packages_ship_py_typed(package: str) -> None:
    assert (ROOT / package / "py.typed").is_file()


@pytest.mark.parametrize("package", ["cj_batching", "flags"])
def test_all_lists_only_real_names(package: str) -> None:
    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted(set(module.__all__))
    for name in module.__all__:
        assert hasattr(module, name), name
