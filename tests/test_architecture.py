"""docs/architecture.md stays a true map: every file and folder it names exists."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MAP = REPO / "docs" / "architecture.md"
SOURCES = (".py", ".pyx", ".pxd", ".h", ".cc", ".md")


def named_paths(text: str) -> set[str]:
    """Backquoted file names (``core.py``, ``native/reader.h``) and folders (``pytest_memprof/cli/``)."""
    return {name for name in re.findall(r"`([\w./]+)`", text)
            if (name.endswith(SOURCES) and name not in SOURCES) or (name.endswith("/") and "/" in name[:-1])}


def test_every_module_the_map_names_exists():
    names = named_paths(MAP.read_text(encoding="utf-8"))
    assert len(names) > 50  # the map names modules by path
    ours = [path.relative_to(REPO).as_posix() for folder in ("native", "pytest_memprof", "docs", "tests")
            for path in (REPO / folder).rglob("*")]
    # A name given inside its package's paragraph (`core.py` among the plugin's) is a path's end.
    missing = [name for name in sorted(names)
               if not any(path == name.rstrip("/") or path.endswith("/" + name.rstrip("/")) for path in ours)]
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"
