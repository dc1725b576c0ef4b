# The seam between native/objects.h and Python: declarations only.
from cpython.object cimport PyObject
from libcpp cimport bool

cdef extern from "objects.h" namespace "memprof::objects":
    bool available()
    bool start(const char** why)
    PyObject* stop()
