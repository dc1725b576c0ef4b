"""``Tracker``: record every allocation of this process, with its stack, into a capture."""

from __future__ import annotations

import atexit
import os
import sys
import time
from _thread import allocate_lock  # threading.Lock itself, without importing threading (see _tracker.pyx)

from . import _tracker
from .errors import CaptureWriteError, TrackerError

# What `memprof run` imports before the program starts is the program's wait: nothing here imports
# typing, dataclasses (destinations), json or platform. typing.TYPE_CHECKING's name, without typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import weakref
    from collections.abc import Sequence
    from pathlib import Path
    from typing import Union

    from ._reader import CaptureReader
    from .aggregate import Aggregator
    from .destinations import FileDestination, SocketDestination, SocketStream

    PathLike = Union[str, "os.PathLike[str]"]

# How the native tracker words a failure of the file itself (native/recorder.cc, native/tracker.cc).
_WRITE_FAILURES = ("cannot write the capture file", "cannot create capture file", "cannot close the capture file")


_aggregating: weakref.ref[Tracker] | None = None


def _aggregate_in_children(tracker: Tracker) -> None:
    """Have forked children of this process aggregate their own events (``aggregate`` with ``follow_fork``)."""
    import functools  # only here, with weakref: each is start-up that every other run would pay
    import weakref

    global _aggregating
    if _aggregating is None:  # a fork hook cannot be removed: one, for whichever tracker runs
        os.register_at_fork(after_in_child=functools.partial(_tracker.call_guarded, _after_fork_in_child))
    _aggregating = weakref.ref(tracker)


def _after_fork_in_child() -> None:
    tracker = _aggregating() if _aggregating is not None else None
    if tracker is not None:
        tracker._aggregate_in_child()  # called guarded: starting the child's aggregator is not the program's work


def _destination_types() -> tuple[type, type] | tuple[()]:
    """FileDestination and SocketDestination, or () when nothing imported them: then no object is one."""
    destinations = sys.modules.get(f"{__package__}.destinations")
    return (destinations.FileDestination, destinations.SocketDestination) if destinations else ()


def _python_version() -> str:
    """``platform.python_version()`` ("3.11.7", "3.15.0a2"): the first word of sys.version, as it parses it."""
    version = sys.version.split(maxsplit=1)[0] if sys.version else ""
    # platform reads the words [A-Za-z0-9_.+] up to the first blank, and adds ".0" to a bare "3.11".
    if version.count(".") == 2 and version.isascii() and version.replace(".", "").replace("+", "a").isalnum():
        return version
    import platform

    return platform.python_version()


def _platform() -> str:
    """``platform.platform()`` ("Linux-6.1.0-18-amd64-x86_64-with-glibc2.36"), built from os.uname() and confstr.

    platform.platform() runs ``uname -p`` in a subprocess (5 to 30 ms, most of `memprof run`'s
    start-up) for the processor's name, which on Linux is "unknown" or the machine's own name, and
    either way left out of the string. Anything but Linux with glibc asks platform itself.
    """
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (AttributeError, ValueError, OSError):
        libc = ""
    system, _, release, _, machine = os.uname()
    words = libc.split(maxsplit=1)
    if system != "Linux" or len(words) != 2:
        import platform

        return platform.platform()
    # platform's tidying: blank fields left out, characters a file name cannot hold made dashes,
    # "unknown" dropped, runs of dashes folded, no dash at the end.
    text = "-".join(word.strip() for word in (system, release, machine, "with", words[0] + words[1]) if word)
    text = text.replace(" ", "_")
    for character in '/\\:;"()':
        text = text.replace(character, "-")
    text = text.replace("unknown", "")
    while "--" in text:
        text = text.replace("--", "-")
    return text.rstrip("-")


