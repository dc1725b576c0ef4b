"""Report-time symbolisation of native return addresses: ELF symbols for names, DWARF for file:line.

Objects are read in C++ (native/elf_dwarf.h, bound as ``_reader.ElfObject``): symbol tables, the
build ID, DWARF 2-5 line tables and inlined-call chains, each compile unit decoded once, on the
first address a report shows in it. It replaced a pyelftools reader whose Python decoding was
most of a native report's time; tests/dwarf_oracle.py keeps that reader as the tests' reference,
and the answers are the same. Every result is also cached per address and per object here,
and across runs per build ID (symbol_cache.py).
"""

from __future__ import annotations

import atexit
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from ._reader import ElfObject as NativeElfObject
from ._reader import demangle_cxx
from .hybrid import EVAL_FUNCTION, NativeCall, interpreter_paths
from .model import Frame
from .rustnames import demangle_rust
from .symbol_cache import ObjectEntry, SymbolCache


@dataclass(frozen=True)
class NativeLocation:
    """What one return address resolved to: its frames (outermost first, inlined ones after)."""

    function: str  # the physical function (symbol table), "" if unknown
    frames: tuple[Frame, ...]
    missing: bool = False  # the object could not be read at report time


# ---- demangling ---------------------------------------------------------------------------------

_demangled: dict[str, str] = {}


def demangle(name: str) -> str:
    """The readable name of a Rust (hash left out) or Itanium C++ symbol; others unchanged."""
    if not name.startswith(("_Z", "_R")):
        return name
    cached = _demangled.get(name)
    if cached is None:
        # Rust's legacy names are valid C++ ones too (the C++ demangler leaves $LT$ and the hash in).
        cached = demangle_rust(name)
        if cached is None:
            cached = demangle_cxx(name.encode(errors="surrogateescape")) or name
        _demangled[name] = cached
    return cached


# ---- one ELF object -----------------------------------------------------------------------------


class _ElfObject:
    """The symbol table and DWARF of one shared object or executable, read in C++ (native/elf_dwarf.h)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._native = NativeElfObject(path)  # OSError, or ValueError when not a 64-bit LE ELF file
        self.build_id: str = self._native.build_id

    def functions_at(self, vaddrs: list[int]) -> list[str]:
        """The (mangled) symbol containing each of ``vaddrs``, or ""."""
        return self._native.functions_at(vaddrs)

    def dwarf(self) -> NativeElfObject | None:
        """The object's DWARF reader, or None if it has no (readable) debug information."""
        return self._native if self._native.has_dwarf else None


# ---- the symboliser -----------------------------------------------------------------------------


