// Alone in its file: the interpreter's frames live in CPython's internal structures, which need
// Py_BUILD_CORE, and nothing else of ours should see those headers.
#include "pyframes.h"

#include <pthread.h>

// Each version's frame layout is read below; a version we have not read must not build, as a
// wrong guess reads garbage on every allocation. A free-threaded build keeps frames per thread
// too, but our shadow stack and walk also lean on the GIL (see pystack.h), so it waits its turn.
#if defined(Py_GIL_DISABLED)
#error "pytest-memprof does not support free-threaded CPython builds (Py_GIL_DISABLED, e.g. 3.14t) yet: use the default build of CPython 3.9 to 3.15"
#endif
#if PY_VERSION_HEX >= 0x03100000
#error "pytest-memprof reads CPython's internal frames and supports CPython 3.9 to 3.15; this Python is newer"
#endif

#if PY_VERSION_HEX >= 0x030B0000
#define Py_BUILD_CORE 1
// CPython's internal headers are not written for -Wextra (unused parameters in inline helpers):
// their warnings are not ours to fix.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include <internal/pycore_frame.h>  // PyFrameObject's fields
#include <opcode.h>  // RESUME and its specialised and instrumented forms
#if PY_VERSION_HEX >= 0x030E0000
#include <internal/pycore_interpframe.h>  // 3.14 moved _PyInterpreterFrame and its helpers here
#endif
#pragma GCC diagnostic pop
#endif

