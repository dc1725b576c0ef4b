#include "elf_patch.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace memprof::elf {
namespace {

#if defined(__x86_64__)
constexpr unsigned kJumpSlot = R_X86_64_JUMP_SLOT;
constexpr unsigned kGlobDat = R_X86_64_GLOB_DAT;
#elif defined(__aarch64__)
constexpr unsigned kJumpSlot = R_AARCH64_JUMP_SLOT;
constexpr unsigned kGlobDat = R_AARCH64_GLOB_DAT;
#else
#error "GOT patching is implemented for x86_64 and aarch64 only"
#endif

// A symbol's first two bytes, as one of 65536 keys (a one-letter name's second byte is its NUL;
// an empty name, at the very end of a string table maybe, is not read past).
inline unsigned prefix_key(const char* name) {
    unsigned first = static_cast<unsigned char>(name[0]);
    return first ? (first << 8) | static_cast<unsigned char>(name[1]) : 0;
}

// The slots that installing passes wrote, so the pass that puts the originals back reads them
// from here instead of every relocation of every object again (on an empty program that pass
// was a third of stop's own time). Valid while no object has been unloaded since the first of
// those passes: an unloaded object's slots are gone, and another may be loaded at its address.
struct WrittenSlot {
    uintptr_t slot;
    const char* name;  // the patch's, a string literal of hooks.cc
    bool address;      // a GLOB_DAT slot (the function's address), else a JUMP_SLOT
    uintptr_t relro_start, relro_end;
};
constexpr size_t kMaxWritten = 4096;
WrittenSlot g_written[kMaxWritten];
size_t g_written_count = 0;
bool g_written_lost = false;         // more slots than kMaxWritten: a full pass restores them
bool g_written_started = false;      // a record is open (since the first installing pass)
unsigned long long g_written_subs = 0;  // the loader's count of unloads when it opened

bool has_subs(size_t size) {
    return size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(((struct dl_phdr_info*)nullptr)->dlpi_subs);
}

struct PatchRun {
    const SymbolPatch* patches;
    size_t count;
    uintptr_t skip_base;
    size_t written;
    bool record;
    bool subs_known;
    unsigned long long subs;
    // The prefixes of the patched names: a pass reads every JUMP_SLOT and GLOB_DAT relocation of
    // every object (libpython alone has 1,600), and a strcmp with each of the ~18 names for each
    // was most of the pass, done at start, at stop and at every dlopen. Nearly all names fail here.
    uint64_t prefixes[65536 / 64];

