#include "tracker.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <thread>
#include <unordered_map>

#include "arena_cache.h"
#include "hooks.h"
#include "recorder.h"

namespace memprof {

__thread bool t_guard __attribute__((tls_model("initial-exec"))) = false;

namespace tracker {

__thread ThreadState* t_state __attribute__((tls_model("initial-exec"))) = nullptr;
std::atomic<bool> g_active{false};  // see State: static, so never destroyed either
std::atomic<uint32_t> g_generation{0};  // the same

namespace {
// Set in the forking thread from our prepare handler to the parent's or child's: it then holds
// the tracker lock, while the other atfork handlers still run and may allocate and free
// (OpenBLAS's joins its threads, and pthread_join frees their TLS). Their events are recorded
// under the lock this thread already holds, instead of waiting for it forever.
thread_local bool t_forking __attribute__((tls_model("initial-exec"))) = false;

// One instance for the life of the process, never destroyed: a hook may still be running in
// another thread while the tracker stops, and must find a valid lock (and g_active).
struct State {
    EventMutex lock;
    bool running = false;              // started and not stopped (possibly paused); GIL held
    Recorder recorder;
    Options options;
    bool native = false;  // options.native, set before recording starts and read by the hooks
    bool walk = false;    // Python stacks walked at each allocation (pystack.h), same
    // From start to stop, paused or not: a library loaded meanwhile gets our hooks too, or its
    // allocations would go unseen for the rest of the run.
    std::atomic<bool> hooked{false};
    bool maps_stale = false;  // lock held: a library came or went while paused; resume records them
    bool memory_sink = false;
    std::atomic<ExitHook> exit_hook{nullptr};  // set_exit_hook(): run at _exit() with a memory sink
    uint64_t last_tid = 0;
    std::chrono::steady_clock::time_point started;
    std::string leftover;  // memory sink: records written by stop() after the last drain
    size_t leftover_followed = 0;  // bytes at the start of leftover a follower had (follow())
    size_t drained_followed = 0;   // the same of what the last drain returned
    bool followed = false;         // lock held: the memory sink has a follower

    // Sampler thread: RSS and time every 10 ms, and a flush every 100 ms.
    std::thread* sampler = nullptr;  // a pointer: in a fork child it refers to nothing
    std::atomic<long> sampler_tid{0};
    std::mutex sampler_lock;
    std::condition_variable sampler_wake;
    bool sampler_stop = false;

