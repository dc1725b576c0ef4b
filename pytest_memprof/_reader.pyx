# cython: language_level=3
"""Binding of the capture reader (native/reader.h) and writers (native/capture_writer.h)."""

cimport elf_dwarf
cimport follower
cimport reader as native
from libc.stdint cimport UINT64_MAX, uint8_t, uint32_t, uint64_t
from libc.errno cimport EIO, errno
from libc.stdio cimport FILE, fclose, fdopen, ferror, fflush, fwrite
from libc.stdlib cimport free
from cpython.dict cimport PyDict_GetItem
from cpython.pycapsule cimport PyCapsule_New
from cpython.long cimport PyLong_AsSsize_t, PyLong_FromVoidPtr
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from libcpp.string cimport string
from libcpp.vector cimport vector

import os
import stat

from pytest_memprof.errors import CaptureError, CaptureVersionError
from pytest_memprof.terminal import printable

FORMAT_VERSION = native.kFormatVersion
MAGIC = native.kMagic[:8]
HYBRID_STACK = native.kHybridStack
LOST_LINE = native.kLostLine
LOCATION_NO_FRAME = native.kNoFrame
LOCATION_PYTHON_FRAME = native.kPythonFrame
LOCATION_NATIVE_CALL = native.kNativeCall


cdef str _text(const string& value):
    return value.decode("utf-8", errors="replace")


cdef extern from "<cxxabi.h>" namespace "abi":
    char* __cxa_demangle(const char* mangled, char* buffer, size_t* length, int* status)


def demangle_cxx(bytes name):
    """The Itanium C++ reading of ``name`` by the libstdc++ this module is linked with, or None if it
    is not a valid mangled name."""
    cdef int status = -1
    cdef char* readable = __cxa_demangle(name, NULL, NULL, &status)
    if readable == NULL:
        return None
    try:
        return readable.decode("utf-8", errors="replace") if status == 0 else None
    finally:
        free(readable)


def call_tree_node(list by_object, dict children, list parents, list node_frames, list alive, frame_id,
                   frames, list last):
    """The node of the stack ``frames`` (outermost first) in a call tree (reports/calltree.py's
    tables), creating nodes as needed: the report's innermost loop (a flame graph of a --native
    capture walks a million frames).

    ``last`` is the previous call's [frames, node of each]: a report's stacks share their frame
    objects, so the frames this stack has in common with the one before (the same objects, most
    of its length) are passed over by identity. From there the identity cache (``by_object[node]``:
    id of a child's frame object -> child) is asked; a frame it does not know is found or added by
    value (``children``: (node, ``frame_id(frame)``) -> child) and cached, ``alive`` keeping its id
    valid."""
    cdef tuple stack = tuple(frames)
    cdef tuple before = <tuple>last[0]
    cdef list path = <list>last[1]
    cdef Py_ssize_t length = len(stack)
    cdef Py_ssize_t shared = 0
    cdef Py_ssize_t limit = min(length, len(before))
    while shared < limit and <PyObject*>stack[shared] is <PyObject*>before[shared]:
        shared += 1
    cdef Py_ssize_t node = <Py_ssize_t>path[shared - 1] if shared else 0
    cdef PyObject* found
    cdef dict known
    del path[shared:]
    cdef Py_ssize_t index
    for index in range(shared, length):
        frame = stack[index]
        known = <dict>by_object[node]
        identity = PyLong_FromVoidPtr(<void*>frame)
        found = PyDict_GetItem(known, identity)
        if found != NULL:
            node = PyLong_AsSsize_t(<object>found)
        else:
            value_key = (node, frame_id(frame))
            child = children.get(value_key)
            if child is None:
                child = len(parents)
                children[value_key] = child
                parents.append(node)
                node_frames.append(value_key[1])
                by_object.append({})
            known[identity] = child
            alive.append(frame)
            node = child
        path.append(node)
    last[0] = stack
    return node


def allocator_name(int allocator):
    """The user-facing name of an allocator's record byte ("" for merged)."""
    cdef const char* name = native.kind_name(<uint8_t>allocator)
    return name.decode() if name != NULL else ""


def encode_varints(values):
    """``values`` (non-negative ints) as unsigned LEB128 varints: the capture format's own encoding."""
    cdef uint8_t buffer[10]
    cdef uint8_t* end
    out = bytearray()
    for value in values:
        end = native.put_varint(buffer, <uint64_t>value)
        out += buffer[:end - buffer]
    return bytes(out)


