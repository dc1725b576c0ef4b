#include "nativestack.h"

#include <link.h>
#include <unistd.h>
#include <unwind.h>

#include <elf.h>

#include <climits>
#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "flat_map.h"
#include "pyframes.h"
#include "recorder.h"
#include "tracker.h"

namespace memprof::nativestack {
namespace {

// This extension's own address range: its frames (hook, tracker) are not the program's. Set by
// the first read_maps(), which start() calls before any hook is installed; never changes after.
uintptr_t g_self_start = 0;
uintptr_t g_self_end = 0;

// (parent node, return address) -> node id. Tracker lock held.
FlatMap<uint32_t, EdgeKey> g_trie;
struct NodeInfo {
    uint32_t parent;
    uintptr_t address;
    bool eval;
};
std::vector<NodeInfo> g_nodes;  // index = node id - 1: every node of the stream, for a fork child
uint32_t g_generation = 1;      // bumped when the trie is cleared; per-thread caches compare it
std::vector<Mapping> g_maps;    // the latest recorded set, for a fork child
// Return address -> whether it lies in the interpreter's eval loop (kEval) or not (kOther), told
// once per address (see classify). Tracker lock held.
constexpr uint8_t kOther = 1, kEval = 2;
FlatMap<uint8_t> g_address_kinds;
// MEMPROF_UNWIND=libgcc (read at start): every stack through _Unwind_Backtrace, so the tests can
// hold the fast unwinder to the same results.
bool g_libgcc_only = false;

struct UnwindRun {
    uintptr_t* out;
    uintptr_t* frames;
    int count;
    int max;
    bool in_self;  // still inside our own frames (the innermost ones)
};

_Unwind_Reason_Code collect(struct _Unwind_Context* context, void* arg) {
    auto* run = static_cast<UnwindRun*>(arg);
    int before_instruction = 0;
    uintptr_t address = _Unwind_GetIPInfo(context, &before_instruction);
    if (address == 0) return _URC_END_OF_STACK;
    // A signal frame's address is the interrupted instruction itself, not a return address:
    // stored + 1 so that the reader's "address - 1 is inside the call" holds for every frame.
    if (before_instruction) address += 1;
    // At this callback libgcc's CFA is that of the frame called from here: this frame's lowest
    // stack address.
    uintptr_t frame_start = _Unwind_GetCFA(context);
    if (run->in_self) {
        if (address > g_self_start && address <= g_self_end) return _URC_NO_REASON;
        run->in_self = false;
    }
    if (run->count >= run->max) return _URC_END_OF_STACK;
    run->frames[run->count] = frame_start;
    run->out[run->count++] = address;
    return _URC_NO_REASON;
}

// Tells, for each return address of this stack not told before, whether it lies in the
// interpreter's eval loop. The eval loop keeps a marker of each activation on the C stack (see
// pyframes.h): the frame whose stack range holds a marker is that loop's. Symbol names cannot
// tell this where the interpreter is stripped (Debian's and Ubuntu's python3), nor for the parts
// of the loop that an optimising build moves out of the function's symbol (".cold" code).
// Stack ranges: frame i spans [frames[i], frames[i + 1]); the outermost frame's end is unknown,
// and it is never the eval loop (process or thread start-up). Only the innermost `count` of the
// stack's `total` addresses are looked at: the others are the thread's previous stack, told already.
void classify(const uintptr_t* addresses, const uintptr_t* frames, int count, int total) {
    bool unknown = false;
    for (int i = 0; i < count && !unknown; ++i) unknown = g_address_kinds.find(addresses[i]) == nullptr;
    if (!unknown) return;
    thread_local std::vector<uintptr_t> markers;
    eval_loop_markers(markers);
    for (int i = 0; i < count; ++i) {
        auto [slot, inserted] = g_address_kinds.insert(addresses[i]);
        if (!inserted) continue;
        bool eval = false;
        for (uintptr_t marker : markers) {
            eval = eval || (i + 1 < total && marker >= frames[i] && marker < frames[i + 1]);
        }
        *slot = eval ? kEval : kOther;
    }
}

uint32_t intern_edge(uint32_t parent, uintptr_t address) {
    auto [slot, inserted] = g_trie.insert(EdgeKey{parent, address});
    if (inserted) {
        const uint8_t* kind = g_address_kinds.find(address);
        bool eval = kind && *kind == kEval;
        g_nodes.push_back({parent, address, eval});
        *slot = static_cast<uint32_t>(g_nodes.size());
        tracker::recorder().native_node(parent, address, eval);
    }
    return *slot;
}

struct MapsRun {
    std::vector<Mapping>* out;
    uintptr_t self_address;
    bool first;
};

// The GNU build ID from the object's notes, as loaded in memory: at report time it tells the
// library that was loaded from another one at the same path (rebuilt, another machine's).
std::string build_id_of(const struct dl_phdr_info* info) {
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& segment = info->dlpi_phdr[i];
        if (segment.p_type != PT_NOTE) continue;
        const auto* pos = reinterpret_cast<const uint8_t*>(info->dlpi_addr + segment.p_vaddr);
        const uint8_t* end = pos + segment.p_memsz;
        while (end - pos >= static_cast<ptrdiff_t>(sizeof(ElfW(Nhdr)))) {
            const auto* note = reinterpret_cast<const ElfW(Nhdr)*>(pos);
            size_t name_size = (note->n_namesz + 3) & ~static_cast<size_t>(3);
            size_t desc_size = (note->n_descsz + 3) & ~static_cast<size_t>(3);
            const uint8_t* name = pos + sizeof(ElfW(Nhdr));
            if (static_cast<size_t>(end - name) < name_size + desc_size) break;
            if (note->n_type == NT_GNU_BUILD_ID && note->n_namesz == 4 && memcmp(name, "GNU", 4) == 0) {
                return std::string(reinterpret_cast<const char*>(name + name_size), note->n_descsz);
            }
            pos = name + name_size + desc_size;
        }
    }
    return std::string();
}

int add_object(struct dl_phdr_info* info, size_t, void* arg) {
    auto* run = static_cast<MapsRun*>(arg);
    bool first = run->first;
    run->first = false;
    std::string path = info->dlpi_name ? info->dlpi_name : "";
    if (path.empty()) {
        // Only the main program has no name; other nameless objects are loader internals.
        if (!first) return 0;
        char buffer[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", buffer, sizeof(buffer) - 1);
        if (n <= 0) return 0;
        path.assign(buffer, static_cast<size_t>(n));
    }
    // The vDSO has no file to symbolise from, and no allocation is ever made inside it.
    if (path.find("linux-vdso") != std::string::npos || path.find("linux-gate") != std::string::npos) return 0;
    uintptr_t low = UINTPTR_MAX, high = 0;
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& segment = info->dlpi_phdr[i];
        if (segment.p_type != PT_LOAD) continue;
        uintptr_t start = info->dlpi_addr + segment.p_vaddr;
        uintptr_t end = start + segment.p_memsz;
        if (start < low) low = start;
        if (end > high) high = end;
        if (segment.p_flags & PF_X) run->out->push_back({start, end, info->dlpi_addr, path, build_id_of(info)});
    }
    if (run->self_address >= low && run->self_address < high) {
        g_self_start = low;
        g_self_end = high;
    }
    return 0;
}

}  // namespace

