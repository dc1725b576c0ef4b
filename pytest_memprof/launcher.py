"""Which frames of a stack belong to what launched the program (``memprof run``, pytest), not to the program.

A capture's header names its launcher's files (``runner_files``: parts of file paths), written by
the front end that started tracking; every view reads stacks through ``Capture``, which drops the
leading run of those frames with the rule below, so no view shows them and none keeps a list.
The same rule cuts the traceback of a program that fails under ``memprof run``.

The rule, for a stack read from its outermost frame: frames before the first launcher frame are
tentatively the launcher's too (pytest started by ``python -c``, an xdist worker under execnet's
``<string>`` bootstrap), and kept only if no launcher frame follows; the first frame after the
launcher's is the program's first, and the stack starts there. A stack made only of launcher
frames is the launcher's own work: it shows no frames.
"""

from __future__ import annotations

# typing.TYPE_CHECKING's name without typing: `memprof run` imports this module, never the model.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from .model import CaptureMetadata, Frame

# A part ending in "/" is a folder anywhere in the path; any other part is how the path ends
# (a file, or a pseudo-file such as "<frozen runpy>"). runpy finds a script's importer through pkgutil.
MEMPROF_RUN: tuple[str, ...] = ("/pytest_memprof/", "/bin/memprof", "<frozen runpy>", "/runpy.py", "/pkgutil.py")
PYTEST: tuple[str, ...] = ("/_pytest/", "/pluggy/", "/pytest_memprof/", "/pytest/__main__.py", "/bin/pytest",
                           "/xdist/", "/execnet/", "/anyio/", "/asyncio/", "<frozen runpy>", "/runpy.py")

# The %%memprof_flamegraph cell magic: IPython's and the kernel's machinery above the cell.
NOTEBOOK: tuple[str, ...] = ("/IPython/", "/ipykernel/", "/traitlets/", "/tornado/", "/zmq/", "/pytest_memprof/",
                             "/asyncio/", "<frozen runpy>", "/runpy.py")


class Place:
    """Where a stack is, read from its outermost frame, once a frame is added.

    Plain ints, not an IntEnum: `memprof run` imports this module, and enum is most of a millisecond
    of start-up where nothing else imports it (3.15).
    """

    BEFORE = 0  # no launcher frame yet: every frame so far may be the program's
    LAUNCHER = 1  # in the launcher: every frame so far is the launcher's (a stack ending here shows none)
    PROGRAM = 2  # past the launcher: this frame and the ones after are the program's
    ALL = (BEFORE, LAUNCHER, PROGRAM)  # in order: the rows of Launcher.transitions


class Launcher:
    """The launcher rule for one capture's list of launcher files."""

    def __init__(self, files: Sequence[str] = ()) -> None:
        files = _file_parts(files)
        self.files = files
        self._folders = tuple(part for part in files if part.endswith("/"))
        self._ends = tuple(part for part in files if not part.endswith("/"))

    @classmethod
    def of(cls, metadata: CaptureMetadata) -> Launcher:
        """The launcher a capture's header names; a ``memprof run`` capture of an older memprof names none."""
        files = metadata.extra.get("runner_files")
        if isinstance(files, list):
            return _launcher_of(_file_parts(files))
        return _launcher_of(MEMPROF_RUN if metadata.command_line.split()[:2] == ["memprof", "run"] else ())

    def __bool__(self) -> bool:
        return bool(self.files)

    def is_launcher_file(self, file: str) -> bool:
        """Whether a frame in ``file`` is the launcher's."""
        file = file.replace("\\", "/")
        return file.endswith(self._ends) or any(part in file for part in self._folders)

    def place(self, before: int, file: str) -> int:
        """Where a stack at ``before`` is once a frame in ``file`` is added."""
        if before == Place.PROGRAM:
            return before
        if self.is_launcher_file(file):
            return Place.LAUNCHER
        return Place.PROGRAM if before == Place.LAUNCHER else Place.BEFORE

    def transitions(self, files: Sequence[str]) -> bytes:
        """``place`` as a table, for the reader to apply along a stack trie in C++: per file of
        ``files``, the Place after a frame in it from each Place before (3 bytes, in Place's order)."""
        rows: dict[str, bytes] = {}
        out = bytearray()
        for file in files:
            row = rows.get(file)
            if row is None:
                row = rows[file] = bytes(self.place(before, file) for before in Place.ALL)
            out += row
        return bytes(out)

    def trim(self, frames: Sequence[Frame]) -> tuple[Frame, ...]:
        """``frames`` (outermost first) without the launcher's leading frames."""
        place = Place.BEFORE
        for index, frame in enumerate(frames):
            place = self.place(place, frame.file)
            if place == Place.PROGRAM:
                return tuple(frames[index:])
        return () if place == Place.LAUNCHER else tuple(frames)


def _file_parts(files: Sequence[object]) -> tuple[str, ...]:
    # A header is untrusted: only its non-empty strings make the rule (and the cache's key).
    return tuple(part for part in files if isinstance(part, str) and part)


_LAUNCHERS: dict[tuple[str, ...], Launcher] = {}


def _launcher_of(files: tuple[str, ...]) -> Launcher:
    # One per list of files: the pytest plugin reads a window per test, each naming the same list.
    # A dict, not functools.lru_cache: `memprof run` imports this module, and functools (with
    # collections under it) is start-up python's own never pays.
    launcher = _LAUNCHERS.get(files)
    if launcher is None:
        if len(_LAUNCHERS) >= 16:  # headers are untrusted: a bound, as lru_cache's was
            _LAUNCHERS.clear()
        launcher = _LAUNCHERS[files] = Launcher(files)
    return launcher
