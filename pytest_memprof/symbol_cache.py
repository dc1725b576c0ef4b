"""Symbolised return addresses kept across runs: one small JSON file per ELF object and build.

Symbolisation reads an object's symbol table whole and, for the frames a report shows, its DWARF:
tens of milliseconds to seconds per object, paid again by every report on every capture of the
same program. What it yields depends only on the object's bytes, which its GNU build ID names;
so each object's results (function per address, and frames with file:line and inline chain per
shown address) are kept under ``$XDG_CACHE_HOME/memprof/symbols`` (``~/.cache/memprof/symbols``),
one file per (build ID, path), and reused while the file at that path is still the one (inode,
size, mtime) they were computed from: a rebuild or a reinstall starts afresh.
``MEMPROF_SYMBOL_CACHE=0`` turns the cache off, any other value is the folder to use;
``MEMPROF_SYMBOL_CACHE_SIZE`` bounds the folder (a size string, 64 MiB by default: the least
recently used files go first).

Cache files are untrusted input (another user's folder, a disk that lost a block, an older or
newer memprof): JSON only, every field checked, and anything wrong makes the file count as absent,
to be rewritten. A folder that cannot be written costs the caching and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UsageError
from .model import Frame
from .sizes import parse_size

FOLDER_VARIABLE = "MEMPROF_SYMBOL_CACHE"
SIZE_VARIABLE = "MEMPROF_SYMBOL_CACHE_SIZE"
DEFAULT_SIZE_LIMIT = 64 * 2**20
FORMAT = "memprof-symbol-cache"
VERSION = 1

_BUILD_ID = re.compile(r"[0-9a-f]{2,128}")  # a GNU build ID is 16 or 20 bytes in practice
_ENTRY_NAME = re.compile(r"[0-9a-f]{2,128}-[0-9a-f]{16}\.json")
_TEMPORARY_PREFIX = ".tmp-"
_STALE_TEMPORARY_S = 3600  # a writer that died left it; one still writing is done within seconds
_MAX_TEXT = 1 << 16  # longer names or file names are not what a compiler writes
_MAX_INLINE_DEPTH = 256
_MAX_ADDRESS = 1 << 64
_MAX_LINE = 1 << 32



def cache_folder() -> Path | None:
    """Where the cache lives, or None when MEMPROF_SYMBOL_CACHE=0 turns it off (or no home is known)."""
    chosen = os.environ.get(FOLDER_VARIABLE)
    if chosen is not None:
        # Absolute now: it is written to at exit, perhaps after the program changed directory.
        return None if chosen.strip() in ("", "0") else Path(os.path.abspath(os.path.expanduser(chosen)))
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG spec: a relative value is to be ignored
        home = os.path.expanduser("~")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".cache")
    return Path(base) / "memprof" / "symbols"


def size_limit() -> int:
    """The folder's bound in bytes: MEMPROF_SYMBOL_CACHE_SIZE, or 64 MiB when unset or not a size."""
    text = os.environ.get(SIZE_VARIABLE)
    if text:
        try:
            return parse_size(text)
        except UsageError:  # a cache is not worth failing a report for
            pass
    return DEFAULT_SIZE_LIMIT


@dataclass
class ObjectEntry:
    """What is known of one object's addresses: names of call sites, and frames of those shown."""

    path: str
    build_id: str
    mtime_ns: int
    size: int
    inode: int
    folder: Path | None = None  # where it was read from, and so where it goes
    names: dict[int, str] = field(default_factory=dict)
    frames: dict[int, tuple[Frame, ...]] = field(default_factory=dict)
    dirty: bool = False  # learned something the file does not hold

    def learn_name(self, vaddr: int, name: str) -> None:
        """Remember the function at ``vaddr`` (the symbol table's, demangled)."""
        if self.names.get(vaddr) != name and _storable_text(name):
            self.names[vaddr] = name
            self.dirty = True

    def learn_frames(self, vaddr: int, frames: tuple[Frame, ...]) -> None:
        """Remember the frames at ``vaddr``; only those a file can hold back exactly (native, no first line)."""
        if vaddr in self.names and self.frames.get(vaddr) != frames and 0 < len(frames) <= _MAX_INLINE_DEPTH and all(
                frame.native and frame.first_line == 0 and _storable_text(frame.function)
                and _storable_text(frame.file) and 0 <= frame.line < _MAX_LINE for frame in frames):
            self.frames[vaddr] = frames
            self.dirty = True

    def matches(self, other: ObjectEntry) -> bool:
        """Whether ``other`` describes the same file (same path, build, inode, size and mtime)."""
        return (self.path, self.build_id, self.inode, self.mtime_ns, self.size) == \
            (other.path, other.build_id, other.inode, other.mtime_ns, other.size)


