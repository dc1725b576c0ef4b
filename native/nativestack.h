// Native (C/C++) call stacks: unwound in the allocation hook, interned as a trie of return
// addresses like the Python stacks, symbolised only at report time from the recorded mappings.
//
// Hot path: unwind (libgcc's _Unwind_Backtrace, outside any lock of ours), then, under the
// tracker lock, walk the trie from the outermost frame. Each thread keeps the stack and nodes of
// its previous allocation: consecutive allocations share most of their outer frames, so usually
// only the innermost few addresses are looked up. No symbol is resolved here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fast_unwind.h"

namespace memprof {

class Recorder;

struct NativeCache {
    std::vector<uintptr_t> addresses;  // the previous stack, outermost first
    std::vector<uint32_t> nodes;       // nodes[i]: the trie node of addresses[0..i]
    uint32_t generation = 0;           // trie generation these nodes belong to
    unwind::RuleCache rules;           // the fast unwinder's decoded CFI
};

namespace nativestack {

constexpr int kMaxDepth = 128;

// Return addresses of the calling thread, innermost first, without the frames of this extension
// (the hook and the tracker); frames[i] is the lowest stack address of the frame out[i] returns
// into. No lock; allocates only to grow the thread's rule cache.
// start_ra/start_frame: the hook's return address and frame pointer (tracker::HookFrame), so the
// fast unwinder can start at the hook's caller; 0 to walk from here.
int unwind(NativeCache& cache, uintptr_t* out, uintptr_t* frames, int max, uintptr_t start_ra = 0,
           uintptr_t start_frame = 0);

// The trie node of `addresses` (innermost first, with unwind's `frames`); emits NATIVE_NODE and
// EVAL_NATIVE_NODE records. Tracker lock held.
uint32_t intern(NativeCache& cache, const uintptr_t* addresses, const uintptr_t* frames, int count);

// Forgets every node and restarts ids at 1 (a new stream). Tracker lock held.
void reset();
// After dlclose: an address may now belong to another library, so nodes made before must not
// be reused; ids keep counting up, as the stream's reader numbers nodes in order. Lock held.
void invalidate();

// Lists the executable segments of every loaded object. Takes the loader's lock: call it
// without the tracker lock, then write the result with emit_maps under it.
struct Mapping {
    uintptr_t start, end, load_base;
    std::string path;
    std::string build_id;  // the object's GNU build ID (raw bytes), "" if it has none
};
std::vector<Mapping> read_maps();
void emit_maps(Recorder& recorder, std::vector<Mapping> maps);

// After a followed fork: the current mappings and every node, into the child's new stream.
void emit_tables(Recorder& recorder);

}  // namespace nativestack
}  // namespace memprof
