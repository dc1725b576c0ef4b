// A one-block cache in front of CPython's arena allocator (PyObject_SetArenaAllocator).
//
// Since 3.11 the interpreter keeps frames in 16 KiB "data stack" chunks, allocated and released
// through the arena allocator (mmap/munmap) as calls cross a chunk boundary. A program whose
// recursion oscillates across one boundary maps and unmaps a chunk on every call. Running under
// `memprof run` adds a few frames of ours below the program, which moves its boundaries: a
// program that never crossed one alone may cross one millions of times under us, and pay a
// syscall pair and fresh page faults each time. Keeping the last released small block for the
// next request removes the syscalls while the records stay exactly what they would have been.
#pragma once

namespace memprof::arena_cache {

// Both need the GIL. install() is a no-op before Python 3.11 (no data stack chunks).
void install();
void remove();

}  // namespace memprof::arena_cache
