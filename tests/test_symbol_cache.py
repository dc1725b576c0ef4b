"""The symbol cache across runs (symbol_cache.py), through the real `memprof run --native` and reports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from tests.conftest import subprocess_env
from tests.native_lib import CPP_SOURCE, marked_lines

APP = """
import ctypes, sys
from tests.native_lib import load_cpp
lib = load_cpp(sys.argv[1])
raw = ctypes.c_void_p()
def allocate():
    return lib.memprof_test_entry(300_000, ctypes.byref(raw))
keep = allocate()
"""
LABELS = ("entry", "build", "new", "malloc")  # the lines of the kept allocations' stacks


def build(folder: Path, source: Path = CPP_SOURCE, *flags: str) -> Path:
    """The test C++ library (debug information, no inlining) compiled from ``source`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    output = folder / "libcached.so"
    subprocess.run(["g++", "-shared", "-fPIC", "-O0", "-g", "-Wall", "-Wextra", *flags, "-o", str(output),
                    str(source), "-lpthread"], check=True)
    return output


def capture(folder: Path, library: Path, name: str = "app.bin") -> Path:
    """A `memprof run --native` capture of a program keeping the library's two allocations."""
    (folder / "app.py").write_text(APP)
    out = folder / name
    subprocess.run([sys.executable, "-m", "pytest_memprof", "run", "-q", "-f", "--native", "-o", str(out),
                    "app.py", str(library)], check=True, env=subprocess_env(), cwd=folder)
    return out


def memprof(cache: Path | str, *args: str, **extra: str) -> subprocess.CompletedProcess:
    """A report command run with its symbol cache at ``cache`` ("0": none); it must succeed quietly."""
    env = subprocess_env(COLUMNS="400", MEMPROF_SYMBOL_CACHE=str(cache), **extra)
    result = subprocess.run([sys.executable, "-m", "pytest_memprof", *args], capture_output=True, text=True,
                            env=env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result


def tree(cache: Path | str, out: Path) -> str:
    return memprof(cache, "tree", "--leaks", str(out)).stdout


def source_lines(source: Path = CPP_SOURCE) -> list[str]:
    lines = marked_lines(source)
    return [f"{source}:{lines[label]}" for label in LABELS]


def entries(cache: Path) -> dict[str, Path]:
    """{object path: its cache file} of the cache files in ``cache`` (other files left out)."""
    found = {}
    for file in cache.glob("*.json"):
        try:
            found[json.loads(file.read_text())["path"]] = file
        except ValueError:
            continue
    return found


def build_id(path: Path) -> str:
    with open(path, "rb") as file:
        for section in ELFFile(file).iter_sections():
            if section["sh_type"] == "SHT_NOTE":
                for note in section.iter_notes():
                    if note["n_type"] == "NT_GNU_BUILD_ID":
                        return str(note["n_desc"])
    return ""


def replace_by_stripped_copy(library: Path) -> None:
    """Overwrite ``library`` in place by a copy without symbol table or DWARF, padded to the same
    size and given the same mtime: the same build, to the cache, but with nothing left to read."""
    status = library.stat()
    before = build_id(library)
    stripped = library.with_name("stripped.so")
    subprocess.run(["strip", "--strip-all", "-o", str(stripped), str(library)], check=True)
    data = stripped.read_bytes()
    assert len(data) < status.st_size
    with open(library, "r+b") as file:
        file.write(data + bytes(status.st_size - len(data)))
    os.utime(library, ns=(status.st_atime_ns, status.st_mtime_ns))
    after = library.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (status.st_ino, status.st_size, status.st_mtime_ns)
    assert build_id(library) == before != ""


def test_a_second_report_is_the_same_and_reads_the_cache_not_the_library(tmp_path):
    library = build(tmp_path / "lib")
    out = capture(tmp_path, library)
    cache = tmp_path / "cache"
    first = tree(cache, out)
    stats = json.loads(memprof(cache, "stats", "--json", str(out)).stdout)["top_by_bytes"]
    for line in source_lines():
        assert line in first, first
    assert str(library) in entries(cache)
    replace_by_stripped_copy(library)
    # The control: read afresh, the stripped copy has neither the local function nor any line.
    bare = tree("0", out)
    assert "make_block" not in bare and str(CPP_SOURCE) not in bare, bare
    assert tree(cache, out) == first
    assert json.loads(memprof(cache, "stats", "--json", str(out)).stdout)["top_by_bytes"] == stats
    assert any("make_block" in row["function"] for row in stats), stats


def test_a_rebuilt_library_with_a_new_build_id_is_symbolised_afresh(tmp_path):
    source = tmp_path / "src" / "nativestacks.cc"
    source.parent.mkdir()
    shutil.copy(CPP_SOURCE, source)
    library = build(tmp_path / "lib", source)
    cache = tmp_path / "cache"
    old_lines = source_lines(source)
    assert all(line in tree(cache, capture(tmp_path, library, "old.bin")) for line in old_lines)
    old_build = build_id(library)
    # The same source three lines further down, at the same path: a new build ID.
    source.write_text("// shifted\n" * 3 + CPP_SOURCE.read_text())
    library = build(tmp_path / "lib", source)
    assert build_id(library) != old_build
    report = tree(cache, capture(tmp_path, library, "new.bin"))
    new_lines = source_lines(source)
    for line in new_lines:
        assert line in report, report
    assert not set(old_lines) - set(new_lines) & set(report.split()), report
    assert {json.loads(file.read_text())["build_id"] for file in cache.glob("*.json")} >= {old_build,
                                                                                          build_id(library)}


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    """A library, a capture of it, and its tree read without any cache (the right report)."""
    folder = tmp_path_factory.mktemp("kept")
    library = build(folder / "lib")
    out = capture(folder, library)
    return library, out, tree("0", out)


def _document(file: Path) -> dict:
    return json.loads(file.read_text())


def _with_lines(value):
    """A writer of the cache file as it was, but with every frame's line replaced by ``value``."""
    def write(file: Path, data: bytes) -> None:
        document = json.loads(data)
        for row in document["frames"]:
            for frame in row[1]:
                frame[2] = value
        file.write_text(json.dumps(document))
    return write


def _with(**fields):
    def write(file: Path, data: bytes) -> None:
        file.write_text(json.dumps({**json.loads(data), **fields}))
    return write


CORRUPTIONS = {
    "random bytes": lambda file, data: file.write_bytes(os.urandom(len(data))),
    "truncated": lambda file, data: file.write_bytes(data[: len(data) // 2]),
    "empty": lambda file, data: file.write_bytes(b""),
    "not an object": lambda file, data: file.write_bytes(b"[1, 2, 3]"),
    "deep nesting": lambda file, data: file.write_bytes(b"[" * 200_000),
    "huge integer": lambda file, data: file.write_bytes(b'{"version": ' + b"9" * 50_000 + b"}"),
    "float line": _with_lines(1e308),
    "line as string": _with_lines("777777"),
    "huge line": _with_lines(10**30),
    "negative line": _with_lines(-777777),
    "wrong version": _with(version=2),  # given the file with bogus lines: they must not show
    "names as text": _with(names="777777"),
    "inode as bool": _with(inode=True),
    "lone surrogate": lambda file, data: file.write_text(json.dumps(
        {**json.loads(data), "names": [[row[0], "\ud800"] for row in json.loads(data)["names"]]})),
    "a fifo": lambda file, data: (file.unlink(), os.mkfifo(file)),
}


def test_a_corrupt_cache_file_is_ignored_and_rewritten(kept, tmp_path):
    library, out, right = kept
    cache = tmp_path / "cache"
    assert tree(cache, out) == right
    file = entries(cache)[str(library)]
    good = file.read_bytes()
    # What a careless reader would show: wrong lines, if "wrong version" or a bad field were believed.
    bogus = json.loads(good)
    for row in bogus["frames"]:
        for frame in row[1]:
            frame[2] = 777777
    for kind, corrupt in CORRUPTIONS.items():
        corrupt(file, good if kind != "wrong version" else json.dumps(bogus).encode())
        assert tree(cache, out) == right, kind
        rewritten = _document(file)  # a plain, whole file again
        assert rewritten["version"] == 1 and rewritten["names"], kind
        good = file.read_bytes()


def test_a_cache_folder_that_cannot_be_written_still_gives_the_right_report(kept, tmp_path):
    _, out, right = kept
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    for cache in (blocker, blocker / "cache"):
        result = memprof(cache, "tree", "--leaks", str(out))
        assert result.stdout == right and result.stderr == "", result.stderr
    assert blocker.read_text() == "not a folder"


def test_the_cache_folder_stays_within_its_bound_dropping_the_least_recently_used(kept, tmp_path):
    library, out, right = kept
    cache = tmp_path / "cache"
    cache.mkdir()
    limit = 1 << 20
    old = []
    for number in range(8):  # 2 MiB of entries of other objects, used long ago, oldest first
        file = cache / f"{number:040x}-{number:016x}.json"
        file.write_bytes(b" " * (256 << 10))
        os.utime(file, (1000 + number, 1000 + number))
        old.append(file)
    unrelated = cache / "notes.txt"  # not a cache file: never counted, never deleted
    unrelated.write_bytes(b" " * (600 << 10))
    result = memprof(cache, "tree", "--leaks", str(out), MEMPROF_SYMBOL_CACHE_SIZE="1MB")
    assert result.stdout == right
    ours = [file for file in cache.iterdir() if file.suffix == ".json"]
    assert sum(file.stat().st_size for file in ours) <= limit
    assert str(library) in entries(cache) and unrelated.exists()
    kept_old = [file.exists() for file in old]
    assert kept_old == sorted(kept_old) and not kept_old[0], kept_old  # the oldest went first
    assert not any(file.name.startswith(".tmp-") for file in cache.iterdir())


def test_the_cache_lives_under_xdg_cache_home_or_home_and_0_turns_it_off(kept, tmp_path):
    library, out, right = kept
    env = {key: value for key, value in subprocess_env(COLUMNS="400").items()
           if key not in ("MEMPROF_SYMBOL_CACHE", "XDG_CACHE_HOME")}

    def report(**extra: str) -> str:
        result = subprocess.run([sys.executable, "-m", "pytest_memprof", "tree", "--leaks", str(out)],
                                capture_output=True, text=True, env={**env, **extra})
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert report(XDG_CACHE_HOME=str(tmp_path / "xdg"), HOME=str(tmp_path / "home")) == right
    assert str(library) in entries(tmp_path / "xdg" / "memprof" / "symbols")
    assert not (tmp_path / "home").exists()
    assert report(HOME=str(tmp_path / "home")) == right
    assert str(library) in entries(tmp_path / "home" / ".cache" / "memprof" / "symbols")
    assert report(HOME=str(tmp_path / "off"), XDG_CACHE_HOME=str(tmp_path / "off"), MEMPROF_SYMBOL_CACHE="0") == right
    assert not (tmp_path / "off").exists()


def test_an_object_without_a_build_id_is_not_cached(tmp_path):
    library = build(tmp_path / "lib", CPP_SOURCE, "-Wl,--build-id=none")
    assert build_id(library) == ""
    out = capture(tmp_path, library)
    cache = tmp_path / "cache"
    report = tree(cache, out)
    for line in source_lines():
        assert line in report, report
    assert entries(cache) and str(library) not in entries(cache)


def test_what_a_process_learned_goes_at_exit_to_the_folder_it_was_read_from(kept, tmp_path):
    # The test session's own folder is chosen by an environment restored before atexit handlers run;
    # a relative folder is the one it named when it was read, whatever the directory at exit.
    library, out, _ = kept
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = (
        "import os\n"
        "from pytest_memprof import Capture\n"
        "os.environ['MEMPROF_SYMBOL_CACHE'] = 'first'\n"
        f"assert any(frame.line for stat in Capture.open({str(out)!r}).leak_stacks() for frame in stat.frames)\n"
        "os.environ['MEMPROF_SYMBOL_CACHE'] = 'later'\n"
        f"os.chdir({str(elsewhere)!r})\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, env=subprocess_env(), cwd=tmp_path)
    assert str(library) in entries(tmp_path / "first")
    assert not (tmp_path / "later").exists() and not any(elsewhere.iterdir())
