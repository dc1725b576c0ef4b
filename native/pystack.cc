#include "pystack.h"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <string>

#include "flat_map.h"
#include "pyframes.h"
#include "format.h"
#include "recorder.h"
#include "tracker.h"

namespace memprof::pystack {
namespace {

// code object -> frame id, for the profile callback: touched only with the GIL held.
FlatMap<uint32_t> g_code_ids;
// The same for walks, which may run without the GIL: touched only with the tracker lock held. A
// code object met both ways has two ids with the same FRAME record, which readers merge.
FlatMap<uint32_t> g_walked_ids;
// What identifies a code object without a reference to it: a walk may meet a code object
// without the GIL, so it cannot keep one, and the address may later be another code object's.
struct CodeMark {
    PyObject* file;
    PyObject* name;
    PyObject* lines;  // the line table: equal marks mean equal lines for equal offsets
    int firstlineno;
    bool operator==(const CodeMark& other) const {
        return file == other.file && name == other.name && lines == other.lines && firstlineno == other.firstlineno;
    }
};
struct CodeInfo {
    std::string function;
    std::string file;
    uint32_t firstlineno;
    CodeMark mark;
};
// frame id -> what was recorded, for replay into a followed child's stream and to tell a code
// object from a later one at the same address. Tracker lock held.
std::vector<CodeInfo> g_codes;
// frame id -> strong reference (profile callback only, where the GIL is held to take one; null
// for walked ids), so an id never outlives its code object. Read by allocations without the
// GIL, so it changes only under the tracker lock.
std::vector<PyCodeObject*> g_code_objects;
// (parent node, frame id, instruction) -> node id. Tracker lock held.
FlatMap<uint32_t, EdgeKey> g_trie;
// (parent node, frame id, line) -> node id: instructions on one line share one node, so a
// stack is recorded once per line, which is all a report can tell apart.
FlatMap<uint32_t, EdgeKey> g_line_nodes;
// (frame id << 32 | instruction) -> line. Addr2Line reads the line table from its start; one
// instruction of a helper is met under many parents (numpy's test_numeric: 96,000 new trie
// edges, 8,300 distinct instructions).
FlatMap<uint32_t> g_lines;
struct NodeInfo {
    uint32_t parent;
    uint32_t frame;
    uint32_t line;
    bool entry;
};
std::vector<NodeInfo> g_nodes;  // index = node id - 1, for replay into a followed child's stream
// In front of g_trie: the edges met lately, direct-mapped. An allocation's top frame moves
// between a few instructions (a dict, its strings, a list), mostly in frames just pushed, so most
// lookups are edges met a moment ago; here one is a multiply and two compares, where the trie
// hashes twice and probes. Node 0: an empty slot.
struct RecentEdge {
    EdgeKey key;
    uint32_t node;
};
constexpr int kRecentBits = 10;
RecentEdge g_recent_edges[1 << kRecentBits];
bool g_native_run = false;  // tracker::native() for this run, read at each lookup
inline RecentEdge& recent_edge(const EdgeKey& key) {
    uint64_t mixed = key.parent_and_frame * 0x9E3779B97F4A7C15ULL ^ key.lasti * 0xC2B2AE3D27D4EB4FULL;
    return g_recent_edges[mixed >> (64 - kRecentBits)];
}

int frame_lasti(PyFrameObject* frame) {
#if PY_VERSION_HEX >= 0x030B0000
    return PyFrame_GetLasti(frame);
#elif PY_VERSION_HEX >= 0x030A0000
    return frame->f_lasti < 0 ? -1 : frame->f_lasti * 2;  // 3.10 counts code units
#else
    return frame->f_lasti;
#endif
}

// UTF-8 of a str without the Python API (no GIL, no allocation through Python, no cached
// UTF-8 left on the user's object); lone surrogates become U+FFFD.
std::string utf8_or(PyObject* text, const char* fallback) {
    if (!text || !PyUnicode_Check(text)) return fallback;
#if PY_VERSION_HEX < 0x030C0000
    if (!PyUnicode_IS_READY(text)) return fallback;  // a legacy string never readied: not a code name
#endif
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    const void* data = PyUnicode_DATA(text);
    if (PyUnicode_IS_ASCII(text)) return std::string(static_cast<const char*>(data), static_cast<size_t>(length));
    int kind = PyUnicode_KIND(text);
    std::string out;
    out.reserve(static_cast<size_t>(length) * 2);
    for (Py_ssize_t i = 0; i < length; ++i) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c >= 0xD800 && c <= 0xDFFF) c = 0xFFFD;
        if (c < 0x80) {
            out += static_cast<char>(c);
        } else if (c < 0x800) {
            out += static_cast<char>(0xC0 | (c >> 6));
            out += static_cast<char>(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            out += static_cast<char>(0xE0 | (c >> 12));
            out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (c & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (c >> 18));
            out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (c & 0x3F));
        }
    }
    return out;
}