namespace memprof {
namespace {

#if PY_VERSION_HEX >= 0x030C0000
// The frame that each C-level entry into the eval loop pushes below the Python frames it runs:
// FRAME_OWNED_BY_CSTACK on 3.12 and 3.13; FRAME_OWNED_BY_INTERPRETER (3.14 keeps the CSTACK
// name but assigns it nowhere; 3.15 drops it). Both are frames that run no code of their own.
inline bool is_shim(const _PyInterpreterFrame* frame) {
#if PY_VERSION_HEX >= 0x030E0000
    return frame->owner >= FRAME_OWNED_BY_INTERPRETER;
#else
    return frame->owner == FRAME_OWNED_BY_CSTACK;
#endif
}

inline bool entered_from_c(const _PyInterpreterFrame* frame) { return frame->previous && is_shim(frame->previous); }
#endif

#if PY_VERSION_HEX >= 0x030E0000
// 3.14 holds the code object as a tagged stack reference; the tag bits are masked off, and no
// reference count is touched (PyStackRef_AsPyObjectBorrow is a pure bit operation here).
inline PyObject* executable_of(_PyInterpreterFrame* frame) { return PyStackRef_AsPyObjectBorrow(frame->f_executable); }
#elif PY_VERSION_HEX >= 0x030D0000
inline PyObject* executable_of(_PyInterpreterFrame* frame) { return frame->f_executable; }
#endif

// A byte offset, as PyFrame_GetLasti gives it, from a count of code units (-1 stays -1).
inline int byte_offset(int units) { return units < 0 ? -1 : units * static_cast<int>(sizeof(_Py_CODEUNIT)); }

#if PY_VERSION_HEX >= 0x030B0000
// The thread's innermost interpreter frame: 3.13 moved it from the CFrame to the thread state.
inline _PyInterpreterFrame* innermost_frame(PyThreadState* tstate) {
#if PY_VERSION_HEX >= 0x030D0000
    return tstate->current_frame;
#else
    return tstate->cframe ? tstate->cframe->current_frame : nullptr;
#endif
}

// `frame` as a stack shows it, into `out`; false for the frames a stack leaves out: shims (3.12+),
// frames that run no code object (3.13+) and incomplete ones (pushed, their code not yet valid).
// The incomplete check reads the code object, so the 3.13+ type check comes first.
inline bool read_frame(_PyInterpreterFrame* frame, RawFrame* out) {
#if PY_VERSION_HEX >= 0x030C0000
    if (is_shim(frame)) return false;
#endif
#if PY_VERSION_HEX >= 0x030D0000
    if (!PyCode_Check(executable_of(frame)) || _PyFrame_IsIncomplete(frame)) return false;
    out->code = reinterpret_cast<PyCodeObject*>(executable_of(frame));
#else
    if (_PyFrame_IsIncomplete(frame)) return false;
    out->code = frame->f_code;
#endif
    out->id = frame;
    out->lasti = byte_offset(_PyInterpreterFrame_LASTI(frame));
#if PY_VERSION_HEX >= 0x030C0000
    out->entry = entered_from_c(frame);
#else
    out->entry = frame->is_entry;
#endif
    return true;
}
#endif

#if PY_VERSION_HEX < 0x030B0000
inline RawFrame read_frame(PyFrameObject* frame) {
#if PY_VERSION_HEX >= 0x030A0000
    int lasti = byte_offset(frame->f_lasti);  // 3.10 counts code units
#else
    int lasti = frame->f_lasti;
#endif
    return RawFrame{frame->f_code, frame, lasti, true};
}
#endif

}  // namespace

bool frame_is_entry(PyFrameObject* frame) {
#if PY_VERSION_HEX >= 0x030C0000
    _PyInterpreterFrame* current = frame->f_frame;
    return current && entered_from_c(current);
#elif PY_VERSION_HEX >= 0x030B0000
    _PyInterpreterFrame* current = frame->f_frame;
    return current && current->is_entry;
#else
    (void)frame;
    return true;  // before 3.11 every Python call runs its own C eval loop
#endif
}

namespace {

// The calling thread's own state, attached or not: PyThreadState_Get() would name the GIL holder,
// or abort when nobody holds it. From 3.12 the attached state is a thread-local read (most
// allocations come with the GIL held); PyGILState_GetThisThreadState, a TSS lookup, finds a
// detached one too.
inline PyThreadState* this_thread_state() {
#if PY_VERSION_HEX >= 0x030D0000
    if (PyThreadState* attached = PyThreadState_GetUnchecked()) return attached;
#elif PY_VERSION_HEX >= 0x030C0000
    if (PyThreadState* attached = _PyThreadState_UncheckedGet()) return attached;
#elif PY_VERSION_HEX >= 0x030B0000
    // Before 3.12 the unchecked state is the process's GIL holder, an atomic read: when it names
    // this thread (nearly every allocation of the program's comes with the GIL) it is the TSS
    // lookup's answer, for a third of the cost. A holder that ends its thread at this moment
    // clears the holder before it frees its state, so the id read may be a freed state's, still
    // the other thread's (small blocks stay mapped); a state made anew for another thread names
    // that thread. Neither passes for ours.
    PyThreadState* holder = _PyThreadState_UncheckedGet();
    if (holder && holder->thread_id == static_cast<unsigned long>(pthread_self())) return holder;
#endif
    return PyGILState_GetThisThreadState();
}

}  // namespace

void walk_this_thread(std::vector<RawFrame>& out, size_t max) {
    out.clear();
    PyThreadState* tstate = this_thread_state();
    if (!tstate) return;  // a native thread that never ran Python
#if PY_VERSION_HEX >= 0x030B0000
    RawFrame raw;
    for (_PyInterpreterFrame* f = innermost_frame(tstate); f && out.size() < max; f = f->previous) {
        if (read_frame(f, &raw)) out.push_back(raw);
    }
#else
    for (PyFrameObject* f = tstate->frame; f && out.size() < max; f = f->f_back) out.push_back(read_frame(f));
#endif
}

size_t top_two_frames(RawFrame out[2]) {
    PyThreadState* tstate = this_thread_state();
    if (!tstate) return 0;
    size_t count = 0;
#if PY_VERSION_HEX >= 0x030B0000
    for (_PyInterpreterFrame* f = innermost_frame(tstate); f && count < 2; f = f->previous) {
        if (read_frame(f, &out[count])) ++count;
    }
#else
    for (PyFrameObject* f = tstate->frame; f && count < 2; f = f->f_back) out[count++] = read_frame(f);
#endif
    return count;
}

bool top_frame(RawFrame* out) {
    PyThreadState* tstate = this_thread_state();
    if (!tstate) return false;
#if PY_VERSION_HEX >= 0x030B0000
    for (_PyInterpreterFrame* f = innermost_frame(tstate); f; f = f->previous) {
        if (read_frame(f, out)) return true;
    }
    return false;
#else
    if (!tstate->frame) return false;
    *out = read_frame(tstate->frame);
    return true;
#endif
}

bool at_resume(const RawFrame& frame) {
#if PY_VERSION_HEX >= 0x030B0000
    if (frame.lasti < 0) return false;
    Py_ssize_t unit = frame.lasti / static_cast<Py_ssize_t>(sizeof(_Py_CODEUNIT));
    if (unit >= Py_SIZE(frame.code)) return false;
    switch (_Py_OPCODE(_PyCode_CODE(frame.code)[unit])) {
        case RESUME:
#ifdef RESUME_QUICK
        case RESUME_QUICK:
#endif
#ifdef INSTRUMENTED_RESUME
        case INSTRUMENTED_RESUME:
#endif
#ifdef RESUME_CHECK
        case RESUME_CHECK:
#endif
#ifdef RESUME_CHECK_JIT
        case RESUME_CHECK_JIT:
#endif
            return true;
        default:
            return false;
    }
#else
    (void)frame;
    return false;
#endif
}

bool new_frame_at_resume(PyThreadState* tstate, const void* known) {
#if PY_VERSION_HEX >= 0x030B0000
    RawFrame raw;
    for (_PyInterpreterFrame* f = innermost_frame(tstate); f; f = f->previous) {
        if (read_frame(f, &raw)) return f != known && at_resume(raw);
    }
    return false;
#else
    (void)tstate;
    (void)known;
    return false;
#endif
}

const void* frame_id(PyFrameObject* frame) {
#if PY_VERSION_HEX >= 0x030B0000
    return frame->f_frame;
#else
    return frame;
#endif
}

#if PY_VERSION_HEX < 0x030C0000
namespace {

EnterFrame g_enter = nullptr;
LeaveFrame g_leave = nullptr;
TooDeep g_too_deep = nullptr;
PyInterpreterState* g_evaluated = nullptr;  // the interpreter ours is set on
thread_local int t_evaluations __attribute__((tls_model("initial-exec"))) = 0;  // ours, nested in this thread

// Counts this thread's evaluations in ours for as long as one runs.
struct Nested {
    Nested() {
        if (++t_evaluations > kMaxEvaluations) g_too_deep();
    }
    ~Nested() { --t_evaluations; }
    Nested(const Nested&) = delete;
    Nested& operator=(const Nested&) = delete;
};

#if PY_VERSION_HEX >= 0x030B0000
PyObject* evaluate(PyThreadState* tstate, _PyInterpreterFrame* frame, int throwflag) {
    Nested nested;
    g_enter(RawFrame{frame->f_code, frame, byte_offset(_PyInterpreterFrame_LASTI(frame)), true});
#else
PyObject* evaluate(PyThreadState* tstate, PyFrameObject* frame, int throwflag) {
    Nested nested;
    g_enter(read_frame(frame));
#endif
    PyObject* result = _PyEval_EvalFrameDefault(tstate, frame, throwflag);
    g_leave(frame);
    return result;
}

}  // namespace

bool set_frame_evaluation(EnterFrame enter, LeaveFrame leave, TooDeep too_deep) {
    PyInterpreterState* interp = PyInterpreterState_Get();
    _PyFrameEvalFunction current = _PyInterpreterState_GetEvalFrameFunc(interp);
    if (current != _PyEval_EvalFrameDefault && current != evaluate) return false;
    g_enter = enter;
    g_leave = leave;
    g_too_deep = too_deep;
    g_evaluated = interp;
    _PyInterpreterState_SetEvalFrameFunc(interp, evaluate);
    return true;
}

void unset_frame_evaluation() {
    if (!g_evaluated) return;
    if (_PyInterpreterState_GetEvalFrameFunc(g_evaluated) == evaluate) {
        _PyInterpreterState_SetEvalFrameFunc(g_evaluated, _PyEval_EvalFrameDefault);
    }
    g_evaluated = nullptr;
}

bool frame_evaluation_is_ours() {
    return g_evaluated && _PyInterpreterState_GetEvalFrameFunc(g_evaluated) == evaluate;
}
#else
bool set_frame_evaluation(EnterFrame, LeaveFrame, TooDeep) { return false; }
void unset_frame_evaluation() {}
bool frame_evaluation_is_ours() { return false; }
#endif

void eval_loop_markers(std::vector<uintptr_t>& out) {
    out.clear();
    PyThreadState* tstate = PyGILState_GetThisThreadState();
    if (!tstate) return;
#if PY_VERSION_HEX >= 0x030C0000
    for (_PyInterpreterFrame* f = innermost_frame(tstate); f; f = f->previous) {
        if (is_shim(f)) out.push_back(reinterpret_cast<uintptr_t>(f));
    }
#elif PY_VERSION_HEX >= 0x030A0000
    // The walk stops at the thread state's own CFrame (root_cframe), which is not on the C stack:
    // 3.10 never sets its `previous` (the thread state comes from malloc), so past it lies garbage.
    for (auto* cframe = tstate->cframe; cframe && cframe != &tstate->root_cframe; cframe = cframe->previous) {
        out.push_back(reinterpret_cast<uintptr_t>(cframe));
    }
#else
    (void)tstate;
#endif
}

}  // namespace memprof
