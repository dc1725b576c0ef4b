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
// dynamic loader and the vDSO. Returns the number of slots bound to them. With `record`, the
// slots it changes join a record for restore_recorded(). Callers serialise passes.
size_t patch_loaded_objects(const SymbolPatch* patches, size_t count, const void* skip_address, bool record);

// Writes `patches` (matched by name) into the slots the recorded passes changed, if no object
// has been unloaded since the record opened, and forgets the record. Returns false, having
// written nothing, when a full patch_loaded_objects() pass must do it.
bool restore_recorded(const SymbolPatch* patches, size_t count);

// Drops the record (a forked child that starts afresh, a pass that restores in full).
void forget_recorded();

}  // namespace memprof::elf