CodeMark mark_of(PyCodeObject* code) {
#if PY_VERSION_HEX >= 0x030B0000
    PyObject* name = code->co_qualname;
#else
    PyObject* name = code->co_name;
#endif
#if PY_VERSION_HEX >= 0x030A0000
    PyObject* lines = code->co_linetable;
#else
    PyObject* lines = code->co_lnotab;
#endif
    return {code->co_filename, name, lines, code->co_firstlineno};
}

// A new frame id for `code` and its FRAME record. Tracker lock held.
uint32_t add_code(PyCodeObject* code, const CodeMark& mark) {
    uint32_t id = static_cast<uint32_t>(g_codes.size());
    std::string function = utf8_or(mark.name, "<unknown>");
    std::string file = utf8_or(mark.file, "<unknown>");
    uint32_t firstlineno = static_cast<uint32_t>(code->co_firstlineno < 0 ? 0 : code->co_firstlineno);
    tracker::recorder().frame(function, file, firstlineno);
    g_codes.push_back({std::move(function), std::move(file), firstlineno, mark});
    return id;
}

// In front of g_code_ids, direct-mapped: a frame's code is asked for at each call it makes
// (push_live), mostly the few codes a loop calls. Its codes are held (a reference each, until
// release_code_objects empties both), so an address here is the same code object. GIL held.
struct RecentCode {
    PyCodeObject* code;
    uint32_t id;
};
constexpr int kRecentCodeBits = 8;
RecentCode g_recent_codes[1 << kRecentCodeBits];

uint32_t intern_code(PyCodeObject* code) {
    RecentCode& recent = g_recent_codes[(reinterpret_cast<uint64_t>(code) >> 4) * 0x9E3779B97F4A7C15ULL >>
                                        (64 - kRecentCodeBits)];
    if (recent.code == code) return recent.id;
    auto [slot, inserted] = g_code_ids.insert(reinterpret_cast<uint64_t>(code));
    if (!inserted) {
        recent = {code, *slot};
        return *slot;
    }
    Py_INCREF(code);
    std::lock_guard<EventMutex> lock(tracker::lock());
    uint32_t id = add_code(code, mark_of(code));
    g_code_objects.push_back(code);
    *slot = id;
    recent = {code, id};
    return id;
}

// The same without the GIL and without a reference (tracker lock held): an address seen before
// keeps its id only while its marks are the same, so a code object freed and another allocated
// in its place gets an id of its own.
uint32_t intern_code_walked(PyCodeObject* code) {
    CodeMark mark = mark_of(code);
    auto [slot, inserted] = g_walked_ids.insert(reinterpret_cast<uint64_t>(code));
    if (!inserted && g_codes[*slot].mark == mark) return *slot;
    *slot = add_code(code, mark);
    g_code_objects.push_back(nullptr);  // ids index both tables
    return *slot;
}

int line_of(uint32_t code_id, PyCodeObject* code, int lasti) {
    if (lasti < 0) return code->co_firstlineno < 0 ? 0 : code->co_firstlineno;
    auto [slot, inserted] = g_lines.insert((static_cast<uint64_t>(code_id) << 32) | static_cast<uint32_t>(lasti));
    if (inserted) {
        // Addr2Line reads only the code object's immutable line table: no GIL needed.
        int line = PyCode_Addr2Line(code, lasti);
        *slot = static_cast<uint32_t>(line < 0 ? 0 : line);
    }
    return static_cast<int>(*slot);
}