class Symbolizer:
    """Resolves (object path, build ID, address) to frames; caches per object and per address."""

    def __init__(self) -> None:
        self._objects: dict[tuple[str, str], _ElfObject | None] = {}
        self._names: dict[tuple[str, str], dict[int, str]] = {}  # per object: vaddr -> function name
        self._locations: dict[tuple[str, str, int], NativeLocation] = {}
        self._problems: dict[tuple[str, str], str] = {}  # why an object could not be used
        # Across runs: an object's addresses resolved before need not open it at all.
        self._cache = SymbolCache()
        self._saving = False

    def save_cache(self) -> None:
        """Write what this process learned to the symbol cache (done at exit, or by a caller done earlier)."""
        self._cache.save()

    def _learning(self, path: str, build_id: str, elf: _ElfObject) -> ObjectEntry | None:
        """The cache entry to add results to, if the object read is the build recorded (and has one)."""
        if not build_id or getattr(elf, "build_id", "") != build_id:
            return None
        entry = self._cache.entry(path, build_id)
        if entry is not None and not self._saving:
            self._saving = True
            atexit.register(self.save_cache)
        return entry

    def problem(self, path: str, build_id: str = "") -> str:
        """Why the object recorded as (path, build ID) cannot be used ("" if it can, or is not loaded yet)."""
        return self._problems.get((path, build_id), "")

    def _object(self, path: str, build_id: str) -> _ElfObject | None:
        key = (path, build_id)
        if key not in self._objects:
            elf = None
            try:
                elf = _ElfObject(path)
            except FileNotFoundError:
                self._problems[key] = "no longer exists"
            except Exception as error:  # any unreadable object degrades to lib+offset
                self._problems[key] = f"cannot be read ({type(error).__name__}: {error})"
            # Same path, another build (rebuilt since, or another machine's): its symbols would lie.
            if elf is not None and build_id and elf.build_id and elf.build_id != build_id:
                self._problems[key] = "is not the build the capture was made with (its build ID differs)"
                elf = None
            self._objects[key] = elf
        return self._objects[key]

    def function_name(self, path: str, vaddr: int, build_id: str = "") -> str:
        """The demangled name of the function holding ``vaddr`` (the call site), or ""."""
        name = self._names.get((path, build_id), {}).get(vaddr)
        return self.function_names(path, build_id, [vaddr])[0] if name is None else name

    def function_names(self, path: str, build_id: str, vaddrs: list[int]) -> list[str]:
        """``function_name`` of each of ``vaddrs`` in one object: what neither this process nor the
        symbol cache knows is looked up in one pass over the object's symbol table."""
        known = self._names.setdefault((path, build_id), {})
        missing = [vaddr for vaddr in vaddrs if vaddr not in known]
        if missing:
            entry = self._cache.entry(path, build_id)
            if entry is not None:
                stored = entry.names
                for vaddr in missing:
                    name = stored.get(vaddr)
                    if name is not None:
                        known[vaddr] = name
                missing = [vaddr for vaddr in missing if vaddr not in known]
        if missing:
            elf = self._object(path, build_id)
            names = [demangle(name) for name in elf.functions_at(missing)] if elf is not None else [""] * len(missing)
            learning = self._learning(path, build_id, elf) if elf is not None else None
            for vaddr, name in zip(missing, names):
                known[vaddr] = name
                if learning is not None:
                    learning.learn_name(vaddr, name)
        return [known[vaddr] for vaddr in vaddrs]

    def locate(self, path: str, vaddr: int, build_id: str = "") -> NativeLocation:
        """Frames for the call site at ``vaddr`` (an object-relative address), inlined ones expanded."""
        key = (path, build_id, vaddr)
        cached = self._locations.get(key)
        if cached is not None:
            return cached
        entry = self._cache.entry(path, build_id)
        stored = entry.frames.get(vaddr) if entry is not None else None
        if stored is not None:
            location = self._locations[key] = NativeLocation(self.function_name(path, vaddr, build_id), stored)
            return location
        elf = self._object(path, build_id)
        base = os.path.basename(path)
        if elf is None:
            frame = Frame(f"{base}+0x{vaddr:x}", path, 0, native=True)
            location = NativeLocation("", (frame,), missing=True)
        else:
            function = self.function_name(path, vaddr, build_id)
            frames: tuple[Frame, ...] = (Frame(function or f"{base}+0x{vaddr:x}", path, 0, native=True),)
            dwarf = elf.dwarf()
            if dwarf is not None:
                try:
                    frames = _dwarf_frames(dwarf, vaddr, function, path) or frames
                except Exception:  # malformed DWARF: keep the symbol-table frame
                    pass
            location = NativeLocation(function, frames)
            learning = self._learning(path, build_id, elf)
            if learning is not None:
                learning.learn_frames(vaddr, frames)
        self._locations[key] = location
        return location


def _dwarf_frames(dwarf: NativeElfObject, vaddr: int, function: str, path: str) -> tuple[Frame, ...]:
    found = dwarf.frames(vaddr)
    if found is None:
        raise ValueError("malformed DWARF")
    frames = []
    for index, (name, linkage, file, line) in enumerate(found):
        if linkage:
            name = demangle(name)
        if index == 0 and function:
            name = function  # the symbol table names the physical function exactly
        frames.append(Frame(name or function or "??", path if file is None else file, line, native=True))
    return tuple(frames)


# ---- one capture's native frames ----------------------------------------------------------------


def _eval_frames(path: str) -> Callable[[], tuple[Frame, ...]]:
    frames = (Frame(EVAL_FUNCTION, path, 0, native=True),)
    return lambda: frames


class MissingLibraryWarning(UserWarning):
    """A library named by native frames cannot be read at report time: its frames show as lib+offset."""


# One for the process: the pytest plugin opens a capture per test, and symbols stay valid.
_SYMBOLIZER = Symbolizer()


