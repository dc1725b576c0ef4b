// Python call stacks without the GIL, and a trie that turns a whole stack into one integer.
//
// Two ways to know a thread's stack. When Python's allocators are traced, allocations come far
// more often than calls: a shadow stack per thread, kept by a C profile callback, makes each one
// cheap. With the system allocator only, allocations are rare and calls are not, and a profile
// callback is most of the cost (CPython materialises a frame object for every call it reports):
// each allocation then walks the interpreter's own frames instead (FrameWalk). The walk is also
// the fallback wherever a shadow stack is not known to be right: a thread that has made no
// Python call since the start, or one whose callback the program's own profiler replaced.
//
// The callback pushes and pops frames (GIL held). An allocation, maybe in a thread that released
// the GIL, reads its own thread's shadow stack: safe, because a thread's frames do not change
// while that thread is in C code. Only the top frame's instruction moves between allocations, so
// each entry caches the trie node it resolved to and `valid` says how many bottom entries are
// still exact; an allocation re-resolves from there up, usually just the top frame.
#pragma once

#include <Python.h>
#include <frameobject.h>

#include <cstdint>
#include <vector>

#include "pyframes.h"

namespace memprof {

class Recorder;

struct ShadowFrame {
    // A strong reference. Borrowing would be enough while our callback sees every return, but
    // if another profiler replaces ours (sys.setprofile, cProfile, a debugger) the returns are
    // missed and a borrowed frame would be freed under us: a stale stack must mean a wrong
    // attribution at worst, never a read of freed memory.
    PyFrameObject* frame;
    uint32_t code_id;
    uint32_t parent;  // the node this entry was resolved under
    uint32_t node;    // 0 until resolved
    int lasti;
    uint8_t entry;  // entered the C eval loop anew (see pyframes.h)
};

struct ShadowStack {
    std::vector<ShadowFrame> frames;
    PyThreadState* tstate = nullptr;  // the thread's state: is our profile function still set on it?
    size_t valid = 0;          // entries [0, valid) need no re-resolution
    uint32_t generation = 0;   // the tracker start this stack belongs to; stale stacks are rebuilt
};

struct WalkedFrame {
    PyCodeObject* code;  // compared, never dereferenced: it may be gone by the next walk
    int lasti;
    bool entry;
    uint32_t code_id;
    uint32_t node;
};

// Per thread: the previous walk's frames, outermost first, and their nodes.
struct FrameWalk {
    std::vector<RawFrame> raw;  // scratch, kept to spare an allocation per walk
    std::vector<WalkedFrame> cache;
    uint32_t generation = 0;
};

namespace pystack {

int profile_callback(PyObject* obj, PyFrameObject* frame, int what, PyObject* arg);

// Rebuilds `stack` from `top` (and its callers) for the current generation. GIL held.
void rebuild(ShadowStack& stack, PyFrameObject* top, uint32_t generation);
// The trie node of the thread's shadow stack into `node`; emits NODE records for new nodes.
// False if the shadow stack is not known to be right (the caller walks the frames instead).
// Lock held.
bool current_node(ShadowStack& stack, uint32_t* node);

// The trie node of the calling thread's stack, walked from the interpreter's frames; emits
// FRAME and NODE records for new ones. Lock held; no GIL needed.
uint32_t walked_node(FrameWalk& walk);

// Moves every frame reference out of `stack` into `out` and marks it stale (lock held).
void detach(ShadowStack& stack, std::vector<PyFrameObject*>& out);

// Profile callback in every thread that exists now (GIL held).
void install_profiler_all_threads();
void remove_profiler_all_threads();

// PyMem_SetAllocator wrappers for the RAW, MEM and OBJ domains (GIL held).
void install_allocator_hooks();
void remove_allocator_hooks();

// Frame (code object) and trie tables: cleared at each start (GIL held), replayed into a new
// stream after a followed fork (lock held).
void reset_tables();
void release_code_objects();
void emit_tables(Recorder& recorder);

}  // namespace pystack
}  // namespace memprof