uint32_t intern_node(uint32_t parent, uint32_t code_id, PyCodeObject* code, int lasti, uint8_t entry) {
    // Entry flags matter only to hybrid stacks: without native stacks they would split nodes
    // (and write NODE records) for nothing.
    uint64_t entry_bit = g_native_run && entry ? 1ULL << 32 : 0;
    EdgeKey key{(static_cast<uint64_t>(parent) << 32) | code_id, entry_bit | static_cast<uint32_t>(lasti)};
    RecentEdge& recent = recent_edge(key);
    if (recent.node && recent.key == key) return recent.node;
    auto [slot, inserted] = g_trie.insert(key);
    if (inserted) {
        int line = line_of(code_id, code, lasti);
        EdgeKey line_key{key.parent_and_frame, entry_bit | static_cast<uint32_t>(line)};
        auto [line_slot, new_line] = g_line_nodes.insert(line_key);
        if (new_line) {
            g_nodes.push_back({parent, code_id, static_cast<uint32_t>(line), entry_bit != 0});
            *line_slot = static_cast<uint32_t>(g_nodes.size());
            tracker::recorder().node(parent, code_id, static_cast<uint64_t>(line), entry_bit != 0);
        }
        *slot = *line_slot;
    }
    recent = {key, *slot};
    return *slot;
}

void push(ShadowStack& stack, PyFrameObject* frame) {
    uint8_t entry = frame_is_entry(frame);
    PyCodeObject* code = PyFrame_GetCode(frame);
    uint32_t code_id = intern_code(code);
    Py_DECREF(code);
    // The old top stops being the top: its cached node may be for an earlier instruction.
    if (!stack.frames.empty() && stack.valid > stack.frames.size() - 1) stack.valid = stack.frames.size() - 1;
    Py_INCREF(frame);
    stack.frames.push_back({frame, nullptr, code_id, 0, 0, INT_MIN, INT_MIN, entry});
}

// The same for a frame seen by sys.monitoring: no frame object, only the interpreter's frame.
void push_live(ShadowStack& stack, const RawFrame& frame) {
    uint32_t code_id = intern_code(frame.code);
    if (!stack.frames.empty() && stack.valid > stack.frames.size() - 1) stack.valid = stack.frames.size() - 1;
    stack.frames.push_back({nullptr, frame.id, code_id, 0, 0, INT_MIN, frame.lasti, frame.entry});
}

// Drops entries [from, end). GIL held.
void truncate(ShadowStack& stack, size_t from) {
    for (size_t i = from; i < stack.frames.size(); ++i) Py_XDECREF(stack.frames[i].frame);
    stack.frames.resize(from);
    if (stack.valid > from) stack.valid = from;
}

// Under sys.monitoring, which tells us of no return: makes the stack end at the live frame
// `innermost` (empty for none), dropping the entries above it, frames that returned, yielded or
// unwound since. False, the stack as it was, if `innermost` is not in it. A frame's address and
// code name it: while a frame runs, no other is at its address. Entries made by push_live hold
// no reference, so no GIL is needed.
bool settle(ShadowStack& stack, const RawFrame* innermost) {
    size_t n = stack.frames.size();
    if (innermost) {
        while (n > 0 && (stack.frames[n - 1].iframe != innermost->id ||
                         g_code_objects[stack.frames[n - 1].code_id] != innermost->code)) {
            --n;
        }
        if (n == 0) return false;
    } else {
        n = 0;
    }
    if (n < stack.frames.size()) truncate(stack, n);
    return true;
}

void pop(ShadowStack& stack, PyFrameObject* frame) {
    // Normally the top. If a return was missed (a profiler swapped out and back), unwind to it.
    size_t n = stack.frames.size();
    while (n > 0 && stack.frames[n - 1].frame != frame) --n;
    if (n == 0) return;
    truncate(stack, n - 1);
}

}  // namespace

int profile_callback(PyObject*, PyFrameObject* frame, int what, PyObject*) {
    if (what != PyTrace_CALL && what != PyTrace_RETURN) return 0;
    if (!tracker::active_relaxed()) return 0;
    GuardScope guard;  // our own vector growth is not the program's allocation
    ThreadState* state = tracker::thread_state();
    if (!state) return 0;
    uint32_t generation = tracker::generation();
    if (state->stack.generation != generation) {
        PyFrameObject* back = PyFrame_GetBack(frame);
        rebuild(state->stack, back, generation);
        Py_XDECREF(back);
        if (what == PyTrace_CALL) push(state->stack, frame);
        return 0;
    }
    if (what == PyTrace_CALL) {
        push(state->stack, frame);
    } else {
        pop(state->stack, frame);
    }
    return 0;
}

// ---- sys.monitoring (3.12+) --------------------------------------------------------------------

