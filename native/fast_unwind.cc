#include "fast_unwind.h"
#include "leb128.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

// libgcc's FDE lookup (exported since GCC 3.0; lock-free with glibc's _dl_find_object). It finds
// the FDE; decoding it is ours.
extern "C" {
struct dwarf_eh_bases {
    void* tbase;
    void* dbase;
    void* func;
};
const void* _Unwind_Find_FDE(void* pc, struct dwarf_eh_bases* bases);
}

namespace memprof::unwind {

#if defined(__x86_64__)

namespace {

// Rule kinds. UNSUPPORTED is 0 so that a fresh cache slot never reads as a usable rule.
enum Kind : uint8_t { UNSUPPORTED = 0, CFA_RSP = 1, CFA_RBP = 2, CFA_DEREF_RBP = 3, END = 4 };
constexpr uint64_t kRbp = 6, kRsp = 7, kReturnAddress = 16;  // DWARF register numbers on x86_64

// How to step from a frame at one address to its caller, packed in 64 bits:
// kind (8 bits) | CFA offset (24, signed) | return-address offset from CFA (16, signed) |
// saved-rbp offset from CFA (16, signed; 0: rbp is not saved by this frame).
struct Rule {
    uint8_t kind;
    int32_t cfa_offset;
    int16_t ra_offset;
    int16_t rbp_offset;
};

uint64_t pack(const Rule& rule) {
    return static_cast<uint64_t>(rule.kind) | (static_cast<uint64_t>(static_cast<uint32_t>(rule.cfa_offset) & 0xffffff) << 8) |
           (static_cast<uint64_t>(static_cast<uint16_t>(rule.ra_offset)) << 32) |
           (static_cast<uint64_t>(static_cast<uint16_t>(rule.rbp_offset)) << 48);
}

Rule unpack(uint64_t value) {
    int32_t offset = static_cast<int32_t>((value >> 8) & 0xffffff);
    if (offset & 0x800000) offset -= 0x1000000;
    return {static_cast<uint8_t>(value & 0xff), offset, static_cast<int16_t>(value >> 32), static_cast<int16_t>(value >> 48)};
}

struct Bytes {
    const uint8_t* pos;
    const uint8_t* end;
    bool ok = true;