def _json_string(text: str) -> str:
    """``json.dumps(text)``: printable ASCII without quotes or backslashes as it is, the rest by json's own quoting."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    try:  # a path or command line that needs escapes (rare): json's quoting, without the rest of json
        from _json import encode_basestring_ascii
    except ImportError:
        from json.encoder import encode_basestring_ascii
    return encode_basestring_ascii(text)


def _header_json(header: dict) -> str:
    """``json.dumps(header)``, byte for byte, for the header's plain values, without importing json (1 to 2 ms)."""
    words = []
    for key, value in header.items():
        if not isinstance(key, str):
            break
        if value is True or value is False:
            text = "true" if value else "false"
        elif isinstance(value, str):
            text = _json_string(value)
        elif type(value) is float and value - value == 0:  # finite: json writes repr() of it
            text = float.__repr__(value)
        elif type(value) is int:
            text = int.__repr__(value)
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            text = "[" + ", ".join(_json_string(item) for item in value) + "]"
        else:
            break
        words.append(f"{_json_string(key)}: {text}")
    else:
        return "{" + ", ".join(words) + "}"
    import json

    return json.dumps(header)


def _tracker_error(message: str) -> TrackerError:
    return CaptureWriteError(message) if message.startswith(_WRITE_FAILURES) else TrackerError(message)


class _Bound:
    def method(self) -> None:
        """A method, for its bound type."""


# types.MethodType without the types module (a quarter of a millisecond of start-up): the type
# of a bound method, as the types module itself finds it.
_MethodType = type(_Bound().method)


