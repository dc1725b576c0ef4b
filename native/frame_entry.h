// Whether a Python frame entered the C eval loop anew (called from C) or was run inline by its
// caller's loop (Python 3.11+ runs Python-to-Python calls without recursing in C). Hybrid stacks
// match each eval frame of the native stack to the Python frames it ran by this flag.
#pragma once

#include <Python.h>
#include <frameobject.h>

namespace memprof {

// GIL held; `frame` is executing (on some thread's stack).
bool frame_is_entry(PyFrameObject* frame);

}  // namespace memprof