cdef class CaptureReader:
    """A capture stream being replayed: a file (open/read_some), a socket's bytes (feed_capture), or
    the tracker's in-memory records (feed)."""

    cdef native.Reader* reader
    cdef follower.FollowerEntry following

    def __cinit__(self, uint64_t only_tid=0, bint temporal=False, unsigned int temporary_threshold=1,
                  size_t read_step=0):
        self.reader = new native.Reader(only_tid, temporal, temporary_threshold)
        if read_step:
            self.reader.set_read_step(read_step)

    def __dealloc__(self):
        del self.reader

    cdef _refusal(self):
        # The reader says why by a code; the message is its own.
        message = _text(self.reader.problem_text())
        if self.reader.read_error() == native.ReadError.NEWER_VERSION:
            return CaptureVersionError(message)
        return CaptureError(message)

    def open(self, path):
        """Check the file header; return the header's JSON text. Raises CaptureError if it is no capture we read."""
        if not self.reader.open(os.fsencode(path)):
            raise self._refusal()
        return _text(self.reader.header_json())

    def read_some(self, size_t budget=8 << 20):
        """Replay up to ``budget`` compressed bytes; False once the stream is done."""
        cdef bint more
        with nogil:
            more = self.reader.read_some(budget)
        return more

    @property
    def bytes_read(self):
        return self.reader.bytes_read()

    @property
    def file_size(self):
        return self.reader.file_size()

    @property
    def input_buffer_bytes(self):
        """The most bytes the file's input buffers have held: a block and a read, not the file."""
        return self.reader.input_buffer_capacity()

    def set_source(self, name):
        """Name the stream fed to feed_capture, for its messages."""
        self.reader.set_source(name.encode("utf-8", errors="replace"))

    def feed_capture(self, const uint8_t[:] data, size_t step):
        """Take the next bytes of a capture stream, decompressing ``step`` bytes at a time; False once it stopped.

        Raises CaptureError (CaptureVersionError for a newer format) if the stream is not a capture we read.
        """
        cdef bint more = True
        if data.shape[0]:
            with nogil:
                more = self.reader.feed_capture(&data[0], data.shape[0], step)
        if self.reader.read_error() != native.ReadError.NONE:
            raise self._refusal()
        return more

    @property
    def header_json(self):
        """The header's JSON text once it has arrived whole, else None."""
        return _text(self.reader.header_json()) if self.reader.header_done() else None

    @property
    def frame_done(self):
        """Whether the capture's LZ4 frame ended: the stream is complete."""
        return self.reader.frame_done()

    def feed(self, const uint8_t[:] data):
        """Replay whole records handed out by the memory sink."""
        cdef bint ok
        if data.shape[0] == 0:
            return True
        with nogil:
            ok = self.reader.feed(&data[0], data.shape[0])
        return ok

    def follower(self):
        """A capsule through which the tracker's memory sink feeds this reader from a thread of its
        own (_tracker.follow): until it is told to stop, nothing else may use the reader while the
        tracker records."""
        self.following = self.reader.follower()
        return PyCapsule_New(&self.following, follower.kFollowerCapsule, NULL)

    @property
    def follow_failed(self):
        """Whether records the tracker handed over could not be replayed (memory ran out)."""
        return self.reader.follow_failed()

    def reset_window(self, uint64_t only_tid=0):
        """Start a new window: forget events and aggregates, keep frames, stacks and thread names.

        With ``only_tid``, the window counts only allocations made by that thread.
        """
        self.reader.reset_window(only_tid)

    def close_window(self):
        """The window's records are all in: until the next window it reads as a whole capture, not a truncated one."""
        self.reader.close_window()

    def write_window_capture(self, path, header_json, const string& window, size_t frames, size_t nodes,
                             size_t native_nodes):
        """Write the current window as a capture file of its own; raises OSError if it cannot be written."""
        cdef string error
        cdef string target = os.fsencode(path)
        cdef string header = header_json.encode()
        cdef int problem
        with nogil:
            problem = native.write_window_capture(self.reader[0], target, header, window, frames, nodes,
                                                  native_nodes, &error)
        if problem:
            raise OSError(problem, _text(error), os.fspath(path))

    def write_aggregated_capture(self, path, header_json, bint whole=True):
        """Write everything aggregated so far as an aggregated capture; raises OSError if it cannot be written.

        ``whole=False`` (a snapshot while the program runs) leaves the trailer out: it reads as truncated."""
        cdef string error
        cdef string target = os.fsencode(path)
        cdef string header = header_json.encode()
        cdef int problem
        with nogil:
            problem = native.write_aggregated_capture(self.reader[0], target, header, whole, &error)
        if problem:
            raise OSError(problem, _text(error), os.fspath(path))

    @property
    def damaged_blocks(self):
        """Blocks whose checksum failed (skipped; decoding resumed at the next good one in version 5)."""
        return self.reader.damaged_blocks()

    @property
    def lost_events(self):
        """ALLOC/FREE events the damaged blocks held, as far as known."""
        return self.reader.lost_events()

    @property
    def error(self):
        return _text(self.reader.error()) or None

    @property
    def truncated(self):
        return self.reader.truncated()

    @property
    def saw_trailer(self):
        return self.reader.saw_trailer()

    @property
    def cut_bytes(self):
        """Bytes at the end of a file cut inside its LZ4 frame, not decoded (None: not counted before version 5)."""
        cut = self.reader.cut_bytes()
        return None if cut == UINT64_MAX else cut

    @property
    def cut_block_bytes(self):
        """The whole size of the block a cut ends inside, as its size field says; 0 if unknown."""
        return self.reader.cut_block_bytes()

    @property
    def peak_bytes(self):
        return self.reader.peak_bytes()

    @property
    def peak_ms(self):
        return self.reader.peak_ms()

    @property
    def current_bytes(self):
        return self.reader.current_bytes()

    @property
    def end_ms(self):
        return self.reader.end_ms()

    @property
    def start_ms(self):
        """Where the current window began (its first sample); 0 for a whole capture."""
        return self.reader.start_ms()

    @property
    def total_allocations(self):
        return self.reader.total_allocations()

    @property
    def total_bytes(self):
        return self.reader.total_bytes()

    @property
    def records(self):
        return self.reader.records()

    @property
    def unmatched_frees(self):
        return self.reader.unmatched_frees()

    def rows(self, int view, bint merge_threads=True, bint merge_allocators=True):
        """(stack id, thread id, allocator, bytes, count) tuples of ``view`` (a model.View), largest first."""
        cdef native.StackRow row
        out = []
        for row in self.reader.rows(<native.View>view, merge_threads, merge_allocators):
            out.append((row.stack, row.tid, allocator_name(row.allocator), row.bytes, row.count))
        return out

    def log_events(self, bint on=True):
        """Keep each allocation and deallocation as it is replayed, for take_events()."""
        self.reader.set_event_log(on)

    def take_events(self):
        """(ms, thread id, address, size, stack id, allocator name, deallocation?) per event kept since the last call."""
        cdef native.EventRow row
        return [(row.ms, row.tid, row.address, row.size, row.stack, allocator_name(row.allocator), row.deallocation)
                for row in self.reader.take_events()]

    def intervals(self):
        """(stack, thread, allocator, allocated_ms, freed_ms or -1, bytes, count) tuples."""
        cdef native.IntervalRow row
        return [(row.stack, row.tid, allocator_name(row.allocator), row.allocated_ms, row.freed_ms, row.bytes, row.count)
                for row in self.reader.intervals()]

    def timeline(self):
        """(ms since start, heap bytes, rss bytes) per sample."""
        cdef native.TimelineRow row
        return [(row.ms, row.heap, row.rss) for row in self.reader.timeline()]

    def frames(self):
        """(function, file, first line) per frame id."""
        cdef native.FrameRecord frame
        return [(_text(frame.function), _text(frame.file), frame.first_line) for frame in self.reader.frames()]

    def nodes(self):
        """(parent node, frame id, line) per node id - 1."""
        cdef native.NodeRecord node
        return [(node.parent, node.frame, node.line) for node in self.reader.nodes()]

    def entry_flags(self):
        """Per node id - 1: whether that Python frame entered a new C eval loop (native captures)."""
        cdef native.NodeRecord node
        return [node.entry for node in self.reader.nodes()]

    def native_nodes(self):
        """(parent native node, return address, map index or -1) per native node id - 1."""
        cdef native.NativeNodeRecord node
        return [(node.parent, node.address, node.map, node.eval) for node in self.reader.native_nodes()]

    def maps(self):
        """(start, end, load base, path, build ID as hex or "") of every executable mapping recorded."""
        cdef native.MapRecord item
        return [(item.start, item.end, item.load_base, os.fsdecode(<bytes>item.path), (<bytes>item.build_id).hex())
                for item in self.reader.maps()]

    def stack_pairs(self):
        """(Python node, native node) per hybrid stack id without its HYBRID_STACK bit."""
        return [(item.first, item.second) for item in self.reader.stack_pairs()]

    @property
    def table_sizes(self):
        """(Python nodes, native nodes, hybrid stacks) read so far, without copying the tables."""
        return self.reader.nodes().size(), self.reader.native_nodes().size(), self.reader.stack_pairs().size()

    @property
    def format_version(self):
        return self.reader.format_version()

    @property
    def native_nodes_at_window(self):
        """Native stack nodes known when the current window began."""
        return self.reader.native_nodes_at_window()

    def thread_names(self):
        """{thread id: last recorded name}."""
        return {item.first: _text(item.second) for item in self.reader.thread_names()}

    def threads_seen(self):
        """Thread ids in the order their first event appeared (in this window)."""
        return list(self.reader.threads_seen())

    def marks(self):
        """(id, label, heap bytes live at the mark) of MARK records in this window."""
        cdef native.Mark item
        return [(item.id, _text(item.label), item.heap) for item in self.reader.marks()]

    def allocator_totals(self):
        """{allocator name: (count, bytes)} of the allocations replayed."""
        cdef const uint64_t* counts = self.reader.allocator_counts()
        cdef const uint64_t* sizes = self.reader.allocator_bytes()
        return {allocator_name(allocator): (counts[allocator], sizes[allocator])
                for allocator in range(native.kAllocatorSlots) if counts[allocator]}

    def size_histogram(self):
        """(upper bound in bytes, exclusive; count) per power-of-two bucket that has allocations."""
        cdef const uint64_t* buckets = self.reader.histogram()
        return [(1 << bucket if bucket else 1, buckets[bucket])
                for bucket in range(native.kHistogramBuckets) if buckets[bucket]]


