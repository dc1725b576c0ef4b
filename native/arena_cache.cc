#include "arena_cache.h"

#include <Python.h>

#include <mutex>

#include "format.h"
#include "tracker.h"

namespace memprof::arena_cache {
namespace {

// Blocks up to this size are cached: data stack chunks (16 KiB, more for a huge frame), never
// pymalloc's arenas (256 KiB or 1 MiB), which pymalloc already keeps and reuses itself.
constexpr size_t kMaxCachedSize = 64 * 1024;

struct State {
    PyObjectArenaAllocator original{};
    bool installed = false;
    std::mutex lock;  // the GIL covers every call today; this keeps a free-threaded build honest
    void* block = nullptr;
    size_t block_size = 0;
};

State g_state;

void* cached_alloc(void* /*ctx*/, size_t size) {
    void* block = nullptr;
    {
        std::lock_guard<std::mutex> lock(g_state.lock);
        if (g_state.block && g_state.block_size == size) {
            block = g_state.block;
            g_state.block = nullptr;
        }
    }
    if (!block) return g_state.original.alloc(g_state.original.ctx, size);
    // Recorded as the mmap it replaces, unless a wrapped PyMem call is already recording.
    if (!t_guard) {
        GuardScope guard;
        tracker::on_alloc(MMAP, block, size, MEMPROF_HOOK_FRAME);
    }
    return block;
}

void cached_free(void* /*ctx*/, void* ptr, size_t size) {
    if (ptr && size <= kMaxCachedSize) {
        void* evicted = nullptr;
        size_t evicted_size = 0;
        {
            std::lock_guard<std::mutex> lock(g_state.lock);
            evicted = g_state.block;
            evicted_size = g_state.block_size;
            g_state.block = ptr;
            g_state.block_size = size;
        }
        if (!t_guard) {
            GuardScope guard;
            tracker::on_munmap(ptr, size);
        }
        if (evicted) g_state.original.free(g_state.original.ctx, evicted, evicted_size);
        return;
    }
    g_state.original.free(g_state.original.ctx, ptr, size);
}

}  // namespace

void install() {
#if PY_VERSION_HEX >= 0x030B0000
    if (g_state.installed) return;
    PyObject_GetArenaAllocator(&g_state.original);
    PyObjectArenaAllocator ours = {nullptr, cached_alloc, cached_free};
    PyObject_SetArenaAllocator(&ours);
    g_state.installed = true;
#endif
}

void remove() {
    if (!g_state.installed) return;
    PyObject_SetArenaAllocator(&g_state.original);
    g_state.installed = false;
    void* block;
    size_t size;
    {
        std::lock_guard<std::mutex> lock(g_state.lock);
        block = g_state.block;
        size = g_state.block_size;
        g_state.block = nullptr;
    }
    // Untracked by now: its release is not an event of the capture, as it was recorded freed.
    if (block) {
        GuardScope guard;
        g_state.original.free(g_state.original.ctx, block, size);
    }
}

}  // namespace memprof::arena_cache
