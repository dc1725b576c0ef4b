"""The project's own GitHub workflows: valid for GitHub's schema, clean for actionlint, and running what they must."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"


def load(name: str) -> dict:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as True.
    document["on"] = document.pop(True, document.get("on"))
    return document


def tool(name: str) -> str:
    """A command of the test extras: in this interpreter's bin folder (a venv), else on PATH."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is missing: it comes with the test extras (pip install -e '.[test]')"
    return found


def check_jsonschema(*paths: Path) -> subprocess.CompletedProcess:
    """GitHub's workflow schema, as check-jsonschema carries it (no network needed)."""
    return subprocess.run([tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                           *map(str, paths)], capture_output=True, text=True, timeout=120)


def actionlint(*paths: Path, cwd: Path = REPO) -> subprocess.CompletedProcess:
    # shellcheck and pyflakes would lint the run: scripts where they happen to be installed, and
    # not elsewhere: off, so the result is the same on every machine.
    return subprocess.run([tool("actionlint"), "-shellcheck=", "-pyflakes=", "-no-color", *map(str, paths)],
                           capture_output=True, text=True, timeout=120, cwd=cwd)


def workflow_files() -> list[Path]:
    files = sorted(WORKFLOWS.glob("*.yml")) + sorted(WORKFLOWS.glob("*.yaml"))
    assert files, f"no workflow in {WORKFLOWS}"
    return files


def test_every_workflow_matches_githubs_schema():
    result = check_jsonschema(*workflow_files())
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_finds_nothing():
    result = actionlint(*workflow_files())
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_job_whose_steps_are_not_a_list(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  tests:\n    runs-on: ubuntu-latest\n    steps: run the tests\n")
    result = check_jsonschema(broken)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "$.jobs.tests.steps" in result.stdout, result.stdout


def test_actionlint_rejects_a_misspelt_matrix_key_that_the_schema_lets_through(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  tests:\n    runs-on: ubuntu-latest\n    strategy:\n      matrix:\n"
        "        python: ['3.14']\n    steps:\n      - uses: actions/setup-python@v6\n        with:\n"
        "          python-version: ${{ matrix.pyhton }}\n")
    assert check_jsonschema(broken).returncode == 0  # well-formed: only actionlint knows the matrix
    result = actionlint(broken, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'property "pyhton" is not defined' in result.stdout, result.stdout


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


def test_tests_workflow_runs_tox_on_the_matrix_python():
    # Which Pythons the matrix holds: test_supported_pythons.py.
    job = load("tests.yml")["jobs"]["tests"]
    setup = next(step for step in job["steps"] if step.get("uses", "").startswith("actions/setup-python@"))
    assert setup["with"]["python-version"] == "${{ matrix.python }}"
    assert any(step.get("run", "").strip() == "tox -e py" for step in job["steps"])


def test_wheels_workflow_builds_with_cibuildwheel_and_an_sdist():
    jobs = load("wheels.yml")["jobs"]
    assert any(step.get("uses", "").startswith("pypa/cibuildwheel@") for step in jobs["wheels"]["steps"])
    assert any("--sdist" in step.get("run", "") for step in jobs["sdist"]["steps"])
