// Alone in its file: the flag lives in CPython's internal frame structures, which need
// Py_BUILD_CORE, and nothing else of ours should see those headers.
#include "frame_entry.h"

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

}  // namespace memprof