namespace {

bool g_chosen = false;      // follow_calls() chose how, for this tracker run
bool g_monitoring = false;  // ... and it is sys.monitoring

// The calling thread's stack from its interpreter frames, under sys.monitoring. GIL held.
void rebuild_live(ShadowStack& stack, std::vector<RawFrame>& live, uint32_t generation) {
    truncate(stack, 0);
    stack.valid = 0;
    stack.generation = generation;
    stack.tstate = PyThreadState_Get();
    walk_this_thread(live);
    for (auto it = live.rbegin(); it != live.rend(); ++it) push_live(stack, *it);
}

#if PY_VERSION_HEX >= 0x030C0000

int g_tool = -1;  // our sys.monitoring tool id, -1 when none is held
long g_events = 0;

// A frame starts or resumes (PY_START, PY_RESUME, PY_THROW): it is the thread's innermost.
void enter(ThreadState* state) {
    ShadowStack& stack = state->stack;
    RawFrame live[2];  // the new frame and its caller: a vector's upkeep was a third of a call's cost
    size_t count = top_two_frames(live);
    if (count == 0) return;
    uint32_t generation = tracker::generation();
    // In step when the frame below the new one is in our stack (above it: frames that returned
    // since): else events were missed (ours are not delivered while another tool's callback
    // runs) or this thread is new to this run.
    if (stack.generation != generation || !settle(stack, count > 1 ? &live[1] : nullptr)) {
        rebuild_live(stack, state->walk.raw, generation);  // the thread's own scratch: no walk runs now
        return;
    }
    if (count > 1) stack.frames.back().calling = live[1].lasti;
    push_live(stack, live[0]);
}

PyObject* on_enter(PyObject*, PyObject* const*, Py_ssize_t) {
    if (tracker::active_relaxed()) {
        GuardScope guard;
        if (ThreadState* state = tracker::thread_state()) enter(state);
    }
    Py_RETURN_NONE;
}

PyMethodDef g_enter_def = {"memprof_enter", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(on_enter)),
                           METH_FASTCALL, nullptr};
struct Event {
    const char* name;
    PyMethodDef* callback;
};
// No event for a frame's return, yield or unwind: the next event or allocation of the thread
// finds the frames above its live innermost gone (settle). A callback per return cost as much as
// one per call, and made the interpreter instrument every return.
const Event kEvents[] = {{"PY_START", &g_enter_def}, {"PY_RESUME", &g_enter_def}, {"PY_THROW", &g_enter_def}};
// Tool ids no convention gives away (0 debugger, 1 coverage, 2 profiler, 5 optimizer): a
// program's cProfile or coverage run must still find its own free.
const int kToolIds[] = {3, 4};

PyObject* monitoring_module() { return PySys_GetObject("monitoring"); }  // borrowed, or null

bool set_monitoring_events(long events) {
    PyObject* result = PyObject_CallMethod(monitoring_module(), "set_events", "il", g_tool, events);
    Py_XDECREF(result);
    if (!result) PyErr_Clear();
    return result != nullptr;
}

void release_tool() {
    if (g_tool < 0) return;
    PyObject* monitoring = monitoring_module();
    set_monitoring_events(0);
    PyObject* events = PyObject_GetAttrString(monitoring, "events");
    for (const Event& event : kEvents) {
        PyObject* bit = events ? PyObject_GetAttrString(events, event.name) : nullptr;
        PyObject* result = bit ? PyObject_CallMethod(monitoring, "register_callback", "iOO", g_tool, bit, Py_None) : nullptr;
        Py_XDECREF(result);
        Py_XDECREF(bit);
    }
    Py_XDECREF(events);
    PyObject* result = PyObject_CallMethod(monitoring, "free_tool_id", "i", g_tool);
    Py_XDECREF(result);
    PyErr_Clear();
    g_tool = -1;
}

// Takes a free tool id and registers our callbacks; false (nothing held) if that cannot be.
bool claim_tool() {
    const char* choice = getenv("MEMPROF_CALLS");
    if (choice && strcmp(choice, "profile") == 0) return false;
    PyObject* monitoring = monitoring_module();
    if (!monitoring) return false;
    for (int id : kToolIds) {
        PyObject* result = PyObject_CallMethod(monitoring, "use_tool_id", "is", id, "pytest-memprof");
        if (result) {
            Py_DECREF(result);
            g_tool = id;
            break;
        }
        PyErr_Clear();  // taken by the program
    }
    if (g_tool < 0) return false;
    PyObject* events = PyObject_GetAttrString(monitoring, "events");
    bool ok = events != nullptr;
    g_events = 0;
    for (const Event& event : kEvents) {
        if (!ok) break;
        PyObject* bit = PyObject_GetAttrString(events, event.name);
        PyObject* callback = bit ? PyCFunction_New(event.callback, nullptr) : nullptr;
        PyObject* result = callback ? PyObject_CallMethod(monitoring, "register_callback", "iOO", g_tool, bit, callback)
                                    : nullptr;
        ok = result != nullptr;
        if (ok) g_events |= PyLong_AsLong(bit);
        Py_XDECREF(result);
        Py_XDECREF(callback);
        Py_XDECREF(bit);
    }
    Py_XDECREF(events);
    if (!ok) {
        PyErr_Clear();
        release_tool();
    }
    return ok;
}

