// The process-wide tracker: start/stop, per-thread state, and the entry points the hooks call.
//
// Threads and locks. `lock()` serialises everything that writes to the stream (events, frames,
// nodes, samples) and the stack trie. Per-thread state (the shadow Python stack) is touched only
// by its own thread. The hooks call on_* with the thread's re-entrancy guard set, so anything
// the tracker allocates on their behalf is not recorded.
#pragma once

#include <Python.h>
#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "event_mutex.h"
#include "follower.h"
#include "nativestack.h"
#include "pystack.h"

namespace memprof {

// Set while this thread runs tracker code (hooks, profile callback): nested allocations, and
// any allocation by the tracker itself, pass straight to the real allocator. Initial-exec TLS
// keeps the check to one load; the two variables fit the surplus static TLS glibc reserves.
// __thread, not thread_local: a thread_local defined in another file may need dynamic
// initialisation for all this one knows, so every use went through a check for its TLS init
// function (a GOT load, a test and a branch each time, and a frame for every hook).
extern __thread bool t_guard __attribute__((tls_model("initial-exec")));

struct GuardScope {
    bool saved;
    GuardScope() : saved(t_guard) { t_guard = true; }
    ~GuardScope() { t_guard = saved; }
};

struct ThreadState {
    uint64_t tid = 0;
    pthread_t handle{};
    ShadowStack stack;  // Python's allocators traced: kept by the profile callback
    FrameWalk walk;     // system allocator only: walked at each allocation
    NativeCache native_stack;
};

struct Options {
    std::string path;         // capture file; empty for the memory sink
    std::string header_json;  // header without "pid" (added here, also in a followed child)
    bool native = false;
    bool trace_python_allocators = true;
    bool follow_fork = false;
    // Memory sink only: SIGTERM and SIGINT wait for the aggregated capture (set_signal_wakeup).
    bool defer_signals = false;
};

namespace tracker {

// Sets this thread's guard from Python (the binding's own bookkeeping is not the program's).
inline void set_guard(bool value) { t_guard = value; }

// Python-facing; called with the GIL held.
bool start(const Options& options, std::string* error);
std::string stop();
bool is_started();  // started and not stopped, paused or not
// Between pytest tests: stop recording and profiling (hooks stay patched and pass through),
// then start again with a fresh delta state so each window decodes on its own.
void pause();
void resume();
// Memory sink: the records written since the last drain; without `with_followed`, only those
// after what the follower was handed (drained_followed() is then 0).
std::string drain(bool with_followed = true);
// Memory sink: each buffer of records goes to `follower(context, data, len)` as it fills, on a
// thread of the tracker's own (guarded: what it allocates is not recorded), while the program
// runs; null stops that, after the follower finished what it had. drain() still returns every
// record, and drained_followed() how many bytes at its start the follower was handed.
void follow(Follower follower, void* context);
size_t drained_followed();
void mark(uint64_t id, const std::string& label);
void set_thread_name(uint64_t tid, const std::string& name);
uint64_t current_tid();
// How the running tracker knows Python stacks: "sys.monitoring", "profile" (the profile
// callback), "walk" (frames walked at each allocation), or "" when none runs.
const char* python_stacks();
void thread_started(PyFrameObject* frame);
// os.fork() from Python (os.register_at_fork): join our threads before, restart them after in
// the parent. A fork from C skips these and relies on the pthread_atfork handlers alone.
void before_fork();
void after_fork_parent();
// Run at _exit() (os._exit, a multiprocessing child's end) while tracking into memory, before
// the process ends: the binding's way to write an aggregated capture whole. Null: none.
using ExitHook = void (*)();
void set_exit_hook(ExitHook hook);

// Aggregating, SIGTERM and SIGINT (where their action is the default) are deferred while the
// capture is written (tracker.cc explains how). The aggregator's pipe, written once per signal;
// -1: none.
void set_signal_wakeup(int fd);
int pending_signal();  // the deferred signal, or 0
// Stops recording for good and ends the memory stream with its trailer, leaving the hooks in
// place: the process is about to die of the pending signal, so nothing needs undoing.
void finish_before_signal();
// After stop(), once the aggregated capture is written: SIGTERM and SIGINT act at once again.
void end_signal_deferral();
// Ends the process with the default action of the deferred signal, if one is pending.
void die_of_pending_signal();

// A hook's own frame, as the hook sees it: the unwinder starts at the hook's caller instead of
// walking the tracker's frames and the hook's (about a third of an unwind's steps). Zero: unknown.
struct HookFrame {
    uintptr_t return_address = 0;  // into the hook's caller
    uintptr_t frame = 0;           // the hook's frame pointer (it saved rbp there, the return address above)
};
// In a hook, at its call of on_alloc. __builtin_frame_address(0) gives the hook a frame pointer.
#define MEMPROF_HOOK_FRAME                                                      \
    ::memprof::tracker::HookFrame {                                             \
        reinterpret_cast<uintptr_t>(__builtin_return_address(0)),               \
            reinterpret_cast<uintptr_t>(__builtin_frame_address(0))             \
    }

// The first thing a sink's own thread runs (tracker_sink.cc): guarded, and deaf to the signals
// that flush a capture.
void guard_sink_thread();

// Called by the hooks with t_guard set.
void on_alloc(uint8_t kind, void* address, size_t size, HookFrame hook = {});
void on_free(uint8_t kind, void* address);
void on_munmap(void* address, size_t length);
void on_dlopen();
void on_dlclose();
void on_exit();
void on_thread_name(pthread_t thread, const char* name);

// Recording events: neither paused nor stopped. Out here rather than in the tracker's state so
// that every hook, in whichever file, reads it with one load and no call: a paused tracker is
// asked once per allocation, and pytest's own work between tests is most of them.
extern std::atomic<bool> g_active;
inline bool active_relaxed() { return g_active.load(std::memory_order_relaxed); }
// What every allocation hook asks first: pass straight through when this thread is inside
// tracker code already, or when nothing is being recorded (paused between tests, where pytest's
// own work would otherwise take the thread's state and the lock per event for nothing).
inline bool passes_through() { return t_guard || !active_relaxed(); }
bool native();  // this run records native stacks
bool walks();   // this run walks Python frames at each allocation instead of profiling calls
// Bumped when every shadow stack goes stale (restart_stacks, a start, a resume): asked at each
// allocation and call, so inline, as g_active is.
extern std::atomic<uint32_t> g_generation;
inline uint32_t generation() { return g_generation.load(std::memory_order_relaxed); }
// Every thread's shadow stack is stale from now on: each rebuilds its own (calls are followed
// another way now). GIL held.
void restart_stacks();
ThreadState* new_thread_state();  // the calling thread's first: made and registered
extern __thread ThreadState* t_state __attribute__((tls_model("initial-exec")));  // __thread: see t_guard
// The calling thread's state, made on first use. Inline: every event asks for it.
inline ThreadState* thread_state() { return __builtin_expect(t_state != nullptr, 1) ? t_state : new_thread_state(); }
EventMutex& lock();
class Recorder& recorder();

}  // namespace tracker
}  // namespace memprof
