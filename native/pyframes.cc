// Alone in its file: the interpreter's frames live in CPython's internal structures, which need
// Py_BUILD_CORE, and nothing else of ours should see those headers.
#include "pyframes.h"

#if PY_VERSION_HEX >= 0x030E0000
// 3.14 changed the frame layout again (stack references in place of object pointers).
#error "pytest-memprof reads CPython's internal frames and supports Python 3.9 to 3.13 so far"
#endif

#if PY_VERSION_HEX >= 0x030B0000
#define Py_BUILD_CORE 1
#include <internal/pycore_frame.h>
#endif

namespace memprof {

bool frame_is_entry(PyFrameObject* frame) {
#if PY_VERSION_HEX >= 0x030C0000
    // 3.12+: each C-level entry into the eval loop pushes a shim frame owned by the C stack.
    _PyInterpreterFrame* current = frame->f_frame;
    return current && current->previous && current->previous->owner == FRAME_OWNED_BY_CSTACK;
#elif PY_VERSION_HEX >= 0x030B0000
    _PyInterpreterFrame* current = frame->f_frame;
    return current && current->is_entry;
#else
    (void)frame;
    return true;  // before 3.11 every Python call runs its own C eval loop
#endif
}

void walk_this_thread(std::vector<RawFrame>& out) {
    out.clear();
    // The thread's own state, attached or not: PyThreadState_Get() would name the GIL holder,
    // or abort when nobody holds it.
    PyThreadState* tstate = PyGILState_GetThisThreadState();
    if (!tstate) return;  // a native thread that never ran Python
#if PY_VERSION_HEX >= 0x030D0000
    for (_PyInterpreterFrame* f = tstate->current_frame; f; f = f->previous) {
        if (f->owner == FRAME_OWNED_BY_CSTACK || !PyCode_Check(f->f_executable) || _PyFrame_IsIncomplete(f)) continue;
        bool entry = f->previous && f->previous->owner == FRAME_OWNED_BY_CSTACK;
        int lasti = _PyInterpreterFrame_LASTI(f);
        out.push_back({_PyFrame_GetCode(f), lasti < 0 ? -1 : lasti * static_cast<int>(sizeof(_Py_CODEUNIT)), entry});
    }
#elif PY_VERSION_HEX >= 0x030B0000
    if (!tstate->cframe) return;
    for (_PyInterpreterFrame* f = tstate->cframe->current_frame; f; f = f->previous) {
#if PY_VERSION_HEX >= 0x030C0000
        if (f->owner == FRAME_OWNED_BY_CSTACK) continue;
        bool entry = f->previous && f->previous->owner == FRAME_OWNED_BY_CSTACK;
#else
        bool entry = f->is_entry;
#endif
        if (_PyFrame_IsIncomplete(f)) continue;
        int lasti = _PyInterpreterFrame_LASTI(f);
        out.push_back({f->f_code, lasti < 0 ? -1 : lasti * static_cast<int>(sizeof(_Py_CODEUNIT)), entry});
    }
#else
    for (PyFrameObject* f = tstate->frame; f; f = f->f_back) {
#if PY_VERSION_HEX >= 0x030A0000
        int lasti = f->f_lasti < 0 ? -1 : f->f_lasti * 2;  // 3.10 counts code units
#else
        int lasti = f->f_lasti;
#endif
        out.push_back({f->f_code, lasti, true});
    }
#endif
}

}  // namespace memprof
