// How the tracker's memory sink hands its records to a reader in another extension module as
// they are written (tracker::follow, Reader::follower): a function and its argument, passed
// between the two modules in a capsule named kFollowerCapsule.
#pragma once

#include <cstddef>
#include <cstdint>

namespace memprof {

using Follower = void (*)(void* context, const uint8_t* data, size_t len);

struct FollowerEntry {
    Follower feed;
    void* context;
};

inline constexpr const char* kFollowerCapsule = "pytest_memprof.follower";

}  // namespace memprof