    pthread_key_t thread_key;
    std::unordered_map<uint64_t, std::string> pending_names;  // pthread handle -> name
    std::unordered_map<uint64_t, uint64_t> tids;              // pthread handle -> tid
    std::vector<ThreadState*> states;                         // every live thread's state
};

State* g = nullptr;
pthread_once_t g_once = PTHREAD_ONCE_INIT;

uint64_t now_ms() {
    auto elapsed = std::chrono::steady_clock::now() - g->started;
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count());
}

uint64_t read_rss(int fd) {
    char buffer[128];
    ssize_t n = fd >= 0 ? pread(fd, buffer, sizeof(buffer) - 1, 0) : -1;
    if (n <= 0) return 0;
    buffer[n] = '\0';
    unsigned long long size = 0, resident = 0;
    if (sscanf(buffer, "%llu %llu", &size, &resident) != 2) return 0;
    return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

void destroy_thread_state(void* raw) {
    GuardScope guard;
    auto* state = static_cast<ThreadState*>(raw);
    if (g) {
        std::lock_guard<EventMutex> lock(g->lock);
        g->tids.erase(static_cast<uint64_t>(state->handle));
        g->states.erase(std::remove(g->states.begin(), g->states.end(), state), g->states.end());
    }
    if (t_state == state) t_state = nullptr;
    // Frames still referenced here (only if this thread's returns were missed) are leaked on
    // purpose: dropping a reference needs the GIL, which a dying thread may not hold.
    delete state;
}

// Switches the stream to `tid` if the previous event came from another thread. Lock held.
inline void switch_thread(uint64_t tid) {
    if (tid != g->last_tid) {
        g->recorder.thread(tid);
        g->last_tid = tid;
    }
}

// The signals after which a capture would lose what is buffered. SIGKILL cannot be caught: the
// sampler's flush interval bounds its loss instead.
constexpr int kFlushSignals[] = {SIGSEGV, SIGBUS, SIGABRT, SIGTERM, SIGINT};
struct sigaction g_previous[NSIG];
bool g_installed[NSIG];

void flush_for_signal() {
    if (!g || !g_active.load(std::memory_order_relaxed) || g->memory_sink) return;
    bool was_guarded = t_guard;
    t_guard = true;
    // A thread inside the tracker (guarded) may hold the lock itself, mid-record: one try then.
    // Any other thread holds it for a few microseconds: wait for it, a bounded time.
    bool locked = g->lock.try_lock();
    for (int tries = 0; !locked && !was_guarded && tries < 200; ++tries) {
        struct timespec pause = {0, 1000000};
        nanosleep(&pause, nullptr);
        locked = g->lock.try_lock();
    }
    if (locked) {
        if (g_active.load(std::memory_order_relaxed)) g->recorder.flush_in_signal();
        g->lock.unlock();
    }
    t_guard = was_guarded;
}

// Flushes, then does what the signal would have done without us: the program's own handler, or
// the default action (the process dies of the signal: its exit status stays the signal's).
void on_flush_signal(int signo, siginfo_t* info, void* context) {
    int saved_errno = errno;
    flush_for_signal();
    errno = saved_errno;
    const struct sigaction& previous = g_previous[signo];
    if (previous.sa_flags & SA_SIGINFO) {
        if (previous.sa_sigaction) previous.sa_sigaction(signo, info, context);
        return;
    }
    if (previous.sa_handler == SIG_IGN) return;
    if (previous.sa_handler != SIG_DFL) {
        previous.sa_handler(signo);
        return;
    }
    struct sigaction fallback;
    memset(&fallback, 0, sizeof(fallback));
    fallback.sa_handler = SIG_DFL;
    sigaction(signo, &fallback, nullptr);
    raise(signo);  // blocked while this handler runs: delivered, by default, when it returns
}

void install_signal_flush() {
    for (int signo : kFlushSignals) {
        if (g_installed[signo]) continue;
        struct sigaction ours;
        memset(&ours, 0, sizeof(ours));
        ours.sa_sigaction = on_flush_signal;
        ours.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
        sigemptyset(&ours.sa_mask);
        if (sigaction(signo, &ours, &g_previous[signo]) == 0) g_installed[signo] = true;
    }
}

void remove_signal_flush() {
    for (int signo : kFlushSignals) {
        if (!g_installed[signo]) continue;
        struct sigaction current;
        // Put the previous handler back only if ours is still there (the program may have set its own since).
        if (sigaction(signo, nullptr, &current) == 0 && (current.sa_flags & SA_SIGINFO) &&
            current.sa_sigaction == on_flush_signal) {
            sigaction(signo, &g_previous[signo], nullptr);
        }
        g_installed[signo] = false;
    }
}

// Aggregating (memory sink), the capture is written by Python (aggregate.py), which cannot run in a
// signal handler. So SIGTERM and SIGINT, where they would kill the process by default, are
// deferred: the handler notes the signal and wakes the aggregator thread through its pipe; that
// thread writes the capture whole, then dies of the signal (die_of_pending_signal). The sampler
// is the watchdog: a capture not written within kDeferLimitNs (the GIL held by a long C call,
// say) dies of the signal anyway, leaving the last snapshot. A program's own handler, set before
// or after us, is left to do what it does: one that exits normally gets its capture at atexit.
constexpr int kDeferSignals[] = {SIGTERM, SIGINT};
constexpr int64_t kDeferLimitNs = 2'000'000'000;
bool g_deferring[NSIG];                      // our handler is installed for this signal
std::atomic<bool> g_defer_watched{false};    // a sampler runs here to enforce the limit
std::atomic<int> g_wake_fd{-1};              // the aggregator's pipe (write end); -1: none yet
std::atomic<int> g_pending_signal{0};        // the deferred signal, 0 if none
std::atomic<int64_t> g_pending_since_ns{0};  // CLOCK_MONOTONIC when it came

int64_t monotonic_ns() {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);  // async-signal-safe
    return static_cast<int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

// The default action of `signo`, now, from any thread (the sampler blocks it: unblocked here).
void die_of(int signo) {
    struct sigaction fallback;
    memset(&fallback, 0, sizeof(fallback));
    fallback.sa_handler = SIG_DFL;
    sigaction(signo, &fallback, nullptr);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signo);
    pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    raise(signo);  // unblocked: delivered, and the process ended, before raise returns
}

void on_deferred_signal(int signo) {
    int saved_errno = errno;
    // In a process no sampler watches (a fork child not followed, which inherited this handler),
    // nothing would ever end the wait: the signal does at once what it would have done.
    if (!g_defer_watched.load()) die_of(signo);
    int none = 0;
    if (g_pending_signal.compare_exchange_strong(none, signo)) g_pending_since_ns.store(monotonic_ns());
    int fd = g_wake_fd.load();
    if (fd >= 0) {
        char byte = 1;
        ssize_t written = write(fd, &byte, 1);  // full pipe: the aggregator is being woken anyway
        (void)written;
    }
    errno = saved_errno;
}

void install_signal_defer() {
    for (int signo : kDeferSignals) {
        struct sigaction current;
        if (sigaction(signo, nullptr, &current) != 0) continue;
        if ((current.sa_flags & SA_SIGINFO) || current.sa_handler != SIG_DFL) continue;  // the program's, or ignored
        struct sigaction ours;
        memset(&ours, 0, sizeof(ours));
        ours.sa_handler = on_deferred_signal;
        ours.sa_flags = SA_RESTART;  // the program's blocking calls go on until we end the process
        sigemptyset(&ours.sa_mask);
        if (sigaction(signo, &ours, nullptr) == 0) g_deferring[signo] = true;
    }
    g_defer_watched = true;
}

void remove_signal_defer() {
    for (int signo : kDeferSignals) {
        if (!g_deferring[signo]) continue;
        struct sigaction current;
        // Put the default back only if ours is still there (the program may have set its own since).
        if (sigaction(signo, nullptr, &current) == 0 && !(current.sa_flags & SA_SIGINFO) &&
            current.sa_handler == on_deferred_signal) {
            struct sigaction fallback;
            memset(&fallback, 0, sizeof(fallback));
            fallback.sa_handler = SIG_DFL;
            sigaction(signo, &fallback, nullptr);
        }
        g_deferring[signo] = false;
    }
    g_defer_watched = false;
}

// The sampler's check, every 10 ms: a deferred signal whose capture is late ends the process.
void enforce_defer_limit() {
    int signo = g_pending_signal.load();
    if (signo && monotonic_ns() - g_pending_since_ns.load() >= kDeferLimitNs) die_of(signo);
}

// Asynchronous flush signals go to a thread of the program, never to ours: the handler waits for
// our writer thread, and the sampler may hold the tracker lock.
void block_flush_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

// How long the sampler lets records wait in the buffer: short at first, so a program killed
// (SIGKILL) soon after it started keeps nearly everything, then growing to 100 ms (one flush, one
// small block, per interval): a twentieth of the time tracked so far.
std::chrono::milliseconds flush_interval(std::chrono::steady_clock::duration tracked) {
    auto twentieth = std::chrono::duration_cast<std::chrono::milliseconds>(tracked) / 20;
    return std::max(std::chrono::milliseconds(10), std::min(std::chrono::milliseconds(100), twentieth));
}

void sampler_main() {
    g->sampler_tid.store(kernel_tid());
    t_guard = true;  // this thread's own allocations are never the program's
    block_flush_signals();
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    auto last_flush = std::chrono::steady_clock::now();
    for (;;) {
        {
            std::unique_lock<std::mutex> wait_lock(g->sampler_lock);
            if (g->sampler_wake.wait_for(wait_lock, std::chrono::milliseconds(10), [] { return g->sampler_stop; })) break;
        }
        enforce_defer_limit();  // before the tracker lock, which a stuck thread might hold
        uint64_t rss = read_rss(fd);
        std::lock_guard<EventMutex> lock(g->lock);
        if (!g_active.load(std::memory_order_relaxed)) continue;
        g->recorder.sample(now_ms(), rss);
        auto now = std::chrono::steady_clock::now();
        // A followed memory sink's follower replays what a flush hands it while the program runs:
        // a test of 50 ms leaves it little at its end.
        auto interval = g->memory_sink ? std::chrono::milliseconds(20) : flush_interval(now - g->started);
        if ((!g->memory_sink || g->followed) && now - last_flush >= interval) {
            g->recorder.flush();
            last_flush = now;
        }
    }
    if (fd >= 0) close(fd);
}

// Drops every thread's shadow stack, after recording stopped (GIL held): without our profiler
// the stacks would go stale and keep finished frames, and their locals, alive.
void release_stacks() {
    std::vector<PyFrameObject*> frames;
    {
        std::lock_guard<EventMutex> lock(g->lock);
        for (ThreadState* state : g->states) pystack::detach(state->stack, frames);
    }
    // Outside the lock: a frame's locals may run __del__ code.
    for (PyFrameObject* frame : frames) Py_DECREF(frame);
}

void start_sampler() {
    g->sampler_stop = false;
    g->sampler = new std::thread(sampler_main);
}

// Asks the sampler to end without waiting for it: once recording is off it takes no lock and
// writes nothing more, so stop() does its own work while the thread ends, then joins it.
void request_sampler_stop() {
    if (!g->sampler) return;
    {
        std::lock_guard<std::mutex> lock(g->sampler_lock);
        g->sampler_stop = true;
    }
    g->sampler_wake.notify_all();
}

void join_sampler() {
    if (!g->sampler) return;
    join_until_gone(*g->sampler, g->sampler_tid);
    g->sampler_tid.store(0);
    delete g->sampler;
    g->sampler = nullptr;
}

void stop_sampler() {
    request_sampler_stop();
    join_sampler();
}

std::string header_with_pid(const std::string& header_json) {
    // The Python layer writes everything but the pid, which a followed child must change.
    std::string pid = "{\"pid\": " + std::to_string(getpid());
    if (header_json.size() < 2) return pid + "}";
    return pid + ", " + header_json.substr(1);
}

std::unique_ptr<Sink> open_file_sink(const std::string& path, bool threaded, std::string* error) {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        *error = "cannot create capture file " + path + ": " + strerror(errno);
        return nullptr;
    }
    uint16_t version = kFormatVersion;
    return make_file_sink(fd, header_with_pid(g->options.header_json), version, threaded, error);
}

// The pthread_atfork handlers cover every fork, including one made from C. Lock order: the
// patch lock, then the tracker lock (patch_all never takes the tracker lock while it holds its
// own). Holding both across fork() means the child inherits them free and its stream and GOT in
// a consistent state.
void fork_prepare() {
    if (!g) return;
    hooks::lock_patching();
    g->lock.lock();
    t_forking = true;
}

void fork_parent() {
    if (!g) return;
    t_forking = false;
    g->lock.unlock();
    hooks::unlock_patching();
}

void fork_child() {
    if (!g) return;
    t_forking = false;
    g->lock.unlock();  // the forking thread took it in prepare; it is this thread here
    hooks::unlock_patching();
    // The sampler thread does not exist here: leak its object, never join it. Its mutex and
    // condition variable may have been mid-use by that thread at the fork: start them afresh.
    g->sampler = nullptr;
    new (&g->sampler_lock) std::mutex();
    new (&g->sampler_wake) std::condition_variable();
    // The parent's pipe and deferred signal are not this process's. With no sampler here to
    // watch, a deferred signal would wait forever: until one starts below, signals act at once.
    g_wake_fd = -1;
    g_pending_signal = 0;
    g_defer_watched = false;
    if (!g_active.load() || !g->options.follow_fork) remove_signal_defer();  // a child we do not track
    if (!g_active.load()) return;
    GuardScope guard;
    std::lock_guard<EventMutex> lock(g->lock);
    g->recorder.abandon();  // the parent's stream: its fd and writer thread are not ours
    g->tids.clear();
    if (!g->options.follow_fork) {
        g_active = false;
        return;
    }
    std::unique_ptr<Sink> sink;
    if (g->memory_sink) {
        // Aggregating: the child's own aggregator (started by Python's after-fork hook) drains
        // this; what the parent had not drained yet is the parent's.
        g->leftover.clear();
        sink = make_memory_sink();
    } else {
        std::string error;
        std::string path = g->options.path + "." + std::to_string(getpid());
        // Unthreaded: the child may be short-lived and end in _exit, and each thread we start here
        // is one more a Python 3.12+ child would warn about if it forks again.
        sink = open_file_sink(path, /*threaded=*/false, &error);
        if (!sink) {
            g_active = false;
            return;
        }
    }
    g->recorder.open(std::move(sink));
    g->followed = false;
    if (!g->memory_sink) g->recorder.sync_blocks();
    g->last_tid = 0;
    pystack::emit_tables(g->recorder);
    nativestack::emit_tables(g->recorder);
    g->sampler_stop = false;
    g->sampler = new std::thread(sampler_main);
    // The child's own aggregator (Python's after-fork hook, next) hands over its pipe.
    if (g->memory_sink && g->options.defer_signals) g_defer_watched = true;
}

void init_once() {
    g = new State();
    pthread_key_create(&g->thread_key, destroy_thread_state);
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

}  // namespace

bool native() { return g->native; }
bool walks() { return g->walk; }
void restart_stacks() { g_generation.fetch_add(1); }
EventMutex& lock() { return g->lock; }
Recorder& recorder() { return g->recorder; }

ThreadState* new_thread_state() {
    if (t_state) return t_state;
    GuardScope guard;
    auto* state = new ThreadState();
    state->tid = static_cast<uint64_t>(syscall(SYS_gettid));
    state->handle = pthread_self();
    t_state = state;
    pthread_setspecific(g->thread_key, state);
    std::lock_guard<EventMutex> lock(g->lock);
    uint64_t handle = static_cast<uint64_t>(state->handle);
    g->tids[handle] = state->tid;
    g->states.push_back(state);
    auto pending = g->pending_names.find(handle);
    if (pending != g->pending_names.end()) {
        if (g_active) g->recorder.thread_name(state->tid, pending->second);
        g->pending_names.erase(pending);
    }
    return state;
}

uint64_t current_tid() {
    pthread_once(&g_once, init_once);
    return thread_state()->tid;
}

bool is_started() { return g && g->running; }

const char* python_stacks() {
    if (!is_started()) return "";
    if (g->walk) return "walk";
    return pystack::calls_followed_by();
}

void pause() {
    if (!g || !g->running || !g_active) return;
    GuardScope guard;
    {
        std::lock_guard<EventMutex> lock(g->lock);
        // A sample at each end of a window (pause, resume) bounds it to the millisecond: a test
        // shorter than the sampler's 10 ms still has its own start, end and duration. RSS 0: not
        // read here (a file read per test), and readers take 0 as "not sampled".
        g->recorder.sample(now_ms(), 0);
        g_active = false;
    }
    if (g->walk) return;
    pystack::stop_following_calls();
    release_stacks();
}

void resume() {
    if (!g || !g->running || g_active) return;
    GuardScope guard;
    // Read without the lock (it takes the loader's); a library loaded after this read records
    // its mappings itself, as recording is then on.
    std::vector<nativestack::Mapping> maps;
    bool refresh_maps = g->native && g->maps_stale;
    if (refresh_maps) maps = nativestack::read_maps();
    {
        std::lock_guard<EventMutex> lock(g->lock);
        if (refresh_maps) {
            nativestack::emit_maps(g->recorder, std::move(maps));
            g->maps_stale = false;
        }
        g->recorder.restart_deltas();
        g->last_tid = 0;
        // Stacks were not followed while paused: every thread rebuilds its own.
        g_generation.fetch_add(1);
        g->recorder.sample(now_ms(), 0);  // the window's start (see pause)
        g_active = true;
    }
    if (g->walk) return;
    ThreadState* state = thread_state();
    pystack::rebuild_current(state->stack, generation());
    pystack::follow_calls();
}

bool start(const Options& options, std::string* error) {
    pthread_once(&g_once, init_once);
    if (g->running) {
        *error = "a tracker is already active in this process; stop it before starting another";
        return false;
    }
    const char* missing = nullptr;
    if (!hooks::resolve_originals(&missing)) {
        *error = std::string("cannot resolve the allocator function ") + (missing ? missing : "?");
        return false;
    }
    GuardScope guard;
    end_signal_deferral();  // the previous run's, if its capture was never written
    g->options = options;
    g->native = options.native;
    g->walk = !options.trace_python_allocators;
    g->memory_sink = options.path.empty();
    // Before the lock: listing the loaded objects takes the loader's lock, which a thread inside
    // dlopen holds while its allocations wait for ours.
    std::vector<nativestack::Mapping> maps;
    if (options.native) maps = nativestack::read_maps();
    g->started = std::chrono::steady_clock::now();
    g->leftover.clear();
    // The GOT is patched before any thread of ours exists (the sink's writer comes next, the
    // sampler last): a RELRO page's mprotect then needs no other CPU's TLB flushed (~25 us each in
    // a VM). The hooks pass through until recording is on below. The writer thread is made here,
    // outside the tracker lock: pthread_create takes the loader's locks, which a thread inside
    // dlopen holds while its allocations wait for ours.
    g->hooked = true;
    hooks::patch_all(true);
    std::unique_ptr<Sink> sink = g->memory_sink ? make_memory_sink() : open_file_sink(options.path, true, error);
    if (!sink) {
        g->hooked = false;
        hooks::patch_all(false);
        return false;
    }

    pystack::reset_tables();
    {
        std::lock_guard<EventMutex> lock(g->lock);
        g->recorder.open(std::move(sink));
        g->followed = false;
        if (!g->memory_sink) g->recorder.sync_blocks();
        g->last_tid = 0;
        nativestack::reset();
        if (options.native) nativestack::emit_maps(g->recorder, std::move(maps));
        g_generation.fetch_add(1);
        g_active = true;
        g->running = true;
    }
    if (options.trace_python_allocators) {
        // This thread's stack now; other threads rebuild theirs at their next profile event.
        ThreadState* state = thread_state();
        pystack::rebuild_current(state->stack, generation());
        pystack::follow_calls();
        pystack::install_allocator_hooks();
    }
    arena_cache::install();
    start_sampler();
    if (!g->memory_sink) {
        install_signal_flush();
    } else if (options.defer_signals) {
        g_pending_signal = 0;
        install_signal_defer();
    }
    return true;
}

namespace {

// Lock held: the memory sink's records join leftover (for the last drain), and what a follower
// had of them is remembered when they start it.
void take_into_leftover() {
    bool first = g->leftover.empty();
    std::string taken = g->recorder.take();
    if (first) g->leftover_followed = g->recorder.sink() ? g->recorder.sink()->followed() : 0;
    g->leftover += taken;
}

}  // namespace

std::string stop() {
    if (!g || !g->running) return "no tracker is active";
    GuardScope guard;
    remove_signal_flush();
    {
        std::lock_guard<EventMutex> lock(g->lock);
        g_active = false;
        g->running = false;
    }
    // Aggregating, the capture is yet to be written from what this hands over: SIGTERM and SIGINT
    // stay deferred, and the sampler stays to watch them, until end_signal_deferral().
    bool end_sampler = !g_defer_watched;
    if (end_sampler) request_sampler_stop();
    g->hooked = false;
    pystack::remove_allocator_hooks();
    arena_cache::remove();
    pystack::release_calls();
    release_stacks();
    std::string error;
    {
        std::lock_guard<EventMutex> lock(g->lock);
        int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
        g->recorder.sample(now_ms(), read_rss(fd));
        if (fd >= 0) close(fd);
        g->recorder.trailer(now_ms());
        if (g->memory_sink) take_into_leftover();
        error = g->recorder.close();
    }
    if (end_sampler) join_sampler();
    // Last, once our threads are gone: the GOT slots in RELRO pages are written under mprotect,
    // and with no other thread of ours on a CPU that needs no TLB flush of another (a tenth of
    // a millisecond per page in a VM). The hooks pass through meanwhile: recording is off.
    hooks::patch_all(false);
    pystack::release_code_objects();
    return error;
}

std::string drain(bool with_followed) {
    if (!g) return std::string();
    GuardScope guard;
    std::lock_guard<EventMutex> lock(g->lock);
    std::string out;
    size_t followed = g->leftover.empty() ? 0 : g->leftover_followed;
    out.swap(g->leftover);
    g->leftover_followed = 0;
    if (g->running && g->memory_sink) {
        if (out.empty()) {
            out = g->recorder.take(with_followed);  // moved, not appended to an empty string
            followed = g->recorder.sink()->followed();
        } else {
            out += g->recorder.take();
        }
    }
    if (!with_followed && followed) {
        out.erase(0, followed);
        followed = 0;
    }
    g->drained_followed = followed;
    return out;
}

void follow(Follower follower, void* context) {
    if (!g || !g->running || !g->memory_sink) return;
    GuardScope guard;
    std::lock_guard<EventMutex> lock(g->lock);
    if (Sink* sink = g->recorder.sink()) sink->follow(follower, context, follower ? guard_sink_thread : nullptr);
    g->followed = follower != nullptr;
}

size_t drained_followed() { return g ? g->drained_followed : 0; }

void mark(uint64_t id, const std::string& label) {
    if (!active_relaxed()) return;
    GuardScope guard;
    std::lock_guard<EventMutex> lock(g->lock);
    if (g_active) g->recorder.mark(id, label);
}

void set_thread_name(uint64_t tid, const std::string& name) {
    if (!active_relaxed()) return;
    GuardScope guard;
    std::lock_guard<EventMutex> lock(g->lock);
    if (g_active) g->recorder.thread_name(tid, name);
}

void thread_started(PyFrameObject* frame) { pystack::thread_started(frame); }

void before_fork() {
    if (!g || !g->running) return;
    GuardScope guard;
    stop_sampler();
    std::lock_guard<EventMutex> lock(g->lock);
    if (g->recorder.sink()) g->recorder.sink()->stop_thread();
}

void after_fork_parent() {
    if (!g || !g->running) return;
    GuardScope guard;
    {
        std::lock_guard<EventMutex> lock(g->lock);
        if (g->recorder.sink()) g->recorder.sink()->start_thread();
    }
    if (!g->sampler) start_sampler();
}

namespace {

// The tracker lock for one event, unless this thread holds it already across a fork.
class EventLock {
  public:
    EventLock() : d_owned(!t_forking) {
        if (d_owned) g->lock.lock();
    }
    ~EventLock() {
        if (d_owned) g->lock.unlock();
    }
    EventLock(const EventLock&) = delete;
    EventLock& operator=(const EventLock&) = delete;