class CaptureSymbols:
    """The native frames of one capture: each recorded return address as a call, symbolised only when shown."""

    def __init__(self, python_executable: str | None) -> None:
        self.maps: list[tuple[int, int, int, str, str]] = []  # (start, end, load base, path, build ID)
        self.warnings: list[str] = []  # problems met, each also issued as a warning
        self._is_interpreter = interpreter_paths(python_executable)
        self._map_kinds: dict[int, tuple[bool, bool]] = {}  # per mapping: (the interpreter, libc or ld.so)
        # Nodes are paths, addresses are places: many nodes (one per path into a function) share an
        # address, and so its symbols.
        self._calls_at: dict[tuple[int, int], NativeCall] = {}

    def calls(self, wanted: list[tuple[int, int, bool]]) -> list[NativeCall]:
        """The call at each (return address, map index (-1: none held it then), eval mark of the
        tracker): the names of each object's addresses are looked up together (a report's
        thousands of distinct calls, mostly in a few objects)."""
        found: list[NativeCall | None] = [self._calls_at.get((address, map_index)) for address, map_index, _ in wanted]
        by_map: dict[int, list[int]] = {}
        for index, (address, map_index, in_eval_loop) in enumerate(wanted):
            if found[index] is not None:
                continue
            held_by = map_index if map_index >= 0 else self._map_containing(address - 1)
            if held_by < 0:
                found[index] = self._unknown(address, in_eval_loop)
            else:
                by_map.setdefault(held_by, []).append(index)
        for held_by, indexes in by_map.items():
            path, load_base, build_id = self._object_of(held_by)
            vaddrs = [wanted[index][0] - 1 - load_base for index in indexes]
            names = _SYMBOLIZER.function_names(path, build_id, vaddrs)
            for index, vaddr, function in zip(indexes, vaddrs, names):
                address, map_index, in_eval_loop = wanted[index]
                found[index] = self._new_call(address, map_index, held_by, path, build_id, in_eval_loop, vaddr,
                                              function)
        return found  # type: ignore[return-value]  # every entry is set by now

    def _object_of(self, map_index: int) -> tuple[str, int, str]:
        """(path, load base, build ID) of mapping ``map_index``."""
        _, _, load_base, path, build_id = self.maps[map_index]
        return path, load_base, build_id

    def _unknown(self, address: int, in_eval_loop: bool) -> NativeCall:
        frame = Frame(f"0x{address:x}", "<unknown>", 0, native=True)
        return NativeCall("", False, lambda: (frame,), in_eval_loop)

    def _new_call(self, address: int, recorded_map: int, held_by: int, path: str, build_id: str,
                  in_eval_loop: bool, vaddr: int, function: str) -> NativeCall:
        """The call at ``address`` in mapping ``held_by`` (``recorded_map`` as the capture said), named
        ``function``; ``path`` and ``build_id`` are the mapping's object, as the caller looked them up."""
        kind = self._map_kinds.get(held_by)
        if kind is None:
            # libc's unnamed local functions are its start-up code (e.g. __libc_start_call_main).
            kind = self._map_kinds[held_by] = (self._is_interpreter(path),
                                                 os.path.basename(path).startswith(("libc.so", "ld-linux")))
            if _SYMBOLIZER.problem(path, build_id):
                self._warn_missing(path, build_id)
        interpreter, runtime_object = kind
        if in_eval_loop and not function:
            # A stripped interpreter, or the loop's code an optimiser moved out of its symbol.
            call = NativeCall(EVAL_FUNCTION, True, _eval_frames(path), True)
        else:
            call = NativeCall(function, interpreter or (runtime_object and not function),
                              self._expander(path, vaddr, build_id), in_eval_loop)
        if recorded_map >= 0:  # a guessed mapping may change as more mappings are read
            self._calls_at[(address, recorded_map)] = call
        return call

    def _expander(self, path: str, vaddr: int, build_id: str) -> Callable[[], tuple[Frame, ...]]:
        return lambda: self._locate(path, vaddr, build_id)

    def _locate(self, path: str, vaddr: int, build_id: str) -> tuple[Frame, ...]:
        location = _SYMBOLIZER.locate(path, vaddr, build_id)
        if location.missing:
            self._warn_missing(path, build_id)
        return location.frames

    def _map_containing(self, address: int) -> int:
        # Recorded before the mappings that hold it (a library loaded by another thread): any
        # mapping of the capture, latest first, is the best guess.
        for index in range(len(self.maps) - 1, -1, -1):
            start, end = self.maps[index][:2]
            if start <= address < end:
                return index
        return -1

    def _warn_missing(self, path: str, build_id: str) -> None:
        message = (f"{path} {_SYMBOLIZER.problem(path, build_id) or 'cannot be read'}: its frames are shown as "
                   f"{os.path.basename(path)}+offset")
        if message not in self.warnings:
            self.warnings.append(message)
            warnings.warn(message, MissingLibraryWarning, stacklevel=5)
