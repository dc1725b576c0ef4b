// Objects that outlive a test: every object created while watching, less those destroyed since
// (pytest-memray's limit_leaked_objects). CPython tells a reference tracer of both from 3.13 on
// (PyRefTracer_SetTracer); it tells it of every kind of object, freelists included, from 3.13.3.
#pragma once

#include <Python.h>

namespace memprof::objects {

// Whether this build can watch objects (built for CPython 3.13 or later).
bool available();
// Starts watching on this interpreter, in place of any tracer set before (restored by stop).
// False, with a reason, if it cannot (not available, already watching). Called with the GIL held.
bool start(const char** why);
// Stops watching; a new list of the objects created since start() and still alive. GIL held.
PyObject* stop();

}  // namespace memprof::objects
