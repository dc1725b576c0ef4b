// The allocating frame of many hybrid stacks at once, without building them: the kernel of
// pytest_memprof/hybrid.py's HybridStacks.location, for reports that need only that frame per
// stack (`memprof stats`, `table`'s locations). Per native node it keeps what the Python code
// memoises per node (the first frame that shows walking out, the eval frames above, whether the
// stack is whole), so a report costs one pass over the nodes plus one step per stack, in C++.
//
// What a frame is (eval loop, shown, start-up code) needs its symbol, which only Python has: the
// caller classifies each distinct call once (calls(), classify()) and this does the walking.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "reader.h"

namespace memprof {

class HybridLocator {
  public:
    // Flags of one call (a distinct (return address, map, eval mark) of the native nodes).
    static constexpr uint8_t kEval = 1, kShown = 2, kStartup = 4;

    // The reader's tables as they stand; build another once it has read more.
    explicit HybridLocator(const Reader& reader);

    // The distinct calls of the nodes, in order of first use; call_of(node) indexes this.
    struct Call {
        uint64_t address;
        int32_t map;
        bool eval;
    };
    const std::vector<Call>& calls() const { return d_calls; }
    // Flags (kEval | kShown | kStartup) per call of calls(), then the per-node walk.
    void classify(const std::string& flags);

    // Where hybrid stack `index` (python node, native node) allocates, as hybrid.py's location() decides it:
    // kind 0: native node `native` shows it; kind 1: only the whole stack tells (rare: build it);
    // kind 2: Python node `python`'s innermost frame, or if it shows none native node `native`
    // (0: none).
    struct Answer {
        uint8_t kind;
        uint32_t python;
        uint32_t native;
    };
    Answer locate(uint32_t index) const;

  private:
    const Reader& d_reader;
    const std::vector<NativeNodeRecord>& d_nodes;
    std::vector<uint32_t> d_python_runs;  // per Python node id: the eval loops its whole stack runs in
    std::vector<uint32_t> d_call_of;  // per node id - 1
    std::vector<Call> d_calls;
    // Per node id (0: the root): the first node walking out from it that shows (d_shown) or is
    // an eval frame (d_eval_at), whichever comes first; the eval frames on its path; whole.
    std::vector<uint32_t> d_shown, d_eval_at, d_evals;
    std::vector<int8_t> d_whole;  // -1: no frame yet, 0/1
    std::vector<uint8_t> d_flags;  // per call
};

}  // namespace memprof