cdef class HybridLocator:
    """The allocating frame of every stack of a report, walked and summed in C++ (native/hybrid_locate.h;
    hybrid.py classifies the calls, launcher.py gives its rule as a table, capture.py turns the keys
    into frames). Made from the reader's tables as they stand."""

    cdef native.HybridLocator* locator
    cdef CaptureReader reader  # kept alive: the locator reads its tables

    def __cinit__(self, CaptureReader reader not None):
        self.reader = reader
        self.locator = new native.HybridLocator(reader.reader[0])

    def __dealloc__(self):
        del self.locator

    def calls(self):
        """(return address, map index, eval mark) of each distinct call of the native nodes."""
        cdef native.HybridCall call
        return [(call.address, call.map, call.eval) for call in self.locator.calls()]

    def classify(self, bytes flags, bint show_interpreter_frames):
        """One byte per call of ``calls()``: 1 an eval frame, 2 shown, 4 start-up code; and whether the
        report shows the interpreter's frames."""
        self.locator.classify(flags, show_interpreter_frames)

    def place_python(self, bytes transitions):
        """The launcher rule as a table: per frame id, the Place after a frame of it from each Place
        (3 bytes). Not called: no launcher."""
        self.locator.place_python(transitions)

    def location_totals(self, int view):
        """(kind, first, second, bytes, count) per allocating frame of ``view``'s stacks (threads and
        allocators merged), in the order of its largest stack: kind LOCATION_PYTHON_FRAME (frame id,
        line), LOCATION_NATIVE_CALL (index into calls()), or LOCATION_NO_FRAME. classify() first."""
        cdef native.LocationTotal total
        return [(total.kind, total.first, total.second, total.bytes, total.count)
                for total in self.locator.location_totals(<native.View>view)]

    def stacks(self, indices, list python_frames, list call_frames, python_frame, frames_of_call):
        """The frames of each hybrid stack of ``indices``, outermost first, merged in C++
        (``assemble``): ``python_frames[node]`` is Python node ``node``'s frame and
        ``call_frames[call]`` the frames of call ``call`` of ``calls()``; a None there is made once by
        ``python_frame(node)`` or ``frames_of_call(call)`` (a tuple) and kept. classify() first."""
        cdef vector[uint32_t] tokens
        cdef vector[PyObject*] items  # borrowed: the two lists hold them
        cdef uint32_t token
        cdef Py_ssize_t at
        cdef tuple frames
        result = []
        for index in indices:
            tokens.clear()
            self.locator.assemble(index, &tokens)
            items.clear()
            for token in tokens:
                if token & native.kCallToken:
                    at = token & ~native.kCallToken
                    expansion = call_frames[at]
                    if expansion is None:
                        expansion = call_frames[at] = tuple(frames_of_call(at))
                    for frame in <tuple>expansion:
                        items.push_back(<PyObject*>frame)
                else:
                    frame = python_frames[token]
                    if frame is None:
                        frame = python_frames[token] = python_frame(token)
                    items.push_back(<PyObject*>frame)
            frames = PyTuple_New(items.size())
            for at in range(<Py_ssize_t>items.size()):
                Py_INCREF(<object>items[at])
                PyTuple_SET_ITEM(frames, at, <object>items[at])
            result.append(frames)
        return result