#else

bool claim_tool() { return false; }
void release_tool() {}
bool set_monitoring_events(long) { return false; }
long g_events = 0;

#endif

// ---- PEP 523 frame evaluation (3.9-3.11) -------------------------------------------------------

bool g_evaluating = false;  // ... else our frame evaluation function follows them

// A frame is about to run (pyframes.h): the thread's innermost frame, if any, is its caller.
void enter_evaluated(const RawFrame& frame) {
    if (!g_evaluating || !tracker::active_relaxed()) return;  // not since evaluations_too_deep()
    GuardScope guard;
    ThreadState* state = tracker::thread_state();
    if (!state) return;
    ShadowStack& stack = state->stack;
    RawFrame caller;
    bool called = top_frame(&caller);
    uint32_t generation = tracker::generation();
    // In step when the caller is our top: else this thread is new to this run, or its frames
    // changed unseen (the evaluator was another's for a while, a greenlet switched stacks).
    bool in_step = stack.generation == generation &&
                   (called ? !stack.frames.empty() && stack.frames.back().iframe == caller.id : stack.frames.empty());
    if (!in_step) {
        rebuild_live(stack, state->walk.raw, generation);
    } else if (called) {
        stack.frames.back().calling = caller.lasti;
    }
    push_live(stack, frame);
}

// The frame `id` returned, yielded or raised: normally our top.
void leave_evaluated(const void* id) {
    if (!g_evaluating || !tracker::active_relaxed()) return;
    GuardScope guard;
    ThreadState* state = tracker::thread_state();
    if (!state) return;
    ShadowStack& stack = state->stack;
    if (stack.generation != tracker::generation()) return;
    size_t n = stack.frames.size();
    while (n > 0 && stack.frames[n - 1].iframe != id) --n;
    if (n > 0) truncate(stack, n - 1);
}

void install_profiler_all_threads();
void remove_profiler_all_threads();

// A thread nests more evaluations than a C stack is sure to hold (pyframes.h): from here to the
// end of this run the profile callback follows calls in every thread, each rebuilding its stack.
void evaluations_too_deep() {
    if (!g_evaluating) return;
    GuardScope guard;
    unset_frame_evaluation();
    g_evaluating = false;
    tracker::restart_stacks();
    if (!tracker::active_relaxed()) return;  // resume() follows calls the profile way
    ShadowStack& stack = tracker::thread_state()->stack;
    rebuild(stack, PyEval_GetFrame(), tracker::generation());
    install_profiler_all_threads();
}

// The evaluation function where the profile callback would serve: not with native stacks, whose
// eval frames the hybrid stacks match one to one (ours would stand between each), nor where
// MEMPROF_CALLS asks for the profile callback.
bool claim_evaluation() {
    if (tracker::native()) return false;
    const char* choice = getenv("MEMPROF_CALLS");
    if (choice && strcmp(choice, "profile") == 0) return false;
    return set_frame_evaluation(enter_evaluated, leave_evaluated, evaluations_too_deep);
}

void choose() {
    if (g_chosen) return;
    g_monitoring = claim_tool();
    g_evaluating = !g_monitoring && claim_evaluation();
    g_chosen = true;
}

}  // namespace

void rebuild_current(ShadowStack& stack, uint32_t generation) {
    choose();
    if (g_monitoring || g_evaluating) {
        rebuild_live(stack, tracker::thread_state()->walk.raw, generation);
    } else {
        rebuild(stack, PyEval_GetFrame(), generation);
    }
}

bool g_events_on = false;  // our sys.monitoring events are set (from the first follow to the release)

