# The seam between native/tracker.h and Python: declarations only.
from libc.stdint cimport uint8_t, uint64_t
from libcpp cimport bool
from libcpp.string cimport string
from follower cimport Follower, FollowerEntry

cdef extern from "frameobject.h":
    ctypedef struct PyFrameObject

cdef extern from "tracker.h" namespace "memprof":
    cdef cppclass Options:
        string path
        string header_json
        bool native
        bool trace_python_allocators
        bool follow_fork
        bool defer_signals

cdef extern from "tracker.h" namespace "memprof::tracker":
    void set_guard(bool value)
    bool start(const Options& options, string* error) except +
    string stop() except +
    bool is_started()
    void pause() except +
    void resume() except +
    string drain(bint with_followed) except +
    void follow(Follower follower, void* context) except +
    size_t drained_followed()
    void mark(uint64_t id, const string& label) except +
    void set_thread_name(uint64_t tid, const string& name) except +
    uint64_t current_tid()
    const char* python_stacks()
    void thread_started(PyFrameObject* frame)
    void before_fork() except +
    void after_fork_parent() except +
    ctypedef void (*ExitHook)() noexcept nogil
    void set_exit_hook(ExitHook hook)
    void set_signal_wakeup(int fd)
    int pending_signal()
    void finish_before_signal() except +
    void end_signal_deferral() except +
    void die_of_pending_signal()
