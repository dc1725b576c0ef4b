// A caching unwinder for x86_64: the fast path of native stacks. (Not named unwind.h: that is libgcc's header.)
//
// libgcc's _Unwind_Backtrace decodes the DWARF call-frame information (CFI) of every frame on
// every call: about a microsecond per frame, dozens of frames per allocation. But the CFI of one
// instruction address never changes, and a program allocates from few distinct call sites. So
// the first time a return address is seen, its CFI is decoded once (libgcc finds the FDE, we run
// its CFA program) into a small rule: where the caller's CFA, return address and frame pointer
// are. Later unwinds through that address are a hash lookup and two loads per frame.
//
// Only the shapes compilers emit for ordinary code are cached (CFA = rsp or rbp + offset, or
// *(rbp + offset) after stack realignment; rip and rbp saved at CFA offsets). Anything else (PLT
// stubs, signal frames, hand-written CFI) makes unwind() return -1, and the caller falls back to
// _Unwind_Backtrace for that one allocation: slower, never wrong.
#pragma once

#include <cstdint>
#include <vector>

#include "flat_map.h"

namespace memprof::unwind {

// One step of an unwind: the state it started from, the words it read, the return address it
// found (0: the stack ended there).
struct Step {
    uintptr_t target, sp, bp;
    uintptr_t load_address[3];  // return-address slot, saved-rbp slot, realigned-CFA slot (0: none)
    uintptr_t load_value[3];
    uintptr_t ra;
    uintptr_t cfa;  // the caller's stack pointer: the lowest address of the frame `ra` returns into
};

// Per-thread state: decoded rules keyed by the address whose rule they are, and the steps of the
// previous unwind. Consecutive allocations of a thread share their outer frames; when a step
// starts from exactly the state a previous step started from (same address, stack and frame
// pointers) and every word the previous unwind read from there on still holds the same value,
// the rest of the unwind is the same computation on the same data: its result is copied, and the
// outer frames cost a few loads instead of a rule lookup each.
struct RuleCache {
    FlatMap<uint64_t> rules;
    uint32_t generation = 0;  // compared with the caller's: after dlclose an address may change object
    uintptr_t stack_end = 0;  // this thread's stack top: no load may reach past it
    std::vector<Step> previous;  // outermost first
    std::vector<Step> current;   // scratch: the new steps of an unwind, innermost first
    bool previous_whole = false;  // the previous unwind reached the end of the stack (not cut at max)
};

// Return addresses of the calling thread (x86_64; -1 on other machines), innermost first, skipping
// those inside [skip_start, skip_end) while they are the innermost ones (our own hook and tracker
// frames); frames[i] is the lowest stack address of the frame that out[i] returns into. -1 if some
// frame has CFI this unwinder does not cache: use _Unwind_Backtrace instead.
// With start_frame (the frame pointer of a caller that keeps one, and start_ra its return address)
// the unwind starts at that caller's caller: the frames in between are not walked.
int unwind(RuleCache& cache, uint32_t generation, uintptr_t skip_start, uintptr_t skip_end, uintptr_t* out,
           uintptr_t* frames, int max, uintptr_t start_ra = 0, uintptr_t start_frame = 0);

}  // namespace memprof::unwind
