"""Source lines of Python frames for the HTML reports' tooltips, read when the report is made.

Which files may show their lines follows memray's ``--confidential-files``: ``all`` files are
confidential (no lines), ``none`` are, and by ``default`` a file is shown only if it looks like
code that holds no secret: a ``.py`` file, an executable one, or one anybody may read.
"""

from __future__ import annotations

import functools
import linecache
import os
import stat

from .calltree import CallTree

CONFIDENTIAL_CHOICES = ("all", "none", "default")
# A tooltip shows one line; a minified or generated line can be megabytes.
_MAX_LINE = 300


@functools.lru_cache(maxsize=4096)
def _looks_public(file: str) -> bool:
    if file.endswith(".py"):
        return True
    try:
        mode = os.stat(file).st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH | stat.S_IROTH))


def source_line(file: str, line: int, confidential_files: str = "default") -> str:
    """The stripped text of ``file``:``line``, or "" when unknown or confidential."""
    if confidential_files == "all" or line <= 0 or (confidential_files == "default" and not _looks_public(file)):
        return ""
    text = linecache.getline(file, line).strip()
    return text if len(text) <= _MAX_LINE else text[:_MAX_LINE] + "…"


def frame_sources(tree: CallTree, confidential_files: str = "default") -> list[int]:
    """Per frame of ``tree``, the string id of its source line, or -1 (native frames, unknown or confidential)."""
    if confidential_files not in CONFIDENTIAL_CHOICES:
        raise ValueError(
            f"confidential_files must be one of {', '.join(CONFIDENTIAL_CHOICES)}, not {confidential_files!r}"
        )
    sources = []
    for _, file, line, native in tree.frames:
        text = "" if native else source_line(tree.strings[file], line, confidential_files)
        sources.append(tree.string_id(text) if text else -1)
    return sources
