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
//
// On 3.12+ the calls are followed through sys.monitoring (PEP 669) where a tool id is free: its
// events name the code object and need no frame object, which the profile callback makes
// CPython create for every call it reports. Entries then hold the interpreter's frame only as an
// identity: the callers' instructions are noted when they call, and an allocation reads the top
// frame's instruction from the interpreter after checking that the live top frame is the shadow
// top, so a missed event (a callback that sys.monitoring suppresses while another tool's runs)
// costs a walk, never a wrong or stale read. Only starts and resumes are events (a callback per
// return cost as much again): the frames above the live top frame in the shadow stack are those
// that returned, yielded or unwound since, dropped at the thread's next event or allocation.
//
// On 3.9-3.11 the same live entries come from a PEP 523 frame evaluation function (pyframes.h):
// it hears each Python frame start and end without the profile callback's cost (on 3.11 a
// profile function turns on DO_TRACING, which deoptimises every instruction, and makes a frame
// object and, for every C method called, a bound method object). It is not used with native
// stacks, under MEMPROF_CALLS=profile, or when another evaluation function is installed (a
// debugger, a JIT). Each evaluation nests a C call, so past kMaxEvaluations nested frames in one
// thread the run hands over to the profile callback for good: every thread rebuilds its stack.
#pragma once

#include <Python.h>
#include <frameobject.h>

#include <cstdint>
#include <vector>

#include "pyframes.h"

namespace memprof {

class Recorder;

struct ShadowFrame {
    // Profile callback: a strong reference. Borrowing would be enough while our callback sees
    // every return, but if another profiler replaces ours (sys.setprofile, cProfile, a debugger)
    // the returns are missed and a borrowed frame would be freed under us: a stale stack must
    // mean a wrong attribution at worst, never a read of freed memory. Null under sys.monitoring.
    PyFrameObject* frame;
    const void* iframe;  // sys.monitoring: the interpreter's frame, compared, never dereferenced
    uint32_t code_id;
    uint32_t parent;  // the node this entry was resolved under
    uint32_t node;    // 0 until resolved
    int lasti;        // the instruction `node` was resolved for
    int calling;      // sys.monitoring: the instruction it was at when it last called a frame
    uint8_t entry;    // entered the C eval loop anew (see pyframes.h)
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
// The same for the calling thread's current frames, as calls are followed now. GIL held.
void rebuild_current(ShadowStack& stack, uint32_t generation);
// What current_node gives for an allocation the program did not make: the interpreter readies
// a code object for the events that our shadow stack follows, as it does the first time each
// function runs under them (3.12+: sys.monitoring data, about 128 bytes; 3.11: the line table a
// profile call event needs, 2 bytes an instruction), kept as long as the code object lives.
// Not recorded: those bytes exist only because we follow calls, and would show as a leak at
// every first call.
constexpr uint32_t kNotTheProgram = UINT32_MAX;

// The trie node of the thread's shadow stack into `node` (or kNotTheProgram); emits NODE records
// for new nodes. False if the shadow stack is not known to be right (the caller walks the frames
// instead). Lock held.
bool current_node(ShadowStack& stack, uint32_t* node);

// The trie node of the calling thread's stack, walked from the interpreter's frames; emits
// FRAME and NODE records for new ones. Lock held; no GIL needed.
uint32_t walked_node(FrameWalk& walk);

// Moves every frame reference out of `stack` into `out` and marks it stale (lock held).
void detach(ShadowStack& stack, std::vector<PyFrameObject*>& out);

// Following calls to keep shadow stacks: sys.monitoring where it can (3.12+, a free tool id, and
// MEMPROF_CALLS is not "profile"), else the profile callback in every thread that exists now.
// Chosen by the first follow_calls() after release_calls(); pause and resume keep the choice.
// GIL held.
void follow_calls();
void stop_following_calls();
void release_calls();  // at stop: gives the sys.monitoring tool id back
// How calls are followed this run: "sys.monitoring", "frame evaluation" (PEP 523, 3.9-3.11),
// "profile", or "" before the first follow_calls().
const char* calls_followed_by();
// A new Python thread's first profile event (threading.setprofile): under sys.monitoring the
// profile function is only removed again. GIL held.
void thread_started(PyFrameObject* frame);

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