    bool may_be_patched(const char* name) const {
        unsigned key = prefix_key(name);
        return (prefixes[key / 64] >> (key % 64)) & 1;
    }
};

// glibc relocates most d_ptr values of .dynamic in place, but not on every architecture and not
// for every object: an address below the load base is still an offset.
uintptr_t dynamic_address(ElfW(Addr) value, uintptr_t base) {
    return value < base ? base + value : value;
}

bool is_skipped(const char* name) {
    return strstr(name, "linux-vdso") || strstr(name, "linux-gate") || strstr(name, "/ld-linux")
           || strstr(name, "/ld-musl");
}

// Returns whether the slot was written (false: it held the value already, or its page could not be opened).
bool write_slot(uintptr_t slot, void* value, uintptr_t relro_start, uintptr_t relro_end) {
    void** where = reinterpret_cast<void**>(slot);
    if (*where == value) return false;
    // Slots inside RELRO are read-only after relocation: open the page, write, close it again.
    bool in_relro = slot >= relro_start && slot < relro_end;
    uintptr_t page_size = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    void* page = reinterpret_cast<void*>(slot & ~(page_size - 1));
    if (in_relro && mprotect(page, page_size, PROT_READ | PROT_WRITE) != 0) return false;
    __atomic_store_n(where, value, __ATOMIC_SEQ_CST);
    if (in_relro) mprotect(page, page_size, PROT_READ);
    return true;
}

template <typename Rel>
void patch_relocations(const Rel* rel, size_t bytes, const ElfW(Sym)* symtab, const char* strtab,
                       uintptr_t base, uintptr_t relro_start, uintptr_t relro_end, PatchRun* run) {
    for (size_t i = 0; i < bytes / sizeof(Rel); ++i) {
        unsigned type = ELF64_R_TYPE(rel[i].r_info);
        if (type != kJumpSlot && type != kGlobDat) continue;
        size_t symbol = ELF64_R_SYM(rel[i].r_info);
        if (symbol == 0) continue;
        const char* name = strtab + symtab[symbol].st_name;
        if (!run->may_be_patched(name)) continue;
        for (size_t p = 0; p < run->count; ++p) {
            if (strcmp(name, run->patches[p].name) == 0) {
                const SymbolPatch& patch = run->patches[p];
                void* value = type == kGlobDat ? patch.address_replacement : patch.replacement;
                uintptr_t slot = base + rel[i].r_offset;
                if (write_slot(slot, value, relro_start, relro_end) && run->record) {
                    if (g_written_count < kMaxWritten) {
                        g_written[g_written_count++] = {slot, patch.name, type == kGlobDat, relro_start, relro_end};
                    } else {
                        g_written_lost = true;
                    }
                }
                ++run->written;
                break;
            }
        }
    }
}

int patch_object(struct dl_phdr_info* info, size_t size, void* data) {
    auto* run = static_cast<PatchRun*>(data);
    if (!run->subs_known) {
        run->subs_known = has_subs(size);
        run->subs = run->subs_known ? info->dlpi_subs : 0;
    }
    uintptr_t base = info->dlpi_addr;
    const char* name = info->dlpi_name ? info->dlpi_name : "";
    if (base == run->skip_base || is_skipped(name)) return 0;

    const ElfW(Dyn)* dynamic = nullptr;
    uintptr_t relro_start = 0, relro_end = 0;
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& phdr = info->dlpi_phdr[i];
        if (phdr.p_type == PT_DYNAMIC) dynamic = reinterpret_cast<const ElfW(Dyn)*>(base + phdr.p_vaddr);
        if (phdr.p_type == PT_GNU_RELRO) {
            relro_start = base + phdr.p_vaddr;
            relro_end = relro_start + phdr.p_memsz;
        }
    }
    if (!dynamic) return 0;