  private:
    bool d_owned;
};

// The allocating thread's Python stack as a trie node (0: no Python frames). Lock held.
inline uint32_t python_node(ThreadState* state) {
    uint32_t node = 0;
    if (!g->walk && pystack::current_node(state->stack, &node)) return node;
    return pystack::walked_node(state->walk);
}

// on_alloc with native stacks. Out of line: its two unwind buffers (2 KiB of stack) and the
// registers the unwind needs made every allocation of a Python-only run pay a frame that size.
__attribute__((noinline)) void on_alloc_native(ThreadState* state, uint8_t kind, void* address, size_t size,
                                               HookFrame hook) {
    if (!active_relaxed()) return;  // paused between tests: not worth an unwind
    // Unwound outside the lock: it is the slow part, and threads need not wait for it.
    uintptr_t addresses[nativestack::kMaxDepth];
    uintptr_t frames[nativestack::kMaxDepth];
    int depth = nativestack::unwind(state->native_stack, addresses, frames, nativestack::kMaxDepth,
                                    hook.return_address, hook.frame);
    EventLock lock;
    if (!g_active.load(std::memory_order_relaxed)) return;
    uint32_t stack = python_node(state);
    if (stack == pystack::kNotTheProgram) return;
    uint32_t native_stack = nativestack::intern(state->native_stack, addresses, frames, depth);
    switch_thread(state->tid);
    g->recorder.alloc_native(kind, reinterpret_cast<uintptr_t>(address), size, stack, native_stack);
}

}  // namespace

void on_alloc(uint8_t kind, void* address, size_t size, HookFrame hook) {
    ThreadState* state = thread_state();
    if (g->native) return on_alloc_native(state, kind, address, size, hook);
    EventLock lock;
    if (!g_active.load(std::memory_order_relaxed)) return;
    uint32_t stack = python_node(state);
    if (stack == pystack::kNotTheProgram) return;
    switch_thread(state->tid);
    g->recorder.alloc(kind, reinterpret_cast<uintptr_t>(address), size, stack);
}

void on_free(uint8_t kind, void* address) {
    ThreadState* state = thread_state();
    EventLock lock;
    if (!g_active.load(std::memory_order_relaxed)) return;
    switch_thread(state->tid);
    g->recorder.free(kind, reinterpret_cast<uintptr_t>(address));
}

void on_munmap(void* address, size_t length) {
    ThreadState* state = thread_state();
    EventLock lock;
    if (!g_active.load(std::memory_order_relaxed)) return;
    switch_thread(state->tid);
    g->recorder.munmap(reinterpret_cast<uintptr_t>(address), length);
}

namespace {

void record_maps() {
    std::vector<nativestack::Mapping> maps = nativestack::read_maps();  // loader lock, not ours
    std::lock_guard<EventMutex> lock(g->lock);
    if (g_active) {
        nativestack::emit_maps(g->recorder, std::move(maps));
    } else {
        g->maps_stale = true;
    }
}

}  // namespace

void on_dlopen() {
    // A library loaded while tracking (or paused): bind its slots to our hooks too. Not from
    // another atfork handler: this thread holds the patch lock across the fork.
    if (!g || !g->hooked.load(std::memory_order_relaxed) || t_forking) return;
    hooks::patch_all(true);
    if (g->native) record_maps();
}

void on_dlclose() {
    if (!g || !g->hooked.load(std::memory_order_relaxed) || !g->native || t_forking) return;
    {
        std::lock_guard<EventMutex> lock(g->lock);
        nativestack::invalidate();
    }
    record_maps();
}

void set_signal_wakeup(int fd) { g_wake_fd = fd; }

int pending_signal() { return g_pending_signal.load(); }

void finish_before_signal() {
    if (!g || !g->running || !g->memory_sink) return;
    GuardScope guard;
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    uint64_t rss = read_rss(fd);
    if (fd >= 0) close(fd);
    std::lock_guard<EventMutex> lock(g->lock);
    g_active = false;
    g->recorder.sample(now_ms(), rss);
    g->recorder.trailer(now_ms());
    take_into_leftover();
}

void end_signal_deferral() {
    if (!g || g->running) return;
    remove_signal_defer();
    stop_sampler();
}

void die_of_pending_signal() {
    if (int signo = g_pending_signal.load()) die_of(signo);
}

void set_exit_hook(ExitHook hook) {
    if (!g) return;
    g->exit_hook.store(hook);
}

void on_exit() {
    // os._exit() skips atexit and destructors (a multiprocessing child ends that way): finish
    // the stream here so the capture is whole.
    if (!active_relaxed()) return;
    if (g->memory_sink) {
        // Outside the lock: the hook stops the tracker, which drains the memory sink.
        if (ExitHook hook = g->exit_hook.load()) hook();
        return;
    }
    std::lock_guard<EventMutex> lock(g->lock);
    if (!g_active) return;
    g_active = false;
    g->recorder.trailer(now_ms());
    g->recorder.close();
}

void on_thread_name(pthread_t thread, const char* name) {
    if (!name) return;
    std::lock_guard<EventMutex> lock(g->lock);
    uint64_t handle = static_cast<uint64_t>(thread);
    auto tid = g->tids.find(handle);
    if (tid == g->tids.end()) {
        g->pending_names[handle] = name;  // named before it allocated anything: record later
        return;
    }
    if (g_active) g->recorder.thread_name(tid->second, name);
}

}  // namespace tracker
}  // namespace memprof
