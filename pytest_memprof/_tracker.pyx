# cython: language_level=3
"""Binding of the native tracker (native/tracker.h): start, stop, drain, marks, thread names."""

cimport follower
cimport objects
cimport tracker as native
from cpython.object cimport PyObject
from cpython.pycapsule cimport PyCapsule_GetPointer
from cpython.ref cimport Py_DECREF
from libcpp.string cimport string

import _thread
import os
import sys

# threading is not imported here: an empty script under `memprof run` never imports it, and
# importing it (with _weakrefset) was a millisecond of start-up, a fifth of what we add to python's.
# A program that imports it while tracking gets the trampoline as it would have had it been
# imported before the start (_ThreadingImport).

_program_thread_profile = None


def _set_thread_trampoline(threading):
    # Python threads started from now on install the C profiler on their first event. The
    # program's own hook (a process memprof attached to may have one) comes back at stop.
    global _program_thread_profile
    _program_thread_profile = getattr(threading, "_profile_hook", None)
    threading.setprofile(_thread_trampoline)


class _ThreadingImport:
    """A finder first on sys.meta_path while tracking a program that has not imported threading:
    when it does, its Python threads get the trampoline before any of them can start."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != "threading":
            return None
        _unwatch_threading_import()
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if find is not None else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _ThenSetTrampoline(spec.loader)
        return spec


class _ThenSetTrampoline:
    """threading's own loader, and the trampoline set once the module has run."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        # The module keeps its own loader (inspect and importlib.reload ask it), never this one.
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        if native.is_started():
            _set_thread_trampoline(module)


def _watch_threading_import():
    if _ThreadingImport not in sys.meta_path:
        sys.meta_path.insert(0, _ThreadingImport)


def _unwatch_threading_import():
    try:
        sys.meta_path.remove(_ThreadingImport)
    except ValueError:
        pass


def start(path, header_json, *, bint native_traces=False, bint trace_python_allocators=True,
          bint follow_fork=False, bint defer_signals=False):
    """Start tracking into ``path`` (a capture file) or, if ``path`` is None, into memory.

    ``defer_signals`` (into memory): SIGTERM and SIGINT wait for the aggregated capture, see set_signal_wakeup().
    """
    cdef native.Options options
    cdef string error
    options.path = b"" if path is None else path.encode()
    options.header_json = header_json.encode()
    options.native = native_traces
    options.trace_python_allocators = trace_python_allocators
    options.follow_fork = follow_fork
    options.defer_signals = defer_signals and path is None
    threading = sys.modules.get("threading")
    if threading is not None:
        _set_thread_trampoline(threading)
    else:
        _watch_threading_import()
    native.set_guard(True)  # what this function allocates from here on is not the program's
    try:
        if not native.start(options, &error):
            _restore_thread_profile()
            return error.decode(errors="replace")
        _record_thread_names()
    finally:
        native.set_guard(False)
    return None


def _restore_thread_profile():
    _unwatch_threading_import()
    threading = sys.modules.get("threading")
    if threading is not None and getattr(threading, "_profile_hook", None) is _thread_trampoline:
        threading.setprofile(_program_thread_profile)


def stop():
    """Stop tracking; return an error message, or None if the stream was written whole."""
    cdef string error
    native.set_guard(True)
    try:
        _record_thread_names()  # names may have changed since start: record the final ones
        _restore_thread_profile()
        error = native.stop()
    finally:
        native.set_guard(False)
    return error.decode(errors="replace") or None


def _record_thread_names():
    threading = sys.modules.get("threading")
    if threading is None:
        # No thread has a name of threading's yet but the main thread, "MainThread" as threading
        # will call it (the main thread's id is the process's).
        tid = _thread.get_native_id()
        if tid == os.getpid():
            native.set_thread_name(tid, b"MainThread")
        return
    for thread in threading.enumerate():
        if thread.native_id is not None:
            native.set_thread_name(thread.native_id, thread.name.encode(errors="replace"))


def is_active():
    """Whether a tracker is started in this process (paused or not)."""
    return native.is_started()


def python_stacks():
    """How the running tracker knows stacks: "sys.monitoring", "frame evaluation", "profile", "walk", or ""."""
    return native.python_stacks().decode()


def pause():
    """Stop recording until resume() (the hooks stay in place and pass through)."""
    native.set_guard(True)
    try:
        native.pause()
    finally:
        native.set_guard(False)


def resume():
    """Record again; the records from here decode without what came before."""
    native.set_guard(True)
    try:
        native.resume()
    finally:
        native.set_guard(False)


def drain(bint with_followed=True):
    """The records written to the memory sink since the previous drain (without ``with_followed``,
    only those after what the follower was handed)."""
    return <bytes>native.drain(with_followed)


# The reader the memory sink's records are handed to (follow): kept alive while they may be.
_followed = None


def follow(reader):
    """Hand the memory sink's records, each buffer as it fills, to ``reader`` (a CaptureReader, or
    None to stop) on a thread of the tracker's own while the program runs; ``drained_followed()``
    says how much of a drain it had."""
    global _followed
    cdef follower.FollowerEntry* entry
    if reader is None:
        native.follow(NULL, NULL)
        _followed = None
        return
    capsule = reader.follower()
    entry = <follower.FollowerEntry*>PyCapsule_GetPointer(capsule, follower.kFollowerCapsule)
    native.follow(entry.feed, entry.context)
    _followed = (reader, capsule)