void follow_calls() {
    choose();
    if (g_monitoring) {
        if (!g_events_on) g_events_on = set_monitoring_events(g_events);
    } else if (g_evaluating) {
        set_frame_evaluation(enter_evaluated, leave_evaluated, evaluations_too_deep);
    } else {
        install_profiler_all_threads();
    }
}

void stop_following_calls() {
    if (!g_chosen) return;
    // sys.monitoring's events stay set while paused, their callbacks doing nothing then: setting
    // them off and on again per test made the interpreter instrument every function it ran
    // afresh after each switch (pytest's own, between tests, too).
    if (g_monitoring) return;
    if (g_evaluating) {
        unset_frame_evaluation();
    } else {
        remove_profiler_all_threads();
    }
}

void release_calls() {
    stop_following_calls();
    release_tool();  // sets our events off
    g_events_on = false;
    g_chosen = false;
    g_monitoring = false;
    g_evaluating = false;
}

const char* calls_followed_by() {
    if (!g_chosen) return "";
    return g_monitoring ? "sys.monitoring" : g_evaluating ? "frame evaluation" : "profile";
}

void thread_started(PyFrameObject* frame) {
    // Walked stacks follow no calls, and sys.monitoring's events and the evaluation function
    // reach every thread by themselves.
    if (tracker::walks() || g_monitoring || g_evaluating) {
        PyEval_SetProfile(nullptr, nullptr);
        return;
    }
    PyEval_SetProfile(profile_callback, nullptr);
    profile_callback(nullptr, frame, PyTrace_CALL, nullptr);
}

void rebuild(ShadowStack& stack, PyFrameObject* top, uint32_t generation) {
    truncate(stack, 0);
    stack.valid = 0;
    stack.generation = generation;
    stack.tstate = PyThreadState_Get();
    std::vector<PyFrameObject*> chain;
    for (PyFrameObject* frame = top; frame;) {
        chain.push_back(frame);
        PyFrameObject* back = PyFrame_GetBack(frame);
        // Borrowed from here on: each caller frame is kept alive by the frame it called.
        Py_XDECREF(back);
        frame = back;
    }
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) push(stack, *it);
}

void detach(ShadowStack& stack, std::vector<PyFrameObject*>& out) {
    for (ShadowFrame& entry : stack.frames) {
        if (entry.frame) out.push_back(entry.frame);
    }
    stack.frames.clear();
    stack.valid = 0;
    stack.generation = 0;
}

bool current_node(ShadowStack& stack, uint32_t* node) {
    // Not rebuilt yet (a thread that has made no Python call since the start).
    if (stack.generation != tracker::generation()) return false;
    *node = 0;
    size_t n = stack.frames.size();
    int top_lasti = INT_MIN;
    if (g_monitoring || g_evaluating) {
        // The live top frame must be our top: else events were missed, and the walk decides.
        RawFrame live;
        if (!top_frame(&live)) {
            if (!g_monitoring) return n == 0;
            settle(stack, nullptr);  // every frame of ours returned since
            return true;
        }
        const ShadowFrame* top = n ? &stack.frames[n - 1] : nullptr;
        if (!top || top->iframe != live.id || g_code_objects[top->code_id] != live.code) {
            if (g_evaluating) {
                // Another evaluator set after ours sees the calls instead: the frames it runs
                // are never our top, so it is asked here and not at every allocation (where our
                // top is live, our frames and their callers are as they were entered).
                if (!frame_evaluation_is_ours()) return false;
                // Our top entry is a frame pushed but not at its first instruction yet: its
                // prologue (cells, the generator of a generator function) runs before it is
                // the interpreter's to show, and what it allocates is its caller's, as a
                // profile callback (whose call event comes at that instruction) has it too.
                const ShadowFrame* caller = n > 1 ? &stack.frames[n - 2] : nullptr;
                if (!caller || caller->iframe != live.id || g_code_objects[caller->code_id] != live.code) return false;
                --n;
            } else if (at_resume(live)) {
                // A frame whose PY_START (or PY_RESUME) has not come yet, at the RESUME where the
                // interpreter instruments its code for those very events.
                *node = kNotTheProgram;
                return true;
            } else if (settle(stack, &live)) {
                n = stack.frames.size();  // the frames above the live one returned since our last event
            } else {
                return false;
            }
        }
        top_lasti = live.lasti;
    } else if (!stack.tstate || stack.tstate->c_profilefunc != profile_callback) {
        return false;  // someone else's profiler replaced ours: pushes and pops are not seen
    }
#if PY_VERSION_HEX >= 0x030B0000
    else if (new_frame_at_resume(stack.tstate, n ? frame_id(stack.frames[n - 1].frame) : nullptr)) {
        // The same under the profile function: a new frame is pushed at its call event, which
        // comes after the interpreter readied its code for it.
        *node = kNotTheProgram;
        return true;
    }
#endif
    if (n == 0) return true;
    uint32_t parent = stack.valid == 0 ? 0 : stack.frames[stack.valid - 1].node;
    for (size_t i = stack.valid; i < n; ++i) {
        ShadowFrame& entry = stack.frames[i];
        int lasti = !entry.frame ? (i + 1 == n ? top_lasti : entry.calling) : frame_lasti(entry.frame);
        if (entry.node == 0 || entry.lasti != lasti || entry.parent != parent) {
            entry.lasti = lasti;
            entry.parent = parent;
            entry.node = intern_node(parent, entry.code_id, g_code_objects[entry.code_id], lasti, entry.entry);
        }
        parent = entry.node;
    }
    stack.valid = n - 1;
    *node = parent;
    return true;
}