    uint8_t u8() {
        if (pos >= end) return fail();
        return *pos++;
    }
    uint64_t fixed(int size) {
        if (end - pos < size) return fail();
        uint64_t value = 0;
        memcpy(&value, pos, static_cast<size_t>(size));
        pos += size;
        return value;
    }
    uint64_t uleb() {
        uint64_t value;
        return read_uleb128([this] { return u8(); }, &value) ? value : fail();
    }
    int64_t sleb() {
        int64_t value;
        return read_sleb128([this] { return u8(); }, &value) ? value : fail();
    }
    void skip(uint64_t count) {
        if (static_cast<uint64_t>(end - pos) < count) {
            fail();
            return;
        }
        pos += count;
    }
    uint8_t fail() {
        ok = false;
        pos = end;
        return 0;
    }
};

// Skips a pointer in encoding `encoding` (DW_EH_PE_*); false for one we do not know.
bool skip_pointer(Bytes& bytes, uint8_t encoding) {
    if (encoding == 0xff) return true;  // omitted
    if ((encoding & 0x70) == 0x50) return false;  // aligned: never emitted by GCC or clang
    switch (encoding & 0x0f) {
        case 0x00: case 0x04: case 0x0c: bytes.skip(8); break;
        case 0x02: case 0x0a: bytes.skip(2); break;
        case 0x03: case 0x0b: bytes.skip(4); break;
        case 0x01: bytes.uleb(); break;
        case 0x09: bytes.sleb(); break;
        default: return false;
    }
    return bytes.ok;
}

// A register's rule while the CFA program runs.
enum How : uint8_t { SAME = 0, AT_CFA = 1, UNDEFINED = 2, OTHER = 3 };
struct Register {
    How how;
    int64_t offset;
};
struct State {
    uint64_t cfa_register;
    int64_t cfa_offset;
    bool cfa_deref_rbp;  // CFA = *(rbp + cfa_offset), GCC's form after realigning the stack
    bool cfa_other;      // any other CFA expression
    Register rbp, ra;
};

Register* tracked(State& state, uint64_t reg) {
    if (reg == kRbp) return &state.rbp;
    if (reg == kReturnAddress) return &state.ra;
    return nullptr;
}

// Runs CFA instructions while the location stays at or before `target`.
bool run(Bytes bytes, uint64_t location, uint64_t target, uint64_t code_align, int64_t data_align, State& state,
         const State& initial) {
    State saved[8];
    int depth = 0;
    auto set = [&](uint64_t reg, How how, int64_t offset) {
        if (Register* r = tracked(state, reg)) *r = {how, offset};
    };
    auto advance = [&](uint64_t delta) {
        location += delta * code_align;
        return location <= target;
    };
    while (bytes.pos < bytes.end) {
        uint8_t op = bytes.u8();
        uint8_t operand = op & 0x3f;
        switch (op & 0xc0) {
            case 0x40:  // advance_loc
                if (!advance(operand)) return true;
                continue;
            case 0x80:  // offset
                set(operand, AT_CFA, static_cast<int64_t>(bytes.uleb()) * data_align);
                continue;
            case 0xc0:  // restore
                if (Register* r = tracked(state, operand)) *r = *tracked(const_cast<State&>(initial), operand);
                continue;
            default: break;
        }
        switch (op) {
            case 0x00: break;  // nop
            case 0x02: if (!advance(bytes.u8())) return true; break;
            case 0x03: if (!advance(bytes.fixed(2))) return true; break;
            case 0x04: if (!advance(bytes.fixed(4))) return true; break;
            case 0x05: {  // offset_extended
                uint64_t reg = bytes.uleb();
                set(reg, AT_CFA, static_cast<int64_t>(bytes.uleb()) * data_align);
                break;
            }
            case 0x06: {  // restore_extended
                uint64_t reg = bytes.uleb();
                if (Register* r = tracked(state, reg)) *r = *tracked(const_cast<State&>(initial), reg);
                break;
            }
            case 0x07: set(bytes.uleb(), UNDEFINED, 0); break;
            case 0x08: set(bytes.uleb(), SAME, 0); break;
            case 0x09: {  // register: saved in another register
                uint64_t reg = bytes.uleb();
                bytes.uleb();
                set(reg, OTHER, 0);
                break;
            }
            case 0x0a:  // remember_state
                if (depth == 8) return false;
                saved[depth++] = state;
                break;
            case 0x0b:  // restore_state: the whole row, CFA included (as libgcc does; GCC
                        // brackets mid-function epilogues with remember/restore)
                if (depth == 0) return false;
                state = saved[--depth];
                break;
            case 0x0c:  // def_cfa
                state.cfa_register = bytes.uleb();
                state.cfa_offset = static_cast<int64_t>(bytes.uleb());
                state.cfa_deref_rbp = state.cfa_other = false;
                break;
            case 0x0d:
                state.cfa_register = bytes.uleb();
                state.cfa_deref_rbp = state.cfa_other = false;
                break;
            case 0x0e: state.cfa_offset = static_cast<int64_t>(bytes.uleb()); break;
            case 0x0f: {  // def_cfa_expression: only DW_OP_breg6 <offset>; DW_OP_deref is understood
                uint64_t length = bytes.uleb();
                Bytes expression{bytes.pos, bytes.pos + length};
                bytes.skip(length);
                state.cfa_deref_rbp = false;
                state.cfa_other = true;
                if (expression.u8() == 0x76) {
                    int64_t offset = expression.sleb();
                    if (expression.u8() == 0x06 && expression.ok && expression.pos == expression.end) {
                        state.cfa_offset = offset;
                        state.cfa_deref_rbp = true;
                        state.cfa_other = false;
                    }
                }
                break;
            }
            case 0x10: case 0x16: {  // expression, val_expression
                uint64_t reg = bytes.uleb();
                bytes.skip(bytes.uleb());
                set(reg, OTHER, 0);
                break;
            }
            case 0x11: {  // offset_extended_sf
                uint64_t reg = bytes.uleb();
                set(reg, AT_CFA, bytes.sleb() * data_align);
                break;
            }
            case 0x12:  // def_cfa_sf
                state.cfa_register = bytes.uleb();
                state.cfa_offset = bytes.sleb() * data_align;
                state.cfa_deref_rbp = state.cfa_other = false;
                break;
            case 0x13: state.cfa_offset = bytes.sleb() * data_align; break;
            case 0x14: {  // val_offset
                uint64_t reg = bytes.uleb();
                bytes.uleb();
                set(reg, OTHER, 0);
                break;
            }
            case 0x15: {  // val_offset_sf
                uint64_t reg = bytes.uleb();
                bytes.sleb();
                set(reg, OTHER, 0);
                break;
            }
            case 0x2e: bytes.uleb(); break;  // GNU_args_size
            case 0x2f: {                      // GNU_negative_offset_extended
                uint64_t reg = bytes.uleb();
                set(reg, AT_CFA, -static_cast<int64_t>(bytes.uleb()) * data_align);
                break;
            }
            default: return false;  // set_loc and anything newer: not cached
        }
        if (!bytes.ok) return false;
    }
    return bytes.ok;
}

// Decodes the rule at `target`; false if its CFI is of a shape we do not cache.
bool decode(uintptr_t target, Rule* rule) {
    dwarf_eh_bases bases;
    const auto* fde = static_cast<const uint8_t*>(_Unwind_Find_FDE(reinterpret_cast<void*>(target), &bases));
    if (!fde) {
        *rule = {END, 0, 0, 0};  // no unwind information: the stack ends here, as for libgcc
        return true;
    }
    Bytes f{fde, fde + 8};
    uint32_t length = static_cast<uint32_t>(f.fixed(4));
    if (length == 0xffffffff || length < 8) return false;  // 64-bit DWARF: never in .eh_frame in practice
    f.end = fde + 4 + length;
    const uint8_t* cie_field = f.pos;
    const uint8_t* cie = cie_field - static_cast<uint32_t>(f.fixed(4));

    Bytes c{cie, cie + 8};
    uint32_t cie_length = static_cast<uint32_t>(c.fixed(4));
    if (cie_length == 0xffffffff || cie_length < 8) return false;
    c.end = cie + 4 + cie_length;
    if (c.fixed(4) != 0) return false;  // not a CIE
    uint8_t version = c.u8();
    const char* augmentation = reinterpret_cast<const char*>(c.pos);
    size_t augmentation_length = strnlen(augmentation, static_cast<size_t>(c.end - c.pos));
    c.skip(augmentation_length + 1);
    uint64_t code_align = c.uleb();
    int64_t data_align = c.sleb();
    uint64_t ra_register = version == 1 ? c.u8() : c.uleb();
    if (ra_register != kReturnAddress || !c.ok) return false;
    uint8_t fde_encoding = 0;
    bool has_z = augmentation_length > 0 && augmentation[0] == 'z';
    if (augmentation_length > 0 && !has_z) return false;
    if (has_z) {
        uint64_t data_length = c.uleb();
        const uint8_t* data_end = c.pos + data_length;
        for (size_t i = 1; i < augmentation_length; ++i) {
            switch (augmentation[i]) {
                case 'R': fde_encoding = c.u8(); break;
                case 'P': if (!skip_pointer(c, c.u8())) return false; break;
                case 'L': c.u8(); break;
                case 'S': return false;  // a signal frame: libgcc's job
                case 'B': break;
                default: return false;
            }
        }
        if (!c.ok || data_end > c.end) return false;
        c.pos = data_end;
    }
    // The FDE: pc_begin (we have it from libgcc), pc_range, augmentation data, instructions.
    if (!skip_pointer(f, fde_encoding) || !skip_pointer(f, fde_encoding & 0x0f)) return false;
    if (has_z) f.skip(f.uleb());
    if (!f.ok) return false;

    State state{kRsp, 8, false, false, {SAME, 0}, {SAME, 0}};
    uint64_t start = reinterpret_cast<uint64_t>(bases.func);
    if (!run(c, start, UINT64_MAX, code_align, data_align, state, state)) return false;
    State initial = state;
    if (!run(f, start, target, code_align, data_align, state, initial)) return false;

    if (state.ra.how == UNDEFINED) {
        *rule = {END, 0, 0, 0};
        return true;
    }
    if (state.ra.how != AT_CFA || state.cfa_other) return false;
    if (state.rbp.how != SAME && state.rbp.how != AT_CFA) return false;
    Kind kind = state.cfa_deref_rbp ? CFA_DEREF_RBP
                : state.cfa_register == kRsp ? CFA_RSP
                : state.cfa_register == kRbp ? CFA_RBP
                                              : UNSUPPORTED;
    if (kind == UNSUPPORTED) return false;
    auto fits = [](int64_t value, int64_t limit) { return value > -limit && value < limit; };
    if (!fits(state.cfa_offset, 1 << 23) || !fits(state.ra.offset, 1 << 15) || !fits(state.rbp.offset, 1 << 15)) {
        return false;
    }
    if (state.rbp.how == AT_CFA && state.rbp.offset == 0) return false;  // 0 means "unchanged" once packed
    *rule = {kind, static_cast<int32_t>(state.cfa_offset), static_cast<int16_t>(state.ra.offset),
             static_cast<int16_t>(state.rbp.how == AT_CFA ? state.rbp.offset : 0)};
    return true;
}

// Not pthread_getattr_np: it holds the thread's own lock while it allocates (its CPU set), so a
// first unwind of a thread from inside it (Python 3.14 calls it in every new thread) would wait
// for that lock forever. glibc puts a thread's descriptor at the top of its stack, above every
// frame, so pthread_self() bounds the stack; the main thread's frames all lie below the stack
// pointer the process started with.
extern "C" void* __libc_stack_end;  // ld.so's: the stack pointer at process start

uintptr_t stack_end_of_this_thread() {
    if (syscall(SYS_gettid) == getpid()) return reinterpret_cast<uintptr_t>(__libc_stack_end);
    return static_cast<uintptr_t>(pthread_self());
}

// Whether every word the previous unwind read still holds the same value, in its steps
// steps[0, end) (outermost first: the steps from the join outwards).
bool same_words(const std::vector<Step>& steps, size_t end) {
    for (size_t i = 0; i < end; ++i) {
        const Step& step = steps[i];
        for (int j = 0; j < 3; ++j) {
            if (step.load_address[j] && *reinterpret_cast<const uintptr_t*>(step.load_address[j]) != step.load_value[j]) {
                return false;
            }
        }
    }
    return true;
}

// previous = its first `keep` steps, then `inner` (innermost first) reversed after them.
void keep_outer(std::vector<Step>& previous, size_t keep, const std::vector<Step>& inner) {
    previous.resize(keep);
    previous.insert(previous.end(), inner.rbegin(), inner.rend());
}

}  // namespace

__attribute__((noinline)) int unwind(RuleCache& cache, uint32_t generation, uintptr_t skip_start, uintptr_t skip_end,
                                     uintptr_t* out, uintptr_t* frames, int max, uintptr_t start_ra,
                                     uintptr_t start_frame) {
    if (cache.generation != generation) {
        cache.rules.clear();
        cache.previous.clear();
        cache.previous_whole = false;
        cache.generation = generation;
    }
    if (cache.stack_end == 0) cache.stack_end = stack_end_of_this_thread();
    uintptr_t stack_end = cache.stack_end;
    if (stack_end == 0) return -1;
    uintptr_t pc, sp, bp;
    asm volatile("leaq 0(%%rip), %0\n\tmovq %%rsp, %1\n\tmovq %%rbp, %2" : "=r"(pc), "=r"(sp), "=r"(bp));
    // The previous unwind's steps, outermost first: a join keeps the outer ones where they are
    // and only the new inner steps are written (storing them innermost first meant copying all).
    std::vector<Step>& previous = cache.previous;
    std::vector<Step>& current = cache.current;  // this unwind's new steps, innermost first
    current.clear();
    // Candidate join: previous[join - 1] is the innermost step not yet passed (join 0: none).
    size_t join = cache.previous_whole ? previous.size() : 0;
    bool whole = false;
    int count = 0;
    bool in_self = true;
    auto emit = [&](uintptr_t ra, uintptr_t cfa) {
        if (in_self && ra > skip_start && ra <= skip_end) return;
        in_self = false;
        frames[count] = cfa;
        out[count++] = ra;
    };
    // The first rule is for this very instruction; every later one for a call instruction, the
    // byte before a return address.
    uintptr_t target = pc;
    // A frame-pointer frame: rbp saved at the frame pointer, the return address above it, the
    // CFA above that. Taken only if the words say so and lie in this thread's stack.
    if (start_frame && start_frame >= sp && start_frame + 16 <= stack_end && start_frame % 8 == 0 && start_ra &&
        *reinterpret_cast<const uintptr_t*>(start_frame + 8) == start_ra) {
        uintptr_t cfa = start_frame + 16;
        emit(start_ra, cfa);
        sp = cfa;
        bp = *reinterpret_cast<const uintptr_t*>(start_frame);
        target = start_ra - 1;
    }
    for (int steps = 0; steps < max + 64; ++steps) {
        if (count >= max) break;
        // Steps move outwards, so the previous unwind's steps are met in order of their sp.
        while (join > 0 && previous[join - 1].sp < sp) --join;
        if (join > 0 && previous[join - 1].sp == sp) {
            const Step& old = previous[join - 1];
            if (old.target == target && old.bp == bp && same_words(previous, join)) {
                for (size_t i = join; i > 0 && count < max; --i) {
                    if (previous[i - 1].ra) emit(previous[i - 1].ra, previous[i - 1].cfa);
                }
                keep_outer(previous, join, current);
                cache.previous_whole = count < max;
                return count;
            }
            --join;  // a word changed in between (a different call): try further out
        }
        auto [slot, inserted] = cache.rules.insert(target);
        if (inserted) {
            Rule decoded;
            *slot = decode(target, &decoded) ? pack(decoded) : pack({UNSUPPORTED, 0, 0, 0});
        }
        Rule rule = unpack(*slot);
        if (rule.kind == END) {
            whole = true;
            break;
        }
        Step step{target, sp, bp, {0, 0, 0}, {0, 0, 0}, 0, 0};
        uintptr_t cfa;
        switch (rule.kind) {
            case CFA_RSP: cfa = sp + rule.cfa_offset; break;
            case CFA_RBP: cfa = bp + rule.cfa_offset; break;
            case CFA_DEREF_RBP: {
                uintptr_t slot_address = bp + rule.cfa_offset;
                if (slot_address < sp || slot_address + 8 > stack_end) return -1;
                cfa = *reinterpret_cast<const uintptr_t*>(slot_address);
                step.load_address[2] = slot_address;
                step.load_value[2] = cfa;
                break;
            }
            default: return -1;
        }
        // Every load stays inside this thread's stack, above the frame we came from, and no frame
        // is larger than 16 MiB: beyond that the rule or the stack (a coroutine's own stack, say)
        // is not what we think, and libgcc decides.
        uintptr_t ra_address = cfa + rule.ra_offset;
        if (cfa <= sp || cfa - sp > (16u << 20) || ra_address < sp || ra_address + 8 > stack_end) return -1;
        uintptr_t ra = *reinterpret_cast<const uintptr_t*>(ra_address);
        step.load_address[0] = ra_address;
        step.load_value[0] = ra;
        if (rule.rbp_offset) {
            uintptr_t bp_address = cfa + rule.rbp_offset;
            if (bp_address < sp || bp_address + 8 > stack_end) return -1;
            bp = *reinterpret_cast<const uintptr_t*>(bp_address);
            step.load_address[1] = bp_address;
            step.load_value[1] = bp;
        }
        step.ra = ra;
        step.cfa = cfa;
        current.push_back(step);
        sp = cfa;
        if (ra == 0) {
            whole = true;
            break;
        }
        target = ra - 1;
        emit(ra, cfa);
    }
    keep_outer(previous, 0, current);
    cache.previous_whole = whole;
    return count;
}

#else

int unwind(RuleCache&, uint32_t, uintptr_t, uintptr_t, uintptr_t*, uintptr_t*, int, uintptr_t, uintptr_t) { return -1; }

#endif

}  // namespace memprof::unwind
