"""The wheel outside the checkout: built with `uv build`, installed into a fresh virtualenv
(the locked dependency versions), run in an empty directory that holds only a flag file,
as Ops run it where flags.yaml lives. The slowest test of the suite (~10-20 s)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Installed:
    wheel: Path
    script: Path
    python: Path
    workdir: Path  # empty but for flags.yaml
    env: dict[str, str]

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.script), *argv],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def _uv(*argv: str, cwd: Path = ROOT) -> None:
    uv = shutil.which("uv")
    assert uv is not None
    done = subprocess.run(
        [uv, *argv], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"uv {' '.join(argv)}:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    if shutil.which("uv") is None:
        pytest.skip("uv is not on PATH: it builds the wheel and the virtualenv")
    base = tmp_path_factory.mktemp("packaging")
    _uv("build", "--wheel", "--quiet", "--out-dir", str(base / "dist"), str(ROOT))
    (wheel,) = (base / "dist").glob("cj_batching-*.whl")
    requirements = base / "requirements.txt"
    _uv("export", "--frozen", "--no-dev", "--no-emit-project", "--quiet", "-o", str(requirements))
    _uv("venv", "--quiet", "--python", sys.executable, str(base / "venv"))
    python = base / "venv" / "bin" / "python"
    _uv("pip", "install", "--quiet", "--python", str(python), "-r", str(requirements), str(wheel))
    workdir = base / "empty"
    workdir.mkdir()
    shutil.copy(ROOT / "flags.yaml", workdir / "flags.yaml")
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("CJ_ASSESSMENT_SERVICE_", "PYTHON", "VIRTUAL_ENV", "UV_"))
    }
    return Installed(wheel, base / "venv" / "bin" / "cj-batching", python, workdir, env)


def test_the_wheel_is_what_runs(installed: Installed) -> None:
    done = subprocess.run(
        [str(installed.python), "-c", "import cj_batching, flags; print(flags.__file__)"],
        cwd=installed.workdir,
        env=installed.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert Path(done.stdout.strip()).is_relative_to(installed.python.parent.parent)


def test_validate_in_an_empty_directory(installed: Installed) -> None:
    done = installed.run("validate")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("flags.yaml: valid (2 flag(s), version ")


def test_the_wheel_carries_the_flagd_schema(installed: Installed) -> None:
    probe = "from importlib import resources; print(resources.files('flags') / 'schema')"
    done = subprocess.run(
        [str(installed.python), "-c", probe],
        cwd=installed.workdir,
        env=installed.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    schema = Path(done.stdout.strip())
    assert {"flags.json", "targeting.json"} <= {path.name for path in schema.iterdir()}
    # ... and validation uses it there (no ../shared beside this directory).
    document = yaml.safe_load((installed.workdir / "flags.yaml").read_text())
    document["flags"]["llm-batching-mode"]["state"] = "ON"
    (installed.workdir / "bad.yaml").write_text(yaml.safe_dump(document))
    try:
        done = installed.run("validate", "bad.yaml")
    finally:
        (installed.workdir / "bad.yaml").unlink()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "/flags/llm-batching-mode/state" in done.stdout


def test_show_in_an_empty_directory(installed: Installed) -> None:
    done = installed.run("show")
    assert done.returncode == 0, done.stderr
    assert "els: 20 % provider_batch_api / 80 % serial_bundle, sticky per batch id" in done.stdout


def test_explain_in_an_empty_directory(installed: Installed) -> None:
    done = installed.run(
        "explain",
        "--batch-id",
        "42",
        "--source",
        "eng5_runner",
        "--provider",
        "anthropic",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["mode"], result["decided_by"]) == ("provider_batch_api", "flag")


def test_uvx_from_the_wheel(installed: Installed) -> None:
    uv = shutil.which("uv")
    assert uv is not None
    done = subprocess.run(
        [uv, "tool", "run", "--from", str(installed.wheel), "cj-batching", "--version"],
        cwd=installed.workdir,
        env=installed.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("cj-batching ")
