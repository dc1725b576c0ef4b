#include "objects.h"

#include <unordered_set>

#include "tracker.h"

namespace memprof::objects {

#if PY_VERSION_HEX >= 0x030D0000

namespace {

// Touched only with the GIL held: the tracer is called by the thread creating or destroying.
std::unordered_set<PyObject*>* g_alive = nullptr;
PyRefTracer g_previous = nullptr;
void* g_previous_data = nullptr;

int on_object(PyObject* object, PyRefTracerEvent event, void*) {
    // The set's own allocations are ours, not the program's: the allocation hooks pass them by.
    GuardScope guard;
    if (event == PyRefTracer_CREATE) {
        g_alive->insert(object);
    } else {
        g_alive->erase(object);
    }
    return 0;
}

}  // namespace

bool available() { return true; }

bool start(const char** why) {
    if (g_alive != nullptr) {
        *why = "objects are already being watched";
        return false;
    }
    {
        GuardScope guard;
        g_alive = new std::unordered_set<PyObject*>();
    }
    g_previous = PyRefTracer_GetTracer(&g_previous_data);
    PyRefTracer_SetTracer(on_object, nullptr);
    return true;
}

PyObject* stop() {
    if (g_alive == nullptr) return PyList_New(0);
    PyRefTracer_SetTracer(g_previous, g_previous_data);
    std::unordered_set<PyObject*>* alive = g_alive;
    g_alive = nullptr;
    PyObject* list = PyList_New(0);
    if (list != nullptr) {
        for (PyObject* object : *alive) {
            // Alive: its DESTROY would have taken it out of the set.
            if (PyList_Append(list, object) != 0) {
                Py_CLEAR(list);
                break;
            }
        }
    }
    GuardScope guard;
    delete alive;
    return list;
}

#else

bool available() { return false; }

bool start(const char** why) {
    *why = "this CPython has no reference tracer (3.13 or later has one)";
    return false;
}

PyObject* stop() { return PyList_New(0); }

#endif

}  // namespace memprof::objects
