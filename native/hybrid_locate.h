// The allocating frame of every stack of a report at once, without building the stacks, summed
// per frame: what `memprof stats` needs (Capture.location_totals). Per native node it keeps the
// first frame that shows walking out, the eval frames above and whether the stack is whole; per
// Python node, where it stands with respect to the launcher. So a report costs one pass over the
// nodes plus one step per stack, in C++, and Python makes a Frame per distinct answer only.
//
// What a frame is (eval loop, shown, start-up code) needs its symbol, and which frames are the
// launcher's is launcher.py's rule: only Python has those. The caller classifies each distinct
// call once (calls(), classify()) and hands the launcher rule over as a table per frame id
// (place_python()); this does the walking and never decides either itself.
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
    // Flags (kEval | kShown | kStartup) per call of calls(), then the per-node walk;
    // `show_interpreter_frames` as the report shows them (merge() shows an eval frame that runs
    // Python frames only then).
    void classify(const std::string& flags, bool show_interpreter_frames);

    // The launcher rule (launcher.py's Place and Launcher.place) as a table: per frame id, the place
    // a stack is at once a frame of that id is added, from each place it was at (3 bytes: from
    // BEFORE, LAUNCHER, PROGRAM; the values are Place's). Applied down the Python trie from the
    // root's BEFORE; a node at kLauncher shows no frame. Not called: no launcher, every node shows.
    static constexpr uint8_t kLauncher = 1;
    void place_python(const std::string& transitions);

    // A stack's allocating frame as a key Python turns into a Frame: kPythonFrame (frame id, line),
    // kNativeCall (index into calls(): its innermost frame), or kNoFrame.
    enum LocationKind : uint8_t { kNoFrame = 0, kPythonFrame = 1, kNativeCall = 2 };
    struct LocationTotal {
        uint8_t kind;
        uint32_t first;   // frame id or call index
        uint32_t second;  // kPythonFrame: the line
        uint64_t bytes;
        uint64_t count;
    };
    // The rows of `view` (threads and allocators merged) summed per key, largest first by each
    // key's largest row (where its first row is among rows sorted largest first). classify() must
    // have run.
    std::vector<LocationTotal> location_totals(View view) const;

    // Hybrid stack `index`'s frames, outermost first, as tokens appended to `out`: a Python node id
    // (its frame), or kCallToken | a call index (the frames of calls()[index], inlined ones
    // included). The rule of merging the two stacks lives here (see hybrid.py's module text);
    // Python only turns tokens into frames. classify() (and place_python() with a launcher) first.
    static constexpr uint32_t kCallToken = 0x80000000u;
    void assemble(uint32_t index, std::vector<uint32_t>* out) const;

  private:
    // The key of Python node `node`'s innermost frame shown (kNoFrame: the root, or the launcher's).
    LocationTotal python_key(uint32_t node) const;
    LocationTotal native_key(uint32_t node) const { return {kNativeCall, d_call_of[node - 1], 0, 0, 0}; }
    // The key of hybrid stack `index`'s innermost frame: hybrid.merge's last frame, found walking out
    // from the allocator without building the stack.
    LocationTotal hybrid_key(uint32_t index) const;
    // hybrid_key's rare case: a whole native stack with more eval frames than Python runs.
    LocationTotal past_idle_evals(uint32_t python, uint32_t native) const;

    const Reader& d_reader;
    const std::vector<NativeNodeRecord>& d_nodes;
    std::vector<uint32_t> d_python_runs;  // per Python node id: the eval loops its whole stack runs in
    std::vector<uint32_t> d_python_depth;  // per Python node id: its frames
    // Per Python node id: the depth of the first frame its stack shows (Capture.stack drops the
    // launcher's leading frames), 0 for none; empty: no launcher, every stack shows from depth 1.
    std::vector<uint32_t> d_python_start;
    bool d_show_interpreter_frames = false;
    std::vector<uint32_t> d_call_of;  // per node id - 1
    std::vector<Call> d_calls;
    // Per node id (0: the root): the first node walking out from it that shows (d_shown) or is
    // an eval frame (d_eval_at), whichever comes first; the eval frames on its path; whole.
    std::vector<uint32_t> d_shown, d_eval_at, d_evals;
    std::vector<uint32_t> d_shown_out;  // the first node from it out that shows, eval frames passed over
    std::vector<int8_t> d_whole;  // -1: no frame yet, 0/1
    std::vector<uint8_t> d_flags;  // per call
    std::vector<uint8_t> d_place;  // per Python node id (0: the root); empty: no launcher

    // assemble()'s scratch: the Python and native nodes of one stack, outermost first, and the
    // index of each Python run's first frame.
    mutable std::vector<uint32_t> d_python_path, d_native_path, d_run_starts;
};

}  // namespace memprof
