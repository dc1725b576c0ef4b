// What only CPython's internal frame structures tell: whether a frame entered the C eval loop
// anew, and the calling thread's frame chain read straight from the interpreter.
#pragma once

#include <Python.h>
#include <frameobject.h>

#include <cstdint>
#include <vector>

namespace memprof {

// Whether a Python frame entered the C eval loop anew (called from C) or was run inline by its
// caller's loop (Python 3.11+ runs Python-to-Python calls without recursing in C). Hybrid stacks
// match each eval frame of the native stack to the Python frames it ran by this flag.
// GIL held; `frame` is executing (on some thread's stack).
bool frame_is_entry(PyFrameObject* frame);

struct RawFrame {
    PyCodeObject* code;  // borrowed: alive while its frame runs, which it does until we return
    const void* id;      // the interpreter's frame: compared, never dereferenced by callers
    int lasti;           // as PyFrame_GetLasti gives it: a byte offset, or -1 before the first
    bool entry;          // as frame_is_entry
};

// The Python frames of the calling thread, innermost first, as the interpreter holds them (the
// innermost `max` of them). No GIL needed: a thread's own frames cannot change while it is
// inside an allocation, whoever holds the GIL. Frames not yet running their first instruction
// and the interpreter's own shim frames are skipped, as PyEval_GetFrame and tracebacks skip them.
// Nothing here allocates through Python or touches a reference count.
void walk_this_thread(std::vector<RawFrame>& out, size_t max = SIZE_MAX);

// The innermost frame walk_this_thread would give, without a vector; false if there is none.
// Exactly walk_this_thread(out, 1)[0] (sys.monitoring's check of the shadow top, per event).
bool top_frame(RawFrame* out);
// The innermost frame and its caller as walk_this_thread(out, 2) gives them, into out[0] and
// out[1], without a vector; how many there were (0 to 2). sys.monitoring's PY_START, per call.
size_t top_two_frames(RawFrame out[2]);

// Whether `frame` (as walk_this_thread gives it) stands at a RESUME instruction: it has been
// pushed but has not started (or resumed) running its code yet. That is where the interpreter
// readies a code object for the events our shadow stack follows, the first time it runs under
// them, allocating what it keeps as long as the code object lives: on 3.12+ the sys.monitoring
// data (a profile function runs on sys.monitoring too), on 3.11 the line table a profile
// function's call event needs. Always false before 3.11, which allocates nothing there.
// Same conditions as walk_this_thread.
bool at_resume(const RawFrame& frame);

// The same for the innermost frame of `tstate` (the calling thread's own state), unless it is
// `known` (an interpreter frame, as RawFrame::id names it): the shadow stack's top, which has
// had its call event.
bool new_frame_at_resume(PyThreadState* tstate, const void* known);

// The interpreter's frame of `frame` (a frame of the calling thread), as RawFrame::id names it.
const void* frame_id(PyFrameObject* frame);

// PEP 523's frame evaluation function, up to 3.11: ours runs every Python frame through the
// interpreter's own loop, calling `enter` just before (the frame pushed but not yet the thread's
// innermost: `lasti` -1 before its first instruction, else where a generator resumes; `entry`
// true, as every frame then enters the C loop anew) and `leave` with its id just after it
// returns, yields or raises. Unlike a profile function it leaves the interpreter's specialised
// instructions alone, and it makes no frame objects. False where this Python has no such hook
// for us (3.12+, where it would stop the specialisation of calls) or another evaluator is set
// (a debugger, a JIT): not ours to replace. GIL held.
//
// Each frame it runs costs a C stack frame of the interpreter's loop, where 3.11 runs calls
// between Python functions inside one: a program recursing deeper than a C stack holds (it raised
// the recursion limit) would crash. So when a thread nests more than kMaxEvaluations of them,
// `too_deep` is called first (with the GIL, before that frame runs), to follow calls another way.
constexpr int kMaxEvaluations = 2000;
using EnterFrame = void (*)(const RawFrame& frame);
using LeaveFrame = void (*)(const void* id);
using TooDeep = void (*)();
bool set_frame_evaluation(EnterFrame enter, LeaveFrame leave, TooDeep too_deep);
void unset_frame_evaluation();  // only if ours is still the one set
// Whether ours is still the interpreter's evaluator (a program may set its own after us). Any thread.
bool frame_evaluation_is_ours();

// One address on the C stack per activation of the interpreter's eval loop in the calling thread,
// each inside that activation's own C stack frame: the entry frame the loop pushes below the
// Python frames it runs (3.12+), or its CFrame (3.10, 3.11). Native stacks tell eval frames by
// them, without symbols. Empty before 3.10, where nothing of the loop's own lies on the C stack.
// Same conditions as walk_this_thread.
void eval_loop_markers(std::vector<uintptr_t>& out);

}  // namespace memprof