class SymbolCache:
    """The cache files of the objects one process symbolises: each read when its object is first
    met, those that learned something written back by ``save``."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], ObjectEntry | None] = {}

    def entry(self, path: str, build_id: str) -> ObjectEntry | None:
        """The entry for the object at ``path`` recorded with ``build_id`` (its file's results if they
        still hold, else an empty one), or None when it cannot be cached (no build ID, no such
        regular file, the cache turned off)."""
        key = (path, build_id)
        if key not in self._entries:
            self._entries[key] = self._load(path, build_id)
        return self._entries[key]

    def _load(self, path: str, build_id: str) -> ObjectEntry | None:
        if not _BUILD_ID.fullmatch(build_id) or not _storable_text(path):
            return None
        folder = cache_folder()
        if folder is None:
            return None
        try:
            status = os.stat(path)
        except (OSError, ValueError):
            return None
        if not stat.S_ISREG(status.st_mode):
            return None
        fresh = ObjectEntry(path, build_id, status.st_mtime_ns, status.st_size, status.st_ino, folder)
        file = folder / _file_name(path, build_id)
        stored = _read(file)
        if stored is None or not stored.matches(fresh):
            return fresh
        try:
            os.utime(file)  # pruning drops the least recently used first
        except OSError:
            pass
        stored.folder = folder
        return stored

    def save(self) -> None:
        """Write every entry that learned something (atomically), then keep its folder within its bound."""
        # Each goes back to the folder it was looked for in: at exit the environment that chose it
        # may be gone (a test session's, restored before the interpreter's atexit handlers run).
        by_folder: dict[Path, list[ObjectEntry]] = {}
        for entry in self._entries.values():
            if entry is not None and entry.dirty and entry.folder is not None:
                by_folder.setdefault(entry.folder, []).append(entry)
        limit = size_limit()
        for folder, dirty in by_folder.items():
            self._save(folder, dirty, limit)

    def _save(self, folder: Path, dirty: list[ObjectEntry], limit: int) -> None:
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            for entry in dirty:
                file = folder / _file_name(entry.path, entry.build_id)
                # Another process may have written this object's file since we read it: keep its addresses.
                stored = _read(file)
                if stored is not None and stored.matches(entry):
                    entry.names = {**stored.names, **entry.names}
                    entry.frames = {**stored.frames, **entry.frames}
                data = _encode(entry)
                if len(data) <= limit:
                    _write_atomically(file, data)
                entry.dirty = False
            _prune(folder, limit)
        except OSError as error:
            import logging  # only here: a report's start-up should not pay for it

            logging.getLogger(__name__).debug("symbol cache not written to %s: %s", folder, error)
            for entry in dirty:
                entry.dirty = False  # one attempt per run: the folder will not become writable


def _file_name(path: str, build_id: str) -> str:
    # The path is in the name only as a digest: it may hold anything, "/" and ".." included.
    return f"{build_id}-{hashlib.sha256(os.fsencode(path)).hexdigest()[:16]}.json"


def _storable_text(text: object) -> bool:
    # A lone surrogate (os.fsdecode of a non-UTF-8 path) would not survive a UTF-8 file, or a terminal.
    if not isinstance(text, str) or len(text) > _MAX_TEXT:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _encode(entry: ObjectEntry) -> bytes:
    document = {
        "format": FORMAT, "version": VERSION, "path": entry.path, "build_id": entry.build_id,
        "mtime_ns": entry.mtime_ns, "size": entry.size, "inode": entry.inode,
        "names": [[vaddr, name] for vaddr, name in sorted(entry.names.items())],
        "frames": [[vaddr, [[frame.function, frame.file, frame.line] for frame in frames]]
                   for vaddr, frames in sorted(entry.frames.items())],
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def _write_atomically(file: Path, data: bytes) -> None:
    # Readers see the old file or the new one whole, never a part: a temporary file in the same
    # folder (so on the same file system), renamed over it.
    descriptor, temporary = tempfile.mkstemp(prefix=_TEMPORARY_PREFIX, suffix=".json", dir=file.parent)
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)
        os.replace(temporary, file)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def _read(file: Path) -> ObjectEntry | None:
    """The entry a cache file holds, or None if it is absent, unreadable or not exactly what we write."""
    try:
        # O_NONBLOCK: a FIFO planted under the entry's name must not hang the report.
        descriptor = os.open(file, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        with os.fdopen(descriptor, "rb") as source:
            status = os.fstat(source.fileno())
            if not stat.S_ISREG(status.st_mode) or status.st_size > size_limit():
                return None
            data = source.read()
        document = json.loads(data)
    except (OSError, ValueError, RecursionError, MemoryError):  # UnicodeDecodeError is a ValueError
        return None
    return _decode(document)


def _decode(document: object) -> ObjectEntry | None:
    if not isinstance(document, dict) or document.get("format") != FORMAT or document.get("version") != VERSION:
        return None
    path, build_id = document.get("path"), document.get("build_id")
    mtime_ns, size, inode = document.get("mtime_ns"), document.get("size"), document.get("inode")
    if not (_storable_text(path) and isinstance(build_id, str) and _BUILD_ID.fullmatch(build_id)
            and _is_int(mtime_ns, -(1 << 63), 1 << 63) and _is_int(size, 0, 1 << 63) and _is_int(inode, 0, 1 << 64)):
        return None
    entry = ObjectEntry(path, build_id, mtime_ns, size, inode)
    names = document.get("names")
    frames = document.get("frames")
    if not isinstance(names, list) or not isinstance(frames, list):
        return None
    for row in names:
        if not (isinstance(row, list) and len(row) == 2 and _is_int(row[0], 0, _MAX_ADDRESS)
                and _storable_text(row[1])):
            return None
        entry.names[row[0]] = row[1]
    for row in frames:
        if not (isinstance(row, list) and len(row) == 2 and _is_int(row[0], 0, _MAX_ADDRESS)
                and row[0] in entry.names):
            return None
        decoded = _decode_frames(row[1])
        if decoded is None:
            return None
        entry.frames[row[0]] = decoded
    return entry


def _decode_frames(rows: object) -> tuple[Frame, ...] | None:
    if not isinstance(rows, list) or not 0 < len(rows) <= _MAX_INLINE_DEPTH:
        return None
    frames = []
    for row in rows:
        if not (isinstance(row, list) and len(row) == 3 and _storable_text(row[0]) and _storable_text(row[1])
                and _is_int(row[2], 0, _MAX_LINE)):
            return None
        frames.append(Frame(row[0], row[1], row[2], native=True))
    return tuple(frames)


def _is_int(value: object, low: int, high: int) -> bool:
    return type(value) is int and low <= value < high  # not bool, whose type is a subclass of int


def _prune(folder: Path, limit: int) -> None:
    """Delete the least recently used entries until the folder's entries fit in ``limit`` bytes."""
    now = time.time()
    entries: list[tuple[float, int, str]] = []
    for name, status in _listing(folder):
        if name.startswith(_TEMPORARY_PREFIX):
            if now - status.st_mtime > _STALE_TEMPORARY_S:
                _unlink(folder / name)
        elif _ENTRY_NAME.fullmatch(name) and stat.S_ISREG(status.st_mode):
            entries.append((status.st_mtime, status.st_size, name))
    total = sum(size for _, size, _ in entries)
    for _, size, name in sorted(entries):
        if total <= limit:
            break
        if _unlink(folder / name):
            total -= size


def _listing(folder: Path) -> Iterable[tuple[str, os.stat_result]]:
    with os.scandir(folder) as scan:
        for item in scan:
            try:
                yield item.name, item.stat(follow_symlinks=False)
            except OSError:
                continue


def _unlink(file: Path) -> bool:
    try:
        os.unlink(file)
    except OSError:
        return False
    return True
