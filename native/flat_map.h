// A small open-addressing hash map for the hot paths (trie lookups, live allocations).
//
// Why not std::unordered_map: it allocates a node per entry (inside an allocation hook that is
// an allocation per event) and chases a pointer per lookup. This one is a flat array with
// linear probing and backward-shift deletion, so erase leaves no tombstones and lookups stay
// short however many allocations come and go.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace memprof {

inline uint64_t mix64(uint64_t x) {
    // splitmix64 finaliser: addresses differ mostly in low bits, and this spreads them.
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

inline uint64_t key_hash(uint64_t key) { return mix64(key); }

// A trie edge: (parent node, frame id, instruction offset in that frame).
struct EdgeKey {
    uint64_t parent_and_frame;
    uint64_t lasti;
    bool operator==(const EdgeKey& other) const {
        return parent_and_frame == other.parent_and_frame && lasti == other.lasti;
    }
    bool operator!=(const EdgeKey& other) const { return !(*this == other); }
};
inline uint64_t key_hash(const EdgeKey& key) { return mix64(key.parent_and_frame ^ mix64(key.lasti)); }

template <typename Key>
constexpr Key empty_key();
template <>
constexpr uint64_t empty_key<uint64_t>() { return ~0ULL; }
template <>
constexpr EdgeKey empty_key<EdgeKey>() { return EdgeKey{~0ULL, ~0ULL}; }

// Keys must never equal empty_key<Key>(). ``Allocator``: where the slots live (the reader's tables
// take HugePageAllocator).
template <typename Value, typename Key = uint64_t, template <typename> class Allocator = std::allocator>
class FlatMap {
  public:
    static constexpr Key kEmptyKey = empty_key<Key>();

    FlatMap() { rehash(16); }

    size_t size() const { return d_size; }

    Value* find(const Key& key) {
        if (key == kEmptyKey) return nullptr;  // would match a free slot
        size_t mask = d_keys.size() - 1;
        for (size_t i = key_hash(key) & mask;; i = (i + 1) & mask) {
            if (d_keys[i] == key) return &d_values[i];
            if (d_keys[i] == kEmptyKey) return nullptr;
        }
    }

    // Returns the slot for key and whether it was inserted (value default-constructed then).
    std::pair<Value*, bool> insert(const Key& key) {
        if ((d_size + 1) * 4 > d_keys.size() * 3) rehash(d_keys.size() * 2);
        size_t mask = d_keys.size() - 1;
        for (size_t i = key_hash(key) & mask;; i = (i + 1) & mask) {
            if (d_keys[i] == key) return {&d_values[i], false};
            if (d_keys[i] == kEmptyKey) {
                d_keys[i] = key;
                d_values[i] = Value();
                if (++d_size > d_high) d_high = d_size;
                return {&d_values[i], true};
            }
        }
    }

    bool erase(const Key& key) {
        if (key == kEmptyKey) return false;
        size_t mask = d_keys.size() - 1;
        size_t i = key_hash(key) & mask;
        for (;; i = (i + 1) & mask) {
            if (d_keys[i] == key) break;
            if (d_keys[i] == kEmptyKey) return false;
        }
        // Backward-shift: pull later entries of the probe run into the hole.
        size_t hole = i;
        for (size_t j = (i + 1) & mask; d_keys[j] != kEmptyKey; j = (j + 1) & mask) {
            size_t home = key_hash(d_keys[j]) & mask;
            bool movable = (hole <= j) ? (home <= hole || home > j) : (home <= hole && home > j);
            if (movable) {
                d_keys[hole] = d_keys[j];
                d_values[hole] = std::move(d_values[j]);
                hole = j;
            }
        }
        d_keys[hole] = kEmptyKey;
        --d_size;
        return true;
    }

    // Sized for as many entries as the table held since the last clear: a reader's windows come
    // in runs of like size (a test suite's), so the next one does not grow through every
    // rehash again, and the cost of emptying the slots is that of the work that filled them.
    void clear() {
        size_t capacity = 16;
        while ((d_high + 1) * 4 > capacity * 3) capacity *= 2;
        if (capacity == d_keys.size()) {
            std::fill(d_keys.begin(), d_keys.end(), kEmptyKey);
        } else {
            std::vector<Key, Allocator<Key>>(capacity, kEmptyKey).swap(d_keys);
            std::vector<Value, Allocator<Value>>(capacity).swap(d_values);
        }
        d_size = 0;
        d_high = 0;
    }

    template <typename Fn>
    void for_each(Fn&& fn) {
        for (size_t i = 0; i < d_keys.size(); ++i) {
            if (d_keys[i] != kEmptyKey) fn(d_keys[i], d_values[i]);
        }
    }

  private:
    void rehash(size_t capacity) {
        std::vector<Key, Allocator<Key>> keys(capacity, kEmptyKey);
        std::vector<Value, Allocator<Value>> values(capacity);
        keys.swap(d_keys);
        values.swap(d_values);
        d_size = 0;
        size_t mask = capacity - 1;
        for (size_t i = 0; i < keys.size(); ++i) {
            if (keys[i] == kEmptyKey) continue;
            size_t j = key_hash(keys[i]) & mask;
            while (d_keys[j] != kEmptyKey) j = (j + 1) & mask;
            d_keys[j] = keys[i];
            d_values[j] = std::move(values[i]);
            ++d_size;
        }
    }

    std::vector<Key, Allocator<Key>> d_keys;
    std::vector<Value, Allocator<Value>> d_values;
    size_t d_size = 0;
    size_t d_high = 0;  // the most entries held since the last clear
};

}  // namespace memprof
