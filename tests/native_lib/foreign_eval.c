// A PEP 523 frame evaluation function of another tool's (a debugger's, say), set while ours is:
// it counts the frames it runs and hands each to the interpreter's own loop. 3.9 to 3.11, where
// the tracker follows calls with an evaluation function of its own.
#include <Python.h>

#if PY_VERSION_HEX < 0x030C0000
typedef PyObject* (*Evaluate)(PyThreadState*, void*, int);

static _PyFrameEvalFunction g_before = NULL;
static long g_frames = 0;

static PyObject* foreign_evaluate(PyThreadState* tstate, void* frame, int throwflag) {
    ++g_frames;
    return ((Evaluate)_PyEval_EvalFrameDefault)(tstate, frame, throwflag);
}

// Sets ours in place of whatever evaluates frames now (kept for remove()).
void install(void) {
    PyInterpreterState* interp = PyInterpreterState_Get();
    g_before = _PyInterpreterState_GetEvalFrameFunc(interp);
    _PyInterpreterState_SetEvalFrameFunc(interp, (_PyFrameEvalFunction)foreign_evaluate);
}

void remove_it(void) {
    _PyInterpreterState_SetEvalFrameFunc(PyInterpreterState_Get(), g_before);
}

long frames_run(void) { return g_frames; }
#endif