def drained_followed():
    """How many bytes at the start of the last drain() the follower (follow) was handed already."""
    return native.drained_followed()


def mark(unsigned long long mark_id, label):
    """Write a MARK record (e.g. a test phase boundary)."""
    native.mark(mark_id, label.encode(errors="replace"))


def guard_this_thread(bint on):
    """Stop (True) or go back to (False) recording what the calling thread allocates: memprof's own work."""
    native.set_guard(on)


def call_guarded(function, *args):
    """``function(*args)`` with what the calling thread allocates not recorded (memprof's own work, from atexit or a fork hook)."""
    native.set_guard(True)
    try:
        return function(*args)
    finally:
        native.set_guard(False)


def ignore_this_thread():
    """Never record what the calling thread allocates from now on (for our own helper threads)."""
    native.set_guard(True)


def _thread_trampoline(frame, event, arg):
    native.set_guard(True)
    try:
        native.thread_started(<native.PyFrameObject*>frame)
        # Only threading's threads come here: it is imported.
        name = sys.modules["threading"].current_thread().name.encode(errors="replace")
        native.set_thread_name(native.current_tid(), name)
    finally:
        native.set_guard(False)


def _before_fork():
    native.set_guard(True)
    try:
        native.before_fork()
    finally:
        native.set_guard(False)


def _after_fork_in_parent():
    native.set_guard(True)
    try:
        native.after_fork_parent()
    finally:
        native.set_guard(False)


# Our sampler and writer threads are joined around os.fork(): the child then inherits no lock
# they held, and Python 3.12+ does not warn about forking a multi-threaded process on our account.
os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent)


cdef extern from "Python.h":
    int PyGILState_Check() nogil

    ctypedef struct PyCompilerFlags:
        int cf_flags
        int cf_feature_version
    object Py_CompileStringObject(const char* source, object filename, int start, PyCompilerFlags* flags,
                                  int optimize)
    int Py_file_input
    int PyCF_SOURCE_IS_UTF8
    int PyCF_IGNORE_COOKIE
    int PY_MINOR_VERSION


def compile_file(bytes source, filename, *, bint decoded=False):
    """``compile(source, filename, "exec", dont_inherit=True)`` as the interpreter compiles what it runs.

    The built-in compile() first checks whether it was given an AST, and the first such check
    builds the ast module's hundred-odd node types (a millisecond); ``python script.py`` and
    ``python -c`` compile through this C call and never build them. ``source`` is a file's bytes
    (its coding declaration applies) or, ``decoded``, text already decoded and encoded as UTF-8
    (a coding declaration in it is ignored, as the built-in ignores one in a str). Bytes with a
    NUL in them are the built-in's to refuse.
    """
    if b"\0" in source:
        return compile(source.decode() if decoded else source, filename, "exec", dont_inherit=True)
    cdef PyCompilerFlags flags
    flags.cf_flags = PyCF_SOURCE_IS_UTF8 | (PyCF_IGNORE_COOKIE if decoded else 0)
    flags.cf_feature_version = PY_MINOR_VERSION
    return Py_CompileStringObject(source, filename, Py_file_input, &flags, -1)


_exit_callback = None


cdef void _run_exit_callback() noexcept nogil:
    # _exit() from a thread that does not hold the GIL (C code, a dying native thread): taking
    # it there could wait forever on a thread that never gives it back, so nothing runs.
    if not PyGILState_Check():
        return
    with gil:
        callback = _exit_callback
        if callback is not None:
            try:
                callback()
            except BaseException:
                pass  # the process is ending: there is no one left to tell


def set_exit_callback(callback):
    """Call ``callback()`` (or nothing, for None) when the process ends through _exit() while tracking into memory."""
    global _exit_callback
    _exit_callback = callback
    if callback is None:
        native.set_exit_hook(NULL)
    else:
        native.set_exit_hook(_run_exit_callback)


def set_signal_wakeup(int fd):
    """Have a deferred SIGTERM or SIGINT write a byte to ``fd`` (the aggregator's pipe; -1: none)."""
    native.set_signal_wakeup(fd)


def pending_signal():
    """The signal deferred while the aggregated capture is written, or 0."""
    return native.pending_signal()


def finish_before_signal():
    """Stop recording for good and end the memory stream, to be drained once more before dying of the signal."""
    native.set_guard(True)
    try:
        native.finish_before_signal()
    finally:
        native.set_guard(False)


def end_signal_deferral():
    """After stop() and the aggregated capture's write: SIGTERM and SIGINT act at once again."""
    native.set_guard(True)
    try:
        native.end_signal_deferral()
    finally:
        native.set_guard(False)


def die_of_pending_signal():
    """End the process as the deferred signal would have (its default action); nothing if none is pending."""
    native.die_of_pending_signal()


def can_watch_objects():
    """Whether this build can watch object lifetimes (CPython 3.13 or later: its reference tracer)."""
    return objects.available()


def watch_objects():
    """Start noting every object created and destroyed (native/objects.h); RuntimeError if it cannot."""
    cdef const char* why = NULL
    if not objects.start(&why):
        raise RuntimeError(why.decode())


def surviving_objects():
    """Stop watching; a list of the objects created since watch_objects() and still alive."""
    cdef PyObject* found = objects.stop()
    if found == NULL:
        raise MemoryError()
    cdef object result = <object>found
    Py_DECREF(result)  # <object> took a reference of its own; stop() handed us one
    return result