int unwind(NativeCache& cache, uintptr_t* out, uintptr_t* frames, int max, uintptr_t start_ra,
           uintptr_t start_frame) {
    // After dlclose an address may belong to another object: the rules are per generation.
    uint32_t generation = __atomic_load_n(&g_generation, __ATOMIC_RELAXED);
    if (!g_libgcc_only) {
        int count = unwind::unwind(cache.rules, generation, g_self_start, g_self_end, out, frames, max, start_ra,
                                   start_frame);
        if (count >= 0) return count;
    }
    UnwindRun run{out, frames, 0, max, true};
    _Unwind_Backtrace(collect, &run);
    return run.count;
}

uint32_t intern(NativeCache& cache, const uintptr_t* addresses, const uintptr_t* frames, int count) {
    if (cache.generation != g_generation) {
        cache.addresses.clear();
        cache.nodes.clear();
        cache.generation = g_generation;
    }
    size_t n = static_cast<size_t>(count);
    // The outer frames usually match the previous allocation's: reuse their nodes. Their
    // addresses were classified when those nodes were made, in this generation.
    size_t common = 0;
    size_t limit = cache.addresses.size() < n ? cache.addresses.size() : n;
    while (common < limit && cache.addresses[common] == addresses[n - 1 - common]) ++common;
    classify(addresses, frames, static_cast<int>(n - common), count);
    cache.addresses.resize(n);
    cache.nodes.resize(n);
    uint32_t parent = common ? cache.nodes[common - 1] : 0;
    for (size_t i = common; i < n; ++i) {
        uintptr_t address = addresses[n - 1 - i];
        parent = intern_edge(parent, address);
        cache.addresses[i] = address;
        cache.nodes[i] = parent;
    }
    return n ? parent : 0;
}

void reset() {
    const char* choice = getenv("MEMPROF_UNWIND");
    g_libgcc_only = choice && strcmp(choice, "libgcc") == 0;
    g_trie.clear();
    g_nodes.clear();
    g_address_kinds.clear();
    ++g_generation;
}

void invalidate() {
    g_trie.clear();
    g_address_kinds.clear();  // an address may now be another library's code
    ++g_generation;
}

std::vector<Mapping> read_maps() {
    std::vector<Mapping> maps;
    MapsRun run{&maps, reinterpret_cast<uintptr_t>(&unwind), true};
    dl_iterate_phdr(add_object, &run);
    return maps;
}

void emit_maps(Recorder& recorder, std::vector<Mapping> maps) {
    recorder.maps_begin();
    for (const Mapping& map : maps) recorder.map(map.start, map.end, map.load_base, map.path, map.build_id);
    g_maps = std::move(maps);
}

void emit_tables(Recorder& recorder) {
    if (g_maps.empty() && g_nodes.empty()) return;
    recorder.maps_begin();
    for (const Mapping& map : g_maps) recorder.map(map.start, map.end, map.load_base, map.path, map.build_id);
    for (const NodeInfo& node : g_nodes) recorder.native_node(node.parent, node.address, node.eval);
}

}  // namespace memprof::nativestack
