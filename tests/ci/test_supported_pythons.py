"""Every place that names the supported Pythons names the same ones, CPython 3.9 to 3.15."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SUPPORTED = ["3.9", "3.10", "3.11", "3.12", "3.13", "3.14", "3.15"]
# Debian packages in the sid root (scripts/sid), not Pythons of the machine.
IN_THE_SID_ROOT = ["3.14", "3.15"]


def pyproject() -> str:
    # Read as text: tomllib is 3.11+, and the suite runs on 3.9 too.
    return (REPO / "pyproject.toml").read_text()


def table(text: str, name: str) -> str:
    """The lines of one [table] of a TOML file, up to the next table."""
    start = text.index(f"\n[{name}]\n")
    following = text.find("\n[", start + 1)
    return text[start:following if following != -1 else None]


def tox() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(REPO / "tox.ini")
    return parser


def names(value: str) -> list[str]:
    return [name.strip() for name in re.split(r"[,\s]+", value) if name.strip()]


def test_the_classifiers_name_each_supported_python_and_requires_python_the_oldest():
    text = pyproject()
    assert re.findall(r'"Programming Language :: Python :: (3\.\d+)"', text) == SUPPORTED
    assert re.search(r'^requires-python = "(.*)"$', text, re.MULTILINE).group(1) == ">=3.9"


def test_cibuildwheel_builds_each_supported_cpython_and_no_free_threaded_one():
    build = re.search(r'^build = "(.*)"$', table(pyproject(), "tool.cibuildwheel"), re.MULTILINE).group(1)
    # "cp314-*" does not match cp314t-... identifiers: free-threaded builds are refused at build time.
    assert build.split() == [f"cp{version.replace('.', '')}-*" for version in SUPPORTED]


def test_the_tests_workflow_runs_each_supported_python():
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "tests.yml").read_text())
    assert workflow["jobs"]["tests"]["strategy"]["matrix"]["python"] == SUPPORTED


def test_tox_lists_each_supported_python_and_runs_314_and_315_in_the_sid_root():
    config = tox()
    expected = ["py" + version.replace(".", "") for version in SUPPORTED]
    assert names(config["tox"]["envlist"]) == expected
    sid_envs = config["testenv:py{314,315}"]
    assert sid_envs["runner"] == "sid-root"
    assert sid_envs["skip_install"] == "true"
    commands = [line.strip() for line in sid_envs["commands"].strip().splitlines()]
    for version, line in zip(IN_THE_SID_ROOT, commands):
        factor = "py" + version.replace(".", "")
        assert line.startswith(f"{factor}: {{tox_root}}/scripts/sid env PYTHON=python{version} "), line
        assert line.endswith("./scripts/test {posargs}"), line
    assert len(commands) == len(IN_THE_SID_ROOT)


def test_ci_runs_the_suite_in_the_sid_root_on_314_and_315_each_in_its_own_venv():
    ci = (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text().splitlines()
    # Every test command README gives (the quick start's, the Development block's) is .ci/run's, word for word.
    readme_lines = [line for line in readme if line.startswith("./scripts/test")]
    assert len(readme_lines) >= 2
    for readme_line in readme_lines:
        assert re.search(rf"^{re.escape(readme_line)}$", ci, re.MULTILINE), f"README's test command {readme_line!r}"
    assert "`./scripts/sid env PYTHON=python3.14 VENV=.venv-3.14 ./scripts/test`" in "\n".join(readme)
    assert re.search(r"^for version in (.*); do$", ci, re.MULTILINE).group(1).split() == IN_THE_SID_ROOT
    assert './scripts/sid env PYTHON="python$version" VENV=".venv-$version" ./scripts/test ' in ci


def test_the_readme_says_the_supported_range_and_why_macos_is_not_in_it():
    readme = (REPO / "README.md").read_text()
    status = readme[readme.index("> Status:"):readme.index("## Quick start")]
    assert "CPython 3.9 to 3.15" in " ".join(status.split())
    assert "macOS" in status and "ELF-only" in status
    quick_start = readme[readme.index("## Quick start"):readme.index("## In pytest")]
    assert "Python 3.9 to 3.15" in quick_start and "scripts/sid" in quick_start