class Tracker:
    """Track allocations while active, as a context manager or with ``start()``/``stop()``.

    ``destination`` is the capture file to write (a path, or a ``FileDestination`` as memray has
    it), a ``SocketDestination`` to stream the capture to ``memprof live`` viewers, or None to keep
    the records in memory (read them with ``drain()``; the pytest plugin does this). With
    ``aggregate=True`` the file holds only per-stack totals, computed in this process (see
    ``pytest_memprof.aggregate``).
    ``launcher_files`` names the files of what launched the program, whose frames readers leave
    out (``pytest_memprof.launcher``). Only one tracker can run at a time.
    """

    def __init__(
        self,
        destination: PathLike | FileDestination | SocketDestination | None,
        *,
        native: bool = False,
        trace_python_allocators: bool = True,
        follow_fork: bool = False,
        overwrite: bool = False,
        command_line: str | None = None,
        aggregate: bool = False,
        launcher_files: Sequence[str] = (),
    ) -> None:
        self._socket: SocketStream | None = None
        self._socket_destination: SocketDestination | None = None
        kinds = _destination_types()
        if kinds and isinstance(destination, kinds[1]):
            self._socket_destination = destination
        elif kinds and isinstance(destination, kinds[0]):
            overwrite = overwrite or destination.overwrite
            destination = destination.path
        if self._socket_destination is not None:
            destination = None  # a temporary file, made at start()
        # A string until asked for as a Path: pathlib (with re, fnmatch and urllib.parse under it) is
        # 5 ms of `memprof run`'s start-up on 3.11 that python's own start-up never pays.
        self._path: str | None = os.fspath(destination) if destination is not None else None
        self.native = native
        self.trace_python_allocators = trace_python_allocators
        self.follow_fork = follow_fork
        self.overwrite = overwrite
        self.command_line = command_line if command_line is not None else " ".join(sys.argv)
        self.aggregate = aggregate
        self.launcher_files = tuple(launcher_files)
        self._started = False
        # Taken to end tracking, by stop() or by the signal path (_end_for_signal), which holds it
        # until the process is gone: a stop() meanwhile waits rather than cut its capture.
        self._stopping = allocate_lock()
        self._aggregator: Aggregator | None = None
        self._header: dict = {}
        self._fork_base = self._path if follow_fork else None  # a child writes FILE.<pid> beside it
        # Called through C with this thread's recording off from the start: on 3.9 and 3.10 even
        # the frame object of a Python function it called first would be charged to the program.
        # A method of call_guarded bound to _stop_at_exit is call_guarded(_stop_at_exit), as
        # functools.partial would be, without functools (collections with it, from 3.14 a
        # millisecond of start-up that threading no longer pays for us).
        self._at_exit = _MethodType(_tracker.call_guarded, self._stop_at_exit)

    @property
    def destination(self) -> Path | None:
        """The capture file (None: no file, or a stream's temporary file is not made yet)."""
        if self._path is None:
            return None
        from pathlib import Path

        return Path(self._path)

    @destination.setter
    def destination(self, path: PathLike | None) -> None:
        self._path = os.fspath(path) if path is not None else None

    def header(self) -> dict:
        """What the capture header records about this process (the pid is added natively)."""
        header = {
            "python_version": _python_version(),
            "python_executable": sys.executable,
            "start_time": time.time(),
            "command_line": self.command_line,
            "native": self.native,
            "trace_python_allocators": self.trace_python_allocators,
            "follow_fork": self.follow_fork,
            "aggregated": self.aggregate,
            "platform": _platform(),
        }
        if self.launcher_files:
            header["runner_files"] = list(self.launcher_files)
        return header

    def start(self) -> Tracker:
        """Start tracking; raises TrackerError if that is impossible (CaptureWriteError: the file cannot be written)."""
        if self.aggregate and self._path is None:
            raise TrackerError("an aggregated capture needs a file to go to (aggregate=True with a destination)")
        if self.follow_fork and self._path is None and self._socket_destination is None:
            raise TrackerError("following forks needs a file (each child writes FILE.<pid> beside it)")
        if self._socket_destination is not None:
            if self.aggregate:
                raise TrackerError("a SocketDestination streams every event: it cannot be aggregated")
            from .destinations import SocketStream

            self._socket = SocketStream(self._socket_destination)
            self._socket.start()  # waits for the first viewer, as memray's does
            self.destination = self._socket.capture
        if self._path is not None:
            self._check_destination(self._path)
        atexit.register(self._at_exit)
        self._header = self.header()
        if self.aggregate:
            # Imported here: the reader it brings (and rich, through it) is start-up that `memprof run`
            # without --aggregate would pay for nothing.
            from .aggregate import Aggregator

            self._aggregator = Aggregator(self.destination, self._header, self._end_for_signal)
            self._aggregator.start()
        # Aggregating: the events go to memory and are replayed here; only the totals reach the file.
        stream_to = None if self.aggregate else self._path
        error = _tracker.start(
            stream_to,
            _header_json(self._header),
            native_traces=self.native,
            trace_python_allocators=self.trace_python_allocators,
            follow_fork=self.follow_fork,
            defer_signals=self.aggregate,
        )
        if error:
            atexit.unregister(self._at_exit)
            self._finish_socket()
            if self._aggregator is not None:
                self._aggregator.halt()
                self._aggregator = None
            raise _tracker_error(error)
        self._started = True
        if self.aggregate:
            # os._exit() skips atexit (multiprocessing's children all end so): the tracker's
            # _exit() hook calls this instead, and the capture is still written whole.
            _tracker.set_exit_callback(self._at_exit)
            if self.follow_fork:
                _aggregate_in_children(self)
        return self

    def stop(self) -> None:
        """Stop tracking and finish the capture; raises CaptureWriteError if it could not be written whole."""
        with self._stopping:
            if not self._started:
                return
            self._started = False
        aggregator, self._aggregator = self._aggregator, None
        try:
            if aggregator is not None:
                _tracker.guard_this_thread(True)  # stopping our thread is not the program's work (stop() ends it)
                aggregator.halt()
                _tracker.set_exit_callback(None)
            _tracker.follow(None)  # the sink's thread is done with the reader before the stream ends
            error = _tracker.stop()
            atexit.unregister(self._at_exit)
            self._finish_socket()
            if error:
                raise _tracker_error(error)
            if aggregator is not None and self.destination is not None:
                from .aggregate import write_aggregated_capture

                header = {**self._header, "pid": os.getpid()}
                try:
                    write_aggregated_capture(self.destination, aggregator.finish(), header)
                except OSError as problem:
                    raise CaptureWriteError(
                        f"cannot write capture file {self.destination}: {problem.strerror}"
                    ) from None
        finally:
            # Aggregating, a SIGTERM or SIGINT that came during stop() waited for the capture
            # (native/tracker.cc): it is written, now the signal does what it would have done.
            _tracker.end_signal_deferral()
            _tracker.die_of_pending_signal()

    def _end_for_signal(self, aggregator: Aggregator) -> None:
        # On the aggregator's thread, for a deferred SIGTERM or SIGINT: write the capture whole,
        # then die of the signal. The tracker is not stopped (its hooks stay, passing through),
        # so its sampler goes on watching that this ends in time (native/tracker.cc).
        with self._stopping:
            if not self._started:
                return  # stop() came first: it writes the capture, then dies of the signal
            self._started = False
            from .aggregate import write_aggregated_capture  # loaded already: the aggregator is running

            try:
                _tracker.finish_before_signal()
                if self.destination is not None:
                    header = {**self._header, "pid": os.getpid()}
                    write_aggregated_capture(self.destination, aggregator.finish(), header)
            except OSError as problem:
                print(f"memprof: cannot write capture file {self.destination}: {problem.strerror}; "
                      "it keeps its last snapshot", file=sys.stderr)
            finally:
                _tracker.die_of_pending_signal()

    def _aggregate_in_child(self) -> None:
        # In a forked child the aggregator's thread is gone and its totals are the parent's: this
        # process starts its own, for FILE.<pid> as a streaming child would write.
        if not self._started or self._aggregator is None or self._fork_base is None:
            return
        from .aggregate import Aggregator

        self._path = f"{self._fork_base}.{os.getpid()}"
        self._aggregator.forget_pipe()  # the parent's: a signal here must wake this process's thread
        self._stopping = allocate_lock()  # the parent's may have been held at the fork
        self._aggregator = Aggregator(self.destination, self._header, self._end_for_signal)
        self._aggregator.start()

    def pause(self) -> None:
        """Stop recording until ``resume()``; cheap, for use between pytest tests."""
        _tracker.pause()

    def resume(self) -> None:
        """Record again after ``pause()``; the records that follow decode on their own."""
        _tracker.resume()

    def drain(self) -> bytes:
        """Records written to memory since the last drain (memory destination only)."""
        return _tracker.drain()

    def follow(self, reader: CaptureReader | None) -> None:
        """Replay the records in ``reader`` (None: stop) as they are written, on a thread of the
        tracker's own, a buffer at a time; until stopped, ``reader`` is used only between a
        ``drain_followed()`` and the next ``resume()`` (memory destination only)."""
        _tracker.follow(reader)

    def drain_followed(self, whole: bool = True) -> tuple[bytes, int]:
        """``drain()``, and how many bytes at its start the reader given to ``follow()`` has replayed;
        not ``whole``: only the records after those (and 0)."""
        data = _tracker.drain(whole)
        return data, _tracker.drained_followed()

    def mark(self, mark_id: int, label: str) -> None:
        """Write a labelled mark into the stream (e.g. a test phase boundary)."""
        _tracker.mark(mark_id, label)

    @staticmethod
    def is_active() -> bool:
        """Whether any tracker is running in this process."""
        return bool(_tracker.is_active())

    def __enter__(self) -> Tracker:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _finish_socket(self) -> None:
        if self._socket is not None:
            self._socket.finish()
            self._socket = None
            self.destination = None

    def _check_destination(self, path: str) -> None:
        folder = os.path.dirname(path) or "."
        problem = None
        if os.path.exists(path) and not self.overwrite:
            problem = "already exists (overwrite it with overwrite=True / --force)"
        elif not os.path.isdir(folder):
            problem = "does not exist"
        elif not os.access(folder, os.W_OK):
            problem = "is not writable"
        if problem is None:
            return
        shown = self.destination  # the message names paths as pathlib writes them
        if problem.startswith("already"):
            raise TrackerError(f"capture file {shown} {problem}")
        raise TrackerError(f"cannot write capture file {shown}: folder {shown.parent} {problem}")

    def _stop_at_exit(self) -> None:
        # An interpreter leaving with tracking on: finish the capture rather than cut it.
        try:
            self.stop()
        except TrackerError as error:
            print(f"memprof: {error}", file=sys.stderr)