    const ElfW(Sym)* symtab = nullptr;
    const char* strtab = nullptr;
    uintptr_t jmprel = 0, rela = 0, rel = 0;
    size_t jmprel_size = 0, rela_size = 0, rel_size = 0, relative_relas = 0, relative_rels = 0;
    ElfW(Sxword) pltrel_kind = DT_RELA;
    for (const ElfW(Dyn)* d = dynamic; d->d_tag != DT_NULL; ++d) {
        switch (d->d_tag) {
            case DT_SYMTAB: symtab = reinterpret_cast<const ElfW(Sym)*>(dynamic_address(d->d_un.d_ptr, base)); break;
            case DT_STRTAB: strtab = reinterpret_cast<const char*>(dynamic_address(d->d_un.d_ptr, base)); break;
            case DT_JMPREL: jmprel = dynamic_address(d->d_un.d_ptr, base); break;
            case DT_PLTRELSZ: jmprel_size = d->d_un.d_val; break;
            case DT_PLTREL: pltrel_kind = static_cast<ElfW(Sxword)>(d->d_un.d_val); break;
            case DT_RELA: rela = dynamic_address(d->d_un.d_ptr, base); break;
            case DT_RELASZ: rela_size = d->d_un.d_val; break;
            case DT_REL: rel = dynamic_address(d->d_un.d_ptr, base); break;
            case DT_RELSZ: rel_size = d->d_un.d_val; break;
            case DT_RELACOUNT: relative_relas = d->d_un.d_val; break;
            case DT_RELCOUNT: relative_rels = d->d_un.d_val; break;
            default: break;
        }
    }
    if (!symtab || !strtab) return 0;
    if (jmprel) {
        if (pltrel_kind == DT_RELA) {
            patch_relocations(reinterpret_cast<const ElfW(Rela)*>(jmprel), jmprel_size, symtab, strtab,
                              base, relro_start, relro_end, run);
        } else {
            patch_relocations(reinterpret_cast<const ElfW(Rel)*>(jmprel), jmprel_size, symtab, strtab,
                              base, relro_start, relro_end, run);
        }
    }
    // The R_*_RELATIVE relocations come first, DT_RELACOUNT of them (libpython: 22,000 of its
    // 37,000), and name no symbol: not read at all.
    if (rela && relative_relas * sizeof(ElfW(Rela)) <= rela_size) {
        rela += relative_relas * sizeof(ElfW(Rela));
        rela_size -= relative_relas * sizeof(ElfW(Rela));
    }
    if (rel && relative_rels * sizeof(ElfW(Rel)) <= rel_size) {
        rel += relative_rels * sizeof(ElfW(Rel));
        rel_size -= relative_rels * sizeof(ElfW(Rel));
    }
    if (rela) {
        patch_relocations(reinterpret_cast<const ElfW(Rela)*>(rela), rela_size, symtab, strtab, base,
                          relro_start, relro_end, run);
    }
    if (rel) {
        patch_relocations(reinterpret_cast<const ElfW(Rel)*>(rel), rel_size, symtab, strtab, base,
                          relro_start, relro_end, run);
    }
    return 0;
}

int read_subs(struct dl_phdr_info* info, size_t size, void* data) {
    auto* subs = static_cast<unsigned long long*>(data);
    if (!has_subs(size)) return -1;
    *subs = info->dlpi_subs;
    return 1;  // the count is the same in every object's entry: one is enough
}

}  // namespace

size_t patch_loaded_objects(const SymbolPatch* patches, size_t count, const void* skip_address, bool record) {
    Dl_info self{};
    uintptr_t skip_base = 0;
    if (skip_address && dladdr(skip_address, &self) && self.dli_fbase) {
        skip_base = reinterpret_cast<uintptr_t>(self.dli_fbase);
    }
    PatchRun run{patches, count, skip_base, 0, record, false, 0, {}};
    for (size_t p = 0; p < count; ++p) {
        unsigned key = prefix_key(patches[p].name);
        run.prefixes[key / 64] |= uint64_t{1} << (key % 64);
    }
    dl_iterate_phdr(patch_object, &run);
    if (record && !g_written_started) {
        // The count of unloads when the record opened (read as the pass began: an object
        // unloaded during the pass shows as a later unload, and makes the record unusable).
        g_written_started = true;
        g_written_subs = run.subs;
        g_written_lost = g_written_lost || !run.subs_known;
    }
    return run.written;
}

bool restore_recorded(const SymbolPatch* patches, size_t count) {
    bool usable = g_written_started && !g_written_lost;
    unsigned long long subs = 0;
    if (usable) usable = dl_iterate_phdr(read_subs, &subs) == 1 && subs == g_written_subs;
    if (usable) {
        for (size_t i = 0; i < g_written_count; ++i) {
            const WrittenSlot& written = g_written[i];
            for (size_t p = 0; p < count; ++p) {
                if (strcmp(patches[p].name, written.name) != 0) continue;
                void* value = written.address ? patches[p].address_replacement : patches[p].replacement;
                write_slot(written.slot, value, written.relro_start, written.relro_end);
                break;
            }
        }
    }
    forget_recorded();
    return usable;
}

void forget_recorded() {
    g_written_count = 0;
    g_written_lost = false;
    g_written_started = false;
    g_written_subs = 0;
}

}  // namespace memprof::elf
