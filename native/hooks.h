// The intercepted symbols. One list drives everything: the table of original functions, the
// hook declarations, and the (name, hook, original) rows that the ELF patcher writes into
// every loaded object's GOT. Adding a symbol is one line here plus its hook in hooks.cc.
#pragma once

#include <pthread.h>
#include <sys/types.h>

#include <cstddef>

#define MEMPROF_HOOKED_SYMBOLS(X)                                                             \
    X(malloc, void*, (size_t size))                                                           \
    X(free, void, (void* ptr))                                                                \
    X(calloc, void*, (size_t count, size_t size))                                             \
    X(realloc, void*, (void* ptr, size_t size))                                               \
    X(reallocarray, void*, (void* ptr, size_t count, size_t size))                            \
    X(posix_memalign, int, (void** out, size_t alignment, size_t size))                       \
    X(aligned_alloc, void*, (size_t alignment, size_t size))                                  \
    X(memalign, void*, (size_t alignment, size_t size))                                       \
    X(valloc, void*, (size_t size))                                                           \
    X(pvalloc, void*, (size_t size))                                                          \
    X(mmap, void*, (void* addr, size_t length, int prot, int flags, int fd, off_t offset))    \
    X(mmap64, void*, (void* addr, size_t length, int prot, int flags, int fd, off_t offset))  \
    X(munmap, int, (void* addr, size_t length))                                               \
    X(dlopen, void*, (const char* file, int mode))                                            \
    X(dlclose, int, (void* handle))                                                           \
    X(dlsym, void*, (void* handle, const char* name))                                         \
    X(_exit, void, (int status))                                                              \
    X(pthread_setname_np, int, (pthread_t thread, const char* name))

namespace memprof::hooks {

// The real functions, resolved with dlsym(RTLD_DEFAULT) before any slot is patched: never the
// value found in a GOT slot, which may be a lazy-binding stub that would re-resolve and
// overwrite our patch.
struct Originals {
#define MEMPROF_ORIGINAL_FIELD(name, ret, params) ret(*name) params;
    MEMPROF_HOOKED_SYMBOLS(MEMPROF_ORIGINAL_FIELD)
#undef MEMPROF_ORIGINAL_FIELD
};
extern Originals originals;

#define MEMPROF_HOOK_DECL(name, ret, params) ret name params;
MEMPROF_HOOKED_SYMBOLS(MEMPROF_HOOK_DECL)
#undef MEMPROF_HOOK_DECL

// Resolves `originals` once; returns false (with the missing name) if a required one is absent.
bool resolve_originals(const char** missing);

// Points every loaded object's GOT slots for the hooked symbols at our hooks (install=true) or
// back at the originals (install=false). Idempotent; called again after each dlopen.
void patch_all(bool install);

// Held across fork() (see tracker.cc), so a child never inherits a half-done patch pass.
void lock_patching();
void unlock_patching();

}  // namespace memprof::hooks
