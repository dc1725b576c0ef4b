// An allocator for the report reader's big tables: storage of 2 MiB or more is 2 MiB-aligned and
// advised to the kernel as transparent huge pages (MADV_HUGEPAGE, which Debian's default "madvise"
// mode waits for). The reader's hash tables are probed at random across tens of MiB, one probe per
// event: with 4 KiB pages most probes also miss the TLB, and each page is a fault to fill. Only the
// reader uses it; the tracker's tables stay on plain allocations (they live in the profiled process).
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <new>

namespace memprof {

template <typename T>
struct HugePageAllocator {
    using value_type = T;
    static constexpr size_t kHugePage = size_t{2} << 20;

    HugePageAllocator() = default;
    template <typename U>
    HugePageAllocator(const HugePageAllocator<U>&) {}

    T* allocate(size_t n) {
        if (n > SIZE_MAX / sizeof(T)) throw std::bad_alloc();
        size_t bytes = n * sizeof(T);
        if (bytes < kHugePage) return static_cast<T*>(::operator new(bytes));
        size_t rounded = (bytes + kHugePage - 1) & ~(kHugePage - 1);
        void* storage = std::aligned_alloc(kHugePage, rounded);
        if (!storage) throw std::bad_alloc();
        // Advice only: where huge pages are off or unavailable this fails and nothing changes.
        madvise(storage, rounded, MADV_HUGEPAGE);
        return static_cast<T*>(storage);
    }

    void deallocate(T* pointer, size_t n) {
        if (n * sizeof(T) < kHugePage) {
            ::operator delete(pointer);
        } else {
            std::free(pointer);
        }
    }

    template <typename U>
    bool operator==(const HugePageAllocator<U>&) const { return true; }
    template <typename U>
    bool operator!=(const HugePageAllocator<U>&) const { return false; }
};

}  // namespace memprof
