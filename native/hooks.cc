#include "hooks.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstring>
#include <mutex>

#include "elf_patch.h"
#include "format.h"
#include "tracker.h"

namespace memprof::hooks {

Originals originals;

namespace {

// Symbols without which tracking is meaningless; the others are hooked where the libc has them.
constexpr const char* kRequired[] = {"malloc", "free", "calloc", "realloc", "mmap", "munmap", "dlopen"};

std::mutex g_patch_lock;  // serialises whole patch passes (start, stop, dlopen in any thread)

// Whether `address` lies in one of the main program's loaded segments (dl_iterate_phdr lists it first).
bool in_main_program(const void* address) {
    struct Query {
        uintptr_t address;
        bool inside;
    } query{reinterpret_cast<uintptr_t>(address), false};
    dl_iterate_phdr(
        [](struct dl_phdr_info* info, size_t, void* data) {
            auto* query = static_cast<Query*>(data);
            for (int i = 0; i < info->dlpi_phnum; ++i) {
                const ElfW(Phdr)& phdr = info->dlpi_phdr[i];
                uintptr_t start = info->dlpi_addr + phdr.p_vaddr;
                if (phdr.p_type == PT_LOAD && query->address >= start && query->address < start + phdr.p_memsz) {
                    query->inside = true;
                }
            }
            return 1;  // the main program only
        },
        &query);
    return query.inside;
}

// Whether `address` is a canonical PLT entry of the main program rather than a definition: a
// non-PIE executable that takes a function's address (Debian builds its python3 that way) makes
// its own PLT stub the function's address for everyone, dlsym included. That stub jumps through
// the program's GOT slot, which we patch, so taking it as the original would call our own hook.
bool is_program_plt_entry(void* address) {
    // dladdr1 reads the whole symbol table of the object holding the address (the libc's, for
    // nearly every name): ask it only of an address inside the main program.
    if (!in_main_program(address)) return false;
    Dl_info info{};
    void* entry = nullptr;
    if (!dladdr1(address, &info, &entry, RTLD_DL_SYMENT)) return false;
    const auto* symbol = static_cast<const ElfW(Sym)*>(entry);
    // Only an executable's symbol table holds an undefined symbol with an address: its PLT entry.
    return symbol && symbol->st_shndx == SHN_UNDEF;
}

// The first definition of `name` in the objects after the main program, in the loader's search
// order (preloaded allocators first, then the libc): what the program's PLT entry resolves to.
void* definition_after_program(const char* name) {
    for (struct link_map* object = _r_debug.r_map ? _r_debug.r_map->l_next : nullptr; object; object = object->l_next) {
        if (!object->l_name || !object->l_name[0]) continue;
        // The libc's own, not our hooks of the same names in this namespace.
        void* handle = ::dlopen(object->l_name, RTLD_LAZY | RTLD_NOLOAD);
        if (!handle) continue;
        void* found = ::dlsym(handle, name);
        ::dlclose(handle);
        Dl_info info{};
        // dlsym on a handle also searches that object's dependencies: take only its own symbol.
        if (found && dladdr(found, &info) && info.dli_fbase == reinterpret_cast<void*>(object->l_addr)) return found;
    }
    return nullptr;
}

// What dlsym(RTLD_DEFAULT) gives: the function's one address in the process (the program's PLT
// entry in the case above), which slots that take the address (GLOB_DAT) hold again after stop.
struct Canonical {
#define MEMPROF_CANONICAL_FIELD(name, ret, params) void* name;
    MEMPROF_HOOKED_SYMBOLS(MEMPROF_CANONICAL_FIELD)
#undef MEMPROF_CANONICAL_FIELD
};
Canonical canonical;

void* resolve_original(const char* name) {
    void* found = ::dlsym(RTLD_DEFAULT, name);
    if (found && is_program_plt_entry(found)) found = definition_after_program(name);
    return found;
}

}  // namespace

bool resolve_originals(const char** missing) {
    static bool resolved = false;
    if (resolved) return true;
#define MEMPROF_RESOLVE(name, ret, params)          \
    canonical.name = ::dlsym(RTLD_DEFAULT, #name); \
    originals.name = reinterpret_cast<ret(*) params>(resolve_original(#name));
    MEMPROF_HOOKED_SYMBOLS(MEMPROF_RESOLVE)
#undef MEMPROF_RESOLVE
    for (const char* name : kRequired) {
        if (!::dlsym(RTLD_DEFAULT, name)) {
            *missing = name;
            return false;
        }
    }
    resolved = true;
    return true;
}

void patch_all(bool install) {
    elf::SymbolPatch patches[] = {
#define MEMPROF_PATCH_ROW(name, ret, params)                                                         \
    {#name, install ? reinterpret_cast<void*>(&hooks::name) : reinterpret_cast<void*>(originals.name), \
     install ? reinterpret_cast<void*>(&hooks::name) : canonical.name},
        MEMPROF_HOOKED_SYMBOLS(MEMPROF_PATCH_ROW)
#undef MEMPROF_PATCH_ROW
    };
    // A symbol the process lacked when the originals were resolved has no original to restore
    // and no hook to install (asked of that resolution, not of dlsym again: 18 lookups through
    // every loaded object at each pass, and a definition loaded since would have no original).
    const bool present[] = {
#define MEMPROF_PRESENT_ROW(name, ret, params) canonical.name != nullptr,
        MEMPROF_HOOKED_SYMBOLS(MEMPROF_PRESENT_ROW)
#undef MEMPROF_PRESENT_ROW
    };
    static_assert(sizeof(present) / sizeof(present[0]) == sizeof(patches) / sizeof(patches[0]), "one row each");
    size_t count = 0;
    for (size_t i = 0; i < sizeof(patches) / sizeof(patches[0]); ++i) {
        if (patches[i].replacement && present[i]) patches[count++] = patches[i];
    }
    std::lock_guard<std::mutex> lock(g_patch_lock);
    const void* self = reinterpret_cast<const void*>(&patch_all);
    if (install) {
        elf::patch_loaded_objects(patches, count, self, /*record=*/true);
    } else if (!elf::restore_recorded(patches, count)) {
        elf::patch_loaded_objects(patches, count, self, /*record=*/false);
    }
}

void lock_patching() { g_patch_lock.lock(); }
void unlock_patching() { g_patch_lock.unlock(); }

// ---- the hooks ------------------------------------------------------------------------------
// Each one: pass straight through where tracker::passes_through() says so; otherwise call the
// real function with the guard set (so allocations it makes are not counted twice) and record
// the result.

void* malloc(size_t size) {
    if (tracker::passes_through()) return originals.malloc(size);
    GuardScope guard;
    void* result = originals.malloc(size);
    if (result) tracker::on_alloc(MALLOC, result, size, MEMPROF_HOOK_FRAME);
    return result;
}

void free(void* ptr) {
    if (!ptr || tracker::passes_through()) return originals.free(ptr);
    GuardScope guard;
    tracker::on_free(FREE, ptr);  // before the real free: see py_free in pystack.cc
    originals.free(ptr);
}

void* calloc(size_t count, size_t size) {
    if (tracker::passes_through()) return originals.calloc(count, size);
    GuardScope guard;
    void* result = originals.calloc(count, size);
    if (result) tracker::on_alloc(CALLOC, result, count * size, MEMPROF_HOOK_FRAME);
    return result;
}

void* realloc(void* ptr, size_t size) {
    if (tracker::passes_through()) return originals.realloc(ptr, size);
    GuardScope guard;
    void* result = originals.realloc(ptr, size);
    if (ptr && (result || size == 0)) tracker::on_free(FREE, ptr);
    if (result) tracker::on_alloc(REALLOC, result, size, MEMPROF_HOOK_FRAME);
    return result;
}

void* reallocarray(void* ptr, size_t count, size_t size) {
    if (tracker::passes_through()) return originals.reallocarray(ptr, count, size);
    GuardScope guard;
    void* result = originals.reallocarray(ptr, count, size);
    if (ptr && result) tracker::on_free(FREE, ptr);
    if (result) tracker::on_alloc(REALLOC, result, count * size, MEMPROF_HOOK_FRAME);
    return result;
}

int posix_memalign(void** out, size_t alignment, size_t size) {
    if (tracker::passes_through()) return originals.posix_memalign(out, alignment, size);
    GuardScope guard;
    int result = originals.posix_memalign(out, alignment, size);
    if (result == 0 && *out) tracker::on_alloc(POSIX_MEMALIGN, *out, size, MEMPROF_HOOK_FRAME);
    return result;
}

void* aligned_alloc(size_t alignment, size_t size) {
    if (tracker::passes_through()) return originals.aligned_alloc(alignment, size);
    GuardScope guard;
    void* result = originals.aligned_alloc(alignment, size);
    if (result) tracker::on_alloc(ALIGNED_ALLOC, result, size, MEMPROF_HOOK_FRAME);
    return result;
}

void* memalign(size_t alignment, size_t size) {
    if (tracker::passes_through()) return originals.memalign(alignment, size);
    GuardScope guard;
    void* result = originals.memalign(alignment, size);
    if (result) tracker::on_alloc(MEMALIGN, result, size, MEMPROF_HOOK_FRAME);
    return result;
}

void* valloc(size_t size) {
    if (tracker::passes_through()) return originals.valloc(size);
    GuardScope guard;
    void* result = originals.valloc(size);
    if (result) tracker::on_alloc(VALLOC, result, size, MEMPROF_HOOK_FRAME);
    return result;
}

void* pvalloc(size_t size) {
    if (tracker::passes_through()) return originals.pvalloc(size);
    GuardScope guard;
    void* result = originals.pvalloc(size);
    if (result) tracker::on_alloc(PVALLOC, result, size, MEMPROF_HOOK_FRAME);
    return result;
}

void* mmap(void* addr, size_t length, int prot, int flags, int fd, off_t offset) {
    if (tracker::passes_through()) return originals.mmap(addr, length, prot, flags, fd, offset);
    GuardScope guard;
    void* result = originals.mmap(addr, length, prot, flags, fd, offset);
    if (result != MAP_FAILED) tracker::on_alloc(MMAP, result, length, MEMPROF_HOOK_FRAME);
    return result;
}

void* mmap64(void* addr, size_t length, int prot, int flags, int fd, off_t offset) {
    if (tracker::passes_through()) return originals.mmap64(addr, length, prot, flags, fd, offset);
    GuardScope guard;
    void* result = originals.mmap64(addr, length, prot, flags, fd, offset);
    if (result != MAP_FAILED) tracker::on_alloc(MMAP, result, length, MEMPROF_HOOK_FRAME);
    return result;
}

int munmap(void* addr, size_t length) {
    if (tracker::passes_through()) return originals.munmap(addr, length);
    GuardScope guard;
    tracker::on_munmap(addr, length);
    return originals.munmap(addr, length);
}

void* dlopen(const char* file, int mode) {
    // Not guarded: the library's constructors allocate on the program's behalf.
    void* handle = originals.dlopen(file, mode);
    if (handle && !t_guard) {
        GuardScope guard;
        tracker::on_dlopen();
    }
    return handle;
}

int dlclose(void* handle) {
    int result = originals.dlclose(handle);
    if (result == 0 && !t_guard) {
        GuardScope guard;
        tracker::on_dlclose();
    }
    return result;
}

void _exit(int status) {
    if (!t_guard) {
        GuardScope guard;
        tracker::on_exit();
    }
    originals._exit(status);
    __builtin_unreachable();
}

// A function looked up by name while tracking (ctypes.CDLL(None).malloc, a plugin loader) gets
// our hook, as a GOT slot would: a pointer taken so is called past every slot we patch.
// RTLD_NEXT is relative to the caller, which glibc reads from its return address: that path
// stays a tail call, so the caller is the program's, not ours.
void* dlsym(void* handle, const char* name) {
    if (handle == RTLD_NEXT || !tracker::is_started()) return originals.dlsym(handle, name);
    void* found = originals.dlsym(handle, name);
    if (!found) return found;
#define MEMPROF_LOOKED_UP(hooked)                                                                  \
    if (found == reinterpret_cast<void*>(originals.hooked) || found == canonical.hooked) {          \
        return reinterpret_cast<void*>(&hooks::hooked);                                            \
    }
    MEMPROF_LOOKED_UP(malloc)
    MEMPROF_LOOKED_UP(free)
    MEMPROF_LOOKED_UP(calloc)
    MEMPROF_LOOKED_UP(realloc)
    MEMPROF_LOOKED_UP(reallocarray)
    MEMPROF_LOOKED_UP(posix_memalign)
    MEMPROF_LOOKED_UP(aligned_alloc)
    MEMPROF_LOOKED_UP(memalign)
    MEMPROF_LOOKED_UP(valloc)
    MEMPROF_LOOKED_UP(pvalloc)
    MEMPROF_LOOKED_UP(mmap)
    MEMPROF_LOOKED_UP(mmap64)
    MEMPROF_LOOKED_UP(munmap)
#undef MEMPROF_LOOKED_UP
    return found;
}

int pthread_setname_np(pthread_t thread, const char* name) {
    int result = originals.pthread_setname_np(thread, name);
    if (result == 0 && !t_guard) {
        GuardScope guard;
        tracker::on_thread_name(thread, name);
    }
    return result;
}

}  // namespace memprof::hooks
