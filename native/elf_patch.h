// Rewriting GOT slots of loaded ELF objects, so calls through their PLT reach our hooks.
#pragma once

#include <cstddef>

namespace memprof::elf {

struct SymbolPatch {
    const char* name;
    void* replacement;          // written into every slot that calls `name` (JUMP_SLOT)
    void* address_replacement;  // into every slot that takes its address (GLOB_DAT); they differ
                                // where a non-PIE program's PLT entry is the function's address
};

// Writes each patch's replacements into every JUMP_SLOT / GLOB_DAT slot bound to its symbol in
// every object currently loaded, except the object containing `skip_address` (ourselves), the
// dynamic loader and the vDSO. Returns the number of slots written.
size_t patch_loaded_objects(const SymbolPatch* patches, size_t count, const void* skip_address);

}  // namespace memprof::elf
