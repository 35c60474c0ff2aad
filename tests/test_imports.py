"""Start-up: `import cj_batching` loads only what is used. Each case runs in a fresh
interpreter and reports which heavy modules it ended up with (`sys.modules`)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import cj_batching

ROOT = Path(__file__).resolve().parent.parent
# Loaded only by the features that need them: the LPS client, the metrics and their
# server, the official-schema check, YAML files, the experiment report, the CLI.
HEAVY = (
    "httpx",
    "prometheus_client",
    "http.server",
    "fastjsonschema",
    "jsonschema",
    "yaml",
    "numpy",
    "matplotlib",
    "tqdm",
    "shtab",
    "cj_batching.lps.client",
    "cj_batching.metrics_server",
    "cj_batching.report",
    "cj_batching.cli",
)


def loaded_after(code: str, tmp_path: Path) -> set[str]:
    """The HEAVY modules in sys.modules once `code` has run in a fresh interpreter."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,  # no .env, no flags.yaml of the developer's
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    modules = set(json.loads(done.stdout.splitlines()[-1]))
    return {name for name in HEAVY if name in modules}


def test_importing_the_package_loads_only_what_a_resolve_needs(tmp_path: Path) -> None:
    assert loaded_after("import cj_batching", tmp_path) == set()


def test_what_a_resolve_needs_loads_nothing_heavy(tmp_path: Path) -> None:
    code = "from cj_batching import BatchContext, BatchingModeResolver, Settings, configure"
    assert loaded_after(code, tmp_path) == set()


def test_a_resolve_on_a_json_flag_file_loads_only_the_schema_check(tmp_path: Path) -> None:
    (tmp_path / "flags.json").write_text((ROOT / "tests" / "corpus" / "disabled.json").read_text())
    code = (
        "from cj_batching import BatchContext, Settings, configure\n"
        "settings = Settings(_env_file=None, FLAGS_FILE='flags.json')\n"
        "resolver = configure(settings)\n"
        "resolver.resolve(BatchContext(1, 'els'))\n"
        "resolver.close(); resolver.client.provider.shutdown()"
    )
    assert loaded_after(code, tmp_path) == {"fastjsonschema"}  # validating the file


@pytest.mark.parametrize(
    ("name", "loads"),
    [
        ("LPSClient", {"httpx", "cj_batching.lps.client"}),
        ("serve_metrics", {"cj_batching.metrics_server", "prometheus_client", "http.server"}),
        ("BatchingMetrics", {"prometheus_client", "http.server"}),
    ],
)
def test_a_feature_loads_its_library_on_first_use(
    tmp_path: Path, name: str, loads: set[str]
) -> None:
    assert loads <= loaded_after(f"from cj_batching import {name}", tmp_path)


def test_every_lazy_name_has_its_typed_import() -> None:
    """The table and the TYPE_CHECKING imports agree, so type checkers see every name."""
    tree = ast.parse((ROOT / "cj_batching" / "__init__.py").read_text())
    typed = {
        alias.name: node.module
        for block in tree.body
        if isinstance(block, ast.If)
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert typed == dict(cj_batching._EXPORTS)
    eager = {"DOMAIN", "configure", "provider_for"}  # configure shares its module's name
    assert sorted(cj_batching.__all__) == sorted({*typed, *eager})


def test_a_name_shadowed_by_its_module_cannot_be_lazy() -> None:
    from cj_batching._lazy import lazy_exports

    with pytest.raises(ValueError, match="configure share their module's name"):
        lazy_exports("cj_batching", {"configure": "cj_batching.configure"}, {})


def test_configure_stays_the_function_after_its_module_is_imported(tmp_path: Path) -> None:
    code = (
        "import cj_batching.configure\n"
        "from cj_batching import configure\n"
        "assert callable(configure), configure"
    )
    loaded_after(code, tmp_path)  # asserts inside the fresh interpreter