uint32_t walked_node(FrameWalk& walk) {
    if (walk.generation != tracker::generation()) {
        walk.cache.clear();  // node ids of an earlier run
        walk.generation = tracker::generation();
    }
    walk_this_thread(walk.raw);
    size_t n = walk.raw.size();
    size_t known = walk.cache.size();
    walk.cache.resize(n);
    // Bottom up: the caller frames are mostly those of the previous allocation, and their nodes
    // stand as long as every frame below them, and their own instruction, are unchanged.
    uint32_t parent = 0;
    bool same = true;
    for (size_t i = 0; i < n; ++i) {
        const RawFrame& frame = walk.raw[n - 1 - i];
        WalkedFrame& entry = walk.cache[i];
        bool same_code = i < known && entry.code == frame.code && g_codes[entry.code_id].mark == mark_of(frame.code);
        same = same && same_code && entry.lasti == frame.lasti && entry.entry == frame.entry;
        if (!same) {
            uint32_t code_id = same_code ? entry.code_id : intern_code_walked(frame.code);
            entry = {frame.code, frame.lasti, frame.entry, code_id,
                     intern_node(parent, code_id, frame.code, frame.lasti, frame.entry)};
        }
        parent = entry.node;
    }
    return parent;
}

namespace {

void install_profiler_all_threads() {
#if PY_VERSION_HEX >= 0x030C0000
    PyEval_SetProfileAllThreads(profile_callback, nullptr);
#else
    PyThreadState* current = PyThreadState_Get();
    PyEval_SetProfile(profile_callback, nullptr);
    PyInterpreterState* interp = PyThreadState_GetInterpreter(current);
    for (PyThreadState* other = PyInterpreterState_ThreadHead(interp); other; other = PyThreadState_Next(other)) {
        if (other == current) continue;
        // What PyEval_SetProfile does for the calling thread, done for another one: that API
        // only exists for all threads from 3.12 on.
        PyObject* old = other->c_profileobj;
        other->c_profilefunc = profile_callback;
        other->c_profileobj = nullptr;
        Py_XDECREF(old);
#if PY_VERSION_HEX >= 0x030B0000
        other->cframe->use_tracing = 255;
#elif PY_VERSION_HEX >= 0x030A0000
        other->cframe->use_tracing = 1;
#else
        other->use_tracing = 1;
#endif
    }
#endif
}

void remove_profiler_all_threads() {
#if PY_VERSION_HEX >= 0x030C0000
    PyEval_SetProfileAllThreads(nullptr, nullptr);
#else
    PyThreadState* current = PyThreadState_Get();
    PyEval_SetProfile(nullptr, nullptr);
    PyInterpreterState* interp = PyThreadState_GetInterpreter(current);
    for (PyThreadState* other = PyInterpreterState_ThreadHead(interp); other; other = PyThreadState_Next(other)) {
        if (other == current || other->c_profilefunc != profile_callback) continue;
        other->c_profilefunc = nullptr;
        bool tracing = other->c_tracefunc != nullptr;
#if PY_VERSION_HEX >= 0x030B0000
        other->cframe->use_tracing = tracing ? 255 : 0;
#elif PY_VERSION_HEX >= 0x030A0000
        other->cframe->use_tracing = tracing;
#else
        other->use_tracing = tracing;
#endif
    }
#endif
}

}  // namespace

// ---- Python allocator domains -------------------------------------------------------------

