#include "hybrid_locate.h"

#include <algorithm>
#include <cstddef>
#include <unordered_map>

namespace memprof {

HybridLocator::HybridLocator(const Reader& reader) : d_reader(reader), d_nodes(reader.native_nodes()) {
    const std::vector<NativeNodeRecord>& nodes = d_nodes;
    // (address, map, eval mark) -> call: a map index fits 31 bits and the mark one, beside the address.
    struct Key {
        uint64_t address;
        uint32_t map_and_eval;
        bool operator==(const Key& other) const {
            return address == other.address && map_and_eval == other.map_and_eval;
        }
    };
    struct Hash {
        size_t operator()(const Key& key) const {
            return std::hash<uint64_t>()(key.address * 0x9E3779B97F4A7C15ull ^ key.map_and_eval);
        }
    };
    std::unordered_map<Key, uint32_t, Hash> ids;
    ids.reserve(nodes.size() / 4 + 16);
    d_call_of.reserve(nodes.size());
    for (const NativeNodeRecord& node : nodes) {
        Key key{node.address, (static_cast<uint32_t>(node.map) << 1) | (node.eval ? 1u : 0u)};
        auto [it, inserted] = ids.emplace(key, static_cast<uint32_t>(d_calls.size()));
        if (inserted) d_calls.push_back({node.address, node.map, node.eval});
        d_call_of.push_back(it->second);
    }
    // Per Python node, its whole stack's runs, one per eval loop (hybrid.py's _run_bounds): a run
    // starts at the first frame and at each frame that entered a new loop.
    const std::vector<NodeRecord>& python = d_reader.nodes();
    d_python_runs.assign(python.size() + 1, 0);
    d_python_depth.assign(python.size() + 1, 0);
    for (size_t id = 1; id <= python.size(); ++id) {
        const NodeRecord& node = python[id - 1];
        uint32_t parent = node.parent < id ? node.parent : 0;
        d_python_depth[id] = d_python_depth[parent] + 1;
        d_python_runs[id] = d_python_runs[parent] + ((node.entry || d_python_depth[parent] == 0) ? 1 : 0);
    }
}

void HybridLocator::classify(const std::string& flags, bool show_interpreter_frames) {
    d_show_interpreter_frames = show_interpreter_frames;
    d_flags.assign(flags.begin(), flags.end());
    d_flags.resize(d_calls.size(), 0);
    size_t count = d_nodes.size() + 1;
    d_shown.assign(count, 0);
    d_eval_at.assign(count, 0);
    d_evals.assign(count, 0);
    d_whole.assign(count, -1);
    d_shown_out.assign(count, 0);
    // A node's parent comes before it (the decoder refuses a parent not yet defined), so one pass
    // in id order sees every parent done.
    for (size_t id = 1; id < count; ++id) {
        const NativeNodeRecord& node = d_nodes[id - 1];
        uint8_t call = d_flags[d_call_of[id - 1]];
        uint32_t parent = node.parent < id ? node.parent : 0;
        if (call & kEval) {
            d_eval_at[id] = static_cast<uint32_t>(id);
        } else if (call & kShown) {
            d_shown[id] = static_cast<uint32_t>(id);
        } else {
            d_shown[id] = d_shown[parent];
            d_eval_at[id] = d_eval_at[parent];
        }
        d_shown_out[id] = (call & kShown) ? static_cast<uint32_t>(id) : d_shown_out[parent];
        d_evals[id] = d_evals[parent] + ((call & kEval) ? 1 : 0);
        // hybrid.whole_after: the outermost frame decides.
        d_whole[id] = d_whole[parent] < 0 ? ((call & kStartup) ? 1 : 0) : d_whole[parent];
    }
}

HybridLocator::LocationTotal HybridLocator::hybrid_key(uint32_t index) const {
    const std::vector<std::pair<uint32_t, uint32_t>>& pairs = d_reader.stack_pairs();
    if (index >= pairs.size()) return {kNoFrame, 0, 0, 0, 0};
    auto [python, native] = pairs[index];
    if (native >= d_shown.size()) native = 0;
    if (python >= d_python_runs.size()) python = 0;
    if (d_shown[native]) return native_key(d_shown[native]);
    // merge() puts the last Python run at the innermost eval frame, unless a whole native stack has
    // more eval frames than there are runs: then that eval frame runs no frame shown.
    if (d_whole[native] == 1 && d_python_runs[python] < d_evals[native]) return past_idle_evals(python, native);
    // Python's innermost frame, else the first frame that shows from the eval frame out (the eval
    // frame itself when the interpreter's frames show; eval frames do not stop this walk).
    LocationTotal key = python_key(python);
    uint32_t beyond = d_shown_out[d_eval_at[native]];
    if (key.kind == kNoFrame && beyond) key = native_key(beyond);
    return key;
}

HybridLocator::LocationTotal HybridLocator::past_idle_evals(uint32_t python, uint32_t native) const {
    // merge() on a whole stack: the i-th eval frame from the outermost runs the i-th run, the ones
    // past the runs run none. Walk out from the innermost eval frame to the first frame that shows.
    const std::vector<NodeRecord>& nodes = d_reader.nodes();
    uint32_t runs = d_python_runs[python];
    uint32_t start = d_python_start.empty() ? 1 : d_python_start[python];
    uint32_t frame_node = python;  // walks up to the last frame of the run at hand
    uint32_t eval = d_eval_at[native];
    for (uint32_t position = d_evals[native]; eval && position > 0; --position) {
        uint8_t call = d_flags[d_call_of[eval - 1]];
        if (position > runs) {  // runs no frame: shown as itself if it shows
            if (call & kShown) return native_key(eval);
        } else {
            // The run's last frame is the deepest one whose stack has `position` runs.
            while (frame_node && d_python_runs[frame_node] > position) frame_node = nodes[frame_node - 1].parent;
            if (frame_node && start && d_python_depth[frame_node] >= start) {
                return {kPythonFrame, nodes[frame_node - 1].frame, nodes[frame_node - 1].line, 0, 0};
            }
            if (d_show_interpreter_frames) return native_key(eval);  // an empty run (the launcher's)
        }
        uint32_t outer = d_nodes[eval - 1].parent;
        if (d_shown[outer]) return native_key(d_shown[outer]);  // the frames between two eval frames
        eval = d_eval_at[outer];
    }
    return {kNoFrame, 0, 0, 0, 0};
}

// The capture gives, per allocation, the Python stack (each frame flagged when it entered a new C
// eval loop rather than being run inline by its caller's loop) and the native stack. Python frames
// are cut into runs, one per eval loop (a run starts at the first frame and at each entry frame),
// the launcher's frames included so that runs still count loops, and the runs are matched to the
// eval frames of the native stack. When the native stack is whole (its outermost frame is process
// or thread start-up code) they are matched from the outermost in: the n-th eval loop entered runs
// the n-th run, and an eval frame left over at the inner end is a loop entered whose first frame is
// not pushed yet (a C function calling back into Python, caught allocating the new frame), which
// runs no frame shown. A native stack cut at its maximum depth (or one with more runs than loops)
// has lost its outermost frames, so there they are matched from the innermost out, and leftover
// Python frames join the outermost eval frame's (or come first, when no eval frame was unwound).
// The launcher's frames are dropped last: a run keeps only the frames Capture.stack shows. An eval
// frame shows when it runs Python frames and the interpreter's frames show, or when it runs none
// and its flags say it shows; other frames show by their flags.
void HybridLocator::assemble(uint32_t index, std::vector<uint32_t>* out) const {
    const std::vector<std::pair<uint32_t, uint32_t>>& pairs = d_reader.stack_pairs();
    if (index >= pairs.size()) return;
    auto [python, native] = pairs[index];
    if (native >= d_shown.size()) native = 0;
    if (python >= d_python_runs.size()) python = 0;

    const std::vector<NodeRecord>& nodes = d_reader.nodes();
    d_python_path.clear();
    for (uint32_t node = python; node; node = nodes[node - 1].parent < node ? nodes[node - 1].parent : 0) {
        d_python_path.push_back(node);
    }
    std::reverse(d_python_path.begin(), d_python_path.end());
    const size_t depth = d_python_path.size();
    d_run_starts.clear();
    for (size_t at = 0; at < depth; ++at) {
        if (at == 0 || nodes[d_python_path[at] - 1].entry) d_run_starts.push_back(static_cast<uint32_t>(at));
    }
    const size_t runs = d_run_starts.size();
    d_run_starts.push_back(static_cast<uint32_t>(depth));
    // The first frame shown (by depth, from 1; 0: none), as Capture.stack drops the launcher's.
    const uint32_t start = python == 0 ? 0 : d_python_start.empty() ? 1 : d_python_start[python];
    const size_t first_shown = start ? start - 1 : depth;
    auto python_frames = [&](size_t from_run, size_t to_run) {  // runs [from_run, to_run]
        for (size_t at = std::max<size_t>(d_run_starts[from_run], first_shown); at < d_run_starts[to_run + 1]; ++at) {
            out->push_back(d_python_path[at]);
        }
    };

    d_native_path.clear();
    for (uint32_t node = native; node; node = d_nodes[node - 1].parent < node ? d_nodes[node - 1].parent : 0) {
        d_native_path.push_back(node);
    }
    std::reverse(d_native_path.begin(), d_native_path.end());
    const size_t evals = d_evals[native];
    const bool whole = d_whole[native] == 1;

    // Eval frame e (from the outermost, from 0) runs Python run e + shift, if that is a run: whole
    // stacks from the outermost in, others from the innermost out. Runs before the first one placed
    // (leftover) join eval frame 0's.
    const bool outermost_in = whole && runs <= evals;
    const ptrdiff_t shift = outermost_in ? 0 : static_cast<ptrdiff_t>(runs) - static_cast<ptrdiff_t>(evals);
    if (evals == 0 && !outermost_in && runs) python_frames(0, runs - 1);
    size_t eval = 0;
    for (uint32_t node : d_native_path) {
        uint32_t call = d_call_of[node - 1];
        uint8_t flags = d_flags[call];
        if (!(flags & kEval)) {
            if (flags & kShown) out->push_back(kCallToken | call);
            continue;
        }
        ptrdiff_t run = static_cast<ptrdiff_t>(eval) + shift;
        if (run >= 0 && static_cast<size_t>(run) < runs) {
            if (d_show_interpreter_frames) out->push_back(kCallToken | call);
            python_frames(eval == 0 && shift > 0 ? 0 : static_cast<size_t>(run), static_cast<size_t>(run));
        } else if (flags & kShown) {
            out->push_back(kCallToken | call);
        }
        ++eval;
    }
}

void HybridLocator::place_python(const std::string& transitions) {
    const std::vector<NodeRecord>& nodes = d_reader.nodes();
    d_place.assign(nodes.size() + 1, 0);
    for (size_t id = 1; id <= nodes.size(); ++id) {
        const NodeRecord& node = nodes[id - 1];
        uint8_t above = d_place[node.parent < id ? node.parent : 0];
        size_t at = static_cast<size_t>(node.frame) * 3 + above;
        // A frame id the table lacks (a damaged capture's stand-in) leaves the place as it was.
        d_place[id] = at < transitions.size() && above < 3 ? static_cast<uint8_t>(transitions[at]) : above;
    }
    // As Capture.stack: a node at the launcher's shows nothing, the first one past it starts the stack.
    d_python_start.assign(nodes.size() + 1, 1);
    for (size_t id = 1; id <= nodes.size(); ++id) {
        uint32_t parent = nodes[id - 1].parent < id ? nodes[id - 1].parent : 0;
        if (d_place[id] == kLauncher) {
            d_python_start[id] = 0;
        } else if (d_place[parent] == kLauncher) {
            d_python_start[id] = d_python_depth[id];
        } else {
            d_python_start[id] = d_python_start[parent];
        }
    }
}

HybridLocator::LocationTotal HybridLocator::python_key(uint32_t node) const {
    const std::vector<NodeRecord>& nodes = d_reader.nodes();
    if (node == 0 || node > nodes.size()) return {kNoFrame, 0, 0, 0, 0};
    if (node < d_place.size() && d_place[node] == kLauncher) return {kNoFrame, 0, 0, 0, 0};
    return {kPythonFrame, nodes[node - 1].frame, nodes[node - 1].line, 0, 0};
}

std::vector<HybridLocator::LocationTotal> HybridLocator::location_totals(View view) const {
    std::vector<LocationTotal> out;
    // Each key's first row in Reader::rows' order (bytes, count, then stack id): the keys are put in
    // that order at the end, without sorting every row (a --native capture has tens of thousands of
    // stacks and a few thousand keys).
    struct First {
        uint64_t bytes, count;
        uint32_t stack;
        bool before(const First& other) const {
            if (bytes != other.bytes) return bytes > other.bytes;
            if (count != other.count) return count > other.count;
            return stack < other.stack;
        }
    };
    std::vector<First> first;
    // Where each key's entry is in `out`.
    std::unordered_map<uint64_t, size_t> python_at;
    std::vector<size_t> call_at(d_calls.size(), SIZE_MAX);
    size_t none_at = SIZE_MAX;
    for (const StackRow& row : d_reader.rows(view, true, true, false)) {
        LocationTotal key = (row.stack & kHybridStack) ? hybrid_key(row.stack & ~kHybridStack) : python_key(row.stack);
        size_t* at = &none_at;
        if (key.kind == kPythonFrame) {
            auto found = python_at.emplace((static_cast<uint64_t>(key.first) << 32) | key.second, SIZE_MAX).first;
            at = &found->second;
        } else if (key.kind == kNativeCall) {
            at = &call_at[key.first];
        }
        if (*at == SIZE_MAX) {
            *at = out.size();
            out.push_back(key);
            first.push_back({row.bytes, row.count, row.stack});
        }
        out[*at].bytes += row.bytes;
        out[*at].count += row.count;
        First here{row.bytes, row.count, row.stack};
        if (here.before(first[*at])) first[*at] = here;
    }
    std::vector<size_t> order(out.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&first](size_t a, size_t b) { return first[a].before(first[b]); });
    std::vector<LocationTotal> sorted;
    sorted.reserve(out.size());
    for (size_t i : order) sorted.push_back(out[i]);
    return sorted;
}

}  // namespace memprof
