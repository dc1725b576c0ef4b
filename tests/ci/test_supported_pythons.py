"""Every place that names the supported Pythons names the same ones, CPython 3.9 to 3.15."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SUPPORTED = ["3.9", "3.10", "3.11", "3.12", "3.13", "3.14", "3.15"]


def pyproject() -> str:
    # Read as text: tomllib is 3.11+, and the suite runs on 3.9 too.
    return (REPO / "pyproject.toml").read_text()


def table(text: str, name: str) -> str:
    """The lines of one [table] of a TOML file, up to the next table."""
    start = text.index(f"\n[{name}]\n")
    following = text.find("\n[", start + 1)
    return text[start:following if following != -1 else None]


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
