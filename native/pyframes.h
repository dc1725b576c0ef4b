// What only CPython's internal frame structures tell: whether a frame entered the C eval loop
// anew, and the calling thread's frame chain read straight from the interpreter.
#pragma once

#include <Python.h>
#include <frameobject.h>

#include <vector>

namespace memprof {

// Whether a Python frame entered the C eval loop anew (called from C) or was run inline by its
// caller's loop (Python 3.11+ runs Python-to-Python calls without recursing in C). Hybrid stacks
// match each eval frame of the native stack to the Python frames it ran by this flag.
// GIL held; `frame` is executing (on some thread's stack).
bool frame_is_entry(PyFrameObject* frame);

struct RawFrame {
    PyCodeObject* code;  // borrowed: alive while its frame runs, which it does until we return
    int lasti;           // as PyFrame_GetLasti gives it: a byte offset, or -1 before the first
    bool entry;          // as frame_is_entry
};

// The Python frames of the calling thread, innermost first, as the interpreter holds them. No
// GIL needed: a thread's own frames cannot change while it is inside an allocation, whoever
// holds the GIL. Frames not yet running their first instruction and the interpreter's own shim
// frames are skipped, as PyEval_GetFrame and tracebacks skip them. Nothing here allocates
// through Python or touches a reference count.
void walk_this_thread(std::vector<RawFrame>& out);

}  // namespace memprof