def dump(path, int fd):
    """Write one decoded line per record of the capture at ``path`` to file descriptor ``fd``."""
    cdef CaptureReader reader = CaptureReader()
    header = reader.open(path)
    # The header is the file's text: its control characters show as escapes, as in every record.
    cdef bytes line = f"HEADER {printable(header)}\n".encode()
    cdef FILE* out = fdopen(os.dup(fd), "w")
    if out == NULL:
        raise CaptureError("cannot write the dump")
    # Every line goes through this one stream, which remembers a failed write: unchecked, a disk
    # that filled up mid-dump left a truncated output and exit status 0.
    cdef int failed = 0
    reader.reader.set_dump(out)
    try:
        fwrite(<const char*>line, 1, len(line), out)
        while not ferror(out) and reader.read_some():
            pass
        if ferror(out):
            failed = errno or EIO
    finally:
        if fflush(out) != 0 and not failed:
            failed = errno or EIO
        if fclose(out) != 0 and not failed:
            failed = errno or EIO
    if failed:
        raise OSError(failed, os.strerror(failed))  # EPIPE makes a BrokenPipeError
    return reader


cdef class ElfObject:
    """One ELF object's function symbols, build ID and DWARF, read in C++ (native/elf_dwarf.h).
    Raises OSError when ``path`` cannot be opened, ValueError when it is not a regular 64-bit
    little-endian ELF file; malformed DWARF only makes ``frames`` answer None."""

    cdef elf_dwarf.ElfObject* elf
    cdef readonly str path
    cdef readonly str build_id

    def __cinit__(self, path):
        self.path = os.fspath(path)
        # A capture is untrusted: a path naming a FIFO or a device must not hang or flood the report.
        if not stat.S_ISREG(os.stat(self.path).st_mode):
            raise ValueError("not a regular file")
        self.elf = new elf_dwarf.ElfObject(os.fsencode(self.path))
        if self.elf.open_errno():
            raise OSError(self.elf.open_errno(), _text(self.elf.problem()), self.path)
        if not self.elf.ok():
            raise ValueError(_text(self.elf.problem()))
        self.build_id = self.elf.build_id().decode()

    def __dealloc__(self):
        del self.elf

    def functions_at(self, vaddrs):
        """The (mangled) name of the function symbol containing each of ``vaddrs``, or "": one call
        for a report's addresses, each symbol's name decoded once however many of them fall in it."""
        cdef const string* name
        cdef dict decoded = {}
        result = []
        for vaddr in vaddrs:
            name = self.elf.function_at(vaddr)
            if name == NULL:
                result.append("")
                continue
            key = <size_t>name
            text = decoded.get(key)
            if text is None:
                text = decoded[key] = _text(name[0])
            result.append(text)
        return result

    @property
    def has_dwarf(self):
        """Whether the object has debug information (.debug_info) that could be read."""
        return self.elf.has_dwarf()

    def frames(self, uint64_t vaddr):
        """(name, is a linkage name, file or None for the object itself, line) per frame of the call
        site at ``vaddr``, outermost first, inlined ones included; None if the DWARF is malformed."""
        cdef vector[elf_dwarf.DwarfFrame] found
        if not self.elf.frames(vaddr, &found):
            return None
        return [(_text(frame.name), frame.linkage, _text(frame.file) if frame.has_file else None, frame.line)
                for frame in found]

    def line_rows(self):
        """Each compile unit's line rows as decoded, (address, 0 for an end of sequence else 1, file,
        line); None if the DWARF is malformed."""
        cdef vector[vector[elf_dwarf.LineRow]] units
        if not self.elf.all_line_rows(&units):
            return None
        return [[(row.address, row.order, row.file, row.line) for row in unit] for unit in units]


def decoded_length(bytes value):
    """Code points of ``value.decode(errors="replace")``, counted in C++ (the symbol alias rule's)."""
    return elf_dwarf.replaced_utf8_length(value)
