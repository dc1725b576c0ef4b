"""`pip install .` as a user does it: a wheel built from the source tree works outside of it.

Slow (a real build and a fresh virtualenv): it catches what editable installs hide, such as a
template or a native source missing from the package.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


BUILD_LOG: dict[str, str] = {}  # the wheel build's output (pip -v shows the build backend's)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(out), str(ROOT)],
                            capture_output=True, text=True, timeout=900)
    if result.returncode != 0 and "Could not find a version" in result.stderr + result.stdout:
        pytest.skip("the build requirements cannot be downloaded here (no package index)")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    BUILD_LOG["output"] = result.stdout + result.stderr
    (built,) = out.glob("pytest_memprof-*.whl")
    return built


def test_the_build_prints_no_deprecation_banner(wheel):
    # setuptools deprecated project.license as a table (it wants an SPDX string) with a banner per build.
    log = BUILD_LOG["output"]
    assert "project.license` as a TOML table is deprecated" not in log
    assert "SetuptoolsDeprecationWarning" not in log


def test_the_readme_links_only_to_files_the_repository_holds():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)[^)]*\)", readme)
    local = [target for target in targets if "://" not in target and not target.startswith("mailto:")]
    assert local, "the README links to no docs at all"
    missing = [target for target in local if not (ROOT / target).exists()]
    assert not missing, missing
    assert "DESIGN.md" not in readme  # the design notes live outside the repository


def test_the_wheel_holds_the_extensions_and_every_template(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert any(n.startswith("pytest_memprof/_tracker.") and n.endswith(".so") for n in names)
    assert any(n.startswith("pytest_memprof/_reader.") and n.endswith(".so") for n in names)
    for folder in ("reports/templates/", "ci/templates/", "sysstats/static/"):
        folder = "pytest_memprof/" + folder
        source = ROOT / folder
        expected = {folder + p.name for p in source.iterdir() if p.is_file()} if source.is_dir() else set()
        assert expected <= names, sorted(expected - names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "memprof = pytest_memprof.cli:console_main" in text and "memprof = pytest_memprof.plugin" in text


def test_installed_wheel_runs_and_reports_from_outside_the_source_tree(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True,
                             timeout=900)
    if install.returncode != 0 and "Could not find a version" in install.stderr:
        pytest.skip("the dependencies cannot be downloaded here (no package index)")
    assert install.returncode == 0, install.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    memprof = str(env_dir / "bin" / "memprof")
    script = tmp_path / "prog.py"
    script.write_text("def make():\n    return bytearray(5_000_000)\nkept = make()\n")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)

    location = run(str(python), "-c", "import pytest_memprof; print(pytest_memprof.__file__)")
    assert str(env_dir) in location.stdout, location  # the installed copy, not the source tree
    assert run(memprof, "run", "-q", "-o", "prog.bin", str(script)).returncode == 0
    flamegraph = run(memprof, "flamegraph", "-o", "prog.html", "prog.bin")
    assert flamegraph.returncode == 0, flamegraph.stderr
    assert "make" in (tmp_path / "prog.html").read_text()
    test_file = tmp_path / "test_it.py"
    test_file.write_text("import pytest\n\n@pytest.mark.limit_memory('1MB')\ndef test_big():\n"
                         "    data = bytearray(4_000_000)\n")
    plugin = run(str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file), "--memprof-html", "html")
    assert plugin.returncode == 1 and "MEMORY" in plugin.stdout, plugin.stdout[-2000:]
    assert (tmp_path / "html" / "index.html").exists()


def compile_frame_reader(include: Path) -> subprocess.CompletedProcess:
    """Compile native/pyframes.cc (syntax only) against the Python headers in `include`."""
    return subprocess.run(["g++", "-std=c++17", "-fsyntax-only", f"-I{include}", f"-I{ROOT / 'native'}",
                           str(ROOT / "native" / "pyframes.cc")], capture_output=True, text=True, timeout=120)


@pytest.fixture
def headers(tmp_path) -> Path:
    """A copy of this Python's headers, to be edited into those of a Python we do not support."""
    import shutil
    import sysconfig

    include = tmp_path / "include"
    shutil.copytree(sysconfig.get_paths()["include"], include)
    return include


def test_a_newer_cpython_is_refused_at_build_time_naming_the_versions_supported(headers):
    patchlevel = headers / "patchlevel.h"
    text = patchlevel.read_text()
    minor = next(line for line in text.splitlines() if line.startswith("#define PY_MINOR_VERSION"))
    patchlevel.write_text(text.replace(minor, "#define PY_MINOR_VERSION\t16"))
    built = compile_frame_reader(headers)
    assert built.returncode != 0
    assert "supports CPython 3.9 to 3.15" in built.stderr


def test_a_free_threaded_build_is_refused_at_build_time(headers):
    pyconfig = headers / "pyconfig.h"
    pyconfig.write_text("#define Py_GIL_DISABLED 1\n" + pyconfig.read_text())
    built = compile_frame_reader(headers)
    assert built.returncode != 0
    assert "does not support free-threaded CPython builds" in built.stderr


def test_this_pythons_headers_build_the_frame_reader(headers):
    built = compile_frame_reader(headers)
    assert built.returncode == 0, built.stderr
