// A C++ library for the native-stack tests: three named functions (extern "C", a template, one
// in an anonymous namespace) down to new[] and malloc, and a named native thread. The tests find
// the lines marked "LINE:" in this file and expect exactly those in the reported stacks.
#include <pthread.h>

#include <cstdlib>
#include <cstring>

namespace {

__attribute__((noinline)) void* make_block(size_t size, void** raw) {
    char* block = new char[size];  // LINE: new
    std::memset(block, 1, size);
    *raw = std::malloc(size);  // LINE: malloc
    std::memset(*raw, 2, size);
    return block;
}

// Always inlined, even at -O0: its frame exists only in the DWARF (an inlined subroutine).
__attribute__((always_inline)) inline void* inlined_allocate(size_t size) {
    return std::malloc(size);  // LINE: inlined
}

}  // namespace

template <typename T>
struct Builder {
    __attribute__((noinline)) static void* build(size_t count, void** raw) {
        return make_block(count * sizeof(T), raw);  // LINE: build
    }
};

struct ThreadJob {
    size_t size;
    const char* name;
    void* block;
    void* raw;
};

static void* thread_main(void* arg) {
    auto* job = static_cast<ThreadJob*>(arg);
    pthread_setname_np(pthread_self(), job->name);
    job->block = Builder<char>::build(job->size, &job->raw);  // LINE: thread
    return nullptr;
}

extern "C" {

// Allocates `count` doubles with new[] and as many bytes again with malloc; both are kept.
__attribute__((noinline)) void* memprof_test_entry(size_t count, void** raw) {
    return Builder<double>::build(count, raw);  // LINE: entry
}

__attribute__((noinline)) void* memprof_test_inlined(size_t size) {
    return inlined_allocate(size);  // LINE: inline-call
}

// Calls back into Python: C frames between two Python frames, for the hybrid-stack order.
__attribute__((noinline)) void memprof_test_call(void (*callback)(void)) {
    callback();  // LINE: callback
}

void memprof_test_release(void* block, void* raw) {
    delete[] static_cast<char*>(block);
    std::free(raw);
}

// Runs the same allocations in a native thread named `name` and waits for it.
int memprof_test_thread(size_t size, const char* name, void** block, void** raw) {
    ThreadJob job{size, name, nullptr, nullptr};
    pthread_t thread;
    if (pthread_create(&thread, nullptr, thread_main, &job) != 0) return -1;
    pthread_join(thread, nullptr);
    *block = job.block;
    *raw = job.raw;
    return 0;
}

}  // extern "C"