namespace {

struct Domain {
    PyMemAllocatorDomain domain;
    uint8_t malloc_kind, calloc_kind, realloc_kind, free_kind;
    PyMemAllocatorEx original;
    bool installed;
};

Domain g_domains[] = {
    {PYMEM_DOMAIN_RAW, PY_RAW_MALLOC, PY_RAW_CALLOC, PY_RAW_REALLOC, PY_RAW_FREE, {}, false},
    {PYMEM_DOMAIN_MEM, PY_MEM_MALLOC, PY_MEM_CALLOC, PY_MEM_REALLOC, PY_MEM_FREE, {}, false},
    {PYMEM_DOMAIN_OBJ, PY_OBJ_MALLOC, PY_OBJ_CALLOC, PY_OBJ_REALLOC, PY_OBJ_FREE, {}, false},
};

void* py_malloc(void* ctx, size_t size) {
    auto* d = static_cast<Domain*>(ctx);
    if (tracker::passes_through()) return d->original.malloc(d->original.ctx, size);
    GuardScope guard;  // pymalloc's arenas and PyMem_Raw* underneath are this same allocation
    void* result = d->original.malloc(d->original.ctx, size);
    if (result) tracker::on_alloc(d->malloc_kind, result, size, MEMPROF_HOOK_FRAME);
    return result;
}

void* py_calloc(void* ctx, size_t count, size_t size) {
    auto* d = static_cast<Domain*>(ctx);
    if (tracker::passes_through()) return d->original.calloc(d->original.ctx, count, size);
    GuardScope guard;
    void* result = d->original.calloc(d->original.ctx, count, size);
    if (result) tracker::on_alloc(d->calloc_kind, result, count * size, MEMPROF_HOOK_FRAME);
    return result;
}

void* py_realloc(void* ctx, void* ptr, size_t size) {
    auto* d = static_cast<Domain*>(ctx);
    if (tracker::passes_through()) return d->original.realloc(d->original.ctx, ptr, size);
    GuardScope guard;
    void* result = d->original.realloc(d->original.ctx, ptr, size);
    if (result) {
        if (ptr) tracker::on_free(d->free_kind, ptr);
        tracker::on_alloc(d->realloc_kind, result, size, MEMPROF_HOOK_FRAME);
    }
    return result;
}

void py_free(void* ctx, void* ptr) {
    auto* d = static_cast<Domain*>(ctx);
    if (!ptr || tracker::passes_through()) return d->original.free(d->original.ctx, ptr);
    GuardScope guard;
    // Recorded before the real free: afterwards another thread may be handed the same address
    // and record its allocation first.
    tracker::on_free(d->free_kind, ptr);
    d->original.free(d->original.ctx, ptr);
}

}  // namespace

void install_allocator_hooks() {
    for (Domain& d : g_domains) {
        if (d.installed) continue;
        PyMem_GetAllocator(d.domain, &d.original);
        PyMemAllocatorEx ours = {&d, py_malloc, py_calloc, py_realloc, py_free};
        PyMem_SetAllocator(d.domain, &ours);
        d.installed = true;
    }
}

void remove_allocator_hooks() {
    for (Domain& d : g_domains) {
        if (!d.installed) continue;
        PyMem_SetAllocator(d.domain, &d.original);
        d.installed = false;
    }
}

void reset_tables() {
    release_code_objects();
    std::lock_guard<EventMutex> lock(tracker::lock());
    g_codes.clear();
    g_trie.clear();
    std::fill(std::begin(g_recent_edges), std::end(g_recent_edges), RecentEdge{});
    g_native_run = tracker::native();
    g_line_nodes.clear();
    g_lines.clear();
    g_nodes.clear();
}

void release_code_objects() {
    std::vector<PyCodeObject*> objects;
    {
        std::lock_guard<EventMutex> lock(tracker::lock());
        objects.swap(g_code_objects);
        g_code_ids.clear();
        std::fill(std::begin(g_recent_codes), std::end(g_recent_codes), RecentCode{});
        g_walked_ids.clear();
    }
    for (PyCodeObject* code : objects) Py_XDECREF(code);
}

void emit_tables(Recorder& recorder) {
    for (const CodeInfo& code : g_codes) recorder.frame(code.function, code.file, code.firstlineno);
    for (const NodeInfo& node : g_nodes) recorder.node(node.parent, node.frame, node.line, node.entry);
}

}  // namespace memprof::pystack
